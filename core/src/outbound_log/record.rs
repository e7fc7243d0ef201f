//! One outbound-log record, its canonical form and its chain hash.
//!
//! The chain hash is HMAC-SHA256, under the log key derived from the master
//! key named by `mac_key`, of the record's canonical form (a JSON array of
//! every field but `hash` and `mac_key`, in a fixed order; the predecessor's
//! hash is one of them). Someone who can write the registry but does not hold
//! the master key cannot produce a record that verifies. Records written
//! before the chain was keyed carry the plain SHA-256 of the same canonical
//! form and an empty `mac_key`; they are re-chained under the key once.

use crate::keyed_chain::{canonical_into, check_hash, keyed_hash};
pub use crate::keyed_chain::{HashProblem, GENESIS_HASH};
use crate::keys::{LogKey, LogKeys};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

pub(crate) const COLUMNS: &str = "firm_id, seq, kind, at, grant_id, connector, direction, method, target, fields, record_ids, payload_sha256, bytes, send_seq, status, latency_us, prev_hash, hash, mac_key";

/// Which way firm data moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Firm data leaving for a third party.
    Outbound,
    /// Third-party data written into the firm's database (e.g. a posted fee).
    Inbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

/// What a caller says about data that is about to move.
#[derive(Debug, Clone)]
pub struct NewSend {
    pub firm_id: String,
    pub grant_id: String,
    pub connector: String,
    pub direction: Direction,
    pub method: String,
    /// Where the data goes (URL or route), without secrets or tokens.
    pub target: String,
    /// Names of the fields in the payload.
    pub fields: Vec<String>,
    /// Ids of the records in the payload.
    pub record_ids: Vec<String>,
    /// The exact bytes that will leave; only their hash and length are kept.
    pub payload: Vec<u8>,
}

/// A stored record, as exported (one JSON line each) and as hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub firm_id: String,
    pub seq: i64,
    /// `send` (committed before the data moves) or `result` (status and latency).
    pub kind: String,
    pub at: i64,
    pub grant_id: String,
    pub connector: String,
    pub direction: String,
    pub method: String,
    pub target: String,
    pub fields: Vec<String>,
    pub record_ids: Vec<String>,
    pub payload_sha256: String,
    pub bytes: i64,
    /// For a `result`: the `seq` of the send it completes.
    pub send_seq: Option<i64>,
    pub status: Option<i64>,
    pub latency_us: Option<i64>,
    pub prev_hash: String,
    pub hash: String,
    /// Id of the master key whose derived log key chained this record ('' = plain SHA-256, pre-keying).
    #[serde(default)]
    pub mac_key: String,
}

/// The canonical form, serialized straight into a hasher (no intermediate JSON value).
struct Canonical<'a>(&'a LogRecord);

impl Serialize for Canonical<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut t = serializer.serialize_tuple(17)?;
        t.serialize_element(&r.firm_id)?;
        t.serialize_element(&r.seq)?;
        t.serialize_element(&r.kind)?;
        t.serialize_element(&r.at)?;
        t.serialize_element(&r.grant_id)?;
        t.serialize_element(&r.connector)?;
        t.serialize_element(&r.direction)?;
        t.serialize_element(&r.method)?;
        t.serialize_element(&r.target)?;
        t.serialize_element(&r.fields)?;
        t.serialize_element(&r.record_ids)?;
        t.serialize_element(&r.payload_sha256)?;
        t.serialize_element(&r.bytes)?;
        t.serialize_element(&r.send_seq)?;
        t.serialize_element(&r.status)?;
        t.serialize_element(&r.latency_us)?;
        t.serialize_element(&r.prev_hash)?;
        t.end()
    }
}

/// The canonical form of `record`, for serializing into a hasher.
#[cfg(test)]
pub(super) fn canonical(record: &LogRecord) -> impl Serialize + '_ {
    Canonical(record)
}

impl LogRecord {
    /// The plain SHA-256 of the canonical form: the chain hash of records
    /// written before the chain was keyed (checked once, when they are re-keyed).
    pub fn plain_hash(&self) -> String {
        let mut h = Sha256::new();
        canonical_into(&Canonical(self), |b| h.update(b));
        hex::encode(h.finalize())
    }

