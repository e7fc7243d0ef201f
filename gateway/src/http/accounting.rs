//! The accounting connector's API: what a bookkeeper of the firm sees. Poll
//! transactions and matter references in change order, and post fees with an
//! `Idempotency-Key`. Every response is projected from the firm's database by
//! the connector's schemas, checked, and logged before it is sent.

use super::bearer::Authorized;
use super::problem::Problem;
use crate::app::AppState;
use crate::outbound_log::{Direction, NewSend};
use crate::projection::Projection;
use crate::tenancy::{next_change_seqs, FirmDb};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;

pub const CONNECTOR: &str = "accounting";
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 500;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/transactions", get(transactions))
        .route("/v1/matters", get(matters))
        .route("/v1/fees", post(post_fee))
}

/// Transactions changed after `cursor`, oldest change first.
#[utoipa::path(get, path = "/v1/transactions", tag = "accounting",
    params(("cursor" = Option<String>, Query, description = "next_cursor of the previous page; omit to start from the beginning"),
           ("limit" = Option<i64>, Query, description = "page size, 1-500, default 100")),
    responses((status = 200, description = "A page of transactions", body = ref("#/components/schemas/TransactionsPage")),
              (status = 400, description = "Malformed cursor or limit", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
              (status = 401, description = "Missing, invalid, expired or revoked token"),
              (status = 403, description = "Token lacks transactions:read"),
              (status = 429, description = "Throttled; see Retry-After")),
    security(("bearer" = ["transactions:read"])))]
pub async fn transactions(
    State(state): State<AppState>,
    auth: Authorized,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    auth.require(CONNECTOR, "transactions:read")?;
    poll(
        &state,
        &auth,
        query.as_deref(),
        "transaction",
        "transactions_page",
        "/v1/transactions",
    )
    .await
}

/// Matter references (id, number, name) changed after `cursor`.
#[utoipa::path(get, path = "/v1/matters", tag = "accounting",
    params(("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
           ("limit" = Option<i64>, Query, description = "page size, 1-500, default 100")),
    responses((status = 200, description = "A page of matter references", body = ref("#/components/schemas/MattersPage")),
              (status = 400, description = "Malformed cursor or limit", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
              (status = 401, description = "Missing, invalid, expired or revoked token"),
              (status = 403, description = "Token lacks transactions:read")),
    security(("bearer" = ["transactions:read"])))]
pub async fn matters(
    State(state): State<AppState>,
    auth: Authorized,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    auth.require(CONNECTOR, "transactions:read")?;
    poll(
        &state,
        &auth,
        query.as_deref(),
        "matter_ref",
        "matters_page",
        "/v1/matters",
    )
    .await
}

/// Parses `cursor` and `limit`; anything else in the query is refused.
pub fn page_params(query: Option<&str>) -> Result<(i64, i64), Problem> {
    let mut after = 0;
    let mut limit = DEFAULT_LIMIT;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "cursor" => {
                after = decode_cursor(&value).ok_or_else(|| {
                    Problem::bad_request(
                        "cursor is not one this API issued; pass next_cursor back unchanged",
                    )
                    .with("field", "cursor")
                })?
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        Problem::bad_request(format!(
                            "limit must be a whole number from 1 to {MAX_LIMIT}"
                        ))
                        .with("field", "limit")
                    })?
            }
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown query parameter {other:?}; use cursor and limit"
                ))
                .with("field", other.to_string()))
            }
        }
    }
    Ok((after, limit))
}

pub fn encode_cursor(change_seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("cs1:{change_seq}"))
}

fn decode_cursor(text: &str) -> Option<i64> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
    raw.strip_prefix("cs1:")?.parse().ok().filter(|n| *n >= 0)
}

