//! The master keyring: AEAD (XChaCha20-Poly1305) encryption of third-party
//! secrets the gateway must store (e.g. refresh tokens). A sealed value is
//! text, `v2.<key id>.<purpose>.<base64 nonce+ciphertext>`: it names the key
//! that sealed it and, in clear, the purpose it was sealed for (not secret),
//! so the core can re-seal it under a newer key without the connector that
//! made it (`scopegate keys rotate`, done by the core's `reseal` module). The associated
//! data is the caller's binding (for connectors' secrets: connector, purpose,
//! firm and grant), so a ciphertext moved anywhere else does not open. The
//! older `v1.<key id>.<base64>` form (no purpose in clear) still opens.
//!
//! A key file holds one base64 key per line; the first seals, every listed
//! key opens. A `retired <id> <chain key> <verifying key>` line (written by
//! `scopegate keys retire`) keeps only what verifies the outbound log a
//! retired key chained and signed: it opens nothing.
//!
//! Each master key also yields, by HKDF-SHA256 with fixed labels, the keys that
//! make the outbound log tamper-evident ([`LogKeys`]): an HMAC-SHA256 key that
//! chains the records and an Ed25519 key that signs checkpoints of the chain
//! heads. They carry the master key's id, so a rotated keyring still verifies
//! what older keys chained and signed. The current key also yields the HMAC
//! key that names shared-limiter entries in Redis.

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

/// What is left of a retired master key: the outbound log's chain key and
/// checkpoint verifying key it derived (neither opens a sealed value).
struct RetiredKey {
    id: String,
    chain_mac: SecretBox<[u8; 32]>,
    verifying: VerifyingKey,
}

/// The keys this gateway holds; the first live one seals.
pub struct Keyring {
    keys: Vec<Key>,
    retired: Vec<RetiredKey>,
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
    #[error("master key line {0} is not a valid `retired <id> <chain key> <verifying key>` line")]
    MalformedRetired(usize),
    #[error("the ciphertext was sealed with key {0}, which this gateway does not hold")]
    UnknownKey(String),
    #[error("the ciphertext is damaged or was not sealed for this purpose")]
    Damaged,
    #[error("a sealed value's purpose must be 1 to 64 of a-z, 0-9 and '-' (got {0:?})")]
    Purpose(String),
    #[error("key {0} is not a key of this key file (see `scopegate keys list`)")]
    NotHeld(String),
    #[error("key {0} is already retired")]
    AlreadyRetired(String),
    #[error("key {0} is the current key (first in the file): put a new key first, run `scopegate keys rotate`, then retire it")]
    Current(String),
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.id))
            .entries(self.retired.iter().map(|k| format!("retired {}", k.id)))
            .finish()
    }
}

/// A fresh key, base64, for `scopegate keys generate`.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}

/// The form of a sealed value, as read from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedParts<'a> {
    /// The id of the key that sealed it.
    pub key_id: &'a str,
    /// The purpose it was sealed for; `None` for the older `v1` form.
    pub purpose: Option<&'a str>,
    body: &'a str,
}

/// Whether `text` has the form of a sealed value (`v2.<id>.<purpose>.<b64>`
/// or `v1.<id>.<b64>`, the body at least a nonce and a tag long); nothing is opened.
pub fn sealed_parts(text: &str) -> Option<SealedParts<'_>> {
    let (version, rest) = text.split_once('.')?;
    let (key_id, rest) = rest.split_once('.')?;
    if !is_key_id(key_id) {
        return None;
    }
    let (purpose, body) = match version {
        "v1" => (None, rest),
        "v2" => {
            let (purpose, body) = rest.split_once('.')?;
            valid_purpose(purpose).ok()?;
            (Some(purpose), body)
        }
        _ => return None,
    };
    // base64 of 24 (nonce) + 16 (tag) bytes or more.
    let plausible = body.len() >= 56
        && body.len() % 4 == 0
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
    plausible.then_some(SealedParts {
        key_id,
        purpose,
        body,
    })
}

