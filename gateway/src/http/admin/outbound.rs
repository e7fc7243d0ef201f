//! The outbound-call viewer: the firm's calls (each send with its result, or
//! none where no result was recorded: outcome unknown), newest first,
//! filtered by connector, time range and status, a page at a time; and the
//! export, the same JSON lines as `scopegate audit export`, streamed: read
//! from the registry [`EXPORT_PAGE`] records at a time as the client takes
//! them, so a firm's whole log is never held in memory.

use super::Session;
use crate::clock::parse_time;
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::outbound_export::Export;
use crate::outbound_log::{self, PageFilter};
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/outbound", get(list))
        .route("/admin/v1/outbound/export", get(export))
}

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

/// Records per page of the export: at most this many are held at a time.
pub use crate::outbound_export::PAGE as EXPORT_PAGE;

/// The `status` filter's values, exactly as [`parse_filter`] takes them.
const STATUS_PATTERN: &str = "^(?:ok|error|[1-5][0-9]{2})$";

/// Parses the viewer's query string; unknown parameters and empty values are refused.
pub fn parse_filter(query: Option<&str>) -> Result<(PageFilter, i64), Problem> {
    let mut filter = PageFilter::default();
    let mut limit = DEFAULT_LIMIT;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if value.is_empty() && KNOWN.contains(&key.as_ref()) {
            return Err(Problem::unprocessable(
                &key,
                format!("{key} is empty; leave it out for no filter"),
            ));
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
                        let n: i64 = Some(code)
                            .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()))
                            .and_then(|c| c.parse().ok())
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
            "limit" => limit = super::page_limit::page_limit(&value, MAX_LIMIT)?,
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown parameter {other:?}; use connector, from, to, status, before, limit"
                )))
            }
        }
    }
    Ok((filter, limit))
}

const KNOWN: [&str; 6] = ["connector", "from", "to", "status", "before", "limit"];

/// The viewer's query parameters as the OpenAPI document describes them.
pub struct TimeParam;

impl utoipa::PartialSchema for TimeParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type,
        };
        AnyOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .description(Some("Unix time in milliseconds")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                    .description(Some("RFC 3339")),
            )
            .into()
    }
}

impl utoipa::ToSchema for TimeParam {}

/// The `status` filter.
pub struct StatusParam;

impl utoipa::PartialSchema for StatusParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(STATUS_PATTERN))
            .into()
    }
}

impl utoipa::ToSchema for StatusParam {}

/// The page size.
pub struct LimitParam;

impl utoipa::PartialSchema for LimitParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_LIMIT))
            .default(Some(DEFAULT_LIMIT.into()))
            .into()
    }
}

impl utoipa::ToSchema for LimitParam {}

/// A page of the firm's outbound calls: one row per call (the send and its result).
#[utoipa::path(get, path = "/admin/v1/outbound", tag = "admin",
    params(("connector" = Option<String>, Query, min_length = 1, description = "only this connector"),
           ("from" = inline(Option<TimeParam>), Query, description = "at or after (RFC 3339 or Unix ms)"),
           ("to" = inline(Option<TimeParam>), Query, description = "before (RFC 3339 or Unix ms)"),
           ("status" = inline(Option<StatusParam>), Query, description = "ok, error or an HTTP status: only calls whose result has that status"),
           ("before" = Option<i64>, Query, description = "next_before of the previous page"),
           ("limit" = inline(Option<LimitParam>), Query, description = "1-500, default 50")),
    responses((status = 200, description = "Calls, newest first (each send with its `result`: seq, at, status, latency_us; null where no result was recorded, the outcome unknown), and next_before when there may be more", body = Object),
              (status = 400, description = "A parameter the viewer does not take"),
              (status = 403, description = "Not an owner, admin or bookkeeper"), (status = 422, description = "A malformed or empty filter")))]
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Json<serde_json::Value>, Problem> {
    session.require_auditor()?;
    let (filter, limit) = parse_filter(query.as_deref())?;
    // Results are committed after their sends: this process's queued ones first.
    state.log.flush().await?;
    let calls = outbound_log::calls_page(&state.registry, session.firm(), &filter, limit).await?;
    let next_before = (calls.len() as i64 == limit)
        .then(|| calls.last().map(|r| r.seq))
        .flatten();
    Ok(Json(json!({ "data": calls, "next_before": next_before })))
}

/// All the firm's records as JSON lines, as `scopegate audit export` writes
/// them (see [`crate::outbound_export`]): the log up to its newest record when
/// the request arrived, read and sent [`EXPORT_PAGE`] records at a time, each
/// page read only when the client has taken the one before.
#[utoipa::path(get, path = "/admin/v1/outbound/export", tag = "admin",
    responses((status = 200, description = "application/x-ndjson, one record per line, oldest first; a send without a result in the export has \"outcome\": \"unknown\"", content_type = "application/x-ndjson"),
              (status = 403, description = "Not an owner, admin or bookkeeper")))]
pub async fn export(State(state): State<AppState>, session: Session) -> Result<Response, Problem> {
    session.require_auditor()?;
    state.log.flush().await?;
    let export = Export::begin(&state.registry, session.firm(), None).await?;
    let pages = futures::stream::try_unfold(export, |mut export| async move {
        Ok::<_, crate::registry::StoreError>(
            export
                .next_page()
                .await?
                .map(|lines| (Bytes::from(lines), export)),
        )
    });
    let body = Body::from_stream(futures::TryStreamExt::inspect_err(pages, |e| {
        tracing::error!(error = %e, "the outbound export stopped part-way");
    }));
    let mut response = body.into_response();
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
