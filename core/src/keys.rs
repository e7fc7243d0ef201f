//! The master keyring: AEAD (XChaCha20-Poly1305) encryption of third-party
//! secrets the gateway must store (e.g. refresh tokens). Each ciphertext names
//! the id of the key that sealed it, so keys can rotate: the first key in the
//! file seals, every listed key opens. A key file holds one base64 key per line.
//!
//! Each master key also yields, by HKDF-SHA256 with fixed labels, the keys that
//! make the outbound log tamper-evident ([`LogKeys`]): an HMAC-SHA256 key that
//! chains the records and an Ed25519 key that signs checkpoints of the chain
//! heads. They carry the master key's id, so a rotated keyring still verifies
//! what older keys chained and signed.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};
use std::path::Path;

/// One 256-bit key and its public id.
struct Key {
    id: String,
    secret: SecretBox<[u8; 32]>,
}

/// The keys this gateway holds; the first seals.
pub struct Keyring {
    keys: Vec<Key>,
}

/// Why a keyring or a ciphertext could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("no master key: set SCOPEGATE_MASTER_KEY or --master-key-file (create one with `scopegate keys generate`)")]
    Missing,
    #[error("master key file {0}: {1}")]
    File(String, String),
    #[error("master key line {0} is not 32 bytes of base64")]
    Malformed(usize),
    #[error("the ciphertext was sealed with key {0}, which this gateway does not hold")]
    UnknownKey(String),
    #[error("the ciphertext is damaged or was not sealed for this purpose")]
    Damaged,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.id))
            .finish()
    }
}

/// A fresh key, base64, for `scopegate keys generate`.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}

impl Keyring {
    /// Parses key text: one base64 key per line, blank lines and `#` comments ignored.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bytes = B64.decode(line).map_err(|_| KeyError::Malformed(n + 1))?;
            let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed(n + 1))?;
            let id = hex::encode(&Sha256::digest(bytes)[..4]);
            keys.push(Key {
                id,
                secret: SecretBox::new(Box::new(bytes)),
            });
        }
        if keys.is_empty() {
            return Err(KeyError::Missing);
        }
        Ok(Self { keys })
    }

    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyError::File(path.display().to_string(), e.to_string()))?;
        Self::parse(&text)
    }

    /// A throwaway keyring for `scopegate demo` only.
    pub fn ephemeral() -> Self {
        Self::parse(&generate_key()).expect("fresh key parses")
    }

    pub fn primary_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Whether a key with this id (the first 4 bytes of its SHA-256, hex) is held.
    pub fn holds(&self, key_id: &str) -> bool {
        self.keys.iter().any(|k| k.id == key_id)
    }

    /// The outbound log's keys, derived from every held master key (first = current).
    pub fn log_keys(&self) -> LogKeys {
        LogKeys {
            keys: self
                .keys
                .iter()
                .map(|k| {
                    let master = k.secret.expose_secret();
                    let mac_key = derive(master, LABEL_CHAIN_MAC);
                    let seed = derive(master, LABEL_CHECKPOINT_SIGNING);
                    LogKey {
                        id: k.id.clone(),
                        mac: <Hmac<Sha256> as Mac>::new_from_slice(&mac_key)
                            .expect("HMAC takes any key length"),
                        signing: SigningKey::from_bytes(&seed),
                    }
                })
                .collect(),
        }
    }

    /// Seals `plaintext`, binding it to `purpose` (associated data).
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> String {
        let key = &self.keys[0];
        let cipher = XChaCha20Poly1305::new(key.secret.expose_secret().into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: purpose.as_bytes(),
                },
            )
            .expect("encryption cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        format!("v1.{}.{}", key.id, B64.encode(out))
    }

    /// Opens what `seal` produced with any held key.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, KeyError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some("v1"), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(KeyError::Damaged);
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| KeyError::UnknownKey(id.to_string()))?;
        let bytes = B64.decode(body).map_err(|_| KeyError::Damaged)?;
        if bytes.len() < 24 {
            return Err(KeyError::Damaged);
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        XChaCha20Poly1305::new(key.secret.expose_secret().into())
            .decrypt(
                nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| KeyError::Damaged)
    }
}

