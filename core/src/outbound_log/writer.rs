//! The group-committing writer. Callers hand records to one task per gateway
//! process; it takes whatever has queued up (up to `MAX_BATCH`), chains the
//! records per firm and commits them in one transaction, so many concurrent
//! senders share one fsync; the transaction is a fixed handful of statements
//! whatever the batch's size (`batch_sql`). Across processes sharing PostgreSQL, the chain head
//! row of each firm is locked (`FOR UPDATE`, in firm order) for the batch.
//! Metrics: `scopegate_outbound_records_total{kind, direction, connector}`
//! (committed), `scopegate_outbound_commit_batch_size` and
//! `scopegate_outbound_commit_seconds` (per transaction),
//! `scopegate_outbound_commit_failures_total`.

use super::batch_sql;
use super::record::{LogRecord, NewSend, GENESIS_HASH};
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

#[derive(Debug, Clone)]
struct PendingRecord {
    firm_id: String,
    kind: &'static str,
    grant_id: String,
    connector: String,
    direction: &'static str,
    method: String,
    target: String,
    fields: Vec<String>,
    record_ids: Vec<String>,
    payload_sha256: String,
    bytes: i64,
    send_seq: Option<i64>,
    status: Option<i64>,
    latency_us: Option<i64>,
}

type Reply = oneshot::Sender<Result<i64, LogError>>;

/// Handle for appending to the outbound log; cheap to clone.
#[derive(Clone)]
pub struct OutboundLog {
    queue: mpsc::Sender<(PendingRecord, Reply)>,
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
            fields: send.fields,
            record_ids: send.record_ids,
            payload_sha256: crate::secrets::sha256_hex(&send.payload),
            bytes: send.payload.len() as i64,
            send_seq: None,
            status: None,
            latency_us: None,
        };
        let seq = self.append(pending.clone()).await?;
        Ok(SendReceipt {
            firm_id: pending.firm_id.clone(),
            seq,
            started: Instant::now(),
            send: pending,
        })
    }

    /// Completes a send with the status the receiver answered and the latency seen.
    pub async fn record_result(&self, receipt: &SendReceipt, status: u16) -> Result<i64, LogError> {
        let latency_us = receipt.started.elapsed().as_micros() as i64;
        let mut result = receipt.send.clone();
        result.kind = "result";
        result.send_seq = Some(receipt.seq);
        result.status = Some(i64::from(status));
        result.latency_us = Some(latency_us);
        self.append(result).await
    }

    async fn append(&self, record: PendingRecord) -> Result<i64, LogError> {
        let (reply, wait) = oneshot::channel();
        self.queue
            .send((record, reply))
            .await
            .map_err(|_| LogError::Stopped)?;
        wait.await.map_err(|_| LogError::Stopped)?
    }
}

async fn run_writer(
    registry: Registry,
    keys: Arc<LogKeys>,
    mut rx: mpsc::Receiver<(PendingRecord, Reply)>,
    max_batch: usize,
    stats: Arc<CommitStats>,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let records: Vec<&PendingRecord> = batch.iter().map(|(r, _)| r).collect();
        let started = Instant::now();
        match commit_batch(&registry, &keys, &records).await {
            Ok(seqs) => {
                count_committed(&records, started);
                stats.transactions.fetch_add(1, Ordering::Relaxed);
                stats
                    .records
                    .fetch_add(seqs.len() as u64, Ordering::Relaxed);
                for ((_, reply), seq) in batch.drain(..).zip(seqs) {
                    let _ = reply.send(Ok(seq));
                }
            }
            Err(e) => {
                metrics::counter!("scopegate_outbound_commit_failures_total").increment(1);
                tracing::error!(error = %e, records = batch.len(), "outbound log batch failed; nothing in it will be sent");
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(LogError::Commit(e.to_string())));
                }
            }
        }
    }
}

/// Records a committed batch in the metrics: its size, how long the commit
/// took and its records by kind, direction and connector (never by firm).
fn count_committed(records: &[&PendingRecord], started: Instant) {
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

/// Commits one batch; returns the seq given to each record, in input order.
/// Whatever the batch's size, the transaction runs a fixed handful of
/// statements: the records, their record-id rows and the new chain heads each
/// go in as one JSON array that the database unpacks.
async fn commit_batch(
    registry: &Registry,
    keys: &LogKeys,
    records: &[&PendingRecord],
) -> Result<Vec<i64>, sqlx::Error> {
    let mut by_firm: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        by_firm.entry(r.firm_id.as_str()).or_default().push(i);
    }
    let mut seqs = vec![0; records.len()];
    let at = now_ms();
    let backend = registry.backend();
    let mut tx = registry.begin_write().await?;
    let firms: Vec<&str> = by_firm.keys().copied().collect();
    let mut heads = batch_sql::lock_chain_heads(&mut tx, backend, &firms).await?;
    let mut sealed = Vec::with_capacity(records.len());
    let mut new_heads = Vec::with_capacity(firms.len());
    for (firm_id, indexes) in by_firm {
        let (mut seq, mut prev_hash) = heads.remove(firm_id).ok_or(sqlx::Error::RowNotFound)?;
        for i in indexes {
            seq += 1;
            let record = to_record(records[i], seq, at, prev_hash, keys);
            seqs[i] = seq;
            prev_hash = record.hash.clone();
            sealed.push(record);
        }
        new_heads.push((firm_id, seq, prev_hash));
    }
    batch_sql::insert_records_and_index(&mut tx, backend, &sealed).await?;
    batch_sql::move_chain_heads(&mut tx, backend, &new_heads).await?;
    tx.commit().await?;
    Ok(seqs)
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

fn to_record(p: &PendingRecord, seq: i64, at: i64, prev_hash: String, keys: &LogKeys) -> LogRecord {
    let mut record = LogRecord {
        firm_id: p.firm_id.clone(),
        seq,
        kind: p.kind.to_string(),
        at,
        grant_id: p.grant_id.clone(),
        connector: p.connector.clone(),
        direction: p.direction.to_string(),
        method: p.method.clone(),
        target: p.target.clone(),
        fields: p.fields.clone(),
        record_ids: p.record_ids.clone(),
        payload_sha256: p.payload_sha256.clone(),
        bytes: p.bytes,
        send_seq: p.send_seq,
        status: p.status,
        latency_us: p.latency_us,
        prev_hash,
        hash: String::new(),
        mac_key: String::new(),
    };
    record.seal(keys.current());
    record
}
