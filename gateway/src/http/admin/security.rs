//! The security tab in the admin API: `GET /admin/v1/security-events`, the
//! session's firm's security events (tripwires that fired), newest first, a
//! page at a time, for the firm's owners and admins.

use super::privacy::{param, params};
use super::Session;
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::security::events::{parse_cursor, EventPage};
use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};

/// Events per page unless `limit` says otherwise, and at most.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/v1/security-events", get(security_events))
}

/// The firm's security events, newest first.
#[utoipa::path(get, path = "/admin/v1/security-events", tag = "admin",
    params(("before" = Option<String>, Query, pattern = "^[0-9]{1,18}\\.[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
            description = "next_before of the previous page; omit for the newest events"),
           ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "events per page, 1-200, default 50")),
    responses((status = 200, description = "A page of events: `events` (id, kind: decoy_credential, out_of_scope or forged_id, grant_id, connector, tripwire_id, source_ip, detail, at in Unix ms) and `next_before`", body = Object),
              (status = 400, description = "A parameter the list does not take"),
              (status = 403, description = "Not an owner or admin"),
              (status = 422, description = "before or limit malformed")))]
pub async fn security_events(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Json<EventPage>, Problem> {
    session.require_manager()?;
    let params = params(&query, &["before", "limit"])?;
    let before = param(&params, "before")
        .map(|text| {
            parse_cursor(text).ok_or_else(|| {
                Problem::unprocessable("before", "before must be the next_before of a page")
            })
        })
        .transpose()?;
    let limit = match param(&params, "limit") {
        None => DEFAULT_LIMIT,
        Some(text) => super::page_limit::page_limit(text, MAX_LIMIT)?,
    };
    let page = state
        .registry
        .security_events(session.firm(), before, limit)
        .await?;
    Ok(Json(page))
}
