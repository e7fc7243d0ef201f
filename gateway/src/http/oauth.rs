//! The OAuth 2.0 endpoints vendors use: the client-credentials grant
//! (RFC 6749 s4.4) at `/oauth/token` and token revocation (RFC 7009) at
//! `/oauth/revoke`. Errors follow RFC 6749 s5.2 (`application/json` with
//! `error` and `error_description`), as OAuth client libraries expect.

use super::client_ip::client_ip;
use crate::http::AppState;
use crate::registry::credentials::AuthenticatedClient;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
}

/// An RFC 6749 s5.2 error response.
#[derive(Debug)]
pub struct OAuthError {
    code: &'static str,
    description: String,
    status: StatusCode,
    basic_challenge: bool,
    retry_after: Option<u64>,
}

impl OAuthError {
    fn new(code: &'static str, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            status: StatusCode::BAD_REQUEST,
            basic_challenge: false,
            retry_after: None,
        }
    }
    fn invalid_client(used_basic: bool) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            basic_challenge: used_basic,
            ..Self::new("invalid_client", "client authentication failed")
        }
    }
    fn throttled(secs: u64) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(secs),
            ..Self::new(
                "slow_down",
                format!("too many failed authentications; retry after {secs} s"),
            )
        }
    }
    fn server(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "token endpoint failed");
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            ..Self::new(
                "temporarily_unavailable",
                "the gateway could not complete the request; try again shortly",
            )
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({ "error": self.code, "error_description": self.description })),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.basic_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"scopegate\", charset=\"UTF-8\""),
            );
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

/// Form parameters, each at most once (RFC 6749 s3.2).
fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<BTreeMap<String, String>, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError::new(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let mut params = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(body) {
        if params.insert(key.to_string(), value.to_string()).is_some() {
            return Err(OAuthError::new(
                "invalid_request",
                format!("parameter {key} is repeated"),
            ));
        }
    }
    Ok(params)
}

/// Client credentials from HTTP Basic or the body; both at once is refused.
struct PresentedClient {
    client_id: String,
    secret: SecretString,
    used_basic: bool,
}

fn presented_client(
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
) -> Result<PresentedClient, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    let in_body = params.contains_key("client_id") || params.contains_key("client_secret");
    match basic {
        Some(_) if in_body => Err(OAuthError::new(
            "invalid_request",
            "use one client authentication method, not both Basic and body parameters",
        )),
        Some(encoded) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| OAuthError::invalid_client(true))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| OAuthError::invalid_client(true))?;
            let unescape = |s: &str| {
                form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default()
            };
            Ok(PresentedClient {
                client_id: unescape(id),
                secret: SecretString::from(unescape(secret)),
                used_basic: true,
            })
        }
        None => match (params.get("client_id"), params.get("client_secret")) {
            (Some(id), Some(secret)) => Ok(PresentedClient {
                client_id: id.clone(),
                secret: SecretString::from(secret.clone()),
                used_basic: false,
            }),
            _ => Err(OAuthError::invalid_client(false)),
        },
    }
}

/// Authenticates the client, counting failures against the brute-force budgets.
///
/// A failure naming a client id this gateway issued (even a revoked one)
/// counts against that client id only: a vendor retrying one firm's stale
/// credential must not lock itself out of its other firms behind the same
/// address. Failures naming client ids never issued here (a spray) count
/// against the address, and an address over that budget is refused for
/// unknown client ids without a look at the secret. A right secret is never
/// refused by anyone else's failures: client ids are not secret, and with
/// 256-bit secrets only the guesses need refusing.
async fn authenticate(
    state: &AppState,
    ip: IpAddr,
    client: &PresentedClient,
) -> Result<AuthenticatedClient, OAuthError> {
    let throttle = &state.auth_throttle;
    let ip_blocked = throttle.ip_blocked(ip);
    let mut known = None;
    if let Some(secs) = ip_blocked {
        let is_known = client_id_known(state, &client.client_id).await?;
        if !is_known {
            return Err(OAuthError::throttled(secs));
        }
        known = Some(is_known);
    }
    let found = state
        .registry
        .authenticate_client(&client.client_id, client.secret.expose_secret())
        .await
        .map_err(OAuthError::server)?;
    if let Some(found) = found {
        return Ok(found);
    }
    let known = match known {
        Some(known) => known,
        None => client_id_known(state, &client.client_id).await?,
    };
    tracing::warn!(%ip, known_client = known, "failed client authentication");
    let lockout = if known {
        match throttle.client_blocked(&client.client_id) {
            Some(secs) => Some(secs),
            None => throttle.record_client_failure(ip, &client.client_id),
        }
    } else {
        throttle.record_ip_failure(ip)
    };
    match lockout {
        Some(secs) => Err(OAuthError::throttled(secs)),
        None => Err(OAuthError::invalid_client(client.used_basic)),
    }
}

