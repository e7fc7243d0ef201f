//! The registration list: the one place the gateway names its connectors.
//! Everything else (catalogue, routes, OpenAPI, settings page, background
//! work) iterates over this list.
//!
//! Adding a connector: write its crate against `scopegate-contract`, put its
//! schemas under `schemas/<id>/`, and add one line below.

use scopegate_contract::Connector;
use scopegate_core::catalogue::{Catalogue, CatalogueError};
use std::path::Path;
use std::sync::Arc;

/// Every connector this gateway runs.
pub fn registered() -> Vec<Arc<dyn Connector>> {
    vec![
        Arc::new(scopegate_accounting::Accounting),
        Arc::new(crate::google::GoogleCalendar),
        Arc::new(scopegate_matter_webhook::MatterWebhook),
    ]
}

/// The catalogue of the registered connectors' built-in contracts.
pub fn catalogue() -> Catalogue {
    let contracts: Vec<_> = registered().iter().map(|c| c.contract()).collect();
    Catalogue::from_built_in(&contracts)
        .expect("built-in connector contracts are valid (checked by tests)")
}

/// The built-in catalogue, with the contracts an operator ships in `schemas_dir` in force.
pub fn catalogue_from(schemas_dir: Option<&Path>) -> Result<Catalogue, CatalogueError> {
    match schemas_dir {
        Some(dir) => catalogue().overridden_from(dir),
        None => Ok(catalogue()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_connector_loads_under_its_own_id() {
        let catalogue = catalogue();
        for connector in registered() {
            let loaded = catalogue.require(connector.id()).unwrap();
            assert_eq!(loaded.id(), connector.id());
        }
        assert_eq!(catalogue.ids().len(), registered().len(), "ids are unique");
    }
}