/// A key id: the first 4 bytes of the key's SHA-256, lower-case hex.
pub fn is_key_id(text: &str) -> bool {
    text.len() == 8
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn valid_purpose(purpose: &str) -> Result<(), KeyError> {
    let ok = (1..=64).contains(&purpose.len())
        && purpose
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(KeyError::Purpose(purpose.to_string()))
    }
}

fn key_id_of(bytes: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(bytes)[..4])
}

/// One line of a key file.
enum Line {
    Blank,
    Live([u8; 32]),
    Retired(RetiredKey),
}

fn parse_line(n: usize, line: &str) -> Result<Line, KeyError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(Line::Blank);
    }
    if let Some(rest) = line.strip_prefix("retired ") {
        let bad = || KeyError::MalformedRetired(n + 1);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let [id, chain, verifying] = fields[..] else {
            return Err(bad());
        };
        let chain: [u8; 32] = B64
            .decode(chain)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        let verifying = B64
            .decode(verifying)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
            .ok_or_else(bad)?;
        if !is_key_id(id) {
            return Err(bad());
        }
        return Ok(Line::Retired(RetiredKey {
            id: id.to_string(),
            chain_mac: SecretBox::new(Box::new(chain)),
            verifying,
        }));
    }
    let bytes = B64.decode(line).map_err(|_| KeyError::Malformed(n + 1))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed(n + 1))?;
    Ok(Line::Live(bytes))
}

