//! The registered connectors, each with the capabilities the core gave it:
//! what `serve` runs, and what the CLI's connector commands (`connector`,
//! `grant disable --option`) act through without a listening gateway.

use crate::capabilities::{grant_for_operator, ConnectorSettings, CoreServices};
use crate::catalogue::{Catalogue, CatalogueError};
use crate::config::Config;
use crate::keys::Keyring;
use crate::outbound_log::OutboundLog;
use crate::registry::{Registry, StoreError};
use crate::tenancy::Tenancy;
use scopegate_contract::{Capabilities, Connector, ConnectorError, FirmGrant};
use std::sync::Arc;
use std::time::Duration;

/// A registered connector and its capabilities.
pub struct RunningConnector {
    pub connector: Arc<dyn Connector>,
    pub capabilities: Capabilities,
    /// It serves vendor routes, so a firm issues credentials for it.
    pub vendor_api: bool,
}

/// The connectors a gateway runs (the registration list, handed down by its caller).
pub type Connectors = Vec<Arc<dyn Connector>>;

/// The catalogue of the connectors' built-in contracts.
pub fn built_in_catalogue(connectors: &[Arc<dyn Connector>]) -> Catalogue {
    let contracts: Vec<_> = connectors.iter().map(|c| c.contract()).collect();
    Catalogue::from_built_in(&contracts)
        .expect("built-in connector contracts are valid (checked by tests)")
}

/// The built-in catalogue, with the contracts an operator ships in `schemas_dir` in force.
pub fn catalogue_from(
    connectors: &[Arc<dyn Connector>],
    schemas_dir: Option<&std::path::Path>,
) -> Result<Catalogue, CatalogueError> {
    match schemas_dir {
        Some(dir) => built_in_catalogue(connectors).overridden_from(dir),
        None => Ok(built_in_catalogue(connectors)),
    }
}

/// Gives each connector its capabilities and operator settings.
pub fn running_connectors(
    connectors: Connectors,
    core: &CoreServices,
    catalogue: &Catalogue,
    config: &Config,
    stopping: &tokio::sync::watch::Receiver<bool>,
) -> Vec<RunningConnector> {
    connectors
        .into_iter()
        .filter_map(|connector| {
            let compiled = catalogue.get(connector.id())?;
            let settings = ConnectorSettings {
                plain: config
                    .connector_settings
                    .get(connector.id())
                    .cloned()
                    .unwrap_or_default(),
                secrets: config
                    .connector_secrets
                    .get(connector.id())
                    .cloned()
                    .unwrap_or_default(),
                public_url: config.public_url.clone(),
            };
            let capabilities = core.capabilities_for(compiled, settings, stopping.clone());
            Some(RunningConnector {
                vendor_api: connector.routes().is_some(),
                connector,
                capabilities,
            })
        })
        .collect()
}

/// The connectors over a registry, for one CLI command.
pub struct ConnectorHost {
    pub registry: Registry,
    pub catalogue: Catalogue,
    pub connectors: Vec<RunningConnector>,
    stop: tokio::sync::watch::Sender<bool>,
    log_writer: tokio::task::JoinHandle<()>,
}

impl ConnectorHost {
    /// Connects the registry and starts the outbound log's writer (no listener).
    pub async fn open(
        config: &Config,
        keyring: Arc<Keyring>,
        connectors: Connectors,
    ) -> anyhow::Result<Self> {
        let registry = Registry::connect_and_migrate(&config.database_url).await?;
        let catalogue = catalogue_from(&connectors, config.schemas_dir.as_deref())?;
        let (log, log_writer) = OutboundLog::start(registry.clone(), Arc::new(keyring.log_keys()));
        let tenancy = Tenancy::new(registry.clone(), config.firm_pool_capacity);
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let connectors = running_connectors(
            connectors,
            &CoreServices::new(registry.clone(), tenancy, log, keyring),
            &catalogue,
            config,
            &stopping,
        );
        Ok(Self {
            registry,
            catalogue,
            connectors,
            stop,
            log_writer,
        })
    }

    /// The running connector with this id.
    pub fn connector(&self, id: &str) -> Result<&RunningConnector, String> {
        self.connectors
            .iter()
            .find(|r| r.connector.id() == id)
            .ok_or_else(|| {
                let ids: Vec<&str> = self.connectors.iter().map(|r| r.connector.id()).collect();
                format!("no connector {id}; known: {}", ids.join(", "))
            })
    }

    /// The operator's handle on a firm's grant of a connector (on or off).
    pub async fn operator_grant(
        &self,
        firm: &str,
        connector: &str,
        actor: &str,
    ) -> Result<FirmGrant, ConnectorError> {
        let compiled = self
            .catalogue
            .require(connector)
            .map_err(ConnectorError::NotFound)?;
        let grant = match self.registry.grant(firm, connector).await {
            Ok(g) => g,
            Err(StoreError::NotFound(_)) => {
                return Err(ConnectorError::NotFound(format!(
                    "{connector} was never switched on for firm {firm}"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        grant_for_operator(&grant, &compiled, actor).map_err(|stale| {
            ConnectorError::Refused(format!(
                "firm {firm} consented to an earlier data contract of {}; switch it on again (contract version {})",
                stale.connector, stale.current_version
            ))
        })
    }

    /// Stops the connectors' work and commits the outbound log's queue.
    pub async fn close(self) {
        let ConnectorHost {
            registry,
            connectors,
            stop,
            log_writer,
            ..
        } = self;
        stop.send_replace(true);
        drop(connectors);
        let _ = tokio::time::timeout(Duration::from_secs(10), log_writer).await;
        registry.close().await;
    }
}
