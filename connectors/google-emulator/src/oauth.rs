//! Google's OAuth 2.0 endpoints as the connector uses them: authorize (which
//! approves at once, as if the user clicked "Allow"), token (authorization
//! code with PKCE S256, and refresh) and revoke, with Google's error bodies.

use crate::{now_ms, Access, Code, Emulator, Refresh};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn form(text: &str) -> HashMap<String, String> {
    form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        json!({ "error": error, "error_description": description }).to_string(),
    )
        .into_response()
}

/// `GET /o/oauth2/v2/auth`: checks the request and redirects back with a code.
pub async fn authorize(State(emulator): State<Emulator>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let q = form(&query);
    let config = emulator.config();
    let fail = |detail: &str| {
        emulator.record("authorize", "GET", "/o/oauth2/v2/auth", 400, &query);
        (StatusCode::BAD_REQUEST, format!("Error 400: {detail}")).into_response()
    };
    if q.get("client_id") != Some(&config.client_id) {
        return fail("invalid_client: The OAuth client was not found.");
    }
    if q.get("response_type").map(String::as_str) != Some("code") {
        return fail("unsupported_response_type");
    }
    let Some(redirect_uri) = q.get("redirect_uri").filter(|u| !u.is_empty()) else {
        return fail("invalid_request: Missing required parameter: redirect_uri");
    };
    let Some(scope) = q.get("scope").filter(|s| !s.is_empty()) else {
        return fail("invalid_request: Missing required parameter: scope");
    };
    let Some(challenge) = q.get("code_challenge").filter(|c| c.len() >= 43) else {
        return fail("invalid_request: code_challenge is required");
    };
    if q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return fail("invalid_request: code_challenge_method must be S256");
    }
    let code = random_token("4/0A");
    let account = {
        let mut world = emulator.0.world.lock().expect("world");
        world.accounts += 1;
        let account = q
            .get("login_hint")
            .cloned()
            .unwrap_or_else(|| format!("user{}@emulator.test", world.accounts));
        world.codes.insert(
            code.clone(),
            Code {
                client_id: config.client_id.clone(),
                redirect_uri: redirect_uri.clone(),
                challenge: challenge.clone(),
                scope: scope.clone(),
                account: account.clone(),
            },
        );
        account
    };
    let _ = account;
    emulator.record("authorize", "GET", "/o/oauth2/v2/auth", 302, &query);
    let mut target = url_with_query(redirect_uri);
    let pairs: Vec<(&str, &str)> = [
        ("state", q.get("state").map(String::as_str).unwrap_or("")),
        ("code", code.as_str()),
        ("scope", scope.as_str()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    for (k, v) in pairs {
        target.push_str(&format!(
            "{}={}&",
            k,
            form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
        ));
    }
    target.pop();
    (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
}

fn url_with_query(base: &str) -> String {
    if base.contains('?') {
        format!("{base}&")
    } else {
        format!("{base}?")
    }
}

/// Client authentication: HTTP Basic or body parameters.
fn client_ok(headers: &HeaderMap, body: &HashMap<String, String>, id: &str, secret: &str) -> bool {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let Ok(decoded) = STANDARD.decode(basic) else {
            return false;
        };
        let text = String::from_utf8_lossy(&decoded).to_string();
        let Some((user, pass)) = text.split_once(':') else {
            return false;
        };
        let decode = |s: &str| {
            form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return decode(user) == id && decode(pass) == secret;
    }
    body.get("client_id").map(String::as_str) == Some(id)
        && body.get("client_secret").map(String::as_str) == Some(secret)
}

/// `POST /token`
pub async fn token(State(emulator): State<Emulator>, headers: HeaderMap, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).to_string();
    let response = token_inner(&emulator, &headers, &text);
    emulator.record("token", "POST", "/token", response.status().as_u16(), &text);
    response
}

fn token_inner(emulator: &Emulator, headers: &HeaderMap, text: &str) -> Response {
    let q = form(text);
    let config = emulator.config();
    if !client_ok(headers, &q, &config.client_id, &config.client_secret) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        );
    }
    let mut world = emulator.0.world.lock().expect("world");
    match q.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(code) = q.get("code").and_then(|c| world.codes.remove(c)) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Malformed auth code.",
                );
            };
            if code.client_id != config.client_id
                || q.get("redirect_uri") != Some(&code.redirect_uri)
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "redirect_uri_mismatch",
                    "Bad Request",
                );
            }
            let verifier = q.get("code_verifier").cloned().unwrap_or_default();
            if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != code.challenge {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid code verifier.",
                );
            }
            let refresh = random_token("1//0g");
            let access = random_token("ya29.");
            world.refresh.insert(
                refresh.clone(),
                Refresh {
                    account: code.account.clone(),
                    scope: code.scope.clone(),
                    revoked: false,
                },
            );
            world.access.insert(
                access.clone(),
                Access {
                    account: code.account,
                    refresh: Some(refresh.clone()),
                    expires_at_ms: now_ms() + config.access_token_ttl_secs * 1000,
                    revoked: false,
                },
            );
            json_ok(json!({
                "access_token": access, "expires_in": config.access_token_ttl_secs,
                "refresh_token": refresh, "scope": code.scope, "token_type": "Bearer"
            }))
        }
        Some("refresh_token") => {
            let Some(refresh_token) = q.get("refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Missing required parameter: refresh_token",
                );
            };
            let Some(refresh) = world
                .refresh
                .get(refresh_token)
                .filter(|r| !r.revoked)
                .cloned()
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Token has been expired or revoked.",
                );
            };
            let access = random_token("ya29.");
            world.access.insert(
                access.clone(),
                Access {
                    account: refresh.account,
                    refresh: Some(refresh_token.clone()),
                    expires_at_ms: now_ms() + config.access_token_ttl_secs * 1000,
                    revoked: false,
                },
            );
            json_ok(json!({
                "access_token": access, "expires_in": config.access_token_ttl_secs,
                "scope": refresh.scope, "token_type": "Bearer"
            }))
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type",
        ),
    }
}

fn json_ok(value: serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        value.to_string(),
    )
        .into_response()
}

/// `POST /revoke`: revokes an access or refresh token (a refresh token takes its access tokens with it).
pub async fn revoke(
    State(emulator): State<Emulator>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let text = String::from_utf8_lossy(&body).to_string();
    let mut q = form(&text);
    if !q.contains_key("token") {
        q = form(query.as_deref().unwrap_or(""));
    }
    let status = {
        let mut world = emulator.0.world.lock().expect("world");
        let token = q.get("token").cloned().unwrap_or_default();
        if let Some(r) = world.refresh.get_mut(&token).filter(|r| !r.revoked) {
            r.revoked = true;
            for a in world.access.values_mut() {
                if a.refresh.as_deref() == Some(token.as_str()) {
                    a.revoked = true;
                }
            }
            StatusCode::OK
        } else if let Some(a) = world.access.get_mut(&token).filter(|a| !a.revoked) {
            a.revoked = true;
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        }
    };
    emulator.record("revoke", "POST", "/revoke", status.as_u16(), &text);
    if status == StatusCode::OK {
        json_ok(json!({}))
    } else {
        oauth_error(status, "invalid_token", "Token expired or revoked")
    }
}
