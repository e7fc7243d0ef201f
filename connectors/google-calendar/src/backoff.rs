//! The retry policy for Calendar API calls: which answers are worth another
//! try (429, 403 `rateLimitExceeded`/`userRateLimitExceeded`, 5xx, redirects
//! (never followed), transport errors) and how long to wait (exponential with full jitter, never less
//! than the server's `Retry-After`).

use rand::Rng;
use std::time::Duration;

/// Attempts per call before the pass gives up and the job is rescheduled.
pub const MAX_ATTEMPTS: u32 = 8;
const BASE_MS: u64 = 100;
const CAP_MS: u64 = 20_000;

/// What to do about an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Success,
    /// Try again after backing off.
    Retry,
    /// The access token was refused: refresh and try again.
    Unauthorized,
    /// Not worth retrying (a request Google will never accept).
    Fatal,
}

/// Classifies an HTTP status and Google's `error.errors[0].reason`.
pub fn classify(status: u16, reason: Option<&str>) -> Verdict {
    match status {
        200..=299 => Verdict::Success,
        401 => Verdict::Unauthorized,
        // 0: no answer at all (connection refused, reset, timeout); 3xx: a redirect,
        // never followed, so no answer either: the entry is tried again later.
        0 | 300..=399 | 429 | 500..=599 => Verdict::Retry,
        403 if matches!(
            reason,
            Some("rateLimitExceeded") | Some("userRateLimitExceeded")
        ) =>
        {
            Verdict::Retry
        }
        _ => Verdict::Fatal,
    }
}

/// The wait before attempt `attempt + 1` (attempt counts from 0).
pub fn delay(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let ceiling = BASE_MS.saturating_mul(1 << attempt.min(16)).min(CAP_MS);
    let jittered = Duration::from_millis(rand::thread_rng().gen_range(ceiling / 2..=ceiling));
    match retry_after {
        Some(server) => server.max(jittered),
        None => jittered,
    }
}

/// Parses `Retry-After` given in seconds (the form Google uses).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_and_server_errors_are_retried_others_are_not() {
        assert_eq!(classify(200, None), Verdict::Success);
        assert_eq!(classify(429, None), Verdict::Retry);
        assert_eq!(classify(0, None), Verdict::Retry);
        assert_eq!(classify(307, None), Verdict::Retry);
        assert_eq!(classify(503, Some("backendError")), Verdict::Retry);
        assert_eq!(classify(403, Some("userRateLimitExceeded")), Verdict::Retry);
        assert_eq!(classify(403, Some("forbidden")), Verdict::Fatal);
        assert_eq!(classify(401, Some("authError")), Verdict::Unauthorized);
        assert_eq!(classify(400, Some("invalid")), Verdict::Fatal);
    }

    #[test]
    fn delays_grow_are_capped_and_honour_retry_after() {
        for attempt in 0..20 {
            let d = delay(attempt, None);
            assert!(d <= Duration::from_millis(CAP_MS));
            assert!(d >= Duration::from_millis(BASE_MS / 2));
        }
        assert!(delay(0, Some(Duration::from_secs(7))) >= Duration::from_secs(7));
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
