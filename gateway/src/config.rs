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
//! | `--log-dir` | `SCOPEGATE_LOG_DIR` | `log_dir` | none (`serve` logs to stderr) |
//! | `--log-retention-days` | `SCOPEGATE_LOG_RETENTION_DAYS` | `log_retention_days` | `7` (1 to 3650) |
//! | `--schemas-dir` | `SCOPEGATE_SCHEMAS_DIR` | `schemas_dir` | built in |
//! | `--token-ttl-secs` | `SCOPEGATE_TOKEN_TTL_SECS` | `token_ttl_secs` | `900` |
//! | `--firm-pool-capacity` | `SCOPEGATE_FIRM_POOL_CAPACITY` | `firm_pool_capacity` | `256` (at most 100000) |
//! | `--trusted-proxies` | `SCOPEGATE_TRUSTED_PROXIES` | `trusted_proxies` | none |
//! | `--header-read-timeout-secs` | `SCOPEGATE_HEADER_READ_TIMEOUT_SECS` | `header_read_timeout_secs` | `10` |
//! | `--request-timeout-secs` | `SCOPEGATE_REQUEST_TIMEOUT_SECS` | `request_timeout_secs` | `30` |
//! | `--max-connections` | `SCOPEGATE_MAX_CONNECTIONS` | `max_connections` | `1024` |
//! | `--api-rate-per-second` | `SCOPEGATE_API_RATE_PER_SECOND` | `api_rate_per_second` | `50` (1 to 10^9) |
//! | `--api-burst` | `SCOPEGATE_API_BURST` | `api_burst` | `100` (1 to 10^9) |
//! | `--auth-failures-per-ip` | `SCOPEGATE_AUTH_FAILURES_PER_IP` | `auth_failures_per_ip` | `5` (1 to 100000) |
//! | `--auth-failures-per-client` | `SCOPEGATE_AUTH_FAILURES_PER_CLIENT` | `auth_failures_per_client` | `50` (1 to 100000) |
//! | `--auth-failure-recovery-secs` | `SCOPEGATE_AUTH_FAILURE_RECOVERY_SECS` | `auth_failure_recovery_secs` | `60` (1 to 86400) |
//! | `--session-idle-secs` | `SCOPEGATE_SESSION_IDLE_SECS` | `session_idle_secs` | `1800` |
//! | `--session-max-secs` | `SCOPEGATE_SESSION_MAX_SECS` | `session_max_secs` | `43200` |
//! | `--handoff-public-key` | `SCOPEGATE_HANDOFF_PUBLIC_KEY` | `handoff_public_key` | none (hand-off off) |
//! | `--checkpoint-path` | `SCOPEGATE_CHECKPOINT_PATH` | `checkpoint_path` | `<data_dir>/audit-checkpoints.jsonl` |
//! | `--checkpoint-interval-secs` | `SCOPEGATE_CHECKPOINT_INTERVAL_SECS` | `checkpoint_interval_secs` | `300` (`0`: only on demand) |
//! | `--backup-key-file` | `SCOPEGATE_BACKUP_KEY_FILE` | `backup_key_file` | none (required by `backup`, `restore`) |
//! | - | `SCOPEGATE_BACKUP_KEY` (base64 key) | - | none |
//! | `--backup-generations` | `SCOPEGATE_BACKUP_GENERATIONS` | `backup_generations` | `7` |
//! | `--retention-after-termination-days` | `SCOPEGATE_RETENTION_AFTER_TERMINATION_DAYS` | `retention_after_termination_days` | `183` (6 months; 1 to 36500) |
//! | `--audit-retention-days` | `SCOPEGATE_AUDIT_RETENTION_DAYS` | `audit_retention_days` | the retention above (never less) |
//! | `--unused-grant-days` | `SCOPEGATE_UNUSED_GRANT_DAYS` | `unused_grant_days` | `90` (1 to 36500) |
//! | `--auto-disable-unused` | `SCOPEGATE_AUTO_DISABLE_UNUSED` | `auto_disable_unused` | `false` (unused grants are only flagged) |
//! | `--redis-url` | `SCOPEGATE_REDIS_URL` | `redis_url` | none (limits per process only) |
//! | `--alert-webhook-url` | `SCOPEGATE_ALERT_WEBHOOK_URL` | `alert_webhook_url` | none (alerts stored, logged and counted only) |
//! | `--alert-webhook-key-file` | `SCOPEGATE_ALERT_WEBHOOK_KEY_FILE` | `alert_webhook_key_file` | none (required with the URL) |
//! | - | `SCOPEGATE_ALERT_WEBHOOK_KEY` (HMAC key, at least 16 characters) | - | none |
//! | `--metrics-listen` | `SCOPEGATE_METRICS_LISTEN` | `metrics_listen` | `127.0.0.1:9464` (`off`: no metrics) |
//! | `--connector-setting ID.KEY=VALUE` (repeatable) | `SCOPEGATE_CONNECTOR_SETTINGS` (`ID.KEY=VALUE,...`) | `[connector.<id>]` tables of strings | none |
//!
//! Each connector may declare settings of its own (`Connector::settings`):
//! each is `[connector.<id>] KEY` in the file and `--connector-setting
//! <id>.KEY=VALUE`, and, where the connector names them, also has a flag and
//! an environment variable of its own (`scopegate --help` lists them, and the
//! README each connector's). Those marked secret are read from
//! their environment variable only and never shown.
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
//! With `redis_url`, authentication-failure budgets and API rate limits are
//! shared by every instance using that Redis (see `http::shared_limits`);
//! the per-process limits stay in front. Metrics are served in Prometheus
//! text format at `/metrics` on `metrics_listen`, never on `listen`.
//!
//! Connector settings are merged key by key: the file's `[connector.<id>]`
//! tables are the base and each `ID.KEY=VALUE` from the flags or the
//! environment replaces that one key. As for every setting, flags, when given,
//! replace their environment variable as a whole. Values cannot contain commas
//! on the command line, and they are plain text (shown by `Debug`): no secrets.

