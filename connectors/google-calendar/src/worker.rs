//! The durable sync job. Its state lives in the connector's records (each
//! connection's cursor, due time and attempts; each entry's mapping), so a
//! gateway killed mid-pass resumes where it stopped. Every sync interval (or
//! when woken) the worker starts a pass for each runnable connection of every
//! active grant that has none running, without waiting for the passes it
//! started before: a slow or stuck connection keeps its own pass while the
//! others' start on the next tick. An idle connection (synced, nothing due)
//! gets a pass only when a probe finds changes after its cursor. A connection is claimed before it waits
//! for one of the shared slots, so it holds at most one of them and waits its
//! turn (the semaphore is first come, first served): one stuck connection
//! cannot take every slot.

use crate::calls::CallError;
use crate::context::Ctx;
use crate::runtime::Claim;
use crate::store::{self, now_ms, Connection};
use crate::sync::{self, PassReport};
use scopegate_contract::{ConnectorError, FirmGrant};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Passes run at once per gateway process. A pass spends most of its time
/// waiting for its turn under Google's quotas, so this is sized for every fee
/// earner of a mid-sized firm to sync at once (the project quota, not this,
/// is what bounds the calls: 20 fee earners at 600 a minute already ask for
/// more than Google's 10,000).
const CONNECTIONS_AT_ONCE: usize = 64;

/// The worker loop; it ends once the gateway stops, after its calls in flight.
pub async fn run(ctx: Arc<Ctx>) {
    let permits = Arc::new(Semaphore::new(CONNECTIONS_AT_ONCE));
    let mut passes = JoinSet::new();
    loop {
        if ctx.caps.is_stopping() {
            break;
        }
        while passes.try_join_next().is_some() {}
        if let Err(e) = start_due(&ctx, &permits, &mut passes).await {
            tracing::warn!(error = %e, "calendar sync could not list its jobs");
        }
        tokio::select! {
            _ = tokio::time::sleep(ctx.settings.sync_interval) => {}
            _ = ctx.runtime.wake.notified() => {}
            _ = ctx.caps.stopped() => {}
        }
    }
    while passes.join_next().await.is_some() {}
}

/// Active connections of active grants whose job is due, or idle with
/// changes to look at: an idle connection's pass starts only when the firm's
/// diary changed after its cursor, or the firm's minimisation variant is not
/// the one it synced under (one probe per distinct cursor, usually one per
/// grant, since every pass reads the whole diary). An idle tick therefore
/// costs a read per grant, not a pass (lease, reads, writes) per connection.
async fn runnable(ctx: &Ctx) -> Result<Vec<(FirmGrant, Connection)>, ConnectorError> {
    let now = now_ms();
    let mut due = Vec::new();
    for grant in ctx.caps.leases().active_grants().await? {
        let mut probes: HashMap<i64, (bool, Option<String>)> = HashMap::new();
        for connection in store::connections(&ctx.caps, &grant).await? {
            if connection.status != "active" {
                continue;
            }
            let idle = connection.job_due_at.is_none() && connection.last_sync_at.is_some();
            if idle {
                let (changed, variant) = match probes.get(&connection.cursor) {
                    Some(probe) => probe.clone(),
                    None => {
                        // A firm database that cannot be read here is left to the pass (it retries with backoff).
                        let probe = match ctx
                            .caps
                            .reader()
                            .changes(&grant, "diary_entry", connection.cursor, 1)
                            .await
                        {
                            Ok(page) => (!page.items.is_empty(), page.variant),
                            Err(_) => (true, connection.variant.clone()),
                        };
                        probes.insert(connection.cursor, probe.clone());
                        probe
                    }
                };
                if !changed && variant == connection.variant {
                    // Looked, nothing new: the sync-lag bound counts from now.
                    ctx.runtime.pass_starts(&connection.id);
                    continue;
                }
            } else if connection.job_due_at.is_some_and(|at| at > now) {
                continue;
            }
            due.push((grant.clone(), connection));
        }
    }
    due.sort_by_key(|(_, c)| c.job_due_at);
    Ok(due)
}

