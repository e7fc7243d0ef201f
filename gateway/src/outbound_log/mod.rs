//! The outbound log: a record of every movement of firm data through the
//! gateway, committed *before* the data leaves and completed afterwards with
//! status and latency. The log is append-only: a send and its result are two
//! records, and every record carries the SHA-256 of its predecessor in the
//! same firm's chain, so a deleted, edited or reordered record is detectable.

mod record;
mod verify;
mod writer;

pub use record::{Direction, LogRecord, NewSend, GENESIS_HASH};
pub use verify::{verify_all, verify_firm, ChainFault, VerifyReport};
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

/// A page of a firm's records, newest first, with optional filters (settings viewer).
pub async fn page(
    registry: &Registry,
    firm_id: &str,
    connector: Option<&str>,
    before_seq: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<LogRecord>> {
    let sql = format!(
        "SELECT {} FROM outbound_log WHERE firm_id = $1 AND ($2 = '' OR connector = $2) AND seq < $3 ORDER BY seq DESC LIMIT $4",
        record::COLUMNS
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(firm_id)
        .bind(connector.unwrap_or(""))
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(limit.clamp(1, 500))
        .fetch_all(registry.pool())
        .await?;
    Ok(rows.iter().map(LogRecord::from_row).collect())
}
