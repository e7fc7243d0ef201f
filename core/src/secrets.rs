//! Secrets scopegate issues (client secrets, access tokens, client ids):
//! 256 bits from the OS RNG, a recognisable prefix so secret scanners spot a
//! leaked one, and a CRC-32 checksum so a mistyped or truncated one is refused
//! before any database lookup. Only their SHA-256 is ever stored: with 256 bits
//! of entropy a fast hash is safe, and it allows an indexed lookup.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// What a secret is for; the prefix tells a reader (and a scanner) at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// `sgs_`: a vendor's client secret, shown once.
    ClientSecret,
    /// `sga_`: a short-lived bearer access token.
    AccessToken,
    /// `sgc_`: a public client identifier (not secret, same shape for convenience).
    ClientId,
}

impl SecretKind {
    pub fn prefix(self) -> &'static str {
        match self {
            SecretKind::ClientSecret => "sgs_",
            SecretKind::AccessToken => "sga_",
            SecretKind::ClientId => "sgc_",
        }
    }
}

const BODY_BYTES: usize = 32;
const CHECKSUM_LEN: usize = 6;

/// Why a presented secret was refused without touching the database.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MalformedSecret {
    #[error("it does not start with {0}")]
    WrongPrefix(&'static str),
    #[error("it is truncated or has extra characters")]
    WrongLength,
    #[error("its checksum does not match (mistyped or altered)")]
    BadChecksum,
}

/// A fresh secret of the given kind.
pub fn generate(kind: SecretKind) -> String {
    let mut body = [0u8; BODY_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut body);
    encode(kind, &body)
}

fn encode(kind: SecretKind, body: &[u8]) -> String {
    let body = bs58::encode(body).into_string();
    let mut text = format!("{}{}", kind.prefix(), body);
    text.push_str(&checksum(&text));
    text
}

fn checksum(text: &str) -> String {
    let crc = crc32fast::hash(text.as_bytes());
    let encoded = bs58::encode(crc.to_be_bytes()).into_string();
    format!("{encoded:1>width$}", width = CHECKSUM_LEN)
}

/// Checks prefix, length and checksum of a presented secret.
pub fn check_format(kind: SecretKind, text: &str) -> Result<(), MalformedSecret> {
    let rest = text
        .strip_prefix(kind.prefix())
        .ok_or(MalformedSecret::WrongPrefix(kind.prefix()))?;
    if rest.len() < 40 + CHECKSUM_LEN || rest.len() > 44 + CHECKSUM_LEN || !rest.is_ascii() {
        return Err(MalformedSecret::WrongLength);
    }
    let (signed, sum) = text.split_at(text.len() - CHECKSUM_LEN);
    let body = &signed[kind.prefix().len()..];
    match bs58::decode(body).into_vec() {
        Ok(bytes) if bytes.len() == BODY_BYTES => {}
        _ => return Err(MalformedSecret::WrongLength),
    }
    if checksum(signed) != sum {
        return Err(MalformedSecret::BadChecksum);
    }
    Ok(())
}

/// SHA-256 in lower-case hex: the only form in which an issued secret,
/// token or session id is stored, and how payloads are named in the log.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes.as_ref()))
}

/// Compares two secrets (or their hashes) in time that does not depend on
/// where they differ (`subtle`); unequal lengths are simply unequal.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_pass_their_own_check() {
        for kind in [
            SecretKind::ClientSecret,
            SecretKind::AccessToken,
            SecretKind::ClientId,
        ] {
            for _ in 0..200 {
                let s = generate(kind);
                assert!(s.starts_with(kind.prefix()));
                assert_eq!(check_format(kind, &s), Ok(()), "{s}");
            }
        }
    }

    #[test]
    fn typos_truncation_and_wrong_kind_are_refused() {
        let s = generate(SecretKind::ClientSecret);
        assert_eq!(
            check_format(SecretKind::AccessToken, &s),
            Err(MalformedSecret::WrongPrefix("sga_"))
        );
        assert_eq!(
            check_format(SecretKind::ClientSecret, &s[..s.len() - 3]),
            Err(MalformedSecret::WrongLength)
        );
        let mut chars: Vec<char> = s.chars().collect();
        let i = 10;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let typo: String = chars.into_iter().collect();
        assert!(check_format(SecretKind::ClientSecret, &typo).is_err());
    }

    #[test]
    fn secrets_carry_at_least_256_bits() {
        let s = generate(SecretKind::AccessToken);
        let body = &s[4..s.len() - CHECKSUM_LEN];
        assert_eq!(bs58::decode(body).into_vec().unwrap().len() * 8, 256);
    }
}
