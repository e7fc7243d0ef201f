//! The real `scopegate` executable: its settings for the soak (data directory,
//! key file, Google emulator URLs, fixed ports), `scopegate serve` as a child
//! process (started, watched, stopped with SIGTERM) and operator commands run
//! against the same data directory while it serves.

use scopegate_google_emulator::RunningEmulator;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The public URL every command shares (consent links name its callback).
const PUBLIC_URL: &str = "https://scopegate.soak.example";

/// Where the gateway keeps its data and how it reaches the emulator.
pub struct Deployment {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub key_file: PathBuf,
    google: Vec<(&'static str, String)>,
}

/// What an operator command printed.
pub struct Ran {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Deployment {
    pub fn new(bin: PathBuf, dir: &Path, emulator: &RunningEmulator) -> Self {
        let key_file = dir.join("master.key");
        std::fs::write(&key_file, scopegate::keys::generate_key() + "\n").expect("key file");
        let config = emulator.emulator.config();
        let google = vec![
            ("SCOPEGATE_GOOGLE_AUTH_URL", emulator.auth_url()),
            ("SCOPEGATE_GOOGLE_TOKEN_URL", emulator.token_url()),
            ("SCOPEGATE_GOOGLE_REVOKE_URL", emulator.revoke_url()),
            ("SCOPEGATE_GOOGLE_API_BASE", emulator.api_base()),
            ("SCOPEGATE_GOOGLE_CLIENT_ID", config.client_id),
            ("SCOPEGATE_GOOGLE_CLIENT_SECRET", config.client_secret),
        ];
        Self {
            bin,
            dir: dir.to_path_buf(),
            key_file,
            google,
        }
    }

    /// `scopegate` with this deployment's environment (SQLite registry: the default in the data directory).
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .env("SCOPEGATE_DATA_DIR", &self.dir)
            .env_remove("SCOPEGATE_DATABASE_URL")
            .env_remove("SCOPEGATE_CONFIG")
            .env_remove("SCOPEGATE_MASTER_KEY")
            .env("SCOPEGATE_MASTER_KEY_FILE", &self.key_file)
            .env("SCOPEGATE_PUBLIC_URL", PUBLIC_URL)
            .env("SCOPEGATE_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (key, value) in &self.google {
            command.env(key, value);
        }
        command
    }

    /// Runs an operator command to its end.
    pub async fn run(&self, args: &[&str]) -> Ran {
        match self.command().args(args).output().await {
            Ok(out) => Ran {
                ok: out.status.success(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            Err(e) => Ran {
                ok: false,
                stdout: String::new(),
                stderr: format!("cannot run {}: {e}", self.bin.display()),
            },
        }
    }

    /// Starts `scopegate serve` on the given loopback ports and waits until it is healthy.
    pub async fn serve(&self, port: u16, metrics_port: u16) -> Result<Gateway, String> {
        let log_path = self.dir.join("serve.log");
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let child = self
            .command()
            .env("SCOPEGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "SCOPEGATE_METRICS_LISTEN",
                format!("127.0.0.1:{metrics_port}"),
            )
            // Fixed, modest rates from one address: the per-address API limit is not under test.
            .env("SCOPEGATE_API_RATE_PER_SECOND", "1000")
            .env("SCOPEGATE_API_BURST", "1000")
            // Vendor tokens expire every two minutes, so they are refreshed all along.
            .env("SCOPEGATE_TOKEN_TTL_SECS", "120")
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.bin.display()))?;
        let mut gateway = Gateway {
            pid: child.id().ok_or("serve exited at once")?,
            child,
            base: format!("http://127.0.0.1:{port}"),
            metrics_url: format!("http://127.0.0.1:{metrics_port}/metrics"),
            log_path,
        };
        let http = reqwest::Client::new();
        for _ in 0..600 {
            if let Some(status) = gateway.exited() {
                return Err(format!(
                    "serve exited with {status}: {}",
                    gateway.log_tail()
                ));
            }
            let healthz = http.get(format!("{}/healthz", gateway.base)).send().await;
            if healthz.is_ok_and(|r| r.status() == 200) {
                return Ok(gateway);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "serve did not become healthy: {}",
            gateway.log_tail()
        ))
    }
}

/// A running `scopegate serve` (killed if dropped while running).
pub struct Gateway {
    child: Child,
    pub pid: u32,
    pub base: String,
    pub metrics_url: String,
    pub log_path: PathBuf,
}

impl Gateway {
    /// How it ended, if it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, then wait (up to 60 s) for it to drain and exit; its exit status.
    pub async fn terminate(mut self) -> Result<std::process::ExitStatus, String> {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if !sent.is_ok_and(|s| s.success()) {
            return Err("kill -TERM failed".into());
        }
        match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("serve did not stop within 60 s of SIGTERM".into()),
        }
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
