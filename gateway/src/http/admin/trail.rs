//! The firm's access trail on the settings page (owners and admins): its
//! entries, newest first, filtered by kind, actor and time, a page at a time;
//! and [`enter`], how every handler that grants or uses access records it.

use super::outbound::{LimitParam, TimeParam};
use super::Session;
use crate::access_trail::{self, Kind, NewEntry, TrailFilter};
use crate::clock::parse_time;
use crate::http::problem::Problem;
use crate::http::AppState;
use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/v1/audit-trail", get(list))
}

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;
/// Longest actor filter taken.
const MAX_ACTOR: usize = 200;

/// Records `entry` in the access trail; a failure is a 503 (the caller has
/// not yet handed out what it did: a session, a secret or a token).
pub async fn enter(state: &AppState, entry: NewEntry) -> Result<(), Problem> {
    let kind = entry.kind;
    access_trail::record(&state.registry, &state.log_keys, entry)
        .await
        .map(|_| ())
        .map_err(|e| {
            tracing::error!(error = %e, kind = kind.as_str(), "the access trail could not record an event");
            Problem::unavailable("the access trail could not record this; try again shortly")
        })
}

/// The kinds the filter takes, as a pattern.
fn kind_pattern() -> String {
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    format!("^(?:{})$", names.join("|"))
}

/// Parses the viewer's query string; unknown parameters and empty values are refused.
pub fn parse_filter(query: Option<&str>) -> Result<(TrailFilter, i64), Problem> {
    const KNOWN: [&str; 6] = ["kind", "actor", "from", "to", "before", "limit"];
    let mut filter = TrailFilter::default();
    let mut limit = DEFAULT_LIMIT;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if value.is_empty() && KNOWN.contains(&key.as_ref()) {
            return Err(Problem::unprocessable(
                &key,
                format!("{key} is empty; leave it out for no filter"),
            ));
        }
        match key.as_ref() {
            "kind" => {
                filter.kind = Some(Kind::parse(&value).ok_or_else(|| {
                    Problem::unprocessable("kind", "kind must be one of the trail's kinds (login_succeeded, login_failed, handoff, ...)")
                })?)
            }
            "actor" => {
                if value.chars().count() > MAX_ACTOR {
                    return Err(Problem::unprocessable(
                        "actor",
                        format!("actor must be at most {MAX_ACTOR} characters"),
                    ));
                }
                filter.actor = Some(value.to_string())
            }
            "from" => {
                filter.from_ms =
                    Some(parse_time(&value).map_err(|e| Problem::unprocessable("from", e))?)
            }
            "to" => {
                filter.to_ms =
                    Some(parse_time(&value).map_err(|e| Problem::unprocessable("to", e))?)
            }
            "before" => {
                filter.before_seq = Some(value.parse().map_err(|_| {
                    Problem::unprocessable(
                        "before",
                        "before must be the seq of the previous page's last entry",
                    )
                })?)
            }
            "limit" => limit = super::page_limit::page_limit(&value, MAX_LIMIT)?,
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown parameter {other:?}; use kind, actor, from, to, before, limit"
                )))
            }
        }
    }
    Ok((filter, limit))
}

/// The `kind` filter.
pub struct KindParam;

impl utoipa::PartialSchema for KindParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Kind::ALL.iter().map(|k| k.as_str())))
            .pattern(Some(kind_pattern()))
            .into()
    }
}

impl utoipa::ToSchema for KindParam {}

/// A page of the firm's access trail, newest first.
#[utoipa::path(get, path = "/admin/v1/audit-trail", tag = "admin",
    params(("kind" = inline(Option<KindParam>), Query, description = "only this kind of event"),
           ("actor" = Option<String>, Query, min_length = 1, max_length = 200, description = "only entries whose actor contains this text (any case)"),
           ("from" = inline(Option<TimeParam>), Query, description = "at or after (RFC 3339 or Unix ms)"),
           ("to" = inline(Option<TimeParam>), Query, description = "before (RFC 3339 or Unix ms)"),
           ("before" = Option<i64>, Query, description = "next_before of the previous page"),
           ("limit" = inline(Option<LimitParam>), Query, description = "1-500, default 50")),
    responses((status = 200, description = "Entries (chain, seq, at, kind, actor, from, what), newest first, and next_before when there may be more", body = Object),
              (status = 400, description = "A parameter the trail does not take"),
              (status = 403, description = "Not an owner or admin"), (status = 422, description = "A malformed or empty filter")))]
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Json<serde_json::Value>, Problem> {
    session.require_manager()?;
    let (filter, limit) = parse_filter(query.as_deref())?;
    let entries = access_trail::page(&state.registry, session.firm(), &filter, limit).await?;
    let next_before = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    let data: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            json!({
                "seq": e.seq, "at": e.at, "kind": e.kind, "actor": e.actor,
                "from": e.from, "what": e.what_json(),
            })
        })
        .collect();
    Ok(Json(json!({ "data": data, "next_before": next_before })))
}
