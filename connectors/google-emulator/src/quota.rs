//! Google's Calendar API usage quotas: requests per minute per user and per
//! project. Each is kept as a sliding window log (the instants of the
//! requests admitted in the last 60 s): a request is admitted while fewer
//! than the quota were admitted in the 60 s before it, so no 60 s span, wherever
//! it starts, holds more than the quota. Requests answered "over quota" are
//! not counted (a client that backs off is not punished further).

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The span each quota is counted over.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Calendar API requests allowed per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    /// Per Google account (Google's "queries per minute per user": 600).
    pub per_user_per_minute: u32,
    /// For the whole OAuth client (Google's "queries per minute": 10,000).
    pub per_project_per_minute: u32,
}

impl Quotas {
    /// Google's default Calendar API quotas.
    pub const GOOGLE: Quotas = Quotas {
        per_user_per_minute: 600,
        per_project_per_minute: 10_000,
    };
}

/// Which quota a refused request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// 403 `userRateLimitExceeded`.
    User,
    /// 403 `rateLimitExceeded`.
    Project,
}

/// The requests admitted in the last [`WINDOW`], per account and in all.
#[derive(Default)]
pub struct QuotaWindows {
    project: VecDeque<Instant>,
    users: HashMap<String, VecDeque<Instant>>,
}

/// Drops the instants that left the window ending at `now`.
fn slide(log: &mut VecDeque<Instant>, now: Instant) {
    while log
        .front()
        .is_some_and(|at| now.saturating_duration_since(*at) >= WINDOW)
    {
        log.pop_front();
    }
}

impl QuotaWindows {
    /// Admits (and counts) a request of `account` at `now`, or names the quota it exceeds.
    pub fn admit(&mut self, quotas: &Quotas, account: &str, now: Instant) -> Result<(), Exceeded> {
        slide(&mut self.project, now);
        let user = self.users.entry(account.to_string()).or_default();
        slide(user, now);
        if user.len() >= quotas.per_user_per_minute as usize {
            return Err(Exceeded::User);
        }
        if self.project.len() >= quotas.per_project_per_minute as usize {
            return Err(Exceeded::Project);
        }
        user.push_back(now);
        self.project.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Quotas = Quotas {
        per_user_per_minute: 3,
        per_project_per_minute: 5,
    };

    #[test]
    fn a_user_over_their_quota_is_refused_until_the_window_slides() {
        let mut windows = QuotaWindows::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        for ms in [0, 10, 20] {
            assert_eq!(windows.admit(&SMALL, "a", at(ms)), Ok(()));
        }
        assert_eq!(windows.admit(&SMALL, "a", at(30)), Err(Exceeded::User));
        assert_eq!(
            windows.admit(&SMALL, "a", at(59_999)),
            Err(Exceeded::User),
            "the first request is still inside the minute"
        );
        assert_eq!(windows.admit(&SMALL, "a", at(60_000)), Ok(()));
        assert_eq!(windows.admit(&SMALL, "a", at(60_001)), Err(Exceeded::User));
    }

    #[test]
    fn the_project_quota_counts_every_user() {
        let mut windows = QuotaWindows::default();
        let start = Instant::now();
        for (n, account) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            let at = start + Duration::from_millis(n as u64);
            assert_eq!(windows.admit(&SMALL, account, at), Ok(()));
        }
        assert_eq!(
            windows.admit(&SMALL, "f", start + Duration::from_millis(9)),
            Err(Exceeded::Project)
        );
        assert_eq!(
            windows.admit(&SMALL, "a", start + WINDOW),
            Ok(()),
            "a minute later the first request no longer counts"
        );
    }

    #[test]
    fn refused_requests_are_not_counted() {
        let mut windows = QuotaWindows::default();
        let start = Instant::now();
        for ms in 0..3 {
            windows
                .admit(&SMALL, "a", start + Duration::from_millis(ms))
                .unwrap();
        }
        for ms in 3..100 {
            assert!(windows
                .admit(&SMALL, "a", start + Duration::from_millis(ms))
                .is_err());
        }
        // Only the three admitted ones count: the project still has room for two.
        let later = start + Duration::from_millis(200);
        assert_eq!(windows.admit(&SMALL, "b", later), Ok(()));
        assert_eq!(windows.admit(&SMALL, "c", later), Ok(()));
        assert_eq!(windows.admit(&SMALL, "d", later), Err(Exceeded::Project));
    }
}
