//! `POST /v1/fees`: a fee for one of the firm's matters, once per
//! `Idempotency-Key`. The body is checked against the `fee` schema before
//! anything else; every answer that depends on the firm's data (the fee
//! written, its replay, "no such matter", a reused key) is logged as the
//! exact bytes returned. The vendor names matters, and is shown fees and
//! transactions, by the ids its grant sees (see `PseudonymousIds`); the
//! firm database and the outbound log's record index get the real ones.

use scopegate_contract::axum::body::Bytes;
use scopegate_contract::axum::extract::State;
use scopegate_contract::axum::http::{HeaderMap, HeaderName, StatusCode};
use scopegate_contract::{
    Capabilities, CheckedPayload, ConnectorError, FeeOutcome, GrantIdMap, LoggedBody, Reply,
    Schema, Vendor,
};

const ROUTE: &str = "/v1/fees";

/// Posts a fee to one of the firm's matters; a retried `Idempotency-Key` returns the original fee.
#[utoipa::path(post, path = "/v1/fees", tag = "accounting",
    params(("Idempotency-Key" = inline(IdempotencyKeyParam), Header, description = "unique per fee: 1-255 visible ASCII characters other than `\"`, optionally in double quotes (a structured-header string); a retry with the same key and body returns the original result")),
    request_body(content = ref("#/components/schemas/Fee"), content_type = "application/json"),
    responses((status = 201, description = "Fee posted", body = ref("#/components/schemas/FeeResult")),
              (status = 200, description = "Replay of an earlier post with this key", body = ref("#/components/schemas/FeeResult")),
              (status = 400, description = "Missing Idempotency-Key or malformed JSON", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
              (status = 422, description = "A field is invalid (named in `field`)", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
              (status = 401, description = "Missing, invalid, expired or revoked token"),
              (status = 403, description = "Token lacks fees:write")),
    security(("bearer" = ["fees:write"])))]
pub async fn post_fee(
    State(caps): State<Capabilities>,
    vendor: Vendor,
    headers: HeaderMap,
    body: Bytes,
) -> Result<LoggedBody, ConnectorError> {
    let grant = vendor.require("fees:write")?;
    let key = idempotency_key(&headers)?;
    let fee = fee_body(caps.schema("fee")?, &body)?;
    let ids = caps.ids().for_grant(grant).await?;
    let fee = revealed_fee(caps.schema("fee")?, ids.as_ref(), fee)?;
    let outcome = caps
        .inbound()
        .post_fee(grant, ROUTE, fee, &key, caps.schema("fee_result")?)
        .await?;
    let reply = |status, record_ids| Reply {
        method: "POST",
        route: ROUTE,
        status,
        record_ids,
    };
    match outcome {
        FeeOutcome::Created(result) => {
            let record_ids = fee_ids(&result);
            let shown = disguised_result(caps.schema("fee_result")?, ids.as_ref(), result)?;
            caps.sender()
                .respond(grant, reply(StatusCode::CREATED, record_ids), shown)
                .await
        }
        FeeOutcome::Replayed(result) => {
            let record_ids = fee_ids(&result);
            let shown = disguised_result(caps.schema("fee_result")?, ids.as_ref(), result)?;
            Ok(caps
                .sender()
                .respond(grant, reply(StatusCode::OK, record_ids), shown)
                .await?
                .with_header(HeaderName::from_static("idempotent-replayed"), "true"))
        }
        FeeOutcome::UnknownMatter => {
            // No record has it: the log names the id as the vendor sent it.
            let matter = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["matter_id"].as_str().map(str::to_string))
                .unwrap_or_default();
            caps.sender()
                .respond_problem(
                    grant,
                    reply(StatusCode::UNPROCESSABLE_ENTITY, vec![matter]),
                    "matter_id",
                    "no matter with this id exists in this firm",
                )
                .await
        }
        FeeOutcome::KeyReused => {
            caps.sender()
                .respond_problem(
                    grant,
                    reply(StatusCode::UNPROCESSABLE_ENTITY, Vec::new()),
                    "Idempotency-Key",
                    "this Idempotency-Key was already used with a different body",
                )
                .await
        }
    }
}

/// Reads a request body as a fee: 400 unless it is JSON, 422 naming the
/// field unless it matches the `fee` schema; the exact bytes are kept.
pub fn fee_body(schema: &Schema, body: &[u8]) -> Result<CheckedPayload, ConnectorError> {
    serde_json::from_slice::<serde_json::Value>(body).map_err(|e| {
        ConnectorError::bad_request(None, format!("the body is not valid JSON: {e}"))
    })?;
    Ok(schema.check_bytes(body)?)
}

/// The fee with its `matter_id` mapped back to the firm's id (a value that
/// is not an id of this grant's shape goes on as it is, to be found in no
/// firm).
fn revealed_fee(
    schema: &Schema,
    ids: &dyn GrantIdMap,
    fee: CheckedPayload,
) -> Result<CheckedPayload, ConnectorError> {
    let mut value: serde_json::Value = fee
        .decode()
        .map_err(|e| ConnectorError::Internal(e.to_string()))?;
    let shown = value["matter_id"].as_str().unwrap_or_default().to_string();
    let real = ids.reveal(&shown).unwrap_or(shown);
    value["matter_id"] = serde_json::Value::String(real);
    Ok(schema.check(&value)?)
}

/// The stored fee as this grant sees it, checked against the result schema again.
fn disguised_result(
    schema: &Schema,
    ids: &dyn GrantIdMap,
    result: CheckedPayload,
) -> Result<CheckedPayload, ConnectorError> {
    let mut value: serde_json::Value = result
        .decode()
        .map_err(|e| ConnectorError::Internal(e.to_string()))?;
    crate::ids::disguise_fields(ids, &mut value, &["id", "matter_id", "transaction_id"])?;
    schema
        .check(&value)
        .map_err(|v| ConnectorError::Internal(format!("fee result failed its schema: {v}")))
}

