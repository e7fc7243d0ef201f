//! The writer's commit on a PostgreSQL registry, on a connection of its own
//! through sqlx's PostgreSQL driver rather than the pool's `Any` driver,
//! which binds no arrays: there a batch goes in as one JSON text that
//! PostgreSQL parses and unpacks field by field, unescaping every record's
//! id list character by character, which was about 40% of its time in a
//! commit (BENCHMARKS.md §12). Here every column of the batch is one typed
//! array, unpacked by `UNNEST`, and the records and the new chain heads go in
//! as one statement. The transaction is the same: the batch's chain heads
//! created (skipped when the committer has seen every firm's head), then locked in byte order of firm id (`FOR UPDATE`, so instances
//! sharing the registry chain one after the other), the records inserted, the
//! heads moved, committed before any sender is answered.

use super::pending::{self, ChainedBatch, PendingRecord};
use super::record::GENESIS_HASH;
use super::stored::StoredRecord;
use crate::clock::now_ms;
use crate::keys::LogKeys;
use crate::registry::Registry;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Row};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// How long one batch may take (connecting included) before the writer gives
/// up on the connection: a registry that stopped answering must not hold the
/// writer, and every send queued behind it, for longer.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The writer's own connection to the registry.
pub(super) struct PgCommitter {
    options: PgConnectOptions,
    /// Opened on first use, and afresh after any failed batch.
    conn: Option<PgConnection>,
    /// Firms whose chain head this committer has seen: a batch of only these
    /// skips the statement that creates missing heads. Emptied with the
    /// connection after any failed batch.
    known: HashSet<String>,
}

const CREATE_HEADS: &str = "INSERT INTO outbound_chain_heads (firm_id, seq, hash) SELECT f, 0, $2 FROM UNNEST($1::text[]) AS f ON CONFLICT (firm_id) DO NOTHING";
const LOCK_HEADS: &str = "SELECT firm_id, seq, hash FROM outbound_chain_heads WHERE firm_id = ANY($1::text[]) ORDER BY firm_id COLLATE \"C\" FOR UPDATE";
/// Inserts the records and moves the heads: `$1`-`$19` the records' columns,
/// `$20`-`$22` the heads' firm ids, seqs and hashes.
const INSERT_AND_MOVE: &str = "WITH inserted AS (INSERT INTO outbound_log (firm_id, seq, kind, at, grant_id, connector, direction, method, target, fields, record_ids, payload_sha256, bytes, send_seq, status, latency_us, prev_hash, hash, mac_key) SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::int8[], $14::int8[], $15::int8[], $16::int8[], $17::text[], $18::text[], $19::text[])) UPDATE outbound_chain_heads AS c SET seq = h.seq, hash = h.hash FROM UNNEST($20::text[], $21::int8[], $22::text[]) AS h(firm_id, seq, hash) WHERE c.firm_id = h.firm_id";

impl PgCommitter {
    /// The committer for `registry`, if it is PostgreSQL.
    pub(super) fn for_registry(registry: &Registry) -> Option<Self> {
        if registry.backend() != crate::registry::Backend::Postgres {
            return None;
        }
        let url = registry.pool().connect_options().database_url.clone();
        match url.as_str().parse::<PgConnectOptions>() {
            Ok(options) => Some(Self {
                options,
                conn: None,
                known: HashSet::new(),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "outbound log: the registry's URL does not give PostgreSQL options; committing through the pool");
                None
            }
        }
    }

    /// Chains and commits `records` in one transaction; the seq given to each,
    /// in input order, or why none was committed.
    pub(super) async fn commit(
        &mut self,
        records: &[PendingRecord],
        keys: &LogKeys,
    ) -> Result<Vec<i64>, String> {
        let known = std::mem::take(&mut self.known);
        let attempt = async {
            let mut conn = match self.conn.take() {
                Some(conn) => conn,
                None => PgConnection::connect_with(&self.options).await?,
            };
            let (seqs, known) = commit_on(&mut conn, records, keys, known).await?;
            self.conn = Some(conn);
            self.known = known;
            Ok::<_, sqlx::Error>(seqs)
        };
        match tokio::time::timeout(COMMIT_TIMEOUT, attempt).await {
            Ok(Ok(seqs)) => Ok(seqs),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "the registry did not answer within {} s",
                COMMIT_TIMEOUT.as_secs()
            )),
        }
    }
}