/// Starts a pass (in `passes`, bounded by `permits`) for every runnable
/// connection that has no pass running; does not wait for them.
async fn start_due(
    ctx: &Arc<Ctx>,
    permits: &Arc<Semaphore>,
    passes: &mut JoinSet<()>,
) -> Result<(), ConnectorError> {
    for (grant, connection) in runnable(ctx).await? {
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
            if ctx.caps.is_stopping() {
                return;
            }
            let _ = run_claimed(&ctx, claim, &grant, &connection.firm_user_id).await;
        });
    }
    Ok(())
}

/// Runs a pass for every runnable connection and waits for all of them.
pub async fn run_due(ctx: &Arc<Ctx>) -> Result<(), ConnectorError> {
    let permits = Arc::new(Semaphore::new(CONNECTIONS_AT_ONCE));
    let mut passes = JoinSet::new();
    start_due(ctx, &permits, &mut passes).await?;
    while passes.join_next().await.is_some() {}
    Ok(())
}

/// Runs one pass for a connection this process has claimed; releases the claim after.
async fn run_claimed(
    ctx: &Arc<Ctx>,
    claim: Claim,
    grant: &FirmGrant,
    user: &str,
) -> Result<Option<PassReport>, CallError> {
    let _claim = claim;
    let lease = match crate::lease::acquire(&ctx.caps, grant, user, &ctx.runtime.instance_id).await
    {
        Ok(Some(lease)) => lease,
        Ok(None) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let outcome = run_leased(ctx, grant, user).await;
    lease.release().await;
    outcome
}

/// The pass itself, run while this instance holds the connection's lease.
async fn run_leased(
    ctx: &Arc<Ctx>,
    grant: &FirmGrant,
    user: &str,
) -> Result<Option<PassReport>, CallError> {
    let Some(before) = store::connection_for_user(&ctx.caps, grant, user).await? else {
        return Ok(None);
    };
    let since_previous = ctx.runtime.pass_starts(&before.id);
    let pass_began = std::time::Instant::now();
    let result = sync::run_pass(ctx, grant, user).await;
    let noted = match &result {
        Ok(report) => {
            if let (true, Some(before_pass)) = (report.entries > 0, since_previous) {
                // The changes this pass sent were not there when the previous
                // pass started looking: none waited longer than this.
                let lag = before_pass + pass_began.elapsed();
                metrics::histogram!(
                    "scopegate_connector_sync_lag_seconds",
                    "connector" => crate::CONNECTOR
                )
                .record(lag);
            }
            let busy = report.entries > 0
                || before.job_due_at.is_some()
                || before.last_error.is_some()
                || before.last_sync_at.is_none();
            let marked = if busy {
                store::mark_synced(&ctx.caps, grant, user).await
            } else {
                Ok(())
            };
            match (marked, &report.first_refusal) {
                (Err(e), _) => Err(e),
                (Ok(()), Some(why)) => store::note_error(&ctx.caps, grant, user, why).await,
                (Ok(()), None) => Ok(()),
            }
        }
        Err(CallError::Stopped) => Ok(()),
        Err(CallError::NeedsReconsent) => {
            ctx.runtime.forget(&before.id);
            tracing::warn!(connection = %before.id, "Google refused the refresh token; the user must connect again");
            let why = "Google refused the refresh token (invalid_grant): the fee earner must connect Google Calendar again";
            match before.refresh_token_sealed.as_deref() {
                Some(sealed) => store::refuse_token(&ctx.caps, grant, user, sealed, why).await,
                None => {
                    store::set_status(&ctx.caps, grant, user, "needs_reconsent", Some(why), true)
                        .await
                }
            }
        }
        Err(e @ (CallError::Retry(_, _) | CallError::Failed(_))) => {
            let attempts = before.job_attempts.max(0) as u32;
            let wait = crate::backoff::delay(
                attempts.min(8),
                match e {
                    CallError::Retry(_, after) => *after,
                    _ => None,
                },
            );
            tracing::warn!(connection = %before.id, error = %e, "calendar sync pass failed; will retry");
            store::reschedule(
                &ctx.caps,
                grant,
                user,
                now_ms() + wait.as_millis() as i64,
                &e.to_string(),
            )
            .await
        }
    };
    if let Err(e) = noted {
        tracing::warn!(connection = %before.id, error = %e, "could not record the sync outcome");
    }
    result.map(Some)
}
