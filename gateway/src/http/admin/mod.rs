//! The JSON admin API under `/admin/v1`, which the settings page is built on.
//! Every handler takes a [`Session`]: the firm comes from the session only,
//! and any id in a path or body is looked up within that firm, so another
//! firm's ids answer 404 exactly like unknown ones. Every request that is not
//! GET/HEAD must carry the session's CSRF token in `X-CSRF-Token`.

pub mod choices;
pub mod connectors;
pub mod credentials;
pub mod ledger;
pub mod outbound;
pub mod page_limit;
pub mod privacy;
pub mod security;
pub mod session;
pub mod sharing;
pub mod trail;
pub mod users;

use super::problem::Problem;
use crate::accounts::sessions::{csrf_token, COOKIE};
use crate::accounts::users::FirmUser;
use crate::http::AppState;
use crate::tenancy::FirmScope;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::Router;

/// The header holding the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(session::routes())
        .merge(connectors::routes())
        .merge(credentials::routes())
        .merge(outbound::routes())
        .merge(ledger::routes())
        .merge(privacy::routes())
        .merge(security::routes())
        .merge(trail::routes())
        .merge(users::routes())
}

/// A request from a logged-in person; for non-GET requests the CSRF token was checked.
pub struct Session {
    pub user: FirmUser,
    pub id_sha256: String,
    pub csrf_token: String,
    /// The client's address as the gateway believes it (see `client_ip`), for the access trail.
    pub from: String,
}

impl FirmScope for Session {
    fn firm_id(&self) -> &str {
        &self.user.firm_id
    }
}

/// The session id from the `Cookie` header, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

fn unauthenticated() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "log in to settings first; your session may have timed out",
    )
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let id = session_cookie(&parts.headers).ok_or_else(unauthenticated)?;
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !crate::secrets::constant_time_eq(sent.as_bytes(), csrf_token(&id).as_bytes()) {
                return Err(Problem::forbidden(
                    "missing or wrong X-CSRF-Token; reload the settings page",
                ));
            }
        }
        let live = state
            .registry
            .resume_session(&id, state.accounts.idle_ms)
            .await?
            .ok_or_else(unauthenticated)?;
        let from = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|peer| {
                crate::http::client_ip::client_ip(
                    peer.0.ip(),
                    &parts.headers,
                    &state.config.trusted_proxies,
                )
                .to_string()
            })
            .unwrap_or_else(|| "unknown".into());
        Ok(Session {
            user: live.user,
            id_sha256: live.id_sha256,
            csrf_token: live.csrf_token,
            from,
        })
    }
}

impl Session {
    pub fn firm(&self) -> &str {
        &self.user.firm_id
    }

    /// 403 unless an owner or admin.
    pub fn require_manager(&self) -> Result<(), Problem> {
        if self.user.role.manages() {
            Ok(())
        } else {
            Err(Problem::forbidden(
                "only the firm's owners and admins may do this",
            ))
        }
    }

    /// 403 unless the person may read the audit views.
    pub fn require_auditor(&self) -> Result<(), Problem> {
        if self.user.role.audits() {
            Ok(())
        } else {
            Err(Problem::forbidden(
                "only owners, admins and bookkeepers may read the outbound log",
            ))
        }
    }

    /// An event this person caused, for the firm's access trail.
    pub fn trail_entry(
        &self,
        kind: crate::access_trail::Kind,
        what: serde_json::Value,
    ) -> crate::access_trail::NewEntry {
        crate::access_trail::NewEntry::firm(self.firm(), kind, &self.user.email, &self.from, what)
    }

    /// How the consent ledger names this person.
    pub fn actor(&self) -> String {
        format!("{} (settings)", self.user.email)
    }
}

/// Parses a JSON body into `T`, refusing other content types (which also
/// keeps cross-site HTML forms out) with a problem naming what was wrong.
pub fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Problem> {
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            "send the body as application/json",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")))
}
