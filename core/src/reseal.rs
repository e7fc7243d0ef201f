//! Re-sealing stored secrets under the current master key (`scopegate keys
//! rotate`) and counting what each key still seals (`keys list`, `keys
//! retire`). Sealed values live in connectors' records (as JSON strings
//! anywhere inside a record's value: a refresh token, an event-id secret) and
//! in parked consents (a PKCE verifier). Each names its key and purpose in
//! clear (see [`crate::keys`]), and its binding is rebuilt from the row
//! (connector, firm, grant) and that purpose, so the core re-seals without
//! the connector that sealed it. Values of the older `v1` form carry no
//! purpose: the connector's declared purposes are tried in turn.
//!
//! The walk runs while gateways serve: rows are read in key order, `BATCH`
//! at a time, and each batch is written in one short transaction, every row
//! by compare-and-swap on its version (parked consents on their old
//! ciphertext), so a connector's concurrent update is never lost: a row that
//! changed is read again and re-sealed again. A re-sealed record's version
//! goes up by one, like any write, so a connector holding the old version
//! retries its own swap as it would after any other instance's write.
//! A value that does not open (its key is not held, or it was copied from
//! another grant's row) is left as it is and reported.

use crate::binding::{binding, PARKED_PURPOSE};
use crate::clock::now_ms;
use crate::keys::{sealed_parts, KeyError, Keyring};
use crate::registry::{Registry, StoreResult};
use secrecy::zeroize::Zeroizing;
use serde_json::Value;
use sqlx::Row;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Rows read and written per transaction.
pub const BATCH: usize = 200;
/// Passes over everything at most (a later pass only picks up what was
/// written under an older key while the walk ran).
const PASSES: u32 = 3;
/// Attempts at one row whose version kept changing under the walk.
const ROW_ATTEMPTS: u32 = 20;
/// Unopened values described in the report (all are counted).
const DESCRIBED: usize = 10;

/// Purposes to try, per connector, on `v1` values (they carry none in clear).
pub type V1Purposes = BTreeMap<String, Vec<String>>;

/// What [`reseal`] did.
#[derive(Debug, Default)]
pub struct ResealReport {
    /// Records holding a sealed value, read (each pass).
    pub records_scanned: u64,
    /// Records written back with their values re-sealed.
    pub records_updated: u64,
    /// Sealed values re-sealed in records.
    pub values_resealed: u64,
    /// Parked consents re-sealed.
    pub parked_resealed: u64,
    /// Expired parked consents deleted (they can never be taken).
    pub parked_expired: u64,
    /// Rows that changed between read and write, read and re-sealed again.
    pub conflicts: u64,
    /// Write transactions.
    pub batches: u64,
    pub passes: u32,
    /// Values that did not open (left as they are), in the last pass.
    pub unopened: u64,
    /// The first few of them: where, and why.
    pub unopened_described: Vec<String>,
    /// Values not sealed under the current key in the current form after the last pass.
    pub left: u64,
    pub elapsed: Duration,
}

/// How many stored values one key seals.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KeyCount {
    /// In connectors' records.
    pub records: u64,
    /// In parked consents not yet expired.
    pub parked: u64,
    /// Of those, in the older `v1` form.
    pub v1: u64,
}

impl KeyCount {
    pub fn total(&self) -> u64 {
        self.records + self.parked
    }
}

/// Stored sealed values by the id of the key that sealed them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Census {
    pub by_key: BTreeMap<String, KeyCount>,
}

impl Census {
    /// What `key_id` seals.
    pub fn of(&self, key_id: &str) -> KeyCount {
        self.by_key.get(key_id).copied().unwrap_or_default()
    }

    /// Values a rotation to `current` still has to re-seal: under another key, or `v1`.
    pub fn not_under(&self, current: &str) -> u64 {
        self.by_key
            .iter()
            .map(|(id, n)| if id == current { n.v1 } else { n.total() })
            .sum()
    }
}

/// A record as the walk reads it.
struct RecordRow {
    grant_id: String,
    record_key: String,
    firm_id: String,
    connector: String,
    value: String,
    version: i64,
}

fn record_row(r: &sqlx::any::AnyRow) -> RecordRow {
    RecordRow {
        grant_id: r.get("grant_id"),
        record_key: r.get("record_key"),
        firm_id: r.get("firm_id"),
        connector: r.get("connector"),
        value: r.get("value"),
        version: r.get("version"),
    }
}

