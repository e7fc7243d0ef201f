//! Bearer-token authentication for connector APIs (RFC 6750). The firm, the
//! grant and the scopes come from the token, never from the request.

use super::problem::Problem;
use crate::app::AppState;
use crate::catalogue::Connector;
use crate::registry::credentials::TokenGrant;
use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use std::sync::Arc;

/// A request authenticated by a live token of an enabled, currently-consented grant.
pub struct Authorized {
    pub grant: TokenGrant,
    pub connector: Arc<Connector>,
}

fn invalid_token(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", detail).with_header(
        WWW_AUTHENTICATE,
        &format!(
            "Bearer realm=\"scopegate\", error=\"invalid_token\", error_description=\"{detail}\""
        ),
    )
}

impl FromRequestParts<AppState> for Authorized {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| invalid_token("a bearer token is required"))?;
        let grant = state
            .registry
            .resolve_token(token)
            .await?
            .ok_or_else(|| invalid_token("the access token is invalid, expired or revoked"))?;
        let connector = state
            .catalogue
            .get(&grant.connector)
            .ok_or_else(|| Problem::internal("token of an unknown connector"))?;
        if connector.schema_hash != grant.schema_hash {
            return Err(Problem::forbidden(format!(
                "the firm consented to an earlier data contract of {}; nothing is shared until a firm admin re-consents to version {}",
                connector.id(),
                connector.contract.manifest.contract_version
            )));
        }
        Ok(Self { grant, connector })
    }
}

impl Authorized {
    /// 403 `insufficient_scope` unless the token holds `scope` for connector `connector_id`.
    pub fn require(&self, connector_id: &str, scope: &str) -> Result<(), Problem> {
        if self.grant.connector != connector_id || !self.grant.scopes.iter().any(|s| s == scope) {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("this token lacks scope {scope}"),
            )
            .with_header(
                WWW_AUTHENTICATE,
                &format!(
                    "Bearer realm=\"scopegate\", error=\"insufficient_scope\", scope=\"{scope}\""
                ),
            ));
        }
        Ok(())
    }
}
