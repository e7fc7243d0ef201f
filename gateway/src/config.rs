//! Configuration, layered: command-line flags > `SCOPEGATE_*` environment >
//! TOML file (`--config` / `SCOPEGATE_CONFIG`) > defaults.
//!
//! Each setting is declared once, as a field of [`ConfigArgs`]: clap reads it
//! from its flag or else its environment variable, serde reads the same struct
//! from the TOML file, and [`Config::resolve`] lays the first over the second
//! (the one generic merge, generated with the struct) before applying the
//! defaults and checks below.
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
//! | `--header-read-timeout-secs` | `SCOPEGATE_HEADER_READ_TIMEOUT_SECS` | `header_read_timeout_secs` | `10` |
//! | `--request-timeout-secs` | `SCOPEGATE_REQUEST_TIMEOUT_SECS` | `request_timeout_secs` | `30` |
//! | `--max-connections` | `SCOPEGATE_MAX_CONNECTIONS` | `max_connections` | `1024` |
//! | `--api-rate-per-second` | `SCOPEGATE_API_RATE_PER_SECOND` | `api_rate_per_second` | `50` |
//! | `--api-burst` | `SCOPEGATE_API_BURST` | `api_burst` | `100` |
//! | `--auth-failures-per-ip` | `SCOPEGATE_AUTH_FAILURES_PER_IP` | `auth_failures_per_ip` | `5` |
//! | `--auth-failures-per-client` | `SCOPEGATE_AUTH_FAILURES_PER_CLIENT` | `auth_failures_per_client` | `50` |
//! | `--auth-failure-recovery-secs` | `SCOPEGATE_AUTH_FAILURE_RECOVERY_SECS` | `auth_failure_recovery_secs` | `60` |
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
//! | `--google-connect-timeout-secs` | `SCOPEGATE_GOOGLE_CONNECT_TIMEOUT_SECS` | `google_connect_timeout_secs` | `5` |
//! | `--google-request-timeout-secs` | `SCOPEGATE_GOOGLE_REQUEST_TIMEOUT_SECS` | `google_request_timeout_secs` | `20` |
//! | `--google-max-retry-after-secs` | `SCOPEGATE_GOOGLE_MAX_RETRY_AFTER_SECS` | `google_max_retry_after_secs` | `60` |
//! | `--checkpoint-path` | `SCOPEGATE_CHECKPOINT_PATH` | `checkpoint_path` | `<data_dir>/audit-checkpoints.jsonl` |
//! | `--checkpoint-interval-secs` | `SCOPEGATE_CHECKPOINT_INTERVAL_SECS` | `checkpoint_interval_secs` | `300` (`0`: only on demand) |
//! | `--backup-key-file` | `SCOPEGATE_BACKUP_KEY_FILE` | `backup_key_file` | none (required by `backup`, `restore`) |
//! | - | `SCOPEGATE_BACKUP_KEY` (base64 key) | - | none |
//! | `--backup-generations` | `SCOPEGATE_BACKUP_GENERATIONS` | `backup_generations` | `7` |
//! | `--connector-setting ID.KEY=VALUE` (repeatable) | `SCOPEGATE_CONNECTOR_SETTINGS` (`ID.KEY=VALUE,...`) | `[connector.<id>]` tables of strings | none |
//!
//! Settings logins are throttled with the same failure budgets as client
//! authentication (`auth_failures_per_ip`, and `auth_failures_per_client` per
//! firm account). A client that has not sent a whole request header within
//! the header-read timeout (including an idle kept-alive connection) is
//! disconnected; a request not answered within the request timeout gets 503;
//! past the connection cap new connections wait in the listen queue (mind the
//! process's open-file limit when raising it). The hand-off key is the host application's Ed25519 public
//! key, base64 (32 bytes).
//!
//! Connector settings are merged key by key: the file's `[connector.<id>]`
//! tables are the base and each `ID.KEY=VALUE` from the flags or the
//! environment replaces that one key. As for every setting, flags, when given,
//! replace their environment variable as a whole. Values cannot contain commas
//! on the command line, and they are plain text (shown by `Debug`): no secrets.

use crate::keys::{KeyError, Keyring};
use clap::Args;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// One layer's value of a setting, and how it lies over a lower layer's.
trait Layer {
    fn over(self, lower: Self) -> Self;
}

