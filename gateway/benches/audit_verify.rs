//! `audit verify` speed: records per second of `outbound_log::verify_all`
//! over a log of 1,000,000 records (default), on SQLite (default) and PostgreSQL.
//! The log is filled quickly: chained records built in Rust and keyed with
//! `LogRecord::seal` (HMAC-SHA256), inserted in large multi-row transactions.
//! Baselines, in the same run over the same rows: the same `SELECT` streamed
//! without decoding, and streamed with every column decoded (everything
//! `verify` does except hashing), so the hashing cost shows as a ratio.
//!
//! `cargo bench -p scopegate --bench audit_verify`
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SCOPEGATE_BENCH_RECORDS` | 1000000 | records in the log |
//! | `SCOPEGATE_BENCH_FIRMS` | 10 | firms (chains) the records are spread over |
//! | `SCOPEGATE_BENCH_RECORD_IDS` | 5 | record ids per record (a 100-row page logs 100) |
//! | `SCOPEGATE_BENCH_ROUNDS` | 1 | passes of (scan, decode, verify) |
//! | `SCOPEGATE_BENCH_BACKENDS` | sqlite | registries to measure (`postgres`, or `sqlite,postgres`; ~1-1.5 min each at 1M) |

mod common;

use common::{backends, env_usize, machine_line, per_sec, BenchRegistry};
use futures::TryStreamExt;
use scopegate::keys::{LogKey, LogKeys};
use scopegate::outbound_log::{verify_all, LogRecord, GENESIS_HASH};
use scopegate::registry::{Backend, Registry};
use std::time::{Duration, Instant};

const COLUMNS: &str = "firm_id, seq, kind, at, grant_id, connector, direction, method, target, fields, record_ids, payload_sha256, bytes, send_seq, status, latency_us, prev_hash, hash, mac_key";
const COLUMN_COUNT: usize = 19;
/// Rows per INSERT: sqlx's SQLite binding slows down sharply with many
/// parameters in one statement (500 rows: ~2,800 rows/s, 10 rows: ~40,000).
fn rows_per_statement(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 10,
        Backend::Postgres => 500,
    }
}
const ROWS_PER_TRANSACTION: usize = 50_000;

/// The `n`th record of a firm's chain: sends and results alternate, like the
/// accounting API logs them (a result names its send by seq, not its record ids).
fn record(
    key: &LogKey,
    firm_id: &str,
    seq: i64,
    at: i64,
    ids: &[String],
    prev_hash: String,
) -> LogRecord {
    let is_send = seq % 2 == 1;
    let mut r = LogRecord {
        firm_id: firm_id.to_string(),
        seq,
        kind: if is_send { "send" } else { "result" }.into(),
        at,
        grant_id: format!("gr_{firm_id}"),
        connector: "accounting".into(),
        direction: "outbound".into(),
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
        record_ids: if is_send { ids.to_vec() } else { Vec::new() },
        payload_sha256: format!("{:064x}", seq),
        bytes: 20_480,
        send_seq: (!is_send).then_some(seq - 1),
        status: (!is_send).then_some(200),
        latency_us: (!is_send).then_some(1_500 + seq % 1000),
        prev_hash,
        hash: String::new(),
        mac_key: String::new(),
    };
    r.seal(key);
    r
}

fn insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=COLUMN_COUNT)
                .map(|c| format!("${}", r * COLUMN_COUNT + c))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO outbound_log ({COLUMNS}) VALUES {}",
        values.join(", ")
    )
}

async fn insert_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[LogRecord],
) -> Result<(), sqlx::Error> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(insert_sql(rows.len())));
    for r in rows {
        query = query
            .bind(r.firm_id.clone())
            .bind(r.seq)
            .bind(r.kind.clone())
            .bind(r.at)
            .bind(r.grant_id.clone())
            .bind(r.connector.clone())
            .bind(r.direction.clone())
            .bind(r.method.clone())
            .bind(r.target.clone())
            .bind(serde_json::to_string(&r.fields).expect("json"))
            .bind(serde_json::to_string(&r.record_ids).expect("json"))
            .bind(r.payload_sha256.clone())
            .bind(r.bytes)
            .bind(r.send_seq)
            .bind(r.status)
            .bind(r.latency_us)
            .bind(r.prev_hash.clone())
            .bind(r.hash.clone())
            .bind(r.mac_key.clone());
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Fills each firm's chain with `per_firm` valid records and sets its chain head.
async fn fill(
    registry: &Registry,
    keys: &LogKeys,
    firms: &[String],
    per_firm: usize,
    id_count: usize,
) {
    let rows_per_statement = rows_per_statement(registry.backend());
    let at0 = scopegate::clock::now_ms();
    for firm in firms {
        let ids: Vec<String> = (0..id_count)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        let mut prev = GENESIS_HASH.to_string();
        let mut seq = 0i64;
        while (seq as usize) < per_firm {
            let n = ROWS_PER_TRANSACTION.min(per_firm - seq as usize);
            let mut chunk = Vec::with_capacity(n);
            for _ in 0..n {
                seq += 1;
                let r = record(keys.current(), firm, seq, at0 + seq, &ids, prev);
                prev = r.hash.clone();
                chunk.push(r);
            }
            let mut tx = registry.pool().begin().await.expect("begin");
            for rows in chunk.chunks(rows_per_statement) {
                insert_rows(&mut tx, rows).await.expect("insert");
            }
            tx.commit().await.expect("commit");
        }
        sqlx::query("INSERT INTO outbound_chain_heads (firm_id, seq, hash) VALUES ($1, $2, $3)")
            .bind(firm)
            .bind(seq)
            .bind(&prev)
            .execute(registry.pool())
            .await
            .expect("chain head");
    }
}

/// Baseline 1: the verifier's SELECT, rows fetched but not decoded.
async fn scan(registry: &Registry, firms: &[String]) -> u64 {
    let sql = format!("SELECT {COLUMNS} FROM outbound_log WHERE firm_id = $1 ORDER BY seq");
    let mut count = 0;
    for firm in firms {
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(firm)
            .fetch(registry.pool());
        while rows.try_next().await.expect("row").is_some() {
            count += 1;
        }
    }
    count
}

/// Baseline 2: the same SELECT with every column decoded as the verifier does
/// (including the two JSON lists), and the chain links compared; no hashing.
async fn scan_decode(registry: &Registry, firms: &[String]) -> u64 {
    let sql = format!("SELECT {COLUMNS} FROM outbound_log WHERE firm_id = $1 ORDER BY seq");
    let mut count = 0;
    for firm in firms {
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(firm)
            .fetch(registry.pool());
        let mut prev = GENESIS_HASH.to_string();
        while let Some(row) = rows.try_next().await.expect("row") {
            let rec = LogRecord::from_row(&row);
            assert_eq!(rec.prev_hash, prev, "chain link");
            prev = rec.hash;
            count += 1;
        }
    }
    count
}

async fn timed<F: std::future::Future<Output = u64>>(f: F) -> (u64, Duration) {
    let start = Instant::now();
    let n = f.await;
    (n, start.elapsed())
}

async fn bench_backend(backend: &str, total: usize, firm_count: usize, ids: usize, rounds: usize) {
    let Some(bench) = BenchRegistry::create(backend, "audit_verify", firm_count).await else {
        return;
    };
    let (registry, firms) = (&bench.registry, &bench.firms);
    let per_firm = total / firm_count;
    let keys = scopegate::keys::Keyring::ephemeral().log_keys();
    let started = Instant::now();
    fill(registry, &keys, firms, per_firm, ids).await;
    let fill_time = started.elapsed();
    println!(
        "{backend:<9} fill: {} records in {:.1}s ({:.0} records/s, hashed and inserted){}",
        per_firm * firm_count,
        fill_time.as_secs_f64(),
        per_sec((per_firm * firm_count) as u64, fill_time),
        match &bench.pg {
            None => format!(
                ", file {:.0} MB",
                std::fs::metadata(bench.dir.path().join("registry.db"))
                    .map(|m| m.len() as f64 / 1e6)
                    .unwrap_or(0.0)
            ),
            Some(_) => String::new(),
        }
    );
    if backend == "postgres" {
        sqlx::query("ANALYZE outbound_log")
            .execute(registry.pool())
            .await
            .expect("analyze");
    }
    for round in 1..=rounds {
        let (n_scan, t_scan) = timed(scan(registry, firms)).await;
        let (n_decode, t_decode) = timed(scan_decode(registry, firms)).await;
        let started = Instant::now();
        let report = verify_all(registry, &keys, None, None)
            .await
            .expect("verify");
        let t_verify = started.elapsed();
        assert_eq!(report.faults, vec![], "the filled log verifies");
        assert_eq!((n_scan, n_decode), (report.records, report.records));
        let rate = |n: u64, t: Duration| per_sec(n, t);
        for (what, n, t) in [
            ("SELECT scan, rows not decoded (baseline)", n_scan, t_scan),
            (
                "SELECT scan + decode, no hashing (baseline)",
                n_decode,
                t_decode,
            ),
            ("verify_all (audit verify)", report.records, t_verify),
        ] {
            println!(
                "{backend:<9} {round:>5}  {what:<44} {n:>9} {:>7.2} {:>11.0}",
                t.as_secs_f64(),
                rate(n, t)
            );
        }
        println!(
            "{backend:<9} {round:>5}  verify is {:.2}x the plain scan's time, {:.2}x the decode-only scan's (hashing = {:.0}% of verify)",
            t_verify.as_secs_f64() / t_scan.as_secs_f64(),
            t_verify.as_secs_f64() / t_decode.as_secs_f64(),
            100.0 * (t_verify.as_secs_f64() - t_decode.as_secs_f64()).max(0.0) / t_verify.as_secs_f64()
        );
    }
    bench.finish().await;
}

#[tokio::main]
async fn main() {
    let total = env_usize("SCOPEGATE_BENCH_RECORDS", 1_000_000);
    let firms = env_usize("SCOPEGATE_BENCH_FIRMS", 10).max(1);
    let ids = env_usize("SCOPEGATE_BENCH_RECORD_IDS", 5);
    let rounds = env_usize("SCOPEGATE_BENCH_ROUNDS", 1).max(1);
    println!("== audit_verify: records verified per second (outbound_log::verify_all)");
    println!("{}", machine_line());
    println!("{total} records over {firms} firm chains, {ids} record ids per record");
    println!(
        "{:<9} {:>5}  {:<44} {:>9} {:>7} {:>11}",
        "backend", "round", "pass", "records", "secs", "records/s"
    );
    for backend in backends("sqlite") {
        bench_backend(&backend, total, firms, ids, rounds).await;
    }
}
