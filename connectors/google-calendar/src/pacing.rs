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
//! The queue is ranked: on the project's limiter, the call of the fee
//! earner who has made the fewest calls goes first (ties first come, first
//! served), so one who paused (between batches, or connecting later) catches
//! up under their own cap instead of finishing last, alone, with the
//! project's quota mostly unused.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;

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

/// A rate limiter whose waiters take turns, lowest rank first.
pub struct Pacer {
    limiter: DefaultDirectRateLimiter,
    clock: DefaultClock,
    turns: Mutex<Turns>,
    /// Calls this limiter has let through.
    admitted: AtomicU64,
}

/// Who holds the turn, and who waits for it, by (rank, arrival).
#[derive(Default)]
struct Turns {
    taken: bool,
    waiting: BTreeMap<(u64, u64), oneshot::Sender<()>>,
    arrivals: u64,
}

impl Pacer {
    pub fn new(quota: Quota) -> Self {
        Self {
            limiter: RateLimiter::direct(quota),
            clock: DefaultClock::default(),
            turns: Mutex::new(Turns::default()),
            admitted: AtomicU64::new(0),
        }
    }

    /// Calls let through so far.
    pub fn admitted(&self) -> u64 {
        self.admitted.load(Ordering::Relaxed)
    }

    /// Waits until the limiter lets one more call through (first come, first served).
    pub async fn wait_turn(&self) {
        self.wait_turn_ranked(0).await
    }

    /// Waits until the limiter lets one more call through; among the calls
    /// waiting, the lowest `rank` goes first (equal ranks in arrival order).
    pub async fn wait_turn_ranked(&self, rank: u64) {
        let queued = {
            let mut turns = self.turns.lock().expect("turns");
            if turns.taken {
                let (tx, rx) = oneshot::channel();
                let key = (rank, turns.arrivals);
                turns.arrivals += 1;
                turns.waiting.insert(key, tx);
                Some(Waiting {
                    pacer: self,
                    key,
                    rx,
                    granted: false,
                })
            } else {
                turns.taken = true;
                None
            }
        };
        if let Some(mut waiting) = queued {
            // The sender is only dropped after sending (see `pass_turn`).
            let _ = (&mut waiting.rx).await;
            waiting.granted = true;
        }
        let _turn = Turn(self);
        while let Err(not_until) = self.limiter.check() {
            tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
        }
        self.admitted.fetch_add(1, Ordering::Relaxed);
    }

    /// Hands the turn to the first waiter, or frees it.
    fn pass_turn(&self) {
        let mut turns = self.turns.lock().expect("turns");
        while let Some((_, next)) = turns.waiting.pop_first() {
            if next.send(()).is_ok() {
                return;
            }
        }
        turns.taken = false;
    }
}

/// The turn, held while its call waits for the limiter; passed on when dropped.
struct Turn<'a>(&'a Pacer);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.pass_turn();
    }
}

/// A place in the queue. Dropped unanswered (its call cancelled), it leaves
/// the queue; dropped after the turn was passed to it but before its call
/// saw it, it passes the turn on.
struct Waiting<'a> {
    pacer: &'a Pacer,
    key: (u64, u64),
    rx: oneshot::Receiver<()>,
    granted: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.granted {
            return;
        }
        let still_queued = {
            let mut turns = self.pacer.turns.lock().expect("turns");
            turns.waiting.remove(&self.key).is_some()
        };
        if !still_queued {
            // `pass_turn` removed it and sent it the turn, under the same lock.
            self.pacer.pass_turn();
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

    #[tokio::test]
    async fn the_lowest_rank_waiting_goes_first_and_a_cancelled_waiter_blocks_no_one() {
        // 10 calls a second, no burst beyond the first: each turn waits ~100 ms.
        let quota = Quota::with_period(Duration::from_millis(100)).unwrap();
        let pacer = std::sync::Arc::new(Pacer::new(quota));
        pacer.wait_turn_ranked(0).await;
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for rank in [5u64, 1, 3, 1] {
            let (pacer, order) = (pacer.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                pacer.wait_turn_ranked(rank).await;
                order.lock().unwrap().push(rank);
            }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // One more waiter, cancelled while queued (or holding the turn).
        let cancelled = {
            let pacer = pacer.clone();
            tokio::spawn(async move { pacer.wait_turn_ranked(0).await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        cancelled.abort();
        for waiter in waiters {
            tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("no waiter is left behind")
                .unwrap();
        }
        // Rank 5 found the turn free; the others queued behind it by rank, then arrival.
        assert_eq!(*order.lock().unwrap(), [5, 1, 1, 3]);
        assert_eq!(pacer.admitted(), 5);
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
