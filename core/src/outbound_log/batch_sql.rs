//! The group-commit writer's statements, one per step of a batch whatever its
//! size: the batch's chain heads created and locked, its records inserted and
//! the heads moved on. Each takes its rows as one JSON array parameter that the
//! database unpacks (`json_each` on SQLite, `jsonb_array_elements` on
//! PostgreSQL), so a batch of hundreds of records is a handful of statements,
//! each prepared once per connection. And the record-id index rows the indexer
//! adds later, as fixed-size multi-row inserts of bound values.

use super::pending::{ChainedBatch, PendingRecord};
use super::record::GENESIS_HASH;
use super::stored::StoredRecord;
use crate::registry::Backend;
use serde::ser::{SerializeTuple, Serializer};
use serde::Serialize;
use sqlx::{Any, Row, Transaction};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

/// Creates the chain heads of firms that have none yet (`$1`: JSON array of firm ids).
fn create_heads(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "INSERT INTO outbound_chain_heads (firm_id, seq, hash) SELECT value, 0, $2 FROM json_each($1) WHERE true ON CONFLICT (firm_id) DO NOTHING",
        Backend::Postgres => "INSERT INTO outbound_chain_heads (firm_id, seq, hash) SELECT f, 0, $2 FROM jsonb_array_elements_text($1::jsonb) AS f ON CONFLICT (firm_id) DO NOTHING",
    }
}

/// Reads (and on PostgreSQL locks, in byte order of firm id) the chain heads of `$1`'s firms.
fn lock_heads(backend: Backend) -> &'static str {
    match backend {
        // The batch holds SQLite's write lock (BEGIN IMMEDIATE) already.
        Backend::Sqlite => "SELECT firm_id, seq, hash FROM outbound_chain_heads WHERE firm_id IN (SELECT value FROM json_each($1))",
        Backend::Postgres => "SELECT firm_id, seq, hash FROM outbound_chain_heads WHERE firm_id IN (SELECT jsonb_array_elements_text($1::jsonb)) ORDER BY firm_id COLLATE \"C\" FOR UPDATE",
    }
}

/// Inserts the records of `$1`, a JSON array of [`RecordRow`]s.
fn insert_records_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "INSERT INTO outbound_log (firm_id, seq, kind, at, grant_id, connector, direction, method, target, fields, record_ids, payload_sha256, bytes, send_seq, status, latency_us, prev_hash, hash, mac_key) SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'), json_extract(value, '$[6]'), json_extract(value, '$[7]'), json_extract(value, '$[8]'), json_extract(value, '$[9]'), json_extract(value, '$[10]'), json_extract(value, '$[11]'), json_extract(value, '$[12]'), json_extract(value, '$[13]'), json_extract(value, '$[14]'), json_extract(value, '$[15]'), json_extract(value, '$[16]'), json_extract(value, '$[17]'), json_extract(value, '$[18]') FROM json_each($1)",
        Backend::Postgres => "INSERT INTO outbound_log (firm_id, seq, kind, at, grant_id, connector, direction, method, target, fields, record_ids, payload_sha256, bytes, send_seq, status, latency_us, prev_hash, hash, mac_key) SELECT r->>0, (r->>1)::bigint, r->>2, (r->>3)::bigint, r->>4, r->>5, r->>6, r->>7, r->>8, r->>9, r->>10, r->>11, (r->>12)::bigint, (r->>13)::bigint, (r->>14)::bigint, (r->>15)::bigint, r->>16, r->>17, r->>18 FROM jsonb_array_elements($1::jsonb) AS r",
    }
}

/// Moves the chain heads to `$1`, a JSON array of `[firm_id, seq, hash]`.
fn update_heads(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "UPDATE outbound_chain_heads SET seq = json_extract(h.value, '$[1]'), hash = json_extract(h.value, '$[2]') FROM json_each($1) AS h WHERE outbound_chain_heads.firm_id = json_extract(h.value, '$[0]')",
        Backend::Postgres => "UPDATE outbound_chain_heads AS c SET seq = (h->>1)::bigint, hash = h->>2 FROM jsonb_array_elements($1::jsonb) AS h WHERE c.firm_id = h->>0",
    }
}

fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("serializing plain values cannot fail")
}

/// Creates missing chain heads and locks those of `firms` (sorted, distinct)
/// for the transaction; returns each firm's (seq, hash).
pub(super) async fn lock_chain_heads(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    firms: &[&str],
) -> Result<BTreeMap<String, (i64, String)>, sqlx::Error> {
    let firms = json(&firms);
    sqlx::query(create_heads(backend))
        .bind(&firms)
        .bind(GENESIS_HASH)
        .execute(&mut **tx)
        .await?;
    let rows = sqlx::query(lock_heads(backend))
        .bind(&firms)
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get("firm_id"), (row.get("seq"), row.get("hash"))))
        .collect())
}

