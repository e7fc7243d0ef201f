//! Tenancy at scale: at 1,000, 10,000 and 100,000 registered firms (each
//! size in a child process of its own), min(10,000, firms) of them active.
//! Every registered firm has a live accounting grant, credential and access
//! token in the registry; each active firm has its own SQLite database (one
//! seeded template copied per firm) and is touched once through
//! `Tenancy::firm_db` plus `SELECT count(*) FROM matters`, and its vendor's
//! token is resolved the way a `/v1/...` request resolves it (the registry's
//! `resolve_token`, then the grant handle from `grant_for_token`). Reports,
//! per size, the process's peak RSS (VmHWM, target < 200 MB), the cold
//! first-query latency per firm (target p99 < 20 ms, the warm second query on
//! the same firm as its baseline) and the token resolution latency, then
//! compares the sizes with the first as the baseline (target: token
//! resolution flat, i.e. within 1.5x at 100x the firms).
//!
//! `cargo bench -p scopegate --bench tenancy`
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SCOPEGATE_BENCH_FIRMS` | 1000,10000,100000 | registered firms, one run per size (the first is the baseline) |
//! | `SCOPEGATE_BENCH_ACTIVE` | 10000 | active firms at most (touched, and their tokens resolved) |
//! | `SCOPEGATE_BENCH_PROVISION_ALL` | 0 | 1: copy a database for every registered firm, not only the active ones (at 100,000 firms: 90,000 more copies of 96 kB, about 9 GB) |
//! | `SCOPEGATE_BENCH_TOKEN_PASSES` | 3 | token resolutions per active firm (each pass over all active firms in a new shuffled order, as polls of many firms interleave) |
//! | `SCOPEGATE_BENCH_POOL_CAPACITY` | 256 | `Tenancy` capacity (the `firm_pool_capacity` default) |
//! | `SCOPEGATE_BENCH_PARALLEL` | 1 | after the timed queries, this many concurrent untimed queries per firm (opens up to that many connections per pool, as concurrent requests of one firm would) |

mod common;
mod per_size;
mod scale_registry;

use common::{env_usize, machine_line, memory_line, ms, reset_peak_rss, Percentiles};
use per_size::Figures;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use scale_registry::ActiveFirm;
use scopegate::registry::Registry;
use scopegate::tenancy::{FirmDb, FirmScope, Tenancy};
use sqlx::Row;
use std::time::{Duration, Instant};

const FIRMS_VARIABLE: &str = "SCOPEGATE_BENCH_FIRMS";
/// Token resolution counts as flat when the largest size's p50 is within this factor of the first's.
const FLAT_FACTOR: f64 = 1.5;

struct Firm(String);

impl FirmScope for Firm {
    fn firm_id(&self) -> &str {
        &self.0
    }
}

/// `firm_db` + `SELECT count(*) FROM matters`, timed; checks the firm's own rows came back.
async fn touch(tenancy: &Tenancy, scope: &Firm) -> (Duration, FirmDb) {
    let t = Instant::now();
    let db = tenancy.firm_db(scope).await.expect("firm db");
    let row = sqlx::query("SELECT count(*) AS n FROM matters")
        .fetch_one(db.pool())
        .await
        .expect("count");
    let elapsed = t.elapsed();
    assert_eq!(
        row.get::<i64, _>("n"),
        10,
        "each firm sees its own seeded matters"
    );
    (elapsed, db)
}

/// The cold (first) and warm (second) query of every active firm, in order.
async fn touch_all(
    tenancy: &Tenancy,
    firms: &[ActiveFirm],
    parallel: usize,
) -> (Vec<Duration>, Vec<Duration>, u64) {
    let mut cold = Vec::with_capacity(firms.len());
    let mut warm = Vec::with_capacity(firms.len());
    let mut connections = 0u64;
    for firm in firms {
        let scope = Firm(firm.firm_id.clone());
        let (t_cold, db) = touch(tenancy, &scope).await;
        // sqlx hands a connection back to its pool in a spawned task that first
        // pings it (a round trip to the connection's thread); wait for that, or
        // the warm query would open a second connection (see BENCHMARKS.md).
        for _ in 0..50 {
            if db.pool().num_idle() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (t_warm, _) = touch(tenancy, &scope).await;
        cold.push(t_cold);
        warm.push(t_warm);
        connections += u64::from(db.pool().size());
        if parallel > 1 {
            open_parallel_connections(&db, parallel).await;
        }
    }
    (cold, warm, connections)
}

/// Each query holds its connection until all have one, so the pool opens `parallel` connections.
async fn open_parallel_connections(db: &FirmDb, parallel: usize) {
    let queries = (0..parallel).map(|_| async {
        let mut tx = db.pool().begin().await.expect("begin");
        sqlx::query("SELECT count(*) FROM matters")
            .fetch_one(&mut *tx)
            .await
            .expect("count");
        tokio::time::sleep(Duration::from_millis(1)).await;
        tx.commit().await.expect("commit");
    });
    futures::future::join_all(queries).await;
}

/// Bearer token to firm and grant handle, as `vendor_auth` does it for every
/// `/v1/...` request, `passes` times per active firm, each pass in a new
/// shuffled order; checks each token names its own firm.
async fn time_token_resolutions(
    registry: &Registry,
    firms: &[ActiveFirm],
    passes: usize,
) -> Vec<Duration> {
    let catalogue = scopegate::connectors::catalogue();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut order: Vec<&ActiveFirm> = Vec::with_capacity(firms.len() * passes);
    for _ in 0..passes {
        let start = order.len();
        order.extend(firms.iter());
        order[start..].shuffle(&mut rng);
    }
    let mut samples = Vec::with_capacity(order.len());
    for firm in order {
        let t = Instant::now();
        let token = registry
            .resolve_token(&firm.access_token)
            .await
            .expect("registry")
            .expect("a live token resolves");
        let connector = catalogue.get(&token.connector).expect("known connector");
        let grant = scopegate::capabilities::grant_for_token(&token, &connector)
            .expect("the grant consented to the current contract");
        samples.push(t.elapsed());
        assert_eq!(grant.firm_id(), firm.firm_id, "a token names its own firm");
    }
    samples
}

/// The registry's size on disk (database and write-ahead log).
fn registry_megabytes(data_dir: &std::path::Path) -> f64 {
    ["registry.db", "registry.db-wal"]
        .iter()
        .filter_map(|name| std::fs::metadata(data_dir.join(name)).ok())
        .map(|m| m.len() as f64 / (1024.0 * 1024.0))
        .sum()
}

/// One size: registers `firm_count` firms, touches the active ones, resolves their tokens.
async fn run_size(firm_count: usize) {
    let active_count = env_usize("SCOPEGATE_BENCH_ACTIVE", 10_000).clamp(1, firm_count);
    let capacity = env_usize("SCOPEGATE_BENCH_POOL_CAPACITY", 256);
    let parallel = env_usize("SCOPEGATE_BENCH_PARALLEL", 1).max(1);
    let provision_all = env_usize("SCOPEGATE_BENCH_PROVISION_ALL", 0) == 1;
    let token_passes = env_usize("SCOPEGATE_BENCH_TOKEN_PASSES", 3).max(1);
    println!("== tenancy: {firm_count} registered firms, {active_count} active, each active firm touched once through Tenancy::firm_db");
    println!("pool capacity {capacity}; {parallel} concurrent connection(s) opened per firm");
    println!("{}", machine_line());
    println!("at start: {}", memory_line());

    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::connect_and_migrate(&format!(
        "sqlite://{}",
        dir.path().join("registry.db").display()
    ))
    .await
    .expect("registry");
    let started = Instant::now();
    let scale = scale_registry::create(
        &registry,
        dir.path(),
        firm_count,
        active_count,
        provision_all,
    )
    .await;
    println!(
        "setup: {} firms registered, each with a live accounting grant, credential and token (registry {:.1} MB); {} firm databases ({} kB each, copied from a seeded template){}; {:.1}s",
        scale.firm_ids.len(),
        registry_megabytes(dir.path()),
        scale.provisioned,
        scale.template_bytes / 1024,
        if provision_all { "" } else { " for the active firms only (the others are never opened)" },
        started.elapsed().as_secs_f64()
    );
    let reset = reset_peak_rss();
    println!(
        "peak RSS mark reset before the touch phase: {}",
        if reset {
            "yes"
        } else {
            "no (VmHWM below includes setup)"
        }
    );
    println!("before touching: {}", memory_line());

    let tenancy = Tenancy::new(registry.clone(), capacity);
    let started = Instant::now();
    let (mut cold, mut warm, connections) = touch_all(&tenancy, &scale.active, parallel).await;
    let touch_time = started.elapsed();
    println!(
        "touch phase done in {:.1}s; resolving tokens",
        touch_time.as_secs_f64()
    );
    let mut tokens = time_token_resolutions(&registry, &scale.active, token_passes).await;
    // Let the closes of evicted pools finish before the final reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "touched {active_count} firms in {:.1}s; open pools now {} (capacity {capacity})",
        touch_time.as_secs_f64(),
        tenancy.open_pools()
    );
    println!(
        "resolved {} tokens ({token_passes} passes over the {active_count} active firms)",
        tokens.len()
    );
    println!("after touching: {}", memory_line());
    println!("threads by name: {}", common::threads_by_name());
    println!(
        "connections per firm pool after its two timed queries: {:.2} on average",
        connections as f64 / active_count as f64
    );
    let hwm_mb = common::proc_status_kb("VmHWM").unwrap_or(0) as f64 / 1024.0;
    println!(
        "peak RSS (VmHWM) {hwm_mb:.1} MB against a target of < 200 MB: {}",
        if hwm_mb < 200.0 { "met" } else { "MISSED" }
    );
    let over_target = cold
        .iter()
        .filter(|t| **t >= Duration::from_millis(20))
        .count();
    let cold_p = Percentiles::of(&mut cold);
    let warm_p = Percentiles::of(&mut warm);
    let token_p = Percentiles::of(&mut tokens);
    println!(
        "{:<42} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "latency per firm (ms)", "p50", "p95", "p99", "max", "mean"
    );
    for (what, p) in [
        ("cold: firm_db + first query", &cold_p),
        ("warm: firm_db + second query (baseline)", &warm_p),
        ("token resolution: bearer -> firm + grant", &token_p),
    ] {
        println!(
            "{what:<42} {:>9} {:>9} {:>9} {:>9} {:>9}",
            ms(p.p50),
            ms(p.p95),
            ms(p.p99),
            ms(p.max),
            ms(p.mean)
        );
    }
    println!(
        "cold first query against a target of < 20 ms: p99 {} ms, max {} ms: {}; cold/warm p50 = {:.1}x",
        ms(cold_p.p99),
        ms(cold_p.max),
        if cold_p.max < Duration::from_millis(20) {
            "met (max)"
        } else if cold_p.p99 < Duration::from_millis(20) {
            "met at p99, not at max"
        } else {
            "MISSED"
        },
        cold_p.p50.as_secs_f64() / warm_p.p50.as_secs_f64()
    );
    println!(
        "cold touches at or over 20 ms: {over_target} of {active_count} ({:.2}%)",
        100.0 * over_target as f64 / active_count as f64
    );
    let in_ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{}",
        per_size::result_line(&[
            ("firms", firm_count as f64),
            ("active", active_count as f64),
            ("peak_rss_mb", hwm_mb),
            ("cold_p50_ms", in_ms(cold_p.p50)),
            ("cold_p99_ms", in_ms(cold_p.p99)),
            ("cold_max_ms", in_ms(cold_p.max)),
            ("token_p50_ms", in_ms(token_p.p50)),
            ("token_p99_ms", in_ms(token_p.p99)),
        ])
    );
    registry.close().await;
}

/// One line per size, the first size as the baseline, then the verdicts at the largest.
fn compare_sizes(results: &[Figures]) {
    let figure = |f: &Figures, key: &str| *f.get(key).unwrap_or(&f64::NAN);
    let base = &results[0];
    println!();
    println!(
        "== tenancy across sizes (baseline: {} firms)",
        figure(base, "firms")
    );
    println!("{}", machine_line());
    for r in results {
        println!(
            "tenancy scale: {} firms ({} active): peak RSS {:.1} MB; cold first query p50 {:.3} p99 {:.3} max {:.3} ms; token resolution p50 {:.4} ms ({:.2}x), p99 {:.4} ms ({:.2}x)",
            figure(r, "firms"),
            figure(r, "active"),
            figure(r, "peak_rss_mb"),
            figure(r, "cold_p50_ms"),
            figure(r, "cold_p99_ms"),
            figure(r, "cold_max_ms"),
            figure(r, "token_p50_ms"),
            figure(r, "token_p50_ms") / figure(base, "token_p50_ms"),
            figure(r, "token_p99_ms"),
            figure(r, "token_p99_ms") / figure(base, "token_p99_ms"),
        );
    }
    let last = results.last().expect("one size at least");
    if let [.., before, last] = results {
        println!(
            "token resolution from {} to {} firms: p50 {:.2}x, p99 {:.2}x",
            figure(before, "firms"),
            figure(last, "firms"),
            figure(last, "token_p50_ms") / figure(before, "token_p50_ms"),
            figure(last, "token_p99_ms") / figure(before, "token_p99_ms"),
        );
    }
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let token_ratio = figure(last, "token_p50_ms") / figure(base, "token_p50_ms");
    println!(
        "scale goal at {} firms: peak RSS {:.1} MB < 200 MB: {}; cold first query p99 {:.3} ms < 20 ms: {}; token resolution p50 {token_ratio:.2}x of {} firms (flat: <= {FLAT_FACTOR}x): {}",
        figure(last, "firms"),
        figure(last, "peak_rss_mb"),
        verdict(figure(last, "peak_rss_mb") < 200.0),
        figure(last, "cold_p99_ms"),
        verdict(figure(last, "cold_p99_ms") < 20.0),
        figure(base, "firms"),
        verdict(token_ratio <= FLAT_FACTOR),
    );
}

#[tokio::main]
async fn main() {
    let sizes = per_size::env_sizes(FIRMS_VARIABLE, &[1_000, 10_000, 100_000]);
    assert!(
        !sizes.is_empty() && sizes.iter().all(|&n| n > 0),
        "{FIRMS_VARIABLE} must list one or more firm counts above zero"
    );
    if let [size] = sizes[..] {
        run_size(size).await;
        return;
    }
    let results: Vec<Figures> = sizes
        .iter()
        .map(|&size| per_size::run_child(FIRMS_VARIABLE, size))
        .collect();
    compare_sizes(&results);
}