/// A single value: the highest layer that sets it wins.
impl<T> Layer for Option<T> {
    fn over(self, lower: Self) -> Self {
        self.or(lower)
    }
}

/// Keyed items (connector settings): both layers', the higher one's last so
/// that they win key by key.
impl<T> Layer for Vec<T> {
    fn over(self, mut lower: Self) -> Self {
        lower.extend(self);
        lower
    }
}

/// Declares the settings struct and, from the same field list, the merge of
/// one layer over another, so that adding a setting is adding one field.
macro_rules! layered_settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl $name {
            /// These settings over `lower`'s, setting by setting.
            fn over(self, lower: Self) -> Self {
                Self {
                    $($field: Layer::over(self.$field, lower.$field),)*
                }
            }
        }
    };
}

layered_settings! {
    /// Every setting, each optional: clap fills it from flags and environment
    /// (shared by every subcommand), serde from the TOML file, which has the
    /// same keys (except `config`) and refuses unknown ones.
    #[derive(Debug, Clone, Default, Args, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ConfigArgs {
        /// TOML configuration file.
        #[arg(long, env = "SCOPEGATE_CONFIG", global = true)]
        #[serde(skip)]
        pub config: Option<PathBuf>,
        /// Folder for the SQLite registry and per-firm databases.
        #[arg(long, env = "SCOPEGATE_DATA_DIR", global = true)]
        pub data_dir: Option<PathBuf>,
        /// Registry database: sqlite://... or postgres://...
        #[arg(long, env = "SCOPEGATE_DATABASE_URL", global = true, hide_env_values = true)]
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
        #[arg(long, env = "SCOPEGATE_TRUSTED_PROXIES", global = true, value_delimiter = ',')]
        pub trusted_proxies: Option<Vec<IpAddr>>,
        /// Seconds a client has to send a whole request header before it is disconnected.
        #[arg(long, env = "SCOPEGATE_HEADER_READ_TIMEOUT_SECS", global = true)]
        pub header_read_timeout_secs: Option<u64>,
        /// Seconds a request (its body included) may take before it is answered 503.
        #[arg(long, env = "SCOPEGATE_REQUEST_TIMEOUT_SECS", global = true)]
        pub request_timeout_secs: Option<u64>,
        /// Client connections served at once; more wait to be accepted.
        #[arg(long, env = "SCOPEGATE_MAX_CONNECTIONS", global = true)]
        pub max_connections: Option<usize>,
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
        /// Seconds to wait for a connection to the Calendar API.
        #[arg(long, env = "SCOPEGATE_GOOGLE_CONNECT_TIMEOUT_SECS", global = true)]
        pub google_connect_timeout_secs: Option<u64>,
        /// Seconds one Calendar API call may take before it counts as unanswered (and is retried).
        #[arg(long, env = "SCOPEGATE_GOOGLE_REQUEST_TIMEOUT_SECS", global = true)]
        pub google_request_timeout_secs: Option<u64>,
        /// Longest `Retry-After` a call waits out; a longer one ends the pass and reschedules the connection.
        #[arg(long, env = "SCOPEGATE_GOOGLE_MAX_RETRY_AFTER_SECS", global = true)]
        pub google_max_retry_after_secs: Option<u64>,
        /// Append-only file that `serve` and `audit checkpoint` write signed chain-head checkpoints to.
        #[arg(long, env = "SCOPEGATE_CHECKPOINT_PATH", global = true)]
        pub checkpoint_path: Option<PathBuf>,
        /// Seconds between the checkpoints `serve` writes (0: only on demand).
        #[arg(long, env = "SCOPEGATE_CHECKPOINT_INTERVAL_SECS", global = true)]
        pub checkpoint_interval_secs: Option<u64>,
        /// File holding the backup key (base64, 32 bytes; NOT the master key).
        #[arg(long, env = "SCOPEGATE_BACKUP_KEY_FILE", global = true)]
        pub backup_key_file: Option<PathBuf>,
        /// How many backups `backup` keeps in its folder (older ones are deleted).
        #[arg(long, env = "SCOPEGATE_BACKUP_GENERATIONS", global = true)]
        pub backup_generations: Option<usize>,
        /// A connector's setting, ID.KEY=VALUE (repeatable; comma-separated in the environment).
        #[arg(
            long = "connector-setting",
            env = "SCOPEGATE_CONNECTOR_SETTINGS",
            global = true,
            value_name = "ID.KEY=VALUE",
            value_delimiter = ',',
            hide_env_values = true
        )]
        #[serde(rename = "connector", default, deserialize_with = "connector_tables")]
        pub connector_settings: Vec<ConnectorSetting>,
    }
}

