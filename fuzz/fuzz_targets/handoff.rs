//! The hand-off assertion (`core::accounts::handoff`), the properties of its
//! proptests: what the host signs verifies as exactly the claims it signed;
//! any one byte of a signed assertion changed is refused; and arbitrary text
//! is refused (without panicking).
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use scopegate_core::accounts::handoff::{sign, verify, Claims, MAX_LIFETIME_SECS};
use scopegate_core::accounts::Role;

const NOW: i64 = 1_800_000_000;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[42u8; 32])
}

/// Up to 40 characters, none a control character.
fn text(u: &mut Unstructured) -> Result<String> {
    Ok(String::arbitrary(u)?
        .chars()
        .filter(|c| !c.is_control())
        .take(40)
        .collect())
}

/// Claims as a host application makes them (the proptest's `any_claims`).
fn claims(u: &mut Unstructured) -> Result<Claims> {
    let role = *u.choose(&[Role::Owner, Role::Admin, Role::FeeEarner, Role::Bookkeeper])?;
    let (firm, email, name) = (text(u)?, text(u)?, text(u)?);
    let firm_user_id = if bool::arbitrary(u)? {
        Some(text(u)?)
    } else {
        None
    };
    let exp = NOW + u.int_in_range(1..=MAX_LIFETIME_SECS)?;
    let length = u.int_in_range(16..=64)?;
    let nonce = (0..length)
        .map(|_| u.int_in_range(b'!'..=b'~').map(char::from))
        .collect::<Result<String>>()?;
    Ok(Claims {
        firm,
        email,
        name,
        role,
        firm_user_id,
        exp,
        nonce,
    })
}

fn check(u: &mut Unstructured) -> Result<()> {
    let verifying = key().verifying_key();
    match u.int_in_range(0u8..=2)? {
        0 => {
            let claims = claims(u)?;
            let assertion = sign(&key(), &claims);
            assert_eq!(verify(&verifying, &assertion, NOW), Ok(claims));
        }
        1 => {
            let claims = claims(u)?;
            let mut bytes = sign(&key(), &claims).into_bytes();
            let at = u.choose_index(bytes.len())?;
            let by = u8::arbitrary(u)?;
            if bytes[at] == by {
                return Ok(());
            }
            bytes[at] = by;
            if let Ok(tampered) = String::from_utf8(bytes) {
                assert!(
                    verify(&verifying, &tampered, NOW).is_err(),
                    "{tampered} accepted"
                );
            }
        }
        _ => {
            let text = String::from_utf8_lossy(u.bytes(u.len())?);
            assert!(verify(&verifying, &text, NOW).is_err(), "{text} accepted");
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
