//! The outbound-call viewer: the firm's outbound-log records, newest first,
//! filtered by connector, time range and status, a page at a time; and the
//! export, the same JSON lines as `scopegate audit export`.

use super::Session;
use crate::clock::parse_time;
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::outbound_log::{self, PageFilter};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::io::Write;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/outbound", get(list))
        .route("/admin/v1/outbound/export", get(export))
}

const DEFAULT_LIMIT: i64 = 50;

/// Parses the viewer's query string; unknown parameters are refused.
pub fn parse_filter(query: Option<&str>) -> Result<(PageFilter, i64), Problem> {
    let mut filter = PageFilter::default();
    let mut limit = DEFAULT_LIMIT;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if value.is_empty() {
            continue;
        }
        match key.as_ref() {
            "connector" => filter.connector = Some(value.to_string()),
            "from" => {
                filter.from_ms =
                    Some(parse_time(&value).map_err(|e| Problem::unprocessable("from", e))?)
            }
            "to" => {
                filter.to_ms =
                    Some(parse_time(&value).map_err(|e| Problem::unprocessable("to", e))?)
            }
            "status" => {
                filter.status = Some(match value.as_ref() {
                    "ok" => (200, 399),
                    "error" => (400, 999),
                    code => {
                        let n: i64 = code
                            .parse()
                            .ok()
                            .filter(|n| (100..=599).contains(n))
                            .ok_or_else(|| {
                                Problem::unprocessable(
                                    "status",
                                    "status must be ok, error or an HTTP status code",
                                )
                            })?;
                        (n, n)
                    }
                })
            }
            "before" => {
                filter.before_seq = Some(value.parse().map_err(|_| {
                    Problem::unprocessable(
                        "before",
                        "before must be the seq of the previous page's last record",
                    )
                })?)
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or_else(|| Problem::unprocessable("limit", "limit must be 1-500"))?
            }
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown parameter {other:?}; use connector, from, to, status, before, limit"
                )))
            }
        }
    }
    Ok((filter, limit))
}

/// A page of the firm's outbound records.
#[utoipa::path(get, path = "/admin/v1/outbound", tag = "admin",
    params(("connector" = Option<String>, Query, description = "only this connector"),
           ("from" = Option<String>, Query, description = "at or after (RFC 3339 or Unix ms)"),
           ("to" = Option<String>, Query, description = "before (RFC 3339 or Unix ms)"),
           ("status" = Option<String>, Query, description = "ok, error or an HTTP status: only results with that status"),
           ("before" = Option<i64>, Query, description = "next_before of the previous page"),
           ("limit" = Option<i64>, Query, description = "1-500, default 50")),
    responses((status = 200, description = "Records, newest first, and next_before when there may be more"),
              (status = 403, description = "Not an owner, admin or bookkeeper"), (status = 422, description = "A malformed filter")))]
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Json<serde_json::Value>, Problem> {
    session.require_auditor()?;
    let (filter, limit) = parse_filter(query.as_deref())?;
    let records = outbound_log::page(&state.registry, session.firm(), &filter, limit).await?;
    let next_before = (records.len() as i64 == limit)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(json!({ "data": records, "next_before": next_before })))
}

/// All the firm's records as JSON lines, as `scopegate audit export` writes them.
#[utoipa::path(get, path = "/admin/v1/outbound/export", tag = "admin",
    responses((status = 200, description = "application/x-ndjson, one record per line, oldest first", content_type = "application/x-ndjson"),
              (status = 403, description = "Not an owner, admin or bookkeeper")))]
pub async fn export(State(state): State<AppState>, session: Session) -> Result<Response, Problem> {
    session.require_auditor()?;
    let mut out = Vec::new();
    outbound_log::export(&state.registry, session.firm(), None, |record| {
        serde_json::to_writer(&mut out, record)?;
        out.write_all(b"\n")
    })
    .await?;
    let mut response = out.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"outbound-{}.jsonl\"",
        session.firm()
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
