//! Verification of every trail chain: each entry must carry the keyed hash of
//! its own contents, follow its predecessor's hash and have the next sequence
//! number, and the last entry must match the chain's head. A chain with
//! entries but no head, and a tombstone whose MAC does not hold, are faults.

use super::entry::{Entry, COLUMNS};
use super::tombstone::{tombstones, TrailTombstone};
use crate::keyed_chain::{HashProblem, GENESIS_HASH};
use crate::keys::LogKeys;
use crate::registry::{Registry, StoreResult};
use futures::TryStreamExt;
use sqlx::Row;
use std::collections::BTreeSet;

/// The first problem found in a chain, naming the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailFault {
    pub chain: String,
    pub seq: i64,
    pub problem: String,
}

impl std::fmt::Display for TrailFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "access trail {} entry {}: {}",
            self.chain, self.seq, self.problem
        )
    }
}

/// What verifying the trail found.
#[derive(Debug, Default)]
pub struct TrailReport {
    pub chains: u64,
    pub entries: u64,
    pub faults: Vec<TrailFault>,
    /// Chains of purged firms, each leaving a genuine tombstone.
    pub purged: Vec<TrailTombstone>,
}

/// Verifies every chain (or only `only_chain`).
pub async fn verify_trails(
    registry: &Registry,
    keys: &LogKeys,
    only_chain: Option<&str>,
) -> StoreResult<TrailReport> {
    let mut report = TrailReport::default();
    let mut chains: BTreeSet<String> = BTreeSet::new();
    for sql in [
        "SELECT chain FROM access_trail_heads",
        "SELECT DISTINCT chain FROM access_trail",
    ] {
        let rows = sqlx::query(sql).fetch_all(registry.pool()).await?;
        chains.extend(rows.iter().map(|r| r.get::<String, _>("chain")));
    }
    if only_chain.is_none() {
        for t in tombstones(registry).await? {
            if t.is_genuine(keys) {
                report.purged.push(t);
            } else {
                report.faults.push(TrailFault {
                    chain: t.chain.clone(),
                    seq: t.last_seq,
                    problem:
                        "its purge tombstone does not hold under the log key (forged or edited)"
                            .into(),
                });
            }
        }
    }
    for chain in chains {
        if only_chain.is_some_and(|c| c != chain) {
            continue;
        }
        let (checked, fault) = verify_chain(registry, keys, &chain).await?;
        report.chains += 1;
        report.entries += checked;
        report.faults.extend(fault);
    }
    Ok(report)
}

async fn verify_chain(
    registry: &Registry,
    keys: &LogKeys,
    chain: &str,
) -> StoreResult<(u64, Option<TrailFault>)> {
    let fault = |seq: i64, problem: String| TrailFault {
        chain: chain.to_string(),
        seq,
        problem,
    };
    let sql = format!("SELECT {COLUMNS} FROM access_trail WHERE chain = $1 ORDER BY seq");
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(chain)
        .fetch(registry.pool());
    let mut expected_seq = 1i64;
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut checked = 0u64;
    while let Some(row) = rows.try_next().await? {
        let entry = Entry::from_row(&row);
        checked += 1;
        if entry.seq > expected_seq {
            return Ok((
                checked,
                Some(fault(
                    expected_seq,
                    format!(
                        "is missing (deleted): the chain jumps from {} to {}",
                        expected_seq - 1,
                        entry.seq
                    ),
                )),
            ));
        }
        if let Err(problem) = entry.check_hash(keys) {
            let problem = match problem {
                HashProblem::Mismatch | HashProblem::Unkeyed => "its contents do not match its keyed hash (edited, moved, or rewritten without the key)".to_string(),
                HashProblem::UnknownKey => format!("was chained with master key {}, which this gateway does not hold", entry.mac_key),
            };
            return Ok((checked, Some(fault(entry.seq, problem))));
        }
        if entry.prev_hash != prev_hash {
            return Ok((
                checked,
                Some(fault(
                    entry.seq,
                    format!(
                        "does not follow entry {} (reordered, replaced or an entry before it was removed)",
                        entry.seq - 1
                    ),
                )),
            ));
        }
        prev_hash = entry.hash;
        expected_seq += 1;
    }
    drop(rows);
    let last_seq = expected_seq - 1;
    let head = sqlx::query("SELECT seq, hash FROM access_trail_heads WHERE chain = $1")
        .bind(chain)
        .fetch_optional(registry.pool())
        .await?;
    match head {
        Some(head) => {
            let (head_seq, head_hash): (i64, String) = (head.get("seq"), head.get("hash"));
            if head_seq != last_seq || head_hash != prev_hash {
                return Ok((checked, Some(fault(
                    (last_seq + 1).min(head_seq.max(1)),
                    format!("the chain head says the trail ends at entry {head_seq}, but the stored entries end at {last_seq} (entries deleted from the end, or the head edited)"),
                ))));
            }
        }
        None if last_seq > 0 => {
            return Ok((
                checked,
                Some(fault(
                    1,
                    "the chain has entries but no head (head deleted)".into(),
                )),
            ))
        }
        None => {}
    }
    Ok((checked, None))
}
