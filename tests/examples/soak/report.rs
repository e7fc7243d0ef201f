//! The soak's output: one sample line per minute (the gateway seen from
//! outside, and what the load did in that minute by kind), and the summary at
//! the end (first and last samples, growth, totals).

use crate::probe::Probe;
use crate::tally::{Counts, Kind};

/// One minute of the soak.
#[derive(Debug, Clone)]
pub struct Sample {
    pub minute: u64,
    pub probe: Probe,
    pub counts: Counts,
    /// WARN/ERROR lines the gateway logged in that minute.
    pub warnings: u64,
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "minute {:>3}: {} | {} | warn {}",
            self.minute,
            self.probe,
            self.counts.line(),
            self.warnings
        )
    }
}

fn delta(first: Option<u64>, last: Option<u64>) -> String {
    match (first, last) {
        (Some(a), Some(b)) => format!("{a} -> {b} ({:+})", b as i64 - a as i64),
        _ => "?".into(),
    }
}

/// The summary lines: first and last samples, growth, totals by kind.
pub fn summary(samples: &[Sample], totals: &Counts) -> Vec<String> {
    let mut lines = Vec::new();
    // Minute 0 is the idle baseline; growth is measured under load, from minute 1.
    let loaded: Vec<&Sample> = samples.iter().filter(|s| s.minute > 0).collect();
    if let (Some(first), Some(last)) = (loaded.first(), loaded.last()) {
        lines.push(format!("first sample: {first}"));
        lines.push(format!("last sample:  {last}"));
        let growth = match (first.probe.rss_kib, last.probe.rss_kib) {
            (Some(a), Some(b)) => format!(
                "{:+} KiB ({:+.1}%) from minute {} to minute {}",
                b as i64 - a as i64,
                (b as f64 - a as f64) * 100.0 / a.max(1) as f64,
                first.minute,
                last.minute
            ),
            _ => "?".into(),
        };
        lines.push(format!("RSS growth: {growth}"));
        lines.push(format!(
            "open fds: {}; OS threads: {}; tokio alive tasks: {}",
            delta(first.probe.fds, last.probe.fds),
            delta(first.probe.threads, last.probe.threads),
            delta(first.probe.tasks, last.probe.tasks)
        ));
    }
    let kinds: Vec<String> = Kind::ALL
        .iter()
        .map(|kind| {
            let c = totals.get(*kind);
            format!("{} {} done, {} failed", kind.name(), c.done, c.failed)
        })
        .collect();
    lines.push(format!(
        "totals: {}; {} vendor requests refused while their grant was off",
        kinds.join("; "),
        totals.refused
    ));
    lines
}
