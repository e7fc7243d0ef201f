//! What every part of the connector works with: the capabilities the gateway
//! handed it, its resolved settings and its runtime.

use crate::runtime::GoogleRuntime;
use crate::settings::GoogleSettings;
use scopegate_contract::{Capabilities, ConnectorError};
use std::sync::Arc;
use std::time::Duration;

/// The connector's context.
pub struct Ctx {
    pub caps: Capabilities,
    pub settings: GoogleSettings,
    pub runtime: Arc<GoogleRuntime>,
}

impl Ctx {
    pub fn new(caps: Capabilities, runtime: Arc<GoogleRuntime>) -> Result<Self, ConnectorError> {
        let settings = GoogleSettings::from_caps(&caps).map_err(ConnectorError::Unavailable)?;
        Ok(Self {
            caps,
            settings,
            runtime,
        })
    }

    /// Whether the operator configured the OAuth client.
    pub fn configured(&self) -> bool {
        self.settings.client_id.is_some()
    }

    /// Sleeps for `duration`, or less if the gateway starts shutting down.
    pub async fn pause(&self, duration: Duration) {
        if self.caps.is_stopping() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(duration) => {}
            _ = self.caps.stopped() => {}
        }
    }
}
