//! The state every handler sees: the core's services, the throttles, the
//! settings logins and the running connectors with their capabilities. Built by the wiring (`app::Application`).

use super::logins::Accounts;
use super::throttle::{ApiLimiters, AuthThrottle};
use crate::catalogue::Catalogue;
use crate::config::Config;
pub use crate::connector_host::RunningConnector;
use crate::keys::{Keyring, LogKeys};
use crate::outbound_log::OutboundLog;
use crate::registry::Registry;
use crate::tenancy::Tenancy;
use std::sync::Arc;

/// Everything a request handler may use.
pub struct App {
    pub config: Config,
    pub registry: Registry,
    pub tenancy: Tenancy,
    pub log: OutboundLog,
    pub catalogue: Catalogue,
    pub keyring: Arc<Keyring>,
    /// The outbound log's chain and checkpoint keys, derived from the keyring.
    pub log_keys: Arc<LogKeys>,
    pub auth_throttle: AuthThrottle,
    pub api_limiters: ApiLimiters,
    pub accounts: Accounts,
    /// The registered connectors with the capabilities each was given.
    pub connectors: Vec<RunningConnector>,
    /// Where tripped tripwires are raised (registry, log, metric, webhook).
    pub alerts: crate::security::Alerts,
    /// Set to true when the gateway starts shutting down (connectors' background work ends).
    pub stopping: tokio::sync::watch::Sender<bool>,
}

/// Axum state: a cheap handle on the `App`.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}
