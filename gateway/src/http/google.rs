//! `/oauth/google/callback`: where Google sends a fee earner back after
//! consent. No session is needed: the single-use `state` names the pending
//! consent (and so the firm and user); everything else is refused.

use super::problem::Problem;
use crate::app::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new().route("/oauth/google/callback", get(callback))
}

/// Completes a Google Calendar consent.
pub async fn callback(
    State(state): State<AppState>,
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
    if let Some(error) = params.get("error") {
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            consent_state.as_bytes(),
        ));
        crate::google::store::take_pending(&state.registry, &hash).await?;
        return Err(Problem::bad_request(format!(
            "Google did not grant access ({error}); nothing was connected"
        )));
    }
    let code = params
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            Problem::bad_request("the code parameter is missing").with("field", "code")
        })?;
    let connection = crate::google::consent::finish(&state, consent_state, code).await?;
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
