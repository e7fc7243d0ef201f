//! The privacy office's reports over a large outbound log: the time of a
//! disclosure report (POPIA s23) for one client, and of a breach scope for a
//! one-day window, over 1,000,000 outbound records (default) of one firm whose
//! sends carry 5 record ids each. The log is filled in SQL (the reports read
//! no hashes); the record-id index is filled the way migration 0009 fills it.
//! Baseline, in the same run: finding the same client's sends without the
//! index, by scanning the log's record-id lists.
//!
//! `cargo bench -p scopegate --bench disclosures`
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SCOPEGATE_BENCH_RECORDS` | 1000000 | records in the log (half sends, half results) |
//! | `SCOPEGATE_BENCH_BACKENDS` | sqlite | `postgres`, or `sqlite,postgres` |

mod common;

use common::{backends, env_usize, machine_line, ms, BenchRegistry, Percentiles};
use scopegate::privacy::{self, Channel, Subject};
use scopegate::registry::Backend;
use scopegate::tenancy::{provision_firm_database, seed};
use std::time::Instant;

const FIRM: &str = "firm-bench";
const IDS_PER_SEND: usize = 5;

/// Fills the log with `total` records: sends and results alternating, each
/// send carrying 5 of the firm's transaction or matter ids, one a minute apart.
async fn fill(
    registry: &scopegate::registry::Registry,
    grant_id: &str,
    ids: &[String],
    total: usize,
    at0: i64,
) {
    let pool = registry.pool();
    sqlx::query("CREATE TABLE bench_ids (k BIGINT PRIMARY KEY, id TEXT NOT NULL)")
        .execute(pool)
        .await
        .unwrap();
    for (k, id) in ids.iter().enumerate() {
        sqlx::query("INSERT INTO bench_ids (k, id) VALUES ($1, $2)")
            .bind(k as i64)
            .bind(id)
            .execute(pool)
            .await
            .unwrap();
    }
    let n = ids.len();
    let pick = |m: usize| format!("(SELECT id FROM bench_ids WHERE k = (i * {m} + {m}) % {n})");
    let picks: Vec<String> = [1, 7, 13, 31, 61][..IDS_PER_SEND]
        .iter()
        .map(|m| pick(*m))
        .collect();
    let (series, array) = match registry.backend() {
        Backend::Sqlite => (
            format!(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {total})"
            ),
            format!("json_array({})", picks.join(", ")),
        ),
        Backend::Postgres => (
            format!("WITH s(i) AS (SELECT generate_series(1, {total})::bigint)"),
            format!("json_build_array({})::text", picks.join(", ")),
        ),
    };
    let sql = format!(
        "{series} INSERT INTO outbound_log (firm_id, seq, kind, at, grant_id, connector, direction, method, target, fields, record_ids, payload_sha256, bytes, send_seq, status, latency_us, prev_hash, hash, mac_key)
         SELECT '{FIRM}', i, CASE WHEN i % 2 = 1 THEN 'send' ELSE 'result' END, {at0} + i * 30000, '{grant_id}', 'accounting', 'outbound', 'GET', '/v1/transactions',
                '[\"id\",\"matter_id\",\"reference\"]', CASE WHEN i % 2 = 1 THEN {array} ELSE '[]' END, '', 1000,
                CASE WHEN i % 2 = 0 THEN i - 1 END, CASE WHEN i % 2 = 0 THEN 200 END, NULL, '', '', ''
         FROM s"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .unwrap();
    let index = match registry.backend() {
        Backend::Sqlite => "INSERT INTO outbound_record_ids (firm_id, record_id, seq) SELECT DISTINCT l.firm_id, j.value, l.seq FROM outbound_log l, json_each(l.record_ids) j WHERE l.kind = 'send'",
        Backend::Postgres => "INSERT INTO outbound_record_ids (firm_id, record_id, seq) SELECT DISTINCT l.firm_id, j.value, l.seq FROM outbound_log l, jsonb_array_elements_text(l.record_ids::jsonb) AS j(value) WHERE l.kind = 'send'",
    };
    sqlx::query(index).execute(pool).await.unwrap();
    if registry.backend() == Backend::Postgres {
        sqlx::query("ANALYZE").execute(pool).await.unwrap();
    }
}

/// Baseline: the sends whose record-id list names any of `ids`, by scanning the log.
async fn scan_for(registry: &scopegate::registry::Registry, ids: &[String]) -> usize {
    let like: Vec<String> = ids
        .iter()
        .map(|id| format!("record_ids LIKE '%\"{id}\"%'"))
        .collect();
    let sql = format!(
        "SELECT COUNT(*) FROM outbound_log WHERE firm_id = '{FIRM}' AND kind = 'send' AND ({})",
        like.join(" OR ")
    );
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(registry.pool())
        .await
        .unwrap();
    n as usize
}

async fn bench_backend(backend: &str, total: usize) {
    let Some(bench) = BenchRegistry::create(backend, "disclosures", 0).await else {
        return;
    };
    let registry = &bench.registry;
    let firm_url = format!("sqlite://{}", bench.dir.path().join("firm.db").display());
    let db = provision_firm_database(FIRM, &firm_url).await.unwrap();
    seed::seed_demo(
        &db,
        seed::SeedSize {
            fee_earners: 10,
            clients: 200,
            matters: 400,
            diary_entries: 2_000,
            transactions: 4_000,
        },
    )
    .await
    .unwrap();
    registry.add_firm(FIRM, FIRM, &firm_url).await.unwrap();
    let catalogue = scopegate::connectors::catalogue();
    let accounting = catalogue.require("accounting").unwrap();
    registry
        .enable_grant(FIRM, &accounting.contract, "bench")
        .await
        .unwrap();
    let grant_id = registry.grant(FIRM, "accounting").await.unwrap().id;
    let mut ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM accounting_transactions UNION ALL SELECT id FROM matters",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    ids.sort();
    let at0 = scopegate::clock::now_ms() - (total as i64) * 30_000;
    let started = Instant::now();
    fill(registry, &grant_id, &ids, total, at0).await;
    println!(
        "{backend:<9} fill: {total} records, {} record ids indexed, in {:.1}s",
        (total / 2) * IDS_PER_SEND,
        started.elapsed().as_secs_f64()
    );

    let clients: Vec<String> = sqlx::query_scalar("SELECT id FROM clients ORDER BY id LIMIT 10")
        .fetch_all(db.pool())
        .await
        .unwrap();
    let mut report_times = Vec::new();
    let mut scan_times = Vec::new();
    for client in &clients {
        let t = Instant::now();
        let report =
            privacy::disclosures(registry, &db, FIRM, Subject::Client(client.clone()), &[])
                .await
                .unwrap();
        report_times.push(t.elapsed());
        let calls: usize = report.recipients.iter().map(|r| r.calls).sum();
        let about = privacy::subjects::records_about(&db, &Subject::Client(client.clone()))
            .await
            .unwrap();
        let t = Instant::now();
        let scanned = scan_for(registry, &about).await;
        scan_times.push(t.elapsed());
        assert_eq!(calls, scanned, "the index finds the sends a scan finds");
        println!(
            "{backend:<9} client {}: {} records about them, {} calls carried some; report {} ms, scan baseline {} ms",
            &client[..8],
            about.len(),
            calls,
            ms(*report_times.last().unwrap()),
            ms(*scan_times.last().unwrap())
        );
    }
    let p = Percentiles::of(&mut report_times);
    let s = Percentiles::of(&mut scan_times);
    println!(
        "{backend:<9} disclosure report over {total} records: p50 {} ms, max {} ms; scan baseline p50 {} ms ({:.0}x the report)",
        ms(p.p50),
        ms(p.max),
        ms(s.p50),
        s.p50.as_secs_f64() / p.p50.as_secs_f64().max(1e-9)
    );

    let day_start = at0 + (total as i64 / 2) * 30_000;
    let t = Instant::now();
    let scope = privacy::breach_scope(
        registry,
        &db,
        FIRM,
        Channel::Grant(grant_id.clone()),
        day_start,
        day_start + 86_400_000,
    )
    .await
    .unwrap();
    println!(
        "{backend:<9} breach scope of the grant over one day: {} calls, {} clients affected, in {} ms",
        scope.calls,
        scope.affected.len(),
        ms(t.elapsed())
    );
    bench.finish().await;
}

#[tokio::main]
async fn main() {
    let total = env_usize("SCOPEGATE_BENCH_RECORDS", 1_000_000);
    println!("== disclosures: the privacy office's reports over a large outbound log");
    println!("{}", machine_line());
    for backend in backends("sqlite") {
        bench_backend(&backend, total).await;
    }
}
