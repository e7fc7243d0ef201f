//! The core's side of the connector contract: the capability traits of
//! `scopegate-contract`, implemented for one connector at a time over the
//! registry, the firm databases and the outbound log. Every method checks that
//! the grant it is handed belongs to that connector, so a connector's
//! capabilities never serve another connector's grants.

mod handles;
mod inbound;
mod leases;
mod reader;
mod sender;

pub use handles::{grant_for_lease, grant_for_session, grant_for_token, StaleConsent};
pub use reader::read_changes;

use crate::catalogue::Connector;
use crate::outbound_log::{LogError, OutboundLog};
use crate::registry::{Registry, StoreError};
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
    /// For [`scopegate_contract::AuditedSender::deliver`]: bounded, no redirects.
    http: reqwest::Client,
}

impl CoreServices {
    pub fn new(registry: Registry, tenancy: Tenancy, log: OutboundLog) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .build()
            .expect("HTTP client");
        Self {
            registry,
            tenancy,
            log,
            http,
        }
    }

    /// The capabilities of one connector.
    pub fn capabilities_for(
        &self,
        connector: Arc<Connector>,
        settings: BTreeMap<String, String>,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> Capabilities {
        let scoped = Arc::new(ForConnector {
            core: self.clone(),
            schemas: connector.schemas(),
            connector,
        });
        Capabilities::new(CapabilityParts {
            reader: scoped.clone(),
            sender: scoped.clone(),
            inbound: scoped.clone(),
            schemas: scoped.schemas.clone(),
            leases: scoped,
            settings,
            stopping,
        })
    }
}

/// The core's services, narrowed to one connector.
struct ForConnector {
    core: CoreServices,
    connector: Arc<Connector>,
    schemas: BTreeMap<String, scopegate_contract::Schema>,
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
            StoreError::Unreachable { .. } => {
                tracing::error!(error = %e, "database unreachable");
                ConnectorError::Unavailable(
                    "a database the gateway needs is unreachable; try again shortly".into(),
                )
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
