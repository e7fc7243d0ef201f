//! Schema-driven projections. A connector's JSON Schema says which fields it
//! receives; for schemas bound to a firm table (`x-source-table`) each
//! property names its column (`x-column`), and those columns are the only ones
//! the gateway ever selects. Every payload, outgoing or incoming, is checked
//! against its schema before it moves.

use scopegate_contract::{ConnectorContract, Schema, SchemaViolation};
use serde_json::{Map, Value};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// How a column's value becomes a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Integer,
    Boolean,
    /// Unix milliseconds stored, RFC 3339 sent.
    UnixMsAsRfc3339,
}

/// One field a connector receives.
#[derive(Debug, Clone)]
pub struct ProjectedField {
    pub name: String,
    /// The firm-database column it is read from (`None` for schemas not bound to a table).
    pub column: Option<String>,
    pub kind: FieldKind,
    /// Plain-language description, from the schema: what settings shows a firm admin.
    pub description: String,
}

/// A compiled schema: its fields, its source table and its validator.
#[derive(Clone)]
pub struct Projection {
    pub name: String,
    pub title: String,
    pub source_table: Option<String>,
    /// A declared join (`x-join`): `(table, its column, source column it matches)`.
    pub join: Option<(String, String, String)>,
    pub fields: Vec<ProjectedField>,
    /// The schema with sibling `$ref`s inlined (what the OpenAPI document embeds).
    pub document: Value,
    schema: Schema,
}

impl std::fmt::Debug for Projection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projection")
            .field("name", &self.name)
            .field("fields", &self.fields)
            .finish()
    }
}

impl Projection {
    /// Compiles schema `name` of a connector contract.
    pub fn compile(contract: &ConnectorContract, name: &str) -> Result<Self, String> {
        let schema = Schema::compile(contract, name)?;
        let document = schema.document().clone();
        let source_table = document
            .get("x-source-table")
            .and_then(Value::as_str)
            .map(str::to_string);
        let join = join_of(&document, source_table.as_deref())?;
        let fields = fields_of(&document, source_table.as_deref(), join.as_ref())?;
        Ok(Self {
            name: name.to_string(),
            title: document
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or(name)
                .to_string(),
            source_table,
            join,
            fields,
            document,
            schema,
        })
    }

    /// Checks a payload; the first violation names the field.
    pub fn check(&self, payload: &Value) -> Result<(), SchemaViolation> {
        self.schema.validate(payload)
    }

