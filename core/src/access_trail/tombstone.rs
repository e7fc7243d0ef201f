//! What remains of a purged firm's trail: its last seq and hash and when it
//! was purged, MAC'ed with the chain key, so `audit verify` tells the purge
//! from a deletion of the chain.

use crate::keyed_chain::GENESIS_HASH;
use crate::keys::LogKeys;
use crate::registry::{Registry, StoreResult};
use hmac::Mac;
use serde::Serialize;
use sqlx::{Any, Row, Transaction};

/// A purged chain's last word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrailTombstone {
    pub chain: String,
    pub last_seq: i64,
    pub last_hash: String,
    pub purged_at: i64,
    pub mac_key: String,
    pub mac: String,
}

impl TrailTombstone {
    fn message(&self) -> String {
        format!(
            "scopegate-trail-tombstone|{}|{}|{}|{}",
            self.chain, self.last_seq, self.last_hash, self.purged_at
        )
    }

    fn seal(&mut self, keys: &LogKeys) {
        let key = keys.current();
        let mut mac = key.mac();
        mac.update(self.message().as_bytes());
        self.mac_key = key.id().to_string();
        self.mac = hex::encode(mac.finalize().into_bytes());
    }

    /// Whether the MAC holds under the key it names.
    pub fn is_genuine(&self, keys: &LogKeys) -> bool {
        let (Some(key), Ok(expected)) = (keys.get(&self.mac_key), hex::decode(&self.mac)) else {
            return false;
        };
        let mut mac = key.mac();
        mac.update(self.message().as_bytes());
        mac.verify_slice(&expected).is_ok()
    }
}

/// Deletes `chain` (a purged firm's) in the purge's transaction and leaves
/// its tombstone; returns it.
pub async fn purge_chain_in(
    tx: &mut Transaction<'_, Any>,
    keys: &LogKeys,
    chain: &str,
    now: i64,
) -> Result<TrailTombstone, sqlx::Error> {
    let head = sqlx::query("SELECT seq, hash FROM access_trail_heads WHERE chain = $1")
        .bind(chain)
        .fetch_optional(&mut **tx)
        .await?;
    let (last_seq, last_hash) = head
        .map(|h| (h.get::<i64, _>("seq"), h.get::<String, _>("hash")))
        .unwrap_or((0, GENESIS_HASH.to_string()));
    let mut t = TrailTombstone {
        chain: chain.to_string(),
        last_seq,
        last_hash,
        purged_at: now,
        mac_key: String::new(),
        mac: String::new(),
    };
    t.seal(keys);
    sqlx::query("INSERT INTO access_trail_tombstones (chain, last_seq, last_hash, purged_at, mac_key, mac) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&t.chain)
        .bind(t.last_seq)
        .bind(&t.last_hash)
        .bind(t.purged_at)
        .bind(&t.mac_key)
        .bind(&t.mac)
        .execute(&mut **tx)
        .await?;
    for sql in [
        "DELETE FROM access_trail WHERE chain = $1",
        "DELETE FROM access_trail_heads WHERE chain = $1",
    ] {
        sqlx::query(sql).bind(chain).execute(&mut **tx).await?;
    }
    Ok(t)
}

/// Every trail tombstone, by chain.
pub async fn tombstones(registry: &Registry) -> StoreResult<Vec<TrailTombstone>> {
    let rows = sqlx::query("SELECT chain, last_seq, last_hash, purged_at, mac_key, mac FROM access_trail_tombstones ORDER BY chain")
        .fetch_all(registry.pool())
        .await?;
    Ok(rows
        .iter()
        .map(|r| TrailTombstone {
            chain: r.get("chain"),
            last_seq: r.get("last_seq"),
            last_hash: r.get("last_hash"),
            purged_at: r.get("purged_at"),
            mac_key: r.get("mac_key"),
            mac: r.get("mac"),
        })
        .collect())
}
