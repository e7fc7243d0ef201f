//! Hand-off from the firm's practice-management app. The host app signs a
//! short-lived assertion with its Ed25519 private key; the gateway holds only
//! the public key (`--handoff-public-key`). Format, like a compact JWS:
//! `base64url(claims JSON) "." base64url(Ed25519 signature over the first part)`.
//! An assertion is accepted once: its nonce is recorded until it expires.

use super::Role;
use crate::registry::{is_unique_violation, Registry, StoreError, StoreResult};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// The longest lifetime an assertion may claim, seconds.
pub const MAX_LIFETIME_SECS: i64 = 300;

/// What the host application asserts about its user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub firm: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// `users.id` in the firm's database, for fee earners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firm_user_id: Option<String>,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Random, single use.
    pub nonce: String,
}

/// Why an assertion was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandoffError {
    #[error("hand-off is not configured on this gateway")]
    NotConfigured,
    #[error("the assertion is malformed")]
    Malformed,
    #[error("the assertion's signature is not valid")]
    BadSignature,
    #[error("the assertion has expired")]
    Expired,
    #[error("the assertion lives too long; at most {MAX_LIFETIME_SECS} s")]
    TooLong,
    #[error("the assertion was already used")]
    Replayed,
}

/// Signs claims: what the host application does (used by tests and as a reference).
pub fn sign(key: &SigningKey, claims: &Claims) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("json"));
    let signature = key.sign(payload.as_bytes());
    format!("{payload}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// Parses a base64 (standard or url-safe) 32-byte Ed25519 public key.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let text = text.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
        .map_err(|_| "the hand-off public key must be base64".to_string())?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "the hand-off public key must be 32 bytes (Ed25519)".to_string())?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "the hand-off public key is not a valid Ed25519 key".to_string())
}

/// Checks signature and times (not the nonce). `now` is Unix seconds.
pub fn verify(key: &VerifyingKey, assertion: &str, now: i64) -> Result<Claims, HandoffError> {
    let (payload, signature) = assertion
        .trim()
        .split_once('.')
        .ok_or(HandoffError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or(HandoffError::Malformed)?;
    key.verify_strict(payload.as_bytes(), &signature)
        .map_err(|_| HandoffError::BadSignature)?;
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(HandoffError::Malformed)?;
    if claims.nonce.len() < 16 || claims.nonce.len() > 200 {
        return Err(HandoffError::Malformed);
    }
    if claims.exp <= now {
        return Err(HandoffError::Expired);
    }
    if claims.exp > now + MAX_LIFETIME_SECS {
        return Err(HandoffError::TooLong);
    }
    Ok(claims)
}

impl Registry {
    /// Records a hand-off nonce; `Replayed` if it was seen before.
    pub async fn consume_handoff_nonce(&self, claims: &Claims) -> StoreResult<bool> {
        let digest = crate::secrets::sha256_hex(format!("{}\n{}", claims.firm, claims.nonce));
        match sqlx::query(
            "INSERT INTO handoff_nonces (nonce_sha256, firm_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(digest)
        .bind(&claims.firm)
        .bind(claims.exp * 1000)
        .execute(self.pool())
        .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(StoreError::from(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            firm: "f1".into(),
            email: "a@f1.example".into(),
            name: "A".into(),
            role: Role::Admin,
            firm_user_id: None,
            exp,
            nonce: "0123456789abcdef".into(),
        }
    }

    #[test]
    fn signed_assertions_verify_and_tampering_is_caught() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let a = sign(&key, &claims(1_000));
        assert_eq!(
            verify(&key.verifying_key(), &a, 900).unwrap(),
            claims(1_000)
        );
        assert_eq!(
            verify(&other.verifying_key(), &a, 900),
            Err(HandoffError::BadSignature)
        );
        assert_eq!(
            verify(&key.verifying_key(), &a, 1_000),
            Err(HandoffError::Expired)
        );
        let long = sign(&key, &claims(10_000));
        assert_eq!(
            verify(&key.verifying_key(), &long, 900),
            Err(HandoffError::TooLong)
        );
        let (p, s) = a.split_once('.').unwrap();
        let forged = format!("{}x.{s}", p);
        assert!(verify(&key.verifying_key(), &forged, 900).is_err());
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        const NOW: i64 = 1_800_000_000;

        fn any_claims() -> impl Strategy<Value = Claims> {
            let role = prop_oneof![
                Just(Role::Owner),
                Just(Role::Admin),
                Just(Role::FeeEarner),
                Just(Role::Bookkeeper),
            ];
            (
                ("\\PC{0,40}", "\\PC{0,40}", "\\PC{0,40}"),
                role,
                proptest::option::of("\\PC{0,40}"),
                1..=MAX_LIFETIME_SECS,
                "[!-~]{16,64}",
            )
                .prop_map(|((firm, email, name), role, firm_user_id, life, nonce)| {
                    Claims {
                        firm,
                        email,
                        name,
                        role,
                        firm_user_id,
                        exp: NOW + life,
                        nonce,
                    }
                })
        }

        fn key() -> SigningKey {
            SigningKey::from_bytes(&[42u8; 32])
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            #[test]
            fn what_the_host_signs_verifies_as_signed(claims in any_claims()) {
                let assertion = sign(&key(), &claims);
                prop_assert_eq!(verify(&key().verifying_key(), &assertion, NOW), Ok(claims));
            }

            #[test]
            fn any_one_byte_changed_is_refused(
                claims in any_claims(),
                at in any::<prop::sample::Index>(),
                by in any::<u8>(),
            ) {
                let mut bytes = sign(&key(), &claims).into_bytes();
                let at = at.index(bytes.len());
                prop_assume!(bytes[at] != by);
                bytes[at] = by;
                if let Ok(tampered) = String::from_utf8(bytes) {
                    prop_assert!(verify(&key().verifying_key(), &tampered, NOW).is_err(), "{} accepted", tampered);
                }
            }

            #[test]
            fn arbitrary_text_is_refused_without_panicking(text in "\\PC{0,200}|[A-Za-z0-9_-]{0,120}\\.[A-Za-z0-9_-]{0,90}") {
                prop_assert!(verify(&key().verifying_key(), &text, NOW).is_err());
            }
        }
    }
}
