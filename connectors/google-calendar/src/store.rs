//! The connector's records (kept by the core in the registry, one namespace
//! per grant): the grant's event-id secret (sealed), each fee earner's
//! connection (sealed refresh token, status, sync cursor and the durable
//! job's due time) and the diary-entry -> event mapping with the hash of what
//! Google last received. A connection is changed by compare-and-swap, so
//! instances sharing the registry never lose each other's updates.

use scopegate_contract::{Capabilities, ConnectorError, FirmGrant, Record, RecordWrite};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Purposes the core binds sealed values to (with the firm and the grant).
pub const SEAL_REFRESH: &str = "google-refresh-token";
/// The record that keeps the grant's sealed event-id secret.
const SECRET_KEY: &str = "secret";
pub const SEAL_EVENT_SECRET: &str = "google-event-id-secret";

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A key component: `/` and `%` escaped, so one user's prefix never covers another's.
fn part(text: &str) -> String {
    text.replace('%', "%25").replace('/', "%2F")
}

/// The record a fee earner's connection (and its sealed refresh token) is kept in.
pub fn connection_key(user: &str) -> String {
    format!("connection/{}", part(user))
}

fn events_prefix(user: &str) -> String {
    format!("event/{}/", part(user))
}

fn event_key(user: &str, diary_id: &str) -> String {
    format!("{}{}", events_prefix(user), part(diary_id))
}

fn internal(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Internal(e.to_string())
}

/// Who acts through `grant`, as a connection records it.
pub fn principal_label(grant: &FirmGrant) -> String {
    use scopegate_contract::Principal;
    match grant.principal() {
        Principal::Session(id) => format!("session:{id}"),
        Principal::Operator(name) => format!("operator:{name}"),
        Principal::Credential(id) => format!("credential:{id}"),
        Principal::Lease(id) => format!("lease:{id}"),
    }
}

/// One Google account a connection delivered to, from its consent until the
/// next consent or the disconnection (`until` is `None` while it lasts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSpell {
    /// The account's address; `None` when Google did not say.
    pub account: Option<String>,
    pub from: i64,
    pub until: Option<i64>,
}

/// Ends the spell that lasts, if any, at `now`.
fn close_spell(connection: &mut Connection, now: i64) {
    if let Some(last) = connection.accounts.last_mut() {
        if last.until.is_none() {
            last.until = Some(now);
        }
    }
}

/// A fee earner's link to their Google account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connection {
    pub id: String,
    pub firm_user_id: String,
    pub calendar_id: String,
    #[serde(default)]
    pub refresh_token_sealed: Option<String>,
    /// Who made the connection: `session:<settings account>` or `operator:<name>`.
    #[serde(default)]
    pub connected_by: Option<String>,
    /// `active`, `needs_reconsent` or `disconnected`.
    pub status: String,
    pub connected_at: i64,
    pub cursor: i64,
    #[serde(default)]
    pub last_sync_at: Option<i64>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub events_count: i64,
    #[serde(default)]
    pub job_due_at: Option<i64>,
    /// The Google accounts the connection has delivered to, with when.
    #[serde(default)]
    pub accounts: Vec<AccountSpell>,
    #[serde(default)]
    pub job_attempts: i64,
    /// The firm's minimisation variant the cursor was reached under (`None`:
    /// the schemas as written); a different one starts the sync over.
    #[serde(default)]
    pub variant: Option<String>,
}

fn decode(record: &Record) -> Result<Connection, ConnectorError> {
    serde_json::from_value(record.value.clone())
        .map_err(|e| internal(format!("connection record {} is damaged: {e}", record.key)))
}

/// The grant's event-id secret, created on first use.
pub async fn grant_secret(
    caps: &Capabilities,
    grant: &FirmGrant,
) -> Result<Vec<u8>, ConnectorError> {
    let records = caps.records();
    if records.get(grant, SECRET_KEY).await?.is_none() {
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        let sealed = records.seal(grant, SECRET_KEY, SEAL_EVENT_SECRET, &secret)?;
        // Another instance may create it first: then its secret is the one.
        records
            .write(
                grant,
                vec![RecordWrite::Swap {
                    key: SECRET_KEY.into(),
                    value: json!({ "sealed": sealed }),
                    expected: None,
                }],
            )
            .await?;
    }
    let record = records
        .get(grant, SECRET_KEY)
        .await?
        .ok_or_else(|| internal("the event-id secret vanished"))?;
    let sealed = record.value["sealed"].as_str().unwrap_or_default();
    records.open(grant, SECRET_KEY, SEAL_EVENT_SECRET, sealed)
}

