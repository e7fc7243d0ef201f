//! Logging in and out, and `me`: who the session belongs to and its CSRF token.
//! Login is throttled per IP and per (firm, email), and every failure gets
//! the same answer whether the account exists or not. A locked account still
//! takes its right password from an address that has not failed for it.
//! With shared budgets configured and Redis unreachable, logins answer 503
//! unchecked (the budgets fail closed). Every checked login is entered in
//! the firm's access trail: a success, and a failure for a firm that exists
//! (the email as typed, cut short); a failure for a firm that does not exist
//! is entered nowhere (no chain is started by whoever types a name).

use super::{json_body, Session};
use crate::accounts::{passwords, sessions::COOKIE};
use crate::http::client_ip::client_ip;
use crate::http::problem::Problem;
use crate::http::throttle::Refusal;
use crate::http::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::net::SocketAddr;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/session", post(login).delete(logout))
        .route("/admin/v1/me", get(me))
}

/// The generic refusal for any failed login.
pub const LOGIN_REFUSED: &str = "the firm, email or password is not right";

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    firm: String,
    email: String,
    password: String,
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie_header(state: &AppState, session_id: &str) -> HeaderValue {
    let secure = if state.accounts.tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        state.accounts.max_ms / 1000
    ))
    .expect("cookie header")
}

fn clear_cookie_header(state: &AppState) -> HeaderValue {
    let secure = if state.accounts.tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
    ))
    .expect("cookie header")
}

/// 429 for a throttled login (the same words whether the account exists or
/// not), or 503 when the shared failure budgets cannot be consulted.
fn login_refused(refusal: Refusal) -> Problem {
    match refusal {
        Refusal::Throttled(wait) => {
            let mut problem = Problem::too_many_requests(wait);
            problem.detail = format!(
                "too many failed logins for this account or from this address; retry after {wait} s"
            );
            problem
        }
        Refusal::Unavailable => Problem::unavailable(
            "logins are paused: the shared failure budgets cannot be consulted; try again shortly",
        )
        .with_header(header::RETRY_AFTER, "1"),
    }
}

