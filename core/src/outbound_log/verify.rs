//! Verification of the per-firm hash chains: every record must carry the
//! keyed hash of its own contents, follow its predecessor's hash, have the next
//! sequence number, and the last record must match the firm's chain head.
//! Given signed checkpoints, every checkpointed head must still be in the chain
//! with the same hash, and every checkpointed firm must still be registered.

use super::checkpoint::{Checkpoints, Mark};
use super::record::{HashProblem, LogRecord, COLUMNS, GENESIS_HASH};
use super::sqlite_read;
use super::stored::StoredRecord;
use super::tombstone::{tombstones, Tombstone};
use crate::keyed_chain::check_hash_bytes;
use crate::keys::LogKeys;
use crate::registry::{Backend, Registry, StoreError, StoreResult};
use futures::{StreamExt, TryStreamExt};
use sqlx::Row;
use std::collections::BTreeMap;
use std::sync::Arc;

/// At most this many firms' chains are verified at once (each on its own
/// connection and thread), and never more than the machine has cores.
const MAX_PARALLEL_FIRMS: usize = 8;

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
    let Some(path) = registry.sqlite_file() else {
        return walk_streamed(registry, keys, firm_id, marks).await;
    };
    let (path, keys, firm_id, marks) = (
        path.to_path_buf(),
        keys.clone(),
        firm_id.to_string(),
        marks.cloned(),
    );
    tokio::task::spawn_blocking(move || walk_sqlite_file(&path, &keys, &firm_id, marks.as_ref()))
        .await
        .map_err(|e| StoreError::Invalid(format!("verifying the chain of a firm stopped: {e}")))?
}

/// The SQLite registry's chains, read through [`sqlite_read`] (blocking).
fn walk_sqlite_file(
    path: &std::path::Path,
    keys: &LogKeys,
    firm_id: &str,
    marks: Option<&BTreeMap<i64, Mark>>,
) -> StoreResult<(u64, Option<ChainFault>)> {
    let unreadable = |e: rusqlite::Error| StoreError::Unreachable {
        url: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut conn = sqlite_read::open(path).map_err(unreadable)?;
    let mut walk = ChainWalk::new(firm_id, keys, marks);
    let head = sqlite_read::read_chain(&mut conn, firm_id, |seq, rec| match rec {
        Ok(rec) => walk.step(&rec),
        Err(sqlite_read::Unreadable) => walk.unreadable(seq),
    })
    .map_err(unreadable)?;
    Ok(walk.finish(head))
}

/// Any other registry's chains, streamed through the pool. The records and
/// the head are read in one snapshot (on PostgreSQL a repeatable-read
/// transaction): read apart, a batch committed between the two reads put the
/// head past the last record read, and `audit verify` on a live gateway
/// reported records deleted from the end.
async fn walk_streamed(
    registry: &Registry,
    keys: &LogKeys,
    firm_id: &str,
    marks: Option<&BTreeMap<i64, Mark>>,
) -> StoreResult<(u64, Option<ChainFault>)> {
    let mut snapshot = registry.pool().begin().await?;
    if registry.backend() == Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *snapshot)
            .await?;
    }
    let sql = format!("SELECT {COLUMNS} FROM outbound_log WHERE firm_id = $1 ORDER BY seq");
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(firm_id)
        .fetch(&mut *snapshot);
    let mut walk = ChainWalk::new(firm_id, keys, marks);
    while let Some(row) = rows.try_next().await? {
        let (record, lists) = stored_columns(&row);
        if !walk.step(&StoredRecord::of(&record, &lists)) {
            break;
        }
    }
    drop(rows);
    if walk.fault.is_some() {
        return Ok(walk.finish(None));
    }
    let head = sqlx::query("SELECT seq, hash FROM outbound_chain_heads WHERE firm_id = $1")
        .bind(firm_id)
        .fetch_optional(&mut *snapshot)
        .await?
        .map(|head| (head.get("seq"), head.get("hash")));
    snapshot.rollback().await?;
    Ok(walk.finish(head))
}

/// A row's columns, the two lists kept as their stored JSON text (the record's own lists left empty).
fn stored_columns(row: &sqlx::any::AnyRow) -> (LogRecord, (String, String)) {
    let record = LogRecord {
        firm_id: row.get("firm_id"),
        seq: row.get("seq"),
        kind: row.get("kind"),
        at: row.get("at"),
        grant_id: row.get("grant_id"),
        connector: row.get("connector"),
        direction: row.get("direction"),
        method: row.get("method"),
        target: row.get("target"),
        fields: Vec::new(),
        record_ids: Vec::new(),
        payload_sha256: row.get("payload_sha256"),
        bytes: row.get("bytes"),
        send_seq: row.get("send_seq"),
        status: row.get("status"),
        latency_us: row.get("latency_us"),
        prev_hash: row.get("prev_hash"),
        hash: row.get("hash"),
        mac_key: row.get("mac_key"),
    };
    (record, (row.get("fields"), row.get("record_ids")))
}

/// One firm's chain checked record by record, in order: the first fault ends it.
struct ChainWalk<'a> {
    firm_id: &'a str,
    keys: &'a LogKeys,
    /// Checkpointed heads past the genesis, in chain order, not yet reached.
    marks: std::iter::Peekable<std::vec::IntoIter<(i64, &'a Mark)>>,
    expected_seq: i64,
    prev_hash: String,
    checked: u64,
    /// The canonical form of the record being checked (reused).
    canonical: Vec<u8>,
    fault: Option<ChainFault>,
}

