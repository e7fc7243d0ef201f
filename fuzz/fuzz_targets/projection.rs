//! Projecting rows (`core::projection`), the properties of its proptests,
//! over every table-bound schema of the repository's connectors: any row of
//! the projection's columns projects to exactly the schema's fields (reading
//! no other column, each as its storage type), and a failed check names one of
//! them; a row whose every cell meets its field's schema always passes it.
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use scopegate_core::catalogue::Catalogue;
use scopegate_core::projection::{FieldKind, Projection};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

/// One column's value as the firm database holds it.
#[derive(Debug, Clone)]
enum Cell {
    Text(String),
    Integer(i64),
}

/// RFC 3339 times have four-digit years: 0000-01-01 to 9999-12-31.
const RFC3339_MS: std::ops::RangeInclusive<i64> = -62_167_219_200_000..=253_402_300_799_999;

/// Every table-bound schema of every connector in the repository.
fn table_bound() -> &'static [Projection] {
    static PROJECTIONS: OnceLock<Vec<Projection>> = OnceLock::new();
    PROJECTIONS.get_or_init(|| {
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
    })
}

/// Up to 40 characters, none a control character.
fn text(u: &mut Unstructured) -> Result<String> {
    Ok(String::arbitrary(u)?
        .chars()
        .filter(|c| !c.is_control())
        .take(40)
        .collect())
}

/// Any value of the column's storage type.
fn any_cell(u: &mut Unstructured, kind: FieldKind) -> Result<Cell> {
    Ok(match kind {
        FieldKind::Text => Cell::Text(text(u)?),
        _ => Cell::Integer(i64::arbitrary(u)?),
    })
}

/// A value meeting what its field's schema asks of it; a pattern's text is
/// drawn by proptest's regex strategy, fed the fuzzer's bytes.
fn well_formed_cell(u: &mut Unstructured, spec: &Value, kind: FieldKind) -> Result<Cell> {
    Ok(match kind {
        FieldKind::UnixMsAsRfc3339 => Cell::Integer(u.int_in_range(RFC3339_MS)?),
        FieldKind::Integer | FieldKind::Boolean => {
            let min = spec["minimum"].as_i64().unwrap_or(i64::MIN);
            let max = spec["maximum"].as_i64().unwrap_or(i64::MAX);
            Cell::Integer(u.int_in_range(min..=max)?)
        }
        FieldKind::Text => {
            if let Some(values) = spec["enum"].as_array() {
                let values: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
                return Ok(Cell::Text(u.choose(&values)?.to_string()));
            }
            match spec["pattern"].as_str() {
                Some(pattern) => {
                    let pattern = pattern.trim_start_matches('^').trim_end_matches('$');
                    let bytes = <&[u8]>::arbitrary(u)?;
                    let rng = TestRng::from_seed(RngAlgorithm::PassThrough, bytes);
                    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
                    let tree = proptest::string::string_regex(pattern)
                        .unwrap()
                        .new_tree(&mut runner)
                        .unwrap();
                    Cell::Text(tree.current())
                }
                None => Cell::Text(text(u)?),
            }
        }
    })
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

fn check(u: &mut Unstructured) -> Result<()> {
    let projection = u.choose(table_bound())?;
    let well_formed = bool::arbitrary(u)?;
    let mut row = BTreeMap::new();
    for field in &projection.fields {
        let column = projection.result_name(field).expect("table-bound");
        let spec = &projection.document["properties"][&field.name];
        let cell = if well_formed {
            well_formed_cell(u, spec, field.kind)?
        } else {
            any_cell(u, field.kind)?
        };
        row.insert(column.to_string(), cell);
    }
    let value = project(projection, &row).unwrap();
    if well_formed {
        assert!(
            projection.check(&value).is_ok(),
            "{}: {} fails {:?}",
            projection.name,
            value,
            projection.check(&value)
        );
    } else {
        let properties: BTreeSet<&String> = projection.document["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        let keys: BTreeSet<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys, properties, "{}", projection.name);
        // A failed check is a value the schema does not allow, named by
        // its field; never a missing or extra one.
        if let Err(violation) = projection.check(&value) {
            let field = violation.field.trim_start_matches('/').to_string();
            assert!(
                properties.contains(&field),
                "{} {:?}",
                projection.name,
                violation
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
