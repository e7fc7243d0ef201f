//! Configuration, layered: command-line flags > `SCOPEGATE_*` environment >
//! TOML file (`--config` / `SCOPEGATE_CONFIG`) > defaults.
//!
//! | flag | environment | TOML key | default |
//! |---|---|---|---|
//! | `--config` | `SCOPEGATE_CONFIG` | - | none |
//! | `--data-dir` | `SCOPEGATE_DATA_DIR` | `data_dir` | `./data` |
//! | `--database-url` | `SCOPEGATE_DATABASE_URL` | `database_url` | `sqlite://<data_dir>/registry.db` |
//! | `--listen` | `SCOPEGATE_LISTEN` | `listen` | `127.0.0.1:8080` |
//! | `--public-url` | `SCOPEGATE_PUBLIC_URL` | `public_url` | `http://<listen>` |
//! | `--master-key-file` | `SCOPEGATE_MASTER_KEY_FILE` | `master_key_file` | none |
//! | - | `SCOPEGATE_MASTER_KEY` (base64 key) | - | none |
//! | `--log-format` | `SCOPEGATE_LOG_FORMAT` | `log_format` | `human` |
//! | `--schemas-dir` | `SCOPEGATE_SCHEMAS_DIR` | `schemas_dir` | built in |
//! | `--token-ttl-secs` | `SCOPEGATE_TOKEN_TTL_SECS` | `token_ttl_secs` | `900` |
//! | `--firm-pool-capacity` | `SCOPEGATE_FIRM_POOL_CAPACITY` | `firm_pool_capacity` | `256` |
//! | `--trusted-proxies` | `SCOPEGATE_TRUSTED_PROXIES` | `trusted_proxies` | none |
//! | `--api-rate-per-second` | `SCOPEGATE_API_RATE_PER_SECOND` | `api_rate_per_second` | `50` |
//! | `--api-burst` | `SCOPEGATE_API_BURST` | `api_burst` | `100` |
//! | `--auth-failures-per-ip` | `SCOPEGATE_AUTH_FAILURES_PER_IP` | `auth_failures_per_ip` | `5` |
//! | `--auth-failures-per-client` | `SCOPEGATE_AUTH_FAILURES_PER_CLIENT` | `auth_failures_per_client` | `50` |
//! | `--auth-failure-recovery-secs` | `SCOPEGATE_AUTH_FAILURE_RECOVERY_SECS` | `auth_failure_recovery_secs` | `60` |
//! | `--header-read-timeout-secs` | `SCOPEGATE_HEADER_READ_TIMEOUT_SECS` | `header_read_timeout_secs` | `10` |
//! | `--request-timeout-secs` | `SCOPEGATE_REQUEST_TIMEOUT_SECS` | `request_timeout_secs` | `30` |
//! | `--max-connections` | `SCOPEGATE_MAX_CONNECTIONS` | `max_connections` | `1024` |
//! | `--session-idle-secs` | `SCOPEGATE_SESSION_IDLE_SECS` | `session_idle_secs` | `1800` |
//! | `--session-max-secs` | `SCOPEGATE_SESSION_MAX_SECS` | `session_max_secs` | `43200` |
//! | `--handoff-public-key` | `SCOPEGATE_HANDOFF_PUBLIC_KEY` | `handoff_public_key` | none (hand-off off) |
//! | `--google-auth-url` | `SCOPEGATE_GOOGLE_AUTH_URL` | `google_auth_url` | `https://accounts.google.com/o/oauth2/v2/auth` |
//! | `--google-token-url` | `SCOPEGATE_GOOGLE_TOKEN_URL` | `google_token_url` | `https://oauth2.googleapis.com/token` |
//! | `--google-revoke-url` | `SCOPEGATE_GOOGLE_REVOKE_URL` | `google_revoke_url` | `https://oauth2.googleapis.com/revoke` |
//! | `--google-api-base` | `SCOPEGATE_GOOGLE_API_BASE` | `google_api_base` | `https://www.googleapis.com/calendar/v3/` |
//! | `--google-client-id` | `SCOPEGATE_GOOGLE_CLIENT_ID` | `google_client_id` | none (connector unavailable) |
//! | - | `SCOPEGATE_GOOGLE_CLIENT_SECRET` | - | none |
//! | `--google-client-secret-file` | `SCOPEGATE_GOOGLE_CLIENT_SECRET_FILE` | `google_client_secret_file` | none |
//! | `--google-redirect-url` | `SCOPEGATE_GOOGLE_REDIRECT_URL` | `google_redirect_url` | `<public_url>/oauth/google/callback` |
//! | `--google-sync-interval-ms` | `SCOPEGATE_GOOGLE_SYNC_INTERVAL_MS` | `google_sync_interval_ms` | `2000` |
//! | `--google-user-concurrency` | `SCOPEGATE_GOOGLE_USER_CONCURRENCY` | `google_user_concurrency` | `4` |
//! | `--google-user-rate-per-second` | `SCOPEGATE_GOOGLE_USER_RATE_PER_SECOND` | `google_user_rate_per_second` | `10` (Google's 600/min) |
//!
//! Settings logins are throttled with the same failure budgets as client
//! authentication (`auth_failures_per_ip`, and `auth_failures_per_client` per
//! firm account). A client that has not sent a whole request header within
//! the header-read timeout (including an idle kept-alive connection) is
//! disconnected; a request not answered within the request timeout gets 503;
//! past the connection cap new connections wait in the listen queue (mind the
//! process's open-file limit when raising it). The hand-off key is the host application's Ed25519 public
//! key, base64 (32 bytes).

