//! The connector's rows in the registry: per-grant event-id secrets, pending
//! consents (single use, by the SHA-256 of `state`), connections (sealed
//! refresh token, status, sync cursor and the durable job's due time) and the
//! diary-entry -> event mapping with the hash of what Google last received.

use crate::clock::now_ms;
use crate::keys::Keyring;
use crate::registry::{Registry, StoreError, StoreResult};
use sqlx::Row;

/// Purposes the keyring binds sealed values to.
pub const SEAL_REFRESH: &str = "google-refresh-token";
pub const SEAL_VERIFIER: &str = "google-pkce-verifier";
pub const SEAL_EVENT_SECRET: &str = "google-event-id-secret";

/// A fee earner's link to their Google account.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Connection {
    pub id: String,
    pub grant_id: String,
    pub firm_id: String,
    pub firm_user_id: String,
    pub calendar_id: String,
    #[serde(skip)]
    pub refresh_token_sealed: Option<String>,
    pub key_id: Option<String>,
    /// `active`, `needs_reconsent` or `disconnected`.
    pub status: String,
    pub connected_at: i64,
    pub cursor: i64,
    pub last_sync_at: Option<i64>,
    pub last_error: Option<String>,
    pub events_count: i64,
    pub job_due_at: Option<i64>,
    pub job_attempts: i64,
}

const COLUMNS: &str = "id, grant_id, firm_id, firm_user_id, calendar_id, refresh_token_sealed, key_id, status, connected_at, cursor, last_sync_at, last_error, events_count, job_due_at, job_attempts";

fn connection_from_row(r: &sqlx::any::AnyRow) -> Connection {
    Connection {
        id: r.get("id"),
        grant_id: r.get("grant_id"),
        firm_id: r.get("firm_id"),
        firm_user_id: r.get("firm_user_id"),
        calendar_id: r.get("calendar_id"),
        refresh_token_sealed: r.get("refresh_token_sealed"),
        key_id: r.get("key_id"),
        status: r.get("status"),
        connected_at: r.get("connected_at"),
        cursor: r.get("cursor"),
        last_sync_at: r.get("last_sync_at"),
        last_error: r.get("last_error"),
        events_count: r.get("events_count"),
        job_due_at: r.get("job_due_at"),
        job_attempts: r.get("job_attempts"),
    }
}

/// A consent that was started and not yet completed.
#[derive(Debug, Clone)]
pub struct Pending {
    pub firm_id: String,
    pub grant_id: String,
    pub firm_user_id: String,
    pub verifier_sealed: String,
    pub expires_at: i64,
}

/// The grant's event-id secret, created on first use.
pub async fn grant_secret(
    registry: &Registry,
    keyring: &Keyring,
    grant_id: &str,
) -> StoreResult<Vec<u8>> {
    let select = || {
        sqlx::query("SELECT secret_sealed FROM google_grant_secrets WHERE grant_id = $1")
            .bind(grant_id)
            .fetch_optional(registry.pool())
    };
    if select().await?.is_none() {
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        sqlx::query("INSERT INTO google_grant_secrets (grant_id, secret_sealed, created_at) VALUES ($1, $2, $3) ON CONFLICT (grant_id) DO NOTHING")
            .bind(grant_id)
            .bind(keyring.seal(SEAL_EVENT_SECRET, &secret))
            .bind(now_ms())
            .execute(registry.pool())
            .await?;
    }
    let sealed: String = select()
        .await?
        .ok_or_else(|| StoreError::NotFound("event-id secret vanished".into()))?
        .get("secret_sealed");
    keyring
        .open(SEAL_EVENT_SECRET, &sealed)
        .map_err(|e| StoreError::Invalid(format!("cannot open the event-id secret: {e}")))
}

