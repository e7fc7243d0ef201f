//! The OAuth 2.0 endpoints vendors use: the client-credentials grant
//! (RFC 6749 s4.4) at `/oauth/token` and token revocation (RFC 7009) at
//! `/oauth/revoke`. Errors follow RFC 6749 s5.2 (`application/json` with
//! `error` and `error_description`), as OAuth client libraries expect. Every
//! token issued is entered in its firm's access trail first.

use super::client_ip::client_ip;
use super::throttle::Refusal;
use crate::http::AppState;
use crate::registry::credentials::AuthenticatedClient;
use crate::security::tripwires::ClientIdKind;
use crate::security::{EventKind, NewSecurityEvent};
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
    /// A refusal by the failure budgets: 429, or 503 when the shared budgets
    /// cannot be consulted (they fail closed).
    fn refused(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Throttled(secs) => Self::throttled(secs),
            Refusal::Unavailable => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                retry_after: Some(1),
                ..Self::new(
                    "temporarily_unavailable",
                    "the shared failure budgets cannot be consulted; try again shortly",
                )
            },
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

/// A schema for the OpenAPI document, written as JSON.
fn doc_schema(
    schema: serde_json::Value,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::RefOr::T(serde_json::from_value(schema).expect("a valid schema"))
}

/// The token request's form, as the OpenAPI document describes it.
pub struct TokenForm;

impl utoipa::PartialSchema for TokenForm {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        doc_schema(json!({
            "type": "object",
            "required": ["grant_type"],
            "additionalProperties": { "type": "string", "description": "other parameters are ignored; none may be repeated" },
            "properties": {
                "grant_type": { "type": "string", "enum": ["client_credentials"] },
                "scope": { "type": "string", "description": "space-separated scopes of the credential's connector; all of them when left out" },
                "client_id": { "type": "string", "description": "with client_secret, instead of HTTP Basic" },
                "client_secret": { "type": "string" }
            }
        }))
    }
}

impl utoipa::ToSchema for TokenForm {}

/// The revocation request's form (RFC 7009 s2.1).
pub struct RevokeForm;

impl utoipa::PartialSchema for RevokeForm {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        doc_schema(json!({
            "type": "object",
            "required": ["token"],
            "additionalProperties": { "type": "string", "description": "other parameters are ignored; none may be repeated" },
            "properties": {
                "token": { "type": "string", "description": "an access token issued to this client" },
                "token_type_hint": { "type": "string" },
                "client_id": { "type": "string", "description": "with client_secret, instead of HTTP Basic" },
                "client_secret": { "type": "string" }
            }
        }))
    }
}

impl utoipa::ToSchema for RevokeForm {}

/// An RFC 6749 s5.2 error body.
pub struct OAuthErrorBody;

impl utoipa::PartialSchema for OAuthErrorBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        doc_schema(json!({
            "type": "object",
            "required": ["error", "error_description"],
            "properties": {
                "error": { "type": "string", "enum": [
                    "invalid_request", "invalid_client", "unsupported_grant_type", "unauthorized_client",
                    "invalid_scope", "slow_down", "temporarily_unavailable"
                ] },
                "error_description": { "type": "string" }
            }
        }))
    }
}

impl utoipa::ToSchema for OAuthErrorBody {}

/// A token response (RFC 6749 s5.1).
pub struct TokenBody;

impl utoipa::PartialSchema for TokenBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        doc_schema(json!({
            "type": "object",
            "required": ["access_token", "token_type", "expires_in", "scope"],
            "properties": {
                "access_token": { "type": "string" },
                "token_type": { "type": "string", "enum": ["Bearer"] },
                "expires_in": { "type": "integer", "minimum": 1 },
                "scope": { "type": "string" }
            }
        }))
    }
}

impl utoipa::ToSchema for TokenBody {}

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

