//! [`AuditedSender`]: every byte that leaves first has a committed send record
//! (the SHA-256 of exactly those bytes), then its result, also when the
//! gateway stops while the third party has not answered yet.

use super::ForConnector;
use crate::outbound_log::Direction;
use scopegate_contract::axum::http::StatusCode;
use scopegate_contract::calls::{Answer, Call, CallBody, MAX_ANSWER_BYTES};
use scopegate_contract::{
    AuditedSender, BoxFuture, CheckedPayload, ConnectorError, FirmGrant, LoggedBody, Reply,
};
use scopegate_mint::mint;
use std::time::{Duration, Instant};

impl ForConnector {
    /// Logs a response body (send, then result) and wraps it.
    async fn log_reply(
        &self,
        grant: &FirmGrant,
        reply: Reply<'_>,
        fields: Vec<String>,
        bytes: Vec<u8>,
        content_type: &'static str,
    ) -> Result<LoggedBody, ConnectorError> {
        self.own(grant)?;
        let receipt = self
            .core
            .log
            .record_send(self.new_send(
                grant,
                (Direction::Outbound, reply.method),
                format!("{} response to {}", reply.route, grant.recipient()),
                fields,
                reply.record_ids,
                bytes.clone(),
            ))
            .await?;
        self.core
            .log
            .record_result_later(&receipt, reply.status.as_u16())
            .await?;
        Ok(mint::logged_body(
            reply.status,
            content_type,
            bytes,
            receipt.seq,
        ))
    }
}

/// The problem+json body a logged problem carries.
fn problem_bytes(status: StatusCode, field: &str, detail: &str) -> Vec<u8> {
    let title = match status {
        StatusCode::UNPROCESSABLE_ENTITY => "Invalid field",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::CONFLICT => "Conflict",
        _ => status.canonical_reason().unwrap_or("Error"),
    };
    let body = serde_json::json!({
        "type": "about:blank", "title": title, "status": status.as_u16(),
        "detail": detail, "field": field.trim_start_matches('/'),
    });
    serde_json::to_vec(&body).expect("json")
}

impl AuditedSender for ForConnector {
    fn respond<'a>(
        &'a self,
        grant: &'a FirmGrant,
        reply: Reply<'a>,
        payload: CheckedPayload,
    ) -> BoxFuture<'a, Result<LoggedBody, ConnectorError>> {
        Box::pin(async move {
            let fields = payload.fields().to_vec();
            let bytes = payload.into_bytes();
            self.log_reply(grant, reply, fields, bytes, "application/json")
                .await
        })
    }

    fn respond_problem<'a>(
        &'a self,
        grant: &'a FirmGrant,
        reply: Reply<'a>,
        field: &'a str,
        detail: &'a str,
    ) -> BoxFuture<'a, Result<LoggedBody, ConnectorError>> {
        Box::pin(async move {
            let bytes = problem_bytes(reply.status, field, detail);
            let fields = ["type", "title", "status", "detail", "field"].map(String::from);
            self.log_reply(
                grant,
                reply,
                fields.to_vec(),
                bytes,
                "application/problem+json",
            )
            .await
        })
    }

    fn deliver<'a>(
        &'a self,
        grant: &'a FirmGrant,
        url: &'a str,
        record_ids: Vec<String>,
        payload: CheckedPayload,
    ) -> BoxFuture<'a, Result<u16, ConnectorError>> {
        Box::pin(async move {
            self.own(grant)?;
            // Switched off or consent stale since the handle was minted: nothing leaves.
            if !self
                .core
                .registry
                .grant_is_active(
                    grant.firm_id(),
                    grant.grant_id(),
                    &self.connector.schema_hash,
                )
                .await?
            {
                return Err(ConnectorError::Stopped);
            }
            let receipt = self
                .core
                .log
                .record_send(self.new_send(
                    grant,
                    (Direction::Outbound, "POST"),
                    url.to_string(),
                    payload.fields().to_vec(),
                    record_ids,
                    payload.bytes().to_vec(),
                ))
                .await?;
            let started = Instant::now();
            let request = self
                .core
                .http
                .post(url)
                .timeout(std::time::Duration::from_secs(15))
                .header("content-type", "application/json")
                .body(payload.bytes().to_vec())
                .send();
            let status = match self.unless_stopped(request).await {
                Some(Ok(response)) => response.status().as_u16(),
                Some(Err(e)) => {
                    tracing::warn!(connector = %self.connector.id(), kind = if e.is_timeout() { "timeout" } else { "transport" }, elapsed_ms = started.elapsed().as_millis() as u64, "delivery got no answer");
                    0
                }
                None => 0,
            };
            self.core.log.record_result_later(&receipt, status).await?;
            Ok(status)
        })
    }

    fn call<'a>(
        &'a self,
        grant: &'a FirmGrant,
        call: Call,
    ) -> BoxFuture<'a, Result<Answer, ConnectorError>> {
        Box::pin(async move {
            self.own(grant)?;
            let cleanup = call.cleanup && !matches!(call.body, CallBody::Json(_));
            if !cleanup && !self.is_active_now(grant).await? {
                return Err(ConnectorError::Stopped);
            }
            // The log hashes exactly the bytes that leave, whatever the body.
            let (fields, sent, content_type, authorization, shown_as) = match call.body {
                CallBody::Empty => (Vec::new(), Vec::new(), None, None, None),
                CallBody::Json(payload) => (
                    payload.fields().to_vec(),
                    payload.bytes().to_vec(),
                    Some("application/json".to_string()),
                    None,
                    None,
                ),
                CallBody::Credentials {
                    content_type,
                    authorization,
                    body,
                    fields,
                    shown_as,
                } => (
                    fields,
                    body,
                    Some(content_type),
                    authorization,
                    Some(shown_as),
                ),
            };
            let logged = sent.clone();
            let mut target = match &call.note {
                Some(note) => format!("{} {note}", call.url),
                None => call.url.clone(),
            };
            if let Some(shown_as) = shown_as {
                target.push_str(&format!(" [{shown_as}]"));
            }
            let receipt = self
                .core
                .log
                .record_send(self.new_send(
                    grant,
                    (Direction::Outbound, call.method.as_str()),
                    target,
                    fields,
                    call.record_ids,
                    logged,
                ))
                .await?;
            let mut request = self
                .core
                .http
                .request(call.method.clone(), &call.url)
                .timeout(call.timeout);
            if let Some(token) = &call.bearer {
                request = request.bearer_auth(token);
            }
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type).body(sent);
            }
            let started = Instant::now();
            let exchange = async {
                match request.send().await {
                    Ok(response) => read_answer(response).await,
                    Err(e) => {
                        tracing::warn!(connector = %self.connector.id(), kind = if e.is_timeout() { "timeout" } else { "transport" }, elapsed_ms = started.elapsed().as_millis() as u64, "call got no answer");
                        Answer::default()
                    }
                }
            };
            let answer = self.unless_stopped(exchange).await.unwrap_or_default();
            self.core
                .log
                .record_result_later(&receipt, answer.status)
                .await?;
            metrics::counter!(
                "scopegate_connector_calls_total",
                "connector" => self.connector.id().to_string(),
                "method" => call.method.as_str().to_string(),
                "status" => answer.status.to_string()
            )
            .increment(1);
            Ok(answer)
        })
    }
}

