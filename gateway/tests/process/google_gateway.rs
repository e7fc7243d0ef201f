//! Helpers for process tests that run `scopegate serve` against the Google
//! emulator: a seeded firm with the calendar connector on, the gateway's
//! command line, fee earners connected through the operator's `connect`
//! command and the emulator's consent screen, diary edits as the practice
//! system makes them.
#![allow(dead_code)]

use scopegate::registry::Registry;
use scopegate::tenancy::{provision_firm_database, seed, FirmDb};
use scopegate_google_emulator::RunningEmulator;
use sqlx::Row;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A fresh PostgreSQL database, or `None` (after saying so) when PostgreSQL is unreachable outside CI.
pub async fn fresh_postgres(label: &str) -> Option<String> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let admin = crate::common::postgres_admin_url();
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

/// Where a test's gateways keep their data, registry and key file. Every
/// instance (and CLI command) has one public URL, as behind a proxy, so a
/// consent link printed by one is completed by any.
pub struct Deployment {
    pub dir: PathBuf,
    pub registry_url: String,
    pub key_file: PathBuf,
}

const PUBLIC_URL: &str = "https://scopegate.harbour.example";

impl Deployment {
    /// `scopegate` with this deployment's settings, pointed at `emulator`, listening on `port`.
    pub fn command(&self, port: u16, emulator: &RunningEmulator) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_scopegate"));
        command
            .env("SCOPEGATE_DATA_DIR", &self.dir)
            .env("SCOPEGATE_DATABASE_URL", &self.registry_url)
            .env("SCOPEGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("SCOPEGATE_PUBLIC_URL", PUBLIC_URL)
            .env("SCOPEGATE_METRICS_LISTEN", "off")
            .env("SCOPEGATE_MASTER_KEY_FILE", &self.key_file)
            .env_remove("SCOPEGATE_MASTER_KEY")
            .env("SCOPEGATE_API_RATE_PER_SECOND", "100000")
            .env("SCOPEGATE_API_BURST", "100000")
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
            .env("SCOPEGATE_GOOGLE_USER_RATE_PER_SECOND", "2000")
            .env("SCOPEGATE_LOG_FORMAT", "json")
            .env_remove("SCOPEGATE_CONFIG")
            .stdin(Stdio::null());
        command
    }

