//! A connector's manifest (id, scopes, data-contract version) and the
//! schema documents it declares under `schemas/<connector>/`, loaded, checked
//! closed (`additionalProperties: false`) and hashed into the contract a firm
//! admin consents to.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A connector's declaration of itself, read from `schemas/<id>/manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Stable identifier, also the folder name under `schemas/`.
    pub id: String,
    /// Human name shown in settings.
    pub name: String,
    /// Version of the data contract a firm admin consents to.
    pub contract_version: String,
    /// Plain-language summary of what the connector does.
    pub description: String,
    /// OAuth scopes a credential of this connector may hold.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Logical schema name -> file name (relative to the manifest's folder).
    pub schemas: BTreeMap<String, String>,
    /// Minimisation choices a firm makes, by name (applied by the `choices` module);
    /// absent from the hashed form when there are none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub choices: BTreeMap<String, Choice>,
}

/// A manifest with its schema documents loaded, ready to hash and validate.
#[derive(Debug, Clone)]
pub struct ConnectorContract {
    pub manifest: Manifest,
    /// Logical schema name -> parsed JSON Schema document.
    pub schemas: BTreeMap<String, serde_json::Value>,
}

/// Why a connector folder could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("manifest of connector {connector} is not valid: {source}")]
    Manifest {
        connector: String,
        source: serde_json::Error,
    },
    #[error("schema {file} of connector {connector} is not valid JSON: {source}")]
    Schema {
        connector: String,
        file: String,
        source: serde_json::Error,
    },
    #[error("connector {connector} names schema file {file}, which is missing")]
    MissingSchema { connector: String, file: String },
    #[error("schema {file} of connector {connector} must set \"additionalProperties\": false on every object")]
    OpenSchema { connector: String, file: String },
    #[error("choice {choice} of connector {connector}: {reason}")]
    Choice {
        connector: String,
        choice: String,
        reason: String,
    },
}

/// One choice a firm makes, as the manifest declares it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// What settings shows above the options.
    pub label: String,
    /// The option of a firm that never chose.
    pub default: String,
    /// Option name -> option.
    pub options: BTreeMap<String, ChoiceOption>,
}

/// One option of a choice.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    pub label: String,
    /// Schema name -> property -> how that property is read under this option
    /// (empty for the option the schemas already describe).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, BTreeMap<String, FieldVariant>>,
}

/// A property read from another column under an option.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FieldVariant {
    /// The firm-data column (as `x-column` in a schema).
    #[serde(rename = "x-column")]
    pub column: String,
    /// What settings shows a firm admin for the field under this option.
    pub description: String,
}

/// Checks the manifest's choices name real options, schemas and properties.
fn check_declared(contract: &ConnectorContract) -> Result<(), ContractError> {
    let fail = |choice: &str, reason: String| ContractError::Choice {
        connector: contract.manifest.id.clone(),
        choice: choice.to_string(),
        reason,
    };
    for (name, choice) in &contract.manifest.choices {
        if !choice.options.contains_key(&choice.default) {
            return Err(fail(
                name,
                format!("default {:?} is not one of its options", choice.default),
            ));
        }
        for (option, spec) in &choice.options {
            for (schema, fields) in &spec.fields {
                let doc = contract.schemas.get(schema).ok_or_else(|| {
                    fail(
                        name,
                        format!("option {option} names unknown schema {schema}"),
                    )
                })?;
                if doc.get("x-source-table").is_none() {
                    return Err(fail(
                        name,
                        format!("option {option}: schema {schema} is not bound to a table"),
                    ));
                }
                for property in fields.keys() {
                    if doc.pointer(&format!("/properties/{property}")).is_none() {
                        return Err(fail(
                            name,
                            format!("option {option}: schema {schema} has no property {property}"),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

impl ConnectorContract {
    /// Builds a contract from the manifest text and a lookup of schema files by name.
    pub fn load(
        manifest_json: &str,
        read_schema: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ContractError> {
        let manifest: Manifest =
            serde_json::from_str(manifest_json).map_err(|source| ContractError::Manifest {
                connector: "?".into(),
                source,
            })?;
        let mut schemas = BTreeMap::new();
        for (name, file) in &manifest.schemas {
            let text = read_schema(file).ok_or_else(|| ContractError::MissingSchema {
                connector: manifest.id.clone(),
                file: file.clone(),
            })?;
            let doc: serde_json::Value =
                serde_json::from_str(&text).map_err(|source| ContractError::Schema {
                    connector: manifest.id.clone(),
                    file: file.clone(),
                    source,
                })?;
            if !objects_are_closed(&doc) {
                return Err(ContractError::OpenSchema {
                    connector: manifest.id.clone(),
                    file: file.clone(),
                });
            }
            schemas.insert(name.clone(), doc);
        }
        let contract = Self { manifest, schemas };
        check_declared(&contract)?;
        Ok(contract)
    }

    /// SHA-256 over the manifest and every schema in canonical form: the exact
    /// data contract a firm admin consents to. Any change to a schema changes it.
    pub fn schema_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(canonical_json(
            &serde_json::to_value(&self.manifest).expect("manifest"),
        ));
        for (name, doc) in &self.schemas {
            hasher.update(b"\n");
            hasher.update(name.as_bytes());
            hasher.update(b"\n");
            hasher.update(canonical_json(doc));
        }
        hex::encode(hasher.finalize())
    }

    pub fn schema(&self, name: &str) -> Option<&serde_json::Value> {
        self.schemas.get(name)
    }
}

/// Serialises JSON with object keys sorted (serde_json's map is a BTreeMap
/// without the `preserve_order` feature), so equal documents hash equally.
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON values always serialise")
}

/// True when every object schema in the document forbids unknown properties.
fn objects_are_closed(doc: &serde_json::Value) -> bool {
    match doc {
        serde_json::Value::Object(map) => {
            let is_object_schema = map.get("type").and_then(|t| t.as_str()) == Some("object")
                && map.contains_key("properties");
            if is_object_schema
                && map.get("additionalProperties") != Some(&serde_json::Value::Bool(false))
            {
                return false;
            }
            map.values().all(objects_are_closed)
        }
        serde_json::Value::Array(items) => items.iter().all(objects_are_closed),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"{"id":"x","name":"X","contract_version":"1","description":"d","scopes":["a"],"schemas":{"item":"item.json"}}"#;

    #[test]
    fn open_schemas_are_refused() {
        let err = ConnectorContract::load(MANIFEST, |_| {
            Some(r#"{"type":"object","properties":{"a":{"type":"string"}}}"#.into())
        })
        .unwrap_err();
        assert!(matches!(err, ContractError::OpenSchema { .. }));
    }

    #[test]
    fn hash_changes_when_a_schema_widens() {
        let narrow = ConnectorContract::load(MANIFEST, |_| {
            Some(r#"{"type":"object","additionalProperties":false,"properties":{"a":{"type":"string"}}}"#.into())
        })
        .unwrap();
        let wide = ConnectorContract::load(MANIFEST, |_| {
            Some(r#"{"type":"object","additionalProperties":false,"properties":{"a":{"type":"string"},"b":{"type":"string"}}}"#.into())
        })
        .unwrap();
        assert_ne!(narrow.schema_hash(), wide.schema_hash());
        assert_eq!(narrow.schema_hash(), narrow.clone().schema_hash());
    }
}