    /// The keyed chain hash under `key`.
    pub fn keyed_hash(&self, key: &LogKey) -> String {
        keyed_hash(key, &Canonical(self))
    }

    /// Chains this record under `key`: sets `mac_key` and `hash`.
    pub fn seal(&mut self, key: &LogKey) {
        self.mac_key = key.id().to_string();
        self.hash = self.keyed_hash(key);
    }

    /// Checks `hash` against the contents under the key `mac_key` names.
    pub fn check_hash(&self, keys: &LogKeys) -> Result<(), HashProblem> {
        check_hash(keys, &self.mac_key, &self.hash, &Canonical(self))
    }

    /// Decodes a row selected with the log's columns (unreadable lists decode as a marker the hash will reject).
    pub fn from_row(row: &sqlx::any::AnyRow) -> Self {
        let list = |name: &str| -> Vec<String> {
            serde_json::from_str(&row.get::<String, _>(name))
                .unwrap_or_else(|_| vec!["<unreadable>".into()])
        };
        LogRecord {
            firm_id: row.get("firm_id"),
            seq: row.get("seq"),
            kind: row.get("kind"),
            at: row.get("at"),
            grant_id: row.get("grant_id"),
            connector: row.get("connector"),
            direction: row.get("direction"),
            method: row.get("method"),
            target: row.get("target"),
            fields: list("fields"),
            record_ids: list("record_ids"),
            payload_sha256: row.get("payload_sha256"),
            bytes: row.get("bytes"),
            send_seq: row.get("send_seq"),
            status: row.get("status"),
            latency_us: row.get("latency_us"),
            prev_hash: row.get("prev_hash"),
            hash: row.get("hash"),
            mac_key: row.get("mac_key"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LogRecord {
        LogRecord {
            firm_id: "alpha-law".into(),
            seq: 3,
            kind: "result".into(),
            at: 1_790_000_000_000,
            grant_id: "gr_1".into(),
            connector: "accounting".into(),
            direction: "outbound".into(),
            method: "GET".into(),
            target: "/v1/matters \"quoted\" \u{e9}".into(),
            fields: vec!["id".into(), "name".into()],
            record_ids: vec![],
            payload_sha256: "ab".repeat(32),
            bytes: 12,
            send_seq: Some(2),
            status: Some(200),
            latency_us: None,
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
            mac_key: String::new(),
        }
    }

    #[test]
    fn the_plain_hash_is_the_pre_keying_format() {
        // The exact form records were hashed in before the chain was keyed.
        let r = sample();
        let old = serde_json::json!([
            r.firm_id,
            r.seq,
            r.kind,
            r.at,
            r.grant_id,
            r.connector,
            r.direction,
            r.method,
            r.target,
            r.fields,
            r.record_ids,
            r.payload_sha256,
            r.bytes,
            r.send_seq,
            r.status,
            r.latency_us,
            r.prev_hash,
        ]);
        let expected = hex::encode(Sha256::digest(serde_json::to_vec(&old).unwrap()));
        assert_eq!(r.plain_hash(), expected);
    }

    #[test]
    fn keyed_hashes_need_the_key() {
        let keyring = crate::keys::Keyring::ephemeral();
        let keys = keyring.log_keys();
        let mut r = sample();
        r.seal(keys.current());
        assert_eq!(r.check_hash(&keys), Ok(()));
        assert_ne!(r.hash, r.plain_hash());
        let other = crate::keys::Keyring::ephemeral().log_keys();
        assert_eq!(r.check_hash(&other), Err(HashProblem::UnknownKey));
        // Someone without the key re-signs under another key but claims ours.
        let mut forged = r.clone();
        forged.bytes += 1;
        forged.hash = forged.keyed_hash(other.current());
        assert_eq!(forged.check_hash(&keys), Err(HashProblem::Mismatch));
        let mut plain = r.clone();
        plain.mac_key.clear();
        plain.hash = plain.plain_hash();
        assert_eq!(plain.check_hash(&keys), Err(HashProblem::Unkeyed));
    }
}