    /// The compiled schema, which makes [`scopegate_contract::CheckedPayload`]s.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The column list for a `SELECT` (identifiers checked against the firm-data contract).
    /// With a join, columns are qualified and named after their property.
    pub fn select_list(&self) -> String {
        match &self.join {
            None => self
                .fields
                .iter()
                .filter_map(|f| f.column.as_deref())
                .collect::<Vec<_>>()
                .join(", "),
            Some(_) => self
                .fields
                .iter()
                .filter_map(|f| f.column.as_deref().map(|c| (c, &f.name)))
                .map(|(c, name)| {
                    if c.contains('.') {
                        format!("{c} AS {name}")
                    } else {
                        format!("{}.{c} AS {name}", self.table())
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// The `FROM` clause: the source table and its declared join, if any.
    pub fn from_clause(&self) -> String {
        match &self.join {
            None => self.table().to_string(),
            Some((table, column, on)) => format!(
                "{source} JOIN {table} ON {table}.{column} = {source}.{on}",
                source = self.table()
            ),
        }
    }

    /// Name under which a field's column comes back from `select_list`
    /// (public for the fuzz targets).
    #[doc(hidden)]
    pub fn result_name<'a>(&self, field: &'a ProjectedField) -> Option<&'a str> {
        match &self.join {
            None => field.column.as_deref(),
            Some(_) => field.column.as_ref().map(|_| field.name.as_str()),
        }
    }

    /// The table this projection reads, if it is bound to one.
    pub fn table(&self) -> &str {
        self.source_table
            .as_deref()
            .expect("projection bound to a table")
    }

    /// Builds the JSON object for one row, holding exactly the schema's fields.
    pub fn row_to_json(&self, row: &sqlx::any::AnyRow) -> Result<Value, sqlx::Error> {
        self.project(
            |column| row.try_get::<String, _>(column),
            |column| row.try_get::<i64, _>(column),
        )
    }

    /// Builds the JSON object for one row from its columns, read by name as
    /// text or as an integer (integers, booleans and Unix-millisecond times
    /// are stored as integers): exactly the schema's fields, each converted
    /// by its [`FieldKind`]. Only the columns of [`Self::select_list`] are read.
    pub fn project<E>(
        &self,
        mut text: impl FnMut(&str) -> Result<String, E>,
        mut integer: impl FnMut(&str) -> Result<i64, E>,
    ) -> Result<Value, E> {
        let mut object = Map::new();
        for field in &self.fields {
            let Some(column) = self.result_name(field) else {
                continue;
            };
            let value = match field.kind {
                FieldKind::Text => Value::String(text(column)?),
                FieldKind::Integer => Value::from(integer(column)?),
                FieldKind::Boolean => Value::Bool(integer(column)? != 0),
                FieldKind::UnixMsAsRfc3339 => {
                    Value::String(crate::clock::rfc3339(integer(column)?))
                }
            };
            object.insert(field.name.clone(), value);
        }
        Ok(Value::Object(object))
    }

    /// Field names, for the outbound log.
    pub fn field_names(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.name.clone()).collect()
    }
}

/// Reads `x-join: {"table", "column", "on"}`, checking both columns exist.
fn join_of(
    document: &Value,
    table: Option<&str>,
) -> Result<Option<(String, String, String)>, String> {
    let Some(join) = document.get("x-join") else {
        return Ok(None);
    };
    let source = table.ok_or("x-join needs x-source-table")?;
    let text = |key: &str| {
        join.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("x-join needs {key}"))
    };
    let (joined, column, on) = (text("table")?, text("column")?, text("on")?);
    let tables = firm_data_columns();
    let has = |t: &str, c: &str| tables.get(t).is_some_and(|cols| cols.contains(c));
    if !has(&joined, &column) || !has(source, &on) {
        return Err(format!(
            "x-join {joined}.{column} = {source}.{on} names a column that does not exist"
        ));
    }
    Ok(Some((joined, column, on)))
}

fn fields_of(
    document: &Value,
    table: Option<&str>,
    join: Option<&(String, String, String)>,
) -> Result<Vec<ProjectedField>, String> {
    let properties = document
        .get("properties")
        .and_then(Value::as_object)
        .ok_or("schema has no properties")?;
    let known_columns = match table {
        Some(t) => Some(
            firm_data_columns()
                .get(t)
                .ok_or_else(|| format!("x-source-table {t} is not a firm-data table"))?,
        ),
        None => None,
    };
    let mut fields = Vec::new();
    for (name, spec) in properties {
        // Property names become SQL aliases when a join is declared.
        let plain = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if table.is_some() && !plain {
            return Err(format!(
                "property {name:?} of a table-bound schema must be a lowercase identifier"
            ));
        }
        let column = spec
            .get("x-column")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(known) = known_columns {
            let c = column
                .as_deref()
                .ok_or_else(|| format!("property {name} has no x-column"))?;
            let known_here = match c.split_once('.') {
                Some((t, col)) => {
                    join.is_some_and(|(j, _, _)| j == t)
                        && firm_data_columns()
                            .get(t)
                            .is_some_and(|cols| cols.contains(col))
                }
                None => known.contains(c),
            };
            if !known_here {
                return Err(format!(
                    "x-column {c} of property {name} is not a column of {}",
                    table.unwrap_or_default()
                ));
            }
        }
        let kind = match (
            spec.get("x-column-type").and_then(Value::as_str),
            spec.get("type").and_then(Value::as_str),
        ) {
            (Some("unix-ms"), _) => FieldKind::UnixMsAsRfc3339,
            (_, Some("integer")) => FieldKind::Integer,
            (_, Some("boolean")) => FieldKind::Boolean,
            _ => FieldKind::Text,
        };
        let description = spec
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or(name)
            .to_string();
        fields.push(ProjectedField {
            name: name.clone(),
            column,
            kind,
            description,
        });
    }
    Ok(fields)
}

/// Table -> columns of the firm-data contract (`schemas/firm-data/sqlite.sql`).
pub fn firm_data_columns() -> &'static BTreeMap<String, BTreeSet<String>> {
    static COLUMNS: OnceLock<BTreeMap<String, BTreeSet<String>>> = OnceLock::new();
    COLUMNS.get_or_init(|| parse_tables(crate::tenancy::FIRM_SCHEMA_SQLITE))
}