/// Records whose JSON text holds a string that may be sealed (checked
/// properly after), after `(grant, key)` in key order.
const RECORDS_PAGE: &str =
    "SELECT grant_id, record_key, firm_id, connector, value, version FROM connector_records \
     WHERE (grant_id > $1 OR (grant_id = $1 AND record_key > $2)) \
     AND (value LIKE '%\"v1.%' OR value LIKE '%\"v2.%') \
     ORDER BY grant_id, record_key LIMIT $3";

/// Re-seals every stored sealed value that is not under the keyring's current
/// key (or is in the `v1` form), `batch` rows per transaction; see the module doc.
/// A key rotation as the operator runs it: [`reseal`], then a `key_rotated`
/// entry in the operator's access trail naming the new primary key and the counts.
pub async fn rotate(
    registry: &Registry,
    keyring: &Keyring,
    v1_purposes: &V1Purposes,
    batch: usize,
    actor: &str,
    origin: &str,
) -> StoreResult<ResealReport> {
    let report = reseal(registry, keyring, v1_purposes, batch).await?;
    let what = serde_json::json!({
        "key_id": keyring.primary_id(),
        "resealed": report.values_resealed + report.parked_resealed,
        "unopened": report.unopened,
        "left": report.left,
    });
    let entry = crate::access_trail::NewEntry::operator(
        crate::access_trail::Kind::KeyRotated,
        actor,
        origin,
        what,
    );
    crate::access_trail::record(registry, &keyring.log_keys(), entry).await?;
    Ok(report)
}

