//! What the load did, by kind: lock-free counters the load tasks bump, taken
//! (and reset) once a minute for the sample line, and summed into totals.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// One kind of work the soak does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `POST /oauth/token` (client credentials).
    Token,
    /// `GET /v1/transactions` and `GET /v1/matters`.
    Poll,
    /// `POST /v1/fees` (and replays of the same `Idempotency-Key`).
    Fee,
    /// Calendar API calls the gateway made to the emulator (failed: faulted answers).
    Google,
    /// Diary entries added, edited or deleted in the firm databases.
    Diary,
    /// `scopegate grant disable|enable` and `credential issue` runs.
    Switch,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Token,
        Kind::Poll,
        Kind::Fee,
        Kind::Google,
        Kind::Diary,
        Kind::Switch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Token => "token",
            Kind::Poll => "poll",
            Kind::Fee => "fee",
            Kind::Google => "google",
            Kind::Diary => "diary",
            Kind::Switch => "switch",
        }
    }
}

/// Done and failed counts of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub done: u64,
    pub failed: u64,
}

#[derive(Default)]
struct Counter {
    done: AtomicU64,
    failed: AtomicU64,
}

/// Counters per kind, plus vendor requests refused because the firm's grant was
/// off (expected while the switcher has it off: neither done nor failed), and
/// the first few failures spelled out.
#[derive(Default)]
pub struct Tally {
    counters: [Counter; 6],
    refused: AtomicU64,
    examples: Mutex<Vec<String>>,
}

/// One minute's (or the whole run's) counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub by_kind: BTreeMap<Kind, Count>,
    pub refused: u64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        for (kind, count) in &other.by_kind {
            let mine = self.by_kind.entry(*kind).or_default();
            mine.done += count.done;
            mine.failed += count.failed;
        }
        self.refused += other.refused;
    }

    pub fn get(&self, kind: Kind) -> Count {
        self.by_kind.get(&kind).copied().unwrap_or_default()
    }

    /// `token 12/0 poll 1490/0 ...` (done/failed per kind) and the refusals.
    pub fn line(&self) -> String {
        let mut parts: Vec<String> = Kind::ALL
            .iter()
            .map(|kind| {
                let c = self.get(*kind);
                format!("{} {}/{}", kind.name(), c.done, c.failed)
            })
            .collect();
        parts.push(format!("refused {}", self.refused));
        parts.join(" ")
    }
}

/// At most this many failures are kept word for word.
const EXAMPLES: usize = 20;

impl Tally {
    fn counter(&self, kind: Kind) -> &Counter {
        &self.counters[kind as usize]
    }

    pub fn done(&self, kind: Kind) {
        self.counter(kind).done.fetch_add(1, Relaxed);
    }

    /// A failure, counted and (the first few) kept with `what` went wrong.
    pub fn failed(&self, kind: Kind, what: impl Into<String>) {
        self.counter(kind).failed.fetch_add(1, Relaxed);
        let mut examples = self.examples.lock().expect("examples");
        if examples.len() < EXAMPLES {
            let what = what.into();
            eprintln!("soak: {} failed: {what}", kind.name());
            examples.push(format!("{}: {what}", kind.name()));
        }
    }

    pub fn refused(&self) {
        self.refused.fetch_add(1, Relaxed);
    }

    /// The counts since the last take, resetting them.
    pub fn take(&self) -> Counts {
        let by_kind = Kind::ALL
            .iter()
            .map(|kind| {
                let c = self.counter(*kind);
                (
                    *kind,
                    Count {
                        done: c.done.swap(0, Relaxed),
                        failed: c.failed.swap(0, Relaxed),
                    },
                )
            })
            .collect();
        Counts {
            by_kind,
            refused: self.refused.swap(0, Relaxed),
        }
    }

    /// The failures kept word for word.
    pub fn examples(&self) -> Vec<String> {
        self.examples.lock().expect("examples").clone()
    }
}