use crate::keys::{KeyError, Keyring};
use clap::Args;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Flags (and their environment variables) shared by every subcommand.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, env = "SCOPEGATE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Folder for the SQLite registry and per-firm databases.
    #[arg(long, env = "SCOPEGATE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Registry database: sqlite://... or postgres://...
    #[arg(
        long,
        env = "SCOPEGATE_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "SCOPEGATE_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// URL clients use to reach this gateway (shown in printed instructions).
    #[arg(long, env = "SCOPEGATE_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// File holding the master key(s), one base64 key per line, newest first.
    #[arg(long, env = "SCOPEGATE_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "SCOPEGATE_LOG_FORMAT", global = true)]
    pub log_format: Option<LogFormat>,
    /// Read connector manifests and schemas from this folder instead of the built-in ones.
    #[arg(long, env = "SCOPEGATE_SCHEMAS_DIR", global = true)]
    pub schemas_dir: Option<PathBuf>,
    /// Lifetime of access tokens, seconds.
    #[arg(long, env = "SCOPEGATE_TOKEN_TTL_SECS", global = true)]
    pub token_ttl_secs: Option<u64>,
    /// How many firm databases may be open at once.
    #[arg(long, env = "SCOPEGATE_FIRM_POOL_CAPACITY", global = true)]
    pub firm_pool_capacity: Option<usize>,
    /// Reverse proxies whose X-Forwarded-For is believed (comma-separated IPs).
    #[arg(
        long,
        env = "SCOPEGATE_TRUSTED_PROXIES",
        global = true,
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<IpAddr>>,
    /// Sustained API requests per second per credential and per client IP.
    #[arg(long, env = "SCOPEGATE_API_RATE_PER_SECOND", global = true)]
    pub api_rate_per_second: Option<u64>,
    /// API burst allowance per credential and per client IP.
    #[arg(long, env = "SCOPEGATE_API_BURST", global = true)]
    pub api_burst: Option<u32>,
    /// Failed client authentications naming unknown client ids (and failed logins) allowed per IP before 429.
    #[arg(long, env = "SCOPEGATE_AUTH_FAILURES_PER_IP", global = true)]
    pub auth_failures_per_ip: Option<u32>,
    /// Failed client authentications allowed per client_id (and logins per account), all IPs, before 429.
    #[arg(long, env = "SCOPEGATE_AUTH_FAILURES_PER_CLIENT", global = true)]
    pub auth_failures_per_client: Option<u32>,
    /// Seconds for one allowed failure to come back.
    #[arg(long, env = "SCOPEGATE_AUTH_FAILURE_RECOVERY_SECS", global = true)]
    pub auth_failure_recovery_secs: Option<u64>,
    /// Seconds a client has to send a whole request header before it is disconnected.
    #[arg(long, env = "SCOPEGATE_HEADER_READ_TIMEOUT_SECS", global = true)]
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a request (its body included) may take before it is answered 503.
    #[arg(long, env = "SCOPEGATE_REQUEST_TIMEOUT_SECS", global = true)]
    pub request_timeout_secs: Option<u64>,
    /// Client connections served at once; more wait to be accepted.
    #[arg(long, env = "SCOPEGATE_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// Settings sessions end after this many seconds without a request.
    #[arg(long, env = "SCOPEGATE_SESSION_IDLE_SECS", global = true)]
    pub session_idle_secs: Option<u64>,
    /// Settings sessions end this many seconds after login, used or not.
    #[arg(long, env = "SCOPEGATE_SESSION_MAX_SECS", global = true)]
    pub session_max_secs: Option<u64>,
    /// The host application's Ed25519 public key (base64) for settings hand-off.
    #[arg(long, env = "SCOPEGATE_HANDOFF_PUBLIC_KEY", global = true)]
    pub handoff_public_key: Option<String>,
    /// Google's OAuth authorize endpoint.
    #[arg(long, env = "SCOPEGATE_GOOGLE_AUTH_URL", global = true)]
    pub google_auth_url: Option<String>,
    /// Google's OAuth token endpoint.
    #[arg(long, env = "SCOPEGATE_GOOGLE_TOKEN_URL", global = true)]
    pub google_token_url: Option<String>,
    /// Google's OAuth revocation endpoint.
    #[arg(long, env = "SCOPEGATE_GOOGLE_REVOKE_URL", global = true)]
    pub google_revoke_url: Option<String>,
    /// Calendar API base URL, ending in `calendar/v3/`.
    #[arg(long, env = "SCOPEGATE_GOOGLE_API_BASE", global = true)]
    pub google_api_base: Option<String>,
    /// OAuth client id of this gateway's Google Cloud project.
    #[arg(long, env = "SCOPEGATE_GOOGLE_CLIENT_ID", global = true)]
    pub google_client_id: Option<String>,
    /// File holding the OAuth client secret (or set SCOPEGATE_GOOGLE_CLIENT_SECRET).
    #[arg(long, env = "SCOPEGATE_GOOGLE_CLIENT_SECRET_FILE", global = true)]
    pub google_client_secret_file: Option<PathBuf>,
    /// Redirect URL registered with Google for the consent callback.
    #[arg(long, env = "SCOPEGATE_GOOGLE_REDIRECT_URL", global = true)]
    pub google_redirect_url: Option<String>,
    /// How often the calendar sync looks for changed diary entries, milliseconds.
    #[arg(long, env = "SCOPEGATE_GOOGLE_SYNC_INTERVAL_MS", global = true)]
    pub google_sync_interval_ms: Option<u64>,
    /// Calendar API calls in flight at once per connected user.
    #[arg(long, env = "SCOPEGATE_GOOGLE_USER_CONCURRENCY", global = true)]
    pub google_user_concurrency: Option<usize>,
    /// Calendar API calls per second per connected user.
    #[arg(long, env = "SCOPEGATE_GOOGLE_USER_RATE_PER_SECOND", global = true)]
    pub google_user_rate_per_second: Option<u32>,
}

