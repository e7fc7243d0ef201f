//! The one-time migration to the keyed chain. Records written before the
//! chain was keyed carry a plain SHA-256 hash and an empty `mac_key`. For each
//! firm that has any, in one write transaction holding the chain head: the
//! whole chain is verified as it stands (plain hashes for plain records, keyed
//! for keyed ones, links, sequence, head), and only if it is intact is every
//! record re-chained under the current key. A chain that does not verify is
//! left as it is, so `audit verify` keeps naming its first bad record; plain
//! records are never accepted by `audit verify`.
//!
//! `serve` re-keys on its own only at the upgrade itself: while no record in
//! the log is keyed yet and no checkpoint has been written. After that, plain
//! records can only be a rewrite by someone without the key, and re-keying them
//! would launder it: it takes the operator's `scopegate audit rekey`.

use super::record::{LogRecord, COLUMNS, GENESIS_HASH};
use super::verify::ChainFault;
use super::writer::lock_chain_head;
use crate::keys::LogKeys;
use crate::registry::{Registry, StoreResult};
use sqlx::Row;

/// What [`rekey_unkeyed`] did.
#[derive(Debug, Default)]
pub struct RekeyReport {
    /// Firms whose chains were re-keyed.
    pub firms: u64,
    /// Records re-chained under the key.
    pub records: u64,
    /// Firms left alone because their chain did not verify.
    pub refused: Vec<ChainFault>,
}

const PAGE: i64 = 5_000;

/// What `serve` does at start: re-keys plain records only when this is the
/// upgrade (no keyed record anywhere, `checkpoints_written` false); otherwise
/// reports how many firms hold plain records, leaving them for `audit verify`.
pub async fn rekey_at_upgrade(
    registry: &Registry,
    keys: &LogKeys,
    checkpoints_written: bool,
) -> StoreResult<Result<RekeyReport, u64>> {
    let unkeyed = sqlx::query("SELECT firm_id FROM outbound_log WHERE mac_key = '' LIMIT 1")
        .fetch_optional(registry.pool())
        .await?;
    if unkeyed.is_none() {
        return Ok(Ok(RekeyReport::default()));
    }
    let keyed = sqlx::query("SELECT firm_id FROM outbound_log WHERE mac_key <> '' LIMIT 1")
        .fetch_optional(registry.pool())
        .await?;
    if keyed.is_some() || checkpoints_written {
        let firms: i64 =
            sqlx::query("SELECT count(DISTINCT firm_id) AS n FROM outbound_log WHERE mac_key = ''")
                .fetch_one(registry.pool())
                .await?
                .get("n");
        return Ok(Err(firms as u64));
    }
    rekey_unkeyed(registry, keys).await.map(Ok)
}

/// Re-chains, under the current log key, every firm chain that still holds plain records.
pub async fn rekey_unkeyed(registry: &Registry, keys: &LogKeys) -> StoreResult<RekeyReport> {
    let firms: Vec<String> = sqlx::query(
        "SELECT DISTINCT firm_id FROM outbound_log WHERE mac_key = '' ORDER BY firm_id",
    )
    .fetch_all(registry.pool())
    .await?
    .iter()
    .map(|r| r.get("firm_id"))
    .collect();
    let mut report = RekeyReport::default();
    for firm_id in firms {
        match rekey_firm(registry, keys, &firm_id).await? {
            Ok(n) => {
                report.firms += 1;
                report.records += n;
                tracing::info!(firm = %firm_id, records = n, "outbound log chain re-keyed");
            }
            Err(fault) => {
                tracing::error!(%fault, "outbound log chain not re-keyed: it does not verify");
                report.refused.push(fault);
            }
        }
    }
    Ok(report)
}

async fn rekey_firm(
    registry: &Registry,
    keys: &LogKeys,
    firm_id: &str,
) -> StoreResult<Result<u64, ChainFault>> {
    let key = keys.current();
    let fault = |seq: i64, problem: &str| ChainFault {
        firm_id: firm_id.to_string(),
        seq,
        problem: problem.to_string(),
    };
    let mut tx = registry.begin_write().await?;
    let (head_seq, head_hash) = lock_chain_head(&mut tx, registry.backend(), firm_id).await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM outbound_log WHERE firm_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    );
    let (mut old_prev, mut new_prev) = (GENESIS_HASH.to_string(), GENESIS_HASH.to_string());
    let mut last = 0i64;
    loop {
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(firm_id)
            .bind(last)
            .bind(PAGE)
            .fetch_all(&mut *tx)
            .await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let mut rec = LogRecord::from_row(row);
            if rec.seq != last + 1 {
                return Ok(Err(fault(last + 1, "is missing (deleted)")));
            }
            let intact = if rec.mac_key.is_empty() {
                rec.plain_hash() == rec.hash
            } else {
                rec.check_hash(keys).is_ok()
            };
            if !intact {
                return Ok(Err(fault(
                    rec.seq,
                    "its contents do not match its hash (edited or moved)",
                )));
            }
            if rec.prev_hash != old_prev {
                return Ok(Err(fault(rec.seq, "does not follow its predecessor")));
            }
            old_prev = std::mem::take(&mut rec.hash);
            rec.prev_hash = std::mem::take(&mut new_prev);
            rec.seal(key);
            sqlx::query("UPDATE outbound_log SET prev_hash = $1, hash = $2, mac_key = $3 WHERE firm_id = $4 AND seq = $5")
                .bind(&rec.prev_hash)
                .bind(&rec.hash)
                .bind(&rec.mac_key)
                .bind(firm_id)
                .bind(rec.seq)
                .execute(&mut *tx)
                .await?;
            new_prev = rec.hash;
            last = rec.seq;
        }
    }
    if head_seq != last || head_hash != old_prev {
        return Ok(Err(fault(
            last + 1,
            "the chain head does not match the stored records (records deleted from the end, or the head edited)",
        )));
    }
    sqlx::query("UPDATE outbound_chain_heads SET hash = $1 WHERE firm_id = $2")
        .bind(&new_prev)
        .bind(firm_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Ok(last as u64))
}
