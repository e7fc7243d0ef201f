//! Helpers for tests that drive the real `scopegate` binary as an operator would.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_scopegate");

/// Runs `scopegate --data-dir DIR <args>` and returns its output.
pub fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("SCOPEGATE_DATABASE_URL")
        .output()
        .expect("run scopegate")
}

/// Runs a command that must succeed; returns stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = cli(dir, args);
    assert!(
        out.status.success(),
        "scopegate {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// A value printed as `key=value` by the CLI.
pub fn field(stdout: &str, key: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {stdout}"))
        .to_string()
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running `scopegate serve` with its stderr going to a file.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// `http://127.0.0.1:port` of its `/metrics` listener.
    pub metrics_base: String,
    pub log_path: PathBuf,
}

impl Server {
    pub fn start(dir: &Path, extra_env: &[(&str, &str)], database_url: Option<&str>) -> Self {
        Self::start_logging_to(dir, dir, extra_env, database_url)
    }

    /// Like [`Server::start`], with stderr going to a file in `log_dir`.
    pub fn start_logging_to(
        dir: &Path,
        log_dir: &Path,
        extra_env: &[(&str, &str)],
        database_url: Option<&str>,
    ) -> Self {
        let port = free_port();
        let metrics_port = free_port();
        let log_path = log_dir.join(format!("serve-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = Command::new(BIN);
        command
            .arg("--data-dir")
            .arg(dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .arg("serve");
        if let Some(url) = database_url {
            command.arg("--database-url").arg(url);
        }
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn serve");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self {
                    child,
                    base,
                    metrics_base: format!("http://127.0.0.1:{metrics_port}"),
                    log_path,
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "scopegate serve did not start: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("scopegate serve did not stop on SIGTERM");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Server {
    /// A failing test must not leave a gateway running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Exchanges the `client_id=`/`client_secret=` printed by `credential issue`
/// for an access token at `base`, with curl and HTTP Basic, as a vendor would.
pub fn vendor_token(base: &str, issued: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-u",
            &format!(
                "{}:{}",
                field(issued, "client_id"),
                field(issued, "client_secret")
            ),
        ])
        .args([
            "-d",
            "grant_type=client_credentials",
            &format!("{base}/oauth/token"),
        ])
        .output()
        .expect("curl");
    let body: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("token response is JSON");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// A fresh master key for `serve`.
pub fn master_key() -> String {
    Command::new(BIN)
        .args(["keys", "generate"])
        .output()
        .map(|o| {
            String::from_utf8(o.stdout)
                .expect("utf8")
                .trim()
                .to_string()
        })
        .expect("keys generate")
}

/// A firm registered and seeded through the CLI.
pub fn seeded_firm(dir: &Path, id: &str) {
    ok(
        dir,
        &["firm", "add", "--name", &format!("Firm {id}"), "--id", id],
    );
    ok(
        dir,
        &[
            "firm",
            "seed-demo",
            id,
            "--transactions",
            "50",
            "--diary-entries",
            "20",
        ],
    );
}

/// A seeded firm with the accounting connector switched on and one credential
/// issued; returns what `credential issue` printed.
pub fn accounting_vendor(dir: &Path, firm: &str) -> String {
    seeded_firm(dir, firm);
    ok(
        dir,
        &[
            "grant",
            "enable",
            "--firm",
            firm,
            "--connector",
            "accounting",
        ],
    );
    ok(
        dir,
        &[
            "credential",
            "issue",
            "--firm",
            firm,
            "--connector",
            "accounting",
        ],
    )
}

/// The value of the Prometheus series `name` whose labels include all of
/// `labels` (summed over the series that match), or None if none does.
pub fn metric(scrape: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in scrape
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name {
            continue;
        }
        let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let have: Vec<&str> = series_labels.split(',').collect();
        if pairs.iter().all(|p| have.contains(&p.as_str())) {
            *found.get_or_insert(0.0) += value.parse::<f64>().expect("a number");
        }
    }
    found
}

/// GETs `url` with curl; returns (status, body).
pub fn curl_get(url: &str, headers: &[&str]) -> (u16, String) {
    let mut command = Command::new("curl");
    command.args(["-s", "-w", "\n%{http_code}"]);
    for h in headers {
        command.args(["-H", h]);
    }
    let out = command.arg(url).output().expect("curl");
    let text = String::from_utf8(out.stdout).expect("utf8");
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.parse().unwrap_or(0), body.to_string())
}

pub fn postgres_admin_url() -> String {
    std::env::var("SCOPEGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A fresh PostgreSQL database URL (`sgtest_<label>_<pid>`), or None (skip,
/// saying so) when PostgreSQL is unreachable outside CI; panics in CI.
pub fn fresh_database(label: &str) -> Option<String> {
    use sqlx::Connection;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let admin = postgres_admin_url();
        let mut conn = match sqlx::AnyConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) if is_ci() => panic!("PostgreSQL unreachable with CI=true: {e}"),
            Err(e) => {
                eprintln!("SKIPPED: PostgreSQL unreachable ({e})");
                return None;
            }
        };
        let name = format!("sgtest_{label}_{}", std::process::id());
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&mut conn)
        .await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        Some(format!("{}/{name}", admin.rsplit_once('/').unwrap().0))
    })
}

/// The test Redis (`SCOPEGATE_TEST_REDIS_URL`, default redis://127.0.0.1:6379/),
/// or None (skip, saying so) when it does not answer outside CI; with
/// `CI=true` an unreachable Redis fails the test.
pub fn redis_url() -> Option<String> {
    let url = std::env::var("SCOPEGATE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let answer = redis::Client::open(url.as_str()).and_then(|client| {
        let mut connection = client.get_connection_with_timeout(Duration::from_secs(2))?;
        redis::cmd("PING").query::<String>(&mut connection)
    });
    match answer {
        Ok(_) => Some(url),
        Err(e) if is_ci() => panic!("Redis at {url} is unreachable with CI=true: {e}"),
        Err(e) => {
            eprintln!(
                "SKIPPED: Redis at {url} unreachable ({e}); set CI=true to make this a failure"
            );
            None
        }
    }
}

/// Adds a settings login for `email` with `password` (through stdin).
pub fn add_login(dir: &Path, database_url: Option<&str>, firm: &str, email: &str, password: &str) {
    use std::io::Write;
    let mut command = Command::new(BIN);
    command.arg("--data-dir").arg(dir);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    let mut add = command
        .args([
            "user",
            "add",
            "--firm",
            firm,
            "--email",
            email,
            "--role",
            "admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("user add");
    add.stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("password");
    assert!(add.wait().expect("user add").success());
}
