//! One access-trail entry: its fixed vocabulary of kinds, its canonical form
//! and its keyed chain hash.

use crate::keyed_chain::{check_hash, keyed_hash, HashProblem};
use crate::keys::{LogKey, LogKeys};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// The chain of events that belong to no firm (no firm id can start with `@`).
pub const OPERATOR_CHAIN: &str = "@operator";

pub(crate) const COLUMNS: &str =
    "chain, seq, at, kind, actor, origin, what, prev_hash, hash, mac_key";

/// Domain separation: a trail entry's hash can be mistaken for no other.
const DOMAIN: &str = "scopegate access trail v1";

/// What happened: the fixed vocabulary of the trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    LoginSucceeded,
    LoginFailed,
    Handoff,
    UserAdded,
    UserDisabled,
    PasswordReset,
    CredentialIssued,
    CredentialRotated,
    CredentialRevoked,
    TokenIssued,
    GrantSwitched,
    MinimisationChanged,
    TripwirePlanted,
    KeyRotated,
    FirmTerminated,
    FirmPurged,
}

impl Kind {
    pub const ALL: [Kind; 16] = [
        Kind::LoginSucceeded,
        Kind::LoginFailed,
        Kind::Handoff,
        Kind::UserAdded,
        Kind::UserDisabled,
        Kind::PasswordReset,
        Kind::CredentialIssued,
        Kind::CredentialRotated,
        Kind::CredentialRevoked,
        Kind::TokenIssued,
        Kind::GrantSwitched,
        Kind::MinimisationChanged,
        Kind::TripwirePlanted,
        Kind::KeyRotated,
        Kind::FirmTerminated,
        Kind::FirmPurged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::LoginSucceeded => "login_succeeded",
            Kind::LoginFailed => "login_failed",
            Kind::Handoff => "handoff",
            Kind::UserAdded => "user_added",
            Kind::UserDisabled => "user_disabled",
            Kind::PasswordReset => "password_reset",
            Kind::CredentialIssued => "credential_issued",
            Kind::CredentialRotated => "credential_rotated",
            Kind::CredentialRevoked => "credential_revoked",
            Kind::TokenIssued => "token_issued",
            Kind::GrantSwitched => "grant_switched",
            Kind::MinimisationChanged => "minimisation_changed",
            Kind::TripwirePlanted => "tripwire_planted",
            Kind::KeyRotated => "key_rotated",
            Kind::FirmTerminated => "firm_terminated",
            Kind::FirmPurged => "firm_purged",
        }
    }

    /// The kind a name stands for, if it is one.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// An event about to be recorded.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// A firm id, or [`OPERATOR_CHAIN`].
    pub chain: String,
    pub kind: Kind,
    pub actor: String,
    pub origin: String,
    pub what: serde_json::Value,
}

/// Longest actor and origin kept (longer ones are cut: they may be typed by anyone).
const MAX_ACTOR: usize = 200;
const MAX_ORIGIN: usize = 64;
/// Longest string value kept in `what`.
const MAX_VALUE: usize = 200;

fn bounded(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// `what` with every string cut to [`MAX_VALUE`] characters.
fn bounded_what(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(bounded(&s, MAX_VALUE)),
        Value::Array(items) => Value::Array(items.into_iter().map(bounded_what).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (bounded(&k, MAX_VALUE), bounded_what(v)))
                .collect(),
        ),
        other => other,
    }
}

impl NewEntry {
    /// An event in `firm_id`'s chain.
    pub fn firm(
        firm_id: &str,
        kind: Kind,
        actor: &str,
        origin: &str,
        what: serde_json::Value,
    ) -> Self {
        Self {
            chain: firm_id.to_string(),
            kind,
            actor: bounded(actor, MAX_ACTOR),
            origin: bounded(origin, MAX_ORIGIN),
            what: bounded_what(what),
        }
    }

