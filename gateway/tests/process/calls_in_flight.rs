//! Calls in flight when `scopegate serve` goes down, with Google Calendar
//! calls that never get an answer (the emulator holds them open).
//!
//! SIGKILL: each send record is in the registry without its result, and the
//! settings viewer (`result: null`), `scopegate audit export`
//! (`"outcome":"unknown"`) and `audit verify` all hold after a restart.
//!
//! SIGTERM: the gateway stops within its shutdown grace although the calls
//! never end on their own (their timeout is 5 minutes), slow calls still in
//! flight finish, and every send has its result once the process has exited.

use crate::google_gateway::*;
use scopegate::registry::Registry;
use scopegate::tenancy::{default_firm_url, seed, FirmDb};
use scopegate_google_emulator::{AccountFault, Emulator, EmulatorConfig, RunningEmulator};
use sqlx::Row;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const FIRM: &str = "harbour";
const HUNG: &str = "hung@gmail.example";
const SLOW: &str = "slow@gmail.example";
/// Far longer than any test: a hung call never times out by itself.
const NEVER: [(&str, &str); 2] = [
    ("SCOPEGATE_GOOGLE_REQUEST_TIMEOUT_SECS", "300"),
    ("SCOPEGATE_GOOGLE_USER_CONCURRENCY", "4"),
];

/// A firm with `fee_earners` fee earners and the calendar connector on, on a
/// SQLite registry in `dir`, and an emulator taking `latency_ms` per call.
async fn deployment(
    dir: &std::path::Path,
    fee_earners: usize,
    latency_ms: u64,
) -> (Deployment, RunningEmulator, Registry, FirmDb) {
    let running = Emulator::new(EmulatorConfig {
        latency_ms,
        ..Default::default()
    })
    .start("127.0.0.1:0".parse().unwrap())
    .await
    .unwrap();
    let registry_url = format!("sqlite://{}", dir.join("registry.db").display());
    let registry = Registry::connect_and_migrate(&registry_url).await.unwrap();
    let db = google_firm(
        &registry,
        FIRM,
        &default_firm_url(dir, FIRM),
        seed::SeedSize {
            fee_earners,
            clients: 10,
            matters: 10,
            diary_entries: 20 * fee_earners,
            transactions: 0,
        },
        false,
    )
    .await;
    let deployment = Deployment {
        dir: dir.to_path_buf(),
        registry_url,
        key_file: key_file(dir, &[&scopegate::keys::generate_key()]),
    };
    (deployment, running, registry, db)
}

/// Connects the firm's fee earners, in order, to `accounts`; from the
/// moment [`HUNG`] is connected (consent asks the Calendar API which account
/// it is), the emulator never answers the calls it starts for that account.
async fn connect(
    deployment: &Deployment,
    running: &RunningEmulator,
    db: &FirmDb,
    base: &str,
    accounts: &[&str],
) {
    let users = diary_owners(db).await;
    for (user, account) in users.iter().zip(accounts) {
        let link = consent_link(deployment, running, FIRM, user);
        consent(base, &link, &account.replace('@', "%40")).await;
        if *account == HUNG {
            let mut config = running.emulator.config();
            config
                .account_faults
                .insert(HUNG.to_string(), AccountFault::Hang);
            running.emulator.set_config(config);
        }
    }
}

/// Calendar API calls the emulator is holding open.
fn hung_calls(running: &RunningEmulator) -> usize {
    running
        .emulator
        .received()
        .iter()
        .filter(|r| r.kind == "api" && r.status == 0)
        .count()
}

