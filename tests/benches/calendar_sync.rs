//! Benchmark of the Google Calendar sync against the emulator, which answers
//! every Calendar call after 20 ms and enforces Google's usage quotas (600
//! requests a minute per user, 10,000 per project, over a sliding minute;
//! over them it answers 403 as Google does). The connector runs with its
//! production defaults (4 calls in flight per user, paced under both quotas,
//! a look for changes every second).
//!
//! 1. The initial sync of 20 fee earners with 1,000 diary entries each (dealt
//!    in turn along the diary, so each has exactly that many):
//!    Calendar API calls a minute against the binding quota (with 20 users,
//!    the project's 10,000: they would ask for 12,000), the 403/429 answers,
//!    and the gateway's CPU time per event (the emulator's threads and the
//!    bench's own main thread excluded).
//! 2. The delay from a diary change to its event at the default interval
//!    (p50/p95), with all 20 connections polling.
//!
//! `cargo bench -p scopegate-e2e --bench calendar_sync` (about 3 minutes: the
//! quota makes the 20,000 events take 2 minutes).
//! Knobs (environment): BENCH_USERS (20), BENCH_ENTRIES (1000 per user),
//! BENCH_LATENCY_MS (20), BENCH_QUOTAS (1; 0: the emulator lets every call
//! through), BENCH_CHANGES (30), and the connector's settings when set:
//! BENCH_CONCURRENCY (user_concurrency), BENCH_RATE (user_rate_per_second),
//! BENCH_PROJECT_RATE (project_rate_per_minute), BENCH_INTERVAL_MS
//! (sync_interval_ms). A quick run for profiling:
//! `BENCH_USERS=1 BENCH_ENTRIES=2000 BENCH_QUOTAS=0 BENCH_RATE=1000 BENCH_CHANGES=0`.

use scopegate::app::Application;
use scopegate::config::{Config, ConfigArgs};
use scopegate::keys::Keyring;
use scopegate::tenancy::{default_firm_url, next_change_seqs, provision_firm_database, seed};
use scopegate_e2e::google::{google_setting, Calendar};
use scopegate_google_emulator::quota::WINDOW;
use scopegate_google_emulator::{Emulator, EmulatorConfig, Quotas, Received};
use sqlx::Row;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FIRM: &str = "bench-firm";
/// The connector's default pass interval (`sync_interval_ms`), used when BENCH_INTERVAL_MS is not set.
const DEFAULT_INTERVAL_MS: u64 = 1000;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) of this process's threads: (emulator, the bench's main thread, the gateway).
fn cpu_seconds() -> (f64, f64, f64) {
    let ticks = 100.0; // USER_HZ on Linux
    let main_tid = std::process::id().to_string();
    let (mut emulator, mut main, mut gateway) = (0.0, 0.0, 0.0);
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let Some(close) = stat.rfind(')') else {
                continue;
            };
            let name = &stat[stat.find('(').unwrap_or(0) + 1..close];
            let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
            let field = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            let used = (field(11) + field(12)) / ticks;
            if name.starts_with("emulator") {
                emulator += used;
            } else if task.file_name().to_str() == Some(main_tid.as_str()) {
                main += used;
            } else {
                gateway += used;
            }
        }
    }
    (emulator, main, gateway)
}

/// The most calls that fell within any one quota window.
fn busiest_window(mut at_ms: Vec<i64>) -> usize {
    at_ms.sort_unstable();
    let window = WINDOW.as_millis() as i64;
    let mut start = 0;
    let mut most = 0;
    for end in 0..at_ms.len() {
        while at_ms[end] - at_ms[start] >= window {
            start += 1;
        }
        most = most.max(end + 1 - start);
    }
    most
}

/// What the emulator saw of the Calendar API during the initial sync.
struct QuotaUse {
    calls: usize,
    span: Duration,
    throttled: usize,
    busiest_minute: usize,
}

fn quota_use(received: &[Received]) -> QuotaUse {
    let api: Vec<&Received> = received.iter().filter(|r| r.kind == "api").collect();
    let first = api.iter().map(|r| r.at_ms).min().unwrap_or(0);
    let last = api.iter().map(|r| r.at_ms).max().unwrap_or(0);
    QuotaUse {
        calls: api.len(),
        span: Duration::from_millis((last - first).max(1) as u64),
        throttled: api
            .iter()
            .filter(|r| r.status == 403 || r.status == 429)
            .count(),
        busiest_minute: busiest_window(api.iter().map(|r| r.at_ms).collect()),
    }
}

