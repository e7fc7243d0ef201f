//! Google misbehaving in the ways a server on the internet can (issue 12):
//! one fee earner's Calendar calls answered 5xx, with a body trickled byte by
//! byte, with an oversized body, or with a redirect. Each test connects that
//! account first (alone in its firm), then ten good fee earners in two other
//! firms, and checks the good ones converge (every live diary entry has its
//! event) within a bound close to the same run without the bad account,
//! measured in the same test; then what happened to the bad account's calls:
//! 5xx retried with growing pauses, a trickled body cut at the request
//! timeout, an oversized body not read past a cap, a redirect never followed.
//! Once the fault clears, the bad account converges too. The registry backend
//! plays no part here, so these run on SQLite only.

use scopegate::outbound_log::{export, LogRecord};
use scopegate::tenancy::FirmDb;
use scopegate_e2e::google::*;
use scopegate_e2e::{small_seed, Backend, TestApp, TestEnv};
use scopegate_google_emulator::{AccountFault, Emulator, RunningEmulator};
use sqlx::Row;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Good fee earners in each of the two good firms.
const GOOD_PER_FIRM: usize = 5;
/// How long the good fee earners may take before the test gives up.
const LIMIT: Duration = Duration::from_secs(60);
/// The Calendar API request timeout the gateway runs with here.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

fn account(firm: &str, index: usize) -> String {
    format!("{firm}-{index}@gmail.example")
}

/// Seeds a firm with `users` fee earners (8 diary entries each), Google Calendar
/// switched on; returns its database and its fee earners, busiest first.
async fn seed_firm(env: &TestEnv, firm: &str, users: usize) -> (FirmDb, Vec<String>) {
    let mut seed = small_seed();
    seed.fee_earners = users;
    seed.diary_entries = 8 * users;
    let db = env.add_seeded_firm(firm, seed).await;
    enable_google(env, firm).await;
    let ids = sqlx::query("SELECT u.id, (SELECT COUNT(*) FROM diary_entries d WHERE d.owner_user_id = u.id) AS n FROM users u WHERE u.role = 'fee_earner' ORDER BY n DESC, u.id")
        .fetch_all(db.pool())
        .await
        .expect("users")
        .iter()
        .map(|r| r.get("id"))
        .collect();
    (db, ids)
}

/// True when each user's live entries each have a live event in their account.
async fn converged(emulator: &Emulator, firm: &str, db: &FirmDb, users: &[String]) -> bool {
    let events = emulator.live_events();
    for (index, user) in users.iter().enumerate() {
        let wanted = live_entries(db, user).await.len();
        let account = account(firm, index);
        if events.iter().filter(|e| e.account == account).count() != wanted {
            return false;
        }
    }
    true
}

/// The bad account of a run: its firm (it is the firm's only fee earner) and user.
struct Bad {
    firm: String,
    db: FirmDb,
    user: String,
}

/// Connects the bad account (with `fault`) if any and waits for its first
/// call, then connects ten good fee earners and waits for them to converge.
async fn run(
    env: &TestEnv,
    app: &TestApp,
    emulator: &Emulator,
    prefix: &str,
    fault: Option<AccountFault>,
) -> (Duration, Option<Bad>) {
    let mut bad = None;
    if let Some(fault) = fault {
        let firm = format!("{prefix}-bad");
        let (db, users) = seed_firm(env, &firm, 1).await;
        let mut config = emulator.config();
        config.account_faults.insert(account(&firm, 0), fault);
        emulator.set_config(config);
        let calls_before = api_calls(emulator);
        assert_eq!(
            connect_user(app, &firm, &users[0], &account(&firm, 0)).await,
            200
        );
        let mut waited = 0;
        while api_calls(emulator) == calls_before {
            assert!(waited < 400, "the bad account's first call never came");
            waited += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bad = Some(Bad {
            firm,
            db,
            user: users[0].clone(),
        });
    }
    let mut good = Vec::new();
    for n in 0..2 {
        let firm = format!("{prefix}-{n}");
        let (db, users) = seed_firm(env, &firm, GOOD_PER_FIRM).await;
        good.push((firm, db, users));
    }
    let started = Instant::now();
    for (firm, _, users) in &good {
        for (index, user) in users.iter().enumerate() {
            assert_eq!(
                connect_user(app, firm, user, &account(firm, index)).await,
                200
            );
        }
    }
    'wait: loop {
        assert!(
            started.elapsed() < LIMIT,
            "the good fee earners did not converge within {LIMIT:?} beside the bad account"
        );
        for (firm, db, users) in &good {
            if !converged(emulator, firm, db, users).await {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue 'wait;
            }
        }
        break;
    }
    (started.elapsed(), bad)
}

/// Calendar API requests the emulator has received (answered or not).
fn api_calls(emulator: &Emulator) -> usize {
    emulator
        .received()
        .iter()
        .filter(|r| r.kind == "api")
        .count()
}

