//! Signed checkpoints of every firm's chain head, kept outside the registry.
//!
//! The keyed chain stops anyone without the master key from forging records,
//! but someone who can write the registry can still delete a chain's last
//! records and set its head back, or delete a firm's whole chain with its head:
//! what is left is a shorter chain that is genuinely keyed. A checkpoint, a
//! line `{"v":1,"at":MS,"key":ID,"heads":[{"firm":..,"seq":..,"hash":..},..],"sig":..}`
//! signed with the Ed25519 key derived from the master key, records where each
//! chain stood at a time; `audit verify --checkpoints` then insists that every
//! checkpointed record is still there with the same hash.
//!
//! Checkpoints are appended (one `write` of a whole line, then `fsync`) to a
//! JSON-lines file, or printed for shipping elsewhere. A last line cut short by
//! a crash mid-append is ignored; any other unreadable, unsigned or wrongly
//! signed line is an error.

use super::record::GENESIS_HASH;
use crate::clock::rfc3339;
use crate::keys::LogKeys;
use crate::registry::{Registry, StoreResult};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const VERSION: u32 = 1;
/// Domain separation: these signatures can be mistaken for no other.
const SIGNING_CONTEXT: &[u8] = b"scopegate outbound-log checkpoint v1\n";

/// One firm's chain head at checkpoint time (`seq` 0: the firm had no records yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub firm: String,
    pub seq: i64,
    pub hash: String,
}

/// What is signed: when, with which master key's derived key, and every firm's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub v: u32,
    pub at: i64,
    pub key: String,
    pub heads: Vec<Head>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedLine {
    v: u32,
    at: i64,
    key: String,
    heads: Vec<Head>,
    sig: String,
}

/// Every registered firm's chain head, read in one statement (one snapshot).
pub async fn current_heads(registry: &Registry) -> StoreResult<Vec<Head>> {
    let rows = sqlx::query(
        "SELECT f.id AS firm, h.seq AS seq, h.hash AS hash FROM firms f LEFT JOIN outbound_chain_heads h ON h.firm_id = f.id ORDER BY f.id",
    )
    .fetch_all(registry.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|row| Head {
            firm: row.get("firm"),
            seq: row.get::<Option<i64>, _>("seq").unwrap_or(0),
            hash: row
                .get::<Option<String>, _>("hash")
                .unwrap_or_else(|| GENESIS_HASH.to_string()),
        })
        .collect())
}

impl Checkpoint {
    /// A checkpoint of `heads` taken now, to be signed with the current log key.
    pub fn new(heads: Vec<Head>, keys: &LogKeys) -> Self {
        Self {
            v: VERSION,
            at: crate::clock::now_ms(),
            key: keys.current().id().to_string(),
            heads,
        }
    }

    fn message(&self) -> Vec<u8> {
        let mut m = SIGNING_CONTEXT.to_vec();
        serde_json::to_writer(&mut m, self).expect("json");
        m
    }

    /// The signed line (no newline). Signs with the key `self.key` names.
    pub fn signed_line(&self, keys: &LogKeys) -> String {
        let key = keys
            .get(&self.key)
            .filter(|k| k.can_sign())
            .unwrap_or_else(|| keys.current());
        let sig = key.sign(&self.message());
        serde_json::to_string(&SignedLine {
            v: self.v,
            at: self.at,
            key: key.id().to_string(),
            heads: self.heads.clone(),
            sig: B64.encode(sig.to_bytes()),
        })
        .expect("json")
    }

