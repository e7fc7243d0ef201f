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
    pub log_path: PathBuf,
}

impl Server {
    pub fn start(dir: &Path, extra_env: &[(&str, &str)], database_url: Option<&str>) -> Self {
        let port = free_port();
        let log_path = dir.join(format!("serve-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = Command::new(BIN);
        command
            .arg("--data-dir")
            .arg(dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
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
