//! Crash safety of the calendar sync: the real `scopegate serve` binary syncs
//! 2,000 diary entries into the Google emulator, is killed with SIGKILL part
//! way through, and is started again (now with 30% of calls answered 429 or
//! 503). The emulator must end with exactly one event per entry: none
//! duplicated, none missing.

use scopegate::registry::Registry;
use scopegate::tenancy::{default_firm_url, provision_firm_database, seed};
use scopegate_google_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use sqlx::Row;
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const FIRM: &str = "harbour";
const ENTRIES: usize = 2000;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh PostgreSQL database, or `None` (after saying so) when PostgreSQL is unreachable outside CI.
async fn fresh_postgres(label: &str) -> Option<String> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let admin = std::env::var("SCOPEGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut conn = match sqlx::AnyConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("PostgreSQL unreachable with CI=true: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: PostgreSQL at {admin} unreachable ({e})");
            return None;
        }
    };
    let name = format!("sgtest_{label}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    Some(format!("{}/{name}", admin.rsplit_once('/').unwrap().0))
}

fn gateway_command(
    dir: &std::path::Path,
    database_url: &str,
    port: u16,
    emulator: &RunningEmulator,
    key: &str,
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scopegate"));
    command
        .env("SCOPEGATE_DATA_DIR", dir)
        .env("SCOPEGATE_DATABASE_URL", database_url)
        .env("SCOPEGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("SCOPEGATE_METRICS_LISTEN", "off")
        .env("SCOPEGATE_MASTER_KEY", key)
        .env("SCOPEGATE_GOOGLE_AUTH_URL", emulator.auth_url())
        .env("SCOPEGATE_GOOGLE_TOKEN_URL", emulator.token_url())
        .env("SCOPEGATE_GOOGLE_REVOKE_URL", emulator.revoke_url())
        .env("SCOPEGATE_GOOGLE_API_BASE", emulator.api_base())
        .env(
            "SCOPEGATE_GOOGLE_CLIENT_ID",
            emulator.emulator.config().client_id,
        )
        .env(
            "SCOPEGATE_GOOGLE_CLIENT_SECRET",
            emulator.emulator.config().client_secret,
        )
        .env("SCOPEGATE_GOOGLE_SYNC_INTERVAL_MS", "50")
        .env("SCOPEGATE_GOOGLE_USER_CONCURRENCY", "8")
        .env("SCOPEGATE_GOOGLE_USER_RATE_PER_SECOND", "2000")
        .env("SCOPEGATE_LOG_FORMAT", "json")
        .env_remove("SCOPEGATE_CONFIG")
        .stdin(Stdio::null());
    command
}

/// A `scopegate serve` process, killed when dropped (so a failed assertion leaves none behind).
struct Serving(Child);

impl Serving {
    fn kill(&mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reaped");
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(
    dir: &std::path::Path,
    database_url: &str,
    port: u16,
    emulator: &RunningEmulator,
    key: &str,
) -> Serving {
    Serving(
        gateway_command(dir, database_url, port, emulator, key)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start scopegate serve"),
    )
}

async fn wait_healthy(port: u16) {
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
        {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("scopegate serve did not become healthy");
}

/// The events the connection counts (its record in the connector's grant records).
async fn events_count(registry: &Registry) -> i64 {
    sqlx::query("SELECT value FROM connector_records WHERE connector = 'google-calendar' AND record_key LIKE 'connection/%'")
        .fetch_all(registry.pool())
        .await
        .unwrap()
        .iter()
        .filter_map(|r| {
            let value: serde_json::Value = serde_json::from_str(&r.get::<String, _>("value")).ok()?;
            value["events_count"].as_i64()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_sync_leaves_no_duplicate_and_no_gap_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let registry_url = format!("sqlite://{}", dir.path().join("registry.db").display());
    let firm_url = default_firm_url(dir.path(), FIRM);
    sigkill_mid_sync(dir, registry_url, firm_url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_sync_leaves_no_duplicate_and_no_gap_postgres() {
    let Some(registry_url) = fresh_postgres("registry").await else {
        return;
    };
    let firm_url = fresh_postgres("firm").await.expect("postgres");
    sigkill_mid_sync(tempfile::tempdir().unwrap(), registry_url, firm_url).await;
}

async fn sigkill_mid_sync(dir: tempfile::TempDir, registry_url: String, url: String) {
    let key = scopegate::keys::generate_key();
    let running = Emulator::new(EmulatorConfig {
        latency_ms: 3,
        ..Default::default()
    })
    .start("127.0.0.1:0".parse().unwrap())
    .await
    .unwrap();
    let emulator = running.emulator.clone();

    let registry = Registry::connect_and_migrate(&registry_url).await.unwrap();
    let db = provision_firm_database(FIRM, &url).await.unwrap();
    seed::seed_demo(
        &db,
        seed::SeedSize {
            fee_earners: 1,
            clients: 20,
            matters: 30,
            diary_entries: ENTRIES,
            transactions: 0,
        },
    )
    .await
    .unwrap();
    registry.add_firm(FIRM, "Harbour Law", &url).await.unwrap();
    let catalogue = scopegate::connectors::catalogue();
    registry
        .enable_grant(
            FIRM,
            &catalogue.require("google-calendar").unwrap().contract,
            "admin@harbour",
        )
        .await
        .unwrap();
    let user: String = sqlx::query("SELECT id FROM users")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get("id");

    let port = free_port();
    let mut first = serve(dir.path(), &registry_url, port, &running, &key);
    wait_healthy(port).await;

    // The operator prints the consent link; the fee earner opens it.
    let output = gateway_command(dir.path(), &registry_url, port, &running, &key)
        .args([
            "connector",
            "google-calendar",
            "--firm",
            FIRM,
            "connect",
            "--user",
            &user,
        ])
        .output()
        .expect("scopegate connector google-calendar connect");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let link = stdout
        .lines()
        .find(|l| l.starts_with("http"))
        .expect("link");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let to_google = http
        .get(format!("{link}&login_hint=fee.earner%40gmail.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(to_google.status(), 302);
    let back = to_google.headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(back.starts_with(&format!("http://127.0.0.1:{port}/oauth/google/callback?")));
    assert_eq!(http.get(&back).send().await.unwrap().status(), 200);

    // Kill it mid-way, inside a batch of entries.
    for _ in 0..1200 {
        if emulator.live_events().len() >= ENTRIES / 4 + 37 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill();
    let at_kill = emulator.live_events().len();
    assert!(
        at_kill > 0 && at_kill < ENTRIES,
        "killed part way ({at_kill} of {ENTRIES} events)"
    );

    // Restart, now with 30% of calls answered 429 or 503.
    let mut config = emulator.config();
    config.fault_rate = 0.3;
    emulator.set_config(config);
    let mut second = serve(dir.path(), &registry_url, port, &running, &key);
    wait_healthy(port).await;
    let mut converged = false;
    for _ in 0..2400 {
        if events_count(&registry).await == ENTRIES as i64 {
            converged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.kill();
    assert!(
        converged,
        "the restarted sync converged to {ENTRIES} events"
    );

    let events = emulator.live_events();
    let ids: BTreeSet<String> = events
        .iter()
        .map(|e| e.event["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events.len(), ENTRIES, "no duplicate and no missing event");
    assert_eq!(ids.len(), ENTRIES);
    let descriptions: Vec<String> =
        sqlx::query("SELECT description FROM diary_entries ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("description"))
            .collect();
    let mut sent: Vec<String> = events
        .iter()
        .map(|e| e.event["description"].as_str().unwrap().to_string())
        .collect();
    let mut expected = descriptions;
    sent.sort();
    expected.sort();
    assert_eq!(sent, expected);
    let faults = emulator
        .received()
        .iter()
        .filter(|r| r.status == 429 || r.status == 503)
        .count();
    assert!(
        faults > 100,
        "faults were injected after the restart ({faults})"
    );
    eprintln!(
        "killed with {at_kill} of {ENTRIES} events synced; after restart: {} events, {faults} injected faults, {} insert(s) answered 409 duplicate",
        events.len(),
        emulator.received().iter().filter(|r| r.status == 409).count()
    );
}
