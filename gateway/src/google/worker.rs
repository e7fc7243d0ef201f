//! The durable sync job. Its ctx lives in the registry (each connection's
//! cursor, due time and attempts; each entry's mapping), so a gateway killed
//! mid-pass resumes where it stopped. Every `sync_interval_ms` (or when
//! woken) the worker starts a pass for each runnable connection that has none
//! running, without waiting for the passes it started before: a slow or stuck
//! connection keeps its own pass while the others' start on the next tick.
//! A connection is claimed before it waits for one of the shared slots, so it
//! holds at most one of them and waits its turn (the semaphore is first come,
//! first served): one stuck connection cannot take every slot.

use super::calls::CallError;
use super::runtime::Claim;
use super::store;
use super::sync::{self, PassReport};
use super::GoogleContext;
use crate::clock::now_ms;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Passes run at once per gateway process.
const CONNECTIONS_AT_ONCE: usize = 8;

/// Starts the worker; it ends after `runtime.stop()`, once its calls in flight finish.
pub fn spawn(ctx: Arc<GoogleContext>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = Duration::from_millis(ctx.config.sync_interval_ms);
        let permits = Arc::new(Semaphore::new(CONNECTIONS_AT_ONCE));
        let mut passes = JoinSet::new();
        loop {
            if ctx.runtime.is_stopping() {
                break;
            }
            while passes.try_join_next().is_some() {}
            if let Err(e) = start_due(&ctx, &permits, &mut passes).await {
                tracing::warn!(error = %e, "calendar sync could not list its jobs");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = ctx.runtime.wake.notified() => {}
            }
        }
        while passes.join_next().await.is_some() {}
    })
}

/// Starts a pass (in `passes`, bounded by `permits`) for every runnable
/// connection that has no pass running; does not wait for them.
async fn start_due(
    ctx: &Arc<GoogleContext>,
    permits: &Arc<Semaphore>,
    passes: &mut JoinSet<()>,
) -> crate::registry::StoreResult<()> {
    let due = store::runnable_connections(&ctx.registry, now_ms()).await?;
    for connection in due {
        // Claimed before waiting for a slot: a connection waits (and runs) once.
        let Some(claim) = ctx.runtime.claim(&connection.id) else {
            continue;
        };
        let ctx = ctx.clone();
        let permits = permits.clone();
        passes.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            if ctx.runtime.is_stopping() {
                return;
            }
            let _ = run_claimed(&ctx, claim, &connection.id).await;
        });
    }
    Ok(())
}

/// Runs a pass for every runnable connection and waits for all of them.
pub async fn run_due(ctx: &Arc<GoogleContext>) -> crate::registry::StoreResult<()> {
    let permits = Arc::new(Semaphore::new(CONNECTIONS_AT_ONCE));
    let mut passes = JoinSet::new();
    start_due(ctx, &permits, &mut passes).await?;
    while passes.join_next().await.is_some() {}
    Ok(())
}

/// Runs one pass for one connection and records its outcome on the connection.
/// `Ok(None)` when a pass for it is already running here or on another instance.
pub async fn run_one(
    ctx: &Arc<GoogleContext>,
    connection_id: &str,
) -> Result<Option<PassReport>, CallError> {
    let Some(claim) = ctx.runtime.claim(connection_id) else {
        return Ok(None);
    };
    run_claimed(ctx, claim, connection_id).await
}

/// Runs one pass for a connection this process has claimed; releases the claim after.
async fn run_claimed(
    ctx: &Arc<GoogleContext>,
    claim: Claim,
    connection_id: &str,
) -> Result<Option<PassReport>, CallError> {
    let _claim = claim;
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