use crate::keys::{KeyError, Keyring};
use clap::Args;
use scopegate_contract::Connector;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// The most firm databases kept open (the pool's table is allocated whole at start).
pub const MAX_FIRM_POOL_CAPACITY: usize = 100_000;

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
        /// Days a terminated firm's registry data is kept before `serve` purges it.
        #[arg(long, env = "SCOPEGATE_RETENTION_AFTER_TERMINATION_DAYS", global = true)]
        pub retention_after_termination_days: Option<u64>,
        /// Folder for `serve`'s service logs, one file a day (default: stderr).
        #[arg(long, env = "SCOPEGATE_LOG_DIR", global = true)]
        pub log_dir: Option<PathBuf>,
        /// Days of service-log files kept in --log-dir (older ones are deleted).
        #[arg(long, env = "SCOPEGATE_LOG_RETENTION_DAYS", global = true)]
        pub log_retention_days: Option<u64>,
        /// Days a terminated firm's outbound log is kept (at least the retention above).
        #[arg(long, env = "SCOPEGATE_AUDIT_RETENTION_DAYS", global = true)]
        pub audit_retention_days: Option<u64>,
        /// Days without an outbound record after which an enabled grant counts as unused.
        #[arg(long, env = "SCOPEGATE_UNUSED_GRANT_DAYS", global = true)]
        pub unused_grant_days: Option<u64>,
        /// Switch unused grants off (ledger entry by `scopegate`, naming the reason); else only flag them.
        #[arg(long, env = "SCOPEGATE_AUTO_DISABLE_UNUSED", global = true, num_args = 0..=1, default_missing_value = "true")]
        pub auto_disable_unused: Option<bool>,
        /// Redis shared by every instance for failure budgets and API rate limits (redis://host:port/db).
        #[arg(long, env = "SCOPEGATE_REDIS_URL", global = true, hide_env_values = true)]
        pub redis_url: Option<String>,
        /// Where security alerts (tripwires) are POSTed as JSON, signed with HMAC-SHA256 (X-Scopegate-Signature).
        #[arg(long, env = "SCOPEGATE_ALERT_WEBHOOK_URL", global = true, hide_env_values = true)]
        pub alert_webhook_url: Option<String>,
        /// File holding the alert webhook's HMAC key (or SCOPEGATE_ALERT_WEBHOOK_KEY).
        #[arg(long, env = "SCOPEGATE_ALERT_WEBHOOK_KEY_FILE", global = true)]
        pub alert_webhook_key_file: Option<PathBuf>,
        /// Address for the Prometheus `/metrics` endpoint (separate from --listen), or `off`.
        #[arg(long, env = "SCOPEGATE_METRICS_LISTEN", global = true)]
        pub metrics_listen: Option<MetricsListen>,
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

/// Where `/metrics` is served: an address of its own, or nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsListen {
    Off,
    On(SocketAddr),
}

impl MetricsListen {
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            Self::Off => None,
            Self::On(addr) => Some(addr),
        }
    }
}

impl FromStr for MetricsListen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "off" => Ok(Self::Off),
            addr => addr
                .parse()
                .map(Self::On)
                .map_err(|_| "expected an address such as 127.0.0.1:9464, or off".into()),
        }
    }
}

