//! The outbound log's hash chain on SQLite and PostgreSQL: records are
//! committed before data moves, chained per firm, and `verify` names the
//! first deleted, edited or reordered record.

use scopegate::keys::{Keyring, LogKeys};
use scopegate::outbound_log::{Direction, NewSend, OutboundLog};
use scopegate_e2e::{on_both_backends, small_seed, TestEnv};
use std::sync::{Arc, OnceLock};

/// One master key for the whole test binary: the chains are keyed with it.
fn keys() -> Arc<LogKeys> {
    static KEYS: OnceLock<Arc<LogKeys>> = OnceLock::new();
    KEYS.get_or_init(|| Arc::new(Keyring::ephemeral().log_keys()))
        .clone()
}

async fn verify_firm(
    registry: &scopegate::registry::Registry,
    firm: &str,
) -> scopegate::registry::StoreResult<(u64, Option<scopegate::outbound_log::ChainFault>)> {
    scopegate::outbound_log::verify_firm(registry, &keys(), firm).await
}

on_both_backends!(
    intact_chains_verify_and_export,
    a_deleted_record_is_named,
    an_edited_record_is_named,
    reordered_records_are_named,
    records_cut_from_the_end_are_detected,
    concurrent_writers_keep_one_chain_per_firm,
    unwaited_results_ride_with_the_next_send_and_are_never_lost,
    verify_while_sends_commit_finds_no_fault,
);

fn send(firm: &str, n: usize) -> NewSend {
    NewSend {
        firm_id: firm.to_string(),
        grant_id: "g".into(),
        connector: "accounting".into(),
        direction: Direction::Outbound,
        method: "GET".into(),
        target: "/v1/transactions".into(),
        fields: vec!["id".into(), "amount_cents".into()],
        record_ids: vec![format!("rec-{n}")],
        payload: format!("payload {n}").into_bytes(),
    }
}

/// Two firms with 10 records each (5 sends + 5 results).
async fn filled(env: &TestEnv) -> OutboundLog {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    env.add_seeded_firm("beta-law", small_seed()).await;
    let (log, _writer) = OutboundLog::start(env.registry.clone(), keys());
    for n in 0..5 {
        for firm in ["alpha-law", "beta-law"] {
            let receipt = log.record_send(send(firm, n)).await.unwrap();
            log.record_result(&receipt, 200).await.unwrap();
        }
    }
    log
}

async fn exec(env: &TestEnv, sql: &'static str) {
    sqlx::query(sql).execute(env.registry.pool()).await.unwrap();
}