/// One connector setting: `ID.KEY=VALUE` on the command line, `KEY = "VALUE"`
/// in the file's `[connector.ID]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorSetting {
    pub connector: String,
    pub key: String,
    pub value: String,
}

impl FromStr for ConnectorSetting {
    type Err = String;

    /// `ID.KEY=VALUE`: the ID runs to the first `.`, the KEY to the first `=`.
    fn from_str(item: &str) -> Result<Self, String> {
        item.split_once('=')
            .and_then(|(name, value)| {
                let (connector, key) = name.trim().split_once('.')?;
                (!connector.is_empty() && !key.is_empty()).then(|| Self {
                    connector: connector.into(),
                    key: key.into(),
                    value: value.into(),
                })
            })
            .ok_or_else(|| "expected ID.KEY=VALUE".into())
    }
}

/// The file's `[connector.<id>]` tables, as settings.
fn connector_tables<'de, D: serde::Deserializer<'de>>(
    tables: D,
) -> Result<Vec<ConnectorSetting>, D::Error> {
    let tables = BTreeMap::<String, BTreeMap<String, String>>::deserialize(tables)?;
    Ok(tables
        .into_iter()
        .flat_map(|(connector, keys)| {
            keys.into_iter().map(move |(key, value)| ConnectorSetting {
                connector: connector.clone(),
                key,
                value,
            })
        })
        .collect())
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
    /// Connect timeout of the Calendar API client.
    pub connect_timeout: std::time::Duration,
    /// How long one Calendar API request may take; then it counts as no answer (status 0).
    pub request_timeout: std::time::Duration,
    /// The longest `Retry-After` slept in a pass; longer ones reschedule the connection.
    pub max_retry_after: std::time::Duration,
}

/// What the HTTP server allows one client connection (see the table above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub header_read_timeout: std::time::Duration,
    pub request_timeout: std::time::Duration,
    pub max_connections: usize,
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
    /// Where signed chain-head checkpoints are appended.
    pub checkpoint_path: PathBuf,
    /// Seconds between `serve`'s checkpoints; 0 = only on demand.
    pub checkpoint_interval_secs: u64,
    pub backup_key_file: Option<PathBuf>,
    /// Backups kept by `backup` (at least 1).
    pub backup_generations: usize,
    /// Connector id -> key -> value.
    pub connector_settings: BTreeMap<String, BTreeMap<String, String>>,
}