/// How long a call in flight when the gateway begins to stop may still take.
/// After it the call is cut short and its result recorded as unanswered
/// (status 0), so a stop neither waits on a third party nor leaves a send
/// without its result.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

impl ForConnector {
    /// `exchange`'s outcome, or `None` if the gateway began to stop more than
    /// [`SHUTDOWN_GRACE`] before it came.
    async fn unless_stopped<T>(&self, exchange: impl std::future::Future<Output = T>) -> Option<T> {
        let mut stopping = self.stopping.clone();
        let grace_over = async move {
            if stopping.wait_for(|stopping| *stopping).await.is_err() {
                // No one can stop this gateway any more: never cut short.
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            outcome = exchange => Some(outcome),
            () = grace_over => {
                tracing::warn!(connector = %self.connector.id(), grace_secs = SHUTDOWN_GRACE.as_secs(), "call cut short: the gateway is stopping and it had no answer yet");
                None
            }
        }
    }

    /// The grant is on now, at the contract its handle names.
    pub(super) async fn is_active_now(&self, grant: &FirmGrant) -> Result<bool, ConnectorError> {
        Ok(grant.schema_hash() == self.connector.schema_hash
            && self
                .core
                .registry
                .grant_is_active(
                    grant.firm_id(),
                    grant.grant_id(),
                    &self.connector.schema_hash,
                )
                .await?)
    }
}

/// Status, a few headers and at most [`MAX_ANSWER_BYTES`] of the body (read
/// within the call's timeout). A body that stops coming, or goes on past the
/// cap, counts as no answer (status 0): the caller retries as for a timeout.
async fn read_answer(mut response: reqwest::Response) -> Answer {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut answer = Answer {
        status: response.status().as_u16(),
        retry_after: header("retry-after"),
        content_type: header("content-type"),
        ..Default::default()
    };
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_ANSWER_BYTES - answer.body.len();
                if chunk.len() > room {
                    // Not read whole, so not trusted: it counts as no answer.
                    answer.body.extend_from_slice(&chunk[..room]);
                    answer.truncated = true;
                    answer.status = 0;
                    break;
                }
                answer.body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(_) => {
                answer.status = 0;
                break;
            }
        }
    }
    answer
}