/// The outbound records of a firm.
async fn records(env: &TestEnv, firm: &str) -> Vec<LogRecord> {
    let mut out = Vec::new();
    export(&env.registry, firm, None, |r| {
        out.push(r.clone());
        Ok(())
    })
    .await
    .expect("export");
    out
}

/// The Calendar API event calls (send and its result) of a firm, in order.
async fn calls(env: &TestEnv, firm: &str) -> Vec<(LogRecord, Option<LogRecord>)> {
    let all = records(env, firm).await;
    all.iter()
        .filter(|r| {
            r.kind == "send" && r.connector == "google-calendar" && r.target.contains("/events")
        })
        .map(|send| {
            let result = all
                .iter()
                .find(|r| r.kind == "result" && r.send_seq == Some(send.seq))
                .cloned();
            (send.clone(), result)
        })
        .collect()
}

/// Starts an emulator and a gateway syncing to it every 50 ms.
async fn world() -> (TestEnv, RunningEmulator, TestApp) {
    let env = TestEnv::new(Backend::Sqlite).await;
    let running = start_emulator().await;
    let mut args = google_args(&env, &running, 50);
    args.connector_settings.push(google_setting(
        "request_timeout_secs",
        REQUEST_TIMEOUT.as_secs().to_string(),
    ));
    let app = env
        .spawn_with(scopegate::config::Config::resolve(&args).expect("config"))
        .await;
    (env, running, app)
}

/// Compares the runs with and without the bad account. Held up would mean
/// waiting for the bad account's retries or timeouts (10 s and more here);
/// the slack is for a loaded test machine.
fn assert_not_held_up(what: &str, baseline: Duration, troubled: Duration) {
    println!("{what}: ten good fee earners converged in {troubled:?} (without the bad account {baseline:?})");
    assert!(
        troubled <= baseline * 2 + Duration::from_secs(5),
        "{what} held up the others: {troubled:?} against {baseline:?} without it"
    );
}

/// True when the gateway's last pass over the bad account's connection succeeded.
async fn synced_cleanly(app: &TestApp, bad: &Bad) -> bool {
    Calendar::of(app)
        .connection(&bad.firm, &bad.user)
        .await
        .is_some_and(|c| {
            c.last_error.is_none() && c.job_due_at.is_none() && c.last_sync_at.is_some()
        })
}