fn parse_tables(sql: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut tables = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in sql.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
            let name = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            tables.insert(name.clone(), BTreeSet::new());
            current = Some(name);
        } else if line.starts_with(')') {
            current = None;
        } else if let Some(table) = &current {
            let word = line.split_whitespace().next().unwrap_or_default();
            if !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                tables
                    .get_mut(table)
                    .expect("table")
                    .insert(word.to_string());
            }
        }
    }
    tables
}

#[cfg(test)]
mod tests {
    use crate::catalogue::repository_catalogue;
    use serde_json::json;

    #[test]
    fn transaction_projection_reads_only_its_columns() {
        let accounting = repository_catalogue().require("accounting").unwrap();
        let p = accounting.projection("transaction");
        assert_eq!(p.table(), "accounting_transactions");
        assert!(!p.select_list().contains("internal_note"));
        assert!(p.select_list().contains("amount_cents"));
    }

    #[test]
    fn fee_violations_name_the_field() {
        let accounting = repository_catalogue().require("accounting").unwrap();
        let fee = accounting.projection("fee");
        let ok = json!({"matter_id": "00000000-0000-0000-0000-000000000000", "amount_cents": 100, "currency": "ZAR", "description": "x", "fee_date": "2026-01-02"});
        assert!(fee.check(&ok).is_ok());
        let mut extra = ok.clone();
        extra["client_email"] = json!("a@b.c");
        assert_eq!(fee.check(&extra).unwrap_err().field, "/client_email");
        let mut negative = ok.clone();
        negative["amount_cents"] = json!(-5);
        assert_eq!(fee.check(&negative).unwrap_err().field, "/amount_cents");
        let mut wrong_type = ok;
        wrong_type["amount_cents"] = json!("100");
        assert_eq!(fee.check(&wrong_type).unwrap_err().field, "/amount_cents");
    }

    #[test]
    fn diary_projection_selects_only_its_columns_through_its_join() {
        let calendar = repository_catalogue().require("google-calendar").unwrap();
        let p = calendar.projection("diary_entry");
        assert_eq!(
            p.from_clause(),
            "diary_entries JOIN matters ON matters.id = diary_entries.matter_id"
        );
        let select = p.select_list();
        assert!(select.contains("matters.name AS summary"), "{select}");
        for secret in [
            "location",
            "private_notes",
            "client_id",
            "matters.description",
            "number",
        ] {
            assert!(!select.contains(secret), "{secret} in {select}");
        }
        let event = calendar.projection("event");
        let ok = json!({"id": "abcde12345", "summary": "Estate late Botha", "description": "Court appearance",
            "start": {"dateTime": "2026-01-02T09:00:00Z", "timeZone": "UTC"}, "end": {"dateTime": "2026-01-02T10:00:00Z", "timeZone": "UTC"}});
        assert!(event.check(&ok).is_ok());
        let mut leak = ok.clone();
        leak["location"] = json!("Boardroom 2");
        assert_eq!(event.check(&leak).unwrap_err().field, "/location");
        let mut attendee = ok.clone();
        attendee["start"]["attendees"] = json!([]);
        assert!(event.check(&attendee).is_err());
        let mut bad_id = ok;
        bad_id["id"] = json!("5b0f0c4e-uuid");
        assert!(event.check(&bad_id).is_err());
    }

