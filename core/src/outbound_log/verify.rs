//! Verification of the per-firm hash chains: every record must carry the
//! keyed hash of its own contents, follow its predecessor's hash, have the next
//! sequence number, and the last record must match the firm's chain head.
//! Given signed checkpoints, every checkpointed head must still be in the chain
//! with the same hash, and every checkpointed firm must still be registered.

use super::checkpoint::{Checkpoints, Mark};
use super::record::{HashProblem, LogRecord, COLUMNS, GENESIS_HASH};
use super::tombstone::{tombstones, Tombstone};
use crate::keys::LogKeys;
use crate::registry::{Registry, StoreResult};
use futures::TryStreamExt;
use sqlx::Row;
use std::collections::BTreeMap;

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
    /// Firms purged after termination, each leaving a genuine tombstone.
    pub purged: Vec<Tombstone>,
}

/// Verifies one firm's chain; returns the records checked and the first fault, if any.
pub async fn verify_firm(
    registry: &Registry,
    keys: &LogKeys,
    firm_id: &str,
) -> StoreResult<(u64, Option<ChainFault>)> {
    verify_firm_against(registry, keys, firm_id, None).await
}

/// Like [`verify_firm`], also holding the chain to the heads checkpoints recorded.
pub async fn verify_firm_against(
    registry: &Registry,
    keys: &LogKeys,
    firm_id: &str,
    marks: Option<&BTreeMap<i64, Mark>>,
) -> StoreResult<(u64, Option<ChainFault>)> {
    let mut marks = marks
        .into_iter()
        .flatten()
        .filter(|(seq, _)| **seq > 0)
        .peekable();
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
        if let Err(problem) = rec.check_hash(keys) {
            let problem = match problem {
                HashProblem::Mismatch => "its contents do not match its keyed hash (edited, moved, or rewritten without the key)".to_string(),
                HashProblem::Unkeyed => "carries a plain, unkeyed hash (rewritten without the key, or written before the chain was keyed and never re-keyed: `scopegate audit rekey`)".to_string(),
                HashProblem::UnknownKey => format!("was chained with master key {}, which this gateway does not hold", rec.mac_key),
            };
            return Ok((checked, Some(fault(rec.seq, problem))));
        }
        if rec.prev_hash != prev_hash {
            return Ok((checked, Some(fault(rec.seq, format!("does not follow record {} (reordered, replaced or a record before it was removed)", rec.seq - 1)))));
        }
        if let Some((_, mark)) = marks.next_if(|(seq, _)| **seq == rec.seq) {
            if mark.hash != rec.hash {
                return Ok((
                    checked,
                    Some(fault(
                        rec.seq,
                        format!(
                            "differs from {} (the chain was rewritten from here on)",
                            mark.describe()
                        ),
                    )),
                ));
            }
        }
        prev_hash = rec.hash;
        expected_seq += 1;
    }
    drop(rows);
    let last_seq = expected_seq - 1;
    if let Some((seq, mark)) = marks.last() {
        if *seq > last_seq {
            return Ok((checked, Some(fault(last_seq + 1, format!(
                "is missing: {} saw the chain reach record {seq}, the registry's ends at {last_seq} (records deleted from the end with the head set back, or the whole chain deleted)",
                mark.describe()
            )))));
        }
    }
    let head = sqlx::query("SELECT seq, hash FROM outbound_chain_heads WHERE firm_id = $1")
        .bind(firm_id)
        .fetch_optional(registry.pool())
        .await?;
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

/// Verifies every firm's chain (or just one), and with `checkpoints`, holds
/// each to the heads they recorded and insists every firm they name is registered.
pub async fn verify_all(
    registry: &Registry,
    keys: &LogKeys,
    only_firm: Option<&str>,
    checkpoints: Option<&Checkpoints>,
) -> StoreResult<VerifyReport> {
    let mut report = VerifyReport::default();
    let firm_ids: Vec<String> = match only_firm {
        Some(f) => match registry.firm(f).await {
            Ok(firm) => vec![firm.id],
            Err(_) if checkpoints.is_some_and(|c| c.firm(f).is_some()) => {
                report.faults.push(missing_firm(f, checkpoints));
                return Ok(report);
            }
            Err(e) => return Err(e),
        },
        None => registry.firms().await?.into_iter().map(|f| f.id).collect(),
    };
    let mut purged: BTreeMap<String, Tombstone> = BTreeMap::new();
    if only_firm.is_none() {
        for t in tombstones(registry).await? {
            if t.is_genuine(keys) {
                purged.insert(t.firm_id.clone(), t);
            } else {
                report.faults.push(ChainFault {
                    firm_id: t.firm_id.clone(),
                    seq: t.last_seq,
                    problem:
                        "its purge tombstone does not hold under the log key (forged or edited)"
                            .into(),
                });
            }
        }
    }
    if let (Some(checkpoints), None) = (checkpoints, only_firm) {
        let registered: std::collections::BTreeSet<&str> =
            firm_ids.iter().map(String::as_str).collect();
        for firm in checkpoints.firms() {
            if registered.contains(firm) {
                continue;
            }
            match purged.get(firm) {
                Some(t) => report.faults.extend(tombstone_against(t, checkpoints)),
                None => report.faults.push(missing_firm(firm, Some(checkpoints))),
            }
        }
    }
    report.purged = purged.into_values().collect();
    for firm_id in firm_ids {
        let marks = checkpoints.and_then(|c| c.firm(&firm_id));
        let (checked, fault) = verify_firm_against(registry, keys, &firm_id, marks).await?;
        report.firms += 1;
        report.records += checked;
        report.faults.extend(fault);
    }
    Ok(report)
}

/// A purged firm's tombstone held to what checkpoints saw of its chain: it
/// must reach at least as far, with the same hash where they meet.
fn tombstone_against(t: &Tombstone, checkpoints: &Checkpoints) -> Option<ChainFault> {
    let marks = checkpoints.firm(&t.firm_id)?;
    let (seq, mark) = marks.iter().next_back()?;
    let fault = |problem: String| ChainFault {
        firm_id: t.firm_id.clone(),
        seq: *seq,
        problem,
    };
    if *seq > t.last_seq {
        return Some(fault(format!(
            "{} saw the chain at record {seq}, but the firm's purge tombstone says it ended at {} (records deleted before the purge)",
            mark.describe(),
            t.last_seq
        )));
    }
    match marks.get(&t.last_seq) {
        Some(m) if m.hash != t.last_hash => Some(fault(format!(
            "{} saw record {} with another hash than the purge tombstone's (the chain was rewritten before the purge)",
            m.describe(),
            t.last_seq
        ))),
        _ => None,
    }
}

fn missing_firm(firm_id: &str, checkpoints: Option<&Checkpoints>) -> ChainFault {
    let (seq, mark) = checkpoints
        .and_then(|c| c.firm(firm_id))
        .and_then(|m| m.iter().next_back())
        .map(|(s, m)| (*s, m.describe()))
        .unwrap_or((0, "a signed checkpoint".into()));
    ChainFault {
        firm_id: firm_id.to_string(),
        seq: 1,
        problem: format!(
            "the firm is gone from the registry, but {mark} saw its chain at record {seq} (the firm was deleted with its chain and head)"
        ),
    }
}
