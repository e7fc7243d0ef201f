//! Shared by the benchmarks: sizes from the environment, throwaway
//! PostgreSQL databases, process memory figures and latency percentiles.
#![allow(dead_code)]

use sqlx::Connection;
use std::time::Duration;

/// Records in the registry's outbound log (every firm): what a bench checks
/// against the 2 per request its gateway should have written, after the
/// gateway's graceful stop has committed the results still held.
pub async fn outbound_records(registry: &scopegate::registry::Registry) -> i64 {
    use sqlx::Row;
    sqlx::query("SELECT count(*) AS n FROM outbound_log")
        .fetch_one(registry.pool())
        .await
        .expect("count the outbound log")
        .get("n")
}

/// A size or count from the environment variable `name`, else `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

/// Which registry backends to run: `SCOPEGATE_BENCH_BACKENDS` (comma-separated
/// `sqlite`, `postgres`), else `default`.
pub fn backends(default: &str) -> Vec<String> {
    std::env::var("SCOPEGATE_BENCH_BACKENDS")
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|b| b.trim().to_lowercase())
        .filter(|b| !b.is_empty())
        .collect()
}

pub fn postgres_admin_url() -> String {
    std::env::var("SCOPEGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A uniquely named PostgreSQL database created for one run; `drop_now` removes it.
pub struct PgDatabase {
    pub url: String,
    name: String,
}

impl PgDatabase {
    /// Creates `sgbench_<label>_<uuid>`, or says why not (PostgreSQL unreachable).
    pub async fn create(label: &str) -> Result<Self, String> {
        sqlx::any::install_default_drivers();
        let admin = postgres_admin_url();
        let name = format!("sgbench_{label}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::AnyConnection::connect(&admin)
            .await
            .map_err(|e| format!("PostgreSQL at {admin} unreachable: {e}"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("cannot create database {name}: {e}"))?;
        let _ = conn.close().await;
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin);
        Ok(Self {
            url: format!("{base}/{name}"),
            name,
        })
    }

    /// Drops the database (closing any connection still on it).
    pub async fn drop_now(self) {
        let admin = postgres_admin_url();
        match sqlx::AnyConnection::connect(&admin).await {
            Ok(mut conn) => {
                let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                {
                    eprintln!("could not drop database {}: {e}", self.name);
                }
                let _ = conn.close().await;
            }
            Err(e) => eprintln!("could not drop database {}: {e}", self.name),
        }
    }
}

/// A fresh registry for one bench run, with `firm_count` registered firms
/// (`firm-000`, ...). Keep it alive for the run, then call `finish`.
pub struct BenchRegistry {
    pub dir: tempfile::TempDir,
    pub pg: Option<PgDatabase>,
    pub registry: scopegate::registry::Registry,
    pub firms: Vec<String>,
}

impl BenchRegistry {
    /// `None` (after saying so) when PostgreSQL is asked for but unreachable.
    pub async fn create(backend: &str, label: &str, firm_count: usize) -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let pg = match backend {
            "sqlite" => None,
            "postgres" => match PgDatabase::create(label).await {
                Ok(db) => Some(db),
                Err(e) => {
                    println!("postgres: SKIPPED ({e})");
                    return None;
                }
            },
            other => panic!("unknown backend {other:?}; use sqlite or postgres"),
        };
        let url = match &pg {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", dir.path().join("registry.db").display()),
        };
        let registry = scopegate::registry::Registry::connect_and_migrate(&url)
            .await
            .expect("registry");
        let firms: Vec<String> = (0..firm_count).map(|i| format!("firm-{i:03}")).collect();
        for firm in &firms {
            registry
                .add_firm(firm, firm, &format!("sqlite:///nonexistent/{firm}.db"))
                .await
                .expect("add firm");
        }
        Some(Self {
            dir,
            pg,
            registry,
            firms,
        })
    }

    /// Closes the registry and drops a PostgreSQL database.
    pub async fn finish(self) {
        self.registry.close().await;
        if let Some(db) = self.pg {
            db.drop_now().await;
        }
    }
}

/// A field of /proc/self/status in kB (`VmHWM` = peak RSS, `VmRSS` = current).
pub fn proc_status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// "VmHWM 12.3 MB, VmRSS 10.1 MB, 7 threads, 12 open files".
pub fn memory_line() -> String {
    let mb = |f: &str| {
        proc_status_kb(f)
            .map(|kb| format!("{:.1} MB", kb as f64 / 1024.0))
            .unwrap_or_else(|| "n/a".into())
    };
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:").map(|n| n.trim().to_string()))
        })
        .unwrap_or_else(|| "?".into());
    let files = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count().to_string())
        .unwrap_or_else(|_| "?".into());
    format!(
        "VmHWM {}, VmRSS {}, {threads} threads, {files} open files",
        mb("VmHWM"),
        mb("VmRSS")
    )
}

/// The process's threads counted by name (digits dropped): "tokio-runtime-worker 4, sqlx-sqlite-worker- 256".
pub fn threads_by_name() -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let name: String = name
                .trim()
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .collect();
            *counts.entry(name).or_default() += 1;
        }
    }
    counts
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resets the peak-RSS mark (VmHWM) to the current RSS; false if the kernel refuses.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Latency percentiles of a set of samples.
pub struct Percentiles {
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl Percentiles {
    pub fn of(samples: &mut [Duration]) -> Self {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        let at = |p: f64| {
            let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1]
        };
        let total: Duration = samples.iter().sum();
        Self {
            p50: at(50.0),
            p95: at(95.0),
            p99: at(99.0),
            max: *samples.last().expect("non-empty"),
            mean: total / samples.len() as u32,
        }
    }
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// Events per second.
pub fn per_sec(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

pub fn machine_line() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "machine: {cores} cores, load average {} (shared; figures are noisy, compare ratios)",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}
