//! `GET /v1/transactions` and `GET /v1/matters`: a page of projected rows in
//! change order, their ids as this grant sees them, checked against its page
//! schema and logged (naming the real record ids) before it leaves.

use crate::paging::{encode_cursor, page_params, CursorParam, LimitParam};
use scopegate_contract::axum::extract::{RawQuery, State};
use scopegate_contract::axum::http::StatusCode;
use scopegate_contract::{Capabilities, ConnectorError, LoggedBody, Reply, Vendor};
use serde_json::json;

/// Transactions changed after `cursor`, oldest change first.
#[utoipa::path(get, path = "/v1/transactions", tag = "accounting",
    params(("cursor" = inline(Option<CursorParam>), Query, description = "next_cursor of the previous page; omit to start from the beginning"),
           ("limit" = inline(Option<LimitParam>), Query, description = "page size, 1-500, default 100")),
    responses((status = 200, description = "A page of transactions", body = ref("#/components/schemas/TransactionsPage")),
              (status = 400, description = "Malformed cursor or limit", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
              (status = 401, description = "Missing, invalid, expired or revoked token"),
              (status = 403, description = "Token lacks transactions:read"),
              (status = 429, description = "Throttled; see Retry-After")),
    security(("bearer" = ["transactions:read"])))]
pub async fn transactions(
    State(caps): State<Capabilities>,
    vendor: Vendor,
    RawQuery(query): RawQuery,
) -> Result<LoggedBody, ConnectorError> {
    poll(
        &caps,
        &vendor,
        query.as_deref(),
        "transaction",
        "transactions_page",
        "/v1/transactions",
    )
    .await
}

/// Matter references (id, number, name) changed after `cursor`.
#[utoipa::path(get, path = "/v1/matters", tag = "accounting",
    params(("cursor" = inline(Option<CursorParam>), Query, description = "next_cursor of the previous page; omit to start from the beginning"),
           ("limit" = inline(Option<LimitParam>), Query, description = "page size, 1-500, default 100")),
    responses((status = 200, description = "A page of matter references", body = ref("#/components/schemas/MattersPage")),
              (status = 400, description = "Malformed cursor or limit", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
              (status = 401, description = "Missing, invalid, expired or revoked token"),
              (status = 403, description = "Token lacks transactions:read")),
    security(("bearer" = ["transactions:read"])))]
pub async fn matters(
    State(caps): State<Capabilities>,
    vendor: Vendor,
    RawQuery(query): RawQuery,
) -> Result<LoggedBody, ConnectorError> {
    poll(
        &caps,
        &vendor,
        query.as_deref(),
        "matter_ref",
        "matters_page",
        "/v1/matters",
    )
    .await
}

async fn poll(
    caps: &Capabilities,
    vendor: &Vendor,
    query: Option<&str>,
    item: &str,
    page_schema: &str,
    route: &str,
) -> Result<LoggedBody, ConnectorError> {
    let grant = vendor.require("transactions:read")?;
    let (after, limit) = page_params(query)?;
    let mut page = caps.reader().changes(grant, item, after, limit).await?;
    let ids = caps.ids().for_grant(grant).await?;
    for row in &mut page.items {
        crate::ids::disguise_fields(ids.as_ref(), row, &["id", "matter_id"])?;
    }
    let next = page
        .items
        .last()
        .and_then(|i| i["change_seq"].as_i64())
        .unwrap_or(after);
    let body = json!({ "data": page.items, "next_cursor": encode_cursor(next), "has_more": page.has_more });
    let checked = caps
        .schema(page_schema)?
        .check(&body)
        .map_err(|v| ConnectorError::Internal(format!("outgoing page failed its schema: {v}")))?;
    let reply = Reply {
        method: "GET",
        route,
        status: StatusCode::OK,
        record_ids: page.record_ids,
    };
    caps.sender().respond(grant, reply, checked).await
}
