//! One misbehaving Google account must not hold up everyone else's sync: a
//! fee earner whose Calendar calls are never answered and one whose calls are
//! answered 429 with a day-long `Retry-After` are connected first, then 20
//! fee earners in 3 firms; those 20 converge (every live diary entry has its
//! event) within a bound close to the same run without the bad accounts,
//! measured in the same test.

use scopegate::tenancy::FirmDb;
use scopegate_e2e::google::*;
use scopegate_e2e::{on_both_backends, small_seed, TestApp, TestEnv};
use scopegate_google_emulator::{AccountFault, Emulator};
use sqlx::Row;
use std::time::{Duration, Instant};

/// Good fee earners per firm (20 in all) and the bad ones (in the first firm).
const GOOD: [usize; 3] = [7, 7, 6];
const BAD: usize = 2;
/// How long either run may take before the test gives up.
const LIMIT: Duration = Duration::from_secs(60);

on_both_backends!(stuck_accounts_do_not_hold_up_other_firms);

fn account(firm: &str, index: usize) -> String {
    format!("{firm}-{index}@gmail.example")
}

/// Seeds `firms` (the first with `extra` more fee earners) and returns each
/// firm's database and fee earners, busiest first.
async fn seed_firms(env: &TestEnv, firms: &[String], extra: usize) -> Vec<(FirmDb, Vec<String>)> {
    let mut out = Vec::new();
    for (i, firm) in firms.iter().enumerate() {
        let mut seed = small_seed();
        seed.fee_earners = GOOD[i] + if i == 0 { extra } else { 0 };
        seed.diary_entries = 8 * seed.fee_earners;
        let db = env.add_seeded_firm(firm, seed).await;
        enable_google(env, firm).await;
        let users: Vec<String> = sqlx::query("SELECT u.id, (SELECT COUNT(*) FROM diary_entries d WHERE d.owner_user_id = u.id) AS n FROM users u WHERE u.role = 'fee_earner' ORDER BY n DESC, u.id")
            .fetch_all(db.pool())
            .await
            .expect("users")
            .iter()
            .map(|r| r.get("id"))
            .collect();
        out.push((db, users));
    }
    out
}

/// True when every good fee earner's live entries each have a live event in their account.
async fn converged(
    emulator: &Emulator,
    firms: &[String],
    good: &[(FirmDb, Vec<(usize, String)>)],
) -> bool {
    let events = emulator.live_events();
    for (firm, (db, users)) in firms.iter().zip(good) {
        for (index, user) in users {
            let wanted = live_entries(db, user).await.len();
            let account = account(firm, *index);
            let have = events.iter().filter(|e| e.account == account).count();
            if have != wanted {
                return false;
            }
        }
    }
    true
}

/// Connects the bad users (if any) and then the good ones; returns how long
/// the good ones took to converge, from the first good connect.
async fn run(
    env: &TestEnv,
    app: &TestApp,
    emulator: &Emulator,
    prefix: &str,
    with_bad: bool,
) -> Duration {
    let firms: Vec<String> = (0..GOOD.len()).map(|i| format!("{prefix}-{i}")).collect();
    let seeded = seed_firms(env, &firms, if with_bad { BAD } else { 0 }).await;
    let mut good = Vec::new();
    for (f, (db, users)) in seeded.into_iter().enumerate() {
        let mut picked = Vec::new();
        for (index, user) in users.into_iter().enumerate() {
            if with_bad && f == 0 && index < BAD {
                let fault = if index == 0 {
                    AccountFault::Hang
                } else {
                    AccountFault::RateLimited {
                        retry_after_secs: 86_400,
                    }
                };
                let mut config = emulator.config();
                config
                    .account_faults
                    .insert(account(&firms[f], index), fault);
                emulator.set_config(config);
                assert_eq!(
                    connect_user(app, &firms[f], &user, &account(&firms[f], index)).await,
                    200
                );
            } else {
                picked.push((index, user));
            }
        }
        good.push((db, picked));
    }
    if with_bad {
        // The bad accounts' first calls are under way before anyone else
        // connects: one never answered (recorded with status 0), then (as far
        // as the worker gets to it within 2 s) one answered 429.
        for (status, required) in [(0, true), (429, false)] {
            let mut waited = 0;
            while !emulator
                .received()
                .iter()
                .any(|r| r.kind == "api" && r.status == status)
            {
                if waited == 40 && !required {
                    break;
                }
                assert!(waited < 1200, "no call was answered {status}");
                waited += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert_eq!(good.iter().map(|(_, u)| u.len()).sum::<usize>(), 20);
    let started = Instant::now();
    for (firm, (_, users)) in firms.iter().zip(&good) {
        for (index, user) in users {
            assert_eq!(
                connect_user(app, firm, user, &account(firm, *index)).await,
                200
            );
        }
    }
    while !converged(emulator, &firms, &good).await {
        assert!(
            started.elapsed() < LIMIT,
            "the 20 good fee earners did not converge within {LIMIT:?} (bad accounts connected: {with_bad})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    if with_bad {
        // The day-long Retry-After was not slept in a pass: the connection is due again only after it.
        let calendar = Calendar::of(app);
        let rate_limited: Vec<String> = calendar
            .statuses(&firms[0])
            .await
            .into_iter()
            .filter(|c| {
                c.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("Retry-After 86400 s"))
            })
            .map(|c| c.firm_user_id)
            .collect();
        assert_eq!(
            rate_limited.len(),
            1,
            "the 429 connection was not rescheduled"
        );
        let connection = calendar
            .connection(&firms[0], &rate_limited[0])
            .await
            .expect("connection");
        let due = connection.job_due_at.expect("due");
        // The never-answered calls timed out (2 s here), counted as no answer and were tried
        // again: at most 8 (google_user_concurrency) are in flight, so a 9th means a retry.
        let mut waited = 0;
        while emulator
            .received()
            .iter()
            .filter(|r| r.kind == "api" && r.status == 0)
            .count()
            <= 8
        {
            assert!(
                waited < 400,
                "the unanswered call was not retried after its timeout"
            );
            waited += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            due > scopegate::clock::now_ms() + 86_000_000,
            "the 429 connection is due again before its Retry-After"
        );
    }
    took
}

async fn stuck_accounts_do_not_hold_up_other_firms(env: TestEnv) {
    let running = start_emulator().await;
    let emulator = running.emulator.clone();
    let mut args = google_args(&env, &running, 50);
    // A never-answered call is given up after 2 s, so stopping the gateway at the end is quick.
    args.connector_settings
        .push(google_setting("request_timeout_secs", "2"));
    let app = env
        .spawn_with(scopegate::config::Config::resolve(&args).expect("config"))
        .await;
    let baseline = run(&env, &app, &emulator, "calm", false).await;
    let troubled = run(&env, &app, &emulator, "troubled", true).await;
    eprintln!("converged: without bad accounts {baseline:?}, with them {troubled:?}");
    // Alone on an idle machine the two are within a few percent (3.3 s against 3.6 s); the
    // margin is for this 2-core machine running the rest of the suite beside it. Held up by
    // the stuck accounts, the others never converge (the run gives up after LIMIT).
    assert!(
        troubled <= baseline * 3 + Duration::from_secs(10),
        "the bad accounts held up the others: {troubled:?} against {baseline:?} without them"
    );
    app.stop().await;
}
