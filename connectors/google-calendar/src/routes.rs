//! HTTP: the settings routes of the signed-in fee earner (their own
//! connection; owners and admins also see every fee earner's), and
//! `/oauth/google/callback`, where Google sends the browser back after
//! consent. The person is always the session's practice user and the firm
//! always the session's; no id in a path or body is read.
//!
//! A consent started from the settings page (its `state` begins with
//! [`BROWSER_STATE_PREFIX`]) is bound to the browser that started it: that
//! browser holds the `state` in the [`CONSENT_COOKIE`] (SameSite=Lax, so it
//! survives Google's cross-site redirect, unlike the Strict session cookie),
//! and a callback without it is refused. Such a callback always ends in a
//! redirect to `/settings?connector=google-calendar&outcome=<outcome>`,
//! which the page turns into a message. Consents the operator started answer
//! with plain text or problem+json.

use crate::consent::{self, ConnectionStatus, BROWSER_STATE_PREFIX, CONSENT_TTL};
use crate::context::Ctx;
use crate::CONNECTOR;
use scopegate_contract::axum::extract::{RawQuery, State};
use scopegate_contract::axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use scopegate_contract::axum::response::{IntoResponse, Response};
use scopegate_contract::axum::routing::{get, post};
use scopegate_contract::axum::{Json, Router};
use scopegate_contract::{Capabilities, ConnectorError, FirmGrant, SettingsUser};
use serde_json::{json, Value};
use std::sync::Arc;

/// The cookie holding the `state` of a consent started from the settings page.
pub const CONSENT_COOKIE: &str = "sg_google_consent";
/// Where the cookie is sent (only to the callback).
pub const CALLBACK_PATH: &str = "/oauth/google/callback";

/// The connector's runtime, as the routes reach it.
pub type Shared = Arc<crate::runtime::GoogleRuntime>;

fn ctx(caps: &Capabilities, runtime: &Shared) -> Result<Ctx, ConnectorError> {
    Ctx::new(caps.clone(), runtime.clone())
}

fn not_configured() -> ConnectorError {
    ConnectorError::Unavailable(
        "the operator has not configured Google Calendar on this gateway (no Google client id)"
            .into(),
    )
}

/// Settings routes (mounted under `/admin/v1/connectors/google-calendar/`).
pub fn settings(runtime: Shared) -> Router<Capabilities> {
    let (a, b, c) = (runtime.clone(), runtime.clone(), runtime);
    Router::new()
        .route(
            "/connection",
            get(
                move |State(caps): State<Capabilities>, user: SettingsUser| {
                    let runtime = a.clone();
                    async move { connection(&ctx(&caps, &runtime)?, user).await }
                },
            ),
        )
        .route(
            "/connect",
            post(
                move |State(caps): State<Capabilities>, user: SettingsUser| {
                    let runtime = b.clone();
                    async move { connect(&ctx(&caps, &runtime)?, user).await }
                },
            ),
        )
        .route(
            "/disconnect",
            post(
                move |State(caps): State<Capabilities>,
                      user: SettingsUser,
                      headers: HeaderMap,
                      body: scopegate_contract::axum::body::Bytes| {
                    let runtime = c.clone();
                    async move { disconnect(&ctx(&caps, &runtime)?, user, &headers, &body).await }
                },
            ),
        )
}

/// The public callback route.
pub fn public(runtime: Shared) -> Router<Capabilities> {
    Router::new().route(
        CALLBACK_PATH,
        get(
            move |State(caps): State<Capabilities>,
                  headers: HeaderMap,
                  RawQuery(query): RawQuery| {
                let runtime = runtime.clone();
                async move { callback(&ctx(&caps, &runtime)?, &headers, query).await }
            },
        ),
    )
}

/// The session user's practice-system id, or a clear refusal.
fn linked_user(user: &SettingsUser) -> Result<&str, ConnectorError> {
    user.practice_user.as_deref().ok_or_else(|| {
        ConnectorError::Refused(
            "your login is not linked to a user in the practice system, so there is no diary to sync; ask an owner or admin to set your practice user id".into(),
        )
    })
}

