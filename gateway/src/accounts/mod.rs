//! Firm accounts for the settings page: people who belong to exactly one firm
//! with a role, their argon2id passwords, server-side cookie sessions, the
//! signed hand-off from the firm's practice-management app, and the login
//! throttle. The firm of a request always comes from its session, never from
//! anything the browser sends.

pub use scopegate_core::accounts::{handoff, passwords, sessions, users, Role};

use crate::config::Config;
use crate::http::throttle::AuthThrottle;

/// Account settings and the login throttle, built once at startup.
pub struct Accounts {
    /// Failed logins per IP and per (firm, email).
    pub login_throttle: AuthThrottle,
    /// A session unused this long is over.
    pub idle_ms: i64,
    /// A session is over this long after login, used or not.
    pub max_ms: i64,
    /// The host application's Ed25519 public key for hand-off assertions.
    pub handoff_key: Option<ed25519_dalek::VerifyingKey>,
    /// Served over TLS: cookies get `Secure` and responses HSTS.
    pub tls: bool,
    /// Bounds concurrent argon2id checks (about 19 MiB each): a flood of
    /// logins gets 429 instead of exhausting memory, and parallel guesses
    /// cannot run far ahead of the failure budget.
    pub password_checks: tokio::sync::Semaphore,
}

/// How many password checks may run at once.
pub const PASSWORD_CHECKS_AT_ONCE: usize = 4;

impl Accounts {
    pub fn new(config: &Config) -> Self {
        Self {
            login_throttle: AuthThrottle::new(&config.limits),
            idle_ms: config.session_idle_secs as i64 * 1000,
            max_ms: config.session_max_secs as i64 * 1000,
            handoff_key: config.handoff_public_key,
            tls: config.public_url.starts_with("https://"),
            password_checks: tokio::sync::Semaphore::new(PASSWORD_CHECKS_AT_ONCE),
        }
    }
}
