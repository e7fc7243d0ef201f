//! The core's side of the connector contract: the capability traits of
//! `scopegate-contract`, implemented for one connector at a time over the
//! registry, the firm databases and the outbound log. Every method checks that
//! the grant it is handed belongs to that connector, so a connector's
//! capabilities never serve another connector's grants.

mod handles;
mod ids;
mod inbound;
mod leases;
mod reader;
mod records;
mod sender;

pub use handles::{
    grant_for_lease, grant_for_operator, grant_for_session, grant_for_token, StaleConsent,
};
pub use reader::read_changes;

use crate::catalogue::Connector;
use crate::keys::Keyring;
use crate::outbound_log::{LogError, OutboundLog};
use crate::registry::{Registry, StoreError};
use crate::security::pseudonyms::Pseudonyms;
use crate::security::Alerts;
use crate::tenancy::Tenancy;
use scopegate_contract::{Capabilities, CapabilityParts, ConnectorError, FirmGrant};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What the capabilities of every connector share.
#[derive(Clone)]
pub struct CoreServices {
    pub registry: Registry,
    pub tenancy: Tenancy,
    pub log: OutboundLog,
    /// Seals connectors' secrets (bound to grant and purpose).
    pub keyring: Arc<Keyring>,
    /// Where tripped tripwires are raised (a fee naming no matter of the firm).
    pub alerts: Alerts,
    /// Each grant's view of record ids.
    pub pseudonyms: Pseudonyms,
    /// For [`scopegate_contract::AuditedSender::deliver`] and `call`: bounded, no redirects.
    http: reqwest::Client,
}

/// What the gateway tells every connector's capabilities about itself.
#[derive(Debug, Clone, Default)]
pub struct ConnectorSettings {
    /// `[connector.<id>]` settings.
    pub plain: BTreeMap<String, String>,
    /// Its secret settings.
    pub secrets: BTreeMap<String, secrecy::SecretString>,
    /// The URL the gateway is reached at.
    pub public_url: String,
}

impl CoreServices {
    pub fn new(
        registry: Registry,
        tenancy: Tenancy,
        log: OutboundLog,
        keyring: Arc<Keyring>,
    ) -> Self {
        let http = outbound_client(DEFAULT_CONNECT_TIMEOUT);
        Self {
            alerts: Alerts::new(registry.clone(), None),
            pseudonyms: Pseudonyms::new(registry.clone(), keyring.clone()),
            registry,
            tenancy,
            log,
            keyring,
            http,
        }
    }

    /// The same services, raising alerts through `alerts` (the gateway's, with its webhook queue).
    pub fn with_alerts(mut self, alerts: Alerts) -> Self {
        self.alerts = alerts;
        self
    }

    /// The capabilities of one connector.
    pub fn capabilities_for(
        &self,
        connector: Arc<Connector>,
        settings: ConnectorSettings,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> Capabilities {
        // `[connector.<id>] connect_timeout_secs` gives that connector's calls a client of their own.
        let mut core = self.clone();
        if let Some(secs) = settings
            .plain
            .get("connect_timeout_secs")
            .and_then(|s| s.trim().parse::<u64>().ok())
        {
            core.http = outbound_client(Duration::from_secs(secs.clamp(1, 300)));
        }
        let scoped = Arc::new(ForConnector {
            core,
            schemas: connector.schemas(),
            connector,
            stopping: stopping.clone(),
        });
        Capabilities::new(CapabilityParts {
            reader: scoped.clone(),
            sender: scoped.clone(),
            inbound: scoped.clone(),
            schemas: scoped.schemas.clone(),
            records: scoped.clone(),
            ids: scoped.clone(),
            leases: scoped,
            settings: settings.plain,
            secrets: settings.secrets,
            public_url: settings.public_url,
            stopping,
        })
    }
}

/// How long a connection to a third party may take by default.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The one outbound HTTP client: redirects never followed, connect and overall
/// timeouts (a call may set a shorter overall one).
fn outbound_client(connect_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

/// The core's services, narrowed to one connector.
struct ForConnector {
    core: CoreServices,
    connector: Arc<Connector>,
    schemas: BTreeMap<String, scopegate_contract::Schema>,
    /// True once the gateway stops: calls still in flight a grace after it
    /// are cut short, so that a stop never waits on a third party.
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl ForConnector {
    /// What the outbound log records of a movement of data for `grant`.
    fn new_send(
        &self,
        grant: &FirmGrant,
        (direction, method): (crate::outbound_log::Direction, &str),
        target: String,
        fields: Vec<String>,
        record_ids: Vec<String>,
        payload: Vec<u8>,
    ) -> crate::outbound_log::NewSend {
        crate::outbound_log::NewSend {
            firm_id: grant.firm_id().to_string(),
            grant_id: grant.grant_id().to_string(),
            connector: self.connector.id().to_string(),
            direction,
            method: method.to_string(),
            target,
            fields,
            record_ids,
            payload,
        }
    }

    /// Refuses a grant of another connector (a bug in the caller, never data).
    fn own(&self, grant: &FirmGrant) -> Result<(), ConnectorError> {
        if grant.connector() == self.connector.id() {
            Ok(())
        } else {
            Err(ConnectorError::Internal(format!(
                "connector {} was handed a grant of {}",
                self.connector.id(),
                grant.connector()
            )))
        }
    }
}

impl From<StoreError> for ConnectorError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unreachable { .. } | StoreError::Unavailable(_) => {
                tracing::error!(error = %e, "database unavailable");
                ConnectorError::Unavailable(crate::registry::UNAVAILABLE_DETAIL.into())
            }
            StoreError::NotFound(detail) => ConnectorError::NotFound(detail),
            StoreError::Conflict(detail) => ConnectorError::Conflict(detail),
            StoreError::Invalid(detail) => ConnectorError::Invalid {
                field: String::new(),
                detail,
            },
            other => ConnectorError::Internal(other.to_string()),
        }
    }
}

impl From<LogError> for ConnectorError {
    fn from(e: LogError) -> Self {
        tracing::error!(error = %e, "outbound log refused a record; nothing was sent");
        ConnectorError::Unavailable(
            "the outbound log could not record this response, so nothing was sent; try again shortly"
                .into(),
        )
    }
}
