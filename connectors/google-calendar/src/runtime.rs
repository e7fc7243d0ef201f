//! What the connector keeps in memory while the gateway runs: each
//! connection's token source and rate limiter, the project's rate limiter
//! (shared by every connection of this process), the set of connections being
//! synced here (one pass per connection at a time), the worker's wake-up
//! signal, this instance's identity as a lease holder, and when each
//! connection's last pass here started (for the sync-lag metric). It holds no
//! HTTP client: every call goes through the contract's audited sender.

use crate::pacing;
use crate::pacing::Pacer;
use crate::tokens::TokenSource;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Shared connector state; one per gateway process.
pub struct GoogleRuntime {
    tokens: Mutex<HashMap<String, Arc<TokenSource>>>,
    limiters: Mutex<HashMap<String, Arc<Pacer>>>,
    project_limiter: OnceLock<Pacer>,
    running: Mutex<HashSet<String>>,
    pass_started: Mutex<HashMap<String, Instant>>,
    pub wake: Notify,
    /// This gateway instance's identity as a holder of connection leases.
    pub instance_id: String,
}

impl Default for GoogleRuntime {
    fn default() -> Self {
        Self {
            tokens: Mutex::new(HashMap::new()),
            limiters: Mutex::new(HashMap::new()),
            project_limiter: OnceLock::new(),
            running: Mutex::new(HashSet::new()),
            pass_started: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            instance_id: uuid::Uuid::new_v4().to_string(),
        }
    }
}

impl GoogleRuntime {
    /// The cached token source of a connection, if one was made.
    pub fn token_source(&self, connection_id: &str) -> Option<Arc<TokenSource>> {
        self.tokens
            .lock()
            .expect("tokens")
            .get(connection_id)
            .cloned()
    }

    /// Caches `source` unless another is already cached; returns the cached one.
    pub fn keep_token_source(&self, source: TokenSource) -> Arc<TokenSource> {
        self.tokens
            .lock()
            .expect("tokens")
            .entry(source.connection_id.clone())
            .or_insert_with(|| Arc::new(source))
            .clone()
    }

    /// Drops a connection's cached tokens (after disconnect or reconsent).
    pub fn forget(&self, connection_id: &str) {
        self.tokens.lock().expect("tokens").remove(connection_id);
        self.pass_started
            .lock()
            .expect("pass starts")
            .remove(connection_id);
    }

    /// Notes that a pass of the connection starts now; returns how long ago
    /// the previous pass here started (none for the first one).
    pub fn pass_starts(&self, connection_id: &str) -> Option<Duration> {
        let now = Instant::now();
        self.pass_started
            .lock()
            .expect("pass starts")
            .insert(connection_id.to_string(), now)
            .map(|before| now - before)
    }

    /// The per-user call rate cap (see [`crate::pacing`]).
    pub fn limiter(&self, connection_id: &str, per_second: u32) -> Arc<Pacer> {
        self.limiters
            .lock()
            .expect("limiters")
            .entry(connection_id.to_string())
            .or_insert_with(|| Arc::new(Pacer::new(pacing::per_user(per_second))))
            .clone()
    }

    /// The cap on every connection's calls together (see [`crate::pacing`]);
    /// made on first use, with the process's one setting.
    pub fn project_limiter(&self, per_minute: u32) -> &Pacer {
        self.project_limiter
            .get_or_init(|| Pacer::new(pacing::per_project(per_minute)))
    }

    /// Claims a connection for one pass; `None` when a pass is already running.
    pub fn claim(self: &Arc<Self>, connection_id: &str) -> Option<Claim> {
        self.running
            .lock()
            .expect("running")
            .insert(connection_id.to_string())
            .then(|| Claim {
                runtime: self.clone(),
                connection_id: connection_id.to_string(),
            })
    }
}

/// A connection held for one pass; released on drop.
pub struct Claim {
    runtime: Arc<GoogleRuntime>,
    connection_id: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.runtime
            .running
            .lock()
            .expect("running")
            .remove(&self.connection_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_claimed_once_until_released() {
        let runtime = Arc::new(GoogleRuntime::default());
        let claim = runtime.claim("c1").expect("first claim");
        assert!(runtime.claim("c1").is_none());
        assert!(runtime.claim("c2").is_some());
        drop(claim);
        assert!(runtime.claim("c1").is_some());
    }
}