/// Whether this gateway ever issued `client_id` (credentials are revoked, never deleted).
async fn client_id_known(state: &AppState, client_id: &str) -> Result<bool, OAuthError> {
    if crate::secrets::check_format(crate::secrets::SecretKind::ClientId, client_id).is_err() {
        return Ok(false);
    }
    let row = sqlx::query("SELECT id FROM credentials WHERE client_id = $1")
        .bind(client_id)
        .fetch_optional(state.registry.pool())
        .await
        .map_err(OAuthError::server)?;
    Ok(row.is_some())
}

fn caller_ip(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    client_ip(peer.ip(), headers, &state.config.trusted_proxies)
}

#[tracing::instrument(skip_all)]
async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let params = parse_form(&headers, &body)?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::new("invalid_request", "grant_type is required"))?;
    let ip = caller_ip(&state, peer, &headers);
    let presented = presented_client(&headers, &params).inspect_err(|_| {
        state.auth_throttle.record_ip_failure(ip);
    })?;
    let client = authenticate(&state, ip, &presented).await?;
    if grant_type != "client_credentials" {
        return Err(OAuthError::new(
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported",
        ));
    }
    let connector = state
        .catalogue
        .get(&client.connector)
        .ok_or_else(|| OAuthError::server("grant names an unknown connector"))?;
    if connector.schema_hash != client.schema_hash {
        return Err(OAuthError::new("unauthorized_client", format!(
            "the firm consented to an earlier data contract of {}; a firm admin must re-consent to version {}",
            connector.id(), connector.contract.manifest.contract_version
        )));
    }
    let allowed = &connector.contract.manifest.scopes;
    let scopes: Vec<String> = match params.get("scope") {
        None => allowed.clone(),
        Some(text) => {
            let requested: Vec<String> = text
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if requested.is_empty() {
                return Err(OAuthError::new("invalid_scope", "scope is empty"));
            }
            if let Some(bad) = requested.iter().find(|s| !allowed.contains(s)) {
                return Err(OAuthError::new(
                    "invalid_scope",
                    format!(
                        "scope {bad} is not available; available: {}",
                        allowed.join(" ")
                    ),
                ));
            }
            requested
        }
    };
    let issued = state
        .registry
        .issue_token(&client, &scopes, state.config.token_ttl_secs as i64)
        .await
        .map_err(|_| OAuthError::invalid_client(presented.used_basic))?;
    let mut response = Json(json!({
        "access_token": issued.access_token.expose_secret(),
        "token_type": "Bearer",
        "expires_in": state.config.token_ttl_secs,
        "scope": issued.scopes.join(" "),
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

#[tracing::instrument(skip_all)]
async fn revoke(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let params = parse_form(&headers, &body)?;
    let ip = caller_ip(&state, peer, &headers);
    let presented = presented_client(&headers, &params)?;
    let client = authenticate(&state, ip, &presented).await?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::new("invalid_request", "token is required"))?;
    state
        .registry
        .revoke_token(&client, &SecretString::from(token.clone()))
        .await
        .map_err(OAuthError::server)?;
    Ok(StatusCode::OK.into_response())
}
