//! [`AuditedSender`]: every byte that leaves first has a committed send record
//! (the SHA-256 of exactly those bytes), then its result.

use super::ForConnector;
use crate::outbound_log::Direction;
use scopegate_contract::axum::http::StatusCode;
use scopegate_contract::{
    AuditedSender, BoxFuture, CheckedPayload, ConnectorError, FirmGrant, LoggedBody, Reply,
};
use scopegate_mint::mint;
use std::time::Instant;

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
            .record_result(&receipt, reply.status.as_u16())
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
            let status = match self
                .core
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(payload.bytes().to_vec())
                .send()
                .await
            {
                Ok(response) => response.status().as_u16(),
                Err(e) => {
                    tracing::warn!(connector = %self.connector.id(), kind = if e.is_timeout() { "timeout" } else { "transport" }, elapsed_ms = started.elapsed().as_millis() as u64, "delivery got no answer");
                    0
                }
            };
            self.core.log.record_result(&receipt, status).await?;
            Ok(status)
        })
    }
}