/// A fee earner's connection, if they ever connected.
pub async fn connection_for_user(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
) -> Result<Option<Connection>, ConnectorError> {
    match caps.records().get(grant, &connection_key(user)).await? {
        Some(record) => Ok(Some(decode(&record)?)),
        None => Ok(None),
    }
}

/// Every connection of the grant, by practice user id.
pub async fn connections(
    caps: &Capabilities,
    grant: &FirmGrant,
) -> Result<Vec<Connection>, ConnectorError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = caps
            .records()
            .list(grant, "connection/", after.as_deref(), 500)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        for record in &page {
            out.push(decode(record)?);
        }
        if page.len() < 500 {
            break;
        }
    }
    Ok(out)
}

/// Changes a connection by compare-and-swap, together with `extra` writes;
/// `change` returns false to leave it as it is. `None` when there is no such connection.
pub async fn update_connection(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
    extra: Vec<RecordWrite>,
    mut change: impl FnMut(&mut Connection) -> bool,
) -> Result<Option<Connection>, ConnectorError> {
    let key = connection_key(user);
    for _ in 0..50 {
        let Some(record) = caps.records().get(grant, &key).await? else {
            return Ok(None);
        };
        let mut connection = decode(&record)?;
        if !change(&mut connection) {
            if !extra.is_empty() {
                caps.records().write(grant, extra).await?;
            }
            return Ok(Some(connection));
        }
        let mut writes = extra.clone();
        writes.push(RecordWrite::Swap {
            key: key.clone(),
            value: serde_json::to_value(&connection).map_err(internal)?,
            expected: Some(record.version),
        });
        if caps.records().write(grant, writes).await? {
            return Ok(Some(connection));
        }
    }
    Err(ConnectorError::Unavailable(
        "the Google connection kept changing under this update; try again".into(),
    ))
}

/// Stores a (re)connection: active, due now, and every known event to be re-sent
/// (the Google account may be a different one).
pub async fn upsert_connection(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
    refresh_sealed: &str,
    account: Option<&str>,
) -> Result<Connection, ConnectorError> {
    let now = now_ms();
    let spell = AccountSpell {
        account: account.map(str::to_string),
        from: now,
        until: None,
    };
    let fresh = Connection {
        id: uuid::Uuid::new_v4().to_string(),
        firm_user_id: user.to_string(),
        calendar_id: "primary".into(),
        refresh_token_sealed: Some(refresh_sealed.to_string()),
        connected_by: Some(principal_label(grant)),
        status: "active".into(),
        connected_at: now,
        cursor: 0,
        last_sync_at: None,
        last_error: None,
        events_count: 0,
        job_due_at: Some(now),
        job_attempts: 0,
        accounts: vec![spell.clone()],
        variant: None,
    };
    // Every mapping's hash is forgotten, so each event is written again.
    let mut resets = Vec::new();
    for (diary_id, event_id) in mappings(caps, grant, user).await? {
        resets.push(RecordWrite::Put {
            key: event_key(user, &diary_id),
            value: json!({ "event_id": event_id, "sha": Value::Null }),
        });
    }
    let by = principal_label(grant);
    let updated = update_connection(caps, grant, user, resets.clone(), |c| {
        c.refresh_token_sealed = Some(refresh_sealed.to_string());
        c.connected_by = Some(by.clone());
        c.status = "active".into();
        c.connected_at = now;
        c.cursor = 0;
        c.last_error = None;
        c.job_due_at = Some(now);
        c.job_attempts = 0;
        close_spell(c, now);
        c.accounts.push(spell.clone());
        true
    })
    .await?;
    if let Some(connection) = updated {
        return Ok(connection);
    }
    let mut writes = resets;
    writes.push(RecordWrite::Swap {
        key: connection_key(user),
        value: serde_json::to_value(&fresh).map_err(internal)?,
        expected: None,
    });
    if caps.records().write(grant, writes).await? {
        return Ok(fresh);
    }
    // Created meanwhile (another instance): update that one.
    Box::pin(upsert_connection(
        caps,
        grant,
        user,
        refresh_sealed,
        account,
    ))
    .await
}

