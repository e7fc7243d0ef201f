//! The durable sync job. Its ctx lives in the registry (each connection's
//! cursor, due time and attempts; each entry's mapping), so a gateway killed
//! mid-pass resumes where it stopped. Every `sync_interval_ms` (or when
//! woken) the worker runs a pass for each runnable connection, a few
//! connections at a time, one pass per connection at a time.

use super::calls::CallError;
use super::store;
use super::sync::{self, PassReport};
use super::GoogleContext;
use crate::clock::now_ms;
use std::sync::Arc;
use std::time::Duration;

const CONNECTIONS_AT_ONCE: usize = 8;

/// Starts the worker; it ends after `runtime.stop()`, once its calls in flight finish.
pub fn spawn(ctx: Arc<GoogleContext>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = Duration::from_millis(ctx.config.sync_interval_ms);
        loop {
            if ctx.runtime.is_stopping() {
                break;
            }
            if let Err(e) = run_due(&ctx).await {
                tracing::warn!(error = %e, "calendar sync could not list its jobs");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = ctx.runtime.wake.notified() => {}
            }
        }
    })
}

/// Runs a pass for every runnable connection.
pub async fn run_due(ctx: &Arc<GoogleContext>) -> crate::registry::StoreResult<()> {
    let due = store::runnable_connections(&ctx.registry, now_ms()).await?;
    let permits = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_AT_ONCE));
    let mut tasks = tokio::task::JoinSet::new();
    for connection in due {
        let ctx = ctx.clone();
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let _ = run_one(&ctx, &connection.id).await;
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Runs one pass for one connection and records its outcome on the connection.
/// `Ok(None)` when a pass for it is already running here or on another instance.
pub async fn run_one(
    ctx: &Arc<GoogleContext>,
    connection_id: &str,
) -> Result<Option<PassReport>, CallError> {
    let Some(_claim) = ctx.runtime.claim(connection_id) else {
        return Ok(None);
    };
    let registry = &ctx.registry;
    let lease = match super::lease::acquire(registry, connection_id, &ctx.runtime.instance_id).await
    {
        Ok(Some(lease)) => lease,
        Ok(None) => return Ok(None),
        Err(e) => return Err(CallError::Failed(e.to_string())),
    };
    let outcome = run_leased(ctx, connection_id).await;
    lease.release().await;
    outcome
}

/// The pass itself, run while this instance holds the connection's lease.
async fn run_leased(
    ctx: &Arc<GoogleContext>,
    connection_id: &str,
) -> Result<Option<PassReport>, CallError> {
    let registry = &ctx.registry;
    let before = store::connection(registry, connection_id)
        .await
        .map_err(|e| CallError::Failed(e.to_string()))?;
    let result = sync::run_pass(ctx, connection_id).await;
    let noted = match &result {
        Ok(report) => {
            let busy = report.entries > 0
                || before.job_due_at.is_some()
                || before.last_error.is_some()
                || before.last_sync_at.is_none();
            let marked = if busy {
                store::mark_synced(registry, connection_id).await
            } else {
                Ok(())
            };
            match (marked, &report.first_refusal) {
                (Err(e), _) => Err(e),
                (Ok(()), Some(why)) => store::note_error(registry, connection_id, why).await,
                (Ok(()), None) => Ok(()),
            }
        }
        Err(CallError::Stopped) => Ok(()),
        Err(CallError::NeedsReconsent) => {
            ctx.runtime.forget(connection_id);
            tracing::warn!(connection = %connection_id, "Google refused the refresh token; the user must connect again");
            let why = "Google refused the refresh token (invalid_grant): the fee earner must connect Google Calendar again";
            match before.refresh_token_sealed.as_deref() {
                Some(sealed) => store::refuse_token(registry, connection_id, sealed, why).await,
                None => {
                    store::set_status(registry, connection_id, "needs_reconsent", Some(why), true)
                        .await
                }
            }
        }
        Err(e @ (CallError::Retry(_, _) | CallError::Failed(_))) => {
            let attempts = before.job_attempts.max(0) as u32;
            let wait = super::backoff::delay(
                attempts.min(8),
                match e {
                    CallError::Retry(_, after) => *after,
                    _ => None,
                },
            );
            tracing::warn!(connection = %connection_id, error = %e, "calendar sync pass failed; will retry");
            store::reschedule(
                registry,
                connection_id,
                now_ms() + wait.as_millis() as i64,
                &e.to_string(),
            )
            .await
            .map(|_| ())
        }
    };
    if let Err(e) = noted {
        tracing::warn!(connection = %connection_id, error = %e, "could not record the sync outcome");
    }
    result.map(Some)
}