pub async fn insert_pending(
    registry: &Registry,
    state_sha256: &str,
    pending: &Pending,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM google_pending_consents WHERE expires_at < $1")
        .bind(now_ms())
        .execute(registry.pool())
        .await?;
    sqlx::query("INSERT INTO google_pending_consents (state_sha256, firm_id, grant_id, firm_user_id, verifier_sealed, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(state_sha256).bind(&pending.firm_id).bind(&pending.grant_id).bind(&pending.firm_user_id)
        .bind(&pending.verifier_sealed).bind(pending.expires_at)
        .execute(registry.pool()).await?;
    Ok(())
}

/// Removes and returns a pending consent: a `state` works once.
pub async fn take_pending(registry: &Registry, state_sha256: &str) -> StoreResult<Option<Pending>> {
    let row = sqlx::query("DELETE FROM google_pending_consents WHERE state_sha256 = $1 RETURNING firm_id, grant_id, firm_user_id, verifier_sealed, expires_at")
        .bind(state_sha256)
        .fetch_optional(registry.pool())
        .await?;
    Ok(row.map(|r| Pending {
        firm_id: r.get("firm_id"),
        grant_id: r.get("grant_id"),
        firm_user_id: r.get("firm_user_id"),
        verifier_sealed: r.get("verifier_sealed"),
        expires_at: r.get("expires_at"),
    }))
}

/// Stores a (re)connection: active, due now, and every known event to be re-sent
/// (the Google account may be a different one).
pub async fn upsert_connection(
    registry: &Registry,
    pending: &Pending,
    refresh_sealed: &str,
    key_id: &str,
) -> StoreResult<Connection> {
    let now = now_ms();
    let mut tx = registry.begin_write().await?;
    sqlx::query("INSERT INTO google_connections (id, grant_id, firm_id, firm_user_id, calendar_id, refresh_token_sealed, key_id, status, connected_at, updated_at, cursor, events_count, job_due_at, job_attempts) VALUES ($1, $2, $3, $4, 'primary', $5, $6, 'active', $7, $7, 0, 0, $7, 0) ON CONFLICT (firm_id, firm_user_id) DO UPDATE SET grant_id = excluded.grant_id, refresh_token_sealed = excluded.refresh_token_sealed, key_id = excluded.key_id, status = 'active', connected_at = excluded.connected_at, updated_at = excluded.updated_at, cursor = 0, last_error = NULL, job_due_at = excluded.job_due_at, job_attempts = 0")
        .bind(uuid::Uuid::new_v4().to_string()).bind(&pending.grant_id).bind(&pending.firm_id).bind(&pending.firm_user_id)
        .bind(refresh_sealed).bind(key_id).bind(now)
        .execute(&mut *tx).await?;
    sqlx::query("UPDATE google_events SET content_sha256 = NULL WHERE connection_id IN (SELECT id FROM google_connections WHERE firm_id = $1 AND firm_user_id = $2)")
        .bind(&pending.firm_id).bind(&pending.firm_user_id)
        .execute(&mut *tx).await?;
    tx.commit().await?;
    connection_for_user(registry, &pending.firm_id, &pending.firm_user_id)
        .await?
        .ok_or_else(|| StoreError::NotFound("connection vanished".into()))
}

pub async fn connection(registry: &Registry, id: &str) -> StoreResult<Connection> {
    let sql = format!("SELECT {COLUMNS} FROM google_connections WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(registry.pool())
        .await?
        .map(|r| connection_from_row(&r))
        .ok_or_else(|| StoreError::NotFound(format!("no Google connection {id}")))
}

pub async fn connection_for_user(
    registry: &Registry,
    firm_id: &str,
    firm_user_id: &str,
) -> StoreResult<Option<Connection>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM google_connections WHERE firm_id = $1 AND firm_user_id = $2"
    );
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(firm_id)
        .bind(firm_user_id)
        .fetch_optional(registry.pool())
        .await?
        .map(|r| connection_from_row(&r)))
}

pub async fn connections(registry: &Registry, firm_id: &str) -> StoreResult<Vec<Connection>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM google_connections WHERE firm_id = $1 ORDER BY firm_user_id"
    );
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(firm_id)
        .fetch_all(registry.pool())
        .await?
        .iter()
        .map(connection_from_row)
        .collect())
}

/// Active connections of enabled grants whose job is due (or idle, to look for changes).
pub async fn runnable_connections(registry: &Registry, now: i64) -> StoreResult<Vec<Connection>> {
    let cols = COLUMNS
        .split(", ")
        .map(|c| format!("c.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT {cols} FROM google_connections c JOIN grants g ON g.id = c.grant_id WHERE c.status = 'active' AND g.enabled = 1 AND (c.job_due_at IS NULL OR c.job_due_at <= $1) ORDER BY c.job_due_at");
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .fetch_all(registry.pool())
        .await?
        .iter()
        .map(connection_from_row)
        .collect())
}

/// True while the connection may sync: active, its grant enabled for the consented contract.
pub async fn may_sync(
    registry: &Registry,
    connection_id: &str,
    schema_hash: &str,
) -> StoreResult<bool> {
    let row = sqlx::query("SELECT c.status, g.enabled, g.schema_hash FROM google_connections c JOIN grants g ON g.id = c.grant_id WHERE c.id = $1")
        .bind(connection_id)
        .fetch_optional(registry.pool())
        .await?;
    Ok(row.is_some_and(|r| {
        r.get::<String, _>("status") == "active"
            && r.get::<i64, _>("enabled") == 1
            && r.get::<String, _>("schema_hash") == schema_hash
    }))
}

