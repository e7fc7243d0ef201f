//! One error envelope for the HTTP API: RFC 9457 `application/problem+json`
//! with a useful `detail`. Internal causes are logged, never shown.

use crate::registry::StoreError;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An HTTP error as the client will see it.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: String,
    /// Extra members, e.g. the offending `field`.
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            title,
            detail: detail.into(),
            extra: Default::default(),
            headers: Vec::new(),
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad request", detail)
    }
    pub fn unprocessable(field: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid field", detail)
            .with("field", field.trim_start_matches('/'))
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found", detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable",
            detail,
        )
    }
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            format!("slow down; retry after {retry_after_secs} s"),
        )
        .with_header(header::RETRY_AFTER, &retry_after_secs.max(1).to_string())
    }
    /// A 500 whose cause is logged here and not shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            "the gateway failed to handle the request; it has been logged",
        )
    }
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }
    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({ "type": "about:blank", "title": self.title, "status": self.status.as_u16(), "detail": self.detail });
        if let serde_json::Value::Object(map) = &mut body {
            map.extend(self.extra);
        }
        let mut response =
            (self.status, serde_json::to_string(&body).expect("json")).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(d) => Problem::not_found(d),
            StoreError::Conflict(d) => Problem::conflict(d),
            StoreError::Invalid(d) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request", d)
            }
            StoreError::Unreachable { .. } => {
                tracing::error!(error = %e, "database unreachable");
                Problem::unavailable(
                    "a database the gateway needs is unreachable; try again shortly",
                )
            }
            other => Problem::internal(other),
        }
    }
}

impl From<crate::outbound_log::LogError> for Problem {
    fn from(e: crate::outbound_log::LogError) -> Self {
        tracing::error!(error = %e, "outbound log refused a record; nothing was sent");
        Problem::unavailable("the outbound log could not record this response, so nothing was sent; try again shortly")
    }
}