/// Logs in with firm, email and password; sets the session cookie.
#[utoipa::path(post, path = "/admin/v1/session", tag = "admin",
    request_body(content = inline(LoginBody), content_type = "application/json"),
    responses((status = 200, description = "Logged in; the session cookie is set; body as GET /admin/v1/me", body = Object),
              (status = 400, description = "The body is not JSON or not this shape"),
              (status = 401, description = "The firm, email or password is not right (one answer for all)"),
              (status = 415, description = "The body is not application/json"),
              (status = 429, description = "Too many failed logins from this address or for this account; see Retry-After"),
              (status = 503, description = "The shared failure budgets cannot be consulted (Redis unreachable): no password is checked")))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let body: LoginBody = json_body(&headers, &body)?;
    let ip = client_ip(peer.ip(), &headers, &state.config.trusted_proxies);
    let account = format!("{}\n{}", body.firm.trim(), body.email.trim().to_lowercase());
    let throttle = &state.accounts.login_throttle;
    // An address over its budget is not checked at all. An account over its
    // budget still takes its right password (firm ids are guessable, so
    // refusing it would let anyone keep an admin out); the guessing is slowed
    // instead: an address that already failed for the locked account is not
    // checked again until it recovers, so each address gets one try.
    if let Some(refusal) = throttle.ip_blocked(ip).await {
        return Err(login_refused(refusal));
    }
    if let Some(refusal) = throttle.locked_out(ip, &account).await {
        return Err(login_refused(refusal));
    }
    let (found, firm_exists) = match state.registry.firm(body.firm.trim()).await {
        Ok(_) => (
            state
                .registry
                .user_for_login(body.firm.trim(), &body.email)
                .await?,
            true,
        ),
        Err(crate::registry::StoreError::NotFound(_)) => (None, false),
        Err(e) => return Err(e.into()),
    };
    let email = body.email.trim().to_lowercase();
    let password = body.password;
    let Some(_permit) = state.accounts.password_permit().await else {
        return Err(Problem::too_many_requests(1));
    };
    let ok_user = tokio::task::spawn_blocking(move || match found {
        Some((user, Some(hash))) if user.disabled_at.is_none() => {
            passwords::verify(&hash, &password).then_some(user)
        }
        _ => {
            passwords::verify_dummy(&password);
            None
        }
    })
    .await
    .map_err(Problem::internal)?;
    let Some(user) = ok_user else {
        metrics::counter!("scopegate_auth_failures_total", "endpoint" => "settings_login", "reason" => "refused")
            .increment(1);
        if firm_exists {
            let entry = crate::access_trail::NewEntry::firm(
                body.firm.trim(),
                crate::access_trail::Kind::LoginFailed,
                &email,
                &ip.to_string(),
                json!({ "email": email }),
            );
            // The refusal stands whether or not the trail took it.
            let _ = crate::http::admin::trail::enter(&state, entry).await;
        }
        if let Some(refusal) = throttle.record_failure(ip, &account).await {
            return Err(login_refused(refusal));
        }
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            LOGIN_REFUSED,
        ));
    };
    let id = state
        .registry
        .create_session(&user, state.accounts.max_ms)
        .await?;
    let entry = crate::access_trail::NewEntry::firm(
        &user.firm_id,
        crate::access_trail::Kind::LoginSucceeded,
        &user.email,
        &ip.to_string(),
        json!({ "user_id": user.id, "role": user.role }),
    );
    crate::http::admin::trail::enter(&state, entry).await?;
    tracing::info!(firm = %user.firm_id, user = %user.id, "settings login");
    let firm = state.registry.firm(&user.firm_id).await?;
    let body = me_body(
        &state,
        &user,
        &firm.name,
        &crate::accounts::sessions::csrf_token(&id),
    );
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie_header(&state, &id));
    Ok(response)
}

/// Logs out: the session is deleted and the cookie cleared.
#[utoipa::path(delete, path = "/admin/v1/session", tag = "admin",
    responses((status = 204, description = "Logged out")))]
pub async fn logout(State(state): State<AppState>, session: Session) -> Result<Response, Problem> {
    state.registry.end_session(&session.id_sha256).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear_cookie_header(&state));
    Ok(response)
}

fn me_body(
    state: &AppState,
    user: &crate::accounts::users::FirmUser,
    firm_name: &str,
    csrf: &str,
) -> Value {
    json!({
        "user": user,
        "firm": { "id": user.firm_id, "name": firm_name },
        "csrf_token": csrf,
        "session": { "idle_timeout_secs": state.accounts.idle_ms / 1000 },
        "panels": panels(state, user.role.manages()),
    })
}

/// The connectors' tabs on the settings page (id, title, intro, and whether
/// the operator configured what the connector needs), then, for those who
/// manage the firm, the privacy office's tabs.
fn panels(state: &AppState, manages: bool) -> Value {
    let connectors = state.connectors.iter().filter_map(|r| {
        let panel = r.connector.settings_panel()?;
        Some(json!({
            "id": r.connector.id(),
            "title": panel.title,
            "intro": panel.intro,
            "available": r.connector.available(&r.capabilities),
        }))
    });
    let office = if manages {
        crate::http::settings::office::panels()
    } else {
        Vec::new()
    };
    Value::Array(connectors.chain(office).collect())
}

/// Who is logged in, their firm, and the CSRF token for state-changing requests.
#[utoipa::path(get, path = "/admin/v1/me", tag = "admin",
    responses((status = 200, description = "The session's user and firm, and the CSRF token", body = Object)))]
pub async fn me(State(state): State<AppState>, session: Session) -> Result<Json<Value>, Problem> {
    let firm = state.registry.firm(session.firm()).await?;
    Ok(Json(me_body(
        &state,
        &session.user,
        &firm.name,
        &session.csrf_token,
    )))
}
