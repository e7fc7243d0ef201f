//! The rows behind a connector's records and parked consents (see
//! `scopegate_contract::GrantRecords`). Every query names the grant, so a
//! connector's records of one firm are never read with another's.

use super::{is_unique_violation, Backend, Registry, StoreResult};
use crate::clock::now_ms;
use sqlx::Row;

/// A stored record: key, JSON text, version.
pub type RecordRow = (String, String, i64);

/// One change of an all-or-nothing write.
pub enum RecordChange {
    Put(String, String),
    Swap(String, String, Option<i64>),
    Delete(String),
}

/// The (key, value) pairs of the puts that open `changes`, up to the first
/// change of another kind or the first key seen twice (one statement may
/// not upsert a row twice).
fn distinct_puts(changes: &[RecordChange]) -> Vec<(&str, &str)> {
    let mut keys = std::collections::HashSet::new();
    changes
        .iter()
        .map_while(|change| match change {
            RecordChange::Put(key, value) if keys.insert(key.as_str()) => {
                Some((key.as_str(), value.as_str()))
            }
            _ => None,
        })
        .collect()
}

/// Upserts `$5`, a JSON array of `[key, value]`, for grant `$1` of firm `$2`
/// and connector `$3` at `$4`, as the single put does.
fn put_many_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "INSERT INTO connector_records (grant_id, record_key, firm_id, connector, value, version, updated_at) SELECT $1, json_extract(p.value, '$[0]'), $2, $3, json_extract(p.value, '$[1]'), 1, $4 FROM json_each($5) AS p WHERE true ON CONFLICT (grant_id, record_key) DO UPDATE SET value = excluded.value, version = connector_records.version + 1, updated_at = excluded.updated_at",
        Backend::Postgres => "INSERT INTO connector_records (grant_id, record_key, firm_id, connector, value, version, updated_at) SELECT $1, p->>0, $2, $3, p->>1, 1, $4 FROM jsonb_array_elements($5::jsonb) AS p ON CONFLICT (grant_id, record_key) DO UPDATE SET value = excluded.value, version = connector_records.version + 1, updated_at = excluded.updated_at",
    }
}

/// A parked consent as stored.
pub struct ParkedRow {
    pub grant_id: String,
    pub firm_id: String,
    pub principal: String,
    pub payload_sealed: String,
}

fn row(r: &sqlx::any::AnyRow) -> RecordRow {
    (r.get("record_key"), r.get("value"), r.get("version"))
}

impl Registry {
    pub async fn record(&self, grant_id: &str, key: &str) -> StoreResult<Option<RecordRow>> {
        Ok(sqlx::query("SELECT record_key, value, version FROM connector_records WHERE grant_id = $1 AND record_key = $2")
            .bind(grant_id)
            .bind(key)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(row))
    }