async fn poll(
    state: &AppState,
    auth: &Authorized,
    query: Option<&str>,
    item: &str,
    page: &str,
    route: &str,
) -> Result<Response, Problem> {
    let (after, limit) = page_params(query)?;
    let db = state.tenancy.firm_db(&auth.grant).await?;
    let projection = auth.connector.projection(item);
    let (items, ids, has_more) = read_changes(&db, projection, after, limit).await?;
    let next = items
        .last()
        .and_then(|i| i["change_seq"].as_i64())
        .unwrap_or(after);
    let body = json!({ "data": items, "next_cursor": encode_cursor(next), "has_more": has_more });
    auth.connector
        .projection(page)
        .check(&body)
        .map_err(|v| Problem::internal(format!("outgoing page failed its schema: {v}")))?;
    let bytes = serde_json::to_vec(&body).expect("json");
    let receipt = state
        .log
        .record_send(NewSend {
            firm_id: auth.grant.firm_id.clone(),
            grant_id: auth.grant.grant_id.clone(),
            connector: CONNECTOR.into(),
            direction: Direction::Outbound,
            method: "GET".into(),
            target: format!(
                "{route} response to credential {}",
                auth.grant.credential_id
            ),
            fields: projection.field_names(),
            record_ids: ids,
            payload: bytes.clone(),
        })
        .await?;
    state.log.record_result(&receipt, 200).await?;
    Ok(json_response(StatusCode::OK, bytes))
}

