//! One Calendar API call, done properly: the connection may still sync (grant
//! enabled, connection active) is re-checked first, the per-user rate cap is
//! respected, an outbound record is committed before the request leaves and
//! completed with the status after, and rate limits, server errors and calls
//! without an answer (the request timeout counts as none: status 0) are
//! retried with backoff (a 401 refreshes the access token once per attempt).
//! A `Retry-After` longer than `max_retry_after` is not slept here: the call
//! gives up at once so the pass ends and the connection is rescheduled.

use super::backoff::{self, Verdict};
use super::store::{self, Connection};
use super::tokens::{HubToken, TokenError, TokenSource};
use super::GoogleContext;
use super::CONNECTOR;
use crate::outbound_log::{Direction, NewSend};
use google_calendar3::api::Event;
use google_calendar3::common::{Delegate, Retry};
use google_calendar3::CalendarHub;
use scopegate_contract::CheckedPayload;
use serde_json::Value;
use std::time::Duration;

/// What to do at Google. An event to write is a checked payload: the bytes
/// the outbound log records are the ones its schema passed, and the `Event`
/// handed to the Calendar client is decoded from exactly those bytes.
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

/// The context shared by the calls of one connection.
pub struct Caller<'a> {
    pub ctx: &'a GoogleContext,
    pub connection: &'a Connection,
    pub tokens: &'a TokenSource,
    pub schema_hash: &'a str,
    pub purpose: Purpose,
}

#[derive(Default)]
struct Capture {
    status: Option<u16>,
    retry_after: Option<Duration>,
}

impl Delegate for Capture {
    fn http_failure(
        &mut self,
        response: &google_calendar3::common::Response,
        _err: Option<&Value>,
    ) -> Retry {
        self.status = Some(response.status().as_u16());
        self.retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(backoff::parse_retry_after);
        Retry::Abort
    }
}

fn reason_of(json: &Value) -> Option<String> {
    json["error"]["errors"][0]["reason"]
        .as_str()
        .or_else(|| json["error"]["status"].as_str())
        .map(str::to_string)
}

