//! `page_params` (accounting paging), the properties of its proptests:
//! a cursor this API issued reads back as the position it was made for (and
//! one for a position outside 0..=16 digits is refused); a limit out of range
//! is refused naming `limit`; and any query at all is a page (position >= 0,
//! limit 1-500) or a 400 naming a parameter the query has.
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use scopegate_accounting::{encode_cursor, page_params};
use scopegate_contract::ConnectorError;

const MAX_LIMIT: i64 = 500;
const MAX_CURSOR_SEQ: i64 = 9_999_999_999_999_999;

fn check(u: &mut Unstructured) -> Result<()> {
    match u.int_in_range(0u8..=2)? {
        0 => {
            let seq = i64::arbitrary(u)?;
            let limit = u.int_in_range(1..=MAX_LIMIT)?;
            let read = page_params(Some(&format!(
                "cursor={}&limit={limit}",
                encode_cursor(seq)
            )));
            if (0..=MAX_CURSOR_SEQ).contains(&seq) {
                assert_eq!(read, Ok((seq, limit)));
            } else {
                assert!(read.is_err(), "{seq} read as {read:?}");
            }
        }
        1 => {
            let limit = i64::arbitrary(u)?;
            if (1..=MAX_LIMIT).contains(&limit) {
                return Ok(());
            }
            let refused = page_params(Some(&format!("limit={limit}"))).unwrap_err();
            assert_eq!(
                refused,
                ConnectorError::bad_request(
                    Some("limit"),
                    "limit must be a whole number from 1 to 500"
                )
            );
        }
        _ => {
            let query = String::from_utf8_lossy(u.bytes(u.len())?);
            match page_params(Some(&query)) {
                Ok((after, limit)) => {
                    assert!(after >= 0, "{query:?}");
                    assert!((1..=MAX_LIMIT).contains(&limit), "{query:?}");
                }
                Err(ConnectorError::BadRequest {
                    field: Some(field),
                    detail,
                }) => {
                    assert!(!detail.is_empty());
                    assert!(
                        form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == field),
                        "{query:?} refused naming {field:?}"
                    );
                }
                Err(other) => panic!("{query:?}: {other:?}"),
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
