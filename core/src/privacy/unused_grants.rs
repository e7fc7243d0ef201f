//! Unused grants: an enabled grant with no outbound record for a number of
//! days. A grant switched on recently with no traffic yet counts from its
//! switch-on (or latest re-consent). One firm at a time, on the log's
//! `(firm_id, grant_id, at)` index; the caller decides what to do about it.

use crate::outbound_log::usage::{last_record_at, DAY_MS};
use crate::registry::grants::Grant;
use crate::registry::{Registry, StoreResult};

/// An enabled grant idle for at least the threshold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnusedGrant {
    pub grant: Grant,
    /// Its newest outbound record, or its switch-on when that is newer.
    pub idle_since: i64,
    /// Whole days since then.
    pub days: i64,
}

/// The grant, if it is enabled and idle for at least `threshold_days` at `now`.
pub async fn unused_since(
    registry: &Registry,
    grant: &Grant,
    threshold_days: u64,
    now: i64,
) -> StoreResult<Option<UnusedGrant>> {
    if !grant.enabled {
        return Ok(None);
    }
    let last = last_record_at(registry, &grant.firm_id, &grant.id).await?;
    let idle_since = last.unwrap_or(i64::MIN).max(grant.updated_at);
    let days = (now - idle_since).div_euclid(DAY_MS);
    Ok((days >= threshold_days as i64).then(|| UnusedGrant {
        grant: grant.clone(),
        idle_since,
        days,
    }))
}

/// Every enabled grant of one firm idle for at least `threshold_days` at `now`.
pub async fn unused_grants_of(
    registry: &Registry,
    firm_id: &str,
    threshold_days: u64,
    now: i64,
) -> StoreResult<Vec<UnusedGrant>> {
    let mut unused = Vec::new();
    for grant in registry.grants(Some(firm_id)).await? {
        if let Some(u) = unused_since(registry, &grant, threshold_days, now).await? {
            unused.push(u);
        }
    }
    Ok(unused)
}
