//! The registration list: the one place the gateway names its connectors
//! (with `demo`, the tour of them `scopegate demo` gives). Everything else
//! (catalogue, routes, OpenAPI, settings page, CLI, background work)
//! iterates over this list.
//!
//! Adding a connector: write its crate against `scopegate-contract`, put its
//! schemas under `schemas/<id>/`, and add one line below.

pub mod demo;

use scopegate_contract::Connector;
use scopegate_core::catalogue::{Catalogue, CatalogueError};
use std::path::Path;
use std::sync::Arc;

/// Every connector this gateway runs.
pub fn registered() -> Vec<Arc<dyn Connector>> {
    vec![
        Arc::new(scopegate_accounting::Accounting),
        Arc::new(scopegate_google_calendar::GoogleCalendar::new()),
        Arc::new(scopegate_matter_webhook::MatterWebhook),
    ]
}

/// The catalogue of the registered connectors' built-in contracts.
pub fn catalogue() -> Catalogue {
    crate::connector_host::built_in_catalogue(&registered())
}

/// The built-in catalogue, with the contracts an operator ships in `schemas_dir` in force.
pub fn catalogue_from(schemas_dir: Option<&Path>) -> Result<Catalogue, CatalogueError> {
    crate::connector_host::catalogue_from(&registered(), schemas_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn every_registered_connector_loads_under_its_own_id() {
        let catalogue = catalogue();
        for connector in registered() {
            let loaded = catalogue.require(connector.id()).unwrap();
            assert_eq!(loaded.id(), connector.id());
        }
        assert_eq!(catalogue.ids().len(), registered().len(), "ids are unique");
    }

    #[test]
    fn the_openapi_document_of_the_registered_connectors_resolves_every_reference() {
        let doc = crate::http::openapi::document(&registered(), &catalogue(), "http://x");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let text = doc.to_string();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(
                doc["components"]["schemas"].get(&name).is_some(),
                "dangling $ref {name}"
            );
        }
        assert!(doc["paths"]["/v1/transactions"]["get"].is_object());
        assert!(!text.contains("x-column"));
        assert!(doc["paths"]["/admin/v1/connectors/{id}/enable"]["post"].is_object());
        assert!(doc["paths"]["/admin/v1/outbound"]["get"].is_object());
    }

    /// What the layers answer is stated on every operation it applies to.
    #[test]
    fn every_operation_states_what_the_layers_answer() {
        let doc = crate::http::openapi::document(&registered(), &catalogue(), "http://x");
        let mut admin_operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let name = format!("{method} {path}");
                assert!(
                    op.get("parameters").is_none_or(Value::is_array),
                    "{name}: parameters must be a list"
                );
                let responses = &op["responses"];
                assert!(responses["503"].is_object(), "{name} lacks 503");
                assert_eq!(
                    responses["429"].is_object(),
                    !crate::http::openapi::UNTHROTTLED.contains(&path.as_str()),
                    "{name} and 429"
                );
                if op.get("requestBody").is_some() {
                    assert!(responses["413"].is_object(), "{name} lacks 413");
                }
                for (status, response) in responses.as_object().unwrap() {
                    if status.as_str() >= "400" {
                        assert!(
                            response["content"].is_object(),
                            "{name} {status} has no content type"
                        );
                    }
                }
                if path.starts_with("/admin/v1/") && name != "post /admin/v1/session" {
                    admin_operations += 1;
                    let expected = if method == "get" {
                        json!([{ "session": [] }])
                    } else {
                        json!([{ "session": [], "csrf": [] }])
                    };
                    assert_eq!(op["security"], expected, "{name}");
                    assert!(responses["401"].is_object(), "{name} lacks 401");
                    let parameters = op["parameters"].as_array().cloned().unwrap_or_default();
                    assert!(
                        parameters.iter().all(|p| p["name"] != "X-CSRF-Token"),
                        "{name}: the CSRF token is a security scheme, not a parameter"
                    );
                }
            }
        }
        assert!(
            admin_operations >= 18,
            "{admin_operations} admin operations"
        );
        assert!(doc["paths"]["/oauth/token"]["post"].is_object());
        assert_eq!(
            doc["paths"]["/admin/v1/connectors/{id}/disable"]["post"]["requestBody"]["content"]
                ["application/json"]["schema"]["propertyNames"]["enum"],
            json!(["delete_events", "disconnect_accounts"])
        );
        let choices = &doc["paths"]["/admin/v1/connectors/{id}/choices"]["put"]["requestBody"]
            ["content"]["application/json"]["schema"];
        assert_eq!(
            choices["properties"]["event_title"]["enum"],
            json!(["matter_name", "matter_number"]),
            "{choices}"
        );
        assert_eq!(choices["additionalProperties"], json!(false), "{choices}");
    }
}