impl<'de> Deserialize<'de> for MetricsListen {
    fn deserialize<D: serde::Deserializer<'de>>(text: D) -> Result<Self, D::Error> {
        String::deserialize(text)?
            .parse()
            .map_err(serde::de::Error::custom)
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

/// Where `/metrics` is served unless configured: loopback only, the port
/// commonly used for Prometheus exporters.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);

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
    /// Where signed chain-head checkpoints are appended.
    pub checkpoint_path: PathBuf,
    /// Seconds between `serve`'s checkpoints; 0 = only on demand.
    pub checkpoint_interval_secs: u64,
    pub backup_key_file: Option<PathBuf>,
    /// Backups kept by `backup` (at least 1).
    pub backup_generations: usize,
    /// Where `serve` writes its daily service-log files (None: stderr).
    pub log_dir: Option<PathBuf>,
    /// Days of service-log files kept.
    pub log_retention_days: u64,
    /// Days after termination before a firm's registry data is purged.
    pub retention_after_termination_days: u64,
    /// Days after termination before its outbound log is purged (>= the above).
    pub audit_retention_days: u64,
    /// Days without an outbound record after which an enabled grant is unused.
    pub unused_grant_days: u64,
    /// Whether `serve` switches unused grants off (else it only flags them).
    pub auto_disable_unused: bool,
    /// Connector id -> key -> value.
    pub connector_settings: BTreeMap<String, BTreeMap<String, String>>,
    /// Connector id -> key -> secret (from the environment only, see
    /// [`connector_secrets`]; never shown).
    pub connector_secrets: BTreeMap<String, BTreeMap<String, secrecy::SecretString>>,
    /// Redis for limits shared across instances; none: per process only
    /// (secret: the URL may carry a password).
    pub redis_url: Option<secrecy::SecretString>,
    /// Where `/metrics` is served; none: nowhere (no recorder is installed).
    pub metrics_listen: Option<SocketAddr>,
    /// Where security alerts are POSTed, with the key that signs them; none: no webhook.
    pub alert_webhook: Option<AlertWebhook>,
}

/// The alert webhook: its URL (secret: it may carry a token) and HMAC key.
#[derive(Debug, Clone)]
pub struct AlertWebhook {
    pub url: secrecy::SecretString,
    pub key: secrecy::SecretString,
}

/// The alert webhook's key: the file's content (trimmed) or `SCOPEGATE_ALERT_WEBHOOK_KEY`.
fn alert_webhook(
    url: Option<String>,
    key_file: Option<PathBuf>,
) -> Result<Option<AlertWebhook>, String> {
    let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
        return Ok(None);
    };
    match reqwest::Url::parse(url.trim()) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
        _ => return Err("alert_webhook_url must be an http:// or https:// URL".into()),
    }
    let key = match key_file {
        Some(path) => std::fs::read_to_string(&path)
            .map_err(|e| format!("alert_webhook_key_file: cannot read {}: {e}", path.display()))?,
        None => std::env::var("SCOPEGATE_ALERT_WEBHOOK_KEY").map_err(|_| {
            "alert_webhook_url needs its HMAC key: alert_webhook_key_file or SCOPEGATE_ALERT_WEBHOOK_KEY".to_string()
        })?,
    };
    let key = key.trim().to_string();
    if key.len() < 16 {
        return Err("the alert webhook's HMAC key must be at least 16 characters".into());
    }
    Ok(Some(AlertWebhook {
        url: secrecy::SecretString::from(url.trim().to_string()),
        key: secrecy::SecretString::from(key),
    }))
}