/// The fee and transaction ids a result is about (the firm's own ids).
fn fee_ids(result: &CheckedPayload) -> Vec<String> {
    let value: serde_json::Value = result.decode().unwrap_or_default();
    ["id", "matter_id", "transaction_id"]
        .iter()
        .filter_map(|k| value[*k].as_str().map(str::to_string))
        .collect()
}

/// Exactly the `Idempotency-Key` values [`idempotency_key`] accepts: 1-255
/// visible ASCII characters other than `"`, bare or in double quotes.
const IDEMPOTENCY_KEY_PATTERN: &str = r#"^(?:[!#-~]{1,255}|"[!#-~]{1,255}")$"#;

/// The `Idempotency-Key` header as the OpenAPI document describes it.
pub struct IdempotencyKeyParam;

impl utoipa::PartialSchema for IdempotencyKeyParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(IDEMPOTENCY_KEY_PATTERN))
            .into()
    }
}

impl utoipa::ToSchema for IdempotencyKeyParam {}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ConnectorError> {
    let invalid = |detail: &str| ConnectorError::bad_request(Some("Idempotency-Key"), detail);
    let raw = headers
        .get("idempotency-key")
        .ok_or_else(|| invalid("the Idempotency-Key header is required"))?;
    raw.to_str()
        .ok()
        .map(|k| {
            k.strip_prefix('"')
                .and_then(|quoted| quoted.strip_suffix('"'))
                .unwrap_or(k)
        })
        .filter(|k| {
            (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic() && b != b'"')
        })
        .map(str::to_string)
        .ok_or_else(|| {
            invalid("Idempotency-Key must be 1-255 visible ASCII characters other than '\"', optionally in double quotes")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(value: &[u8]) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "idempotency-key",
            scopegate_contract::axum::http::HeaderValue::from_bytes(value).unwrap(),
        );
        idempotency_key(&headers).ok()
    }

    #[test]
    fn the_documented_pattern_is_exactly_what_is_accepted() {
        let pattern = regex::Regex::new(IDEMPOTENCY_KEY_PATTERN).unwrap();
        let long = "k".repeat(255);
        let too_long = "k".repeat(256);
        let quoted_long = format!("\"{long}\"");
        let samples: Vec<&[u8]> = vec![
            b"fee-1",
            b"\"fee-1\"",
            b"a\"b",
            b"\"",
            b"\"\"",
            b"\"a",
            b"a\"",
            b"\"\"a\"\"",
            b"",
            b"a b",
            b"caf\xc3\xa9",
            b"~!#$%&'()*+,-./:;<=>?@[\\]^_`{|}",
            long.as_bytes(),
            too_long.as_bytes(),
            quoted_long.as_bytes(),
            b"\t",
        ];
        for sample in samples {
            let text = String::from_utf8_lossy(sample);
            assert_eq!(
                pattern.is_match(&text) && std::str::from_utf8(sample).is_ok(),
                key(sample).is_some(),
                "{text:?}"
            );
        }
        // Quoted and bare are the same key.
        assert_eq!(key(b"\"fee-1\""), key(b"fee-1"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use scopegate_contract::Connector;

    fn fee_schema() -> Schema {
        let contract = crate::Accounting.contract().load().unwrap();
        Schema::compile(&contract, "fee").unwrap()
    }

    const FIELDS: [&str; 5] = [
        "matter_id",
        "amount_cents",
        "currency",
        "description",
        "fee_date",
    ];

    fn fee() -> impl Strategy<Value = serde_json::Value> {
        (
            "[0-9a-f-]{36}",
            1i64..=1_000_000_000,
            "[A-Z]{3}",
            "\\PC{1,60}",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        )
            .prop_map(|(matter_id, amount_cents, currency, description, fee_date)| {
                serde_json::json!({"matter_id": matter_id, "amount_cents": amount_cents, "currency": currency, "description": description, "fee_date": fee_date})
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_fee_within_the_schema_is_accepted_as_its_exact_bytes(fee in fee(), pretty in any::<bool>()) {
            let bytes = if pretty { serde_json::to_vec_pretty(&fee) } else { serde_json::to_vec(&fee) }.unwrap();
            let checked = fee_body(&fee_schema(), &bytes).unwrap();
            prop_assert_eq!(checked.bytes(), &bytes[..]);
        }

        #[test]
        fn one_field_wrong_missing_or_added_is_a_422_naming_it(
            fee in fee(),
            field in prop::sample::select(FIELDS.to_vec()),
            change in 0..3,
        ) {
            let mut fee = fee;
            let object = fee.as_object_mut().unwrap();
            let named = match change {
                0 => { object.insert(field.to_string(), serde_json::json!(["wrong"])); field.to_string() }
                1 => { object.remove(field); field.to_string() }
                _ => { object.insert(format!("{field}_extra"), serde_json::json!(1)); format!("{field}_extra") }
            };
            let refused = fee_body(&fee_schema(), &serde_json::to_vec(&fee).unwrap()).unwrap_err();
            match refused {
                ConnectorError::Invalid { field, detail } => {
                    prop_assert_eq!(field, named);
                    prop_assert!(!detail.is_empty());
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }

        #[test]
        fn any_body_is_a_fee_a_400_or_a_422(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            match fee_body(&fee_schema(), &body) {
                Ok(fee) => prop_assert_eq!(fee.bytes(), &body[..]),
                Err(ConnectorError::BadRequest { field: None, .. } | ConnectorError::Invalid { .. }) => {}
                Err(other) => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