/// The TOML file: the same settings, every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    master_key_file: Option<PathBuf>,
    log_format: Option<LogFormat>,
    schemas_dir: Option<PathBuf>,
    token_ttl_secs: Option<u64>,
    firm_pool_capacity: Option<usize>,
    trusted_proxies: Option<Vec<IpAddr>>,
    api_rate_per_second: Option<u64>,
    api_burst: Option<u32>,
    auth_failures_per_ip: Option<u32>,
    auth_failures_per_client: Option<u32>,
    auth_failure_recovery_secs: Option<u64>,
    header_read_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    session_idle_secs: Option<u64>,
    session_max_secs: Option<u64>,
    handoff_public_key: Option<String>,
    google_auth_url: Option<String>,
    google_token_url: Option<String>,
    google_revoke_url: Option<String>,
    google_api_base: Option<String>,
    google_client_id: Option<String>,
    google_client_secret_file: Option<PathBuf>,
    google_redirect_url: Option<String>,
    google_sync_interval_ms: Option<u64>,
    google_user_concurrency: Option<usize>,
    google_user_rate_per_second: Option<u32>,
}

/// The Google Calendar connector's settings (see the table above). All
/// Google URLs are configuration, so tests and the demo point at the emulator.
#[derive(Debug, Clone)]
pub struct GoogleConfig {
    pub auth_url: String,
    pub token_url: String,
    pub revoke_url: String,
    pub api_base: String,
    pub client_id: Option<String>,
    pub client_secret: Option<secrecy::SecretString>,
    pub redirect_url: String,
    pub sync_interval_ms: u64,
    pub user_concurrency: usize,
    pub user_rate_per_second: u32,
}

/// Rate limits (see the table above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub api_rate_per_second: u64,
    pub api_burst: u32,
    pub auth_failures_per_ip: u32,
    pub auth_failures_per_client: u32,
    pub auth_failure_recovery_secs: u64,
}

