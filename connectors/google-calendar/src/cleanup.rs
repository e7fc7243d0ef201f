//! Clean-ups at Google that switching off and disconnecting share: waiting
//! until no sync pass runs for a connection, and deleting the events the
//! gateway created in a fee earner's calendar (allowed while the grant is
//! off, with the connection's own token).

use crate::calls::{CallError, Caller, Op, Purpose};
use crate::context::Ctx;
use crate::runtime::Claim;
use crate::store::{self, Connection};
use futures::StreamExt;
use scopegate_contract::FirmGrant;
use std::time::Duration;

/// Waits (up to 60 s) until no pass runs for the connection, then holds it.
pub async fn wait_for_claim(ctx: &Ctx, connection_id: &str) -> Option<Claim> {
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
    ctx: &Ctx,
    grant: &FirmGrant,
    connection: &Connection,
) -> Result<u64, CallError> {
    let tokens = crate::sync::token_source(ctx, grant, connection)?;
    let caller = Caller::new(ctx, grant, connection, &tokens, Purpose::Cleanup);
    let user = connection.firm_user_id.as_str();
    let mappings = store::mappings(&ctx.caps, grant, user).await?;
    let results: Vec<Result<bool, CallError>> = futures::stream::iter(mappings)
        .map(
            |(diary_id, event_id)| -> futures::future::BoxFuture<'_, Result<bool, CallError>> {
                let caller = &caller;
                Box::pin(async move {
                    let answer = caller.call(&Op::Delete(event_id), &diary_id).await?;
                    match answer.status {
                        200..=299 | 404 | 410 => {
                            store::delete_mapping(&ctx.caps, grant, user, &diary_id).await?;
                            Ok(answer.status < 300)
                        }
                        other => Err(CallError::Failed(format!(
                            "Google answered {other} to a delete"
                        ))),
                    }
                })
            },
        )
        .buffer_unordered(ctx.settings.user_concurrency)
        .collect()
        .await;
    let mut deleted = 0;
    for result in results {
        if result? {
            deleted += 1;
        }
    }
    store::reset_cursor(&ctx.caps, grant, user).await?;
    Ok(deleted)
}