impl Caller<'_> {
    /// Performs `op` for diary entry `diary_id` (named in the log, never sent).
    pub async fn call(&self, op: &Op, diary_id: &str) -> Result<Answer, CallError> {
        let runtime = &self.ctx.runtime;
        let config = &self.ctx.config;
        let calendar = self.connection.calendar_id.as_str();
        // The Event the Calendar client sends is decoded from the checked bytes, before anything is logged.
        let event = match op {
            Op::Insert(checked) | Op::Update(_, checked) => {
                Some(checked.decode::<Event>().map_err(|e| {
                    CallError::Failed(format!(
                        "a checked event does not decode as a Calendar Event ({:?}); not sent",
                        e.classify()
                    ))
                })?)
            }
            Op::Delete(_) => None,
        };
        let mut last = String::from("no attempt made");
        for attempt in 0..backoff::MAX_ATTEMPTS {
            if runtime.is_stopping() {
                return Err(CallError::Stopped);
            }
            let allowed = match self.purpose {
                Purpose::Sync => {
                    store::may_sync(&self.ctx.registry, &self.connection.id, self.schema_hash)
                        .await
                        .map_err(|e| CallError::Failed(e.to_string()))?
                }
                Purpose::Cleanup => true,
            };
            if !allowed {
                return Err(CallError::Stopped);
            }
            runtime.limiter(&self.connection.id).until_ready().await;
            let token = match self.tokens.access_token(self.ctx).await {
                Ok(t) => t,
                Err(TokenError::InvalidGrant) => return Err(CallError::NeedsReconsent),
                Err(TokenError::Setup(e)) => return Err(CallError::Failed(e)),
                Err(TokenError::Transient(e)) => {
                    last = e;
                    runtime.pause(backoff::delay(attempt, None)).await;
                    continue;
                }
            };
            let (method, target, fields, payload) = match op {
                Op::Insert(event) => (
                    "POST",
                    format!("{}calendars/{calendar}/events", config.api_base),
                    event.fields().to_vec(),
                    event.bytes().to_vec(),
                ),
                Op::Update(id, event) => (
                    "PUT",
                    format!("{}calendars/{calendar}/events/{id}", config.api_base),
                    event.fields().to_vec(),
                    event.bytes().to_vec(),
                ),
                Op::Delete(id) => (
                    "DELETE",
                    format!("{}calendars/{calendar}/events/{id}", config.api_base),
                    Vec::new(),
                    Vec::new(),
                ),
            };
            let receipt = self
                .ctx
                .log
                .record_send(NewSend {
                    firm_id: self.connection.firm_id.clone(),
                    grant_id: self.connection.grant_id.clone(),
                    connector: CONNECTOR.into(),
                    direction: Direction::Outbound,
                    method: method.into(),
                    target,
                    fields,
                    record_ids: vec![diary_id.to_string()],
                    payload,
                })
                .await
                .map_err(|e| CallError::Retry(e.to_string(), None))?;
            let (status, reason, retry_after) = match tokio::time::timeout(
                config.request_timeout,
                self.execute(op, event.clone(), &token),
            )
            .await
            {
                Ok(answer) => answer,
                Err(_) => {
                    tracing::warn!(connection = %self.connection.id, timeout = ?config.request_timeout, "Calendar API call timed out without an answer");
                    (0, None, None)
                }
            };
            self.ctx
                .log
                .record_result(&receipt, status)
                .await
                .map_err(|e| CallError::Retry(e.to_string(), None))?;
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
                    if let Some(after) = retry_after.filter(|a| *a > config.max_retry_after) {
                        // Not worth holding a worker slot for: the connection is rescheduled for after it.
                        return Err(CallError::Retry(
                            format!("{last}, Retry-After {} s", after.as_secs()),
                            Some(after),
                        ));
                    }
                    if attempt + 1 == backoff::MAX_ATTEMPTS {
                        return Err(CallError::Retry(last, retry_after));
                    }
                    runtime.pause(backoff::delay(attempt, retry_after)).await;
                }
            }
        }
        Err(CallError::Retry(last, None))
    }

    /// Sends the request; returns (status, reason, Retry-After). Status 0: no answer.
    async fn execute(
        &self,
        op: &Op,
        event: Option<Event>,
        token: &str,
    ) -> (u16, Option<String>, Option<Duration>) {
        let config = &self.ctx.config;
        let mut hub = CalendarHub::new(self.ctx.runtime.api_client.clone(), HubToken(token.into()));
        hub.base_url(config.api_base.clone());
        hub.root_url(
            config
                .api_base
                .strip_suffix("calendar/v3/")
                .unwrap_or(&config.api_base)
                .to_string(),
        );
        let calendar = self.connection.calendar_id.as_str();
        let mut capture = Capture::default();
        let result = match (op, event) {
            (Op::Insert(_), Some(event)) => hub
                .events()
                .insert(event, calendar)
                .delegate(&mut capture)
                .doit()
                .await
                .map(|(r, _)| r.status().as_u16()),
            (Op::Update(id, _), Some(event)) => hub
                .events()
                .update(event, calendar, id)
                .delegate(&mut capture)
                .doit()
                .await
                .map(|(r, _)| r.status().as_u16()),
            (Op::Delete(id), _) => hub
                .events()
                .delete(calendar, id)
                .delegate(&mut capture)
                .doit()
                .await
                .map(|r| r.status().as_u16()),
            (Op::Insert(_) | Op::Update(..), None) => {
                unreachable!("call() decodes every write before it is logged")
            }
        };
        match result {
            Ok(status) => (status, None, None),
            Err(google_calendar3::Error::BadRequest(json)) => (
                capture
                    .status
                    .or_else(|| json["error"]["code"].as_u64().map(|c| c as u16))
                    .unwrap_or(400),
                reason_of(&json),
                capture.retry_after,
            ),
            Err(google_calendar3::Error::Failure(response)) => {
                (response.status().as_u16(), None, capture.retry_after)
            }
            Err(e) => {
                // The error's text may quote the response body (firm data): log its kind only.
                let kind = match &e {
                    google_calendar3::Error::HttpError(_) => "transport",
                    google_calendar3::Error::JsonDecodeError(_, _) => "undecodable answer",
                    google_calendar3::Error::MissingToken(_) => "no access token",
                    _ => "other",
                };
                tracing::warn!(kind, status = ?capture.status, connection = %self.connection.id, "Calendar API call failed without an answer");
                (capture.status.unwrap_or(0), None, capture.retry_after)
            }
        }
    }
}