impl Config {
    /// Lays flags/env (already merged by clap) over the TOML file, then
    /// applies defaults and checks.
    pub fn resolve(args: &ConfigArgs) -> Result<Self, String> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => ConfigArgs::default(),
        };
        Self::from_layers(args.clone(), file)
    }

    /// Lays flags/env over a parsed file's settings, then applies defaults and checks.
    pub fn from_layers(args: ConfigArgs, file: ConfigArgs) -> Result<Self, String> {
        let s = args.over(file);
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
        // Bounded so that a limiter's whole budget, in nanoseconds, fits in a u64.
        let limits = Limits {
            api_rate_per_second: number(
                "api_rate_per_second",
                s.api_rate_per_second,
                50,
                1..=1_000_000_000,
            )?,
            api_burst: number("api_burst", s.api_burst, 100, 1..=1_000_000_000)?,
            auth_failures_per_ip: number(
                "auth_failures_per_ip",
                s.auth_failures_per_ip,
                5,
                1..=100_000,
            )?,
            auth_failures_per_client: number(
                "auth_failures_per_client",
                s.auth_failures_per_client,
                50,
                1..=100_000,
            )?,
            auth_failure_recovery_secs: number(
                "auth_failure_recovery_secs",
                s.auth_failure_recovery_secs,
                60,
                1..=86_400,
            )?,
        };
        let session_idle_secs = s.session_idle_secs.unwrap_or(1800).clamp(1, 7 * 86_400);
        let session_max_secs = s
            .session_max_secs
            .unwrap_or(43_200)
            .clamp(session_idle_secs, 30 * 86_400);
        let handoff_public_key = match s.handoff_public_key {
            Some(text) => Some(
                scopegate_core::accounts::handoff::parse_public_key(&text)
                    .map_err(|e| format!("handoff_public_key: {e}"))?,
            ),
            None => None,
        };
        let public_url = public_url.trim_end_matches('/').to_string();
        let mut connector_settings = BTreeMap::<_, BTreeMap<_, _>>::new();
        for setting in s.connector_settings {
            connector_settings
                .entry(setting.connector)
                .or_default()
                .insert(setting.key, setting.value);
        }
        let retention_days = number(
            "retention_after_termination_days",
            s.retention_after_termination_days,
            183,
            1..=36_500,
        )?;
        let audit_days = number(
            "audit_retention_days",
            s.audit_retention_days,
            retention_days,
            retention_days..=36_500,
        )?;
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
            firm_pool_capacity: s
                .firm_pool_capacity
                .unwrap_or(256)
                .clamp(1, MAX_FIRM_POOL_CAPACITY),
            trusted_proxies: s.trusted_proxies.unwrap_or_default(),
            limits,
            server,
            session_idle_secs,
            session_max_secs,
            handoff_public_key,
            checkpoint_path,
            checkpoint_interval_secs: s.checkpoint_interval_secs.unwrap_or(300),
            backup_key_file: s.backup_key_file,
            backup_generations: s.backup_generations.unwrap_or(7).max(1),
            retention_after_termination_days: retention_days,
            log_dir: s.log_dir.map(|p| absolute(&p)),
            log_retention_days: number("log_retention_days", s.log_retention_days, 7, 1..=3650)?,
            audit_retention_days: audit_days,
            unused_grant_days: number("unused_grant_days", s.unused_grant_days, 90, 1..=36_500)?,
            auto_disable_unused: s.auto_disable_unused.unwrap_or(false),
            connector_settings,
            connector_secrets: BTreeMap::new(),
            redis_url: s
                .redis_url
                .filter(|url| !url.trim().is_empty())
                .map(secrecy::SecretString::from),
            metrics_listen: s
                .metrics_listen
                .unwrap_or(MetricsListen::On(DEFAULT_METRICS_LISTEN))
                .addr(),
            alert_webhook: alert_webhook(s.alert_webhook_url, s.alert_webhook_key_file)?,
        })
    }

    /// The master keyring, from `SCOPEGATE_MASTER_KEY` or the key file.
    pub fn keyring(&self) -> Result<Arc<Keyring>, KeyError> {
        Keyring::parse(&self.master_key_text()?).map(Arc::new)
    }

    /// The master keys' text: `SCOPEGATE_MASTER_KEY`, or the key file's content.
    pub fn master_key_text(&self) -> Result<String, KeyError> {
        if let Ok(text) = std::env::var("SCOPEGATE_MASTER_KEY") {
            return Ok(text);
        }
        match &self.master_key_file {
            Some(path) => crate::keys::read_key_file(path),
            None => Err(KeyError::Missing),
        }
    }
}

/// The clap id of a connector's own flag.
fn connector_arg_id(connector: &str, key: &str) -> String {
    format!("connector:{connector}:{key}")
}

/// Adds the connectors' own flags (with their environment variables) to the
/// command line, as global options.
pub fn with_connector_flags(
    mut command: clap::Command,
    connectors: &[Arc<dyn Connector>],
) -> clap::Command {
    for connector in connectors {
        for spec in connector.settings() {
            let Some(flag) = spec.flag.filter(|_| !spec.secret) else {
                continue;
            };
            let mut arg = clap::Arg::new(connector_arg_id(connector.id(), spec.key))
                .long(flag)
                .value_name("VALUE")
                .help(spec.help)
                .global(true);
            if let Some(env) = spec.env {
                arg = arg.env(env);
            }
            command = command.arg(arg);
        }
    }
    command
}

/// The values of the connectors' own flags (or their environment
/// variables), as connector settings of the flags layer.
pub fn connector_flag_values(
    matches: &clap::ArgMatches,
    connectors: &[Arc<dyn Connector>],
) -> Vec<ConnectorSetting> {
    let mut found = Vec::new();
    for connector in connectors {
        for spec in connector.settings() {
            let id = connector_arg_id(connector.id(), spec.key);
            if let Ok(Some(value)) = matches.try_get_one::<String>(&id) {
                found.push(ConnectorSetting {
                    connector: connector.id().to_string(),
                    key: spec.key.to_string(),
                    value: value.clone(),
                });
            }
        }
    }
    found
}

