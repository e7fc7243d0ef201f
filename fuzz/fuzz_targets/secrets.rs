//! Client secrets, access tokens and client ids (`core::secrets`), the
//! properties of their proptests: every issued secret (any random bytes,
//! including leading zeros) passes its own check; any one character changed
//! is refused; and any text that passes is exactly the issued form of its body.
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use scopegate_core::secrets::{check_format, encode, SecretKind, BODY_BYTES, CHECKSUM_LEN};

/// Random bytes after a drawn number of zero bytes (a short base58 body,
/// which a uniform draw almost never reaches).
fn body(u: &mut Unstructured) -> Result<[u8; BODY_BYTES]> {
    let zeros = u.int_in_range(0..=BODY_BYTES)?;
    let mut body = <[u8; BODY_BYTES]>::arbitrary(u)?;
    body[..zeros].fill(0);
    Ok(body)
}

fn check(u: &mut Unstructured) -> Result<()> {
    let mode = u.int_in_range(0u8..=2)?;
    let kind = *u.choose(&[
        SecretKind::ClientSecret,
        SecretKind::AccessToken,
        SecretKind::ClientId,
    ])?;
    match mode {
        0 => {
            let issued = encode(kind, &body(u)?);
            assert_eq!(check_format(kind, &issued), Ok(()), "{issued}");
        }
        1 => {
            let issued = encode(kind, &body(u)?);
            let at = u.choose_index(issued.len())?;
            let by = u.int_in_range(b'!'..=b'~')?;
            if issued.as_bytes()[at] == by {
                return Ok(());
            }
            let mut changed = issued.into_bytes();
            changed[at] = by;
            let changed = String::from_utf8(changed).unwrap();
            assert!(check_format(kind, &changed).is_err(), "{changed} accepted");
        }
        _ => {
            let text = String::from_utf8_lossy(u.bytes(u.len())?);
            if check_format(kind, &text).is_ok() {
                let body = bs58::decode(&text[4..text.len() - CHECKSUM_LEN])
                    .into_vec()
                    .unwrap();
                let body: [u8; BODY_BYTES] = body.try_into().unwrap();
                assert_eq!(encode(kind, &body), text);
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
