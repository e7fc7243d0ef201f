//! The group-committing writer. Callers hand records to one task per gateway
//! process; it takes whatever has queued up (up to `MAX_BATCH`), chains the
//! records per firm and commits them in one transaction, so many concurrent
//! senders share one fsync. The commit runs on the writer's own connection:
//! through SQLite's C API on a registry file (`sqlite_commit`), through sqlx's
//! PostgreSQL driver with typed arrays on PostgreSQL (`pg_commit`), in either
//! case one transaction whatever the batch's size. Across processes sharing
//! PostgreSQL, the chain head row of each firm is locked (`FOR UPDATE`, in
//! firm order) for the batch. A record's lists are serialized when it is
//! queued, on the caller's task (`pending`).
//! Metrics: `scopegate_outbound_records_total{kind, direction, connector}`
//! (committed), `scopegate_outbound_commit_batch_size` and
//! `scopegate_outbound_commit_seconds` (per transaction),
//! `scopegate_outbound_commit_failures_total`.

use super::batch_sql;
use super::pending::{self, PendingRecord};
use super::pg_commit::PgCommitter;
use super::record::{NewSend, GENESIS_HASH};
use super::record_indexer::IndexBacklog;
use super::sqlite_commit::{Committed, SqliteCommitter};
use crate::clock::now_ms;
use crate::keys::LogKeys;
use crate::registry::{Backend, Registry};

use sqlx::{Any, Row, Transaction};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

const MAX_BATCH: usize = 512;
const QUEUE_DEPTH: usize = 8192;

/// Proof that a send record is durable: the data may now leave.
#[derive(Debug, Clone)]
pub struct SendReceipt {
    pub firm_id: String,
    pub seq: i64,
    started: Instant,
    send: PendingRecord,
}

/// Why a record could not be committed; the caller must not send the data.
#[derive(Debug, thiserror::Error, Clone)]
pub enum LogError {
    #[error("the outbound log could not commit the record: {0}")]
    Commit(String),
    #[error("the outbound log writer has stopped")]
    Stopped,
}

type Reply = oneshot::Sender<Result<i64, LogError>>;

/// What the writer's queue carries: a record to commit, or a flush that is
/// answered once everything queued before it is committed.
enum Queued {
    Record(Box<PendingRecord>, Reply),
    /// A result nobody waits for (`record_result_later`): it may wait up to
    /// [`RESULT_HOLD`] to share the next send's transaction.
    Unwaited(Box<PendingRecord>),
    Flush(oneshot::Sender<()>),
}

/// Handle for appending to the outbound log; cheap to clone.
#[derive(Clone)]
pub struct OutboundLog {
    queue: mpsc::Sender<Queued>,
    stats: Arc<CommitStats>,
}

/// Counters kept by the writer: committed transactions and the records in them.
#[derive(Debug, Default)]
struct CommitStats {
    transactions: AtomicU64,
    records: AtomicU64,
}

impl OutboundLog {
    /// Starts the writer task. It ends when every handle is dropped, after
    /// committing what is queued, so a graceful shutdown leaves nothing half-written.
    /// Records are chained under the current key of `keys`.
    pub fn start(registry: Registry, keys: Arc<LogKeys>) -> (Self, tokio::task::JoinHandle<()>) {
        Self::start_with_max_batch(registry, keys, MAX_BATCH)
    }

