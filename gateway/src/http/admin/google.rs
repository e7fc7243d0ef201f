//! The Google Calendar part of settings: each fee earner's own connection.
//! The person is always the session's user (their `firm_user_id`, the
//! `users.id` in the firm's database) and the firm always the session's firm;
//! no id in a path or body is read. Owners and admins also see every fee
//! earner's connection of their firm. Starting consent here binds it to the
//! browser (see `crate::http::google`), and Google's callback returns the
//! browser to `/settings`.

use super::{json_body, Session};
use crate::accounts::users::FirmUser;
use crate::google::consent::{self, ConnectionStatus};
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::registry::StoreError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// Whether the operator configured the Google Calendar connector (a client id is set).
pub fn available(state: &AppState) -> bool {
    state.config.google.client_id.is_some()
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/google/connection", get(connection))
        .route("/admin/v1/google/connect", post(connect))
        .route("/admin/v1/google/disconnect", post(disconnect))
}

fn not_configured() -> Problem {
    Problem::unavailable(
        "the operator has not configured Google Calendar on this gateway (no Google client id)",
    )
}

/// The session user's practice-system id, or a clear refusal.
fn linked_user(session: &Session) -> Result<&str, Problem> {
    session.user.firm_user_id.as_deref().ok_or_else(|| {
        Problem::forbidden(
            "your login is not linked to a user in the practice system, so there is no diary to sync; ask an owner or admin to set your practice user id",
        )
        .with("field", "firm_user_id")
    })
}

fn status_json(c: Option<&ConnectionStatus>) -> Value {
    match c {
        Some(c) if c.status != "disconnected" => json!({
            "connected": true,
            "status": c.status,
            "connected_at": c.connected_at,
            "last_sync_at": c.last_sync_at,
            "events": c.events_count,
            "needs_reconsent": c.status == "needs_reconsent",
            "error": c.last_error,
            "retry_due_at": c.retry_due_at,
        }),
        _ => json!({ "connected": false }),
    }
}

async fn firm_enabled(state: &AppState, firm: &str) -> Result<bool, Problem> {
    match state.registry.grant(firm, crate::google::CONNECTOR).await {
        Ok(g) => Ok(g.enabled),
        Err(StoreError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The session user's own Google Calendar connection; owners and admins also get every fee earner's.
#[utoipa::path(get, path = "/admin/v1/google/connection", tag = "admin",
    responses((status = 200, description = "{available, firm_enabled, linked, me: {connected, status, last_sync_at, events, needs_reconsent, error}, fee_earners?: [...] (owners and admins only)}"),
              (status = 401, description = "No session")))]
pub async fn connection(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<Value>, Problem> {
    if !available(&state) {
        return Ok(Json(json!({ "available": false })));
    }
    let statuses = consent::connection_statuses(&state.google, session.firm()).await?;
    let of = |id: &str| statuses.iter().find(|c| c.firm_user_id == id);
    let own = session.user.firm_user_id.as_deref();
    let mut body = json!({
        "available": true,
        "firm_enabled": firm_enabled(&state, session.firm()).await?,
        "linked": own.is_some(),
        "me": own.map(|id| status_json(of(id))),
    });
    if session.user.role.manages() {
        let people: Vec<FirmUser> = state.registry.users(session.firm()).await?;
        body["fee_earners"] = people
            .iter()
            .filter_map(|u| {
                let id = u.firm_user_id.as_deref()?;
                let mut row = status_json(of(id));
                row["name"] = json!(u.name);
                row["email"] = json!(u.email);
                Some(row)
            })
            .collect();
    }
    Ok(Json(body))
}

/// Starts connecting the session user's Google Calendar: returns Google's authorize URL.
#[utoipa::path(post, path = "/admin/v1/google/connect", tag = "admin",
    params(("X-CSRF-Token" = String, Header, description = "from GET /admin/v1/me")),
    responses((status = 200, description = "{authorize_url}: send the browser there; Google returns it to /oauth/google/callback and then to /settings?google=<outcome>"),
              (status = 403, description = "Bad CSRF token; the login is not linked to a practice-system user; or the firm has not switched Google Calendar on"),
              (status = 503, description = "The operator has not configured Google Calendar")))]
pub async fn connect(State(state): State<AppState>, session: Session) -> Result<Response, Problem> {
    if !available(&state) {
        return Err(not_configured());
    }
    let firm_user_id = linked_user(&session)?;
    let (url, consent_state) =
        consent::start_in_browser(&state.google, session.firm(), firm_user_id).await?;
    let mut response = Json(json!({ "authorize_url": url.as_str() })).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::SET_COOKIE,
        crate::http::google::consent_cookie(&state, &consent_state),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectBody {
    #[serde(default)]
    delete_events: bool,
}

/// Disconnects the session user's own Google Calendar: syncing stops, the token is revoked at Google and deleted here.
#[utoipa::path(post, path = "/admin/v1/google/disconnect", tag = "admin",
    params(("X-CSRF-Token" = String, Header, description = "from GET /admin/v1/me")),
    request_body(content = Object, description = "optional {\"delete_events\": true} to also delete the events the gateway created", content_type = "application/json"),
    responses((status = 200, description = "{events_deleted, revoked_at_google}"),
              (status = 403, description = "Bad CSRF token, or the login is not linked to a practice-system user"),
              (status = 404, description = "You have no Google Calendar connection")))]
pub async fn disconnect(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    if !available(&state) {
        return Err(not_configured());
    }
    let body: DisconnectBody = if body.is_empty() {
        DisconnectBody::default()
    } else {
        json_body(&headers, &body)?
    };
    let firm_user_id = linked_user(&session)?;
    let report = consent::disconnect(
        &state.google,
        session.firm(),
        firm_user_id,
        body.delete_events,
    )
    .await?;
    Ok(Json(json!(report)))
}
