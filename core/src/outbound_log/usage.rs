//! What a firm's outbound log says about use, per grant and per connector:
//! when a grant last moved data (for flagging unused grants) and how many
//! distinct records a connector received per day (the sharing chart). Every
//! query names one firm and runs on the log's `(firm_id, grant_id, at)` and
//! `(firm_id, connector, at)` indexes (the chart first brings the record-id
//! index up to the log's head).

use crate::registry::{Registry, StoreResult};
use sqlx::Row;

/// A day, in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The time of the newest record of `grant_id` in `firm_id`'s log, if any.
pub async fn last_record_at(
    registry: &Registry,
    firm_id: &str,
    grant_id: &str,
) -> StoreResult<Option<i64>> {
    let row = sqlx::query(
        "SELECT MAX(at) AS last FROM outbound_log WHERE firm_id = $1 AND grant_id = $2",
    )
    .bind(firm_id)
    .bind(grant_id)
    .fetch_one(registry.pool())
    .await?;
    Ok(row.try_get::<Option<i64>, _>("last").unwrap_or(None))
}

/// Distinct records `connector` received from `firm_id` on each of the
/// `days` UTC days ending with the day of `now` (oldest first; each entry is
/// the day's start in Unix ms and its count).
pub async fn records_per_day(
    registry: &Registry,
    firm_id: &str,
    connector: &str,
    days: i64,
    now: i64,
) -> StoreResult<Vec<(i64, i64)>> {
    super::record_indexer::catch_up(registry, firm_id).await?;
    let first_day = now.div_euclid(DAY_MS) - (days - 1);
    let rows = sqlx::query(
        "SELECT l.at / 86400000 AS day, COUNT(DISTINCT r.record_id) AS records \
         FROM outbound_log l JOIN outbound_record_ids r ON r.firm_id = l.firm_id AND r.seq = l.seq \
         WHERE l.firm_id = $1 AND l.connector = $2 AND l.kind = 'send' AND l.at >= $3 \
         GROUP BY l.at / 86400000",
    )
    .bind(firm_id)
    .bind(connector)
    .bind(first_day * DAY_MS)
    .fetch_all(registry.pool())
    .await?;
    let mut out: Vec<(i64, i64)> = (0..days).map(|i| ((first_day + i) * DAY_MS, 0)).collect();
    for row in rows {
        let day: i64 = row.get("day");
        let records: i64 = row.get("records");
        if let Some(slot) = usize::try_from(day - first_day)
            .ok()
            .and_then(|i| out.get_mut(i))
        {
            slot.1 = records;
        }
    }
    Ok(out)
}