    /// Like [`OutboundLog::start`], with at most `max_batch` records per
    /// transaction (1 commits every record alone: the benchmarks' baseline).
    pub fn start_with_max_batch(
        registry: Registry,
        keys: Arc<LogKeys>,
        max_batch: usize,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, rx) = mpsc::channel(QUEUE_DEPTH);
        let stats = Arc::new(CommitStats::default());
        let task = tokio::spawn(run_writer(
            registry,
            keys,
            rx,
            max_batch.max(1),
            stats.clone(),
        ));
        (Self { queue, stats }, task)
    }

    /// (transactions, records) committed so far by this writer; their ratio is the mean batch size.
    pub fn committed(&self) -> (u64, u64) {
        (
            self.stats.transactions.load(Ordering::Relaxed),
            self.stats.records.load(Ordering::Relaxed),
        )
    }

    /// Commits a `send` record; returns only once it is durable.
    pub async fn record_send(&self, send: NewSend) -> Result<SendReceipt, LogError> {
        let pending = PendingRecord {
            firm_id: send.firm_id,
            kind: "send",
            grant_id: send.grant_id,
            connector: send.connector,
            direction: send.direction.as_str(),
            method: send.method,
            target: send.target,
            fields: pending::list_text(&send.fields),
            record_ids: pending::list_text(&send.record_ids),
            payload_sha256: crate::secrets::sha256_hex(&send.payload),
            bytes: send.payload.len() as i64,
            send_seq: None,
            status: None,
            latency_us: None,
        };
        // The receipt keeps what the result record repeats; a result has no record ids.
        let send = PendingRecord {
            record_ids: pending::NO_IDS.to_string(),
            ..pending.clone()
        };
        let seq = self.append(pending).await?;
        Ok(SendReceipt {
            firm_id: send.firm_id.clone(),
            seq,
            started: Instant::now(),
            send,
        })
    }

    /// Completes a send with the status the receiver answered and the latency
    /// seen, and waits until the result record is committed.
    pub async fn record_result(&self, receipt: &SendReceipt, status: u16) -> Result<i64, LogError> {
        self.append(Self::result_of(receipt, status)).await
    }

    /// Queues the result of a send without waiting for its commit: the data has
    /// left already, so nothing waits on it. It is committed with the next
    /// send's batch, or on its own after at most [`RESULT_HOLD`] (a flush or a
    /// graceful shutdown commits every queued record); a crash before that
    /// leaves the send without a result, shown as "outcome unknown". A failed
    /// commit is logged by the writer.
    pub async fn record_result_later(
        &self,
        receipt: &SendReceipt,
        status: u16,
    ) -> Result<(), LogError> {
        self.queue
            .send(Queued::Unwaited(Box::new(Self::result_of(receipt, status))))
            .await
            .map_err(|_| LogError::Stopped)
    }

    /// Waits until every record queued before this call is committed (or its
    /// batch has failed): what a reader of this process's own log runs first.
    pub async fn flush(&self) -> Result<(), LogError> {
        let (done, wait) = oneshot::channel();
        self.queue
            .send(Queued::Flush(done))
            .await
            .map_err(|_| LogError::Stopped)?;
        wait.await.map_err(|_| LogError::Stopped)
    }

    fn result_of(receipt: &SendReceipt, status: u16) -> PendingRecord {
        let latency_us = receipt.started.elapsed().as_micros() as i64;
        let mut result = receipt.send.clone();
        result.kind = "result";
        result.record_ids = pending::NO_IDS.to_string();
        result.send_seq = Some(receipt.seq);
        result.status = Some(i64::from(status));
        result.latency_us = Some(latency_us);
        result
    }

    async fn append(&self, record: PendingRecord) -> Result<i64, LogError> {
        let (reply, wait) = oneshot::channel();
        self.queue
            .send(Queued::Record(Box::new(record), reply))
            .await
            .map_err(|_| LogError::Stopped)?;
        wait.await.map_err(|_| LogError::Stopped)?
    }
}