    #[test]
    fn joins_naming_unknown_columns_are_refused() {
        let manifest = r#"{"id":"x","name":"X","contract_version":"1","description":"d","schemas":{"item":"item.json"}}"#;
        let contract = scopegate_contract::ConnectorContract::load(manifest, |_| {
            Some(r#"{"type":"object","additionalProperties":false,"x-source-table":"diary_entries","x-join":{"table":"clients","column":"id","on":"matter_id"},"properties":{"n":{"type":"string","x-column":"clients.secret_column"}}}"#.into())
        })
        .unwrap();
        let err = super::Projection::compile(&contract, "item").unwrap_err();
        assert!(err.contains("clients.secret_column"), "{err}");
    }

    #[test]
    fn page_schemas_inline_their_items() {
        let accounting = repository_catalogue().require("accounting").unwrap();
        let page = accounting.projection("transactions_page");
        let bad = json!({"data": [{"id": "x", "internal_note": "secret"}], "next_cursor": "c", "has_more": false});
        assert!(page.check(&bad).is_err());
    }

    mod properties {
        use super::super::{FieldKind, Projection};
        use crate::catalogue::Catalogue;
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        use serde_json::Value;
        use std::collections::{BTreeMap, BTreeSet};
        use std::path::Path;

        /// One column's value as the firm database holds it.
        #[derive(Debug, Clone)]
        enum Cell {
            Text(String),
            Integer(i64),
        }

        /// Every table-bound schema of every connector in the repository.
        fn table_bound() -> Vec<Projection> {
            let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
            let folders: Vec<_> = ["accounting", "google-calendar", "matter-webhook"]
                .iter()
                .map(|c| schemas.join(c))
                .collect();
            let folders: Vec<&Path> = folders.iter().map(|p| p.as_path()).collect();
            let catalogue = Catalogue::from_folders(&folders).unwrap();
            let projections: Vec<Projection> = catalogue
                .all()
                .flat_map(|c| c.projections.values().cloned())
                .filter(|p| p.source_table.is_some())
                .collect();
            assert!(projections.len() >= 4, "{projections:?}");
            projections
        }

        /// Any value of the column's storage type.
        fn any_cell(kind: FieldKind) -> BoxedStrategy<Cell> {
            match kind {
                FieldKind::Text => "\\PC{0,40}".prop_map(Cell::Text).boxed(),
                _ => any::<i64>().prop_map(Cell::Integer).boxed(),
            }
        }

        /// RFC 3339 times have four-digit years: 0000-01-01 to 9999-12-31.
        const RFC3339_MS: std::ops::RangeInclusive<i64> = -62_167_219_200_000..=253_402_300_799_999;

        /// A value meeting what its field's schema asks of it.
        fn well_formed_cell(spec: &Value, kind: FieldKind) -> BoxedStrategy<Cell> {
            match kind {
                FieldKind::UnixMsAsRfc3339 => RFC3339_MS.prop_map(Cell::Integer).boxed(),
                FieldKind::Integer | FieldKind::Boolean => {
                    let min = spec["minimum"].as_i64().unwrap_or(i64::MIN);
                    let max = spec["maximum"].as_i64().unwrap_or(i64::MAX);
                    (min..=max).prop_map(Cell::Integer).boxed()
                }
                FieldKind::Text => {
                    if let Some(values) = spec["enum"].as_array() {
                        let values: Vec<String> = values
                            .iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect();
                        return prop::sample::select(values).prop_map(Cell::Text).boxed();
                    }
                    match spec["pattern"].as_str() {
                        Some(pattern) => {
                            let pattern = pattern.trim_start_matches('^').trim_end_matches('$');
                            proptest::string::string_regex(pattern)
                                .unwrap()
                                .prop_map(Cell::Text)
                                .boxed()
                        }
                        None => "\\PC{0,40}".prop_map(Cell::Text).boxed(),
                    }
                }
            }
        }

        /// Rows of a projection's columns, each cell drawn by `cell`.
        fn rows(
            projection: &Projection,
            cell: impl Fn(&Value, FieldKind) -> BoxedStrategy<Cell>,
        ) -> BoxedStrategy<BTreeMap<String, Cell>> {
            let columns: Vec<(String, BoxedStrategy<Cell>)> = projection
                .fields
                .iter()
                .map(|f| {
                    let column = projection.result_name(f).expect("table-bound").to_string();
                    (
                        column,
                        cell(&projection.document["properties"][&f.name], f.kind),
                    )
                })
                .collect();
            let (names, cells): (Vec<String>, Vec<BoxedStrategy<Cell>>) =
                columns.into_iter().unzip();
            cells
                .prop_map(move |cells| names.iter().cloned().zip(cells).collect())
                .boxed()
        }

        /// Projects a row, failing on any column outside it or of the wrong type.
        fn project(projection: &Projection, row: &BTreeMap<String, Cell>) -> Result<Value, String> {
            projection.project(
                |column| match row.get(column) {
                    Some(Cell::Text(text)) => Ok(text.clone()),
                    other => Err(format!("column {column} read as text: {other:?}")),
                },
                |column| match row.get(column) {
                    Some(Cell::Integer(n)) => Ok(*n),
                    other => Err(format!("column {column} read as an integer: {other:?}")),
                },
            )
        }

        fn runner() -> TestRunner {
            TestRunner::new(Config {
                cases: 128,
                failure_persistence: None,
                ..Config::default()
            })
        }

        #[test]
        fn any_row_projects_to_exactly_the_schemas_fields() {
            for projection in table_bound() {
                let properties: BTreeSet<String> = projection.document["properties"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect();
                runner()
                    .run(&rows(&projection, |_, kind| any_cell(kind)), |row| {
                        let value = project(&projection, &row).map_err(TestCaseError::fail)?;
                        let keys: BTreeSet<String> =
                            value.as_object().unwrap().keys().cloned().collect();
                        prop_assert_eq!(&keys, &properties, "{}", projection.name);
                        // A failed check is a value the schema does not
                        // allow, named by its field; never a missing or extra one.
                        if let Err(violation) = projection.check(&value) {
                            let field = violation.field.trim_start_matches('/');
                            prop_assert!(
                                properties.contains(field),
                                "{} {:?}",
                                projection.name,
                                violation
                            );
                        }
                        Ok(())
                    })
                    .unwrap();
            }
        }

        #[test]
        fn well_formed_rows_always_pass_their_schema() {
            for projection in table_bound() {
                runner()
                    .run(&rows(&projection, well_formed_cell), |row| {
                        let value = project(&projection, &row).map_err(TestCaseError::fail)?;
                        prop_assert!(
                            projection.check(&value).is_ok(),
                            "{}: {} fails {:?}",
                            projection.name,
                            value,
                            projection.check(&value)
                        );
                        Ok(())
                    })
                    .unwrap();
            }
        }

        #[test]
        fn a_time_outside_rfc_3339_years_is_refused_not_sent_malformed() {
            let accounting = crate::catalogue::repository_catalogue()
                .require("accounting")
                .unwrap();
            let transaction = accounting.projection("transaction");
            for ms in [
                i64::MIN,
                *RFC3339_MS.start() - 1,
                *RFC3339_MS.end() + 1,
                i64::MAX,
            ] {
                let row = [
                    ("id", Cell::Text("t".into())),
                    ("account", Cell::Text("trust".into())),
                    ("amount_cents", Cell::Integer(1)),
                    ("currency", Cell::Text("ZAR".into())),
                    ("matter_id", Cell::Text("m".into())),
                    ("reference", Cell::Text("r".into())),
                    ("posted_at", Cell::Integer(ms)),
                    ("change_seq", Cell::Integer(1)),
                ]
                .into_iter()
                .map(|(c, v)| (c.to_string(), v))
                .collect();
                let value = project(transaction, &row).unwrap();
                assert_eq!(
                    transaction.check(&value).unwrap_err().field,
                    "/posted_at",
                    "{value}"
                );
            }
        }
    }
}