/// The connectors' secret settings, from their environment variables.
pub fn connector_secrets(
    connectors: &[Arc<dyn Connector>],
) -> BTreeMap<String, BTreeMap<String, secrecy::SecretString>> {
    let mut secrets = BTreeMap::<String, BTreeMap<_, _>>::new();
    for connector in connectors {
        for spec in connector.settings().iter().filter(|s| s.secret) {
            if let Some(value) = spec.env.and_then(|env| std::env::var(env).ok()) {
                secrets
                    .entry(connector.id().to_string())
                    .or_default()
                    .insert(spec.key.to_string(), value.into());
            }
        }
    }
    secrets
}

fn read_file(path: &Path) -> Result<ConfigArgs, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    ConfigArgs::from_toml(path, &text)
}

impl ConfigArgs {
    /// Parses the text of the TOML file at `path`. An error is one line
    /// naming the file, the line and, when it is about a setting, its key.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, String> {
        serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
            let key = e.path().to_string();
            let e = e.into_inner();
            let first = e.message().lines().next().unwrap_or("invalid TOML");
            // An unknown key's message goes on to list every key.
            let first = first.split(", expected one of").next().unwrap_or(first);
            let place = match e.span() {
                Some(span) => {
                    // The line the error starts on (found by a property test:
                    // counting `lines()` before it was one short at a line start).
                    let before = &text.as_bytes()[..span.start.min(text.len())];
                    let line = 1 + before.iter().filter(|b| **b == b'\n').count();
                    format!("config file {} line {line}", path.display())
                }
                None => format!("config file {}", path.display()),
            };
            match key.as_str() {
                "." => format!("{place}: {first}"),
                key => format!("{place}, key {key}: {first}"),
            }
        })
    }
}