/// Reads the projected columns of rows changed after `after`.
pub async fn read_changes(
    db: &FirmDb,
    projection: &Projection,
    after: i64,
    limit: i64,
) -> Result<(Vec<Value>, Vec<String>, bool), Problem> {
    let sql = format!(
        "SELECT {} FROM {} WHERE change_seq > $1 ORDER BY change_seq LIMIT $2",
        projection.select_list(),
        projection.table()
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(limit + 1)
        .fetch_all(db.pool())
        .await
        .map_err(crate::registry::StoreError::from)?;
    let has_more = rows.len() as i64 > limit;
    let mut items = Vec::with_capacity(rows.len());
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows.iter().take(limit as usize) {
        let item = projection.row_to_json(row).map_err(Problem::internal)?;
        ids.push(item["id"].as_str().unwrap_or_default().to_string());
        items.push(item);
    }
    Ok((items, ids, has_more))
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

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
    State(state): State<AppState>,
    auth: Authorized,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    auth.require(CONNECTOR, "fees:write")?;
    let key = idempotency_key(&headers)?;
    let fee: Value = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_request(format!("the body is not valid JSON: {e}")))?;
    auth.connector
        .projection("fee")
        .check(&fee)
        .map_err(|v| Problem::unprocessable(&v.field, v.message))?;
    let request_sha256 = hex::encode(Sha256::digest(serde_json::to_vec(&fee).expect("json")));
    let db = state.tenancy.firm_db(&auth.grant).await?;
    let matter_id = fee["matter_id"].as_str().unwrap_or_default();
    let matter = sqlx::query("SELECT id FROM matters WHERE id = $1")
        .bind(matter_id)
        .fetch_optional(db.pool())
        .await
        .map_err(crate::registry::StoreError::from)?;
    if matter.is_none() {
        return Err(Problem::unprocessable(
            "matter_id",
            "no matter with this id exists in this firm",
        ));
    }
    let fee_id = uuid::Uuid::new_v4().to_string();
    let source = format!("{CONNECTOR}:{}", auth.grant.grant_id);
    let receipt = state
        .log
        .record_send(NewSend {
            firm_id: auth.grant.firm_id.clone(),
            grant_id: auth.grant.grant_id.clone(),
            connector: CONNECTOR.into(),
            direction: Direction::Inbound,
            method: "POST".into(),
            target: format!(
                "firm database fees, from credential {} (POST /v1/fees)",
                auth.grant.credential_id
            ),
            fields: fee
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default(),
            record_ids: vec![fee_id.clone(), matter_id.to_string()],
            payload: body.to_vec(),
        })
        .await?;
    let outcome = write_fee(&db, &fee, &fee_id, &source, &key, &request_sha256).await;
    let status = match &outcome {
        Ok((_, true)) => StatusCode::CREATED,
        Ok((_, false)) => StatusCode::OK,
        Err(p) => p.status,
    };
    state.log.record_result(&receipt, status.as_u16()).await?;
    let (result, _) = outcome?;
    auth.connector
        .projection("fee_result")
        .check(&result)
        .map_err(|v| Problem::internal(format!("fee result failed its schema: {v}")))?;
    let mut response = json_response(status, serde_json::to_vec(&result).expect("json"));
    if status == StatusCode::OK {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, Problem> {
    let key = headers
        .get("idempotency-key")
        .ok_or_else(|| {
            Problem::bad_request("the Idempotency-Key header is required")
                .with("field", "Idempotency-Key")
        })?
        .to_str()
        .ok()
        .map(|k| k.trim().trim_matches('"').to_string())
        .filter(|k| (1..=255).contains(&k.len()) && k.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| {
            Problem::bad_request("Idempotency-Key must be 1-255 visible ASCII characters")
                .with("field", "Idempotency-Key")
        })?;
    Ok(key)
}

/// Inserts the fee and its business-account transaction once per key; returns (fee, created).
async fn write_fee(
    db: &FirmDb,
    fee: &Value,
    fee_id: &str,
    source: &str,
    key: &str,
    request_sha256: &str,
) -> Result<(Value, bool), Problem> {
    let store = crate::registry::StoreError::from;
    let now = crate::clock::now_ms();
    let transaction_id = uuid::Uuid::new_v4().to_string();
    let mut tx = db.pool().begin().await.map_err(store)?;
    let inserted = sqlx::query("INSERT INTO fees (id, matter_id, amount_cents, currency, description, fee_date, source, idempotency_key, request_sha256, transaction_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (source, idempotency_key) DO NOTHING")
        .bind(fee_id).bind(fee["matter_id"].as_str()).bind(fee["amount_cents"].as_i64()).bind(fee["currency"].as_str())
        .bind(fee["description"].as_str()).bind(fee["fee_date"].as_str()).bind(source).bind(key).bind(request_sha256)
        .bind(&transaction_id).bind(now)
        .execute(&mut *tx).await.map_err(store)?.rows_affected() == 1;
    if inserted {
        let seq = next_change_seqs(&mut tx, 1).await?;
        sqlx::query("INSERT INTO accounting_transactions (id, account, amount_cents, currency, matter_id, reference, posted_at, internal_note, change_seq) VALUES ($1, 'business', $2, $3, $4, $5, $6, $7, $8)")
            .bind(&transaction_id).bind(fee["amount_cents"].as_i64()).bind(fee["currency"].as_str()).bind(fee["matter_id"].as_str())
            .bind(format!("FEE-{}", &fee_id[..8])).bind(now).bind("Fee posted by the accounting connector").bind(seq)
            .execute(&mut *tx).await.map_err(store)?;
        tx.commit().await.map_err(store)?;
    } else {
        tx.rollback().await.map_err(store)?;
    }
    let row = sqlx::query("SELECT id, matter_id, amount_cents, currency, description, fee_date, request_sha256, transaction_id FROM fees WHERE source = $1 AND idempotency_key = $2")
        .bind(source).bind(key).fetch_one(db.pool()).await.map_err(store)?;
    if row.get::<String, _>("request_sha256") != request_sha256 {
        return Err(Problem::unprocessable(
            "Idempotency-Key",
            "this Idempotency-Key was already used with a different body",
        ));
    }
    let result = json!({
        "id": row.get::<String, _>("id"),
        "matter_id": row.get::<String, _>("matter_id"),
        "amount_cents": row.get::<i64, _>("amount_cents"),
        "currency": row.get::<String, _>("currency"),
        "description": row.get::<String, _>("description"),
        "fee_date": row.get::<String, _>("fee_date"),
        "transaction_id": row.get::<String, _>("transaction_id"),
    });
    Ok((result, inserted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_forgeries_are_refused() {
        assert_eq!(
            page_params(Some(&format!("cursor={}&limit=5", encode_cursor(42)))).unwrap(),
            (42, 5)
        );
        assert!(page_params(Some("cursor=abc")).is_err());
        assert!(page_params(Some(&format!(
            "cursor={}",
            URL_SAFE_NO_PAD.encode("cs1:-4")
        )))
        .is_err());
        assert!(page_params(Some("limit=0")).is_err());
        assert!(page_params(Some("limit=501")).is_err());
        assert!(page_params(Some("firm=other")).is_err());
    }
}
