//! The event id Google sees for a diary entry: HMAC-SHA256 of the diary id
//! under a per-grant secret, written in base32hex (`0-9a-v`, 52 characters),
//! as Google requires for client-chosen ids. The same entry always maps to
//! the same id, so a retried insert answers 409 instead of duplicating; the
//! id reveals neither the diary id nor anything else about the firm.

use hmac::{Hmac, Mac};
use sha2::Sha256;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// The event id of `diary_id` under `secret`.
pub fn derive(secret: &[u8], diary_id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"scopegate/google-calendar/event-id/v1\0");
    mac.update(diary_id.as_bytes());
    base32hex(&mac.finalize().into_bytes())
}

fn base32hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_valid_and_secret_dependent() {
        let id = derive(b"secret-one", "5b0f0c4e-0000-4000-8000-000000000001");
        assert_eq!(
            id,
            derive(b"secret-one", "5b0f0c4e-0000-4000-8000-000000000001")
        );
        assert_ne!(
            id,
            derive(b"secret-two", "5b0f0c4e-0000-4000-8000-000000000001")
        );
        assert_ne!(
            id,
            derive(b"secret-one", "5b0f0c4e-0000-4000-8000-000000000002")
        );
        assert_eq!(id.len(), 52);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b)));
        assert!(!id.contains("5b0f0c4e"));
    }

    #[test]
    fn base32hex_matches_rfc4648_vectors() {
        assert_eq!(base32hex(b"f"), "co");
        assert_eq!(base32hex(b"fo"), "cpng");
        assert_eq!(base32hex(b"foobar"), "cpnmuoj1e8");
    }
}