/// The client credentials a token request presents, `(client_id, secret)`,
/// read exactly as `/oauth/token` reads them (form body, then HTTP Basic or
/// body parameters); for the property tests and fuzz targets.
#[doc(hidden)]
pub fn presented_credentials(headers: &HeaderMap, body: &[u8]) -> Option<(String, String)> {
    let params = parse_form(headers, body).ok()?;
    let client = presented_client(headers, &params).ok()?;
    Some((client.client_id, client.secret.expose_secret().to_string()))
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
///
/// A decoy client id (a tripwire) is treated exactly as a real client id
/// with a wrong secret: the same lookups, the same budget, the same answer;
/// and it raises an alert.
async fn authenticate(
    state: &AppState,
    ip: IpAddr,
    client: &PresentedClient,
    endpoint: &str,
) -> Result<AuthenticatedClient, OAuthError> {
    let throttle = &state.auth_throttle;
    let mut kind = None;
    if let Some(refusal) = throttle.ip_blocked(ip).await {
        let found = client_id_kind(state, &client.client_id).await?;
        if found == ClientIdKind::Unknown {
            count_failure("unknown_client");
            return Err(OAuthError::refused(refusal));
        }
        kind = Some(found);
    }
    let found = state
        .registry
        .authenticate_client(&client.client_id, client.secret.expose_secret())
        .await
        .map_err(OAuthError::server)?;
    if let Some(found) = found {
        return Ok(found);
    }
    let kind = match kind {
        Some(kind) => kind,
        None => client_id_kind(state, &client.client_id).await?,
    };
    if let ClientIdKind::Decoy(decoy) = &kind {
        state.alerts.raise(NewSecurityEvent {
            firm_id: decoy.firm_id.clone(),
            kind: EventKind::DecoyCredential,
            grant_id: None,
            connector: None,
            tripwire_id: Some(decoy.tripwire_id.clone()),
            source_ip: Some(ip.to_string()),
            detail: format!(
                "decoy credential \"{}\" was presented at {endpoint}",
                decoy.label
            ),
        });
    }
    let known = kind != ClientIdKind::Unknown;
    tracing::warn!(%ip, known_client = known, "failed client authentication");
    let lockout = if known {
        count_failure("wrong_secret");
        match throttle.client_blocked(&client.client_id).await {
            Some(refusal) => Some(refusal),
            None => throttle.record_client_failure(ip, &client.client_id).await,
        }
    } else {
        count_failure("unknown_client");
        throttle.record_ip_failure(ip).await
    };
    match lockout {
        Some(refusal) => Err(OAuthError::refused(refusal)),
        None => Err(OAuthError::invalid_client(client.used_basic)),
    }
}

/// A failed client authentication at the token endpoints, by reason (never by client).
fn count_failure(reason: &'static str) {
    metrics::counter!("scopegate_auth_failures_total", "endpoint" => "oauth_token", "reason" => reason)
        .increment(1);
}

/// Whether this gateway ever issued `client_id` (credentials are revoked,
/// never deleted) or planted it as a decoy.
async fn client_id_kind(state: &AppState, client_id: &str) -> Result<ClientIdKind, OAuthError> {
    state
        .registry
        .client_id_kind(client_id)
        .await
        .map_err(OAuthError::server)
}

fn caller_ip(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    client_ip(peer.ip(), headers, &state.config.trusted_proxies)
}

/// Issues an access token for a firm's credential (client-credentials grant, RFC 6749 s4.4).
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = inline(TokenForm), content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "A bearer token, bound to one firm's grant", body = inline(TokenBody)),
              (status = 400, description = "invalid_request (not a form, a repeated parameter, no grant_type, both Basic and form credentials), unsupported_grant_type, unauthorized_client (the firm must re-consent) or invalid_scope", body = inline(OAuthErrorBody)),
              (status = 401, description = "invalid_client: unknown or wrong credentials (WWW-Authenticate: Basic when Basic was used)", body = inline(OAuthErrorBody)),
              (status = 429, description = "slow_down: too many failed authentications; see Retry-After", body = inline(OAuthErrorBody)),
              (status = 503, description = "temporarily_unavailable", body = inline(OAuthErrorBody))),
    security(("client_basic" = []), ()))]