/// The grant a settings user acts through, or why there is none.
fn grant_of(user: &SettingsUser) -> Result<&FirmGrant, ConnectorError> {
    user.grant.as_ref().ok_or_else(|| {
        ConnectorError::Refused(
            "Google Calendar is not switched on for your firm; a firm admin must switch it on first"
                .into(),
        )
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

/// GET: the session user's own connection; owners and admins also get every fee earner's.
async fn connection(ctx: &Ctx, user: SettingsUser) -> Result<Json<Value>, ConnectorError> {
    if !ctx.configured() {
        return Ok(Json(json!({ "available": false })));
    }
    let statuses = match &user.grant {
        Some(grant) => consent::connection_statuses(ctx, grant).await?,
        None => Vec::new(),
    };
    let of = |id: &str| statuses.iter().find(|c| c.firm_user_id == id);
    let own = user.practice_user.as_deref();
    let mut body = json!({
        "available": true,
        "firm_enabled": user.enabled,
        "linked": own.is_some(),
        "me": own.map(|id| status_json(of(id))),
    });
    if user.manages {
        body["fee_earners"] = user
            .colleagues
            .iter()
            .filter_map(|u| {
                let id = u.practice_user.as_deref()?;
                let mut row = status_json(of(id));
                row["name"] = json!(u.name);
                row["email"] = json!(u.email);
                Some(row)
            })
            .collect();
    }
    Ok(Json(body))
}

fn cookie(ctx: &Ctx, value: &str, max_age: u64) -> HeaderValue {
    let secure = if ctx.caps.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{CONSENT_COOKIE}={value}; Path={CALLBACK_PATH}; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .expect("consent cookie")
}

/// POST connect: Google's authorize URL for the session user; the browser keeps the state in a cookie.
async fn connect(ctx: &Ctx, user: SettingsUser) -> Result<Response, ConnectorError> {
    if !ctx.configured() {
        return Err(not_configured());
    }
    let practice_user = linked_user(&user)?;
    let grant = grant_of(&user)?;
    let (url, state) = consent::start(ctx, grant, practice_user, true).await?;
    let mut response = Json(json!({ "authorize_url": url.as_str() })).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::SET_COOKIE,
        cookie(ctx, &state, CONSENT_TTL.as_secs()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectBody {
    #[serde(default)]
    delete_events: bool,
}

/// POST disconnect: syncing stops, the token is revoked at Google and deleted here.
async fn disconnect(
    ctx: &Ctx,
    user: SettingsUser,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Json<Value>, ConnectorError> {
    if !ctx.configured() {
        return Err(not_configured());
    }
    let body: DisconnectBody = if body.is_empty() {
        DisconnectBody::default()
    } else {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return Err(ConnectorError::bad_request(
                None,
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        serde_json::from_slice(body).map_err(|e| {
            ConnectorError::bad_request(None, format!("the body is not the expected JSON: {e}"))
        })?
    };
    let practice_user = linked_user(&user)?;
    let Some(grant) = user.grant.as_ref() else {
        return Err(ConnectorError::NotFound(
            "you have no Google Calendar connection".into(),
        ));
    };
    let report = consent::disconnect(ctx, grant, practice_user, body.delete_events).await?;
    Ok(Json(json!(report)))
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
}

fn same(a: &str, b: &str) -> bool {
    scopegate_contract::constant_time_eq(a.as_bytes(), b.as_bytes())
}

/// The outcome code the settings page shows for a failed consent.
fn outcome_of(error: &ConnectorError) -> &'static str {
    match error.status() {
        StatusCode::BAD_REQUEST => "expired",
        StatusCode::FORBIDDEN => "off",
        StatusCode::BAD_GATEWAY => "refused",
        StatusCode::CONFLICT => "held",
        _ => "failed",
    }
}

/// Back to the settings page with the outcome; the consent cookie is cleared unless kept.
fn to_settings(ctx: &Ctx, outcome: &str, clear_cookie: bool) -> Response {
    let mut response = (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            format!("/settings?connector={CONNECTOR}&outcome={outcome}"),
        )],
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if clear_cookie {
        headers.insert(header::SET_COOKIE, cookie(ctx, "", 0));
    }
    response
}

/// Completes a Google Calendar consent.
async fn callback(
    ctx: &Ctx,
    headers: &HeaderMap,
    query: Option<String>,
) -> Result<Response, ConnectorError> {
    let mut params = std::collections::HashMap::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        params.insert(k.into_owned(), v.into_owned());
    }
    let consent_state = params
        .get("state")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ConnectorError::bad_request(Some("state"), "the state parameter is missing")
        })?;
    let from_settings = consent_state.starts_with(BROWSER_STATE_PREFIX);
    if from_settings {
        let bound =
            cookie_value(headers, CONSENT_COOKIE).is_some_and(|held| same(&held, consent_state));
        if !bound {
            // Not the browser that started it: refuse, and leave the pending
            // consent for the browser that did.
            tracing::warn!("Google consent callback from another browser refused");
            return Ok(to_settings(ctx, "other-browser", false));
        }
    }
    if let Some(error) = params.get("error") {
        consent::forget(ctx, consent_state).await?;
        if from_settings {
            return Ok(to_settings(ctx, "denied", true));
        }
        return Err(ConnectorError::bad_request(
            Some("error"),
            format!("Google did not grant access ({error}); nothing was connected"),
        ));
    }
    let result = match params.get("code").filter(|c| !c.is_empty()) {
        Some(code) => consent::finish(ctx, consent_state, code).await,
        None => Err(ConnectorError::bad_request(
            Some("code"),
            "the code parameter is missing",
        )),
    };
    if from_settings {
        return Ok(match result {
            Ok((grant, _)) => {
                tracing::info!(firm = %grant.firm_id(), "Google Calendar connected from settings");
                to_settings(ctx, "connected", true)
            }
            Err(error) => to_settings(ctx, outcome_of(&error), true),
        });
    }
    let (grant, _) = result?;
    tracing::info!(firm = %grant.firm_id(), "Google Calendar connected");
    let mut response = (
        StatusCode::OK,
        "Google Calendar is connected. Your diary entries will appear in your calendar shortly; you can close this window.\n",
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
