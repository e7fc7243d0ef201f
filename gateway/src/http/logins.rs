//! What settings logins need while the gateway runs: the login throttle,
//! session lifetimes, the hand-off key, and the bounded permits under which
//! argon2id hashes and checks run off the async runtime. The accounts
//! themselves (people of one firm with a role, their password hashes,
//! sessions, hand-off) are kept by the core (`scopegate_core::accounts`).

use super::shared_limits::SharedLimits;
use super::throttle::AuthThrottle;
use crate::config::Config;
use scopegate_core::accounts::passwords;

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

/// How many password checks (and hashes of new passwords) may run at once.
pub const PASSWORD_CHECKS_AT_ONCE: usize = 4;

/// How long a password check or hash waits for a permit before giving up.
pub const PASSWORD_PERMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Why a new password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("{0}")]
    Policy(String),
    #[error("the gateway is busy checking passwords; try again in a moment")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

impl Accounts {
    pub fn new(config: &Config, shared: Option<std::sync::Arc<SharedLimits>>) -> Self {
        Self {
            login_throttle: AuthThrottle::new("settings_login", &config.limits, shared),
            idle_ms: config.session_idle_secs as i64 * 1000,
            max_ms: config.session_max_secs as i64 * 1000,
            handoff_key: config.handoff_public_key,
            tls: config.public_url.starts_with("https://"),
            password_checks: tokio::sync::Semaphore::new(PASSWORD_CHECKS_AT_ONCE),
        }
    }

    /// A permit to run one argon2id check or hash, if one comes free in time.
    pub async fn password_permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::time::timeout(PASSWORD_PERMIT_WAIT, self.password_checks.acquire())
            .await
            .ok()?
            .ok()
    }

    /// Hashes a new password on the blocking pool, under the same bounded
    /// permits as login checks (an admin adding users cannot stall the
    /// runtime or run past the memory bound).
    pub async fn hash_password(&self, password: &str) -> Result<passwords::Hashed, PasswordError> {
        passwords::check_policy(password).map_err(PasswordError::Policy)?;
        let _permit = self.password_permit().await.ok_or(PasswordError::Busy)?;
        let password = password.to_string();
        tokio::task::spawn_blocking(move || passwords::hash_checked(&password))
            .await
            .map_err(|e| PasswordError::Failed(e.to_string()))?
            .map_err(PasswordError::Policy)
    }
}
