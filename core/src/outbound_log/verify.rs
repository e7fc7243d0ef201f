//! Verification of the per-firm hash chains: every record must carry the hash
//! of its own contents, follow its predecessor's hash, have the next sequence
//! number, and the last record must match the firm's chain head.

use super::record::{LogRecord, COLUMNS, GENESIS_HASH};
use crate::registry::{Registry, StoreResult};
use futures::TryStreamExt;
use sqlx::Row;

/// The first problem found in a firm's chain, naming the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFault {
    pub firm_id: String,
    pub seq: i64,
    pub problem: String,
}

impl std::fmt::Display for ChainFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "firm {} record {}: {}",
            self.firm_id, self.seq, self.problem
        )
    }
}

/// What `audit verify` found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub firms: u64,
    pub records: u64,
    pub faults: Vec<ChainFault>,
}

/// Verifies one firm's chain; returns the records checked and the first fault, if any.
pub async fn verify_firm(
    registry: &Registry,
    firm_id: &str,
) -> StoreResult<(u64, Option<ChainFault>)> {
    let sql = format!("SELECT {COLUMNS} FROM outbound_log WHERE firm_id = $1 ORDER BY seq");
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(firm_id)
        .fetch(registry.pool());
    let fault = |seq: i64, problem: String| ChainFault {
        firm_id: firm_id.to_string(),
        seq,
        problem,
    };
    let mut expected_seq = 1i64;
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut checked = 0u64;
    while let Some(row) = rows.try_next().await? {
        let rec = LogRecord::from_row(&row);
        checked += 1;
        if rec.seq > expected_seq {
            return Ok((
                checked,
                Some(fault(
                    expected_seq,
                    format!(
                        "is missing (deleted): the chain jumps from {} to {}",
                        expected_seq - 1,
                        rec.seq
                    ),
                )),
            ));
        }
        if rec.compute_hash() != rec.hash {
            return Ok((
                checked,
                Some(fault(
                    rec.seq,
                    "its contents do not match its hash (edited or moved)".into(),
                )),
            ));
        }
        if rec.prev_hash != prev_hash {
            return Ok((checked, Some(fault(rec.seq, format!("does not follow record {} (reordered, replaced or a record before it was removed)", rec.seq - 1)))));
        }
        prev_hash = rec.hash;
        expected_seq += 1;
    }
    drop(rows);
    let head = sqlx::query("SELECT seq, hash FROM outbound_chain_heads WHERE firm_id = $1")
        .bind(firm_id)
        .fetch_optional(registry.pool())
        .await?;
    let last_seq = expected_seq - 1;
    if let Some(head) = head {
        let (head_seq, head_hash): (i64, String) = (head.get("seq"), head.get("hash"));
        if head_seq != last_seq || head_hash != prev_hash {
            let first_missing = last_seq + 1;
            return Ok((checked, Some(fault(first_missing.min(head_seq.max(1)), format!(
                "the chain head says the log ends at record {head_seq}, but the stored records end at {last_seq} (records deleted from the end, or the head edited)"
            )))));
        }
    } else if last_seq > 0 {
        return Ok((
            checked,
            Some(fault(
                1,
                "the firm has records but no chain head (head deleted)".into(),
            )),
        ));
    }
    Ok((checked, None))
}

/// Verifies every firm's chain (or just one).
pub async fn verify_all(registry: &Registry, only_firm: Option<&str>) -> StoreResult<VerifyReport> {
    let firm_ids: Vec<String> = match only_firm {
        Some(f) => vec![registry.firm(f).await?.id],
        None => registry.firms().await?.into_iter().map(|f| f.id).collect(),
    };
    let mut report = VerifyReport::default();
    for firm_id in firm_ids {
        let (checked, fault) = verify_firm(registry, &firm_id).await?;
        report.firms += 1;
        report.records += checked;
        report.faults.extend(fault);
    }
    Ok(report)
}
