//! Keeps the record-id index (`outbound_record_ids`) up with the log. The
//! writer commits send records without their index rows, so a send waits for
//! one small transaction, not for a hundred random B-tree inserts; the rows
//! are added afterwards, in steps, by `index_step` (the writer runs one
//! once its queue has been empty for 20 ms, when four sends wait or the
//! oldest has waited 100 ms) and by [`catch_up`] (a report runs it first,
//! so it always reads an index that is complete up to the log's head).
//!
//! Per firm, `outbound_index_marks.indexed_seq` is the seq up to which every
//! send's ids are in the index. The mark moves in the same transaction as the
//! rows it covers, so an interrupted step leaves nothing half-indexed, and on
//! PostgreSQL the mark row is locked for the step, so instances sharing the
//! registry never index a send twice. The writer's steps run on a connection
//! of their own whose commits are not flushed on their own
//! (`Registry::open_unsynced_connection`): what they write can be rebuilt from
//! the log, and the next durable commit flushes it anyway.

use super::batch_sql;
use crate::registry::{Backend, Registry, StoreResult};
use sqlx::{AnyConnection, Connection, Row};
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Send records indexed per transaction by the writer's idle-time step: a
/// record arriving meanwhile waits for at most this much index work.
pub const IDLE_STEP_SENDS: i64 = 4;

/// How long a send that is not yet a full step's worth waits to be indexed
/// (reports catch up first, so this delays nothing anyone reads).
const INDEX_DELAY: Duration = Duration::from_millis(100);

/// Send records indexed per transaction when a report catches up.
const CATCH_UP_STEP_SENDS: i64 = 500;

/// Firms whose index is behind their chain head (at most `limit`).
pub async fn firms_behind(registry: &Registry, limit: i64) -> StoreResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT h.firm_id FROM outbound_chain_heads h \
         LEFT JOIN outbound_index_marks m ON m.firm_id = h.firm_id \
         WHERE h.seq > COALESCE(m.indexed_seq, 0) LIMIT $1",
    )
    .bind(limit)
    .fetch_all(registry.pool())
    .await?;
    Ok(rows.iter().map(|r| r.get("firm_id")).collect())
}

/// Indexes up to `max_sends` of `firm_id`'s unindexed sends in one
/// transaction on `conn` (the writer's own unsynced connection, or one of the
/// pool's); returns true when the firm's index has reached its chain head.
async fn index_step(
    conn: &mut AnyConnection,
    backend: Backend,
    firm_id: &str,
    max_sends: i64,
) -> StoreResult<bool> {
    if !is_behind(&mut *conn, firm_id).await? {
        return Ok(true);
    }
    let mut tx = match backend {
        Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => conn.begin().await?,
    };
    // The mark row exists only for a firm that has a chain (a purged firm has neither).
    sqlx::query(
        "INSERT INTO outbound_index_marks (firm_id, indexed_seq) \
         SELECT firm_id, 0 FROM outbound_chain_heads WHERE firm_id = $1 \
         ON CONFLICT (firm_id) DO NOTHING",
    )
    .bind(firm_id)
    .execute(&mut *tx)
    .await?;
    let lock = match backend {
        Backend::Postgres => "SELECT m.indexed_seq, h.seq AS head FROM outbound_index_marks m JOIN outbound_chain_heads h ON h.firm_id = m.firm_id WHERE m.firm_id = $1 FOR UPDATE OF m",
        Backend::Sqlite => "SELECT m.indexed_seq, h.seq AS head FROM outbound_index_marks m JOIN outbound_chain_heads h ON h.firm_id = m.firm_id WHERE m.firm_id = $1",
    };
    let Some(row) = sqlx::query(lock)
        .bind(firm_id)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(true);
    };
    let (mark, head): (i64, i64) = (row.get("indexed_seq"), row.get("head"));
    if mark >= head {
        return Ok(true);
    }
    let sends = sqlx::query(
        "SELECT seq, record_ids FROM outbound_log \
         WHERE firm_id = $1 AND seq > $2 AND seq <= $3 AND kind = 'send' ORDER BY seq LIMIT $4",
    )
    .bind(firm_id)
    .bind(mark)
    .bind(head)
    .bind(max_sends)
    .fetch_all(&mut *tx)
    .await?;
    // Fewer sends than asked for: every record up to the head is covered.
    let new_mark = if (sends.len() as i64) < max_sends {
        head
    } else {
        sends.last().map(|r| r.get::<i64, _>("seq")).unwrap_or(head)
    };
    let rows: Vec<(&str, i64, Vec<String>)> = sends
        .iter()
        .map(|r| {
            let ids: Vec<String> =
                serde_json::from_str(&r.get::<String, _>("record_ids")).unwrap_or_default();
            (firm_id, r.get::<i64, _>("seq"), ids)
        })
        .collect();
    batch_sql::insert_index_rows(&mut tx, backend, &rows).await?;
    sqlx::query("UPDATE outbound_index_marks SET indexed_seq = $1 WHERE firm_id = $2")
        .bind(new_mark)
        .bind(firm_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(new_mark >= head)
}

