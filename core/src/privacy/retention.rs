//! Retention: a terminated firm's registry data is kept for the retention
//! period after termination and then purged; its outbound log for the audit
//! period (which may be longer) and then purged too, leaving a tombstone.
//! Termination itself (grants off, logins disabled) is recorded here; what the
//! connectors undo at a third party is the gateway's part. Every purge runs in
//! one transaction that first locks the firm's row, so several instances
//! running the scheduled job purge each firm once. Termination and each purge
//! are entered in the access trail in their own transaction: a termination
//! and a data purge in the firm's chain, the final purge (which deletes that
//! chain, leaving its tombstone) in the operator chain, naming the tombstones
//! but not the firm.

use crate::access_trail::{self, Kind, NewEntry};
use crate::clock::now_ms;
use crate::keys::LogKeys;
use crate::outbound_log::tombstone::{self, Tombstone};
use crate::outbound_log::GENESIS_HASH;
use crate::registry::{Backend, Registry, StoreError, StoreResult};
use sqlx::Row;

/// Rows of a firm in the registry, child tables first: what a purge deletes
/// before the outbound log (which the audit period may keep longer).
const FIRM_DATA: [&str; 13] = [
    "DELETE FROM security_events WHERE firm_id = $1",
    "DELETE FROM tripwires WHERE firm_id = $1",
    "DELETE FROM access_tokens WHERE firm_id = $1",
    "DELETE FROM credentials WHERE firm_id = $1",
    "DELETE FROM admin_sessions WHERE firm_id = $1",
    "DELETE FROM handoff_nonces WHERE firm_id = $1",
    "DELETE FROM firm_users WHERE firm_id = $1",
    "DELETE FROM connector_cursors WHERE grant_id IN (SELECT id FROM grants WHERE firm_id = $1)",
    "DELETE FROM connector_records WHERE firm_id = $1",
    "DELETE FROM connector_parked WHERE firm_id = $1",
    "DELETE FROM consent_ledger WHERE firm_id = $1",
    "DELETE FROM grant_choices WHERE firm_id = $1",
    "DELETE FROM grants WHERE firm_id = $1",
];

/// The outbound log and the firm itself, deleted once the audit period is over.
const FIRM_LOG: [&str; 5] = [
    "DELETE FROM outbound_record_ids WHERE firm_id = $1",
    "DELETE FROM outbound_index_marks WHERE firm_id = $1",
    "DELETE FROM outbound_log WHERE firm_id = $1",
    "DELETE FROM outbound_chain_heads WHERE firm_id = $1",
    "DELETE FROM firms WHERE id = $1",
];

/// How long a terminated firm's data and log are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// After termination, before the registry data is purged.
    pub data_ms: i64,
    /// After termination, before the outbound log is purged (at least `data_ms`).
    pub log_ms: i64,
}

/// What one purge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purged {
    /// The registry data is gone; the outbound log is kept for the audit period.
    Data { firm_id: String },
    /// Everything is gone; the tombstone remains.
    Everything { tombstone: Tombstone },
}

