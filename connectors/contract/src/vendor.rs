//! The extractor of vendor-facing handlers: the grant the gateway resolved
//! from the request's bearer token. The firm comes from here, never from a
//! parameter.

use crate::{ConnectorError, FirmGrant};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// The authenticated third party of this request.
#[derive(Debug, Clone)]
pub struct Vendor(pub FirmGrant);

impl Vendor {
    /// 403 `insufficient_scope` unless the grant's token holds `scope`.
    pub fn require(&self, scope: &str) -> Result<&FirmGrant, ConnectorError> {
        if self.0.has_scope(scope) {
            Ok(&self.0)
        } else {
            Err(ConnectorError::InsufficientScope(scope.to_string()))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Vendor {
    type Rejection = ConnectorError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ConnectorError> {
        parts
            .extensions
            .get::<FirmGrant>()
            .cloned()
            .map(Vendor)
            .ok_or_else(|| {
                ConnectorError::Internal(
                    "a vendor route was reached without a resolved grant".into(),
                )
            })
    }
}