/// A pass finished: nothing due until the next change.
pub async fn mark_synced(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
) -> Result<(), ConnectorError> {
    let count = count_events(caps, grant, user).await?;
    let now = now_ms();
    update_connection(caps, grant, user, Vec::new(), |c| {
        c.last_sync_at = Some(now);
        c.last_error = None;
        c.job_due_at = None;
        c.job_attempts = 0;
        c.events_count = count;
        true
    })
    .await?;
    Ok(())
}

/// Keeps a reason visible on the connection (e.g. entries Google refused).
pub async fn note_error(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
    error: &str,
) -> Result<(), ConnectorError> {
    update_connection(caps, grant, user, Vec::new(), |c| {
        c.last_error = Some(error.to_string());
        true
    })
    .await?;
    Ok(())
}

/// Starts over from the first diary entry (after the created events were deleted).
pub async fn reset_cursor(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
) -> Result<(), ConnectorError> {
    update_connection(caps, grant, user, Vec::new(), |c| {
        c.cursor = 0;
        true
    })
    .await?;
    Ok(())
}

/// Starts over from the first diary entry under the firm's new minimisation variant.
pub async fn restart_for_variant(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
    variant: Option<String>,
) -> Result<(), ConnectorError> {
    update_connection(caps, grant, user, Vec::new(), move |c| {
        c.cursor = 0;
        c.variant = variant.clone();
        true
    })
    .await?;
    Ok(())
}

/// A pass failed for a passing reason: try again at `due_at`.
pub async fn reschedule(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
    due_at: i64,
    error: &str,
) -> Result<(), ConnectorError> {
    update_connection(caps, grant, user, Vec::new(), |c| {
        c.job_due_at = Some(due_at);
        c.job_attempts += 1;
        c.last_error = Some(error.to_string());
        true
    })
    .await?;
    Ok(())
}

/// Sets the status (syncing stops unless `active`), forgetting the refresh token when `forget_token`.
pub async fn set_status(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
    status: &str,
    error: Option<&str>,
    forget_token: bool,
) -> Result<(), ConnectorError> {
    let now = now_ms();
    update_connection(caps, grant, user, Vec::new(), |c| {
        if status == "disconnected" {
            close_spell(c, now);
        }
        c.status = status.to_string();
        c.last_error = error.map(str::to_string);
        c.job_due_at = None;
        if forget_token {
            c.refresh_token_sealed = None;
        }
        true
    })
    .await?;
    Ok(())
}

/// Marks a connection as needing reconsent and forgets its refresh token, but
/// only if it still holds `sealed` (the token Google refused): a reconnect that
/// landed meanwhile, here or on another instance, is left alone.
pub async fn refuse_token(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
    sealed: &str,
    error: &str,
) -> Result<(), ConnectorError> {
    update_connection(caps, grant, user, Vec::new(), |c| {
        if c.refresh_token_sealed.as_deref() != Some(sealed) {
            return false;
        }
        c.status = "needs_reconsent".into();
        c.last_error = Some(error.to_string());
        c.job_due_at = None;
        c.refresh_token_sealed = None;
        true
    })
    .await?;
    Ok(())
}

/// One diary entry's event, as last sent (`content_sha256` is `None` while an insert may be in flight).
#[derive(Debug, Clone)]
pub struct Mapping {
    pub event_id: String,
    pub content_sha256: Option<String>,
}

