//! How fast the sync calls the Calendar API: under Google's two usage
//! quotas, requests per minute per user (`user_rate_per_second`, 600/min by
//! default) and per project (`project_rate_per_minute`, 10,000/min), each
//! counted by Google over a sliding minute. Each becomes a GCRA limiter that
//! spaces calls evenly at [`PACE`] of the quota: a rate of exactly the quota
//! would let the jitter between here and Google put one call too many into
//! some 60 s span and earn a 403. A small burst lets a call that woke a
//! millisecond late (tokio's timers are that coarse) not cost its successors
//! their slots; it stays well inside the 2% left over.
//!
//! A [`Pacer`] queues the calls waiting for a limiter, so that only the first
//! of them sleeps on it (governor's own `until_ready` wakes every waiter at
//! the same instant, and all but one go back to sleep: with 20 fee earners'
//! calls waiting on the project's limiter, that was 80 wake-ups a call).

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// The share of each quota the sync uses.
pub const PACE: f64 = 0.98;
/// Calls one fee earner may make at once after a pause (12 of 600 a minute are spare).
const USER_BURST: u32 = 3;
/// Calls all fee earners together may make at once (200 of 10,000 a minute are spare).
const PROJECT_BURST: u32 = 10;

/// One call every this long uses `PACE` of `per_minute` calls a minute.
fn spacing(per_minute: f64) -> Duration {
    Duration::from_secs_f64(60.0 / (per_minute.max(1.0) * PACE))
}

/// The pace of one fee earner's calls under a quota of `per_second` calls a second.
pub fn per_user(per_second: u32) -> Quota {
    Quota::with_period(spacing(f64::from(per_second) * 60.0))
        .expect("positive spacing")
        .allow_burst(NonZeroU32::new(USER_BURST).expect("positive"))
}

/// The pace of every fee earner's calls together under a quota of `per_minute` calls a minute.
pub fn per_project(per_minute: u32) -> Quota {
    Quota::with_period(spacing(f64::from(per_minute)))
        .expect("positive spacing")
        .allow_burst(NonZeroU32::new(PROJECT_BURST).expect("positive"))
}

/// A rate limiter whose waiters take turns.
pub struct Pacer {
    limiter: DefaultDirectRateLimiter,
    clock: DefaultClock,
    queue: tokio::sync::Mutex<()>,
}

impl Pacer {
    pub fn new(quota: Quota) -> Self {
        Self {
            limiter: RateLimiter::direct(quota),
            clock: DefaultClock::default(),
            queue: tokio::sync::Mutex::new(()),
        }
    }

    /// Waits until the limiter lets one more call through (first come, first served).
    pub async fn wait_turn(&self) {
        let _turn = self.queue.lock().await;
        while let Err(not_until) = self.limiter.check() {
            tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use governor::RateLimiter;

    /// Calls a limiter lets through in `span` when asked every millisecond.
    fn admitted(quota: Quota, span: Duration) -> u64 {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::direct_with_clock(quota, clock.clone());
        let mut count = 0;
        for _ in 0..span.as_millis() {
            if limiter.check().is_ok() {
                count += 1;
            }
            clock.advance(Duration::from_millis(1));
        }
        count
    }

    #[test]
    fn a_user_gets_most_of_googles_600_a_minute_and_never_more() {
        let minute = admitted(per_user(10), Duration::from_secs(60));
        assert!((585..600).contains(&minute), "{minute} calls in a minute");
        let second = admitted(per_user(10), Duration::from_secs(1));
        assert!(
            second <= 12,
            "a small burst only: {second} calls in the first second"
        );
    }

    #[tokio::test]
    async fn waiters_take_turns_at_the_pace() {
        let pacer = std::sync::Arc::new(Pacer::new(per_project(60_000)));
        let started = std::time::Instant::now();
        let waiters: Vec<_> = (0..40)
            .map(|_| {
                let pacer = pacer.clone();
                tokio::spawn(async move { pacer.wait_turn().await })
            })
            .collect();
        for waiter in waiters {
            waiter.await.unwrap();
        }
        // 1,000 a second at 98% with a burst of 10: the other 30 take about 31 ms.
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(29), "{took:?}");
    }

    #[test]
    fn the_project_gets_most_of_its_10000_a_minute_and_never_more() {
        let minute = admitted(per_project(10_000), Duration::from_secs(60));
        assert!(
            (9_750..10_000).contains(&minute),
            "{minute} calls in a minute"
        );
    }
}
