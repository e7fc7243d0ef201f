//! `fee_body` (accounting `POST /v1/fees`), the properties of its proptests:
//! a fee within the `fee` schema is accepted as its exact bytes (compact or
//! pretty); one field wrong, missing or added is a 422 naming that field; and
//! any body at all is a fee (its exact bytes), a 400 or a 422.
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use scopegate_accounting::{fee_body, Accounting};
use scopegate_contract::{Connector, ConnectorError, Schema};
use serde_json::{json, Value};
use std::sync::OnceLock;

const FIELDS: [&str; 5] = [
    "matter_id",
    "amount_cents",
    "currency",
    "description",
    "fee_date",
];

fn fee_schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let contract = Accounting.contract().load().unwrap();
        Schema::compile(&contract, "fee").unwrap()
    })
}

/// `count` characters drawn from `alphabet`.
fn drawn(u: &mut Unstructured, alphabet: &[u8], count: usize) -> Result<String> {
    (0..count)
        .map(|_| u.choose(alphabet).map(|c| *c as char))
        .collect()
}

/// A fee the schema allows (what the proptest's `fee()` draws).
fn fee(u: &mut Unstructured) -> Result<Value> {
    let matter_id = drawn(u, b"0123456789abcdef-", 36)?;
    let amount_cents = u.int_in_range(1i64..=1_000_000_000)?;
    let currency = drawn(u, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 3)?;
    let mut description: String = String::arbitrary(u)?
        .chars()
        .filter(|c| !c.is_control())
        .take(60)
        .collect();
    if description.is_empty() {
        description.push('x');
    }
    let digits = b"0123456789";
    let fee_date = format!(
        "{}-{}-{}",
        drawn(u, digits, 4)?,
        drawn(u, digits, 2)?,
        drawn(u, digits, 2)?
    );
    Ok(
        json!({"matter_id": matter_id, "amount_cents": amount_cents, "currency": currency, "description": description, "fee_date": fee_date}),
    )
}

fn check(u: &mut Unstructured) -> Result<()> {
    match u.int_in_range(0u8..=2)? {
        0 => {
            let fee = fee(u)?;
            let bytes = if bool::arbitrary(u)? {
                serde_json::to_vec_pretty(&fee)
            } else {
                serde_json::to_vec(&fee)
            }
            .unwrap();
            let checked = fee_body(fee_schema(), &bytes).unwrap();
            assert_eq!(checked.bytes(), &bytes[..]);
        }
        1 => {
            let mut fee = fee(u)?;
            let field = *u.choose(&FIELDS)?;
            let object = fee.as_object_mut().unwrap();
            let named = match u.int_in_range(0u8..=2)? {
                0 => {
                    object.insert(field.to_string(), json!(["wrong"]));
                    field.to_string()
                }
                1 => {
                    object.remove(field);
                    field.to_string()
                }
                _ => {
                    object.insert(format!("{field}_extra"), json!(1));
                    format!("{field}_extra")
                }
            };
            match fee_body(fee_schema(), &serde_json::to_vec(&fee).unwrap()) {
                Err(ConnectorError::Invalid { field, detail }) => {
                    assert_eq!(field, named);
                    assert!(!detail.is_empty());
                }
                other => panic!("{fee}: {other:?}"),
            }
        }
        _ => {
            let body = u.bytes(u.len())?;
            match fee_body(fee_schema(), body) {
                Ok(fee) => assert_eq!(fee.bytes(), body),
                Err(
                    ConnectorError::BadRequest { field: None, .. } | ConnectorError::Invalid { .. },
                ) => {}
                Err(other) => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
