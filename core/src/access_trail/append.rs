//! Appending to a chain. The chain's head row is taken with an upsert that
//! returns it (`INSERT .. ON CONFLICT DO UPDATE .. RETURNING`: one round trip
//! that creates the head of a new chain and row-locks it on PostgreSQL; on
//! SQLite the write transaction already holds the database), the entry is
//! chained onto it and inserted with the head moved on (one statement on
//! PostgreSQL), so concurrent appends from several instances queue on the head
//! and every chain stays linear.

use super::entry::{Entry, NewEntry};
use crate::clock::now_ms;
use crate::keyed_chain::GENESIS_HASH;
use crate::keys::LogKeys;
use crate::registry::{Backend, Registry, StoreResult};
use sqlx::{Any, Row, Transaction};

/// Appends `new` in its own short transaction; returns the stored entry.
pub async fn record(registry: &Registry, keys: &LogKeys, new: NewEntry) -> StoreResult<Entry> {
    let mut tx = registry.begin_write().await?;
    let entry = append_in(&mut tx, registry.backend(), keys, new).await?;
    tx.commit().await?;
    Ok(entry)
}

/// Appends `new` inside the caller's transaction (so the entry commits, or
/// not, with the act it records).
pub async fn append_in(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    keys: &LogKeys,
    new: NewEntry,
) -> Result<Entry, sqlx::Error> {
    let head = sqlx::query("INSERT INTO access_trail_heads (chain, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (chain) DO UPDATE SET seq = access_trail_heads.seq RETURNING seq, hash")
        .bind(&new.chain)
        .bind(GENESIS_HASH)
        .fetch_one(&mut **tx)
        .await?;
    let (seq, prev_hash): (i64, String) = (head.get("seq"), head.get("hash"));
    let mut entry = Entry {
        chain: new.chain,
        seq: seq + 1,
        at: now_ms(),
        kind: new.kind.as_str().to_string(),
        actor: new.actor,
        from: new.origin,
        what: new.what.to_string(),
        prev_hash,
        hash: String::new(),
        mac_key: String::new(),
    };
    entry.seal(keys.current());
    const INSERT: &str = "INSERT INTO access_trail (chain, seq, at, kind, actor, origin, what, prev_hash, hash, mac_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    let insert = match backend {
        Backend::Postgres => format!(
            "WITH added AS ({INSERT} RETURNING chain) UPDATE access_trail_heads SET seq = $2, hash = $9 WHERE chain = $1"
        ),
        Backend::Sqlite => INSERT.to_string(),
    };
    sqlx::query(sqlx::AssertSqlSafe(insert))
        .bind(&entry.chain)
        .bind(entry.seq)
        .bind(entry.at)
        .bind(&entry.kind)
        .bind(&entry.actor)
        .bind(&entry.from)
        .bind(&entry.what)
        .bind(&entry.prev_hash)
        .bind(&entry.hash)
        .bind(&entry.mac_key)
        .execute(&mut **tx)
        .await?;
    if backend == Backend::Sqlite {
        sqlx::query("UPDATE access_trail_heads SET seq = $1, hash = $2 WHERE chain = $3")
            .bind(entry.seq)
            .bind(&entry.hash)
            .bind(&entry.chain)
            .execute(&mut **tx)
            .await?;
    }
    Ok(entry)
}