#[tracing::instrument(skip_all)]
pub async fn token(
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
    let presented = match presented_client(&headers, &params) {
        Ok(presented) => presented,
        Err(e) => {
            count_failure("malformed");
            // Counted against the address; the answer stays the malformed request's.
            let _ = state.auth_throttle.record_ip_failure(ip).await;
            return Err(e);
        }
    };
    let client = authenticate(&state, ip, &presented, "/oauth/token").await?;
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
        .map_err(|e| match e {
            // Revoked between authentication and issue.
            crate::registry::StoreError::Conflict(_) => {
                OAuthError::invalid_client(presented.used_basic)
            }
            // The registry could not store the token (unreachable, disk full):
            // the credential is fine, so never tell the vendor otherwise.
            other => OAuthError::server(other),
        })?;
    // Entered in the firm's access trail before the token is handed out: a
    // token the trail could not take is withheld (it exists, unknown to anyone).
    let entry = crate::access_trail::NewEntry::firm(
        &client.firm_id,
        crate::access_trail::Kind::TokenIssued,
        &client.client_id,
        &ip.to_string(),
        json!({ "connector": client.connector, "client_id": client.client_id, "scopes": issued.scopes, "expires_at": issued.expires_at }),
    );
    crate::access_trail::record(&state.registry, &state.log_keys, entry)
        .await
        .map_err(OAuthError::server)?;
    metrics::counter!("scopegate_tokens_issued_total", "connector" => connector.id().to_string())
        .increment(1);
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

/// Revokes an access token issued to this client (RFC 7009); an unknown token is not an error.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = inline(RevokeForm), content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Revoked, or it was not a live token of this client"),
              (status = 400, description = "invalid_request (not a form, a repeated parameter, no token, both Basic and form credentials)", body = inline(OAuthErrorBody)),
              (status = 401, description = "invalid_client: unknown or wrong credentials", body = inline(OAuthErrorBody)),
              (status = 429, description = "slow_down: too many failed authentications; see Retry-After", body = inline(OAuthErrorBody)),
              (status = 503, description = "temporarily_unavailable", body = inline(OAuthErrorBody))),
    security(("client_basic" = []), ()))]
#[tracing::instrument(skip_all)]
pub async fn revoke(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let params = parse_form(&headers, &body)?;
    let ip = caller_ip(&state, peer, &headers);
    let presented = presented_client(&headers, &params)?;
    let client = authenticate(&state, ip, &presented, "/oauth/revoke").await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn form_headers(authorization: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        if let Some(value) = authorization {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn form_encoded(text: &str) -> String {
        form_urlencoded::byte_serialize(text.as_bytes()).collect()
    }

    /// RFC 6749 s2.3.1: both halves form-encoded, joined by `:`, base64.
    fn basic(id: &str, secret: &str) -> String {
        let pair = format!("{}:{}", form_encoded(id), form_encoded(secret));
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn basic_credentials_are_read_back_as_sent(id in "\\PC{0,60}", secret in "\\PC{0,60}") {
            let headers = form_headers(Some(&basic(&id, &secret)));
            prop_assert_eq!(
                presented_credentials(&headers, b"grant_type=client_credentials"),
                Some((id, secret))
            );
        }

        #[test]
        fn body_credentials_are_read_back_as_sent(id in "\\PC{0,60}", secret in "\\PC{0,60}") {
            let body = format!("grant_type=client_credentials&client_id={}&client_secret={}", form_encoded(&id), form_encoded(&secret));
            prop_assert_eq!(
                presented_credentials(&form_headers(None), body.as_bytes()),
                Some((id, secret))
            );
        }

        #[test]
        fn both_methods_at_once_or_a_repeated_parameter_are_refused(id in "\\PC{0,30}", secret in "\\PC{0,30}") {
            let headers = form_headers(Some(&basic(&id, &secret)));
            let body = format!("client_id={}", form_encoded(&id));
            prop_assert_eq!(presented_credentials(&headers, body.as_bytes()), None);
            let repeated = format!("client_id={0}&client_secret=s&client_id={0}", form_encoded(&id));
            prop_assert_eq!(presented_credentials(&form_headers(None), repeated.as_bytes()), None);
        }

        #[test]
        fn any_header_and_body_are_read_without_panicking(
            authorization in proptest::collection::vec(any::<u8>(), 0..80),
            basic_payload in proptest::collection::vec(any::<u8>(), 0..60),
            body in proptest::collection::vec(any::<u8>(), 0..120),
        ) {
            let mut headers = form_headers(None);
            if let Ok(value) = HeaderValue::from_bytes(&authorization) {
                headers.insert(header::AUTHORIZATION, value);
            }
            presented_credentials(&headers, &body);
            let encoded = base64::engine::general_purpose::STANDARD.encode(&basic_payload);
            presented_credentials(&form_headers(Some(&format!("Basic {encoded}"))), &body);
        }
    }
}
