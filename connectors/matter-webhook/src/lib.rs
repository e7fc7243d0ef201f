//! An example connector, small on purpose: it pushes each opted-in firm's
//! matter references (id, number, name) to a webhook the operator configures
//! (`[connector.matter-webhook] url = "https://..."`), as they change.
//!
//! It shows everything a connector is: a contract (its schemas under
//! `schemas/matter-webhook/`), and code that uses only its capabilities:
//! the grants it may act for, a projected read, a checked payload, an
//! audited delivery and a cursor. Delivery is at least once: the cursor moves
//! only after the webhook answered 2xx.

use scopegate_contract::{
    BoxFuture, BuiltInContract, Capabilities, Connector, ConnectorError, FirmGrant,
};
use serde_json::json;
use std::time::Duration;

/// The connector id (folder under `schemas/`).
pub const ID: &str = "matter-webhook";
const CURSOR: &str = "matters";
const PAGE: i64 = 100;

/// The matter-list webhook connector.
pub struct MatterWebhook;

impl Connector for MatterWebhook {
    fn id(&self) -> &'static str {
        ID
    }

    fn contract(&self) -> BuiltInContract {
        BuiltInContract {
            manifest: include_str!("../../../schemas/matter-webhook/manifest.json"),
            files: &[
                (
                    "matter-ref.json",
                    include_str!("../../../schemas/matter-webhook/matter-ref.json"),
                ),
                (
                    "delivery.json",
                    include_str!("../../../schemas/matter-webhook/delivery.json"),
                ),
            ],
        }
    }

    fn background(&self, caps: Capabilities) -> Option<BoxFuture<'static, ()>> {
        let url = caps.setting("url")?.to_string();
        let interval = caps
            .setting("interval_ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        Some(Box::pin(run(caps, url, Duration::from_millis(interval))))
    }
}

/// Pushes changes every `interval` until the gateway stops.
async fn run(caps: Capabilities, url: String, interval: Duration) {
    while !caps.is_stopping() {
        match caps.leases().active_grants().await {
            Ok(grants) => {
                for grant in grants {
                    if let Err(e) = push_changes(&caps, &grant, &url).await {
                        tracing::warn!(firm = %grant.firm_id(), error = %e, "matter webhook delivery failed; will retry");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "matter webhook could not list its grants"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = caps.stopped() => {}
        }
    }
}

/// Delivers the grant's changed matters page by page; stops at the first refusal.
pub async fn push_changes(
    caps: &Capabilities,
    grant: &FirmGrant,
    url: &str,
) -> Result<u64, ConnectorError> {
    let mut delivered = 0;
    loop {
        let from = caps.leases().cursor(grant, CURSOR).await?;
        let page = caps
            .reader()
            .changes(grant, "matter_ref", from, PAGE)
            .await?;
        let Some(to) = page.items.last().and_then(|m| m["change_seq"].as_i64()) else {
            return Ok(delivered);
        };
        let count = page.items.len() as u64;
        let payload = caps
            .schema("delivery")?
            .check(&json!({ "matters": page.items }))
            .map_err(|v| ConnectorError::Internal(format!("delivery failed its schema: {v}")))?;
        let status = caps
            .sender()
            .deliver(grant, url, page.record_ids, payload)
            .await?;
        if !(200..300).contains(&status) {
            return Err(ConnectorError::Unavailable(format!(
                "the webhook answered {status}"
            )));
        }
        if !caps
            .leases()
            .advance_cursor(grant, CURSOR, from, to)
            .await?
        {
            // Another instance delivered this page too; carry on from where it got.
            continue;
        }
        delivered += count;
        if !page.has_more {
            return Ok(delivered);
        }
    }
}