pub async fn advance_cursor(
    registry: &Registry,
    connection_id: &str,
    cursor: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE google_connections SET cursor = $1, updated_at = $2 WHERE id = $3 AND cursor < $1",
    )
    .bind(cursor)
    .bind(now_ms())
    .bind(connection_id)
    .execute(registry.pool())
    .await?;
    Ok(())
}

/// A pass finished: nothing due until the next change.
pub async fn mark_synced(registry: &Registry, connection_id: &str) -> StoreResult<()> {
    let now = now_ms();
    sqlx::query("UPDATE google_connections SET last_sync_at = $1, last_error = NULL, job_due_at = NULL, job_attempts = 0, events_count = (SELECT COUNT(*) FROM google_events WHERE connection_id = $2 AND content_sha256 IS NOT NULL), updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(connection_id)
        .execute(registry.pool())
        .await?;
    Ok(())
}

/// Keeps a reason visible on the connection (e.g. entries Google refused).
pub async fn note_error(registry: &Registry, connection_id: &str, error: &str) -> StoreResult<()> {
    sqlx::query("UPDATE google_connections SET last_error = $1 WHERE id = $2")
        .bind(error)
        .bind(connection_id)
        .execute(registry.pool())
        .await?;
    Ok(())
}

/// Starts over from the first diary entry (after the created events were deleted).
pub async fn reset_cursor(registry: &Registry, connection_id: &str) -> StoreResult<()> {
    sqlx::query("UPDATE google_connections SET cursor = 0, updated_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(connection_id)
        .execute(registry.pool())
        .await?;
    Ok(())
}

/// A pass failed for a passing reason: try again at `due_at`.
pub async fn reschedule(
    registry: &Registry,
    connection_id: &str,
    due_at: i64,
    error: &str,
) -> StoreResult<i64> {
    let row = sqlx::query("UPDATE google_connections SET job_due_at = $1, job_attempts = job_attempts + 1, last_error = $2, updated_at = $3 WHERE id = $4 RETURNING job_attempts")
        .bind(due_at)
        .bind(error)
        .bind(now_ms())
        .bind(connection_id)
        .fetch_optional(registry.pool())
        .await?;
    Ok(row.map(|r| r.get("job_attempts")).unwrap_or(0))
}

/// Marks the connection as needing the user to connect again (or disconnected),
/// and forgets its refresh token when `forget_token`.
pub async fn set_status(
    registry: &Registry,
    connection_id: &str,
    status: &str,
    error: Option<&str>,
    forget_token: bool,
) -> StoreResult<()> {
    let sql = if forget_token {
        "UPDATE google_connections SET status = $1, last_error = $2, updated_at = $3, job_due_at = NULL, refresh_token_sealed = NULL, key_id = NULL WHERE id = $4"
    } else {
        "UPDATE google_connections SET status = $1, last_error = $2, updated_at = $3, job_due_at = NULL WHERE id = $4"
    };
    sqlx::query(sql)
        .bind(status)
        .bind(error)
        .bind(now_ms())
        .bind(connection_id)
        .execute(registry.pool())
        .await?;
    Ok(())
}

/// Marks a connection as needing reconsent and forgets its refresh token, but
/// only if it still holds `sealed` (the token Google refused): a reconnect that
/// landed meanwhile, here or on another instance, is left alone.
pub async fn refuse_token(
    registry: &Registry,
    connection_id: &str,
    sealed: &str,
    error: &str,
) -> StoreResult<()> {
    sqlx::query("UPDATE google_connections SET status = 'needs_reconsent', last_error = $1, updated_at = $2, job_due_at = NULL, refresh_token_sealed = NULL, key_id = NULL WHERE id = $3 AND refresh_token_sealed = $4")
        .bind(error)
        .bind(now_ms())
        .bind(connection_id)
        .bind(sealed)
        .execute(registry.pool())
        .await?;
    Ok(())
}

/// One diary entry's event, as last sent (`content_sha256` is NULL while an insert may be in flight).
#[derive(Debug, Clone)]
pub struct Mapping {
    pub event_id: String,
    pub content_sha256: Option<String>,
}

pub async fn mapping(
    registry: &Registry,
    connection_id: &str,
    diary_id: &str,
) -> StoreResult<Option<Mapping>> {
    let row = sqlx::query("SELECT event_id, content_sha256 FROM google_events WHERE connection_id = $1 AND diary_id = $2")
        .bind(connection_id)
        .bind(diary_id)
        .fetch_optional(registry.pool())
        .await?;
    Ok(row.map(|r| Mapping {
        event_id: r.get("event_id"),
        content_sha256: r.get("content_sha256"),
    }))
}

/// The mappings of a batch of diary entries, by diary id.
pub async fn mappings_for(
    registry: &Registry,
    connection_id: &str,
    diary_ids: &[&str],
) -> StoreResult<std::collections::HashMap<String, Mapping>> {
    let mut found = std::collections::HashMap::new();
    for chunk in diary_ids.chunks(400) {
        let placeholders = (0..chunk.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT diary_id, event_id, content_sha256 FROM google_events WHERE connection_id = $1 AND diary_id IN ({placeholders})");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(connection_id);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(registry.pool()).await? {
            found.insert(
                row.get::<String, _>("diary_id"),
                Mapping {
                    event_id: row.get("event_id"),
                    content_sha256: row.get("content_sha256"),
                },
            );
        }
    }
    Ok(found)
}

/// What a batch changed, written in one transaction: intents (event id, no hash yet),
/// completed writes (with the hash sent), removed mappings, and the new cursor.
#[derive(Debug, Default)]
pub struct BatchWrites {
    pub intents: Vec<(String, String)>,
    pub done: Vec<(String, String, String)>,
    pub removed: Vec<String>,
    pub cursor: Option<i64>,
}

pub async fn write_batch(
    registry: &Registry,
    connection_id: &str,
    writes: &BatchWrites,
) -> StoreResult<()> {
    let mut tx = registry.begin_write().await?;
    for (diary_id, event_id) in &writes.intents {
        sqlx::query("INSERT INTO google_events (connection_id, diary_id, event_id, content_sha256) VALUES ($1, $2, $3, NULL) ON CONFLICT (connection_id, diary_id) DO NOTHING")
            .bind(connection_id).bind(diary_id).bind(event_id)
            .execute(&mut *tx).await?;
    }
    for (diary_id, event_id, hash) in &writes.done {
        sqlx::query("INSERT INTO google_events (connection_id, diary_id, event_id, content_sha256) VALUES ($1, $2, $3, $4) ON CONFLICT (connection_id, diary_id) DO UPDATE SET event_id = excluded.event_id, content_sha256 = excluded.content_sha256")
            .bind(connection_id).bind(diary_id).bind(event_id).bind(hash)
            .execute(&mut *tx).await?;
    }
    for diary_id in &writes.removed {
        sqlx::query("DELETE FROM google_events WHERE connection_id = $1 AND diary_id = $2")
            .bind(connection_id)
            .bind(diary_id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(cursor) = writes.cursor {
        sqlx::query("UPDATE google_connections SET cursor = $1, updated_at = $2 WHERE id = $3 AND cursor < $1")
            .bind(cursor)
            .bind(now_ms())
            .bind(connection_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Records the intent (hash NULL) or the success (hash set) of a write.
pub async fn put_mapping(
    registry: &Registry,
    connection_id: &str,
    diary_id: &str,
    event_id: &str,
    content_sha256: Option<&str>,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO google_events (connection_id, diary_id, event_id, content_sha256) VALUES ($1, $2, $3, $4) ON CONFLICT (connection_id, diary_id) DO UPDATE SET event_id = excluded.event_id, content_sha256 = excluded.content_sha256")
        .bind(connection_id).bind(diary_id).bind(event_id).bind(content_sha256)
        .execute(registry.pool()).await?;
    Ok(())
}

pub async fn delete_mapping(
    registry: &Registry,
    connection_id: &str,
    diary_id: &str,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM google_events WHERE connection_id = $1 AND diary_id = $2")
        .bind(connection_id)
        .bind(diary_id)
        .execute(registry.pool())
        .await?;
    Ok(())
}

/// Every mapped event of a connection: (diary id, event id).
pub async fn mappings(
    registry: &Registry,
    connection_id: &str,
) -> StoreResult<Vec<(String, String)>> {
    Ok(sqlx::query(
        "SELECT diary_id, event_id FROM google_events WHERE connection_id = $1 ORDER BY diary_id",
    )
    .bind(connection_id)
    .fetch_all(registry.pool())
    .await?
    .iter()
    .map(|r| (r.get("diary_id"), r.get("event_id")))
    .collect())
}