/// Clears the bad account's fault and waits (bounded) until it converges
/// too: every entry has its event and the gateway's last pass over it succeeded.
async fn recovers(emulator: &Emulator, app: &TestApp, bad: &Bad) {
    let mut config = emulator.config();
    config.account_faults.clear();
    emulator.set_config(config);
    let started = Instant::now();
    while !(converged(
        emulator,
        &bad.firm,
        &bad.db,
        std::slice::from_ref(&bad.user),
    )
    .await
        && synced_cleanly(app, bad).await)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the bad account did not converge after its fault cleared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "fault cleared: the bad account converged after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_errors_are_retried_with_growing_pauses_and_hold_up_no_one() {
    let (env, running, app) = world().await;
    let emulator = running.emulator.clone();
    let (baseline, _) = run(&env, &app, &emulator, "calm", None).await;
    let (troubled, bad) = run(
        &env,
        &app,
        &emulator,
        "errors",
        Some(AccountFault::ServerError { status: 503 }),
    )
    .await;
    assert_not_held_up("an account answered 503", baseline, troubled);
    let bad = bad.expect("bad account");
    // One call's attempts: at least five, each answered 503, pauses growing.
    let mut attempts: Vec<(LogRecord, Option<LogRecord>)> = Vec::new();
    let mut waited = 0;
    while attempts.len() < 5 {
        assert!(waited < 200, "the 503 call was not retried five times");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let all = calls(&env, &bad.firm).await;
        let first = all[0].0.clone();
        attempts = all
            .into_iter()
            .filter(|(s, r)| {
                s.method == first.method && s.record_ids == first.record_ids && r.is_some()
            })
            .collect();
    }
    let gaps: Vec<i64> = attempts.windows(2).map(|w| w[1].0.at - w[0].0.at).collect();
    println!("one call's attempts answered 503, pauses between them (ms): {gaps:?}");
    for (_, result) in &attempts {
        assert_eq!(result.as_ref().and_then(|r| r.status), Some(503));
    }
    // Full jitter: the nth pause is 50-100% of 100 ms * 2^n, so at least 50, 100, 200, 400 ms.
    for (n, gap) in gaps.iter().take(4).enumerate() {
        assert!(*gap >= 50 << n, "pause {n} was {gap} ms: {gaps:?}");
    }
    recovers(&emulator, &app, &bad).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trickled_body_is_cut_at_the_request_timeout_and_holds_up_no_one() {
    let (env, running, app) = world().await;
    let emulator = running.emulator.clone();
    let (baseline, _) = run(&env, &app, &emulator, "calm", None).await;
    // A ~300-byte event at one byte every 200 ms would take a minute.
    let (troubled, bad) = run(
        &env,
        &app,
        &emulator,
        "trickle",
        Some(AccountFault::SlowBody { interval_ms: 200 }),
    )
    .await;
    assert_not_held_up("an account trickling its bodies", baseline, troubled);
    let bad = bad.expect("bad account");
    let mut finished = Vec::new();
    let mut waited = 0;
    while finished.len() < 2 {
        assert!(waited < 200, "no trickled call ended");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        finished = calls(&env, &bad.firm)
            .await
            .into_iter()
            .filter_map(|(_, r)| r)
            .collect();
    }
    let latencies: Vec<Duration> = finished
        .iter()
        .map(|r| Duration::from_micros(r.latency_us.unwrap_or_default() as u64))
        .collect();
    println!(
        "{} trickled calls ended with status {:?} after {:?} to {:?}",
        finished.len(),
        finished
            .iter()
            .map(|r| r.status)
            .collect::<std::collections::BTreeSet<_>>(),
        latencies.iter().min().expect("a latency"),
        latencies.iter().max().expect("a latency"),
    );
    for (result, latency) in finished.iter().zip(&latencies) {
        assert_eq!(
            result.status,
            Some(0),
            "a trickled answer counts as no answer"
        );
        assert!(
            *latency >= REQUEST_TIMEOUT - Duration::from_millis(100)
                && *latency < REQUEST_TIMEOUT + Duration::from_secs(1),
            "a trickled call was not cut at the {REQUEST_TIMEOUT:?} timeout: {latency:?}"
        );
    }
    recovers(&emulator, &app, &bad).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversized_body_is_not_read_past_a_cap_and_holds_up_no_one() {
    /// Far more than any event; a capped client stops long before.
    const OVERSIZED: u64 = 256 * 1024 * 1024;
    /// What a cap of about 1 MiB lets through, socket buffers included.
    const MOST_TAKEN: u64 = 16 * 1024 * 1024;
    let (env, running, app) = world().await;
    let emulator = running.emulator.clone();
    let (baseline, _) = run(&env, &app, &emulator, "calm", None).await;
    let (troubled, bad) = run(
        &env,
        &app,
        &emulator,
        "oversized",
        Some(AccountFault::OversizedBody { bytes: OVERSIZED }),
    )
    .await;
    assert_not_held_up("an account answering oversized bodies", baseline, troubled);
    let bad = bad.expect("bad account");
    // Wait until the gateway is done with at least one oversized answer.
    let mut waited = 0;
    while !calls(&env, &bad.firm)
        .await
        .iter()
        .any(|(_, r)| r.is_some())
    {
        assert!(waited < 300, "no oversized call ended");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let streamed = emulator.oversized_bodies();
    println!(
        "{} oversized bodies of {OVERSIZED} bytes: at most {} bytes of one taken",
        streamed.len(),
        streamed.iter().map(|s| s.sent).max().unwrap_or_default()
    );
    assert!(!streamed.is_empty());
    for body in &streamed {
        assert!(
            body.sent < MOST_TAKEN,
            "the gateway took {} bytes of one {} byte answer: response bodies are not capped",
            body.sent,
            body.total
        );
    }
    recovers(&emulator, &app, &bad).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redirect_is_never_followed_and_holds_up_no_one() {
    redirected(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn entries_redirected_are_synced_once_the_redirects_stop() {
    redirected(true).await;
}

/// A redirecting account beside ten good ones; with `then_clear`, the redirects stop and its entries must sync.
async fn redirected(then_clear: bool) {
    let (env, running, app) = world().await;
    let emulator = running.emulator.clone();
    // Where the redirect points: a listener that counts who comes.
    let trap = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("trap");
    let trap_addr = trap.local_addr().expect("trap addr");
    let visits = Arc::new(AtomicUsize::new(0));
    let counted = visits.clone();
    let trap_task = tokio::spawn(async move {
        while let Ok((socket, _)) = trap.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    let (baseline, _) = run(&env, &app, &emulator, "calm", None).await;
    let (troubled, bad) = run(
        &env,
        &app,
        &emulator,
        "redirect",
        Some(AccountFault::Redirect {
            status: 307,
            location: format!("http://{trap_addr}/calendar/v3/calendars/primary/events"),
        }),
    )
    .await;
    assert_not_held_up("an account answering with redirects", baseline, troubled);
    let bad = bad.expect("bad account");
    let mut answered = Vec::new();
    let mut waited = 0;
    while answered.is_empty() {
        assert!(waited < 200, "no redirected call ended");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        answered = calls(&env, &bad.firm)
            .await
            .into_iter()
            .filter_map(|(_, r)| r)
            .collect();
    }
    // Give a follower every chance to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "{} redirected calls ended with status {:?}; the redirect target was visited {} times",
        answered.len(),
        answered
            .iter()
            .map(|r| r.status)
            .collect::<std::collections::BTreeSet<_>>(),
        visits.load(Ordering::SeqCst)
    );
    assert_eq!(visits.load(Ordering::SeqCst), 0, "a redirect was followed");
    assert!(answered.iter().all(|r| r.status == Some(307)));
    if then_clear {
        recovers(&emulator, &app, &bad).await;
    }
    trap_task.abort();
    app.stop().await;
}
