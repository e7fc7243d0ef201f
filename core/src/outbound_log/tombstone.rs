//! What remains of a purged firm's outbound log: its last seq and hash, when
//! it was terminated and purged and by whom, MAC'ed with the log key. With it
//! `audit verify` tells a purge (which the retention policy requires) from a
//! deletion (which it must report): a checkpoint that saw the firm's chain is
//! satisfied by a tombstone that carries the chain at least that far.

use crate::keys::LogKeys;
use crate::registry::{Registry, StoreResult};
use serde::Serialize;
use sqlx::Row;

/// A purged firm's last word in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tombstone {
    pub firm_id: String,
    pub last_seq: i64,
    pub last_hash: String,
    pub terminated_at: i64,
    pub purged_at: i64,
    pub purged_by: String,
    pub mac_key: String,
    pub mac: String,
}

impl Tombstone {
    fn message(&self) -> String {
        format!(
            "scopegate-tombstone|{}|{}|{}|{}|{}|{}",
            self.firm_id,
            self.last_seq,
            self.last_hash,
            self.terminated_at,
            self.purged_at,
            self.purged_by
        )
    }

    /// Sets `mac_key` and `mac` under the current log key.
    pub fn seal(&mut self, keys: &LogKeys) {
        use hmac::Mac;
        let key = keys.current();
        let mut mac = key.mac();
        mac.update(self.message().as_bytes());
        self.mac_key = key.id().to_string();
        self.mac = hex::encode(mac.finalize().into_bytes());
    }

    /// Whether the MAC holds under the key it names.
    pub fn is_genuine(&self, keys: &LogKeys) -> bool {
        use hmac::Mac;
        let Some(key) = keys.get(&self.mac_key) else {
            return false;
        };
        let Ok(expected) = hex::decode(&self.mac) else {
            return false;
        };
        let mut mac = key.mac();
        mac.update(self.message().as_bytes());
        mac.verify_slice(&expected).is_ok()
    }
}

/// Every tombstone, by firm.
pub async fn tombstones(registry: &Registry) -> StoreResult<Vec<Tombstone>> {
    let rows = sqlx::query("SELECT firm_id, last_seq, last_hash, terminated_at, purged_at, purged_by, mac_key, mac FROM outbound_tombstones ORDER BY firm_id")
        .fetch_all(registry.pool())
        .await?;
    Ok(rows
        .iter()
        .map(|r| Tombstone {
            firm_id: r.get("firm_id"),
            last_seq: r.get("last_seq"),
            last_hash: r.get("last_hash"),
            terminated_at: r.get("terminated_at"),
            purged_at: r.get("purged_at"),
            purged_by: r.get("purged_by"),
            mac_key: r.get("mac_key"),
            mac: r.get("mac"),
        })
        .collect())
}

/// Writes `tombstone` in `tx` (the purge's own transaction).
pub async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    t: &Tombstone,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO outbound_tombstones (firm_id, last_seq, last_hash, terminated_at, purged_at, purged_by, mac_key, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(&t.firm_id)
        .bind(t.last_seq)
        .bind(&t.last_hash)
        .bind(t.terminated_at)
        .bind(t.purged_at)
        .bind(&t.purged_by)
        .bind(&t.mac_key)
        .bind(&t.mac)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
