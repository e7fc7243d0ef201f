//! Leases on Google connections. Several gateway instances may share one
//! registry; each runs the sync worker, and a connection must be synced by one
//! of them at a time (otherwise events are inserted twice, and racing token
//! refreshes end in `invalid_grant`). A pass first takes the connection's
//! lease (a compare-and-swap on its lease record), renews it while it runs
//! and releases it at the end; an instance that dies leaves a lease that
//! expires after `LEASE_MS`.

use crate::store::{lease_key, now_ms};
use scopegate_contract::{Capabilities, ConnectorError, FirmGrant, RecordWrite};
use serde_json::json;
use std::time::Duration;

/// How long a lease lasts without renewal.
pub const LEASE_MS: i64 = 10_000;
/// How often a running pass renews its lease.
const RENEW_EVERY: Duration = Duration::from_millis(3_000);

/// A held lease; renewed in the background until released.
pub struct Lease {
    caps: Capabilities,
    grant: FirmGrant,
    key: String,
    owner: String,
    renewer: tokio::task::JoinHandle<()>,
}

/// Sets the lease to `owner` until `until` if it is free, expired or ours.
async fn swap_in(
    caps: &Capabilities,
    grant: &FirmGrant,
    key: &str,
    owner: &str,
    until: i64,
    only_if_ours: bool,
) -> Result<bool, ConnectorError> {
    let current = caps.records().get(grant, key).await?;
    let expected = match &current {
        None if only_if_ours => return Ok(false),
        None => None,
        Some(record) => {
            let holder = record.value["owner"].as_str().unwrap_or_default();
            let expires = record.value["until"].as_i64().unwrap_or(0);
            let ours = holder == owner;
            if !(ours || (!only_if_ours && (holder.is_empty() || expires < now_ms()))) {
                return Ok(false);
            }
            Some(record.version)
        }
    };
    caps.records()
        .write(
            grant,
            vec![RecordWrite::Swap {
                key: key.to_string(),
                value: json!({ "owner": owner, "until": until }),
                expected,
            }],
        )
        .await
}

/// Takes the connection's lease for `owner` (this instance's id), or `None` if another holds it.
pub async fn acquire(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
    owner: &str,
) -> Result<Option<Lease>, ConnectorError> {
    let key = lease_key(user);
    if !swap_in(caps, grant, &key, owner, now_ms() + LEASE_MS, false).await? {
        return Ok(None);
    }
    let renewer = tokio::spawn(renew_until_dropped(
        caps.clone(),
        grant.clone(),
        key.clone(),
        owner.to_string(),
    ));
    Ok(Some(Lease {
        caps: caps.clone(),
        grant: grant.clone(),
        key,
        owner: owner.to_string(),
        renewer,
    }))
}

async fn renew_until_dropped(caps: Capabilities, grant: FirmGrant, key: String, owner: String) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        if let Err(e) = swap_in(&caps, &grant, &key, &owner, now_ms() + LEASE_MS, true).await {
            tracing::warn!(lease = %key, error = %e, "could not renew the sync lease");
        }
    }
}

impl Lease {
    /// Stops renewing and frees the connection for any instance.
    pub async fn release(self) {
        self.renewer.abort();
        // Only a lease still ours is freed: one another instance took after ours expired stays its.
        let released = async {
            let Some(record) = self.caps.records().get(&self.grant, &self.key).await? else {
                return Ok(false);
            };
            if record.value["owner"].as_str() != Some(self.owner.as_str()) {
                return Ok(false);
            }
            self.caps
                .records()
                .write(
                    &self.grant,
                    vec![RecordWrite::Swap {
                        key: self.key.clone(),
                        value: json!({ "owner": "", "until": 0 }),
                        expected: Some(record.version),
                    }],
                )
                .await
        }
        .await;
        if let Err(e) = released {
            tracing::warn!(lease = %self.key, error = %e, "could not release the sync lease; it will expire");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}