pub async fn reseal(
    registry: &Registry,
    keyring: &Keyring,
    v1_purposes: &V1Purposes,
    batch: usize,
) -> StoreResult<ResealReport> {
    let started = Instant::now();
    let batch = batch.clamp(1, 10_000);
    let mut report = ResealReport::default();
    for pass in 1..=PASSES {
        report.passes = pass;
        report.unopened = 0;
        report.unopened_described.clear();
        reseal_records(registry, keyring, v1_purposes, batch, &mut report).await?;
        reseal_parked(registry, keyring, batch, &mut report).await?;
        report.left = census(registry).await?.not_under(keyring.primary_id());
        if report.left <= report.unopened {
            break;
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// What re-sealing one record's value came to.
#[derive(Default)]
struct Resealed {
    /// The new JSON text, when anything was re-sealed.
    text: Option<String>,
    values: u64,
    unopened: Vec<String>,
}

async fn reseal_records(
    registry: &Registry,
    keyring: &Keyring,
    v1_purposes: &V1Purposes,
    batch: usize,
    report: &mut ResealReport,
) -> StoreResult<()> {
    let mut after = (String::new(), String::new());
    loop {
        let rows: Vec<RecordRow> = sqlx::query(RECORDS_PAGE)
            .bind(&after.0)
            .bind(&after.1)
            .bind(batch as i64)
            .fetch_all(registry.pool())
            .await?
            .iter()
            .map(record_row)
            .collect();
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = (last.grant_id.clone(), last.record_key.clone());
        report.records_scanned += rows.len() as u64;
        let mut changed = Vec::new();
        for row in rows {
            let resealed = reseal_record(keyring, v1_purposes, &row);
            note_unopened(report, resealed.unopened);
            if let Some(text) = resealed.text {
                changed.push((row, text, resealed.values));
            }
        }
        if changed.is_empty() {
            continue;
        }
        report.batches += 1;
        let mut missed = Vec::new();
        let mut tx = registry.begin_write().await?;
        for (row, text, values) in changed {
            if swap_record(&mut tx, &row, &text).await? {
                report.records_updated += 1;
                report.values_resealed += values;
            } else {
                missed.push(row);
            }
        }
        tx.commit().await?;
        for row in missed {
            retry_record(registry, keyring, v1_purposes, row, report).await?;
        }
    }
}

/// Writes a re-sealed value if the record is still at the version read.
async fn swap_record(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    row: &RecordRow,
    text: &str,
) -> StoreResult<bool> {
    Ok(sqlx::query("UPDATE connector_records SET value = $1, version = version + 1, updated_at = $2 WHERE grant_id = $3 AND record_key = $4 AND version = $5")
        .bind(text)
        .bind(now_ms())
        .bind(&row.grant_id)
        .bind(&row.record_key)
        .bind(row.version)
        .execute(&mut **tx)
        .await?
        .rows_affected()
        == 1)
}

/// A record that changed under the walk: read it again and re-seal what it holds now.
async fn retry_record(
    registry: &Registry,
    keyring: &Keyring,
    v1_purposes: &V1Purposes,
    row: RecordRow,
    report: &mut ResealReport,
) -> StoreResult<()> {
    for _ in 0..ROW_ATTEMPTS {
        report.conflicts += 1;
        let Some(now) = sqlx::query("SELECT grant_id, record_key, firm_id, connector, value, version FROM connector_records WHERE grant_id = $1 AND record_key = $2")
            .bind(&row.grant_id)
            .bind(&row.record_key)
            .fetch_optional(registry.pool())
            .await?
            .as_ref()
            .map(record_row)
        else {
            return Ok(()); // deleted meanwhile: nothing left to re-seal
        };
        let resealed = reseal_record(keyring, v1_purposes, &now);
        let Some(text) = resealed.text else {
            note_unopened(report, resealed.unopened);
            return Ok(()); // the connector re-sealed it itself
        };
        let mut tx = registry.begin_write().await?;
        let swapped = swap_record(&mut tx, &now, &text).await?;
        tx.commit().await?;
        if swapped {
            note_unopened(report, resealed.unopened);
            report.records_updated += 1;
            report.values_resealed += resealed.values;
            return Ok(());
        }
    }
    // Still changing: the next pass (or `keys rotate` again) picks it up.
    Ok(())
}

fn note_unopened(report: &mut ResealReport, unopened: Vec<String>) {
    report.unopened += unopened.len() as u64;
    let room = DESCRIBED.saturating_sub(report.unopened_described.len());
    report
        .unopened_described
        .extend(unopened.into_iter().take(room));
}

/// Re-seals every sealed string in one record's value that is not under the current key.
fn reseal_record(keyring: &Keyring, v1_purposes: &V1Purposes, row: &RecordRow) -> Resealed {
    let mut out = Resealed::default();
    let Ok(mut value) = serde_json::from_str::<Value>(&row.value) else {
        return out; // not JSON: nothing the connector could read either
    };
    let no_purposes = Vec::new();
    let purposes = v1_purposes.get(&row.connector).unwrap_or(&no_purposes);
    let mut changed = false;
    visit_strings(&mut value, &mut |text: &mut String| {
        let Some(parts) = sealed_parts(text) else {
            return;
        };
        if parts.key_id == keyring.primary_id() && parts.purpose.is_some() {
            return;
        }
        let candidates: Vec<&str> = match parts.purpose {
            Some(p) => vec![p],
            None => purposes.iter().map(String::as_str).collect(),
        };
        match reseal_one(keyring, text, &candidates, |purpose| {
            binding(
                &row.connector,
                purpose,
                &row.firm_id,
                &row.grant_id,
                &row.record_key,
            )
        }) {
            Ok(new) => {
                *text = new;
                out.values += 1;
                changed = true;
            }
            Err(why) => out.unopened.push(format!(
                "{} record {:?} of firm {} (grant {}): {why}",
                row.connector, row.record_key, row.firm_id, row.grant_id
            )),
        }
    });
    if changed {
        out.text = Some(serde_json::to_string(&value).expect("JSON values serialise"));
    }
    out
}

/// Opens `sealed` under the first candidate purpose whose binding fits and
/// seals it again under the current key, in the current form.
fn reseal_one(
    keyring: &Keyring,
    sealed: &str,
    purposes: &[&str],
    bound: impl Fn(&str) -> String,
) -> Result<String, String> {
    let mut last = match purposes.is_empty() {
        true => "a v1 value, and its connector declares no sealed purposes to try".to_string(),
        false => String::new(),
    };
    for purpose in purposes {
        let binding = bound(purpose);
        match keyring.open(purpose, &binding, sealed) {
            Ok(plain) => {
                let plain = Zeroizing::new(plain);
                return keyring
                    .seal(purpose, &binding, &plain)
                    .map_err(|e| e.to_string());
            }
            Err(e @ KeyError::UnknownKey(_)) => return Err(e.to_string()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Calls `f` on every string in `value`, object keys excepted.
fn visit_strings(value: &mut Value, f: &mut impl FnMut(&mut String)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter_mut().for_each(|v| visit_strings(v, f)),
        Value::Object(map) => map.values_mut().for_each(|v| visit_strings(v, f)),
        _ => {}
    }
}

async fn reseal_parked(
    registry: &Registry,
    keyring: &Keyring,
    batch: usize,
    report: &mut ResealReport,
) -> StoreResult<()> {
    report.parked_expired += sqlx::query("DELETE FROM connector_parked WHERE expires_at < $1")
        .bind(now_ms())
        .execute(registry.pool())
        .await?
        .rows_affected();
    let mut after = String::new();
    loop {
        let rows = sqlx::query("SELECT state_sha256, grant_id, firm_id, connector, payload_sealed FROM connector_parked WHERE state_sha256 > $1 ORDER BY state_sha256 LIMIT $2")
            .bind(&after)
            .bind(batch as i64)
            .fetch_all(registry.pool())
            .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.get("state_sha256");
        let mut changed = Vec::new();
        for r in &rows {
            let state: String = r.get("state_sha256");
            let sealed: String = r.get("payload_sealed");
            let (grant_id, firm_id, connector): (String, String, String) =
                (r.get("grant_id"), r.get("firm_id"), r.get("connector"));
            let Some(parts) = sealed_parts(&sealed) else {
                note_unopened(
                    report,
                    vec![format!(
                        "a parked consent of {connector} for firm {firm_id} is not a sealed value"
                    )],
                );
                continue;
            };
            if parts.key_id == keyring.primary_id() && parts.purpose.is_some() {
                continue;
            }
            match reseal_one(keyring, &sealed, &[PARKED_PURPOSE], |purpose| {
                binding(&connector, purpose, &firm_id, &grant_id, &state)
            }) {
                Ok(new) => changed.push((state, sealed, new)),
                Err(why) => note_unopened(
                    report,
                    vec![format!(
                        "a parked consent of {connector} for firm {firm_id} (grant {grant_id}): {why}"
                    )],
                ),
            }
        }
        if changed.is_empty() {
            continue;
        }
        report.batches += 1;
        let mut tx = registry.begin_write().await?;
        for (state, old, new) in changed {
            // Parked consents are only ever taken (deleted): a miss needs no retry.
            report.parked_resealed += sqlx::query("UPDATE connector_parked SET payload_sealed = $1 WHERE state_sha256 = $2 AND payload_sealed = $3")
                .bind(&new)
                .bind(&state)
                .bind(&old)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
    }
}

/// Counts stored sealed values by key: in every record, and in every parked
/// consent not yet expired.
pub async fn census(registry: &Registry) -> StoreResult<Census> {
    let mut census = Census::default();
    let mut after = (String::new(), String::new());
    loop {
        let rows: Vec<RecordRow> = sqlx::query(RECORDS_PAGE)
            .bind(&after.0)
            .bind(&after.1)
            .bind(1_000i64)
            .fetch_all(registry.pool())
            .await?
            .iter()
            .map(record_row)
            .collect();
        let Some(last) = rows.last() else { break };
        after = (last.grant_id.clone(), last.record_key.clone());
        for row in rows {
            let Ok(mut value) = serde_json::from_str::<Value>(&row.value) else {
                continue;
            };
            visit_strings(&mut value, &mut |text: &mut String| {
                if let Some(parts) = sealed_parts(text) {
                    let count = census.by_key.entry(parts.key_id.to_string()).or_default();
                    count.records += 1;
                    count.v1 += u64::from(parts.purpose.is_none());
                }
            });
        }
    }
    let parked = sqlx::query("SELECT payload_sealed FROM connector_parked WHERE expires_at >= $1")
        .bind(now_ms())
        .fetch_all(registry.pool())
        .await?;
    for r in &parked {
        let sealed: String = r.get("payload_sealed");
        if let Some(parts) = sealed_parts(&sealed) {
            let count = census.by_key.entry(parts.key_id.to_string()).or_default();
            count.parked += 1;
            count.v1 += u64::from(parts.purpose.is_none());
        }
    }
    Ok(census)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate_key;

    struct Fixture {
        _dir: tempfile::TempDir,
        registry: Registry,
    }

    /// A SQLite registry with two firms, each with a grant of `demo-connector`.
    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("registry.db").display());
        let registry = Registry::connect_and_migrate(&url).await.unwrap();
        for firm in ["firm-a", "firm-b"] {
            sqlx::query("INSERT INTO firms (id, name, data_url, created_at) VALUES ($1, $1, 'sqlite://x', 0)")
                .bind(firm)
                .execute(registry.pool())
                .await
                .unwrap();
            sqlx::query("INSERT INTO grants (id, firm_id, connector, enabled, schema_hash, contract_version, updated_at) VALUES ($1, $2, 'demo-connector', 1, 'h', '1', 0)")
                .bind(format!("grant-{firm}"))
                .bind(firm)
                .execute(registry.pool())
                .await
                .unwrap();
        }
        Fixture {
            _dir: dir,
            registry,
        }
    }

    fn bound(purpose: &str, firm: &str, row: &str) -> String {
        binding(
            "demo-connector",
            purpose,
            firm,
            &format!("grant-{firm}"),
            row,
        )
    }

    async fn put(registry: &Registry, firm: &str, key: &str, value: Value) {
        registry
            .write_records(
                &format!("grant-{firm}"),
                firm,
                "demo-connector",
                &[crate::registry::connector_records::RecordChange::Put(
                    key.into(),
                    value.to_string(),
                )],
            )
            .await
            .unwrap();
    }

    async fn value(registry: &Registry, firm: &str, key: &str) -> (Value, i64) {
        let (_, text, version) = registry
            .record(&format!("grant-{firm}"), key)
            .await
            .unwrap()
            .unwrap();
        (serde_json::from_str(&text).unwrap(), version)
    }

    #[tokio::test]
    async fn rotation_reseals_v1_and_v2_values_and_leaves_a_copied_one() {
        let f = fixture().await;
        let old = generate_key();
        let new = generate_key();
        let before = Keyring::parse(&old).unwrap();
        let token = before
            .seal(
                "refresh-token",
                &bound("refresh-token", "firm-a", "connection/u1"),
                b"1//a",
            )
            .unwrap();
        let legacy = crate::keys::tests::seal_v1(
            &before,
            &bound("event-secret", "firm-a", "secret"),
            b"legacy secret",
        );
        put(
            &f.registry,
            "firm-a",
            "connection/u1",
            serde_json::json!({"status": "active", "tokens": [token.clone()], "plain": "v2.is-not-sealed"}),
        )
        .await;
        put(
            &f.registry,
            "firm-a",
            "secret",
            serde_json::json!({ "sealed": legacy }),
        )
        .await;
        // Firm A's token copied into firm B's record: it must not be re-sealed there.
        put(
            &f.registry,
            "firm-b",
            "connection/u9",
            serde_json::json!({ "refresh_token_sealed": token }),
        )
        .await;
        let parked = before
            .seal(
                PARKED_PURPOSE,
                &bound(PARKED_PURPOSE, "firm-b", "state-hash"),
                b"verifier",
            )
            .unwrap();
        f.registry
            .park_consent(
                "state-hash",
                &crate::registry::connector_records::ParkedRow {
                    grant_id: "grant-firm-b".into(),
                    firm_id: "firm-b".into(),
                    principal: "session:s".into(),
                    payload_sealed: parked,
                },
                "demo-connector",
                now_ms() + 60_000,
            )
            .await
            .unwrap();

        let rotated = Keyring::parse(&format!("{new}\n{old}")).unwrap();
        let old_id = before.primary_id().to_string();
        assert_eq!(census(&f.registry).await.unwrap().of(&old_id).total(), 4);
        let purposes = V1Purposes::from([(
            "demo-connector".to_string(),
            vec!["refresh-token".to_string(), "event-secret".to_string()],
        )]);
        let (_, version_before) = value(&f.registry, "firm-a", "connection/u1").await;
        let report = reseal(&f.registry, &rotated, &purposes, 1).await.unwrap();
        assert_eq!(report.values_resealed, 2, "{report:?}");
        assert_eq!(report.parked_resealed, 1);
        assert_eq!(report.unopened, 1, "the copied token does not open");
        assert!(report.unopened_described[0].contains("firm-b"));
        assert_eq!(report.left, 1);

        let only_new = Keyring::parse(&new).unwrap();
        let (conn, version_after) = value(&f.registry, "firm-a", "connection/u1").await;
        assert_eq!(version_after, version_before + 1);
        assert_eq!(conn["plain"], "v2.is-not-sealed");
        let resealed = conn["tokens"][0].as_str().unwrap();
        assert!(resealed.starts_with(&format!("v2.{}.refresh-token.", only_new.primary_id())));
        assert_eq!(
            only_new
                .open(
                    "refresh-token",
                    &bound("refresh-token", "firm-a", "connection/u1"),
                    resealed
                )
                .unwrap(),
            b"1//a"
        );
        let (secret, _) = value(&f.registry, "firm-a", "secret").await;
        assert_eq!(
            only_new
                .open(
                    "event-secret",
                    &bound("event-secret", "firm-a", "secret"),
                    secret["sealed"].as_str().unwrap()
                )
                .unwrap(),
            b"legacy secret",
            "a v1 value is re-sealed in the current form"
        );
        let census = census(&f.registry).await.unwrap();
        assert_eq!(census.of(&old_id).total(), 1, "only the copy is left");
        assert_eq!(census.of(only_new.primary_id()).total(), 3);
        assert_eq!(census.not_under(only_new.primary_id()), 1);

        // Nothing to do the second time but the copy.
        let again = reseal(&f.registry, &rotated, &purposes, 200).await.unwrap();
        assert_eq!((again.values_resealed, again.records_updated), (0, 0));
        assert_eq!(again.unopened, 1);
    }
}