/// Commits one batch; gives back the seqs and the firms known to have heads.
async fn commit_on(
    conn: &mut PgConnection,
    records: &[PendingRecord],
    keys: &LogKeys,
    mut known: HashSet<String>,
) -> Result<(Vec<i64>, HashSet<String>), sqlx::Error> {
    let at = now_ms();
    let firms: Vec<&str> = pending::firms_of(records);
    let mut tx = conn.begin().await?;
    if firms.iter().any(|f| !known.contains(*f)) {
        sqlx::query(CREATE_HEADS)
            .bind(&firms)
            .bind(GENESIS_HASH)
            .execute(&mut *tx)
            .await?;
    }
    let heads: BTreeMap<String, (i64, String)> = sqlx::query(LOCK_HEADS)
        .bind(&firms)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| (row.get("firm_id"), (row.get("seq"), row.get("hash"))))
        .collect();
    // A head missing (deleted since it was seen) fails the batch, which
    // empties `known`: the next batch creates it.
    let chained = pending::chain(records, heads, at, keys).ok_or(sqlx::Error::RowNotFound)?;
    insert_and_move(&mut tx, records, &chained).await?;
    tx.commit().await?;
    known.extend(firms.iter().map(|f| f.to_string()));
    Ok((chained.links.iter().map(|l| l.seq).collect(), known))
}

/// One column of the batch's rows, as the array bound for it.
fn column<'a, T>(rows: &[StoredRecord<'a>], value: impl Fn(&StoredRecord<'a>) -> T) -> Vec<T> {
    rows.iter().map(value).collect()
}

/// The batch's columns, one array each, in the table's order.
async fn insert_and_move(
    tx: &mut PgConnection,
    records: &[PendingRecord],
    chained: &ChainedBatch,
) -> Result<(), sqlx::Error> {
    let rows: Vec<StoredRecord<'_>> = records
        .iter()
        .enumerate()
        .map(|(i, r)| chained.row(r, i))
        .collect();
    let (head_firms, head_seqs, head_hashes): (Vec<&str>, Vec<i64>, Vec<&str>) = (
        chained.heads.iter().map(|h| h.0.as_str()).collect(),
        chained.heads.iter().map(|h| h.1).collect(),
        chained.heads.iter().map(|h| h.2.as_str()).collect(),
    );
    sqlx::query(INSERT_AND_MOVE)
        .bind(column(&rows, |r| r.firm_id))
        .bind(column(&rows, |r| r.seq))
        .bind(column(&rows, |r| r.kind))
        .bind(column(&rows, |r| r.at))
        .bind(column(&rows, |r| r.grant_id))
        .bind(column(&rows, |r| r.connector))
        .bind(column(&rows, |r| r.direction))
        .bind(column(&rows, |r| r.method))
        .bind(column(&rows, |r| r.target))
        .bind(column(&rows, |r| r.fields))
        .bind(column(&rows, |r| r.record_ids))
        .bind(column(&rows, |r| r.payload_sha256))
        .bind(column(&rows, |r| r.bytes))
        .bind(column(&rows, |r| r.send_seq))
        .bind(column(&rows, |r| r.status))
        .bind(column(&rows, |r| r.latency_us))
        .bind(column(&rows, |r| r.prev_hash))
        .bind(column(&rows, |r| r.hash))
        .bind(column(&rows, |r| r.mac_key))
        .bind(head_firms)
        .bind(head_seqs)
        .bind(head_hashes)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
