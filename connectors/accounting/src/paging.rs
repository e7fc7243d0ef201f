//! Change-order paging: opaque cursors (`cs1:<change_seq>`, base64url) and
//! page sizes. Anything else in the query is refused, naming the parameter;
//! in particular there is no way to name a firm. The OpenAPI document states
//! exactly what is accepted: [`CURSOR_PATTERN`] and the limit's bounds.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use scopegate_contract::ConnectorError;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 500;
/// A change number has at most this many digits in a cursor (far beyond any
/// firm's changes, and always within `i64`).
const MAX_CURSOR_DIGITS: usize = 16;
/// The highest change number a cursor can carry (16 digits).
#[cfg(test)]
const MAX_CURSOR_SEQ: i64 = 9_999_999_999_999_999;

/// Exactly the cursors [`decode_cursor`] accepts: the unpadded base64url
/// encodings of `cs1:` followed by 1-16 decimal digits. Base64 turns each
/// three digits into four characters; the classes are the characters those
/// bits can make (e.g. a digit's high nibble is always `0011`), so any string
/// this matches decodes to a cursor, and every cursor this API issues matches.
pub const CURSOR_PATTERN: &str = concat!(
    "^Y3MxOj[AEIMQUYcgk]", // "cs1:" and the first digit
    "(?:[w-z0-5]",         // the second digit
    "(?:(?:[MN][DTjz]|O[DT])[AEIMQUYcgk][w-z0-5]){0,4}", // three digits at a time
    "(?:(?:[MN][AQgw]|O[AQ])|(?:[MN][DTjz]|O[DT])[AEIMQUYcgk])?", // one or two more
    ")?$"
);

/// Parses `cursor` and `limit` into (change_seq after, page size).
pub fn page_params(query: Option<&str>) -> Result<(i64, i64), ConnectorError> {
    let mut after = 0;
    let mut limit = DEFAULT_LIMIT;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "cursor" => {
                after = decode_cursor(&value).ok_or_else(|| {
                    ConnectorError::bad_request(
                        Some("cursor"),
                        "cursor is not one this API issued; pass next_cursor back unchanged",
                    )
                })?
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        ConnectorError::bad_request(
                            Some("limit"),
                            format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                        )
                    })?
            }
            other => {
                return Err(ConnectorError::bad_request(
                    Some(other),
                    format!("unknown query parameter {other:?}; use cursor and limit"),
                ))
            }
        }
    }
    Ok((after, limit))
}

/// The `cursor` query parameter as the OpenAPI document describes it.
pub struct CursorParam;

impl utoipa::PartialSchema for CursorParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(CURSOR_PATTERN))
            .into()
    }
}

impl utoipa::ToSchema for CursorParam {}

/// The `limit` query parameter as the OpenAPI document describes it.
pub struct LimitParam;

impl utoipa::PartialSchema for LimitParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_LIMIT))
            .default(Some(DEFAULT_LIMIT.into()))
            .into()
    }
}

impl utoipa::ToSchema for LimitParam {}

pub fn encode_cursor(change_seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("cs1:{change_seq}"))
}

fn decode_cursor(text: &str) -> Option<i64> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
    let digits = raw.strip_prefix("cs1:")?;
    if digits.is_empty()
        || digits.len() > MAX_CURSOR_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_forgeries_are_refused() {
        assert_eq!(
            page_params(Some(&format!("cursor={}&limit=5", encode_cursor(42)))).unwrap(),
            (42, 5)
        );
        assert!(page_params(Some("cursor=abc")).is_err());
        assert!(page_params(Some(&format!(
            "cursor={}",
            URL_SAFE_NO_PAD.encode("cs1:-4")
        )))
        .is_err());
        assert!(page_params(Some("limit=0")).is_err());
        assert!(page_params(Some("limit=501")).is_err());
        assert!(page_params(Some("firm=other")).is_err());
        // Signs and overlong numbers are not cursors this API issues.
        assert!(page_params(Some(&format!(
            "cursor={}",
            URL_SAFE_NO_PAD.encode("cs1:+4")
        )))
        .is_err());
        assert!(page_params(Some(&format!("cursor={}", encode_cursor(10_i64.pow(16))))).is_err());
    }

    #[test]
    fn the_documented_pattern_is_exactly_what_is_accepted() {
        let pattern = regex::Regex::new(CURSOR_PATTERN).unwrap();
        let mut n: i64 = 0;
        while n < 10_i64.pow(16) {
            for m in [n, n / 2, n / 7 * 3 + 1] {
                let cursor = encode_cursor(m);
                assert!(pattern.is_match(&cursor), "{m} -> {cursor}");
                assert_eq!(decode_cursor(&cursor), Some(m));
            }
            n = n * 10 + 9;
        }
        assert!(!pattern.is_match(&encode_cursor(10_i64.pow(16))));
        // After "cs1:" and after whole groups of digits, every string of up
        // to three more characters: the pattern matches exactly those that decode.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut tails = vec![String::new()];
        let mut last = tails.clone();
        for _ in 0..3 {
            last = last
                .iter()
                .flat_map(|t| ALPHABET.iter().map(move |c| format!("{t}{}", *c as char)))
                .collect();
            tails.extend(last.iter().cloned());
        }
        for prefix in ["Y3MxOj", "Y3MxOjEy", "Y3MxOjEyMzQ1"] {
            for tail in &tails {
                let text = format!("{prefix}{tail}");
                assert_eq!(
                    pattern.is_match(&text),
                    decode_cursor(&text).is_some(),
                    "{text}"
                );
            }
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn a_cursor_reads_back_as_the_position_it_was_made_for(seq in prop_oneof![any::<i64>(), 0..=MAX_CURSOR_SEQ, (MAX_CURSOR_SEQ - 5)..=(MAX_CURSOR_SEQ + 5)], limit in 1..=MAX_LIMIT) {
                let read = page_params(Some(&format!("cursor={}&limit={limit}", encode_cursor(seq))));
                if (0..=MAX_CURSOR_SEQ).contains(&seq) {
                    prop_assert_eq!(read, Ok((seq, limit)));
                } else {
                    prop_assert!(read.is_err());
                }
            }

            #[test]
            fn a_limit_out_of_range_is_refused_naming_it(limit in prop_oneof![i64::MIN..1, (MAX_LIMIT + 1)..=i64::MAX]) {
                let refused = page_params(Some(&format!("limit={limit}"))).unwrap_err();
                prop_assert_eq!(
                    refused,
                    ConnectorError::bad_request(Some("limit"), "limit must be a whole number from 1 to 500")
                );
            }

            #[test]
            fn any_query_is_a_page_or_a_400_naming_a_parameter_it_has(query in "\\PC{0,80}|((cursor|limit|firm|[a-z]{1,6})=[A-Za-z0-9_%+-]{0,20}&?){0,4}") {
                match page_params(Some(&query)) {
                    Ok((after, limit)) => {
                        prop_assert!(after >= 0);
                        prop_assert!((1..=MAX_LIMIT).contains(&limit));
                    }
                    Err(ConnectorError::BadRequest { field: Some(field), detail }) => {
                        prop_assert!(!detail.is_empty());
                        prop_assert!(form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == field));
                    }
                    Err(other) => prop_assert!(false, "{:?}", other),
                }
            }
        }
    }
}
