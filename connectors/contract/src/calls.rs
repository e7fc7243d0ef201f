//! Calls to a third party's API, made by the core for a connector: the send
//! record is committed first (with the SHA-256 of exactly the bytes sent),
//! the request goes out with the core's HTTP client (connect and request
//! timeouts, redirects never followed, the answer's body read up to a bound),
//! and the result is recorded. A connector names what it wants; it never
//! holds an HTTP client.

use crate::CheckedPayload;
use axum::http::Method;
use std::time::Duration;

/// The largest answer body a call reads; more is cut off (see [`Answer::truncated`]).
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// What a call carries.
#[derive(Debug, Clone)]
pub enum CallBody {
    /// Nothing (a GET or a DELETE).
    Empty,
    /// Firm data: sent as JSON, exactly the checked bytes.
    Json(CheckedPayload),
    /// Credentials exchanged with the third party's token endpoint (an
    /// authorization code, a refresh token; never firm data). Sent as given;
    /// like every send, the log keeps the SHA-256 and length of exactly these
    /// bytes (a hash of high-entropy secrets reveals nothing), with `fields`,
    /// and `shown_as` in the target so a reader sees what kind of body left.
    Credentials {
        content_type: String,
        /// An `Authorization` header (e.g. the client's Basic credentials).
        authorization: Option<String>,
        body: Vec<u8>,
        fields: Vec<String>,
        shown_as: String,
    },
}

/// One request to a third party.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub url: String,
    /// An OAuth access token, sent as `Authorization: Bearer`.
    pub bearer: Option<String>,
    pub body: CallBody,
    /// Ids of the firm records the call is about (named in the log, not sent).
    pub record_ids: Vec<String>,
    /// Added to the log's target, e.g. "(refresh the token of connection X)".
    pub note: Option<String>,
    /// How long the answer may take; past it the call counts as unanswered.
    pub timeout: Duration,
    /// A clean-up the firm asked for while switching the connector off (e.g.
    /// deleting what the gateway created, revoking a token): allowed after the
    /// switch-off, but never with firm data (a [`CallBody::Json`] body). Every
    /// other call stops once the grant is off.
    pub cleanup: bool,
}

impl Call {
    /// A call with no body, not a clean-up, with a 20 s timeout.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            bearer: None,
            body: CallBody::Empty,
            record_ids: Vec::new(),
            note: None,
            timeout: Duration::from_secs(20),
            cleanup: false,
        }
    }
}

/// What the third party answered.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// The HTTP status; 0 when no answer came (transport error, timeout, or a
    /// body longer than [`MAX_ANSWER_BYTES`]).
    pub status: u16,
    /// The `Retry-After` header, as sent.
    pub retry_after: Option<String>,
    pub content_type: Option<String>,
    /// The body, at most [`MAX_ANSWER_BYTES`].
    pub body: Vec<u8>,
    /// The body was longer than [`MAX_ANSWER_BYTES`] (and `status` is 0).
    pub truncated: bool,
}