async fn run_writer(
    registry: Registry,
    keys: Arc<LogKeys>,
    mut rx: mpsc::Receiver<Queued>,
    max_batch: usize,
    stats: Arc<CommitStats>,
) {
    let mut queued = Vec::with_capacity(max_batch);
    let mut behind = IndexBacklog::load(&registry).await;
    let mut committer = Committer::new(registry.clone(), keys);
    // Results whose batch failed: nobody waits for them, so they are retried.
    let mut unanswered: Vec<PendingRecord> = Vec::new();
    // Results waiting (at most RESULT_HOLD) to share the next send's transaction.
    let mut held: Vec<PendingRecord> = Vec::new();
    let mut held_until = tokio::time::Instant::now();
    loop {
        // The queue first; index only while no caller waits for a commit.
        // Held results may wait for a step: under steady traffic there is
        // nearly always one held, and the index must not fall behind for it.
        let got = tokio::select! {
            biased;
            got = rx.recv_many(&mut queued, max_batch) => got,
            () = tokio::time::sleep(RETRY_PAUSE), if !unanswered.is_empty() => TIMER,
            () = tokio::time::sleep_until(held_until), if !held.is_empty() => TIMER,
            () = tokio::time::sleep_until(behind.due_at().into()), if !behind.is_empty() && unanswered.is_empty() => {
                // Senders answered by the last commit queue their next record
                // within microseconds; index only after a real pause.
                match tokio::time::timeout(IDLE_GRACE, rx.recv_many(&mut queued, max_batch)).await {
                    Ok(got) => got,
                    Err(_) => {
                        behind.step(&registry).await;
                        continue;
                    }
                }
            }
        };
        if got == 0 {
            unanswered.append(&mut held);
            commit_last_results(&mut committer, unanswered, &stats).await;
            break;
        }
        let mut waited: Vec<PendingRecord> = Vec::new();
        let mut waited_replies: Vec<Option<Reply>> = Vec::new();
        let mut flushes = Vec::new();
        for item in queued.drain(..) {
            match item {
                Queued::Record(record, reply) => {
                    waited.push(*record);
                    waited_replies.push(Some(reply));
                }
                Queued::Unwaited(result) => {
                    if held.is_empty() {
                        held_until = tokio::time::Instant::now() + RESULT_HOLD;
                    }
                    held.push(*result);
                }
                Queued::Flush(done) => flushes.push(done),
            }
        }
        let commit_now =
            got == TIMER || !waited.is_empty() || !flushes.is_empty() || held.len() >= max_batch;
        if !commit_now {
            continue;
        }
        let mut records: Vec<PendingRecord> = std::mem::take(&mut unanswered);
        records.append(&mut held);
        let replies: Vec<Option<Reply>> =
            records.iter().map(|_| None).chain(waited_replies).collect();
        records.append(&mut waited);
        if !records.is_empty() {
            let (records, committed) =
                commit_and_answer(&mut committer, records, replies, &stats).await;
            if committed {
                records
                    .iter()
                    .filter(|r| r.has_record_ids())
                    .for_each(|r| behind.note(&r.firm_id));
            } else {
                unanswered = unwaited_results(records);
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// What the writer's wait yields when one of its timers (a retry, the end of
/// a result's hold) rather than the queue woke it.
const TIMER: usize = usize::MAX;
/// How long a result nobody waits for may wait for a send to share its
/// transaction (and fsync) with, before it is committed on its own.
const RESULT_HOLD: std::time::Duration = std::time::Duration::from_millis(10);
/// How long the queue must stay empty before the writer runs an index step.
/// A step of a few sends writes about a page per index row (the ids are
/// random keys) and took 20-50 ms on a large index. With 1 ms, under steady
/// traffic a step ran in nearly every gap between sends, and each send
/// arriving during one waited for it (BENCHMARKS.md §12). Reports index any
/// backlog first, so a later step delays nothing anyone reads.
const IDLE_GRACE: std::time::Duration = std::time::Duration::from_millis(20);
/// How long the writer waits before retrying results whose batch failed.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);
/// Results kept for retry at most; beyond, the oldest are given up (and logged).
const MAX_UNANSWERED: usize = 50_000;
/// Attempts at the unanswered results when the writer is stopping.
const LAST_ATTEMPTS: usize = 8;

/// The results of a failed batch, kept for the next one: their data has left,
/// so the record of how it went is retried rather than dropped. Sends are not:
/// a send whose commit failed was refused to its caller, and nothing was sent.
fn unwaited_results(records: Vec<PendingRecord>) -> Vec<PendingRecord> {
    let mut results: Vec<PendingRecord> =
        records.into_iter().filter(|r| r.kind == "result").collect();
    if results.len() > MAX_UNANSWERED {
        let dropped = results.len() - MAX_UNANSWERED;
        tracing::error!(
            dropped,
            "outbound log: results given up after failed commits; their sends show outcome unknown"
        );
        results.drain(..dropped);
    }
    results
}

/// On shutdown, a few more tries at the results still unanswered.
async fn commit_last_results(
    committer: &mut Committer,
    mut unanswered: Vec<PendingRecord>,
    stats: &CommitStats,
) {
    for _ in 0..LAST_ATTEMPTS {
        if unanswered.is_empty() {
            return;
        }
        let replies = unanswered.iter().map(|_| None).collect();
        let (records, committed) = commit_and_answer(committer, unanswered, replies, stats).await;
        if committed {
            return;
        }
        unanswered = records;
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    tracing::error!(
        results = unanswered.len(),
        "outbound log stopped with results it could not commit; their sends show outcome unknown"
    );
}

/// Commits one batch and answers each record's waiter with its seq (or the
/// error); gives the records back, and true when the batch was committed.
async fn commit_and_answer(
    committer: &mut Committer,
    records: Vec<PendingRecord>,
    replies: Vec<Option<Reply>>,
    stats: &CommitStats,
) -> (Vec<PendingRecord>, bool) {
    let started = Instant::now();
    let (records, outcome) = committer.commit(records).await;
    let committed = match outcome {
        Ok(seqs) => {
            count_committed(&records, started);
            stats.transactions.fetch_add(1, Ordering::Relaxed);
            stats
                .records
                .fetch_add(seqs.len() as u64, Ordering::Relaxed);
            for (reply, seq) in replies.into_iter().zip(seqs) {
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(seq));
                }
            }
            true
        }
        Err(e) => {
            metrics::counter!("scopegate_outbound_commit_failures_total").increment(1);
            tracing::error!(error = %e, records = records.len(), "outbound log batch failed; no send in it will be sent, its results are retried");
            for reply in replies.into_iter().flatten() {
                let _ = reply.send(Err(LogError::Commit(e.clone())));
            }
            false
        }
    };
    (records, committed)
}

/// Records a committed batch in the metrics: its size, how long the commit
/// took and its records by kind, direction and connector (never by firm).
fn count_committed(records: &[PendingRecord], started: Instant) {
    metrics::histogram!("scopegate_outbound_commit_seconds").record(started.elapsed());
    metrics::histogram!("scopegate_outbound_commit_batch_size").record(records.len() as f64);
    let mut by_label: BTreeMap<(&'static str, &'static str, &str), u64> = BTreeMap::new();
    for r in records {
        *by_label
            .entry((r.kind, r.direction, r.connector.as_str()))
            .or_default() += 1;
    }
    for ((kind, direction, connector), n) in by_label {
        metrics::counter!(
            "scopegate_outbound_records_total",
            "kind" => kind,
            "direction" => direction,
            "connector" => connector.to_string()
        )
        .increment(n);
    }
}

/// Commits the writer's batches: on a SQLite registry file through SQLite's
/// C API (`sqlite_commit`), on PostgreSQL through a connection of the writer's
/// own (`pg_commit`), else (an in-memory SQLite registry) in a transaction of
/// the pool's.
enum Committer {
    Sqlite(SqliteCommitter, Arc<LogKeys>),
    Postgres(Box<PgCommitter>, Arc<LogKeys>),
    Pool(Registry, Arc<LogKeys>),
}

impl Committer {
    fn new(registry: Registry, keys: Arc<LogKeys>) -> Self {
        if let Some(path) = registry.sqlite_file() {
            return Self::Sqlite(SqliteCommitter::new(path.to_path_buf()), keys);
        }
        match PgCommitter::for_registry(&registry) {
            Some(pg) => Self::Postgres(Box::new(pg), keys),
            None => Self::Pool(registry, keys),
        }
    }

    /// Chains and commits one batch; gives the records back with the seq
    /// given to each, in input order, or why none was committed.
    async fn commit(&mut self, records: Vec<PendingRecord>) -> Committed {
        match self {
            Self::Sqlite(sqlite, keys) => sqlite.commit(records, keys.clone()).await,
            Self::Postgres(pg, keys) => {
                let outcome = pg.commit(&records, keys).await;
                (records, outcome)
            }
            Self::Pool(registry, keys) => {
                let outcome = commit_in_transaction(registry, keys, &records)
                    .await
                    .map_err(|e| e.to_string());
                (records, outcome)
            }
        }
    }
}

/// Commits one batch in a sqlx transaction: a fixed handful of statements
/// whatever its size (the records and the new chain heads each go in as one
/// JSON array that the database unpacks).
async fn commit_in_transaction(
    registry: &Registry,
    keys: &LogKeys,
    records: &[PendingRecord],
) -> Result<Vec<i64>, sqlx::Error> {
    let at = now_ms();
    let backend = registry.backend();
    let mut tx = registry.begin_write().await?;
    let firms = pending::firms_of(records);
    let heads = batch_sql::lock_chain_heads(&mut tx, backend, &firms).await?;
    let chained = pending::chain(records, heads, at, keys).ok_or(sqlx::Error::RowNotFound)?;
    batch_sql::insert_records(&mut tx, backend, records, &chained).await?;
    batch_sql::move_chain_heads(&mut tx, backend, &chained.heads).await?;
    tx.commit().await?;
    Ok(chained.links.iter().map(|l| l.seq).collect())
}

pub(super) async fn lock_chain_head(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    firm_id: &str,
) -> Result<(i64, String), sqlx::Error> {
    sqlx::query("INSERT INTO outbound_chain_heads (firm_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (firm_id) DO NOTHING")
        .bind(firm_id).bind(GENESIS_HASH)
        .execute(&mut **tx).await?;
    let sql = match backend {
        Backend::Postgres => {
            "SELECT seq, hash FROM outbound_chain_heads WHERE firm_id = $1 FOR UPDATE"
        }
        Backend::Sqlite => "SELECT seq, hash FROM outbound_chain_heads WHERE firm_id = $1",
    };
    let row = sqlx::query(sql).bind(firm_id).fetch_one(&mut **tx).await?;
    Ok((row.get("seq"), row.get("hash")))
}
