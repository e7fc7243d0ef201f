//! Compiled JSON Schemas and the payloads that passed them. A
//! [`CheckedPayload`] can only be made by [`Schema::check`]: holding one proves
//! that its exact bytes match the connector's declared schema, so everything
//! that sends or logs firm data takes one instead of a free-form value.

use crate::manifest::ConnectorContract;
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A payload that does not match its schema, naming the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// JSON pointer of the field (`/amount_cents`), or the field named in the message.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// One schema of a connector, compiled once.
#[derive(Clone)]
pub struct Schema {
    name: String,
    /// The schema with sibling `$ref`s inlined (what the OpenAPI document embeds).
    document: Value,
    validator: Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema").field("name", &self.name).finish()
    }
}

/// Bytes that matched a schema, with what the outbound log records of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedPayload {
    schema: String,
    fields: Vec<String>,
    bytes: Vec<u8>,
}

impl CheckedPayload {
    /// Name of the schema it matched.
    pub fn schema(&self) -> &str {
        &self.schema
    }
    /// Top-level field names (what the outbound log lists).
    pub fn fields(&self) -> &[String] {
        &self.fields
    }
    /// The exact bytes that were checked: the ones that leave.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The checked bytes, by value (what a sender hands on without copying).
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Decodes the checked bytes into a protocol type (e.g. a Calendar `Event`),
    /// so what a protocol library sends is built from exactly these bytes.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.bytes)
    }
}

impl Schema {
    /// Compiles schema `name` of a connector contract (sibling `$ref`s inlined).
    pub fn compile(contract: &ConnectorContract, name: &str) -> Result<Self, String> {
        let raw = contract.schema(name).ok_or("schema missing")?;
        let files: BTreeMap<&str, &Value> = contract
            .manifest
            .schemas
            .iter()
            .filter_map(|(n, file)| contract.schema(n).map(|doc| (file.as_str(), doc)))
            .collect();
        let document = inline_refs(raw, &files, 0)?;
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&document)
            .map_err(|e| format!("not a valid JSON Schema: {e}"))?;
        Ok(Self {
            name: name.to_string(),
            document,
            validator: Arc::new(validator),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Validates without producing a payload (for incoming data that is not sent on).
    pub fn validate(&self, value: &Value) -> Result<(), SchemaViolation> {
        // The yes/no walk stops at the first failure and builds no error; only
        // a payload that fails is walked again for the error that names it.
        // On a poll's 100-transaction page the error walk took about twice
        // the instructions (BENCHMARKS.md §14).
        if self.validator.is_valid(value) {
            return Ok(());
        }
        match self.validator.iter_errors(value).next() {
            // Both walks agree; should they not, the payload still does not pass.
            None => Err(SchemaViolation {
                field: String::new(),
                message: "does not match its schema".into(),
            }),
            Some(error) => {
                let path = error.instance_path().to_string();
                let message = error.masked().to_string();
                // A missing or unexpected member is named by the member, not
                // the object holding it; anything else by its own path.
                let member = match error.kind() {
                    ValidationErrorKind::AdditionalProperties { unexpected }
                    | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                        unexpected.first().cloned()
                    }
                    ValidationErrorKind::Required { property } => {
                        property.as_str().map(str::to_string)
                    }
                    _ => None,
                };
                let field = match member {
                    Some(name) => format!("{path}/{name}"),
                    None => path,
                };
                Err(SchemaViolation { field, message })
            }
        }
    }

    /// Checks a value and serialises it once: the bytes checked are the bytes sent.
    pub fn check(&self, value: &Value) -> Result<CheckedPayload, SchemaViolation> {
        self.validate(value)?;
        Ok(CheckedPayload {
            schema: self.name.clone(),
            fields: top_level_fields(value),
            bytes: serde_json::to_vec(value).expect("JSON values always serialise"),
        })
    }

    /// Checks bytes as received (e.g. a request body), keeping them unchanged.
    pub fn check_bytes(&self, bytes: &[u8]) -> Result<CheckedPayload, SchemaViolation> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| SchemaViolation {
            field: String::new(),
            message: format!("not valid JSON: {e}"),
        })?;
        self.validate(&value)?;
        Ok(CheckedPayload {
            schema: self.name.clone(),
            fields: top_level_fields(&value),
            bytes: bytes.to_vec(),
        })
    }
}

