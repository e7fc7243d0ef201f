//! The writer's commit on a SQLite registry file, through SQLite's C API
//! (rusqlite, linking the same `libsqlite3-sys` as sqlx) on a blocking
//! thread: a whole batch is one hand-off from the writer task and one back.
//! Through sqlx, each of a batch's statements is a trip to the connection's
//! worker thread and back, and the records go in as one JSON text that SQLite
//! unpacks field by field; those took most of a commit's time, several times
//! the fsync (BENCHMARKS.md §12). Here each record is a prepared insert of
//! bound values. The transaction is the same: `BEGIN IMMEDIATE`, the batch's
//! chain heads created and read, the records chained and inserted, the heads
//! moved, committed with `synchronous = FULL` before any sender is answered.

use super::pending::{self, PendingRecord};
use super::record::GENESIS_HASH;
use super::sqlite_checkpoints::{Checkpointer, SAFETY_NET_PAGES};
use crate::clock::now_ms;
use crate::keys::LogKeys;
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The writer's own connection to the registry file.
pub(super) struct SqliteCommitter {
    path: PathBuf,
    /// Opened on first use, and afresh after any failed batch: SQLite rolls a
    /// transaction back by itself after some errors (a full disk, an I/O error).
    conn: Option<Connection>,
    /// Copies the log back into the file off the commit path (`sqlite_checkpoints`).
    checkpoints: Option<Checkpointer>,
}

/// What a batch's commit gives back: the records (the writer still needs
/// them), and the seq given to each in queue order, or why none was committed.
pub(super) type Committed = (Vec<PendingRecord>, Result<Vec<i64>, String>);

impl SqliteCommitter {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            checkpoints: Checkpointer::start(path.clone()),
            path,
            conn: None,
        }
    }

    /// Chains and commits `records` in one durable transaction.
    pub(super) async fn commit(
        &mut self,
        records: Vec<PendingRecord>,
        keys: Arc<LogKeys>,
    ) -> Committed {
        let conn = self.conn.take();
        let path = self.path.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let opened = match conn {
                Some(conn) => Ok(conn),
                None => open(&path),
            };
            let mut conn = match opened {
                Ok(conn) => conn,
                Err(e) => return (None, (records, Err(e.to_string()))),
            };
            match commit_blocking(&mut conn, &records, &keys) {
                Ok(seqs) => (Some(conn), (records, Ok(seqs))),
                Err(e) => (None, (records, Err(e.to_string()))),
            }
        })
        .await;
        match joined {
            Ok((conn, committed)) => {
                self.conn = conn;
                if let (Some(checkpoints), Ok(_)) = (&self.checkpoints, &committed.1) {
                    checkpoints.committed();
                }
                committed
            }
            Err(e) => (Vec::new(), Err(format!("the commit thread failed: {e}"))),
        }
    }
}

/// Opens the registry file for the writer: WAL, a full fsync on commit, as
/// the pool's connections are; the log is checkpointed by the checkpoint
/// thread, by this connection only past [`SAFETY_NET_PAGES`].
fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_handler(Some(wait_for_lock))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = {SAFETY_NET_PAGES};",
    ))?;
    Ok(conn)
}

/// How often the writer looks again for the write lock while another
/// connection holds it, and for how long in all (as the pool's 5 s timeout).
const LOCK_RETRY: Duration = Duration::from_millis(1);
const LOCK_RETRIES: i32 = 5_000;

/// SQLite's busy handler for the writer: the lock is tried again every
/// millisecond. SQLite's own (`busy_timeout`) sleeps longer and longer, up to
/// 100 ms between tries, so a writer kept out by a run of short transactions
/// (`keys rotate` re-sealing in batches, a report's index catch-up) missed
/// the gaps between them and every send waited for the whole run.
fn wait_for_lock(retries: i32) -> bool {
    if retries >= LOCK_RETRIES {
        return false;
    }
    std::thread::sleep(LOCK_RETRY);
    true
}

const CREATE_HEAD: &str = "INSERT INTO outbound_chain_heads (firm_id, seq, hash) VALUES (?1, 0, ?2) ON CONFLICT (firm_id) DO NOTHING";
const READ_HEAD: &str = "SELECT seq, hash FROM outbound_chain_heads WHERE firm_id = ?1";
const INSERT_RECORD: &str = "INSERT INTO outbound_log (firm_id, seq, kind, at, grant_id, connector, direction, method, target, fields, record_ids, payload_sha256, bytes, send_seq, status, latency_us, prev_hash, hash, mac_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";
const MOVE_HEAD: &str = "UPDATE outbound_chain_heads SET seq = ?2, hash = ?3 WHERE firm_id = ?1";

fn commit_blocking(
    conn: &mut Connection,
    records: &[PendingRecord],
    keys: &LogKeys,
) -> rusqlite::Result<Vec<i64>> {
    let at = now_ms();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut heads = BTreeMap::new();
    {
        let mut create = tx.prepare_cached(CREATE_HEAD)?;
        let mut read = tx.prepare_cached(READ_HEAD)?;
        for firm in pending::firms_of(records) {
            create.execute(params![firm, GENESIS_HASH])?;
            let head = read.query_row([firm], |row| Ok((row.get(0)?, row.get(1)?)))?;
            heads.insert(firm.to_string(), head);
        }
    }
    // Every firm's head was just read, so every record chains.
    let chained =
        pending::chain(records, heads, at, keys).ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    {
        let mut insert = tx.prepare_cached(INSERT_RECORD)?;
        for (i, record) in records.iter().enumerate() {
            let r = chained.row(record, i);
            insert.execute(params![
                r.firm_id,
                r.seq,
                r.kind,
                r.at,
                r.grant_id,
                r.connector,
                r.direction,
                r.method,
                r.target,
                r.fields,
                r.record_ids,
                r.payload_sha256,
                r.bytes,
                r.send_seq,
                r.status,
                r.latency_us,
                r.prev_hash,
                r.hash,
                r.mac_key,
            ])?;
        }
        let mut move_head = tx.prepare_cached(MOVE_HEAD)?;
        for (firm, seq, hash) in &chained.heads {
            move_head.execute(params![firm, seq, hash])?;
        }
    }
    tx.commit()?;
    Ok(chained.links.iter().map(|l| l.seq).collect())
}
