//! The `limit` query parameter every paginated admin list takes: a whole
//! number from 1 to the list's maximum, or a problem naming it.

use crate::http::problem::Problem;

/// `value` as a page size of at most `max` entries.
pub fn page_limit(value: &str, max: i64) -> Result<i64, Problem> {
    value
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| Problem::unprocessable("limit", format!("limit must be 1-{max}")))
}

#[cfg(test)]
mod tests {
    use super::page_limit;

    #[test]
    fn limits_are_whole_numbers_from_one_to_the_maximum() {
        assert_eq!(page_limit("1", 200).unwrap(), 1);
        assert_eq!(page_limit("200", 200).unwrap(), 200);
        for bad in ["0", "201", "-1", "1.5", "", " 5", "ten"] {
            assert!(page_limit(bad, 200).is_err(), "{bad:?}");
        }
    }
}