/// The field names the outbound log lists: top-level keys, with a list of
/// records (e.g. a page's `data`) standing for its records' fields.
fn top_level_fields(value: &Value) -> Vec<String> {
    let Some(object) = value.as_object() else {
        return Vec::new();
    };
    let mut fields = Vec::new();
    for (key, member) in object {
        let records: Vec<&serde_json::Map<String, Value>> = member
            .as_array()
            .map(|items| items.iter().filter_map(Value::as_object).collect())
            .unwrap_or_default();
        if records.is_empty() {
            fields.push(key.clone());
        }
        for record in records {
            for name in record.keys() {
                if !fields.contains(name) {
                    fields.push(name.clone());
                }
            }
        }
    }
    fields
}

/// Replaces `{"$ref": "sibling.json"}` with the sibling document.
fn inline_refs(
    value: &Value,
    files: &BTreeMap<&str, &Value>,
    depth: usize,
) -> Result<Value, String> {
    if depth > 8 {
        return Err("$ref nesting too deep".into());
    }
    Ok(match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let doc = files
                    .get(target.as_str())
                    .ok_or_else(|| format!("$ref to unknown file {target}"))?;
                let mut inlined = inline_refs(doc, files, depth + 1)?;
                if let Value::Object(m) = &mut inlined {
                    m.remove("$schema");
                    m.remove("$id");
                }
                inlined
            } else {
                Value::Object(
                    map.iter()
                        .map(|(k, v)| Ok((k.clone(), inline_refs(v, files, depth + 1)?)))
                        .collect::<Result<_, String>>()?,
                )
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| inline_refs(v, files, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MANIFEST: &str = r#"{"id":"x","name":"X","contract_version":"1","description":"d","scopes":[],"schemas":{"item":"item.json"}}"#;

    fn item_schema() -> Schema {
        let contract = ConnectorContract::load(MANIFEST, |_| {
            Some(r#"{"type":"object","additionalProperties":false,"properties":{"a":{"type":"integer","minimum":0}},"required":["a"]}"#.into())
        })
        .unwrap();
        Schema::compile(&contract, "item").unwrap()
    }

    #[test]
    fn the_checked_bytes_are_the_value_serialised_once() {
        let payload = item_schema().check(&json!({"a": 3})).unwrap();
        assert_eq!(payload.bytes(), br#"{"a":3}"#);
        assert_eq!(payload.fields(), ["a"]);
        assert_eq!(payload.schema(), "item");
    }

    #[test]
    fn a_list_of_records_is_listed_by_its_records_fields() {
        let page = json!({"data": [{"id": "1", "amount": 2}, {"id": "3", "amount": 4}], "has_more": false});
        assert_eq!(top_level_fields(&page), ["amount", "id", "has_more"]);
        assert_eq!(top_level_fields(&json!({"data": []})), ["data"]);
    }

    #[test]
    fn violations_name_the_field() {
        let schema = item_schema();
        assert_eq!(schema.check(&json!({"a": -1})).unwrap_err().field, "/a");
        assert_eq!(
            schema.check(&json!({"a": 1, "b": 2})).unwrap_err().field,
            "/b"
        );
        assert_eq!(schema.check(&json!({})).unwrap_err().field, "/a");
        // Found by fuzzing: a body that is not an object named the field
        // "object" (the first quoted word of the message), and a member
        // with a quote in its name was named by half of it.
        assert_eq!(schema.check(&json!(-2)).unwrap_err().field, "");
        assert_eq!(
            schema.check(&json!({"a": 1, "it's": 2})).unwrap_err().field,
            "/it's"
        );
        assert!(schema.check_bytes(b"{not json").is_err());
        assert_eq!(
            schema.check_bytes(b"{ \"a\" : 1 }").unwrap().bytes(),
            b"{ \"a\" : 1 }"
        );
    }
}
