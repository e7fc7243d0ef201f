//! Minimisation choices: variants a connector's manifest offers for what it
//! receives (e.g. the matter number instead of the matter name as a calendar
//! event's title). Each option re-binds fields of table-bound schemas to
//! other columns, so the gateway reads only what the chosen variant needs. A
//! firm's choices are part of the contract it consents to: the consented
//! contract's hash covers the schema hash and the choices together.

#[cfg(test)]
use crate::manifest::ContractError;
use crate::manifest::{canonical_json, ConnectorContract};
pub use crate::manifest::{Choice, ChoiceOption, FieldVariant};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Choice name -> chosen option name.
pub type Chosen = BTreeMap<String, String>;

impl ConnectorContract {
    /// The options of a firm that never chose.
    pub fn default_choices(&self) -> Chosen {
        self.manifest
            .choices
            .iter()
            .map(|(name, c)| (name.clone(), c.default.clone()))
            .collect()
    }

    /// The firm's stored choices over the defaults. A stored choice the
    /// manifest no longer offers falls back to the default (an operator may
    /// ship a contract without it); `check_choices` refuses such input.
    pub fn effective_choices(&self, stored: &Chosen) -> Chosen {
        let mut chosen = self.default_choices();
        for (name, option) in stored {
            if let Some(choice) = self.manifest.choices.get(name) {
                if choice.options.contains_key(option) {
                    chosen.insert(name.clone(), option.clone());
                }
            }
        }
        chosen
    }

    /// Refuses a choice or option the manifest does not offer, naming it.
    pub fn check_choices(&self, asked: &Chosen) -> Result<(), (String, String)> {
        for (name, option) in asked {
            let Some(choice) = self.manifest.choices.get(name) else {
                let offered: Vec<&str> = self.manifest.choices.keys().map(String::as_str).collect();
                return Err((
                    name.clone(),
                    if offered.is_empty() {
                        format!("{} offers no choices", self.manifest.id)
                    } else {
                        format!(
                            "{} offers no choice {name:?}; it offers {}",
                            self.manifest.id,
                            offered.join(", ")
                        )
                    },
                ));
            };
            if !choice.options.contains_key(option) {
                let options: Vec<&str> = choice.options.keys().map(String::as_str).collect();
                return Err((
                    name.clone(),
                    format!("{name} must be one of {}", options.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// This contract with its schema documents re-bound as `chosen` asks (the
    /// documents the gateway compiles the firm's projections from).
    pub fn with_choices(&self, chosen: &Chosen) -> ConnectorContract {
        let mut contract = self.clone();
        for (name, option) in chosen {
            let Some(spec) = self
                .manifest
                .choices
                .get(name)
                .and_then(|c| c.options.get(option))
            else {
                continue;
            };
            for (schema, fields) in &spec.fields {
                let Some(doc) = contract.schemas.get_mut(schema) else {
                    continue;
                };
                for (property, variant) in fields {
                    if let Some(prop) = doc
                        .pointer_mut(&format!("/properties/{property}"))
                        .and_then(|p| p.as_object_mut())
                    {
                        prop.insert("x-column".into(), variant.column.clone().into());
                        prop.insert("description".into(), variant.description.clone().into());
                    }
                }
            }
        }
        contract
    }
}

/// The hash of a consented contract: the schema hash itself when the
/// connector offers no choices, else SHA-256 over it and the canonical choices.
pub fn contract_hash(schema_hash: &str, chosen: &Chosen) -> String {
    if chosen.is_empty() {
        return schema_hash.to_string();
    }
    let mut hasher = Sha256::new();
    hasher.update(schema_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_json(
        &serde_json::to_value(chosen).expect("choices serialise"),
    ));
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type":"object","additionalProperties":false,"x-source-table":"matters","properties":{"title":{"type":"string","x-column":"name","description":"Matter name"}}}"#;

    fn manifest(default: &str) -> String {
        format!(
            r#"{{"id":"x","name":"X","contract_version":"1","description":"d","schemas":{{"item":"item.json"}},
            "choices":{{"title":{{"label":"Title","default":"{default}","options":{{
              "name":{{"label":"Name"}},
              "number":{{"label":"Number","fields":{{"item":{{"title":{{"x-column":"number","description":"Matter number"}}}}}}}}}}}}}}}}"#
        )
    }

    fn load(default: &str) -> Result<ConnectorContract, ContractError> {
        ConnectorContract::load(&manifest(default), |_| Some(SCHEMA.into()))
    }

    #[test]
    fn a_default_that_is_not_an_option_is_refused() {
        assert!(matches!(load("nope"), Err(ContractError::Choice { .. })));
    }

    #[test]
    fn choices_rebind_fields_and_change_the_contract_hash() {
        let contract = load("name").unwrap();
        let defaults = contract.default_choices();
        assert_eq!(defaults["title"], "name");
        let number: Chosen = [("title".to_string(), "number".to_string())].into();
        let rebound = contract.with_choices(&number);
        assert_eq!(
            rebound.schemas["item"]["properties"]["title"]["x-column"],
            "number"
        );
        assert_eq!(
            contract.with_choices(&defaults).schemas,
            contract.schemas,
            "the default option describes the schemas as written"
        );
        let hash = contract.schema_hash();
        assert_ne!(
            contract_hash(&hash, &defaults),
            contract_hash(&hash, &number)
        );
        assert_eq!(contract_hash(&hash, &Chosen::new()), hash);
        assert!(contract.check_choices(&number).is_ok());
        let bad: Chosen = [("title".to_string(), "client".to_string())].into();
        assert_eq!(contract.check_choices(&bad).unwrap_err().0, "title");
        let unknown: Chosen = [("colour".to_string(), "red".to_string())].into();
        assert!(contract
            .check_choices(&unknown)
            .unwrap_err()
            .1
            .contains("title"));
    }
}
