//! One Calendar API call, done properly: the connection may still sync
//! (connection active, re-read at most every [`CONNECTION_RECHECK`]; the
//! core refuses anything but a clean-up once the grant is off, checked before
//! every call) is re-checked first, the per-user and per-project rate caps
//! are respected (see `pacing`), the
//! core commits an outbound record before the request leaves and completes it
//! with the status after, and rate limits, server errors and calls without
//! an answer (the request timeout counts as none: status 0) are retried with
//! backoff (a 401 refreshes the access token once per attempt). A
//! `Retry-After` longer than `max_retry_after` is not slept here: the call
//! gives up at once so the pass ends and the connection is rescheduled.

use crate::backoff::{self, Verdict};
use crate::context::Ctx;
use crate::store::{self, Connection};
use crate::tokens::{TokenError, TokenSource};
use google_calendar3::api::Event;
use scopegate_contract::axum::http::Method;
use scopegate_contract::calls::{Call, CallBody};
use scopegate_contract::{CheckedPayload, ConnectorError, FirmGrant};
use serde_json::Value;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a pass trusts its last reading of the connection: a disconnect
/// (here or on another instance) stops its calls within this, without a
/// registry read before every call.
pub const CONNECTION_RECHECK: Duration = Duration::from_millis(500);

/// What to do at Google. An event to write is a checked payload: the bytes
/// the outbound log records are the ones its schema passed and the ones sent,
/// and they must decode as a Calendar API `Event` before anything leaves.
#[derive(Debug, Clone)]
pub enum Op {
    Insert(CheckedPayload),
    Update(String, CheckedPayload),
    Delete(String),
}

/// Why the call is made: a sync stops when the grant is switched off; a
/// clean-up the admin asked for (deleting created events) does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Sync,
    Cleanup,
}

/// Google's final answer to a call.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub reason: Option<String>,
}

/// Why a call was not completed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("syncing was switched off")]
    Stopped,
    #[error("Google refused the refresh token (invalid_grant): the user must connect again")]
    NeedsReconsent,
    #[error("Google kept refusing ({0}); will try again later")]
    Retry(String, Option<Duration>),
    #[error("{0}")]
    Failed(String),
}

impl From<ConnectorError> for CallError {
    fn from(e: ConnectorError) -> Self {
        match e {
            ConnectorError::Stopped => CallError::Stopped,
            ConnectorError::Unavailable(why) => CallError::Retry(why, None),
            other => CallError::Failed(other.to_string()),
        }
    }
}

/// The context shared by the calls of one connection.
pub struct Caller<'a> {
    pub ctx: &'a Ctx,
    pub grant: &'a FirmGrant,
    pub connection: &'a Connection,
    pub tokens: &'a TokenSource,
    pub purpose: Purpose,
    /// When the connection was last read and found still active.
    confirmed_at: Mutex<Option<Instant>>,
}

fn reason_of(body: &[u8]) -> Option<String> {
    let json: Value = serde_json::from_slice(body).ok()?;
    json["error"]["errors"][0]["reason"]
        .as_str()
        .or_else(|| json["error"]["status"].as_str())
        .map(str::to_string)
}