impl Keyring {
    /// Parses key text: one base64 key per line (the first seals), `retired`
    /// lines, blank lines and `#` comments.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        let mut retired = Vec::new();
        for (n, line) in text.lines().enumerate() {
            match parse_line(n, line)? {
                Line::Blank => {}
                Line::Live(bytes) => keys.push(Key {
                    id: key_id_of(&bytes),
                    secret: SecretBox::new(Box::new(bytes)),
                }),
                Line::Retired(key) => retired.push(key),
            }
        }
        if keys.is_empty() {
            return Err(KeyError::Missing);
        }
        Ok(Self { keys, retired })
    }

    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        Self::parse(&read_key_file(path)?)
    }

    /// A throwaway keyring for `scopegate demo` only.
    pub fn ephemeral() -> Self {
        Self::parse(&generate_key()).expect("fresh key parses")
    }

    pub fn primary_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Whether a live key with this id (the first 4 bytes of its SHA-256, hex) is held.
    pub fn holds(&self, key_id: &str) -> bool {
        self.keys.iter().any(|k| k.id == key_id)
    }

    /// The ids of the live keys, the current one first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// The ids of the retired keys (kept for the outbound log only).
    pub fn retired_ids(&self) -> Vec<&str> {
        self.retired.iter().map(|k| k.id.as_str()).collect()
    }

    /// The outbound log's keys, derived from every held master key (first = current),
    /// then those kept of retired keys (they verify, never sign).
    pub fn log_keys(&self) -> LogKeys {
        let live = self.keys.iter().map(|k| {
            let master = k.secret.expose_secret();
            let mac_key = derive(master, LABEL_CHAIN_MAC);
            let signing = SigningKey::from_bytes(&derive(master, LABEL_CHECKPOINT_SIGNING));
            LogKey {
                id: k.id.clone(),
                mac: <Hmac<Sha256> as Mac>::new_from_slice(&mac_key)
                    .expect("HMAC takes any key length"),
                verifying: signing.verifying_key(),
                signing: Some(signing),
            }
        });
        let retired = self.retired.iter().map(|k| LogKey {
            id: k.id.clone(),
            mac: <Hmac<Sha256> as Mac>::new_from_slice(k.chain_mac.expose_secret())
                .expect("HMAC takes any key length"),
            verifying: k.verifying,
            signing: None,
        });
        LogKeys {
            keys: live.chain(retired).collect(),
        }
    }

    /// The HMAC-SHA256 that names shared-limiter entries (client ids, accounts,
    /// addresses) in Redis, derived from the current master key: instances
    /// sharing the key name them alike, and the names reveal nothing to
    /// someone reading Redis without it.
    pub fn limiter_names_mac(&self) -> Hmac<Sha256> {
        let key = derive(self.keys[0].secret.expose_secret(), LABEL_LIMITER_NAMES);
        <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length")
    }

    /// Seals `plaintext` under the current key for `purpose` (kept in clear in
    /// the result), bound to `binding`: the associated data is both, so it
    /// opens only for the same purpose and binding, and its purpose in clear
    /// cannot be changed.
    pub fn seal(&self, purpose: &str, binding: &str, plaintext: &[u8]) -> Result<String, KeyError> {
        valid_purpose(purpose)?;
        let aad = v2_associated_data(purpose, binding);
        let key = &self.keys[0];
        let cipher = XChaCha20Poly1305::new(key.secret.expose_secret().into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .expect("encryption cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(format!("v2.{}.{purpose}.{}", key.id, B64.encode(out)))
    }

    /// Opens what `seal` produced for `purpose` and `binding` with any held
    /// key (a `v1` value, sealed before purposes were written in clear, too).
    pub fn open(&self, purpose: &str, binding: &str, sealed: &str) -> Result<Vec<u8>, KeyError> {
        let parts = sealed_parts(sealed).ok_or(KeyError::Damaged)?;
        if parts.purpose.is_some_and(|p| p != purpose) {
            return Err(KeyError::Damaged);
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.id == parts.key_id)
            .ok_or_else(|| KeyError::UnknownKey(parts.key_id.to_string()))?;
        let bytes = B64.decode(parts.body).map_err(|_| KeyError::Damaged)?;
        if bytes.len() < 24 {
            return Err(KeyError::Damaged);
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        // A v1 value was bound to the binding alone.
        let aad = match parts.purpose {
            Some(_) => v2_associated_data(purpose, binding),
            None => binding.to_string(),
        };
        XChaCha20Poly1305::new(key.secret.expose_secret().into())
            .decrypt(
                nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| KeyError::Damaged)
    }
}

/// The associated data of a `v2` value: the form, its purpose and the caller's binding.
fn v2_associated_data(purpose: &str, binding: &str) -> String {
    format!("scopegate-sealed-v2|{purpose}|{binding}")
}

/// Reads a key file, naming it in the error.
pub fn read_key_file(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path)
        .map_err(|e| KeyError::File(path.display().to_string(), e.to_string()))
}

/// The key file `text` with the live key `key_id` replaced by its `retired`
/// line (what verifies the outbound log it chained and signed); every other
/// line, comments included, as it was. The current key cannot be retired.
pub fn retire_in_text(text: &str, key_id: &str) -> Result<String, KeyError> {
    let keyring = Keyring::parse(text)?;
    if keyring.primary_id() == key_id {
        return Err(KeyError::Current(key_id.to_string()));
    }
    if keyring.retired_ids().contains(&key_id) {
        return Err(KeyError::AlreadyRetired(key_id.to_string()));
    }
    if !keyring.holds(key_id) {
        return Err(KeyError::NotHeld(key_id.to_string()));
    }
    let mut out = String::new();
    for (n, line) in text.lines().enumerate() {
        match parse_line(n, line)? {
            Line::Live(bytes) if key_id_of(&bytes) == key_id => {
                let signing = SigningKey::from_bytes(&derive(&bytes, LABEL_CHECKPOINT_SIGNING));
                out.push_str(&format!(
                    "# {key_id} retired {}: verifies the outbound log it chained and signed, opens nothing\n",
                    chrono::Utc::now().format("%Y-%m-%d")
                ));
                out.push_str(&format!(
                    "retired {key_id} {} {}\n",
                    B64.encode(derive(&bytes, LABEL_CHAIN_MAC)),
                    B64.encode(signing.verifying_key().to_bytes())
                ));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// HKDF labels: changing one orphans every record chained or checkpoint signed with it.
const LABEL_CHAIN_MAC: &str = "scopegate outbound-log chain HMAC-SHA256 v1";
const LABEL_CHECKPOINT_SIGNING: &str = "scopegate outbound-log checkpoint Ed25519 v1";
/// Naming shared-limiter entries; changing it only restarts the shared budgets.
const LABEL_LIMITER_NAMES: &str = "scopegate shared-limiter key names HMAC-SHA256 v1";

fn derive(master: &[u8; 32], label: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(None, master)
        .expand(label.as_bytes(), &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

/// The outbound log's keys, one per master key; the first chains and signs.
#[derive(Clone)]
pub struct LogKeys {
    keys: Vec<LogKey>,
}

/// One master key's log keys: HMAC-SHA256 for the chain, Ed25519 for checkpoints.
#[derive(Clone)]
pub struct LogKey {
    id: String,
    /// Keyed once (the padded key blocks precomputed); cloned per record.
    mac: Hmac<Sha256>,
    /// None for a retired key: it verifies what it signed, signs nothing new.
    signing: Option<SigningKey>,
    verifying: VerifyingKey,
}

impl std::fmt::Debug for LogKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.id))
            .finish()
    }
}

impl LogKeys {
    /// The key new records are chained with and checkpoints signed with
    /// (always a live key's: the keyring's first).
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

    /// Whether this key may sign (a retired key only verifies).
    pub fn can_sign(&self) -> bool {
        self.signing.is_some()
    }

    /// Signs with this key. Panics for a retired key (see [`LogKey::can_sign`]);
    /// [`LogKeys::current`] always can.
    pub fn sign(&self, message: &[u8]) -> ed25519_dalek::Signature {
        self.signing
            .as_ref()
            .expect("only a live key signs")
            .sign(message)
    }

    /// The checkpoint signing key's public half (what a third party needs to check checkpoints).
    pub fn verifying_key(&self) -> VerifyingKey {
        self.verifying
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The older form: `v1.<id>.<b64>`, no purpose in clear (what earlier versions wrote).
    pub(crate) fn seal_v1(keyring: &Keyring, binding: &str, plaintext: &[u8]) -> String {
        let key = &keyring.keys[0];
        let cipher = XChaCha20Poly1305::new(key.secret.expose_secret().into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        out.extend(
            cipher
                .encrypt(
                    &nonce,
                    Payload {
                        msg: plaintext,
                        aad: binding.as_bytes(),
                    },
                )
                .unwrap(),
        );
        format!("v1.{}.{}", key.id, B64.encode(out))
    }

    #[test]
    fn seal_open_and_rotate() {
        let old = generate_key();
        let new = generate_key();
        let before = Keyring::parse(&old).unwrap();
        let sealed = before
            .seal("refresh-token", "bound|firm-a", b"1//secret")
            .unwrap();
        assert!(!sealed.contains("secret"));
        let parts = sealed_parts(&sealed).unwrap();
        assert_eq!(
            (parts.key_id, parts.purpose),
            (before.primary_id(), Some("refresh-token"))
        );
        let rotated = Keyring::parse(&format!("{new}\n{old}\n")).unwrap();
        assert_eq!(
            rotated
                .open("refresh-token", "bound|firm-a", &sealed)
                .unwrap(),
            b"1//secret"
        );
        assert_ne!(rotated.primary_id(), before.primary_id());
        assert_eq!(
            rotated.open("refresh-token", "bound|firm-b", &sealed),
            Err(KeyError::Damaged),
            "another binding does not open it"
        );
        assert_eq!(
            rotated.open("other-purpose", "bound|firm-a", &sealed),
            Err(KeyError::Damaged),
            "nor another purpose"
        );
        // The purpose in clear cannot be changed either.
        let relabelled = sealed.replace(".refresh-token.", ".other-purpose.");
        assert_eq!(
            rotated.open("other-purpose", "bound|firm-a", &relabelled),
            Err(KeyError::Damaged)
        );
        let only_new = Keyring::parse(&new).unwrap();
        assert!(matches!(
            only_new.open("refresh-token", "bound|firm-a", &sealed),
            Err(KeyError::UnknownKey(_))
        ));
        assert!(matches!(
            before.seal("Has.Dots", "b", b"x"),
            Err(KeyError::Purpose(_))
        ));
    }

    #[test]
    fn v1_values_still_open_and_are_recognised() {
        let keyring = Keyring::ephemeral();
        let old = seal_v1(&keyring, "bound|firm-a", b"1//secret");
        let parts = sealed_parts(&old).unwrap();
        assert_eq!((parts.key_id, parts.purpose), (keyring.primary_id(), None));
        assert_eq!(
            keyring.open("any-purpose", "bound|firm-a", &old).unwrap(),
            b"1//secret"
        );
        assert_eq!(
            keyring.open("any-purpose", "bound|firm-b", &old),
            Err(KeyError::Damaged)
        );
        for not_sealed in [
            "v1.abc.def",
            "v2.0123abcd.Purpose.AAAA",
            "hello",
            "v3.0123abcd.x.AAAA",
        ] {
            assert_eq!(sealed_parts(not_sealed), None, "{not_sealed}");
        }
    }

    #[test]
    fn a_retired_key_verifies_the_log_but_opens_nothing() {
        let old = generate_key();
        let new = generate_key();
        let both = format!("# comment\n{new}\n{old}\n");
        let before = Keyring::parse(&both).unwrap();
        let old_id = Keyring::parse(&old).unwrap().primary_id().to_string();
        let sealed = Keyring::parse(&old)
            .unwrap()
            .seal("p", "b", b"secret")
            .unwrap();
        let text = retire_in_text(&both, &old_id).unwrap();
        assert!(text.starts_with("# comment\n"), "{text}");
        assert!(!text.contains(&old), "the master key itself is gone");
        let after = Keyring::parse(&text).unwrap();
        assert_eq!(after.key_ids(), vec![before.primary_id()]);
        assert_eq!(after.retired_ids(), vec![old_id.as_str()]);
        assert!(!after.holds(&old_id));
        assert!(matches!(
            after.open("p", "b", &sealed),
            Err(KeyError::UnknownKey(_))
        ));
        // The old key's log keys still verify what it chained and signed.
        let old_log = Keyring::parse(&old).unwrap().log_keys();
        let kept = after.log_keys();
        let kept_old = kept.get(&old_id).unwrap();
        assert!(!kept_old.can_sign());
        let tag = |k: &LogKey| k.mac().chain_update(b"record").finalize().into_bytes();
        assert_eq!(tag(kept_old), tag(old_log.current()));
        let sig = old_log.current().sign(b"heads");
        assert!(kept_old
            .verifying_key()
            .verify_strict(b"heads", &sig)
            .is_ok());
        assert_eq!(kept.current().id(), before.primary_id());
        // The current key cannot be retired; an unknown one is named.
        assert_eq!(
            retire_in_text(&text, before.primary_id()),
            Err(KeyError::Current(before.primary_id().to_string()))
        );
        assert_eq!(
            retire_in_text(&text, &old_id),
            Err(KeyError::AlreadyRetired(old_id.clone()))
        );
        assert_eq!(
            retire_in_text(&text, "0123abcd"),
            Err(KeyError::NotHeld("0123abcd".into()))
        );
        assert_eq!(
            Keyring::parse("retired 0123abcd notbase64 x").unwrap_err(),
            KeyError::MalformedRetired(1)
        );
        assert_eq!(
            Keyring::parse(&text.replace(&new, "")).unwrap_err(),
            KeyError::Missing,
            "retired keys alone seal nothing"
        );
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