    /// An event of no firm, in the operator chain; `actor` is prefixed `operator:`.
    pub fn operator(kind: Kind, actor: &str, origin: &str, what: serde_json::Value) -> Self {
        Self {
            chain: OPERATOR_CHAIN.to_string(),
            kind,
            actor: bounded(&format!("operator:{actor}"), MAX_ACTOR),
            origin: bounded(origin, MAX_ORIGIN),
            what: bounded_what(what),
        }
    }
}

/// A stored entry, as exported (one JSON line each), shown and hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub chain: String,
    pub seq: i64,
    pub at: i64,
    pub kind: String,
    pub actor: String,
    /// Where from: the client address, or `cli` / `serve`.
    pub from: String,
    /// The JSON object, as stored (its exact text is what is hashed).
    pub what: String,
    pub prev_hash: String,
    pub hash: String,
    pub mac_key: String,
}

struct Canonical<'a>(&'a Entry);

impl Serialize for Canonical<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut t = serializer.serialize_tuple(9)?;
        t.serialize_element(DOMAIN)?;
        t.serialize_element(&e.chain)?;
        t.serialize_element(&e.seq)?;
        t.serialize_element(&e.at)?;
        t.serialize_element(&e.kind)?;
        t.serialize_element(&e.actor)?;
        t.serialize_element(&e.from)?;
        t.serialize_element(&e.what)?;
        t.serialize_element(&e.prev_hash)?;
        t.end()
    }
}

impl Entry {
    /// Chains this entry under `key`: sets `mac_key` and `hash`.
    pub fn seal(&mut self, key: &LogKey) {
        self.mac_key = key.id().to_string();
        self.hash = keyed_hash(key, &Canonical(self));
    }

    /// Checks `hash` against the contents under the key `mac_key` names.
    pub fn check_hash(&self, keys: &LogKeys) -> Result<(), HashProblem> {
        check_hash(keys, &self.mac_key, &self.hash, &Canonical(self))
    }

    /// `what` as JSON (`null` if the stored text is not JSON: the hash will say why).
    pub fn what_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.what).unwrap_or(serde_json::Value::Null)
    }

    pub(crate) fn from_row(row: &sqlx::any::AnyRow) -> Self {
        Entry {
            chain: row.get("chain"),
            seq: row.get("seq"),
            at: row.get("at"),
            kind: row.get("kind"),
            actor: row.get("actor"),
            from: row.get("origin"),
            what: row.get("what"),
            prev_hash: row.get("prev_hash"),
            hash: row.get("hash"),
            mac_key: row.get("mac_key"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert_eq!(Kind::parse("login"), None);
    }

    #[test]
    fn typed_text_is_bounded() {
        let long = "x".repeat(10_000);
        let e = NewEntry::firm(
            "alpha-law",
            Kind::LoginFailed,
            &long,
            &long,
            serde_json::json!({ "email": long }),
        );
        assert_eq!(e.actor.len(), MAX_ACTOR);
        assert_eq!(e.origin.len(), MAX_ORIGIN);
        assert_eq!(e.what["email"].as_str().unwrap().len(), MAX_VALUE);
    }

    #[test]
    fn an_entry_verifies_only_as_written() {
        let keys = crate::keys::Keyring::ephemeral().log_keys();
        let mut e = Entry {
            chain: "alpha-law".into(),
            seq: 1,
            at: 5,
            kind: "handoff".into(),
            actor: "a@alpha.example".into(),
            from: "10.0.0.1".into(),
            what: "{\"user_id\":\"u1\"}".into(),
            prev_hash: crate::keyed_chain::GENESIS_HASH.into(),
            hash: String::new(),
            mac_key: String::new(),
        };
        e.seal(keys.current());
        assert_eq!(e.check_hash(&keys), Ok(()));
        let mut edited = e.clone();
        edited.from = "10.0.0.2".into();
        assert_eq!(edited.check_hash(&keys), Err(HashProblem::Mismatch));
        let other = crate::keys::Keyring::ephemeral().log_keys();
        assert_eq!(e.check_hash(&other), Err(HashProblem::UnknownKey));
    }
}