/// A number setting or its default, refused outside `range` naming its key.
fn number<T: PartialOrd + Copy + std::fmt::Display>(
    key: &str,
    value: Option<T>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, String> {
    let value = value.unwrap_or(default);
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{key} must be from {} to {}, not {value}",
            range.start(),
            range.end()
        ))
    }
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

    /// A connector with settings of its own, for the tests below.
    struct Ledgerly;

    impl Connector for Ledgerly {
        fn id(&self) -> &'static str {
            "ledgerly"
        }
        fn contract(&self) -> scopegate_contract::BuiltInContract {
            scopegate_contract::BuiltInContract {
                manifest: "{}",
                files: &[],
            }
        }
        fn settings(&self) -> &'static [scopegate_contract::SettingSpec] {
            const fn spec(
                key: &'static str,
                flag: &'static str,
                env: &'static str,
                secret: bool,
            ) -> scopegate_contract::SettingSpec {
                scopegate_contract::SettingSpec {
                    key,
                    flag: Some(flag),
                    env: Some(env),
                    help: "test",
                    secret,
                }
            }
            const SPECS: &[scopegate_contract::SettingSpec] = &[
                spec("url", "ledgerly-url", "SCOPEGATE_TEST_LEDGERLY_URL", false),
                spec(
                    "region",
                    "ledgerly-region",
                    "SCOPEGATE_TEST_LEDGERLY_REGION",
                    false,
                ),
                spec(
                    "token",
                    "ledgerly-token",
                    "SCOPEGATE_TEST_LEDGERLY_TOKEN",
                    true,
                ),
            ];
            SPECS
        }
    }

    #[test]
    fn a_connectors_own_flags_and_environment_become_its_settings() {
        let connectors: Vec<Arc<dyn Connector>> = vec![Arc::new(Ledgerly)];
        static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        std::env::set_var("SCOPEGATE_TEST_LEDGERLY_REGION", "from-the-environment");
        std::env::set_var("SCOPEGATE_TEST_LEDGERLY_TOKEN", "very-secret");
        let command = with_connector_flags(clap::Command::new("scopegate"), &connectors);
        let secret_flag =
            command
                .clone()
                .try_get_matches_from(["scopegate", "--ledgerly-token", "x"]);
        let matches = command
            .try_get_matches_from(["scopegate", "--ledgerly-url", "from-the-flag"])
            .unwrap();
        let secrets = connector_secrets(&connectors);
        std::env::remove_var("SCOPEGATE_TEST_LEDGERLY_REGION");
        std::env::remove_var("SCOPEGATE_TEST_LEDGERLY_TOKEN");
        assert!(secret_flag.is_err(), "a secret has no flag");
        let mut config = Config::resolve(&ConfigArgs {
            connector_settings: connector_flag_values(&matches, &connectors),
            ..Default::default()
        })
        .unwrap();
        config.connector_secrets = secrets;
        let settings = &config.connector_settings["ledgerly"];
        assert_eq!(settings["url"], "from-the-flag");
        assert_eq!(settings["region"], "from-the-environment");
        assert_eq!(settings.len(), 2, "the secret is not a plain setting");
        use secrecy::ExposeSecret;
        assert_eq!(
            config.connector_secrets["ledgerly"]["token"].expose_secret(),
            "very-secret"
        );
        assert!(!format!("{config:?}").contains("very-secret"));
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

    #[test]
    fn an_error_at_the_start_of_a_line_names_that_line_and_the_key() {
        let err = ConfigArgs::from_toml(
            Path::new("c.toml"),
            "data_dir = \"x\"\n\ncolour = \"blue\"\n",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "config file c.toml line 3, key colour: unknown field `colour`"
        );
        let err = ConfigArgs::from_toml(Path::new("c.toml"), "[connector.crm]\nretries = 3\n")
            .unwrap_err();
        assert!(
            err.starts_with("config file c.toml line 2, key connector.crm.retries: "),
            "{err}"
        );
    }

    #[test]
    fn limits_a_rate_limiter_cannot_hold_are_refused_naming_the_setting() {
        // Found by a property test: these passed and then panicked `serve`
        // while it built its rate limiters (governor's nanosecond budget).
        let refused =
            |args: ConfigArgs| Config::from_layers(args, ConfigArgs::default()).unwrap_err();
        let err = refused(ConfigArgs {
            auth_failure_recovery_secs: Some(20_000_000_000),
            ..Default::default()
        });
        assert_eq!(
            err,
            "auth_failure_recovery_secs must be from 1 to 86400, not 20000000000"
        );
        let err = refused(ConfigArgs {
            auth_failures_per_client: Some(u32::MAX),
            ..Default::default()
        });
        assert!(err.starts_with("auth_failures_per_client must be"), "{err}");
        let err = refused(ConfigArgs {
            api_burst: Some(0),
            ..Default::default()
        });
        assert!(err.starts_with("api_burst must be"), "{err}");
        let config = Config::from_layers(
            ConfigArgs {
                firm_pool_capacity: Some(usize::MAX),
                auth_failure_recovery_secs: Some(86_400),
                auth_failures_per_ip: Some(100_000),
                ..Default::default()
            },
            ConfigArgs::default(),
        )
        .unwrap();
        crate::http::throttle::AuthThrottle::new("oauth_token", &config.limits, None);
        assert_eq!(config.firm_pool_capacity, MAX_FIRM_POOL_CAPACITY);
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
            "[connector.ledgerly]\nbase_url = \"https://file.example\"\nregion = \"eu\"\n\
             tier = \"file\"\n\n[connector.crm]\nmode = \"file\"\n",
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let env = [
            ("SCOPEGATE_CONFIG", path),
            (
                "SCOPEGATE_CONNECTOR_SETTINGS",
                "ledgerly.region=uk, ledgerly.tier=env,billing.url=https://b.example/?a=1",
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
                ("ledgerly", "base_url", "https://file.example"),
                ("ledgerly", "region", "uk"),
                ("ledgerly", "tier", "env"),
                ("billing", "url", "https://b.example/?a=1"),
                ("crm", "mode", "file"),
            ])
        );
        // Flags replace the variable as a whole, and lie key by key over the file.
        let from_flags = settings(&[
            "--connector-setting",
            "ledgerly.tier=flag",
            "--connector-setting",
            "crm.mode=a.b=c",
        ]);
        assert_eq!(
            from_flags,
            expected(&[
                ("ledgerly", "base_url", "https://file.example"),
                ("ledgerly", "region", "eu"),
                ("ledgerly", "tier", "flag"),
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
        for item in ["ledgerly", "ledgerly=x", ".key=x", "ledgerly.=x", "=x"] {
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

    #[test]
    fn the_alert_webhook_needs_an_http_url_and_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("alert.key");
        std::fs::write(&key_file, "0123456789abcdef0123\n").unwrap();
        let with = |url: &str, key: Option<&Path>| {
            Config::resolve(&ConfigArgs {
                alert_webhook_url: Some(url.to_string()),
                alert_webhook_key_file: key.map(Path::to_path_buf),
                ..Default::default()
            })
        };
        let config = with("https://alerts.example/hook", Some(&key_file)).unwrap();
        let webhook = config.alert_webhook.expect("a webhook");
        use secrecy::ExposeSecret;
        assert_eq!(webhook.key.expose_secret(), "0123456789abcdef0123");
        assert!(!format!("{webhook:?}").contains("alerts.example"));
        let refused = with("ftp://alerts.example/", Some(&key_file)).unwrap_err();
        assert!(refused.contains("alert_webhook_url"), "{refused}");
        let missing = with(
            "https://alerts.example/hook",
            Some(&dir.path().join("none")),
        )
        .unwrap_err();
        assert!(missing.starts_with("alert_webhook_key_file"), "{missing}");
        std::fs::write(&key_file, "short").unwrap();
        let short = with("https://alerts.example/hook", Some(&key_file)).unwrap_err();
        assert!(short.contains("at least 16"), "{short}");
        assert!(Config::resolve(&ConfigArgs::default())
            .unwrap()
            .alert_webhook
            .is_none());
    }

    #[test]
    fn metrics_listen_defaults_to_loopback_and_takes_off() {
        let config = Config::resolve(&ConfigArgs::default()).unwrap();
        assert_eq!(config.metrics_listen, Some(DEFAULT_METRICS_LISTEN));
        assert!(config.redis_url.is_none());
        let off = Config::resolve(&parse(&["--metrics-listen", "off"], &[]).unwrap()).unwrap();
        assert_eq!(off.metrics_listen, None);
        let on = parse(&[], &[("SCOPEGATE_METRICS_LISTEN", "127.0.0.1:9100")]).unwrap();
        assert_eq!(
            Config::resolve(&on).unwrap().metrics_listen,
            Some("127.0.0.1:9100".parse().unwrap())
        );
        let err = parse(&["--metrics-listen", "everywhere"], &[]).unwrap_err();
        assert!(err.lines().next().unwrap().contains("or off"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "metrics_listen = \"off\"\nredis_url = \"redis://:hunter2@127.0.0.1:6379/\"\n",
        )
        .unwrap();
        let config = Config::resolve(&ConfigArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(config.metrics_listen, None);
        assert!(config.redis_url.is_some());
        assert!(
            !format!("{config:?}").contains("hunter2"),
            "the Redis password stays hidden"
        );
    }

    mod properties {
        use super::super::*;
        use crate::http::throttle::{ApiLimiters, AuthThrottle};
        use proptest::prelude::*;

        /// Every TOML key: the settings' fields as clap lists them, but
        /// `config`, and `connector` for the connector tables.
        fn keys() -> Vec<String> {
            ConfigArgs::augment_args(clap::Command::new("scopegate"))
                .get_arguments()
                .map(|a| a.get_id().as_str().to_string())
                .filter(|k| k != "config")
                .map(|k| match k.as_str() {
                    "connector_settings" => "connector".to_string(),
                    _ => k,
                })
                .collect()
        }

        fn parse(text: &str) -> Result<ConfigArgs, String> {
            ConfigArgs::from_toml(Path::new("c.toml"), text)
        }

        /// Well-typed top-level settings, each a line of its own.
        const VALID: [(&str, &str); 7] = [
            ("api_burst", "7"),
            ("listen", "\"127.0.0.1:9\""),
            ("log_format", "\"json\""),
            ("data_dir", "\"/srv/scopegate\""),
            ("token_ttl_secs", "120"),
            ("trusted_proxies", "[\"10.0.0.1\", \"::1\"]"),
            ("public_url", "\"https://gw.example\""),
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_text_parses_or_is_refused_with_the_file_and_a_line_in_it(text in "\\PC{0,200}|([a-z_]{1,30} = [\\PC]{0,30}\n){0,5}") {
                if let Err(e) = parse(&text) {
                    prop_assert!(e.starts_with("config file c.toml"), "{}", e);
                    prop_assert_eq!(e.lines().count(), 1, "{}", e);
                    if let Some(rest) = e.strip_prefix("config file c.toml line ") {
                        let line: usize = rest.split([':', ',']).next().unwrap().parse().unwrap();
                        prop_assert!((1..=text.split('\n').count()).contains(&line), "{}", e);
                    }
                }
            }

            #[test]
            fn settings_written_to_a_file_are_read_back(
                api_burst in proptest::option::of(any::<u32>()),
                token_ttl_secs in proptest::option::of(any::<u64>().prop_map(|n| n >> 1)),
                // An address as text has no IPv6 flow label: drawn without one.
                listen in proptest::option::of(any::<(IpAddr, u16)>().prop_map(SocketAddr::from)),
                public_url in proptest::option::of("\\PC{0,30}"),
                trusted_proxies in proptest::option::of(proptest::collection::vec(any::<IpAddr>(), 0..4)),
                connectors in proptest::collection::btree_map(
                    "[a-z-]{1,12}",
                    proptest::collection::btree_map("\\PC{1,12}", "\\PC{0,20}", 0..4),
                    0..3,
                ),
            ) {
                // TOML integers are i64: token_ttl_secs is drawn below 2^63.
                let mut file = toml::Table::new();
                if let Some(n) = api_burst {
                    file.insert("api_burst".into(), i64::from(n).into());
                }
                if let Some(n) = token_ttl_secs {
                    file.insert("token_ttl_secs".into(), (n as i64).into());
                }
                if let Some(addr) = listen {
                    file.insert("listen".into(), addr.to_string().into());
                }
                if let Some(url) = &public_url {
                    file.insert("public_url".into(), url.clone().into());
                }
                if let Some(ips) = &trusted_proxies {
                    let ips: Vec<toml::Value> = ips.iter().map(|ip| ip.to_string().into()).collect();
                    file.insert("trusted_proxies".into(), ips.into());
                }
                let tables: toml::Table = connectors
                    .iter()
                    .map(|(id, keys)| {
                        let keys: toml::Table =
                            keys.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
                        (id.clone(), keys.into())
                    })
                    .collect();
                if !tables.is_empty() {
                    file.insert("connector".into(), tables.into());
                }
                let text = toml::to_string(&file).unwrap();
                let read = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
                prop_assert_eq!(read.api_burst, api_burst);
                prop_assert_eq!(read.token_ttl_secs, token_ttl_secs);
                prop_assert_eq!(read.listen, listen);
                prop_assert_eq!(read.public_url, public_url);
                prop_assert_eq!(read.trusted_proxies, trusted_proxies);
                let settings: Vec<(String, String, String)> = read
                    .connector_settings
                    .into_iter()
                    .map(|s| (s.connector, s.key, s.value))
                    .collect();
                let expected: Vec<(String, String, String)> = connectors
                    .into_iter()
                    .flat_map(|(id, keys)| keys.into_iter().map(move |(k, v)| (id.clone(), k, v)))
                    .collect();
                prop_assert_eq!(settings, expected);
            }

            #[test]
            fn a_bad_line_is_refused_naming_its_line_and_key(
                filler in proptest::sample::subsequence(VALID.to_vec(), 0..=VALID.len()).prop_shuffle(),
                gaps in proptest::collection::vec(prop_oneof![Just(""), Just("# a comment")], 8),
                at in any::<prop::sample::Index>(),
                key in prop_oneof![
                    proptest::sample::select(keys()),
                    "[a-z][a-z_]{0,20}".prop_filter("not a setting", |k| !keys().contains(k)),
                ],
                bad in prop_oneof![Just("true"), Just("{ a = 1 }"), Just("1979-05-27"), Just("0.5")],
            ) {
                prop_assume!(!filler.iter().any(|(k, _)| *k == key));
                // `true` is a good value of the one boolean setting.
                prop_assume!(!(key == "auto_disable_unused" && bad == "true"));
                let mut lines: Vec<String> = Vec::new();
                for (i, (k, v)) in filler.iter().enumerate() {
                    lines.push(format!("{k} = {v}"));
                    lines.push(gaps[i].to_string());
                }
                let at = at.index(lines.len() + 1);
                lines.insert(at, format!("{key} = {bad}"));
                let text = lines.join("\n");
                let e = parse(&text).err().ok_or_else(|| TestCaseError::fail(format!("accepted:\n{text}")))?;
                // The key, or a key inside it (`connector.x`).
                let place = format!("config file c.toml line {}, key {key}", at + 1);
                let named = e.strip_prefix(&place).is_some_and(|r| r.starts_with([':', '.']));
                prop_assert!(named, "{} (expected {})\n{}", e, place, text);
            }

            #[test]
            fn any_numbers_resolve_to_a_gateway_that_starts_or_an_error_naming_the_key(
                numbers in proptest::collection::vec(any::<u64>(), 20),
                small in proptest::collection::vec(0u64..100_000, 20),
                pick_small in proptest::collection::vec(any::<bool>(), 20),
            ) {
                let n = |i: usize| if pick_small[i] { small[i] } else { numbers[i] };
                let args = ConfigArgs {
                    token_ttl_secs: Some(n(0)),
                    firm_pool_capacity: Some(n(1) as usize),
                    header_read_timeout_secs: Some(n(2)),
                    request_timeout_secs: Some(n(3)),
                    max_connections: Some(n(4) as usize),
                    api_rate_per_second: Some(n(5)),
                    api_burst: Some(n(6) as u32),
                    auth_failures_per_ip: Some(n(7) as u32),
                    auth_failures_per_client: Some(n(8) as u32),
                    auth_failure_recovery_secs: Some(n(9)),
                    session_idle_secs: Some(n(10)),
                    session_max_secs: Some(n(11)),
                    checkpoint_interval_secs: Some(n(18)),
                    backup_generations: Some(n(19) as usize),
                    retention_after_termination_days: Some(n(12)),
                    log_retention_days: Some(n(14)),
                    audit_retention_days: Some(n(13)),
                    ..Default::default()
                };
                match Config::from_layers(args, ConfigArgs::default()) {
                    Ok(config) => {
                        AuthThrottle::new("oauth_token", &config.limits, None);
                        ApiLimiters::new(&config.limits, Arc::new(Vec::new()), None);
                        prop_assert!(config.firm_pool_capacity <= MAX_FIRM_POOL_CAPACITY);
                    }
                    Err(e) => prop_assert!(keys().iter().any(|k| e.starts_with(k.as_str())), "{}", e),
                }
            }
        }
    }
}
