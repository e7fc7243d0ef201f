//! Outbound records committed per second through `OutboundLog::record_send`
//! (the group-committing writer) on SQLite (file, WAL, synchronous=FULL) and
//! PostgreSQL, with 1 and with N concurrent writers. Baseline, in the same
//! run and on the same registry: the same writer with batches capped at one
//! record, i.e. one transaction (and one fsync) per record with the same
//! chain-head locking, hashing and INSERT.
//!
//! `cargo bench -p scopegate --bench outbound_log`
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SCOPEGATE_BENCH_SECONDS` | 3 | measured seconds per case |
//! | `SCOPEGATE_BENCH_WRITERS` | 32 | concurrent writers of the many-writer cases |
//! | `SCOPEGATE_BENCH_FIRMS` | 8 | firms the writers spread over (writer i -> firm i mod n) |
//! | `SCOPEGATE_BENCH_RECORD_IDS` | 100 | record ids per record (each is a row of the record-id index) |
//! | `SCOPEGATE_BENCH_BACKENDS` | sqlite,postgres | registries to measure |
//! | `SCOPEGATE_TEST_POSTGRES_URL` | postgres://postgres@127.0.0.1:5432/postgres | admin URL |

mod common;

use common::{backends, env_usize, machine_line, per_sec, BenchRegistry};
use scopegate::outbound_log::{record_indexer, verify_all, Direction, NewSend, OutboundLog};
use scopegate::registry::Registry;
use std::time::{Duration, Instant};

/// The writer's default cap (`MAX_BATCH` in `outbound_log::writer`).
const GROUP_MAX_BATCH: usize = 512;

struct Outcome {
    records: u64,
    elapsed: Duration,
    transactions: u64,
}

impl Outcome {
    fn rate(&self) -> f64 {
        per_sec(self.records, self.elapsed)
    }
    fn mean_batch(&self) -> f64 {
        self.records as f64 / self.transactions.max(1) as f64
    }
}

/// What one `GET /v1/transactions?limit=100` logs: 100 record ids (`ids`), 8 fields, a 20 kB page.
fn page_send(firm_id: &str, ids: usize) -> NewSend {
    NewSend {
        firm_id: firm_id.to_string(),
        grant_id: format!("gr_{firm_id}"),
        connector: "accounting".into(),
        direction: Direction::Outbound,
        method: "GET".into(),
        target: "/v1/transactions response to credential cr_bench".into(),
        fields: [
            "id",
            "account",
            "amount_cents",
            "currency",
            "matter_id",
            "reference",
            "posted_at",
            "change_seq",
        ]
        .map(String::from)
        .to_vec(),
        record_ids: (0..ids).map(|_| uuid::Uuid::new_v4().to_string()).collect(),
        payload: vec![b'x'; 20 * 1024],
    }
}

fn record_ids() -> usize {
    env_usize("SCOPEGATE_BENCH_RECORD_IDS", 100)
}

/// One master key for the whole run: the writer chains with it, the check verifies with it.
fn bench_keys() -> std::sync::Arc<scopegate::keys::LogKeys> {
    static KEYS: std::sync::OnceLock<std::sync::Arc<scopegate::keys::LogKeys>> =
        std::sync::OnceLock::new();
    KEYS.get_or_init(|| std::sync::Arc::new(scopegate::keys::Keyring::ephemeral().log_keys()))
        .clone()
}

/// Runs `writers` tasks calling `record_send` back to back for `duration`.
async fn run_case(
    registry: &Registry,
    firms: &[String],
    writers: usize,
    max_batch: usize,
    duration: Duration,
) -> Outcome {
    let (log, writer_task) =
        OutboundLog::start_with_max_batch(registry.clone(), bench_keys(), max_batch);
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let log = log.clone();
            let send = page_send(&firms[i % firms.len()], record_ids());
            tokio::spawn(async move {
                let mut sent = 0u64;
                while Instant::now() < deadline {
                    log.record_send(send.clone()).await.expect("record_send");
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    let mut records = 0;
    for task in tasks {
        records += task.await.expect("writer task");
    }
    let elapsed = start.elapsed();
    let (transactions, committed) = log.committed();
    assert_eq!(committed, records, "every acknowledged record was counted");
    drop(log);
    writer_task.await.expect("writer stops");
    Outcome {
        records,
        elapsed,
        transactions,
    }
}

/// The sends of `firm` not yet in the record-id index, and their record ids.
async fn backlog_of(registry: &Registry, firm: &str) -> (u64, u64) {
    let row = sqlx::query(
        "SELECT COUNT(*) AS sends FROM outbound_log l \
         WHERE l.firm_id = $1 AND l.kind = 'send' \
         AND l.seq > COALESCE((SELECT indexed_seq FROM outbound_index_marks WHERE firm_id = $1), 0)",
    )
    .bind(firm)
    .fetch_one(registry.pool())
    .await
    .expect("backlog");
    let sends: i64 = sqlx::Row::get(&row, "sends");
    (sends as u64, sends as u64 * record_ids() as u64)
}

async fn bench_backend(backend: &str, seconds: u64, writer_counts: &[usize], firm_count: usize) {
    let Some(bench) = BenchRegistry::create(backend, "outbound_log", firm_count).await else {
        return;
    };
    let (registry, firms) = (&bench.registry, &bench.firms);
    // Warm-up (not reported): creates the WAL / fills caches.
    run_case(
        registry,
        firms,
        4,
        GROUP_MAX_BATCH,
        Duration::from_millis(500),
    )
    .await;

    let duration = Duration::from_secs(seconds);
    for &writers in writer_counts {
        let baseline = run_case(registry, firms, writers, 1, duration).await;
        let group = run_case(registry, firms, writers, GROUP_MAX_BATCH, duration).await;
        for (mode, o) in [
            ("one commit per record (baseline)", &baseline),
            ("group commit (max batch 512)", &group),
        ] {
            println!(
                "{backend:<9} {writers:>7}  {mode:<34} {:>8} {:>7.2} {:>10.0} {:>10.1}",
                o.records,
                o.elapsed.as_secs_f64(),
                o.rate(),
                o.mean_batch()
            );
        }
        println!(
            "{backend:<9} {writers:>7}  group commit / baseline = {:.2}x",
            group.rate() / baseline.rate()
        );
    }
    // The record-id index is written after the sends (by the writer when its
    // queue is idle, and by any report first): how fast the backlog the
    // many-writer cases left behind is indexed.
    let started = Instant::now();
    let (mut sends, mut rows) = (0u64, 0u64);
    for firm in firms {
        let (s, r) = backlog_of(registry, firm).await;
        sends += s;
        rows += r;
        record_indexer::catch_up(registry, firm)
            .await
            .expect("index catch-up");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{backend:<9} record-id index catch-up: {sends} sends, {rows} index rows in {secs:.2}s = {:.0} sends/s, {:.0} rows/s",
        sends as f64 / secs.max(1e-9),
        rows as f64 / secs.max(1e-9)
    );
    let started = Instant::now();
    let report = verify_all(registry, &bench_keys(), None, None)
        .await
        .expect("verify");
    println!(
        "{backend:<9} check: verify_all read {} records of {} firms in {:.2}s, {} chain faults",
        report.records,
        report.firms,
        started.elapsed().as_secs_f64(),
        report.faults.len()
    );
    bench.finish().await;
}

#[tokio::main]
async fn main() {
    let seconds = env_usize("SCOPEGATE_BENCH_SECONDS", 3) as u64;
    let writers = env_usize("SCOPEGATE_BENCH_WRITERS", 32);
    let firms = env_usize("SCOPEGATE_BENCH_FIRMS", 8).max(1);
    println!("== outbound_log: records committed per second through OutboundLog::record_send");
    println!("{}", machine_line());
    println!(
        "{seconds}s per case; writers spread over {firms} firms; each record: {} record ids, 8 fields, 20 kB payload hashed",
        record_ids()
    );
    println!(
        "{:<9} {:>7}  {:<34} {:>8} {:>7} {:>10} {:>10}",
        "backend", "writers", "mode", "records", "secs", "records/s", "mean batch"
    );
    for backend in backends("sqlite,postgres") {
        bench_backend(&backend, seconds, &[1, writers], firms).await;
    }
}
