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

/// Errors the framework answers by itself (405 with `Allow` from the router,
/// 413 from the body limit, an extractor's plain-text rejection) become
/// problem+json like every other error. Responses with a content type of
/// their own (problem+json, OAuth's JSON errors, HTML pages) are left alone.
pub async fn framework_errors(response: Response) -> Response {
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let plain = content_type.is_empty() || content_type.starts_with("text/plain");
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            format!("this endpoint does not take that method; it takes {allowed}")
        }
        StatusCode::PAYLOAD_TOO_LARGE => "the body is larger than 256 KiB".to_string(),
        _ if !text.is_empty() => text,
        _ => "the request was refused".to_string(),
    };
    let title = status.canonical_reason().unwrap_or("Error");
    let mut rendered = Problem::new(status, title, detail).into_response();
    for name in parts.headers.keys() {
        if name == header::CONTENT_TYPE
            || name == header::CONTENT_LENGTH
            || rendered.headers().contains_key(name)
        {
            continue;
        }
        for value in parts.headers.get_all(name) {
            rendered.headers_mut().append(name, value.clone());
        }
    }
    rendered
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(d) => Problem::not_found(d),
            StoreError::Conflict(d) => Problem::conflict(d),
            StoreError::Invalid(d) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request", d)
            }
            StoreError::Unreachable { .. } | StoreError::Unavailable(_) => {
                tracing::error!(error = %e, "database unavailable");
                Problem::unavailable(crate::registry::UNAVAILABLE_DETAIL)
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn rendered(response: Response) -> (Response, serde_json::Value) {
        let response = framework_errors(response).await;
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 4096).await.unwrap();
        (
            Response::from_parts(parts, axum::body::Body::empty()),
            serde_json::from_slice(&bytes).unwrap_or_default(),
        )
    }

    #[tokio::test]
    async fn framework_errors_become_problems_keeping_their_headers() {
        let mut not_allowed = StatusCode::METHOD_NOT_ALLOWED.into_response();
        not_allowed
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        let (response, body) = rendered(not_allowed).await;
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(response.headers()[header::ALLOW], "GET,HEAD");
        assert_eq!(body["status"], 405);
        assert!(body["detail"].as_str().unwrap().contains("GET,HEAD"));

        let rejection = (StatusCode::BAD_REQUEST, "Invalid URL: bad path").into_response();
        let (_, body) = rendered(rejection).await;
        assert_eq!(body["detail"], "Invalid URL: bad path");

        // Errors with a content type of their own (OAuth's JSON, problems) are left alone.
        let oauth = (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_request"})),
        )
            .into_response();
        let (response, body) = rendered(oauth).await;
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(body["error"], "invalid_request");
    }
}