/// HKDF labels: changing one orphans every record chained or checkpoint signed with it.
const LABEL_CHAIN_MAC: &str = "scopegate outbound-log chain HMAC-SHA256 v1";
const LABEL_CHECKPOINT_SIGNING: &str = "scopegate outbound-log checkpoint Ed25519 v1";

fn derive(master: &[u8; 32], label: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(None, master)
        .expand(label.as_bytes(), &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

/// The outbound log's keys, one per master key; the first chains and signs.
pub struct LogKeys {
    keys: Vec<LogKey>,
}

/// One master key's log keys: HMAC-SHA256 for the chain, Ed25519 for checkpoints.
pub struct LogKey {
    id: String,
    /// Keyed once (the padded key blocks precomputed); cloned per record.
    mac: Hmac<Sha256>,
    signing: SigningKey,
}

impl std::fmt::Debug for LogKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.id))
            .finish()
    }
}

impl LogKeys {
    /// The key new records are chained with and checkpoints signed with.
    pub fn current(&self) -> &LogKey {
        &self.keys[0]
    }

    /// The key derived from the master key with this id, if held.
    pub fn get(&self, key_id: &str) -> Option<&LogKey> {
        self.keys.iter().find(|k| k.id == key_id)
    }
}

impl LogKey {
    /// The id of the master key this was derived from.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A fresh HMAC-SHA256 instance under the chain key.
    pub fn mac(&self) -> Hmac<Sha256> {
        self.mac.clone()
    }

    pub fn sign(&self, message: &[u8]) -> ed25519_dalek::Signature {
        self.signing.sign(message)
    }

    /// The checkpoint signing key's public half (what a third party needs to check checkpoints).
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_rotate() {
        let old = generate_key();
        let new = generate_key();
        let before = Keyring::parse(&old).unwrap();
        let sealed = before.seal("refresh-token", b"1//secret");
        assert!(!sealed.contains("secret"));
        let rotated = Keyring::parse(&format!("{new}\n{old}\n")).unwrap();
        assert_eq!(
            rotated.open("refresh-token", &sealed).unwrap(),
            b"1//secret"
        );
        assert_ne!(rotated.primary_id(), before.primary_id());
        assert_eq!(
            rotated.open("other-purpose", &sealed),
            Err(KeyError::Damaged)
        );
        let only_new = Keyring::parse(&new).unwrap();
        assert!(matches!(
            only_new.open("refresh-token", &sealed),
            Err(KeyError::UnknownKey(_))
        ));
    }

    #[test]
    fn log_keys_are_derived_per_master_key_and_differ_from_it() {
        let old = generate_key();
        let new = generate_key();
        let one = Keyring::parse(&old).unwrap().log_keys();
        let two = Keyring::parse(&format!("{new}\n{old}")).unwrap().log_keys();
        let again = Keyring::parse(&old).unwrap().log_keys();
        let tag = |k: &LogKey| k.mac().chain_update(b"record").finalize().into_bytes();
        assert_eq!(tag(one.current()), tag(again.current()), "deterministic");
        assert_ne!(tag(one.current()), tag(two.current()), "the new key chains");
        let old_id = one.current().id().to_string();
        assert_eq!(tag(two.get(&old_id).unwrap()), tag(one.current()));
        assert_eq!(
            one.current().verifying_key(),
            again.current().verifying_key()
        );
        let sig = one.current().sign(b"heads");
        assert!(again
            .current()
            .verifying_key()
            .verify_strict(b"heads", &sig)
            .is_ok());
        assert!(two.get("00000000").is_none());
    }

    #[test]
    fn malformed_keys_are_named() {
        assert_eq!(
            Keyring::parse("# c\nnot-base64!").unwrap_err(),
            KeyError::Malformed(2)
        );
        assert_eq!(Keyring::parse("").unwrap_err(), KeyError::Missing);
    }
}