/// What the HTTP server allows one client connection (see the table above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub header_read_timeout: std::time::Duration,
    pub request_timeout: std::time::Duration,
    pub max_connections: usize,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub listen: SocketAddr,
    pub public_url: String,
    pub master_key_file: Option<PathBuf>,
    pub log_format: LogFormat,
    pub schemas_dir: Option<PathBuf>,
    pub token_ttl_secs: u64,
    pub firm_pool_capacity: usize,
    pub trusted_proxies: Vec<IpAddr>,
    pub limits: Limits,
    pub server: ServerLimits,
    pub session_idle_secs: u64,
    pub session_max_secs: u64,
    pub handoff_public_key: Option<ed25519_dalek::VerifyingKey>,
    pub google: GoogleConfig,
}

impl Config {
    /// Resolves flags/env (already merged by clap) over the TOML file over defaults.
    pub fn resolve(args: &ConfigArgs) -> Result<Self, String> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        let data_dir = absolute(&data_dir);
        let database_url = args
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("registry.db").display()));
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("addr"));
        let public_url = args
            .public_url
            .clone()
            .or(file.public_url)
            .unwrap_or_else(|| format!("http://{listen}"));
        let limits = Limits {
            api_rate_per_second: args
                .api_rate_per_second
                .or(file.api_rate_per_second)
                .unwrap_or(50),
            api_burst: args.api_burst.or(file.api_burst).unwrap_or(100),
            auth_failures_per_ip: args
                .auth_failures_per_ip
                .or(file.auth_failures_per_ip)
                .unwrap_or(5),
            auth_failures_per_client: args
                .auth_failures_per_client
                .or(file.auth_failures_per_client)
                .unwrap_or(50),
            auth_failure_recovery_secs: args
                .auth_failure_recovery_secs
                .or(file.auth_failure_recovery_secs)
                .unwrap_or(60),
        };
        if limits.api_rate_per_second == 0
            || limits.api_burst == 0
            || limits.auth_failures_per_ip == 0
            || limits.auth_failures_per_client == 0
            || limits.auth_failure_recovery_secs == 0
        {
            return Err("rate limits must be positive numbers".into());
        }
        let server = ServerLimits {
            header_read_timeout: std::time::Duration::from_secs(
                args.header_read_timeout_secs
                    .or(file.header_read_timeout_secs)
                    .unwrap_or(10)
                    .clamp(1, 3600),
            ),
            request_timeout: std::time::Duration::from_secs(
                args.request_timeout_secs
                    .or(file.request_timeout_secs)
                    .unwrap_or(30)
                    .clamp(1, 3600),
            ),
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(1024)
                .clamp(1, 1_000_000),
        };
        let session_idle_secs = args
            .session_idle_secs
            .or(file.session_idle_secs)
            .unwrap_or(1800)
            .clamp(1, 7 * 86_400);
        let session_max_secs = args
            .session_max_secs
            .or(file.session_max_secs)
            .unwrap_or(43_200)
            .clamp(session_idle_secs, 30 * 86_400);
        let handoff_public_key = match args.handoff_public_key.clone().or(file.handoff_public_key) {
            Some(text) => Some(crate::accounts::handoff::parse_public_key(&text)?),
            None => None,
        };
        let public_url = public_url.trim_end_matches('/').to_string();
        let google = GoogleConfig {
            auth_url: args
                .google_auth_url
                .clone()
                .or(file.google_auth_url)
                .unwrap_or_else(|| "https://accounts.google.com/o/oauth2/v2/auth".into()),
            token_url: args
                .google_token_url
                .clone()
                .or(file.google_token_url)
                .unwrap_or_else(|| "https://oauth2.googleapis.com/token".into()),
            revoke_url: args
                .google_revoke_url
                .clone()
                .or(file.google_revoke_url)
                .unwrap_or_else(|| "https://oauth2.googleapis.com/revoke".into()),
            api_base: {
                let base = args
                    .google_api_base
                    .clone()
                    .or(file.google_api_base)
                    .unwrap_or_else(|| "https://www.googleapis.com/calendar/v3/".into());
                if base.ends_with('/') {
                    base
                } else {
                    format!("{base}/")
                }
            },
            client_id: args.google_client_id.clone().or(file.google_client_id),
            client_secret: match std::env::var("SCOPEGATE_GOOGLE_CLIENT_SECRET") {
                Ok(secret) => Some(secret.trim().to_string().into()),
                Err(_) => match args
                    .google_client_secret_file
                    .clone()
                    .or(file.google_client_secret_file)
                {
                    Some(path) => Some(
                        std::fs::read_to_string(&path)
                            .map_err(|e| {
                                format!(
                                    "cannot read Google client secret file {}: {e}",
                                    path.display()
                                )
                            })?
                            .trim()
                            .to_string()
                            .into(),
                    ),
                    None => None,
                },
            },
            redirect_url: args
                .google_redirect_url
                .clone()
                .or(file.google_redirect_url)
                .unwrap_or_else(|| format!("{public_url}/oauth/google/callback")),
            sync_interval_ms: args
                .google_sync_interval_ms
                .or(file.google_sync_interval_ms)
                .unwrap_or(2000)
                .max(10),
            user_concurrency: args
                .google_user_concurrency
                .or(file.google_user_concurrency)
                .unwrap_or(4)
                .clamp(1, 64),
            user_rate_per_second: args
                .google_user_rate_per_second
                .or(file.google_user_rate_per_second)
                .unwrap_or(10)
                .max(1),
        };
        Ok(Self {
            session_idle_secs,
            session_max_secs,
            handoff_public_key,
            google,
            data_dir,
            database_url,
            listen,
            public_url,
            master_key_file: args.master_key_file.clone().or(file.master_key_file),
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            schemas_dir: args.schemas_dir.clone().or(file.schemas_dir),
            token_ttl_secs: args
                .token_ttl_secs
                .or(file.token_ttl_secs)
                .unwrap_or(900)
                .clamp(60, 86_400),
            firm_pool_capacity: args
                .firm_pool_capacity
                .or(file.firm_pool_capacity)
                .unwrap_or(256)
                .max(1),
            trusted_proxies: args
                .trusted_proxies
                .clone()
                .or(file.trusted_proxies)
                .unwrap_or_default(),
            limits,
            server,
        })
    }

    /// The master keyring, from `SCOPEGATE_MASTER_KEY` or the key file.
    pub fn keyring(&self) -> Result<Arc<Keyring>, KeyError> {
        if let Ok(text) = std::env::var("SCOPEGATE_MASTER_KEY") {
            return Keyring::parse(&text).map(Arc::new);
        }
        match &self.master_key_file {
            Some(path) => Keyring::from_file(path).map(Arc::new),
            None => Err(KeyError::Missing),
        }
    }
}

fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let first = e
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_string();
        match e.span() {
            Some(span) => {
                let line = text[..span.start].lines().count().max(1);
                format!("config file {} line {line}: {first}", path.display())
            }
            None => format!("config file {}: {first}", path.display()),
        }
    })
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beat_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9999\"\napi_burst = 7\n").unwrap();
        let args = ConfigArgs {
            config: Some(path),
            api_burst: Some(3),
            ..Default::default()
        };
        let config = Config::resolve(&args).unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.limits.api_burst, 3);
        assert_eq!(config.token_ttl_secs, 900);
        assert_eq!(config.server.header_read_timeout.as_secs(), 10);
        assert_eq!(config.server.request_timeout.as_secs(), 30);
        assert_eq!(config.server.max_connections, 1024);
    }

    #[test]
    fn google_defaults_are_googles_urls_and_the_secret_stays_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("google-secret");
        std::fs::write(&secret, "GOCSPX-very-secret\n").unwrap();
        let config = Config::resolve(&ConfigArgs {
            public_url: Some("https://gw.example/".into()),
            google_client_id: Some("id.apps.googleusercontent.com".into()),
            google_client_secret_file: Some(secret),
            google_api_base: Some("http://127.0.0.1:9/calendar/v3".into()),
            ..Default::default()
        })
        .unwrap();
        let google = &config.google;
        assert_eq!(
            google.auth_url,
            "https://accounts.google.com/o/oauth2/v2/auth"
        );
        assert_eq!(google.token_url, "https://oauth2.googleapis.com/token");
        assert_eq!(google.revoke_url, "https://oauth2.googleapis.com/revoke");
        assert_eq!(google.api_base, "http://127.0.0.1:9/calendar/v3/");
        assert_eq!(
            google.redirect_url,
            "https://gw.example/oauth/google/callback"
        );
        assert_eq!(google.user_rate_per_second, 10);
        use secrecy::ExposeSecret;
        assert_eq!(
            google.client_secret.as_ref().unwrap().expose_secret(),
            "GOCSPX-very-secret"
        );
        assert!(!format!("{config:?}").contains("very-secret"));
        let missing = Config::resolve(&ConfigArgs {
            google_client_secret_file: Some(dir.path().join("nope")),
            ..Default::default()
        })
        .unwrap_err();
        assert!(missing.contains("Google client secret file"), "{missing}");
    }

    #[test]
    fn corrupt_config_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "data_dir = \"x\"\nlisten = 12\n").unwrap();
        let err = Config::resolve(&ConfigArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let unknown = dir.path().join("u.toml");
        std::fs::write(&unknown, "colour = \"blue\"\n").unwrap();
        let err = Config::resolve(&ConfigArgs {
            config: Some(unknown),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.contains("colour"), "{err}");
    }
}
