//! `/oauth/google/callback`: where Google sends a fee earner back after
//! consent. No session is needed: the single-use `state` names the pending
//! consent (and so the firm and user); everything else is refused.
//!
//! A consent started from the settings page (its `state` begins with
//! [`BROWSER_STATE_PREFIX`]) is bound to the browser that started it: that
//! browser holds the `state` in the [`CONSENT_COOKIE`] (SameSite=Lax, so it
//! survives Google's cross-site redirect, unlike the Strict session cookie),
//! and a callback without it is refused. Such a callback always ends in a
//! redirect to `/settings?google=<outcome>`, which the page turns into a
//! message. Consents started elsewhere (`scopegate google connect`) answer
//! with plain text or problem+json as before.

use super::problem::Problem;
use crate::google::consent::BROWSER_STATE_PREFIX;
use crate::http::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The cookie holding the `state` of a consent started from the settings page.
pub const CONSENT_COOKIE: &str = "sg_google_consent";
/// Where the cookie is sent (only to the callback).
const CONSENT_COOKIE_PATH: &str = "/oauth/google/callback";

pub fn routes() -> Router<AppState> {
    Router::new().route("/oauth/google/callback", get(callback))
}

/// The `Set-Cookie` value binding a consent `state` to this browser for its lifetime.
pub fn consent_cookie(state: &AppState, consent_state: &str) -> HeaderValue {
    let secure = if state.accounts.tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{CONSENT_COOKIE}={consent_state}; Path={CONSENT_COOKIE_PATH}; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        crate::google::consent::CONSENT_TTL_MS / 1000
    ))
    .expect("consent cookie")
}

fn clear_consent_cookie(state: &AppState) -> HeaderValue {
    let secure = if state.accounts.tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{CONSENT_COOKIE}=; Path={CONSENT_COOKIE_PATH}; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
    ))
    .expect("consent cookie")
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
    crate::secrets::constant_time_eq(a.as_bytes(), b.as_bytes())
}

/// The outcome code the settings page shows for a failed consent.
fn outcome_of(problem: &Problem) -> &'static str {
    match problem.status {
        StatusCode::BAD_REQUEST => "expired",
        StatusCode::FORBIDDEN => "off",
        StatusCode::BAD_GATEWAY => "refused",
        _ => "failed",
    }
}

/// Back to the settings page with the outcome; the consent cookie is cleared unless kept.
fn to_settings(state: &AppState, outcome: &str, clear_cookie: bool) -> Response {
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/settings?google={outcome}"))],
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if clear_cookie {
        headers.insert(header::SET_COOKIE, clear_consent_cookie(state));
    }
    response
}

/// Completes a Google Calendar consent.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let mut params = std::collections::HashMap::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        params.insert(k.into_owned(), v.into_owned());
    }
    let consent_state = params
        .get("state")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Problem::bad_request("the state parameter is missing").with("field", "state")
        })?;
    let from_settings = consent_state.starts_with(BROWSER_STATE_PREFIX);
    if from_settings {
        let bound =
            cookie_value(&headers, CONSENT_COOKIE).is_some_and(|held| same(&held, consent_state));
        if !bound {
            // Not the browser that started it: refuse, and leave the pending
            // consent for the browser that did.
            tracing::warn!("Google consent callback from another browser refused");
            return Ok(to_settings(&state, "other-browser", false));
        }
    }
    if let Some(error) = params.get("error") {
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            consent_state.as_bytes(),
        ));
        crate::google::store::take_pending(&state.registry, &hash).await?;
        if from_settings {
            return Ok(to_settings(&state, "denied", true));
        }
        return Err(Problem::bad_request(format!(
            "Google did not grant access ({error}); nothing was connected"
        )));
    }
    let code = params.get("code").filter(|c| !c.is_empty());
    let result = match code {
        Some(code) => crate::google::consent::finish(&state.google, consent_state, code)
            .await
            .map_err(Problem::from),
        None => Err(Problem::bad_request("the code parameter is missing").with("field", "code")),
    };
    if from_settings {
        return Ok(match result {
            Ok(connection) => {
                tracing::info!(firm = %connection.firm_id, "Google Calendar connected from settings");
                to_settings(&state, "connected", true)
            }
            Err(problem) => to_settings(&state, outcome_of(&problem), true),
        });
    }
    let connection = result?;
    tracing::info!(firm = %connection.firm_id, "Google Calendar connected");
    let mut response = (
        StatusCode::OK,
        "Google Calendar is connected. Your diary entries will appear in your calendar shortly; you can close this window.\n",
    )
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}