fn main() {
    let users = knob("BENCH_USERS", 20) as usize;
    let per_user = knob("BENCH_ENTRIES", 1000) as usize;
    let entries = users * per_user;
    let latency = knob("BENCH_LATENCY_MS", 20);
    let quotas = (knob("BENCH_QUOTAS", 1) != 0).then_some(Quotas::GOOGLE);
    let changes = knob("BENCH_CHANGES", 30) as usize;
    let interval = knob("BENCH_INTERVAL_MS", DEFAULT_INTERVAL_MS);
    let settings: Vec<(&str, String)> = [
        ("user_concurrency", "BENCH_CONCURRENCY"),
        ("user_rate_per_second", "BENCH_RATE"),
        ("project_rate_per_minute", "BENCH_PROJECT_RATE"),
        ("sync_interval_ms", "BENCH_INTERVAL_MS"),
    ]
    .into_iter()
    .filter_map(|(key, var)| std::env::var(var).ok().map(|value| (key, value)))
    .collect();

    // The emulator gets its own runtime and threads, so its CPU can be told apart.
    let emulator_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("emulator")
        .enable_all()
        .build()
        .unwrap();
    let running = emulator_runtime.block_on(async {
        Emulator::new(EmulatorConfig {
            latency_ms: latency,
            quotas,
            ..Default::default()
        })
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
    });
    let emulator = running.emulator.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("gateway")
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("secret");
        std::fs::write(&secret_file, emulator.config().client_secret).unwrap();
        let config = Config::resolve(&ConfigArgs {
            data_dir: Some(dir.path().to_path_buf()),
            database_url: Some(format!("sqlite://{}", dir.path().join("registry.db").display())),
            listen: Some("127.0.0.1:0".parse().unwrap()),
            connector_settings: [
                ("auth_url", running.auth_url()),
                ("token_url", running.token_url()),
                ("revoke_url", running.revoke_url()),
                ("api_base", running.api_base()),
                ("client_id", emulator.config().client_id),
                ("client_secret_file", secret_file.display().to_string()),
            ]
            .into_iter()
            .chain(settings.iter().map(|(k, v)| (*k, v.clone())))
            .map(|(key, value)| google_setting(key, value))
            .collect(),
            metrics_listen: Some(scopegate::config::MetricsListen::Off),
            ..Default::default()
        })
        .unwrap();
        let registry = scopegate::registry::Registry::connect_and_migrate(&config.database_url)
            .await
            .unwrap();
        let url = default_firm_url(dir.path(), FIRM);
        let db = provision_firm_database(FIRM, &url).await.unwrap();
        seed::seed_demo(
            &db,
            seed::SeedSize {
                fee_earners: users,
                clients: 50,
                matters: 80,
                diary_entries: entries,
                transactions: 0,
            },
        )
        .await
        .unwrap();
        registry.add_firm(FIRM, "Bench firm", &url).await.unwrap();
        registry
            .enable_grant(
                FIRM,
                &scopegate::connectors::catalogue().require("google-calendar").unwrap().contract,
                "bench",
            )
            .await
            .unwrap();
        let user_ids: Vec<String> = sqlx::query("SELECT id FROM users WHERE role = 'fee_earner' ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("id"))
            .collect();
        assert_eq!(user_ids.len(), users);
        // The seed picks each entry's owner at random (1,000 each on average,
        // about 940 to 1,060 in practice); the run is of exactly `per_user`
        // each, dealt in turn along the diary's change order.
        sqlx::query(
            "WITH u AS (SELECT id, ROW_NUMBER() OVER (ORDER BY id) - 1 AS k FROM users WHERE role = 'fee_earner') \
             UPDATE diary_entries SET owner_user_id = (SELECT id FROM u WHERE u.k = diary_entries.change_seq % $1)",
        )
        .bind(users as i64)
        .execute(db.pool())
        .await
        .unwrap();
        let most: i64 = sqlx::query("SELECT COUNT(*) AS n FROM diary_entries GROUP BY owner_user_id ORDER BY n DESC LIMIT 1")
            .fetch_one(db.pool())
            .await
            .unwrap()
            .get("n");
        assert_eq!(most as usize, per_user, "entries dealt evenly");

        let app = Application::build(config, Arc::new(Keyring::ephemeral()), scopegate::connectors::registered()).await.unwrap();
        let base = format!("http://{}", app.local_addr());
        let state = app.state();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let calendar = Calendar::of_state(&state);

        // 1. Initial sync of every fee earner, each connecting in turn.
        let (emulator_cpu_0, _, cpu_0) = cpu_seconds();
        let started = Instant::now();
        let mut consent_retries = 0;
        for (n, user) in user_ids.iter().enumerate() {
            // A fee earner whose callback was refused (503: the registry was busy) starts again.
            for attempt in 0.. {
                let mut consent = calendar.consent_url(FIRM, user).await.unwrap();
                consent
                    .query_pairs_mut()
                    .append_pair("login_hint", &format!("bench{n}@gmail.example"));
                let location = http.get(consent.as_str()).send().await.unwrap().headers()["location"]
                    .to_str()
                    .unwrap()
                    .to_string();
                let query = location.split_once('?').unwrap().1.to_string();
                let callback = http
                    .get(format!("{base}/oauth/google/callback?{query}"))
                    .send()
                    .await
                    .unwrap();
                let status = callback.status();
                if status == 200 {
                    break;
                }
                let body = callback.text().await.unwrap_or_default();
                assert!(status == 503 && attempt < 5, "callback of fee earner {n}: {status} {body}");
                eprintln!("callback of fee earner {n} answered {status} ({body}); connecting again");
                consent_retries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        while emulator.live_event_count() < entries {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let elapsed = started.elapsed();
        let (emulator_cpu_1, _, cpu_1) = cpu_seconds();
        let gateway_cpu = (cpu_1 - cpu_0).max(0.0);
        let used = quota_use(&emulator.take_received());

        let quota_line = match quotas {
            Some(q) => {
                let users_quota = users as u64 * u64::from(q.per_user_per_minute);
                let binding = users_quota.min(u64::from(q.per_project_per_minute));
                let achieved = used.calls as f64 * 60.0 / used.span.as_secs_f64();
                format!(
                    "calendar_sync quota run: {users} users x {per_user} entries, {} Calendar API calls in {:.1} s = {achieved:.0} calls/min, quota {binding} calls/min (min of {users} x {} per user, {} per project), ratio {:.3} (goal >= 0.95), throttled answers (403/429) {}, busiest 60 s window {} calls",
                    used.calls,
                    used.span.as_secs_f64(),
                    q.per_user_per_minute,
                    q.per_project_per_minute,
                    achieved / binding as f64,
                    used.throttled,
                    used.busiest_minute,
                )
            }
            None => format!(
                "calendar_sync unthrottled run (no quotas in the emulator): {users} users x {per_user} entries, {} Calendar API calls in {:.1} s, throttled answers {}",
                used.calls,
                used.span.as_secs_f64(),
                used.throttled
            ),
        };

        // 2. Change -> event delay, one change at a time, spread over the fee earners.
        let ids: Vec<String> = sqlx::query("SELECT id FROM diary_entries ORDER BY id LIMIT $1")
            .bind(changes as i64)
            .fetch_all(db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("id"))
            .collect();
        let mut delays = Vec::new();
        for (n, id) in ids.iter().enumerate() {
            let text = format!("Bench change {n}");
            let mut tx = db.pool().begin().await.unwrap();
            let seq = next_change_seqs(&mut tx, 1).await.unwrap();
            sqlx::query("UPDATE diary_entries SET description = $1, change_seq = $2 WHERE id = $3")
                .bind(&text)
                .bind(seq)
                .bind(id)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let changed = Instant::now();
            while !emulator.any_live_event(|e| e.event["description"] == text.as_str()) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            delays.push(changed.elapsed());
            // Not in step with the sync's ticks: each change lands somewhere in an interval.
            tokio::time::sleep(Duration::from_millis(137)).await;
        }
        delays.sort();
        let pct = |p: f64| {
            delays
                .get(((delays.len() as f64 * p).ceil() as usize).saturating_sub(1))
                .map_or(0, Duration::as_millis)
        };

        println!(
            "calendar_sync benchmark (emulator latency {latency} ms; connector settings {}; load average {})",
            if settings.is_empty() { "the defaults".to_string() } else { format!("{settings:?}") },
            std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ")
        );
        println!(
            "calendar_sync initial sync: {entries} events in {:.2} s = {:.0} events/s ({consent_retries} consents started again after a 503)",
            elapsed.as_secs_f64(),
            entries as f64 / elapsed.as_secs_f64()
        );
        println!("{quota_line}");
        println!(
            "calendar_sync gateway CPU: {gateway_cpu:.2} s = {:.0} us per event (goal <= 200; emulator threads {:.2} s and the bench's main thread excluded)",
            gateway_cpu * 1e6 / entries as f64,
            emulator_cpu_1 - emulator_cpu_0
        );
        println!(
            "calendar_sync diary change -> event ({} changes, interval {interval} ms): p50 {} ms, p95 {} ms (goal p95 <= 2000 at the default interval {DEFAULT_INTERVAL_MS} ms)",
            delays.len(),
            pct(0.50),
            pct(0.95)
        );
        drop(state);
        let _ = stop.send(());
        let _ = server.await;
    });
}