/// Percent-encodes one path segment.
fn segment(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl<'a> Caller<'a> {
    pub fn new(
        ctx: &'a Ctx,
        grant: &'a FirmGrant,
        connection: &'a Connection,
        tokens: &'a TokenSource,
        purpose: Purpose,
    ) -> Self {
        Self {
            ctx,
            grant,
            connection,
            tokens,
            purpose,
            confirmed_at: Mutex::new(None),
        }
    }

    /// True while the connection may sync (a clean-up goes on regardless).
    async fn may_go_on(&self) -> Result<bool, CallError> {
        if self.purpose == Purpose::Cleanup {
            return Ok(true);
        }
        let fresh = |at: &Option<Instant>| at.is_some_and(|at| at.elapsed() < CONNECTION_RECHECK);
        if fresh(&self.confirmed_at.lock().expect("confirmed")) {
            return Ok(true);
        }
        let current =
            store::connection_for_user(&self.ctx.caps, self.grant, &self.connection.firm_user_id)
                .await?;
        let active = current.is_some_and(|c| c.status == "active" && c.id == self.connection.id);
        if active {
            *self.confirmed_at.lock().expect("confirmed") = Some(Instant::now());
        }
        Ok(active)
    }
}

impl Caller<'_> {
    /// Performs `op` for diary entry `diary_id` (named in the log, never sent).
    pub async fn call(&self, op: &Op, diary_id: &str) -> Result<Answer, CallError> {
        let ctx = self.ctx;
        let settings = &ctx.settings;
        let events = format!(
            "{}calendars/{}/events",
            settings.api_base,
            segment(&self.connection.calendar_id)
        );
        // A write must be a Calendar API Event, checked before anything is logged or sent.
        if let Op::Insert(checked) | Op::Update(_, checked) = op {
            checked.decode::<Event>().map_err(|e| {
                CallError::Failed(format!(
                    "a checked event does not decode as a Calendar Event ({:?}); not sent",
                    e.classify()
                ))
            })?;
        }
        let cleanup = self.purpose == Purpose::Cleanup;
        let mut last = String::from("no attempt made");
        for attempt in 0..backoff::MAX_ATTEMPTS {
            if ctx.caps.is_stopping() || !self.may_go_on().await? {
                return Err(CallError::Stopped);
            }
            let user = ctx
                .runtime
                .limiter(&self.connection.id, settings.user_rate_per_second);
            user.wait_turn().await;
            // The fee earner with the fewest calls so far goes first (see `pacing`).
            ctx.runtime
                .project_limiter(settings.project_rate_per_minute)
                .wait_turn_ranked(user.admitted())
                .await;
            let token = match self
                .tokens
                .access_token(&ctx.caps, &ctx.settings, self.grant, cleanup)
                .await
            {
                Ok(t) => t,
                Err(TokenError::InvalidGrant) => return Err(CallError::NeedsReconsent),
                Err(TokenError::Stopped) => return Err(CallError::Stopped),
                Err(TokenError::Setup(e)) => return Err(CallError::Failed(e)),
                Err(TokenError::Transient(e)) => {
                    last = e;
                    ctx.pause(backoff::delay(attempt, None)).await;
                    continue;
                }
            };
            let (method, url, body) = match op {
                Op::Insert(event) => (Method::POST, events.clone(), CallBody::Json(event.clone())),
                Op::Update(id, event) => (
                    Method::PUT,
                    format!("{events}/{}", segment(id)),
                    CallBody::Json(event.clone()),
                ),
                Op::Delete(id) => (
                    Method::DELETE,
                    format!("{events}/{}", segment(id)),
                    CallBody::Empty,
                ),
            };
            let answer = ctx
                .caps
                .sender()
                .call(
                    self.grant,
                    Call {
                        method,
                        url,
                        bearer: Some(token.clone()),
                        body,
                        record_ids: vec![diary_id.to_string()],
                        note: None,
                        timeout: settings.request_timeout,
                        cleanup,
                    },
                )
                .await?;
            if answer.status == 0 {
                tracing::warn!(connection = %self.connection.id, timeout = ?settings.request_timeout, "Calendar API call got no answer");
            }
            let status = answer.status;
            let reason = (status >= 400).then(|| reason_of(&answer.body)).flatten();
            let retry_after = answer
                .retry_after
                .as_deref()
                .and_then(backoff::parse_retry_after);
            match backoff::classify(status, reason.as_deref()) {
                Verdict::Success | Verdict::Fatal => return Ok(Answer { status, reason }),
                Verdict::Unauthorized => {
                    self.tokens.invalidate(&token);
                    last = "401 from the Calendar API".into();
                }
                Verdict::Retry => {
                    last = format!(
                        "{status} {}",
                        reason.as_deref().unwrap_or("from the Calendar API")
                    );
                    if let Some(after) = retry_after.filter(|a| *a > settings.max_retry_after) {
                        // Not worth holding a worker slot for: the connection is rescheduled for after it.
                        return Err(CallError::Retry(
                            format!("{last}, Retry-After {} s", after.as_secs()),
                            Some(after),
                        ));
                    }
                    if attempt + 1 == backoff::MAX_ATTEMPTS {
                        return Err(CallError::Retry(last, retry_after));
                    }
                    ctx.pause(backoff::delay(attempt, retry_after)).await;
                }
            }
        }
        Err(CallError::Retry(last, None))
    }
}
