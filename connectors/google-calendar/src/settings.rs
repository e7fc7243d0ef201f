//! The operator's settings of the Google Calendar connector: Google's URLs
//! (configuration, so tests and the demo point at the emulator), the OAuth
//! client, and the sync's pace. Each is `[connector.google-calendar] KEY` in
//! the TOML file and has its own flag and environment variable.

use scopegate_contract::secrecy::{ExposeSecret, SecretString};
use scopegate_contract::{Capabilities, SettingSpec};
use std::time::Duration;

const fn spec(
    key: &'static str,
    flag: &'static str,
    env: &'static str,
    help: &'static str,
) -> SettingSpec {
    SettingSpec {
        key,
        flag: Some(flag),
        env: Some(env),
        help,
        secret: false,
    }
}

/// Every setting, as the gateway's command line and configuration file know them.
pub const SPECS: &[SettingSpec] = &[
    spec("auth_url", "google-auth-url", "SCOPEGATE_GOOGLE_AUTH_URL", "Google's OAuth authorize endpoint"),
    spec("token_url", "google-token-url", "SCOPEGATE_GOOGLE_TOKEN_URL", "Google's OAuth token endpoint"),
    spec("revoke_url", "google-revoke-url", "SCOPEGATE_GOOGLE_REVOKE_URL", "Google's OAuth revocation endpoint"),
    spec("api_base", "google-api-base", "SCOPEGATE_GOOGLE_API_BASE", "Base URL of the Calendar API v3"),
    spec("client_id", "google-client-id", "SCOPEGATE_GOOGLE_CLIENT_ID", "OAuth client id of this gateway's Google Cloud project (Google Calendar is unavailable without it)"),
    spec("client_secret_file", "google-client-secret-file", "SCOPEGATE_GOOGLE_CLIENT_SECRET_FILE", "File holding the OAuth client secret"),
    SettingSpec {
        key: "client_secret",
        flag: None,
        env: Some("SCOPEGATE_GOOGLE_CLIENT_SECRET"),
        help: "The OAuth client secret (environment only)",
        secret: true,
    },
    spec("redirect_url", "google-redirect-url", "SCOPEGATE_GOOGLE_REDIRECT_URL", "Redirect URL registered with Google (default <public_url>/oauth/google/callback)"),
    spec("sync_interval_ms", "google-sync-interval-ms", "SCOPEGATE_GOOGLE_SYNC_INTERVAL_MS", "Milliseconds between looks for diary changes (default 1000); an idle look costs one read per firm"),
    spec("user_concurrency", "google-user-concurrency", "SCOPEGATE_GOOGLE_USER_CONCURRENCY", "Calendar API calls in flight per fee earner (default 4)"),
    spec("user_rate_per_second", "google-user-rate-per-second", "SCOPEGATE_GOOGLE_USER_RATE_PER_SECOND", "Google's Calendar API quota per fee earner, calls per second (default 10: Google's 600/min); the sync paces itself at 98% of it"),
    spec("project_rate_per_minute", "google-project-rate-per-minute", "SCOPEGATE_GOOGLE_PROJECT_RATE_PER_MINUTE", "Google's Calendar API quota of the whole OAuth client, calls per minute (default 10000: Google's); each gateway instance paces every fee earner's calls together at 98% of it"),
    spec("connect_timeout_secs", "google-connect-timeout-secs", "SCOPEGATE_GOOGLE_CONNECT_TIMEOUT_SECS", "Seconds to connect to Google (default 5; the gateway's outbound client honours it)"),
    spec("request_timeout_secs", "google-request-timeout-secs", "SCOPEGATE_GOOGLE_REQUEST_TIMEOUT_SECS", "Seconds one Google call may take before it counts as unanswered (default 20)"),
    spec("max_retry_after_secs", "google-max-retry-after-secs", "SCOPEGATE_GOOGLE_MAX_RETRY_AFTER_SECS", "Longest Retry-After slept within a pass (default 60); longer ones reschedule the connection"),
];

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct GoogleSettings {
    pub auth_url: String,
    pub token_url: String,
    pub revoke_url: String,
    /// Ends with `/`.
    pub api_base: String,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub redirect_url: String,
    pub sync_interval: Duration,
    pub user_concurrency: usize,
    pub user_rate_per_second: u32,
    pub project_rate_per_minute: u32,
    pub request_timeout: Duration,
    pub max_retry_after: Duration,
}

fn number<T: std::str::FromStr>(caps: &Capabilities, key: &str, default: T) -> Result<T, String> {
    match caps.setting(key) {
        None => Ok(default),
        Some(text) => text.trim().parse().map_err(|_| {
            format!("Google Calendar setting {key} must be a whole number, not {text:?}")
        }),
    }
}

impl GoogleSettings {
    /// Reads the settings; an unreadable secret file or a malformed number is an error.
    pub fn from_caps(caps: &Capabilities) -> Result<Self, String> {
        let text = |key: &str, default: &str| caps.setting(key).unwrap_or(default).to_string();
        let client_secret = match caps.secret("client_secret") {
            Some(secret) => Some(secret.expose_secret().trim().to_string().into()),
            None => match caps.setting("client_secret_file") {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| format!("cannot read Google client secret file {path}: {e}"))?
                        .trim()
                        .to_string()
                        .into(),
                ),
                None => None,
            },
        };
        let mut api_base = text("api_base", "https://www.googleapis.com/calendar/v3/");
        if !api_base.ends_with('/') {
            api_base.push('/');
        }
        Ok(Self {
            auth_url: text("auth_url", "https://accounts.google.com/o/oauth2/v2/auth"),
            token_url: text("token_url", "https://oauth2.googleapis.com/token"),
            revoke_url: text("revoke_url", "https://oauth2.googleapis.com/revoke"),
            api_base,
            client_id: caps.setting("client_id").map(str::to_string),
            client_secret,
            redirect_url: caps
                .setting("redirect_url")
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}/oauth/google/callback", caps.public_url())),
            sync_interval: Duration::from_millis(
                number(caps, "sync_interval_ms", 1000u64)?.max(10),
            ),
            user_concurrency: number(caps, "user_concurrency", 4usize)?.clamp(1, 64),
            user_rate_per_second: number(caps, "user_rate_per_second", 10u32)?.max(1),
            project_rate_per_minute: number(caps, "project_rate_per_minute", 10_000u32)?.max(1),
            request_timeout: Duration::from_secs(
                number(caps, "request_timeout_secs", 20u64)?.max(1),
            ),
            max_retry_after: Duration::from_secs(number(caps, "max_retry_after_secs", 60u64)?),
        })
    }
}
