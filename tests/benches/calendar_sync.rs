//! Benchmark of the Google Calendar sync against the emulator (which answers
//! every Calendar call after 20 ms): an initial sync of 10,000 diary entries
//! of one fee earner (events per second, gateway CPU time per event), then
//! the delay from a diary change to its event (p50/p95).
//!
//! `cargo bench -p scopegate --bench calendar_sync`
//! Knobs (environment): BENCH_ENTRIES (10000), BENCH_LATENCY_MS (20),
//! BENCH_CONCURRENCY (16), BENCH_RATE (1000 calls/s per user), BENCH_INTERVAL_MS (100), BENCH_CHANGES (40).

use scopegate::app::Application;
use scopegate::config::{Config, ConfigArgs};
use scopegate::keys::Keyring;
use scopegate::tenancy::{default_firm_url, next_change_seqs, provision_firm_database, seed};
use scopegate_e2e::google::{google_setting, Calendar};
use scopegate_google_emulator::{Emulator, EmulatorConfig};
use sqlx::Row;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FIRM: &str = "bench-firm";

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) of this process's threads, split into (emulator, everything else).
fn cpu_seconds() -> (f64, f64) {
    let ticks = 100.0; // USER_HZ on Linux
    let (mut emulator, mut rest) = (0.0, 0.0);
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
            let used = fields
                .get(11)
                .and_then(|u| u.parse::<f64>().ok())
                .unwrap_or(0.0)
                + fields
                    .get(12)
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(0.0);
            if name.starts_with("emulator") {
                emulator += used / ticks;
            } else {
                rest += used / ticks;
            }
        }
    }
    (emulator, rest)
}

fn main() {
    let entries = knob("BENCH_ENTRIES", 10_000) as usize;
    let latency = knob("BENCH_LATENCY_MS", 20);
    let concurrency = knob("BENCH_CONCURRENCY", 16);
    let rate = knob("BENCH_RATE", 1000);
    let interval = knob("BENCH_INTERVAL_MS", 100);
    let changes = knob("BENCH_CHANGES", 40) as usize;

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
                ("sync_interval_ms", interval.to_string()),
                ("user_concurrency", concurrency.to_string()),
                ("user_rate_per_second", rate.to_string()),
            ]
            .into_iter()
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
                fee_earners: 1,
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
        let user: String = sqlx::query("SELECT id FROM users")
            .fetch_one(db.pool())
            .await
            .unwrap()
            .get("id");

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
        let count = || async {
            calendar
                .connection(FIRM, &user)
                .await
                .map(|c| c.events_count)
                .unwrap_or(0)
        };

        // Initial sync.
        let mut consent = calendar.consent_url(FIRM, &user).await.unwrap();
        consent.query_pairs_mut().append_pair("login_hint", "bench@gmail.example");
        let location = http.get(consent.as_str()).send().await.unwrap().headers()["location"]
            .to_str()
            .unwrap()
            .to_string();
        let query = location.split_once('?').unwrap().1.to_string();
        let (emulator_cpu_0, cpu_0) = cpu_seconds();
        let started = Instant::now();
        let callback = http
            .get(format!("{base}/oauth/google/callback?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(callback.status(), 200);
        while count().await < entries as i64 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = started.elapsed();
        let (emulator_cpu_1, cpu_1) = cpu_seconds();
        assert_eq!(emulator.live_events().len(), entries);
        let gateway_cpu = (cpu_1 - cpu_0).max(0.0);

        // Change -> event delay.
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
            while !emulator.live_events().iter().any(|e| e.event["description"] == text.as_str()) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            delays.push(changed.elapsed());
            tokio::time::sleep(Duration::from_millis(37)).await;
        }
        delays.sort();
        let pct = |p: f64| delays[((delays.len() as f64 * p).ceil() as usize).saturating_sub(1)];

        println!("calendar_sync benchmark (emulator latency {latency} ms, per-user concurrency {concurrency}, rate cap {rate}/s, poll interval {interval} ms)");
        println!(
            "initial sync: {entries} events in {:.2} s = {:.0} events/s",
            elapsed.as_secs_f64(),
            entries as f64 / elapsed.as_secs_f64()
        );
        println!(
            "gateway CPU: {:.2} s total = {:.0} us per event (emulator threads, excluded: {:.2} s)",
            gateway_cpu,
            gateway_cpu * 1e6 / entries as f64,
            emulator_cpu_1 - emulator_cpu_0
        );
        println!(
            "diary change -> event ({} changes): p50 {} ms, p95 {} ms",
            delays.len(),
            pct(0.50).as_millis(),
            pct(0.95).as_millis()
        );
        drop(state);
        let _ = stop.send(());
        let _ = server.await;
    });
}