fn mapping_of(record: &Record) -> Mapping {
    Mapping {
        event_id: record.value["event_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        content_sha256: record.value["sha"].as_str().map(str::to_string),
    }
}

fn diary_id_of(key: &str, prefix: &str) -> String {
    key[prefix.len()..].replace("%2F", "/").replace("%25", "%")
}

/// The mappings of a batch of diary entries, by diary id.
pub async fn mappings_for(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
    diary_ids: &[&str],
) -> Result<HashMap<String, Mapping>, ConnectorError> {
    let keys: Vec<String> = diary_ids.iter().map(|d| event_key(user, d)).collect();
    let prefix = events_prefix(user);
    Ok(caps
        .records()
        .get_many(grant, &keys)
        .await?
        .iter()
        .map(|r| (diary_id_of(&r.key, &prefix), mapping_of(r)))
        .collect())
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
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
    writes: &BatchWrites,
) -> Result<(), ConnectorError> {
    let mut changes = Vec::new();
    if !writes.intents.is_empty() {
        let ids: Vec<&str> = writes.intents.iter().map(|(d, _)| d.as_str()).collect();
        let known = mappings_for(caps, grant, user, &ids).await?;
        for (diary_id, event_id) in &writes.intents {
            if !known.contains_key(diary_id) {
                changes.push(RecordWrite::Put {
                    key: event_key(user, diary_id),
                    value: json!({ "event_id": event_id, "sha": Value::Null }),
                });
            }
        }
    }
    for (diary_id, event_id, hash) in &writes.done {
        changes.push(RecordWrite::Put {
            key: event_key(user, diary_id),
            value: json!({ "event_id": event_id, "sha": hash }),
        });
    }
    for diary_id in &writes.removed {
        changes.push(RecordWrite::Delete {
            key: event_key(user, diary_id),
        });
    }
    match writes.cursor {
        Some(cursor) => {
            update_connection(caps, grant, user, changes, |c| {
                if c.cursor < cursor {
                    c.cursor = cursor;
                    true
                } else {
                    false
                }
            })
            .await?;
        }
        None if !changes.is_empty() => {
            caps.records().write(grant, changes).await?;
        }
        None => {}
    }
    Ok(())
}

/// Records the intent (hash `None`) or the success (hash set) of a write.
pub async fn put_mapping(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
    diary_id: &str,
    event_id: &str,
    content_sha256: Option<&str>,
) -> Result<(), ConnectorError> {
    caps.records()
        .write(
            grant,
            vec![RecordWrite::Put {
                key: event_key(user, diary_id),
                value: json!({ "event_id": event_id, "sha": content_sha256 }),
            }],
        )
        .await?;
    Ok(())
}

pub async fn delete_mapping(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
    diary_id: &str,
) -> Result<(), ConnectorError> {
    caps.records()
        .write(
            grant,
            vec![RecordWrite::Delete {
                key: event_key(user, diary_id),
            }],
        )
        .await?;
    Ok(())
}

async fn each_mapping(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
    mut visit: impl FnMut(String, Mapping),
) -> Result<(), ConnectorError> {
    let prefix = events_prefix(user);
    let mut after: Option<String> = None;
    loop {
        let page = caps
            .records()
            .list(grant, &prefix, after.as_deref(), 1000)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        for record in &page {
            visit(diary_id_of(&record.key, &prefix), mapping_of(record));
        }
        if page.len() < 1000 {
            break;
        }
    }
    Ok(())
}

/// Every mapped event of a connection: (diary id, event id), in diary id order.
pub async fn mappings(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
) -> Result<Vec<(String, String)>, ConnectorError> {
    let mut out = Vec::new();
    each_mapping(caps, grant, user, |diary, m| out.push((diary, m.event_id))).await?;
    Ok(out)
}

/// Events Google holds for a connection (mappings with a hash).
pub async fn count_events(
    caps: &Capabilities,
    grant: &FirmGrant,
    user: &str,
) -> Result<i64, ConnectorError> {
    let mut count = 0;
    each_mapping(caps, grant, user, |_, m| {
        if m.content_sha256.is_some() {
            count += 1
        }
    })
    .await?;
    Ok(count)
}

/// The record key of a connection's sync lease.
pub fn lease_key(user: &str) -> String {
    format!("lease/{}", part(user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_users_prefix_never_covers_anothers() {
        assert!(!event_key("a/b", "x").starts_with(&events_prefix("a")));
        assert_eq!(
            diary_id_of(&event_key("u", "d/1%"), &events_prefix("u")),
            "d/1%"
        );
    }
}
