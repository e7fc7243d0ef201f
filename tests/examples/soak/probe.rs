//! One look at the gateway process from outside: resident memory and OS
//! threads (`/proc/PID/status`), open file descriptors (`/proc/PID/fd`),
//! tokio tasks alive (its `/metrics`), and the warnings its log gained.

use std::path::Path;

/// What one probe saw (`None`: could not be read).
#[derive(Debug, Clone, Default)]
pub struct Probe {
    pub rss_kib: Option<u64>,
    pub threads: Option<u64>,
    pub fds: Option<u64>,
    pub tasks: Option<u64>,
}

impl Probe {
    pub async fn take(pid: u32, http: &reqwest::Client, metrics_url: &str) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| -> Option<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .ok()
            .map(|d| d.count() as u64);
        Self {
            rss_kib: field("VmRSS:"),
            threads: field("Threads:"),
            fds,
            tasks: alive_tasks(http, metrics_url).await,
        }
    }
}

/// `scopegate_runtime_alive_tasks` from one scrape.
async fn alive_tasks(http: &reqwest::Client, metrics_url: &str) -> Option<u64> {
    let text = http.get(metrics_url).send().await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("scopegate_runtime_alive_tasks "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Counts WARN and ERROR lines of a JSON-lines log past `offset` bytes; returns
/// (count, new offset, the first such line seen). sqlx's slow-statement notes are
/// not counted: they measure how busy the machine is.
pub fn new_warnings(log: &Path, offset: u64) -> (u64, u64, Option<String>) {
    use std::io::{Read, Seek, SeekFrom};
    let mut bytes = Vec::new();
    let read = std::fs::File::open(log).and_then(|mut file| {
        file.seek(SeekFrom::Start(offset))?;
        file.read_to_end(&mut bytes)
    });
    if read.is_err() {
        return (0, offset, None);
    }
    // Only whole lines: the writer may be mid-line.
    let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&bytes[..end]);
    let mut first = None;
    let mut count = 0;
    for line in text.lines() {
        let complaint = line.contains("\"level\":\"WARN\"") || line.contains("\"level\":\"ERROR\"");
        if complaint && !line.contains("\"slow_threshold\"") {
            count += 1;
            first.get_or_insert_with(|| line.chars().take(400).collect());
        }
    }
    (count, offset + end as u64, first)
}

fn show(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rss_kib={} fds={} threads={} tasks={}",
            show(self.rss_kib),
            show(self.fds),
            show(self.threads),
            show(self.tasks)
        )
    }
}