/// Indexes every send of `firm_id` committed so far: what a report runs before
/// it reads the index.
pub async fn catch_up(registry: &Registry, firm_id: &str) -> StoreResult<()> {
    let mut conn = registry.pool().acquire().await?;
    while !index_step(&mut conn, registry.backend(), firm_id, CATCH_UP_STEP_SENDS).await? {}
    Ok(())
}

/// True when `firm_id` has sends the index does not cover yet (a read; no lock).
async fn is_behind(conn: &mut AnyConnection, firm_id: &str) -> StoreResult<bool> {
    let row = sqlx::query(
        "SELECT h.seq AS head, COALESCE(m.indexed_seq, 0) AS mark FROM outbound_chain_heads h \
         LEFT JOIN outbound_index_marks m ON m.firm_id = h.firm_id WHERE h.firm_id = $1",
    )
    .bind(firm_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.is_some_and(|r| r.get::<i64, _>("head") > r.get::<i64, _>("mark")))
}

/// The firms whose record-id index is behind their log, indexed one small
/// step at a time, round robin, while the writer's queue is empty.
pub(super) struct IndexBacklog {
    firms: VecDeque<String>,
    queued: HashSet<String>,
    /// Sends noted since the last step (an estimate of the work waiting).
    noted: i64,
    /// When the oldest of that work was noted.
    since: Instant,
    /// The writer's own unsynced connection (`Registry::open_unsynced_connection`),
    /// opened on first use and again after an error.
    conn: Option<AnyConnection>,
}

impl IndexBacklog {
    /// Starts from the firms the index was behind for when this writer started.
    pub(super) async fn load(registry: &Registry) -> Self {
        let mut backlog = Self {
            firms: VecDeque::new(),
            queued: HashSet::new(),
            noted: 0,
            since: Instant::now(),
            conn: None,
        };
        match firms_behind(registry, 100_000).await {
            Ok(firms) => {
                // Work left by an earlier process: due at once.
                backlog.noted = IDLE_STEP_SENDS * firms.len() as i64;
                firms.into_iter().for_each(|f| backlog.push(f));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the record-id index's backlog; reports will index it")
            }
        }
        backlog
    }

    pub(super) fn is_empty(&self) -> bool {
        self.firms.is_empty()
    }

    fn push(&mut self, firm_id: String) {
        if self.queued.insert(firm_id.clone()) {
            self.firms.push_back(firm_id);
        }
    }

    /// Notes a firm whose committed sends carried record ids.
    pub(super) fn note(&mut self, firm_id: &str) {
        if self.firms.is_empty() {
            self.since = Instant::now();
        }
        self.noted += 1;
        if !self.queued.contains(firm_id) {
            self.push(firm_id.to_string());
        }
    }

    /// When the next step is due: at once when a full step's worth of sends
    /// waits, else [`INDEX_DELAY`] after the oldest, so that sends trickling
    /// in are indexed several to a transaction rather than one each.
    pub(super) fn due_at(&self) -> Instant {
        if self.noted >= IDLE_STEP_SENDS {
            Instant::now()
        } else {
            self.since + INDEX_DELAY
        }
    }

    /// One index step for the firm at the front; it goes to the back while behind.
    pub(super) async fn step(&mut self, registry: &Registry) {
        let Some(firm_id) = self.firms.pop_front() else {
            return;
        };
        self.noted = (self.noted - IDLE_STEP_SENDS).max(0);
        self.since = Instant::now();
        let outcome = match self.conn.as_mut() {
            Some(conn) => Ok(conn),
            None => registry
                .open_unsynced_connection()
                .await
                .map(|conn| self.conn.insert(conn)),
        };
        let outcome = match outcome {
            Ok(conn) => index_step(conn, registry.backend(), &firm_id, IDLE_STEP_SENDS).await,
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(false) => {
                // More than a step's worth was waiting: the next is due at once.
                self.noted = self.noted.max(IDLE_STEP_SENDS);
                self.firms.push_back(firm_id);
            }
            Ok(true) => {
                self.queued.remove(&firm_id);
            }
            Err(e) => {
                // Left to the next report's catch-up, so a broken firm cannot spin the writer;
                // the connection is opened afresh for the next step.
                tracing::warn!(firm = %firm_id, error = %e, "record-id index step failed");
                self.queued.remove(&firm_id);
                self.conn = None;
            }
        }
    }
}
