//! Switching the connector off. Disabling the grant stops every sync at once
//! (each call re-checks it); the admin may also have the events the gateway
//! created deleted from the fee earners' calendars (a clean-up, allowed
//! while the grant is off, using each connection's own token).

use super::calls::{CallError, Caller, Op, Purpose};
use super::runtime::Claim;
use super::store::{self, Connection};
use super::GoogleContext;
use super::CONNECTOR;
use futures::StreamExt;
use scopegate_contract::ConnectorError;
use std::time::Duration;

/// Waits (up to 60 s) until no pass runs for the connection, then holds it.
pub async fn wait_for_claim(ctx: &GoogleContext, connection_id: &str) -> Option<Claim> {
    for _ in 0..600 {
        if let Some(claim) = ctx.runtime.claim(connection_id) {
            return Some(claim);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Deletes every event the gateway created for a connection; returns how many.
pub async fn delete_created_events(
    ctx: &GoogleContext,
    connection: &Connection,
) -> Result<u64, CallError> {
    let connector = ctx
        .catalogue
        .require(CONNECTOR)
        .map_err(CallError::Failed)?;
    let tokens = super::sync::token_source(ctx, connection)?;
    let caller = Caller {
        ctx,
        connection,
        tokens: &tokens,
        schema_hash: &connector.schema_hash,
        purpose: Purpose::Cleanup,
    };
    let mappings = store::mappings(&ctx.registry, &connection.id)
        .await
        .map_err(|e| CallError::Failed(e.to_string()))?;
    let results: Vec<Result<bool, CallError>> = futures::stream::iter(mappings)
        .map(
            |(diary_id, event_id)| -> futures::future::BoxFuture<'_, Result<bool, CallError>> {
                let caller = &caller;
                Box::pin(async move {
                    let answer = caller.call(&Op::Delete(event_id), &diary_id).await?;
                    match answer.status {
                        200..=299 | 404 | 410 => {
                            store::delete_mapping(&ctx.registry, &connection.id, &diary_id)
                                .await
                                .map_err(|e| CallError::Failed(e.to_string()))?;
                            Ok(answer.status < 300)
                        }
                        other => Err(CallError::Failed(format!(
                            "Google answered {other} to a delete"
                        ))),
                    }
                })
            },
        )
        .buffer_unordered(ctx.config.user_concurrency)
        .collect()
        .await;
    let mut deleted = 0;
    for result in results {
        if result? {
            deleted += 1;
        }
    }
    store::reset_cursor(&ctx.registry, &connection.id)
        .await
        .map_err(|e| CallError::Failed(e.to_string()))?;
    Ok(deleted)
}

/// What switching off did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SwitchOffReport {
    pub events_deleted: u64,
    /// Connections whose events could not be deleted, with the reason.
    pub failures: Vec<String>,
    /// One line for the person who switched it off.
    pub summary: String,
}

/// Disables the firm's grant (syncing stops at once) and, when asked, deletes the created events.
pub async fn switch_off(
    ctx: &GoogleContext,
    firm_id: &str,
    actor: &str,
    delete_events: bool,
) -> Result<SwitchOffReport, ConnectorError> {
    ctx.registry
        .disable_grant(firm_id, CONNECTOR, actor)
        .await?;
    let mut report = SwitchOffReport {
        summary: "Syncing stopped.".into(),
        ..Default::default()
    };
    if !delete_events {
        return Ok(report);
    }
    for connection in store::connections(&ctx.registry, firm_id).await? {
        if connection.refresh_token_sealed.is_none() {
            continue;
        }
        let _claim = wait_for_claim(ctx, &connection.id).await;
        match delete_created_events(ctx, &connection).await {
            Ok(n) => report.events_deleted += n,
            Err(e) => report
                .failures
                .push(format!("user {}: {e}", connection.firm_user_id)),
        }
    }
    report.summary = format!(
        "Syncing stopped; {} events deleted from the fee earners' calendars.",
        report.events_deleted
    );
    Ok(report)
}