/// Records the termination of `firm_id` (by the operator `actor`, on the
/// command line) and disables its settings logins (ending their sessions).
/// Errors if the firm is unknown or already terminated.
pub async fn mark_terminated(
    registry: &Registry,
    keys: &LogKeys,
    firm_id: &str,
    actor: &str,
) -> StoreResult<i64> {
    let actor = actor.trim();
    if actor.is_empty() || actor.len() > 200 {
        return Err(StoreError::Invalid(
            "actor must name who terminates the firm (1-200 characters)".into(),
        ));
    }
    registry.firm(firm_id).await?;
    let now = now_ms();
    let mut tx = registry.begin_write().await?;
    let changed = sqlx::query(
        "UPDATE firms SET terminated_at = $1, terminated_by = $2 WHERE id = $3 AND terminated_at IS NULL",
    )
    .bind(now)
    .bind(actor)
    .bind(firm_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed != 1 {
        return Err(StoreError::Conflict(format!(
            "firm {firm_id} is already terminated"
        )));
    }
    sqlx::query(
        "UPDATE firm_users SET disabled_at = $1 WHERE firm_id = $2 AND disabled_at IS NULL",
    )
    .bind(now)
    .bind(firm_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM admin_sessions WHERE firm_id = $1")
        .bind(firm_id)
        .execute(&mut *tx)
        .await?;
    let entry = NewEntry::firm(
        firm_id,
        Kind::FirmTerminated,
        &format!("operator:{actor}"),
        "cli",
        serde_json::json!({ "firm_id": firm_id }),
    );
    access_trail::append_in(&mut tx, registry.backend(), keys, entry).await?;
    tx.commit().await?;
    Ok(now)
}

/// When `firm_id` was terminated, if it was.
pub async fn terminated_at(registry: &Registry, firm_id: &str) -> StoreResult<Option<i64>> {
    let row = sqlx::query("SELECT terminated_at FROM firms WHERE id = $1")
        .bind(firm_id)
        .fetch_optional(registry.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no firm {firm_id}")))?;
    Ok(row.get("terminated_at"))
}

/// Purges `firm_id` now (on request, from the command line): its registry
/// data and, with `with_log`, its outbound log and access trail, leaving
/// tombstones. The firm must have been terminated first.
pub async fn purge_firm(
    registry: &Registry,
    keys: &LogKeys,
    firm_id: &str,
    with_log: bool,
    actor: &str,
) -> StoreResult<Purged> {
    purge_firm_from(registry, keys, firm_id, with_log, actor, "cli").await
}

/// [`purge_firm`], entered in the access trail as done from `origin`.
async fn purge_firm_from(
    registry: &Registry,
    keys: &LogKeys,
    firm_id: &str,
    with_log: bool,
    actor: &str,
    origin: &str,
) -> StoreResult<Purged> {
    let mut tx = registry.begin_write().await?;
    let lock = match registry.backend() {
        Backend::Postgres => {
            "SELECT terminated_at, data_purged_at FROM firms WHERE id = $1 FOR UPDATE"
        }
        Backend::Sqlite => "SELECT terminated_at, data_purged_at FROM firms WHERE id = $1",
    };
    let row = sqlx::query(lock)
        .bind(firm_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no firm {firm_id} (already purged?)")))?;
    let terminated: Option<i64> = row.get("terminated_at");
    let Some(terminated_at) = terminated else {
        return Err(StoreError::Conflict(format!(
            "firm {firm_id} is not terminated; `scopegate firm terminate` it first"
        )));
    };
    let now = now_ms();
    for sql in FIRM_DATA {
        sqlx::query(sql).bind(firm_id).execute(&mut *tx).await?;
    }
    if !with_log {
        sqlx::query("UPDATE firms SET data_purged_at = $1 WHERE id = $2")
            .bind(now)
            .bind(firm_id)
            .execute(&mut *tx)
            .await?;
        let entry = NewEntry::firm(
            firm_id,
            Kind::FirmPurged,
            &format!("operator:{actor}"),
            origin,
            serde_json::json!({ "purged": "registry data", "kept": "outbound log and access trail, for the audit period" }),
        );
        access_trail::append_in(&mut tx, registry.backend(), keys, entry).await?;
        tx.commit().await?;
        return Ok(Purged::Data {
            firm_id: firm_id.to_string(),
        });
    }
    let head = sqlx::query("SELECT seq, hash FROM outbound_chain_heads WHERE firm_id = $1")
        .bind(firm_id)
        .fetch_optional(&mut *tx)
        .await?;
    let (last_seq, last_hash) = head
        .map(|h| (h.get::<i64, _>("seq"), h.get::<String, _>("hash")))
        .unwrap_or((0, GENESIS_HASH.to_string()));
    let mut t = Tombstone {
        firm_id: firm_id.to_string(),
        last_seq,
        last_hash,
        terminated_at,
        purged_at: now,
        purged_by: actor.to_string(),
        mac_key: String::new(),
        mac: String::new(),
    };
    t.seal(keys);
    tombstone::insert(&mut tx, &t).await?;
    let trail = access_trail::purge_chain_in(&mut tx, keys, firm_id, now).await?;
    for sql in FIRM_LOG {
        sqlx::query(sql).bind(firm_id).execute(&mut *tx).await?;
    }
    // The operator chain names the tombstones by their MACs, never the firm:
    // nothing of a purged firm outlives its tombstones.
    let entry = NewEntry::operator(
        Kind::FirmPurged,
        actor,
        origin,
        serde_json::json!({
            "purged": "everything",
            "outbound_tombstone_mac": t.mac,
            "trail_tombstone_mac": trail.mac,
        }),
    );
    access_trail::append_in(&mut tx, registry.backend(), keys, entry).await?;
    tx.commit().await?;
    Ok(Purged::Everything { tombstone: t })
}

/// Runs the scheduled purges due at `now` under `policy`; returns what was purged.
pub async fn purge_due(
    registry: &Registry,
    keys: &LogKeys,
    policy: RetentionPolicy,
    now: i64,
) -> StoreResult<Vec<Purged>> {
    let log_ms = policy.log_ms.max(policy.data_ms);
    let rows = sqlx::query("SELECT id, terminated_at, data_purged_at FROM firms WHERE terminated_at IS NOT NULL AND terminated_at <= $1 ORDER BY id")
        .bind(now - policy.data_ms)
        .fetch_all(registry.pool())
        .await?;
    let mut done = Vec::new();
    for row in rows {
        let (firm_id, terminated_at, data_purged): (String, i64, Option<i64>) = (
            row.get("id"),
            row.get("terminated_at"),
            row.get("data_purged_at"),
        );
        let with_log = terminated_at <= now - log_ms;
        if data_purged.is_some() && !with_log {
            continue;
        }
        match purge_firm_from(registry, keys, &firm_id, with_log, "retention", "serve").await {
            Ok(p) => done.push(p),
            // Another instance purged it first.
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
