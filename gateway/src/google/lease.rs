//! Leases on Google connections in the registry. Several gateway instances
//! may share one registry; each runs the sync worker, and a connection must be
//! synced by one of them at a time (otherwise events are inserted twice, and
//! racing token refreshes end in `invalid_grant`). A pass first takes the
//! connection's lease (an atomic conditional UPDATE), renews it while it runs
//! and releases it at the end; an instance that dies leaves a lease that
//! expires after `LEASE_MS`.

use crate::clock::now_ms;
use crate::registry::{Registry, StoreResult};
use std::time::Duration;

/// How long a lease lasts without renewal.
pub const LEASE_MS: i64 = 10_000;
/// How often a running pass renews its lease.
const RENEW_EVERY: Duration = Duration::from_millis(3_000);

/// A held lease; renewed in the background until released.
pub struct Lease {
    registry: Registry,
    connection_id: String,
    owner: String,
    renewer: tokio::task::JoinHandle<()>,
}

/// Takes the connection's lease for `owner` (this instance's id), or `None` if another holds it.
pub async fn acquire(
    registry: &Registry,
    connection_id: &str,
    owner: &str,
) -> StoreResult<Option<Lease>> {
    let now = now_ms();
    let taken = sqlx::query("UPDATE google_connections SET lease_owner = $1, lease_until = $2 WHERE id = $3 AND (lease_until IS NULL OR lease_until < $4 OR lease_owner = $1)")
        .bind(owner)
        .bind(now + LEASE_MS)
        .bind(connection_id)
        .bind(now)
        .execute(registry.pool())
        .await?
        .rows_affected();
    if taken != 1 {
        return Ok(None);
    }
    let renewer = tokio::spawn(renew_until_dropped(
        registry.clone(),
        connection_id.to_string(),
        owner.to_string(),
    ));
    Ok(Some(Lease {
        registry: registry.clone(),
        connection_id: connection_id.to_string(),
        owner: owner.to_string(),
        renewer,
    }))
}

async fn renew_until_dropped(registry: Registry, connection_id: String, owner: String) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let renewed = sqlx::query(
            "UPDATE google_connections SET lease_until = $1 WHERE id = $2 AND lease_owner = $3",
        )
        .bind(now_ms() + LEASE_MS)
        .bind(&connection_id)
        .bind(&owner)
        .execute(registry.pool())
        .await;
        if let Err(e) = renewed {
            tracing::warn!(connection = %connection_id, error = %e, "could not renew the sync lease");
        }
    }
}

impl Lease {
    /// Stops renewing and frees the connection for any instance.
    pub async fn release(self) {
        self.renewer.abort();
        let released = sqlx::query("UPDATE google_connections SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2")
            .bind(&self.connection_id)
            .bind(&self.owner)
            .execute(self.registry.pool())
            .await;
        if let Err(e) = released {
            tracing::warn!(connection = %self.connection_id, error = %e, "could not release the sync lease; it will expire");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}
