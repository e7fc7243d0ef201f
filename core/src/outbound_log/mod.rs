//! The outbound log: a record of every movement of firm data through the
//! gateway, committed *before* the data leaves and completed afterwards with
//! status and latency. The log is append-only: a send and its result are two
//! records, and every record carries the SHA-256 of its predecessor in the
//! same firm's chain, so a deleted, edited or reordered record is detectable.
//! The chain is keyed (HMAC-SHA256 under a key derived from the master key),
//! so only the gateway can extend or rewrite it, and signed checkpoints of the
//! chain heads, kept outside the registry, pin what existed at a time.

mod batch_sql;
pub mod checkpoint;
mod pending;
mod pg_commit;
mod record;
pub mod record_index;
pub mod record_indexer;
mod rekey;
mod sqlite_checkpoints;
mod sqlite_commit;
mod sqlite_read;
mod stored;
pub mod tombstone;
pub mod usage;
mod verify;
mod writer;

pub use checkpoint::{Checkpoint, Checkpoints};
pub use record::{Direction, HashProblem, LogRecord, NewSend, GENESIS_HASH};
pub use rekey::{rekey_at_upgrade, rekey_unkeyed, RekeyReport};
pub use verify::{verify_all, verify_firm, verify_firm_against, ChainFault, VerifyReport};
pub use writer::{LogError, OutboundLog, SendReceipt};

use crate::registry::{Registry, StoreResult};
use futures::TryStreamExt;

/// Streams a firm's records (optionally only those at or after `since_ms`) to `sink`.
pub async fn export(
    registry: &Registry,
    firm_id: &str,
    since_ms: Option<i64>,
    mut sink: impl FnMut(&LogRecord) -> std::io::Result<()>,
) -> StoreResult<u64> {
    registry.firm(firm_id).await?;
    let sql = format!(
        "SELECT {} FROM outbound_log WHERE firm_id = $1 AND at >= $2 ORDER BY seq",
        record::COLUMNS
    );
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(firm_id)
        .bind(since_ms.unwrap_or(i64::MIN))
        .fetch(registry.pool());
    let mut count = 0;
    while let Some(row) = rows.try_next().await? {
        let rec = LogRecord::from_row(&row);
        sink(&rec).map_err(|e| {
            crate::registry::StoreError::Invalid(format!("cannot write the export: {e}"))
        })?;
        count += 1;
    }
    Ok(count)
}

/// The seq of a firm's newest record (0 when it has none): where an export
/// read page by page with [`export_page`] stops, so it is the log as it stood
/// when the export began.
pub async fn head_seq(registry: &Registry, firm_id: &str) -> StoreResult<i64> {
    registry.firm(firm_id).await?;
    let row =
        sqlx::query("SELECT COALESCE(MAX(seq), 0) AS head FROM outbound_log WHERE firm_id = $1")
            .bind(firm_id)
            .fetch_one(registry.pool())
            .await?;
    Ok(sqlx::Row::get::<i64, _>(&row, "head"))
}

/// One page of a firm's records in chain order: those with
/// `after_seq < seq <= upto_seq`, at most `limit` of them (keyset paging on
/// the primary key). Each page is its own short query, so an export read this
/// way holds one page in memory and no read transaction across the export.
pub async fn export_page(
    registry: &Registry,
    firm_id: &str,
    after_seq: i64,
    upto_seq: i64,
    limit: i64,
) -> StoreResult<Vec<LogRecord>> {
    let sql = format!(
        "SELECT {} FROM outbound_log WHERE firm_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4",
        record::COLUMNS
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(firm_id)
        .bind(after_seq)
        .bind(upto_seq)
        .bind(limit.max(1))
        .fetch_all(registry.pool())
        .await?;
    Ok(rows.iter().map(LogRecord::from_row).collect())
}

/// Which records the settings viewer asks for. Every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct PageFilter {
    pub connector: Option<String>,
    /// At or after this time (Unix ms).
    pub from_ms: Option<i64>,
    /// Before this time (Unix ms).
    pub to_ms: Option<i64>,
    /// Only results whose HTTP status lies in this inclusive range.
    pub status: Option<(i64, i64)>,
    /// Only records older than this sequence number (the previous page's last `seq`).
    pub before_seq: Option<i64>,
}

/// One call as the settings viewer shows it: a send with its result (`None`
/// when no result was recorded: the outcome is unknown).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Call {
    pub seq: i64,
    pub at: i64,
    pub grant_id: String,
    pub connector: String,
    pub direction: String,
    pub method: String,
    pub target: String,
    pub fields: Vec<String>,
    pub record_ids: Vec<String>,
    pub bytes: i64,
    pub result: Option<CallResult>,
}

/// The result record of a call.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallResult {
    pub seq: i64,
    pub at: i64,
    pub status: i64,
    pub latency_us: i64,
}

/// A page of a firm's calls (sends, each with its result), newest first, with
/// optional filters (settings viewer); a status filter keeps the calls whose
/// result has that status.
pub async fn calls_page(
    registry: &Registry,
    firm_id: &str,
    filter: &PageFilter,
    limit: i64,
) -> StoreResult<Vec<Call>> {
    let sql = "SELECT s.seq, s.at, s.grant_id, s.connector, s.direction, s.method, s.target, s.fields, s.record_ids, s.bytes, \
         r.seq AS result_seq, r.at AS result_at, r.status AS result_status, r.latency_us AS result_latency_us \
         FROM outbound_log s LEFT JOIN outbound_log r ON r.firm_id = s.firm_id AND r.kind = 'result' AND r.send_seq = s.seq \
         WHERE s.firm_id = $1 AND s.kind = 'send' AND ($2 = '' OR s.connector = $2) AND s.at >= $3 AND s.at < $4 AND s.seq < $5 \
         AND ($6 = 0 OR (r.status >= $7 AND r.status <= $8)) ORDER BY s.seq DESC LIMIT $9";
    let (status_on, lo, hi) = match filter.status {
        Some((lo, hi)) => (1i64, lo, hi),
        None => (0, 0, 0),
    };
    let rows = sqlx::query(sql)
        .bind(firm_id)
        .bind(filter.connector.as_deref().unwrap_or(""))
        .bind(filter.from_ms.unwrap_or(i64::MIN))
        .bind(filter.to_ms.unwrap_or(i64::MAX))
        .bind(filter.before_seq.unwrap_or(i64::MAX))
        .bind(status_on)
        .bind(lo)
        .bind(hi)
        .bind(limit.clamp(1, 500))
        .fetch_all(registry.pool())
        .await?;
    Ok(rows.iter().map(call_from_row).collect())
}

fn call_from_row(row: &sqlx::any::AnyRow) -> Call {
    use sqlx::Row;
    let list = |name: &str| -> Vec<String> {
        serde_json::from_str(&row.get::<String, _>(name)).unwrap_or_default()
    };
    let result = match (
        row.get::<Option<i64>, _>("result_seq"),
        row.get::<Option<i64>, _>("result_at"),
    ) {
        (Some(seq), Some(at)) => Some(CallResult {
            seq,
            at,
            status: row.get::<Option<i64>, _>("result_status").unwrap_or(0),
            latency_us: row.get::<Option<i64>, _>("result_latency_us").unwrap_or(0),
        }),
        _ => None,
    };
    Call {
        seq: row.get("seq"),
        at: row.get("at"),
        grant_id: row.get("grant_id"),
        connector: row.get("connector"),
        direction: row.get("direction"),
        method: row.get("method"),
        target: row.get("target"),
        fields: list("fields"),
        record_ids: list("record_ids"),
        bytes: row.get("bytes"),
        result,
    }
}
