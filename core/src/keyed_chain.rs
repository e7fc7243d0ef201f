//! The keyed hash chain both tamper-evident logs share (the outbound log and
//! the access trail): a link's hash is HMAC-SHA256, under the chain key
//! derived from the master key (`keys::LogKey`), of the link's canonical form
//! (a JSON value serialized straight into the MAC, its predecessor's hash one
//! of its parts), and is checked in constant time under the key it names.

use crate::keys::{LogKey, LogKeys};
use hmac::Mac;
use serde::Serialize;

/// The `prev_hash` of a chain's first link.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Why a link's hash cannot be checked or does not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashProblem {
    /// Chained with the plain hash: never re-keyed, or rewritten without the key.
    Unkeyed,
    /// Keyed with a master key this gateway does not hold.
    UnknownKey,
    /// The keyed hash does not match the contents.
    Mismatch,
}

/// Feeds written bytes to a hash function.
pub(crate) struct Feed<F: FnMut(&[u8])>(pub F);

impl<F: FnMut(&[u8])> std::io::Write for Feed<F> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (self.0)(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serializes `canonical` as JSON into `feed` (no intermediate buffer).
pub(crate) fn canonical_into(canonical: &impl Serialize, feed: impl FnMut(&[u8])) {
    serde_json::to_writer(Feed(feed), canonical).expect("writing to a hasher cannot fail");
}

/// The keyed hash (hex) of `canonical` under `key`.
pub fn keyed_hash(key: &LogKey, canonical: &impl Serialize) -> String {
    // Serialized whole first and fed to the MAC in one call: serde_json writes
    // token by token, and a MAC update per token cost more than the hashing.
    let mut text = Vec::with_capacity(4096);
    serde_json::to_writer(&mut text, canonical).expect("writing to memory cannot fail");
    keyed_hash_bytes(key, &text)
}

/// The keyed hash (hex) of a canonical form already serialized.
pub fn keyed_hash_bytes(key: &LogKey, canonical: &[u8]) -> String {
    let mut mac = key.mac();
    mac.update(canonical);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks `hash` against `canonical` under the key `mac_key` names.
pub fn check_hash(
    keys: &LogKeys,
    mac_key: &str,
    hash: &str,
    canonical: &impl Serialize,
) -> Result<(), HashProblem> {
    let mut bytes = Vec::with_capacity(512);
    canonical_into(canonical, |b| bytes.extend_from_slice(b));
    check_hash_bytes(keys, mac_key, hash, &bytes)
}

/// Checks `hash` against a canonical form already serialized (`canonical`)
/// under the key `mac_key` names.
pub fn check_hash_bytes(
    keys: &LogKeys,
    mac_key: &str,
    hash: &str,
    canonical: &[u8],
) -> Result<(), HashProblem> {
    if mac_key.is_empty() {
        return Err(HashProblem::Unkeyed);
    }
    let key = keys.get(mac_key).ok_or(HashProblem::UnknownKey)?;
    let mut mac = key.mac();
    mac.update(canonical);
    let mut expected = [0u8; 32];
    match hex::decode_to_slice(hash, &mut expected) {
        // Constant-time comparison of the tags.
        Ok(()) if mac.verify_slice(&expected).is_ok() => Ok(()),
        _ => Err(HashProblem::Mismatch),
    }
}
