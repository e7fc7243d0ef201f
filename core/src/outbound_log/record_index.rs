//! The record-id index of the outbound log: for each send, one row per firm
//! record it carried (`outbound_record_ids`), added after the send's commit by
//! `record_indexer`. It answers "which sends carried these records" by index,
//! so the privacy office's reports stay fast over millions of records; every
//! lookup first indexes the firm's sends not yet indexed, so none is missed.

use crate::registry::{Registry, StoreResult};
use sqlx::Row;

/// Ids per lookup statement.
const IDS_PER_LOOKUP: usize = 500;

/// Every (record id, send seq) of `firm_id` whose record id is in `record_ids`.
pub async fn sends_carrying(
    registry: &Registry,
    firm_id: &str,
    record_ids: &[String],
) -> StoreResult<Vec<(String, i64)>> {
    super::record_indexer::catch_up(registry, firm_id).await?;
    let mut found = Vec::new();
    for chunk in record_ids.chunks(IDS_PER_LOOKUP) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT record_id, seq FROM outbound_record_ids WHERE firm_id = $1 AND record_id IN ({})",
            marks.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(firm_id);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        for row in query.fetch_all(registry.pool()).await? {
            found.push((row.get("record_id"), row.get("seq")));
        }
    }
    Ok(found)
}

/// What the reports need of one send record (not its record-id list).
#[derive(Debug, Clone)]
pub struct SendSummary {
    pub seq: i64,
    pub at: i64,
    pub grant_id: String,
    pub connector: String,
    pub direction: String,
    pub fields: Vec<String>,
}

fn summary(row: &sqlx::any::AnyRow) -> SendSummary {
    SendSummary {
        seq: row.get("seq"),
        at: row.get("at"),
        grant_id: row.get("grant_id"),
        connector: row.get("connector"),
        direction: row.get("direction"),
        fields: serde_json::from_str(&row.get::<String, _>("fields")).unwrap_or_default(),
    }
}

/// The send records `seqs` of `firm_id`, summarised.
pub async fn send_summaries(
    registry: &Registry,
    firm_id: &str,
    seqs: &[i64],
) -> StoreResult<Vec<SendSummary>> {
    let mut out = Vec::with_capacity(seqs.len());
    for chunk in seqs.chunks(IDS_PER_LOOKUP) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT seq, at, grant_id, connector, direction, fields FROM outbound_log WHERE firm_id = $1 AND kind = 'send' AND seq IN ({})",
            marks.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(firm_id);
        for seq in chunk {
            query = query.bind(*seq);
        }
        out.extend(query.fetch_all(registry.pool()).await?.iter().map(summary));
    }
    Ok(out)
}

/// The sends of one grant of `firm_id` in `[since, until)`, with the record
/// ids each carried, oldest first.
pub async fn sends_of_grant(
    registry: &Registry,
    firm_id: &str,
    grant_id: &str,
    since: i64,
    until: i64,
) -> StoreResult<Vec<(SendSummary, Vec<String>)>> {
    let rows = sqlx::query("SELECT seq, at, grant_id, connector, direction, fields, record_ids FROM outbound_log WHERE firm_id = $1 AND grant_id = $2 AND kind = 'send' AND at >= $3 AND at < $4 ORDER BY seq")
        .bind(firm_id)
        .bind(grant_id)
        .bind(since)
        .bind(until)
        .fetch_all(registry.pool())
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let ids: Vec<String> =
                serde_json::from_str(&row.get::<String, _>("record_ids")).unwrap_or_default();
            (summary(row), ids)
        })
        .collect())
}
