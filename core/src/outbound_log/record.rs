//! One outbound-log record, its canonical form and its chain hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// The `prev_hash` of a firm's first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub(crate) const COLUMNS: &str = "firm_id, seq, kind, at, grant_id, connector, direction, method, target, fields, record_ids, payload_sha256, bytes, send_seq, status, latency_us, prev_hash, hash";

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
}

impl LogRecord {
    /// SHA-256 over every field but `hash`, in a fixed order.
    pub fn compute_hash(&self) -> String {
        let canonical = serde_json::json!([
            self.firm_id,
            self.seq,
            self.kind,
            self.at,
            self.grant_id,
            self.connector,
            self.direction,
            self.method,
            self.target,
            self.fields,
            self.record_ids,
            self.payload_sha256,
            self.bytes,
            self.send_seq,
            self.status,
            self.latency_us,
            self.prev_hash,
        ]);
        hex::encode(Sha256::digest(
            serde_json::to_vec(&canonical).expect("json"),
        ))
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
        }
    }
}
