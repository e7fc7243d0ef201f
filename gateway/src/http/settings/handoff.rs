//! `GET /settings/handoff?assertion=...`: the host application's signed
//! assertion (see `accounts::handoff`) becomes a settings session and the
//! browser is sent on to the page. Bad, expired and replayed assertions are
//! refused with 401 and nothing is created. A hand-off that becomes a
//! session is entered in the firm's access trail.

use crate::accounts::handoff::{verify, HandoffError};
use crate::http::admin::session::session_cookie_header;
use crate::http::problem::Problem;
use crate::http::AppState;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

fn refused(e: HandoffError) -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        format!("hand-off refused: {e}; go back to your practice-management app and open settings again"),
    )
}

pub async fn handoff(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let key = state
        .accounts
        .handoff_key
        .as_ref()
        .ok_or_else(|| refused(HandoffError::NotConfigured))?;
    let assertion = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "assertion")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| Problem::bad_request("the assertion parameter is required"))?;
    let claims = verify(key, &assertion, chrono::Utc::now().timestamp()).map_err(refused)?;
    if !state.registry.consume_handoff_nonce(&claims).await? {
        tracing::warn!(firm = %claims.firm, "replayed hand-off assertion refused");
        return Err(refused(HandoffError::Replayed));
    }
    state.registry.firm(&claims.firm).await.map_err(|_| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "hand-off refused: unknown firm",
        )
    })?;
    let user = state
        .registry
        .handoff_user(
            &claims.firm,
            &claims.email,
            &claims.name,
            claims.role,
            claims.firm_user_id.as_deref(),
        )
        .await?;
    if user.disabled_at.is_some() {
        return Err(Problem::forbidden("this account is disabled in settings"));
    }
    let id = state
        .registry
        .create_session(&user, state.accounts.max_ms)
        .await?;
    let from =
        crate::http::client_ip::client_ip(peer.ip(), &headers, &state.config.trusted_proxies);
    let entry = crate::access_trail::NewEntry::firm(
        &user.firm_id,
        crate::access_trail::Kind::Handoff,
        &user.email,
        &from.to_string(),
        serde_json::json!({ "user_id": user.id, "role": user.role, "firm_user_id": claims.firm_user_id }),
    );
    crate::http::admin::trail::enter(&state, entry).await?;
    tracing::info!(firm = %user.firm_id, user = %user.id, "settings hand-off");
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static("/settings"))],
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie_header(&state, &id));
    Ok(response)
}