    pub async fn records_in(&self, grant_id: &str, keys: &[String]) -> StoreResult<Vec<RecordRow>> {
        let mut found = Vec::new();
        for chunk in keys.chunks(400) {
            let placeholders = (0..chunk.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("SELECT record_key, value, version FROM connector_records WHERE grant_id = $1 AND record_key IN ({placeholders})");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(grant_id);
            for key in chunk {
                query = query.bind(key);
            }
            found.extend(query.fetch_all(self.pool()).await?.iter().map(row));
        }
        Ok(found)
    }

    /// Records whose key starts with `prefix` (compared as a key range, so
    /// `%` and `_` in keys mean nothing), after `after`, in key order.
    pub async fn records_with_prefix(
        &self,
        grant_id: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<RecordRow>> {
        let start = after.filter(|a| *a >= prefix).unwrap_or(prefix);
        // Bounded above too (a plain range the index serves), so the rows
        // after the prefix's range are never read.
        let end = prefix_end(prefix);
        let sql = match end {
            Some(_) => "SELECT record_key, value, version FROM connector_records WHERE grant_id = $1 AND record_key >= $2 AND record_key <> $3 AND record_key < $5 ORDER BY record_key LIMIT $4",
            None => "SELECT record_key, value, version FROM connector_records WHERE grant_id = $1 AND record_key >= $2 AND record_key <> $3 ORDER BY record_key LIMIT $4",
        };
        let mut query = sqlx::query(sql)
            .bind(grant_id)
            .bind(start)
            .bind(after.unwrap_or(""))
            .bind(limit.min(10_000) as i64);
        if let Some(end) = end {
            query = query.bind(end);
        }
        let rows = query.fetch_all(self.pool()).await?;
        Ok(rows
            .iter()
            .map(row)
            .take_while(|(key, _, _)| key.starts_with(prefix))
            .collect())
    }

    /// Applies every change in one transaction; false (rolled back) when a swap misses.
    pub async fn write_records(
        &self,
        grant_id: &str,
        firm_id: &str,
        connector: &str,
        changes: &[RecordChange],
    ) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let mut at = 0;
        while at < changes.len() {
            let puts = distinct_puts(&changes[at..]);
            if puts.len() > 1 {
                // A run of puts goes in as one statement, not one each.
                sqlx::query(put_many_sql(self.backend()))
                    .bind(grant_id)
                    .bind(firm_id)
                    .bind(connector)
                    .bind(now)
                    .bind(serde_json::to_string(&puts).expect("plain strings serialize"))
                    .execute(&mut *tx)
                    .await?;
                at += puts.len();
                continue;
            }
            let change = &changes[at];
            at += 1;
            let applied = match change {
                RecordChange::Put(key, value) => {
                    sqlx::query("INSERT INTO connector_records (grant_id, record_key, firm_id, connector, value, version, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6) ON CONFLICT (grant_id, record_key) DO UPDATE SET value = excluded.value, version = connector_records.version + 1, updated_at = excluded.updated_at")
                        .bind(grant_id).bind(key).bind(firm_id).bind(connector).bind(value).bind(now)
                        .execute(&mut *tx).await?;
                    true
                }
                RecordChange::Swap(key, value, None) => {
                    match sqlx::query("INSERT INTO connector_records (grant_id, record_key, firm_id, connector, value, version, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6)")
                        .bind(grant_id).bind(key).bind(firm_id).bind(connector).bind(value).bind(now)
                        .execute(&mut *tx).await
                    {
                        Ok(_) => true,
                        Err(e) if is_unique_violation(&e) => false,
                        Err(e) => return Err(e.into()),
                    }
                }
                RecordChange::Swap(key, value, Some(expected)) => {
                    sqlx::query("UPDATE connector_records SET value = $1, version = version + 1, updated_at = $2 WHERE grant_id = $3 AND record_key = $4 AND version = $5")
                        .bind(value).bind(now).bind(grant_id).bind(key).bind(*expected)
                        .execute(&mut *tx).await?
                        .rows_affected() == 1
                }
                RecordChange::Delete(key) => {
                    sqlx::query("DELETE FROM connector_records WHERE grant_id = $1 AND record_key = $2")
                        .bind(grant_id).bind(key)
                        .execute(&mut *tx).await?;
                    true
                }
            };
            if !applied {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn park_consent(
        &self,
        state_sha256: &str,
        parked: &ParkedRow,
        connector: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM connector_parked WHERE expires_at < $1")
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        sqlx::query("INSERT INTO connector_parked (state_sha256, grant_id, firm_id, connector, principal, payload_sealed, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(state_sha256).bind(&parked.grant_id).bind(&parked.firm_id).bind(connector)
            .bind(&parked.principal).bind(&parked.payload_sealed).bind(expires_at)
            .execute(self.pool()).await?;
        Ok(())
    }

    /// Removes and returns a parked consent of `connector` that has not expired.
    pub async fn take_parked(
        &self,
        state_sha256: &str,
        connector: &str,
    ) -> StoreResult<Option<ParkedRow>> {
        let row = sqlx::query("DELETE FROM connector_parked WHERE state_sha256 = $1 AND connector = $2 RETURNING grant_id, firm_id, principal, payload_sealed, expires_at")
            .bind(state_sha256)
            .bind(connector)
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .filter(|r| r.get::<i64, _>("expires_at") >= now_ms())
            .map(|r| ParkedRow {
                grant_id: r.get("grant_id"),
                firm_id: r.get("firm_id"),
                principal: r.get("principal"),
                payload_sealed: r.get("payload_sealed"),
            }))
    }
}

/// The least string greater than every string that starts with `prefix`
/// (keys compare in code point order, as UTF-8 bytes do), or `None` when
/// there is none (an empty prefix, or one of only `char::MAX`).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod prefix_end_tests {
    use super::prefix_end;

    #[test]
    fn the_end_of_a_prefix_range_follows_every_key_in_it_and_nothing_before() {
        assert_eq!(prefix_end("connection/").as_deref(), Some("connection0"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("ab\u{10FFFF}").as_deref(), Some("ac"));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        let end = prefix_end("event/u1/").unwrap();
        for key in ["event/u1/", "event/u1/x", "event/u1/\u{10FFFF}\u{10FFFF}"] {
            assert!(key < end.as_str(), "{key}");
        }
        assert!("event/u10" >= end.as_str() && "event/u2" > end.as_str());
    }
}
