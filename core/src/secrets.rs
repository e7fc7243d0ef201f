//! Secrets scopegate issues (client secrets, access tokens, client ids):
//! 256 bits from the OS RNG, a recognisable prefix so secret scanners spot a
//! leaked one, and a CRC-32 checksum so a mistyped or truncated one is refused
//! before any database lookup. Only their SHA-256 is ever stored: with 256 bits
//! of entropy a fast hash is safe, and it allows an indexed lookup.

use rand::RngCore;

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

/// Random bytes in a secret.
pub const BODY_BYTES: usize = 32;
/// Characters of the checksum that ends a secret (public for the fuzz targets).
#[doc(hidden)]
pub const CHECKSUM_LEN: usize = 6;
/// Base58 of 32 bytes: one `1` per leading zero byte, then the number, so
/// from 32 characters (all zero) to 44.
const BODY_CHARS: std::ops::RangeInclusive<usize> = BODY_BYTES..=44;

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

/// The issued text of a secret with these random bytes: prefix, base58 body,
/// checksum (what [`generate`] returns; public for the fuzz targets).
pub fn encode(kind: SecretKind, body: &[u8; BODY_BYTES]) -> String {
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
    if rest.len() < CHECKSUM_LEN
        || !BODY_CHARS.contains(&(rest.len() - CHECKSUM_LEN))
        || !rest.is_ascii()
    {
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
pub use scopegate_contract::sha256_hex;

/// Compares two secrets (or their hashes) in time that does not depend on
/// where they differ (`subtle`); unequal lengths are simply unequal.
pub use scopegate_contract::constant_time_eq;

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
    fn a_secret_whose_random_bytes_start_with_zeros_is_still_accepted() {
        // Found by the property below: leading zero bytes shorten the base58
        // body under the old 40-character floor, refusing an issued secret.
        for zeros in [1, 8, 20, BODY_BYTES] {
            let mut body = [0xA5u8; BODY_BYTES];
            body[..zeros].fill(0);
            let issued = encode(SecretKind::AccessToken, &body);
            assert_eq!(
                check_format(SecretKind::AccessToken, &issued),
                Ok(()),
                "{issued}"
            );
        }
    }

    #[test]
    fn secrets_carry_at_least_256_bits() {
        let s = generate(SecretKind::AccessToken);
        let body = &s[4..s.len() - CHECKSUM_LEN];
        assert_eq!(bs58::decode(body).into_vec().unwrap().len() * 8, 256);
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn kind() -> impl Strategy<Value = SecretKind> {
            prop_oneof![
                Just(SecretKind::ClientSecret),
                Just(SecretKind::AccessToken),
                Just(SecretKind::ClientId),
            ]
        }

        /// Bodies as the OS RNG gives them, and the rare ones with leading
        /// zero bytes (short base58), which a uniform draw never reaches.
        fn body() -> impl Strategy<Value = [u8; BODY_BYTES]> {
            prop_oneof![
                any::<[u8; BODY_BYTES]>(),
                (0..=BODY_BYTES, any::<[u8; BODY_BYTES]>()).prop_map(|(zeros, mut body)| {
                    body[..zeros].fill(0);
                    body
                }),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn every_issued_secret_passes_its_own_check(kind in kind(), body in body()) {
                prop_assert_eq!(check_format(kind, &encode(kind, &body)), Ok(()));
            }

            #[test]
            fn any_one_character_changed_is_refused(
                kind in kind(),
                body in body(),
                at in any::<prop::sample::Index>(),
                by in proptest::char::range('!', '~'),
            ) {
                let issued = encode(kind, &body);
                let at = at.index(issued.len());
                prop_assume!(issued.as_bytes()[at] != by as u8);
                let mut changed = issued.into_bytes();
                changed[at] = by as u8;
                let changed = String::from_utf8(changed).unwrap();
                prop_assert!(check_format(kind, &changed).is_err(), "{} accepted", changed);
            }

            #[test]
            fn only_the_issued_form_of_a_body_is_accepted(kind in kind(), text in "sg[sac]_[1-9A-HJ-NP-Za-km-z]{30,52}|\\PC{0,60}") {
                if check_format(kind, &text).is_ok() {
                    let body = bs58::decode(&text[4..text.len() - CHECKSUM_LEN]).into_vec().unwrap();
                    let body: [u8; BODY_BYTES] = body.try_into().unwrap();
                    prop_assert_eq!(encode(kind, &body), text);
                }
            }
        }
    }
}
