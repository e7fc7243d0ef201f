//! `POST /v1/fees`: a fee for one of the firm's matters, once per
//! `Idempotency-Key`. The body is checked against the `fee` schema before
//! anything else; every answer that depends on the firm's data (the fee
//! written, its replay, "no such matter", a reused key) is logged as the
//! exact bytes returned.

use scopegate_contract::axum::body::Bytes;
use scopegate_contract::axum::extract::State;
use scopegate_contract::axum::http::{HeaderMap, HeaderName, StatusCode};
use scopegate_contract::{Capabilities, ConnectorError, FeeOutcome, LoggedBody, Reply, Vendor};

const ROUTE: &str = "/v1/fees";

/// Posts a fee to one of the firm's matters; a retried `Idempotency-Key` returns the original fee.
#[utoipa::path(post, path = "/v1/fees", tag = "accounting",
    params(("Idempotency-Key" = String, Header, description = "unique per fee; a retry with the same key and body returns the original result")),
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
    serde_json::from_slice::<serde_json::Value>(&body).map_err(|e| {
        ConnectorError::bad_request(None, format!("the body is not valid JSON: {e}"))
    })?;
    let fee = caps.schema("fee")?.check_bytes(&body)?;
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
            let ids = fee_ids(&result);
            caps.sender()
                .respond(grant, reply(StatusCode::CREATED, ids), result)
                .await
        }
        FeeOutcome::Replayed(result) => {
            let ids = fee_ids(&result);
            Ok(caps
                .sender()
                .respond(grant, reply(StatusCode::OK, ids), result)
                .await?
                .with_header(HeaderName::from_static("idempotent-replayed"), "true"))
        }
        FeeOutcome::UnknownMatter => {
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

/// The fee and transaction ids a result is about.
fn fee_ids(result: &scopegate_contract::CheckedPayload) -> Vec<String> {
    let value: serde_json::Value = result.decode().unwrap_or_default();
    ["id", "matter_id", "transaction_id"]
        .iter()
        .filter_map(|k| value[*k].as_str().map(str::to_string))
        .collect()
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ConnectorError> {
    let invalid = |detail: &str| ConnectorError::bad_request(Some("Idempotency-Key"), detail);
    let raw = headers
        .get("idempotency-key")
        .ok_or_else(|| invalid("the Idempotency-Key header is required"))?;
    raw.to_str()
        .ok()
        .map(|k| k.trim().trim_matches('"').to_string())
        .filter(|k| (1..=255).contains(&k.len()) && k.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| invalid("Idempotency-Key must be 1-255 visible ASCII characters"))
}