/// Inserts a chained batch's records (their record-id rows come later: `record_indexer`).
pub(super) async fn insert_records(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    records: &[PendingRecord],
    chained: &ChainedBatch,
) -> Result<(), sqlx::Error> {
    if records.is_empty() {
        return Ok(());
    }
    let rows: Vec<RecordRow<'_>> = records
        .iter()
        .enumerate()
        .map(|(i, r)| RecordRow(chained.row(r, i)))
        .collect();
    sqlx::query(insert_records_sql(backend))
        .bind(json(&rows))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Record-id rows per index insert: every statement has exactly this many
/// (the last one padded with repeats of its final row, which the conflict
/// clause skips), so each connection prepares one statement for all of them.
const INDEX_ROWS_PER_STATEMENT: usize = 128;

/// `INSERT ... VALUES (...), ... ON CONFLICT DO NOTHING` with
/// [`INDEX_ROWS_PER_STATEMENT`] rows of (firm_id, seq, record_id). Plain bound
/// values, not a JSON array: SQLite would parse a send's id list again for
/// every id it unpacks, which was the index's largest cost. SQLite gets
/// anonymous `?` placeholders: numbered ones make its driver look up every
/// parameter's name, a cost that grows with the square of their number.
fn insert_index_rows_sql(backend: Backend) -> &'static str {
    static SQLITE: LazyLock<String> = LazyLock::new(|| insert_index_rows_with(|_| "?".into()));
    static POSTGRES: LazyLock<String> =
        LazyLock::new(|| insert_index_rows_with(|n| format!("${n}")));
    match backend {
        Backend::Sqlite => SQLITE.as_str(),
        Backend::Postgres => POSTGRES.as_str(),
    }
}

fn insert_index_rows_with(placeholder: impl Fn(usize) -> String) -> String {
    let rows: Vec<String> = (0..INDEX_ROWS_PER_STATEMENT)
        .map(|i| {
            let [a, b, c] = [1, 2, 3].map(|k| placeholder(3 * i + k));
            format!("({a}, {b}, {c})")
        })
        .collect();
    format!(
        "INSERT INTO outbound_record_ids (firm_id, seq, record_id) VALUES {} ON CONFLICT DO NOTHING",
        rows.join(", ")
    )
}

/// Inserts the record-id index rows of sends given as (firm id, seq, record
/// ids), in key order; duplicate and empty ids are skipped.
pub(super) async fn insert_index_rows(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    sends: &[(&str, i64, Vec<String>)],
) -> Result<(), sqlx::Error> {
    let rows: BTreeSet<(&str, &str, i64)> = sends
        .iter()
        .flat_map(|(firm_id, seq, ids)| {
            ids.iter()
                .filter(|id| !id.is_empty())
                .map(move |id| (*firm_id, id.as_str(), *seq))
        })
        .collect();
    let rows: Vec<(&str, &str, i64)> = rows.into_iter().collect();
    let sql = insert_index_rows_sql(backend);
    for chunk in rows.chunks(INDEX_ROWS_PER_STATEMENT) {
        let last = chunk[chunk.len() - 1];
        let padded = chunk.iter().chain(std::iter::repeat_n(
            &last,
            INDEX_ROWS_PER_STATEMENT - chunk.len(),
        ));
        let mut query = sqlx::query(sql);
        for (firm_id, record_id, seq) in padded {
            query = query.bind(*firm_id).bind(*seq).bind(*record_id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Moves each firm's chain head to (seq, hash).
pub(super) async fn move_chain_heads(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    heads: &[(String, i64, String)],
) -> Result<(), sqlx::Error> {
    sqlx::query(update_heads(backend))
        .bind(json(&heads))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A record as the JSON array the insert unpacks: its columns in table order,
/// the two lists as their stored JSON text.
struct RecordRow<'a>(StoredRecord<'a>);

impl Serialize for RecordRow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = &self.0;
        let mut t = serializer.serialize_tuple(19)?;
        t.serialize_element(r.firm_id)?;
        t.serialize_element(&r.seq)?;
        t.serialize_element(r.kind)?;
        t.serialize_element(&r.at)?;
        t.serialize_element(r.grant_id)?;
        t.serialize_element(r.connector)?;
        t.serialize_element(r.direction)?;
        t.serialize_element(r.method)?;
        t.serialize_element(r.target)?;
        t.serialize_element(r.fields)?;
        t.serialize_element(r.record_ids)?;
        t.serialize_element(r.payload_sha256)?;
        t.serialize_element(&r.bytes)?;
        t.serialize_element(&r.send_seq)?;
        t.serialize_element(&r.status)?;
        t.serialize_element(&r.latency_us)?;
        t.serialize_element(r.prev_hash)?;
        t.serialize_element(r.hash)?;
        t.serialize_element(r.mac_key)?;
        t.end()
    }
}