    /// Parses and checks one line: the signature must verify under a held key.
    pub fn from_signed_line(line: &str, keys: &LogKeys) -> Result<Self, String> {
        let signed: SignedLine =
            serde_json::from_str(line).map_err(|e| format!("not a checkpoint ({e})"))?;
        if signed.v != VERSION {
            return Err(format!("checkpoint version {} is not supported", signed.v));
        }
        let checkpoint = Checkpoint {
            v: signed.v,
            at: signed.at,
            key: signed.key,
            heads: signed.heads,
        };
        let key = keys.get(&checkpoint.key).ok_or_else(|| {
            format!(
                "signed with master key {}, which this gateway does not hold",
                checkpoint.key
            )
        })?;
        let sig = B64
            .decode(&signed.sig)
            .ok()
            .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
            .ok_or("the signature is malformed")?;
        key.verifying_key()
            .verify_strict(&checkpoint.message(), &sig)
            .map_err(|_| "the signature does not match (forged or edited)".to_string())?;
        Ok(checkpoint)
    }
}

/// Appends one line to a checkpoint file in a single write, then fsyncs it
/// (and, for a new file, its folder).
pub fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    let existed = path.exists();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    file.write_all(&bytes)?;
    file.sync_all()?;
    if !existed {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::File::open(parent)?.sync_all()?;
        }
    }
    Ok(())
}

/// Where a checkpoint said a record stood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub hash: String,
    /// When the checkpoint was taken (Unix ms).
    pub at: i64,
}

impl Mark {
    pub fn describe(&self) -> String {
        format!("the signed checkpoint of {}", rfc3339(self.at))
    }
}

/// Every checkpointed head, per firm and sequence number, from a checkpoint
/// file or a folder of them.
#[derive(Debug, Default)]
pub struct Checkpoints {
    marks: BTreeMap<String, BTreeMap<i64, Mark>>,
    /// Checkpoint lines read and verified.
    pub lines: u64,
    /// Last lines ignored because a crash cut them short.
    pub incomplete: u64,
}

impl Checkpoints {
    /// Reads and checks every line of `path` (a file, or every file in a folder, by name).
    pub fn load(path: &Path, keys: &LogKeys) -> Result<Self, String> {
        let files: Vec<PathBuf> = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("cannot read checkpoint folder {}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            files
        } else {
            vec![path.to_path_buf()]
        };
        let mut all = Checkpoints::default();
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read checkpoint file {}: {e}", file.display()))?;
            let complete = text.ends_with('\n');
            let lines: Vec<&str> = text.lines().collect();
            for (n, line) in lines.iter().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let checkpoint = match Checkpoint::from_signed_line(line, keys) {
                    Ok(c) => c,
                    Err(_) if n + 1 == lines.len() && !complete => {
                        all.incomplete += 1;
                        continue;
                    }
                    Err(e) => {
                        return Err(format!(
                            "checkpoint file {} line {}: {e}",
                            file.display(),
                            n + 1
                        ))
                    }
                };
                all.add(&checkpoint).map_err(|e| {
                    format!("checkpoint file {} line {}: {e}", file.display(), n + 1)
                })?;
                all.lines += 1;
            }
        }
        Ok(all)
    }

    /// Adds a verified checkpoint's heads.
    pub fn add(&mut self, checkpoint: &Checkpoint) -> Result<(), String> {
        for head in &checkpoint.heads {
            let marks = self.marks.entry(head.firm.clone()).or_default();
            match marks.get(&head.seq) {
                Some(seen) if seen.hash != head.hash => {
                    return Err(format!(
                        "firm {} record {} has another hash than in the checkpoint of {} (the registry was rolled back; start a new checkpoint file after a restore)",
                        head.firm,
                        head.seq,
                        rfc3339(seen.at)
                    ))
                }
                Some(_) => {}
                None => {
                    marks.insert(
                        head.seq,
                        Mark {
                            hash: head.hash.clone(),
                            at: checkpoint.at,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// A firm's checkpointed heads, by sequence number.
    pub fn firm(&self, firm_id: &str) -> Option<&BTreeMap<i64, Mark>> {
        self.marks.get(firm_id)
    }

    /// Every firm any checkpoint names.
    pub fn firms(&self) -> impl Iterator<Item = &str> {
        self.marks.keys().map(String::as_str)
    }
}
