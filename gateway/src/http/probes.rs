//! Out-of-scope probes: a valid bearer token asking for a vendor route its
//! grant has no scope for, a route of another connector, or a path under the
//! vendor API prefix that does not exist. The request is answered exactly as
//! it would be anyway; the probe raises a security event naming the firm and
//! the grant.

use super::client_ip::client_ip;
use super::problem::Problem;
use crate::http::AppState;
use crate::security::{EventKind, NewSecurityEvent};
use axum::extract::{ConnectInfo, Request, State};
use std::net::SocketAddr;

/// Where vendor routes live.
pub const VENDOR_PREFIX: &str = "/v1/";

/// The caller's address, if the server recorded the peer.
pub fn caller(state: &AppState, request: &Request) -> Option<String> {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>()?.0;
    Some(client_ip(peer.ip(), request.headers(), &state.config.trusted_proxies).to_string())
}

/// Raises the alert for a probe by the grant `(firm, grant, connector)`.
pub fn raise(
    state: &AppState,
    (firm_id, grant_id, connector): (&str, &str, &str),
    source_ip: Option<String>,
    detail: String,
) {
    state.alerts.raise(NewSecurityEvent {
        firm_id: firm_id.to_string(),
        kind: EventKind::OutOfScope,
        grant_id: Some(grant_id.to_string()),
        connector: Some(connector.to_string()),
        tripwire_id: None,
        source_ip,
        detail,
    });
}

/// The answer to a path nothing serves: 404, and a probe when a valid
/// vendor token asked under the vendor API prefix.
pub async fn unknown_path(State(state): State<AppState>, request: Request) -> Problem {
    let path = request.uri().path();
    if path.starts_with(VENDOR_PREFIX) {
        if let Some(token) = super::throttle::bearer_token(request.headers()) {
            // A registry that cannot answer leaves the 404 as it is.
            if let Ok(Some(grant)) = state.registry.resolve_token(token).await {
                let method = request.method().as_str();
                raise(
                    &state,
                    (&grant.firm_id, &grant.grant_id, &grant.connector),
                    caller(&state, &request),
                    format!(
                        "a {} token asked for {method} {path}, which no connector serves",
                        grant.connector
                    ),
                );
            }
        }
    }
    Problem::not_found("no such endpoint; see /openapi.json")
}
