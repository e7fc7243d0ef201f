//! Change-order paging: opaque cursors (`cs1:<change_seq>`, base64url) and
//! page sizes. Anything else in the query is refused, naming the parameter;
//! in particular there is no way to name a firm.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use scopegate_contract::ConnectorError;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 500;

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

pub fn encode_cursor(change_seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("cs1:{change_seq}"))
}

fn decode_cursor(text: &str) -> Option<i64> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
    raw.strip_prefix("cs1:")?.parse().ok().filter(|n| *n >= 0)
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
    }
}
