//! Per-grant pseudonymous record ids. Each grant sees the firm's record ids
//! (UUIDs) through AES-128 under a key of its own, over the 16 bytes of the
//! UUID: reversible by the gateway, unlinkable across grants, and stable for
//! the grant's life, so a vendor's stored references survive credential
//! rotation and switching the connector off and on (the grant row, and its
//! key, stay).
//!
//! The key is random, made on first use, and kept sealed with the master
//! keyring in the grant's records (`connector_records`, key
//! [`KEY_RECORD`], purpose [`PURPOSE`], bound like a connector's own sealed
//! values), so `scopegate keys rotate` re-seals it with everything else and a
//! firm's purge deletes it with its records. It is not derived from the master
//! key because that key rotates, and the ids a vendor holds must not.

use crate::binding::binding;
use crate::keys::{KeyError, Keyring};
use crate::registry::connector_records::RecordChange;
use crate::registry::{Registry, StoreError};
use aes::cipher::{generic_array::GenericArray, BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes128;
use lru::LruCache;
use rand::RngCore;
use secrecy::zeroize::Zeroizing;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

/// Grant records under this prefix are the gateway's own: a connector can
/// neither read, write, seal nor open them (see `capabilities::records`).
pub const CORE_RECORDS: &str = "core.";
/// The grant record that holds the sealed key.
pub const KEY_RECORD: &str = "core.pseudonym-key";
/// The purpose the key is sealed for.
pub const PURPOSE: &str = "pseudonym-key";
/// Grants whose opened key is kept in memory.
const CACHED: usize = 4096;

/// Why a grant's mapping could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PseudonymError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the pseudonym key of grant {grant_id} does not open: {source}")]
    Key { grant_id: String, source: KeyError },
    #[error("the pseudonym key record of grant {0} is damaged")]
    Damaged(String),
}

/// One grant's view of record ids.
#[derive(Clone)]
pub struct GrantPseudonyms {
    cipher: Aes128,
}

impl GrantPseudonyms {
    fn from_key(key: &[u8; 16]) -> Self {
        Self {
            cipher: Aes128::new(GenericArray::from_slice(key)),
        }
    }

    /// The id this grant sees for the firm record `real`; `None` unless `real` is a UUID.
    pub fn disguise(&self, real: &str) -> Option<String> {
        let id = uuid::Uuid::parse_str(real).ok()?;
        let mut block = GenericArray::from(*id.as_bytes());
        self.cipher.encrypt_block(&mut block);
        Some(
            uuid::Uuid::from_bytes(block.into())
                .hyphenated()
                .to_string(),
        )
    }

    /// The firm record id behind `shown`; `None` unless `shown` is a UUID.
    /// Any UUID maps to some id: whether a record has it is the caller's question.
    pub fn reveal(&self, shown: &str) -> Option<String> {
        let id = uuid::Uuid::parse_str(shown).ok()?;
        let mut block = GenericArray::from(*id.as_bytes());
        self.cipher.decrypt_block(&mut block);
        Some(
            uuid::Uuid::from_bytes(block.into())
                .hyphenated()
                .to_string(),
        )
    }
}

/// The grant a mapping is for.
pub struct GrantRef<'a> {
    pub firm_id: &'a str,
    pub grant_id: &'a str,
    pub connector: &'a str,
}

impl GrantRef<'_> {
    fn binding(&self) -> String {
        binding(
            self.connector,
            PURPOSE,
            self.firm_id,
            self.grant_id,
            KEY_RECORD,
        )
    }
}

/// Every grant's mapping: made on first use, opened once per process.
#[derive(Clone)]
pub struct Pseudonyms {
    registry: Registry,
    keyring: Arc<Keyring>,
    cache: Arc<Mutex<LruCache<String, GrantPseudonyms>>>,
}

impl Pseudonyms {
    pub fn new(registry: Registry, keyring: Arc<Keyring>) -> Self {
        Self {
            registry,
            keyring,
            cache: Arc::new(Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHED).expect("non-zero"),
            ))),
        }
    }

    /// The grant's mapping, its key made now if it has none yet.
    pub async fn for_grant(&self, grant: &GrantRef<'_>) -> Result<GrantPseudonyms, PseudonymError> {
        if let Some(found) = self.cached(grant.grant_id) {
            return Ok(found);
        }
        loop {
            if let Some(found) = self.existing(grant).await? {
                return Ok(found);
            }
            let mut key = Zeroizing::new([0u8; 16]);
            rand::rngs::OsRng.fill_bytes(key.as_mut());
            let sealed = self
                .keyring
                .seal(PURPOSE, &grant.binding(), key.as_ref())
                .map_err(|source| PseudonymError::Key {
                    grant_id: grant.grant_id.to_string(),
                    source,
                })?;
            let value = serde_json::json!({ "key": sealed }).to_string();
            // Insert-if-absent: another instance making one at the same time wins, and we read it.
            self.registry
                .write_records(
                    grant.grant_id,
                    grant.firm_id,
                    grant.connector,
                    &[RecordChange::Swap(KEY_RECORD.to_string(), value, None)],
                )
                .await?;
        }
    }

    /// The grant's mapping if it has a key (it has shown ids to someone).
    pub async fn existing(
        &self,
        grant: &GrantRef<'_>,
    ) -> Result<Option<GrantPseudonyms>, PseudonymError> {
        if let Some(found) = self.cached(grant.grant_id) {
            return Ok(Some(found));
        }
        let Some((_, text, _)) = self.registry.record(grant.grant_id, KEY_RECORD).await? else {
            return Ok(None);
        };
        let damaged = || PseudonymError::Damaged(grant.grant_id.to_string());
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|_| damaged())?;
        let sealed = value["key"].as_str().ok_or_else(damaged)?;
        let opened = Zeroizing::new(
            self.keyring
                .open(PURPOSE, &grant.binding(), sealed)
                .map_err(|source| PseudonymError::Key {
                    grant_id: grant.grant_id.to_string(),
                    source,
                })?,
        );
        let key: [u8; 16] = opened.as_slice().try_into().map_err(|_| damaged())?;
        let mapping = GrantPseudonyms::from_key(&key);
        self.cache
            .lock()
            .expect("pseudonym cache")
            .put(grant.grant_id.to_string(), mapping.clone());
        Ok(Some(mapping))
    }

    fn cached(&self, grant_id: &str) -> Option<GrantPseudonyms> {
        self.cache
            .lock()
            .expect("pseudonym cache")
            .get(grant_id)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_two_keys_disagree() {
        let a = GrantPseudonyms::from_key(&[1; 16]);
        let b = GrantPseudonyms::from_key(&[2; 16]);
        let real = uuid::Uuid::new_v4().to_string();
        let shown = a.disguise(&real).unwrap();
        assert_ne!(shown, real);
        assert_eq!(a.reveal(&shown).unwrap(), real);
        assert_ne!(b.disguise(&real).unwrap(), shown);
        assert_ne!(b.reveal(&shown).unwrap(), real);
        assert_eq!(a.disguise("not-a-uuid"), None);
        assert_eq!(a.reveal(&shown.to_uppercase()).unwrap(), real);
    }
}