/// Waits until at least `n` calls are held open.
async fn until_hung(running: &RunningEmulator, n: usize) {
    for _ in 0..600 {
        if hung_calls(running) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the emulator never held {n} calls open");
}

/// The seqs of the firm's send records that have no result record.
async fn sends_without_result(registry: &Registry) -> BTreeSet<i64> {
    sqlx::query(
        "SELECT s.seq FROM outbound_log s WHERE s.firm_id = $1 AND s.kind = 'send' AND NOT EXISTS \
         (SELECT 1 FROM outbound_log r WHERE r.firm_id = s.firm_id AND r.kind = 'result' AND r.send_seq = s.seq)",
    )
    .bind(FIRM)
    .fetch_all(registry.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<i64, _>("seq"))
    .collect()
}

/// `scopegate audit export` of the firm, one JSON value per line.
fn export(deployment: &Deployment, running: &RunningEmulator) -> Vec<serde_json::Value> {
    let (ok, stdout, stderr) = deployment.run(running, &["audit", "export", "--firm", FIRM]);
    assert!(ok, "audit export: {stderr}");
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn verify(deployment: &Deployment, running: &RunningEmulator) {
    let (ok, stdout, stderr) = deployment.run(running, &["audit", "verify"]);
    assert!(
        ok && stdout.starts_with("ok:"),
        "audit verify: {stdout}{stderr}"
    );
}

/// The settings viewer's calls of the firm, as an admin logged in at `base` sees them.
async fn viewer_calls(deployment: &Deployment, base: &str) -> Vec<serde_json::Value> {
    let password = "correct horse battery staple";
    crate::common::add_login(
        &deployment.dir,
        Some(&deployment.registry_url),
        FIRM,
        "amy@harbour.example",
        password,
    );
    let http = reqwest::Client::new();
    let login = http
        .post(format!("{base}/admin/v1/session"))
        .json(&serde_json::json!({"firm": FIRM, "email": "amy@harbour.example", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page: serde_json::Value = http
        .get(format!(
            "{base}/admin/v1/outbound?connector=google-calendar&limit=500"
        ))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["data"].as_array().expect("data").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_leaves_sends_in_flight_as_outcome_unknown() {
    let dir = tempfile::tempdir().unwrap();
    // Every call takes a second: the sync is under way when the account hangs.
    let (deployment, running, registry, db) = deployment(dir.path(), 1, 1000).await;
    let mut serving = deployment
        .serve(crate::common::free_port(), &running, &NEVER)
        .await;
    connect(&deployment, &running, &db, &serving.base(), &[HUNG]).await;
    until_hung(&running, 4).await;
    serving.kill();

    // Every call the emulator holds has its send record, none a result.
    let unknown = sends_without_result(&registry).await;
    assert!(
        unknown.len() >= hung_calls(&running),
        "{unknown:?} for {} calls held open",
        hung_calls(&running)
    );
    let records = export(&deployment, &running);
    let marked: BTreeSet<i64> = records
        .iter()
        .filter(|r| r["outcome"] == "unknown")
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        marked, unknown,
        "the export marks exactly the sends without a result"
    );
    for record in records.iter().filter(|r| r["outcome"] == "unknown") {
        assert_eq!(record["kind"], "send");
        assert_eq!(record["connector"], "google-calendar");
    }
    assert!(
        records
            .iter()
            .filter(|r| r["kind"] == "result")
            .all(|r| r.get("outcome").is_none()),
        "only sends carry an outcome"
    );
    verify(&deployment, &running);

    // Restarted (the account now answering), the viewer shows the same calls
    // without a result while the sync goes on with new ones.
    let mut config = running.emulator.config();
    config.account_faults.clear();
    running.emulator.set_config(config);
    let serving = deployment
        .serve(crate::common::free_port(), &running, &NEVER)
        .await;
    let calls = viewer_calls(&deployment, &serving.base()).await;
    let shown_unknown: BTreeSet<i64> = calls
        .iter()
        .filter(|c| c["result"].is_null())
        .map(|c| c["seq"].as_i64().unwrap())
        .collect();
    assert!(
        unknown.is_subset(&shown_unknown),
        "the viewer shows {shown_unknown:?} without a result; expected at least {unknown:?}"
    );
    serving.terminate();
    assert_eq!(
        sends_without_result(&registry).await,
        unknown,
        "a graceful stop left no new send without its result"
    );
    verify(&deployment, &running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_with_calls_in_flight_records_every_result() {
    let dir = tempfile::tempdir().unwrap();
    // Every call takes 1.5 s; the hung account's never end.
    let (deployment, running, registry, db) = deployment(dir.path(), 2, 1500).await;
    let serving = deployment
        .serve(crate::common::free_port(), &running, &NEVER)
        .await;
    connect(&deployment, &running, &db, &serving.base(), &[HUNG, SLOW]).await;
    until_hung(&running, 4).await;
    // The slow account's sync is under way: its calls keep 4 in flight.
    for _ in 0..600 {
        if running.emulator.live_events().len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        running.emulator.live_events().len() >= 4,
        "the slow sync got going"
    );
    let in_flight = sends_without_result(&registry).await;
    assert!(in_flight.len() >= 5, "calls in flight: {in_flight:?}");

    let asked = Instant::now();
    let asked_ms = chrono::Utc::now().timestamp_millis();
    serving.terminate();
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "stopping took {took:?} with calls that never end"
    );

    assert_eq!(
        sends_without_result(&registry).await,
        BTreeSet::new(),
        "every send has its result after a graceful stop"
    );
    let results: Vec<(i64, i64)> = sqlx::query(
        "SELECT status, at FROM outbound_log WHERE firm_id = $1 AND kind = 'result' AND send_seq IN \
         (SELECT seq FROM outbound_log WHERE firm_id = $1 AND kind = 'send' AND connector = 'google-calendar')",
    )
    .bind(FIRM)
    .fetch_all(registry.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("status"), r.get("at")))
    .collect();
    let after_stop = |ok: bool| {
        results
            .iter()
            .filter(|(status, at)| *at >= asked_ms && (*status == 200) == ok)
            .count()
    };
    assert!(
        after_stop(false) >= hung_calls(&running),
        "the hung calls were cut short and recorded without an answer: {results:?}"
    );
    assert!(
        after_stop(true) >= 1,
        "slow calls in flight at the stop finished and were recorded: {results:?}"
    );
    verify(&deployment, &running);
    eprintln!(
        "stopped in {took:?}: {} calls answered and {} cut short after SIGTERM",
        after_stop(true),
        after_stop(false)
    );
}
