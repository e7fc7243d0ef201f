//! The one error type a connector returns. It carries no rendering of its own:
//! as a response it is an empty body with the error attached as an extension,
//! and the gateway's problem layer renders it as `application/problem+json`
//! (one renderer for every error the gateway sends).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why a connector could not complete a request or a job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// Malformed input (400), naming the field when there is one.
    #[error("{detail}")]
    BadRequest {
        field: Option<String>,
        detail: String,
    },
    /// Well-formed input that fails its schema or a rule (422), naming the field.
    #[error("{field}: {detail}")]
    Invalid { field: String, detail: String },
    /// The grant lacks this scope (403 `insufficient_scope`).
    #[error("this token lacks scope {0}")]
    InsufficientScope(String),
    /// The grant was switched off or its consent is stale: stop sending.
    #[error("the grant is no longer active")]
    Stopped,
    /// What the request names does not exist for this firm (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// Not allowed in the firm's current state, e.g. the connector is off (403).
    #[error("{0}")]
    Refused(String),
    /// The third party's own service failed or answered nonsense (502).
    #[error("{0}")]
    Upstream(String),
    /// A dependency (a database, the outbound log) is unavailable now (503).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected state (500); the cause is logged, never shown.
    #[error("{0}")]
    Internal(String),
}

impl ConnectorError {
    pub fn bad_request(field: Option<&str>, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            field: field.map(str::to_string),
            detail: detail.into(),
        }
    }

    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.trim_start_matches('/').to_string(),
            detail: detail.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InsufficientScope(_) | Self::Stopped | Self::Refused(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<crate::SchemaViolation> for ConnectorError {
    fn from(v: crate::SchemaViolation) -> Self {
        Self::invalid(&v.field, v.message)
    }
}

impl IntoResponse for ConnectorError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}