    /// Starts `scopegate serve` (stderr into `serve-<port>.log`) and waits until it is healthy.
    pub async fn serve(
        &self,
        port: u16,
        emulator: &RunningEmulator,
        extra_env: &[(&str, &str)],
    ) -> Serving {
        let log_path = self.dir.join(format!("serve-{port}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        let mut command = self.command(port, emulator);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let serving = Serving {
            child: command
                .arg("serve")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start scopegate serve"),
            port,
            log_path,
        };
        wait_healthy(port).await;
        serving
    }

    /// Runs a `scopegate` command against this deployment; (success, stdout, stderr).
    pub fn run(&self, emulator: &RunningEmulator, args: &[&str]) -> (bool, String, String) {
        let out = self
            .command(crate::common::free_port(), emulator)
            .args(args)
            .output()
            .expect("run scopegate");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// A `scopegate serve` process, killed when dropped (so a failed assertion leaves none behind).
pub struct Serving {
    pub child: Child,
    pub port: u16,
    pub log_path: PathBuf,
}

impl Serving {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no shutdown, no lease released.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM, then wait (bounded) for the clean exit.
    pub fn terminate(mut self) {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "serve exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("scopegate serve did not stop on SIGTERM");
    }

    /// Log lines at WARN or ERROR, but sqlx's slow-statement notes (they
    /// measure how busy the test machine is).
    pub fn complaints(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
            .filter(|l| !l.contains("\"slow_threshold\""))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn wait_healthy(port: u16) {
    let http = reqwest::Client::new();
    for _ in 0..600 {
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

/// Registers `firm` (its database at `firm_url`, seeded with `size`) with the
/// Google Calendar connector switched on (and the accounting one, when `accounting`).
pub async fn google_firm(
    registry: &Registry,
    firm: &str,
    firm_url: &str,
    size: seed::SeedSize,
    accounting: bool,
) -> FirmDb {
    let db = provision_firm_database(firm, firm_url).await.unwrap();
    seed::seed_demo(&db, size).await.unwrap();
    registry.add_firm(firm, firm, firm_url).await.unwrap();
    let catalogue = scopegate::connectors::catalogue();
    let mut connectors = vec!["google-calendar"];
    if accounting {
        connectors.push("accounting");
    }
    for connector in connectors {
        registry
            .enable_grant(
                firm,
                &catalogue.require(connector).unwrap().contract,
                "admin@firm",
            )
            .await
            .unwrap();
    }
    db
}

/// The fee earners who own diary entries.
pub async fn diary_owners(db: &FirmDb) -> Vec<String> {
    sqlx::query("SELECT DISTINCT owner_user_id FROM diary_entries ORDER BY owner_user_id")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("owner_user_id"))
        .collect()
}

/// The link the operator's `connect` command prints for `user` (parks a consent).
pub fn consent_link(
    deployment: &Deployment,
    emulator: &RunningEmulator,
    firm: &str,
    user: &str,
) -> String {
    let (ok, stdout, stderr) = deployment.run(
        emulator,
        &[
            "connector",
            "google-calendar",
            "--firm",
            firm,
            "connect",
            "--user",
            user,
        ],
    );
    assert!(ok, "connect: {stderr}");
    stdout
        .lines()
        .find(|l| l.starts_with("http"))
        .expect("link")
        .to_string()
}

/// The fee earner opens the link and approves at the emulator; the callback must answer 200.
pub async fn consent(base: &str, link: &str, account: &str) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let to_google = http
        .get(format!("{link}&login_hint={account}"))
        .send()
        .await
        .unwrap();
    assert_eq!(to_google.status(), 302);
    let back = to_google.headers()["location"].to_str().unwrap();
    let query = back.split_once('?').unwrap().1;
    let answer = http
        .get(format!("{base}/oauth/google/callback?{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
}

/// Live (not deleted) diary entries of the firm.
pub async fn live_entries(db: &FirmDb) -> usize {
    sqlx::query("SELECT COUNT(*) AS n FROM diary_entries WHERE deleted = 0")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get::<i64, _>("n") as usize
}

/// Adds a diary entry for `user`, as the practice system would.
pub async fn add_entry(db: &FirmDb, user: &str, description: &str) {
    let matter: String =
        sqlx::query("SELECT matter_id FROM diary_entries WHERE owner_user_id = $1 LIMIT 1")
            .bind(user)
            .fetch_one(db.pool())
            .await
            .unwrap()
            .get("matter_id");
    let mut tx = db.pool().begin().await.unwrap();
    let seq = scopegate::tenancy::next_change_seqs(&mut tx, 1)
        .await
        .unwrap();
    let starts = 1_900_000_000_000i64 + seq * 3_600_000;
    sqlx::query("INSERT INTO diary_entries (id, matter_id, owner_user_id, starts_at, ends_at, all_day, description, location, private_notes, deleted, change_seq) VALUES ($1, $2, $3, $4, $5, 0, $6, 'Room 2', 'Private note', 0, $7)")
        .bind(uuid::Uuid::new_v4().to_string()).bind(&matter).bind(user).bind(starts).bind(starts + 1_800_000).bind(description).bind(seq)
        .execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

/// Deletes `n` live diary entries, as the practice system would (soft delete).
pub async fn delete_entries(db: &FirmDb, n: usize) {
    let ids: Vec<String> =
        sqlx::query("SELECT id FROM diary_entries WHERE deleted = 0 ORDER BY id DESC LIMIT $1")
            .bind(n as i64)
            .fetch_all(db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("id"))
            .collect();
    for id in ids {
        let mut tx = db.pool().begin().await.unwrap();
        let seq = scopegate::tenancy::next_change_seqs(&mut tx, 1)
            .await
            .unwrap();
        sqlx::query("UPDATE diary_entries SET deleted = 1, change_seq = $1 WHERE id = $2")
            .bind(seq)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
}

pub fn key_file(dir: &Path, keys: &[&str]) -> PathBuf {
    let path = dir.join("master.key");
    std::fs::write(&path, keys.join("\n") + "\n").unwrap();
    path
}
