//! Tenancy at scale: 10,000 registered firms (default), each with its own
//! SQLite database (one seeded template copied per firm), each touched once
//! through `Tenancy::firm_db` plus `SELECT count(*) FROM matters`. Reports the
//! process's peak RSS (VmHWM, targets < 200 MB) and the cold first-query
//! latency per firm (target < 20 ms), with the warm second query on the same
//! firm as the baseline.
//!
//! `cargo bench -p scopegate --bench tenancy`
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SCOPEGATE_BENCH_FIRMS` | 10000 | registered firms, each with its own database |
//! | `SCOPEGATE_BENCH_POOL_CAPACITY` | 256 | `Tenancy` capacity (the `firm_pool_capacity` default) |
//! | `SCOPEGATE_BENCH_PARALLEL` | 1 | after the timed queries, this many concurrent untimed queries per firm (opens up to that many connections per pool, as concurrent requests of one firm would) |

mod common;

use common::{env_usize, machine_line, memory_line, ms, reset_peak_rss, Percentiles};
use scopegate::registry::Registry;
use scopegate::tenancy::{
    default_firm_url, provision_firm_database, seed, FirmDb, FirmScope, Tenancy,
};
use sqlx::Row;
use std::time::{Duration, Instant};

struct Firm(String);

impl FirmScope for Firm {
    fn firm_id(&self) -> &str {
        &self.0
    }
}

fn sqlite_path(url: &str) -> &str {
    url.trim_start_matches("sqlite://")
}

/// Seeds one firm database, then copies it for every firm and registers them all.
async fn create_firms(registry: &Registry, data_dir: &std::path::Path, ids: &[String]) -> u64 {
    let template_url = default_firm_url(data_dir, "template");
    let template = provision_firm_database("template", &template_url)
        .await
        .expect("template database");
    seed::seed_demo(
        &template,
        seed::SeedSize {
            fee_earners: 3,
            clients: 8,
            matters: 10,
            diary_entries: 30,
            transactions: 60,
        },
    )
    .await
    .expect("seed");
    sqlx::query("VACUUM")
        .execute(template.pool())
        .await
        .expect("vacuum");
    template.pool().close().await; // last connection closed: WAL checkpointed into the file
    let template_path = sqlite_path(&template_url).to_string();
    let size = std::fs::metadata(&template_path).expect("template").len();

    let mut tx = registry.pool().begin().await.expect("begin");
    let now = scopegate::clock::now_ms();
    for id in ids {
        let url = default_firm_url(data_dir, id);
        std::fs::copy(&template_path, sqlite_path(&url)).expect("copy template");
        // The same row `Registry::add_firm` writes, in one transaction for all firms.
        sqlx::query("INSERT INTO firms (id, name, data_url, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(format!("Firm {id}"))
            .bind(&url)
            .bind(now)
            .execute(&mut *tx)
            .await
            .expect("register firm");
    }
    tx.commit().await.expect("commit");
    size
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

#[tokio::main]
async fn main() {
    let firm_count = env_usize("SCOPEGATE_BENCH_FIRMS", 10_000);
    let capacity = env_usize("SCOPEGATE_BENCH_POOL_CAPACITY", 256);
    let parallel = env_usize("SCOPEGATE_BENCH_PARALLEL", 1).max(1);
    println!("== tenancy: {firm_count} firms, one SQLite database each, touched once through Tenancy::firm_db");
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
    let ids: Vec<String> = (0..firm_count).map(|i| format!("firm-{i:05}")).collect();
    let started = Instant::now();
    let template_size = create_firms(&registry, dir.path(), &ids).await;
    println!(
        "setup: {firm_count} firm databases ({} kB each, copied from a seeded template) registered in {:.1}s",
        template_size / 1024,
        started.elapsed().as_secs_f64()
    );
    println!("after setup: {}", memory_line());
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
    let mut cold = Vec::with_capacity(ids.len());
    let mut warm = Vec::with_capacity(ids.len());
    let mut connections = 0u64;
    let started = Instant::now();
    for id in &ids {
        let scope = Firm(id.clone());
        let (t_cold, db) = touch(&tenancy, &scope).await;
        // sqlx hands a connection back to its pool in a spawned task that first
        // pings it (a round trip to the connection's thread); wait for that, or
        // the warm query would open a second connection (see BENCHMARKS.md).
        for _ in 0..50 {
            if db.pool().num_idle() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (t_warm, _) = touch(&tenancy, &scope).await;
        cold.push(t_cold);
        warm.push(t_warm);
        connections += u64::from(db.pool().size());
        if parallel > 1 {
            // Each query holds its connection until all have one, so the pool opens `parallel` connections.
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
    }
    let touch_time = started.elapsed();
    // Let the closes of evicted pools finish before the final reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "touched {firm_count} firms in {:.1}s; open pools now {} (capacity {capacity})",
        touch_time.as_secs_f64(),
        tenancy.open_pools()
    );
    println!("after touching: {}", memory_line());
    println!("threads by name: {}", common::threads_by_name());
    println!(
        "connections per firm pool after its two timed queries: {:.2} on average",
        connections as f64 / ids.len() as f64
    );
    let hwm = common::proc_status_kb("VmHWM").unwrap_or(0);
    println!(
        "peak RSS (VmHWM) {:.1} MB against a target of < 200 MB: {}",
        hwm as f64 / 1024.0,
        if hwm < 200 * 1024 { "met" } else { "MISSED" }
    );
    println!(
        "{:<38} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "latency per firm (ms)", "p50", "p95", "p99", "max", "mean"
    );
    let over_target = cold
        .iter()
        .filter(|t| **t >= Duration::from_millis(20))
        .count();
    let cold_p = Percentiles::of(&mut cold);
    let warm_p = Percentiles::of(&mut warm);
    for (what, p) in [
        ("cold: firm_db + first query", &cold_p),
        ("warm: firm_db + second query (baseline)", &warm_p),
    ] {
        println!(
            "{what:<38} {:>9} {:>9} {:>9} {:>9} {:>9}",
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
        "cold touches at or over 20 ms: {over_target} of {} ({:.2}%)",
        ids.len(),
        100.0 * over_target as f64 / ids.len() as f64
    );
    registry.close().await;
}