async fn intact_chains_verify_and_export(env: TestEnv) {
    let _log = filled(&env).await;
    let report = scopegate::outbound_log::verify_all(&env.registry, &keys(), None, None)
        .await
        .unwrap();
    assert_eq!(
        (report.firms, report.records, report.faults.len()),
        (2, 20, 0)
    );
    let mut lines = Vec::new();
    let n = scopegate::outbound_log::export(&env.registry, "alpha-law", None, |r| {
        lines.push(serde_json::to_string(r).unwrap());
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(n, 10);
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["kind"], "send");
    assert_eq!(first["fields"], serde_json::json!(["id", "amount_cents"]));
    let second: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(
        (
            second["kind"].as_str(),
            second["send_seq"].as_i64(),
            second["status"].as_i64()
        ),
        (Some("result"), Some(1), Some(200))
    );
    let future =
        scopegate::outbound_log::export(&env.registry, "alpha-law", Some(i64::MAX), |_| Ok(()))
            .await
            .unwrap();
    assert_eq!(future, 0);
}

async fn a_deleted_record_is_named(env: TestEnv) {
    let _log = filled(&env).await;
    exec(
        &env,
        "DELETE FROM outbound_log WHERE firm_id = 'alpha-law' AND seq = 4",
    )
    .await;
    let (_, fault) = verify_firm(&env.registry, "alpha-law").await.unwrap();
    let fault = fault.expect("deletion detected");
    assert_eq!(fault.seq, 4, "{fault}");
    assert!(fault.problem.contains("missing"), "{fault}");
    assert!(verify_firm(&env.registry, "beta-law")
        .await
        .unwrap()
        .1
        .is_none());
}

async fn an_edited_record_is_named(env: TestEnv) {
    let _log = filled(&env).await;
    exec(&env, "UPDATE outbound_log SET record_ids = '[\"someone-else\"]' WHERE firm_id = 'alpha-law' AND seq = 7").await;
    let fault = verify_firm(&env.registry, "alpha-law")
        .await
        .unwrap()
        .1
        .expect("edit detected");
    assert_eq!(fault.seq, 7, "{fault}");
    assert!(fault.problem.contains("edited"), "{fault}");
}

async fn reordered_records_are_named(env: TestEnv) {
    let _log = filled(&env).await;
    // Swap records 3 and 5 by renumbering them (through a free slot).
    exec(
        &env,
        "UPDATE outbound_log SET seq = 1000 WHERE firm_id = 'alpha-law' AND seq = 3",
    )
    .await;
    exec(
        &env,
        "UPDATE outbound_log SET seq = 3 WHERE firm_id = 'alpha-law' AND seq = 5",
    )
    .await;
    exec(
        &env,
        "UPDATE outbound_log SET seq = 5 WHERE firm_id = 'alpha-law' AND seq = 1000",
    )
    .await;
    let fault = verify_firm(&env.registry, "alpha-law")
        .await
        .unwrap()
        .1
        .expect("reorder detected");
    assert_eq!(fault.seq, 3, "{fault}");
}

async fn records_cut_from_the_end_are_detected(env: TestEnv) {
    let _log = filled(&env).await;
    exec(
        &env,
        "DELETE FROM outbound_log WHERE firm_id = 'beta-law' AND seq >= 9",
    )
    .await;
    let fault = verify_firm(&env.registry, "beta-law")
        .await
        .unwrap()
        .1
        .expect("truncation detected");
    assert_eq!(fault.seq, 9, "{fault}");
}

async fn concurrent_writers_keep_one_chain_per_firm(env: TestEnv) {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    env.add_seeded_firm("beta-law", small_seed()).await;
    let (log, writer) = OutboundLog::start(env.registry.clone(), keys());
    let mut tasks = Vec::new();
    for w in 0..32 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let firm = if w % 2 == 0 { "alpha-law" } else { "beta-law" };
            for n in 0..20 {
                log.record_send(send(firm, w * 100 + n)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(log);
    writer.await.unwrap();
    let report = scopegate::outbound_log::verify_all(&env.registry, &keys(), None, None)
        .await
        .unwrap();
    assert_eq!(report.records, 640);
    assert!(report.faults.is_empty(), "{:?}", report.faults);
}

/// `audit verify` on a live gateway: sends keep committing while the chain
/// is read, and a whole chain is still what it finds (its records and head
/// from one snapshot, not a head that has moved on past the records read).
async fn verify_while_sends_commit_finds_no_fault(env: TestEnv) {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let (log, writer) = OutboundLog::start(env.registry.clone(), keys());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (log, stop) = (log.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 5_000 {
                log.record_send(send("alpha-law", w * 10_000 + n))
                    .await
                    .unwrap();
                n += 1;
            }
        }));
    }
    let mut checked = Vec::new();
    for _ in 0..40 {
        let (records, fault) = verify_firm(&env.registry, "alpha-law").await.unwrap();
        assert_eq!(fault, None, "after {records} records");
        checked.push(records);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    drop(log);
    writer.await.unwrap();
    assert!(
        checked.first() < checked.last(),
        "the chain grew while it was verified: {checked:?}"
    );
}

async fn records_of(env: &TestEnv) -> u64 {
    let report = scopegate::outbound_log::verify_all(&env.registry, &keys(), None, None)
        .await
        .unwrap();
    assert!(report.faults.is_empty(), "{:?}", report.faults);
    report.records
}

async fn unwaited_results_ride_with_the_next_send_and_are_never_lost(env: TestEnv) {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let (log, writer) = OutboundLog::start(env.registry.clone(), keys());

    // A result nobody waits for, with no send after it, is committed on its own shortly.
    let receipt = log.record_send(send("alpha-law", 0)).await.unwrap();
    log.record_result_later(&receipt, 200).await.unwrap();
    let mut waited = 0;
    while records_of(&env).await < 2 {
        assert!(waited < 200, "the held result was never committed");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        waited += 1;
    }

    // Sends that follow their predecessor's result share its transaction.
    let (transactions_before, records_before) = log.committed();
    for n in 1..=50 {
        let receipt = log.record_send(send("alpha-law", n)).await.unwrap();
        log.record_result_later(&receipt, 200).await.unwrap();
    }
    log.flush().await.unwrap();
    let (transactions, records) = log.committed();
    assert_eq!(records - records_before, 100);
    assert!(
        transactions - transactions_before < 100,
        "{} transactions for 100 records",
        transactions - transactions_before
    );

    // A graceful stop commits the result still held.
    let receipt = log.record_send(send("alpha-law", 51)).await.unwrap();
    log.record_result_later(&receipt, 503).await.unwrap();
    drop(log);
    writer.await.unwrap();
    assert_eq!(records_of(&env).await, 104);
}