impl Config {
    /// Lays flags/env (already merged by clap) over the TOML file, then
    /// applies defaults and checks.
    pub fn resolve(args: &ConfigArgs) -> Result<Self, String> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => ConfigArgs::default(),
        };
        let s = args.clone().over(file);
        let data_dir = absolute(&s.data_dir.unwrap_or_else(|| PathBuf::from("data")));
        let database_url = s
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("registry.db").display()));
        let listen = s
            .listen
            .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("addr"));
        let public_url = s.public_url.unwrap_or_else(|| format!("http://{listen}"));
        let server = ServerLimits {
            header_read_timeout: std::time::Duration::from_secs(
                s.header_read_timeout_secs.unwrap_or(10).clamp(1, 3600),
            ),
            request_timeout: std::time::Duration::from_secs(
                s.request_timeout_secs.unwrap_or(30).clamp(1, 3600),
            ),
            max_connections: s.max_connections.unwrap_or(1024).clamp(1, 1_000_000),
        };
        let limits = Limits {
            api_rate_per_second: s.api_rate_per_second.unwrap_or(50),
            api_burst: s.api_burst.unwrap_or(100),
            auth_failures_per_ip: s.auth_failures_per_ip.unwrap_or(5),
            auth_failures_per_client: s.auth_failures_per_client.unwrap_or(50),
            auth_failure_recovery_secs: s.auth_failure_recovery_secs.unwrap_or(60),
        };
        if limits.api_rate_per_second == 0
            || limits.api_burst == 0
            || limits.auth_failures_per_ip == 0
            || limits.auth_failures_per_client == 0
            || limits.auth_failure_recovery_secs == 0
        {
            return Err("rate limits must be positive numbers".into());
        }
        let session_idle_secs = s.session_idle_secs.unwrap_or(1800).clamp(1, 7 * 86_400);
        let session_max_secs = s
            .session_max_secs
            .unwrap_or(43_200)
            .clamp(session_idle_secs, 30 * 86_400);
        let handoff_public_key = match s.handoff_public_key {
            Some(text) => Some(scopegate_core::accounts::handoff::parse_public_key(&text)?),
            None => None,
        };
        let public_url = public_url.trim_end_matches('/').to_string();
        let client_secret = match std::env::var("SCOPEGATE_GOOGLE_CLIENT_SECRET") {
            Ok(secret) => Some(secret.trim().to_string().into()),
            Err(_) => match s.google_client_secret_file {
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
        };
        let api_base = s
            .google_api_base
            .unwrap_or_else(|| "https://www.googleapis.com/calendar/v3/".into());
        let google = GoogleConfig {
            auth_url: s
                .google_auth_url
                .unwrap_or_else(|| "https://accounts.google.com/o/oauth2/v2/auth".into()),
            token_url: s
                .google_token_url
                .unwrap_or_else(|| "https://oauth2.googleapis.com/token".into()),
            revoke_url: s
                .google_revoke_url
                .unwrap_or_else(|| "https://oauth2.googleapis.com/revoke".into()),
            api_base: if api_base.ends_with('/') {
                api_base
            } else {
                format!("{api_base}/")
            },
            client_id: s.google_client_id,
            client_secret,
            redirect_url: s
                .google_redirect_url
                .unwrap_or_else(|| format!("{public_url}/oauth/google/callback")),
            sync_interval_ms: s.google_sync_interval_ms.unwrap_or(2000).max(10),
            user_concurrency: s.google_user_concurrency.unwrap_or(4).clamp(1, 64),
            user_rate_per_second: s.google_user_rate_per_second.unwrap_or(10).max(1),
            connect_timeout: std::time::Duration::from_secs(
                s.google_connect_timeout_secs.unwrap_or(5).max(1),
            ),
            request_timeout: std::time::Duration::from_secs(
                s.google_request_timeout_secs.unwrap_or(20).max(1),
            ),
            max_retry_after: std::time::Duration::from_secs(
                s.google_max_retry_after_secs.unwrap_or(60),
            ),
        };
        let mut connector_settings = BTreeMap::<_, BTreeMap<_, _>>::new();
        for setting in s.connector_settings {
            connector_settings
                .entry(setting.connector)
                .or_default()
                .insert(setting.key, setting.value);
        }
        let checkpoint_path = s
            .checkpoint_path
            .map(|p| absolute(&p))
            .unwrap_or_else(|| data_dir.join("audit-checkpoints.jsonl"));
        Ok(Self {
            data_dir,
            database_url,
            listen,
            public_url,
            master_key_file: s.master_key_file,
            log_format: s.log_format.unwrap_or_default(),
            schemas_dir: s.schemas_dir,
            token_ttl_secs: s.token_ttl_secs.unwrap_or(900).clamp(60, 86_400),
            firm_pool_capacity: s.firm_pool_capacity.unwrap_or(256).max(1),
            trusted_proxies: s.trusted_proxies.unwrap_or_default(),
            limits,
            server,
            session_idle_secs,
            session_max_secs,
            handoff_public_key,
            google,
            checkpoint_path,
            checkpoint_interval_secs: s.checkpoint_interval_secs.unwrap_or(300),
            backup_key_file: s.backup_key_file,
            backup_generations: s.backup_generations.unwrap_or(7).max(1),
            connector_settings,
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

fn read_file(path: &Path) -> Result<ConfigArgs, String> {
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

    /// The command line as the binary parses it, with these environment
    /// variables set for the parse only (no other test parses flags).
    fn parse(argv: &[&str], env: &[(&str, &str)]) -> Result<ConfigArgs, String> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: ConfigArgs,
        }
        static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        for (name, value) in env {
            std::env::set_var(name, value);
        }
        let parsed = <Cli as clap::Parser>::try_parse_from(
            std::iter::once("scopegate").chain(argv.iter().copied()),
        );
        for (name, _) in env {
            std::env::remove_var(name);
        }
        parsed.map(|cli| cli.config).map_err(|e| e.to_string())
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\napi_burst = 7\ntoken_ttl_secs = 120\nlog_format = \"json\"\n",
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let env = [
            ("SCOPEGATE_CONFIG", path),
            ("SCOPEGATE_API_BURST", "5"),
            ("SCOPEGATE_TOKEN_TTL_SECS", "300"),
        ];
        let args = parse(&["--api-burst", "3"], &env).unwrap();
        let config = Config::resolve(&args).unwrap();
        assert_eq!(config.limits.api_burst, 3, "flag over env and file");
        assert_eq!(config.token_ttl_secs, 300, "env over file");
        assert_eq!(config.listen.port(), 9999, "file over default");
        assert_eq!(config.log_format, LogFormat::Json, "file over default");
        assert_eq!(config.limits.api_rate_per_second, 50, "default");
        assert_eq!(config.firm_pool_capacity, 256, "default");
        assert_eq!(config.server.header_read_timeout.as_secs(), 10);
        assert_eq!(config.server.request_timeout.as_secs(), 30);
        assert_eq!(config.server.max_connections, 1024);
        let config = Config::resolve(&parse(&[], &env).unwrap()).unwrap();
        assert_eq!(config.limits.api_burst, 5, "env over file");
    }

    #[test]
    fn connector_settings_merge_key_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[connector.accounting]\nbase_url = \"https://file.example\"\nregion = \"eu\"\n\
             tier = \"file\"\n\n[connector.crm]\nmode = \"file\"\n",
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let env = [
            ("SCOPEGATE_CONFIG", path),
            (
                "SCOPEGATE_CONNECTOR_SETTINGS",
                "accounting.region=uk, accounting.tier=env,billing.url=https://b.example/?a=1",
            ),
        ];
        let settings = |argv: &[&str]| {
            Config::resolve(&parse(argv, &env).unwrap())
                .unwrap()
                .connector_settings
        };
        let from_env = settings(&[]);
        let expected = |pairs: &[(&str, &str, &str)]| {
            let mut map = BTreeMap::<String, BTreeMap<String, String>>::new();
            for (connector, key, value) in pairs {
                map.entry(connector.to_string())
                    .or_default()
                    .insert(key.to_string(), value.to_string());
            }
            map
        };
        assert_eq!(
            from_env,
            expected(&[
                ("accounting", "base_url", "https://file.example"),
                ("accounting", "region", "uk"),
                ("accounting", "tier", "env"),
                ("billing", "url", "https://b.example/?a=1"),
                ("crm", "mode", "file"),
            ])
        );
        // Flags replace the variable as a whole, and lie key by key over the file.
        let from_flags = settings(&[
            "--connector-setting",
            "accounting.tier=flag",
            "--connector-setting",
            "crm.mode=a.b=c",
        ]);
        assert_eq!(
            from_flags,
            expected(&[
                ("accounting", "base_url", "https://file.example"),
                ("accounting", "region", "eu"),
                ("accounting", "tier", "flag"),
                ("crm", "mode", "a.b=c"),
            ])
        );
        // Nothing anywhere: an empty map.
        assert!(Config::resolve(&ConfigArgs::default())
            .unwrap()
            .connector_settings
            .is_empty());
    }

    #[test]
    fn a_malformed_connector_setting_is_one_line_naming_it() {
        for item in [
            "accounting",
            "accounting=x",
            ".key=x",
            "accounting.=x",
            "=x",
        ] {
            let err = parse(&["--connector-setting", item], &[]).unwrap_err();
            let first = err.lines().next().unwrap();
            assert!(first.contains(&format!("'{item}'")), "{err}");
            assert!(first.contains("ID.KEY=VALUE"), "{err}");
        }
        let err = parse(
            &[],
            &[("SCOPEGATE_CONNECTOR_SETTINGS", "crm.mode=x,broken")],
        )
        .unwrap_err();
        assert!(err.lines().next().unwrap().contains("'broken'"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[connector.crm]\nmode = \"x\"\nretries = 3\n").unwrap();
        let err = Config::resolve(&ConfigArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.contains("line 3") && err.contains("string"), "{err}");
    }
}