impl<'a> ChainWalk<'a> {
    fn new(firm_id: &'a str, keys: &'a LogKeys, marks: Option<&'a BTreeMap<i64, Mark>>) -> Self {
        let marks: Vec<(i64, &Mark)> = marks
            .into_iter()
            .flatten()
            .filter(|(seq, _)| **seq > 0)
            .map(|(seq, mark)| (*seq, mark))
            .collect();
        ChainWalk {
            firm_id,
            keys,
            marks: marks.into_iter().peekable(),
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_string(),
            checked: 0,
            canonical: Vec::with_capacity(1024),
            fault: None,
        }
    }

    fn fail(&mut self, seq: i64, problem: String) -> bool {
        self.fault = Some(ChainFault {
            firm_id: self.firm_id.to_string(),
            seq,
            problem,
        });
        false
    }

    /// A gap before `seq`, if the chain jumps there.
    fn jumps(&mut self, seq: i64) -> bool {
        if seq > self.expected_seq {
            let problem = format!(
                "is missing (deleted): the chain jumps from {} to {}",
                self.expected_seq - 1,
                seq
            );
            return !self.fail(self.expected_seq, problem);
        }
        false
    }

    /// Checks the next record; false once a fault is found (the walk ends there).
    fn step(&mut self, rec: &StoredRecord<'_>) -> bool {
        self.checked += 1;
        if self.jumps(rec.seq) {
            return false;
        }
        rec.canonical_into(&mut self.canonical);
        if let Err(problem) = check_hash_bytes(self.keys, rec.mac_key, rec.hash, &self.canonical) {
            let problem = match problem {
                HashProblem::Mismatch => MISMATCH.to_string(),
                HashProblem::Unkeyed => "carries a plain, unkeyed hash (rewritten without the key, or written before the chain was keyed and never re-keyed: `scopegate audit rekey`)".to_string(),
                HashProblem::UnknownKey => format!("was chained with master key {}, which this gateway does not hold", rec.mac_key),
            };
            return self.fail(rec.seq, problem);
        }
        if rec.prev_hash != self.prev_hash {
            let problem = format!(
                "does not follow record {} (reordered, replaced or a record before it was removed)",
                rec.seq - 1
            );
            return self.fail(rec.seq, problem);
        }
        if let Some((_, mark)) = self.marks.next_if(|(seq, _)| *seq == rec.seq) {
            if mark.hash != rec.hash {
                let problem = format!(
                    "differs from {} (the chain was rewritten from here on)",
                    mark.describe()
                );
                return self.fail(rec.seq, problem);
            }
        }
        self.prev_hash.clear();
        self.prev_hash.push_str(rec.hash);
        self.expected_seq += 1;
        true
    }

    /// A record whose columns do not have the log's types (numbers where text
    /// belongs, bytes that are not UTF-8): its contents cannot be what was hashed.
    fn unreadable(&mut self, seq: i64) -> bool {
        self.checked += 1;
        if self.jumps(seq) {
            return false;
        }
        self.fail(seq, MISMATCH.to_string())
    }

    /// The checked count and the first fault, holding the end of the chain to
    /// the last checkpoint and to the stored chain head (`seq`, `hash`).
    fn finish(mut self, head: Option<(i64, String)>) -> (u64, Option<ChainFault>) {
        if let Some(fault) = self.fault.take() {
            return (self.checked, Some(fault));
        }
        let last_seq = self.expected_seq - 1;
        if let Some((seq, mark)) = self.marks.by_ref().last() {
            if seq > last_seq {
                let problem = format!(
                    "is missing: {} saw the chain reach record {seq}, the registry's ends at {last_seq} (records deleted from the end with the head set back, or the whole chain deleted)",
                    mark.describe()
                );
                self.fail(last_seq + 1, problem);
                return (self.checked, self.fault);
            }
        }
        match head {
            Some((head_seq, head_hash)) if head_seq != last_seq || head_hash != self.prev_hash => {
                let first_missing = last_seq + 1;
                let problem = format!(
                    "the chain head says the log ends at record {head_seq}, but the stored records end at {last_seq} (records deleted from the end, or the head edited)"
                );
                self.fail(first_missing.min(head_seq.max(1)), problem);
            }
            Some(_) => {}
            None if last_seq > 0 => {
                self.fail(
                    1,
                    "the firm has records but no chain head (head deleted)".into(),
                );
            }
            None => {}
        }
        (self.checked, self.fault)
    }
}

const MISMATCH: &str =
    "its contents do not match its keyed hash (edited, moved, or rewritten without the key)";

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
    let keys = Arc::new(keys.clone());
    let width = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_PARALLEL_FIRMS);
    let mut walks = futures::stream::iter(firm_ids.into_iter().map(|firm_id| {
        let (registry, keys) = (registry.clone(), keys.clone());
        let marks = checkpoints.and_then(|c| c.firm(&firm_id)).cloned();
        async move {
            tokio::spawn(async move {
                verify_firm_against(&registry, &keys, &firm_id, marks.as_ref()).await
            })
            .await
            .map_err(|e| {
                StoreError::Invalid(format!("verifying the chain of a firm stopped: {e}"))
            })?
        }
    }))
    .buffered(width);
    // In firm order, as before: the report lists faults firm by firm.
    while let Some(walk) = walks.next().await {
        let (checked, fault) = walk?;
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
