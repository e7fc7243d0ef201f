//! What the connector keeps in memory while the gateway runs: the HTTP
//! clients (OAuth via reqwest without redirects; the Calendar API via hyper
//! with rustls and a connect timeout; each request's own timeout is applied
//! per call), each connection's token source and rate limiter, the set of
//! connections being synced (one pass per connection at a time), and the
//! worker's wake-up and stop signals.

use super::tokens::TokenSource;
use google_calendar3::hyper_rustls::HttpsConnector;
use google_calendar3::hyper_util::client::legacy::connect::HttpConnector;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The Calendar API's HTTP client type.
pub type ApiClient = google_calendar3::common::Client<HttpsConnector<HttpConnector>>;

/// Shared connector state; one per gateway process.
pub struct GoogleRuntime {
    /// For the OAuth endpoints: never follows redirects.
    pub oauth_http: reqwest::Client,
    pub api_client: ApiClient,
    tokens: Mutex<HashMap<String, Arc<TokenSource>>>,
    limiters: Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>,
    running: Mutex<HashSet<String>>,
    rate_per_second: u32,
    pub wake: Notify,
    stopping: AtomicBool,
    /// Wakes backoff pauses when the worker is asked to stop.
    stopped: Notify,
    /// This gateway instance's identity as a holder of connection leases.
    pub instance_id: String,
}

impl GoogleRuntime {
    pub fn new(rate_per_second: u32, connect_timeout: Duration) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let oauth_http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client");
        let connector = google_calendar3::hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .or_else(|_| {
                Ok::<_, std::io::Error>(
                    google_calendar3::hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                        rustls::ClientConfig::builder()
                            .with_root_certificates(rustls::RootCertStore::empty())
                            .with_no_client_auth(),
                    ),
                )
            })
            .expect("TLS connector")
            .https_or_http()
            .enable_http1()
            .wrap_connector({
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_connect_timeout(Some(connect_timeout));
                http
            });
        let api_client = google_calendar3::hyper_util::client::legacy::Client::builder(
            google_calendar3::hyper_util::rt::TokioExecutor::new(),
        )
        .pool_max_idle_per_host(64)
        .build(connector);
        Self {
            oauth_http,
            api_client,
            tokens: Mutex::new(HashMap::new()),
            limiters: Mutex::new(HashMap::new()),
            running: Mutex::new(HashSet::new()),
            rate_per_second: rate_per_second.max(1),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            stopped: Notify::new(),
            instance_id: uuid::Uuid::new_v4().to_string(),
        }
    }

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
    }

    /// The per-user call rate cap.
    pub fn limiter(&self, connection_id: &str) -> Arc<DefaultDirectRateLimiter> {
        let per_second = NonZeroU32::new(self.rate_per_second).expect("positive");
        self.limiters
            .lock()
            .expect("limiters")
            .entry(connection_id.to_string())
            .or_insert_with(|| Arc::new(RateLimiter::direct(Quota::per_second(per_second))))
            .clone()
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

    /// Asks the worker to stop after the calls in flight.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
        self.stopped.notify_waiters();
    }

    /// Sleeps for `duration`, or less if the worker is asked to stop meanwhile.
    pub async fn pause(&self, duration: Duration) {
        let stopped = self.stopped.notified();
        tokio::pin!(stopped);
        stopped.as_mut().enable();
        if self.is_stopping() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(duration) => {}
            _ = stopped => {}
        }
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
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

    #[tokio::test]
    async fn a_backoff_pause_ends_when_the_worker_stops() {
        let runtime = Arc::new(GoogleRuntime::new(10, Duration::from_secs(5)));
        let pausing = {
            let runtime = runtime.clone();
            tokio::spawn(async move { runtime.pause(Duration::from_secs(3600)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        runtime.stop();
        tokio::time::timeout(Duration::from_secs(5), pausing)
            .await
            .expect("the pause ended at stop")
            .expect("joined");
        // Once stopping, a pause returns at once.
        tokio::time::timeout(
            Duration::from_secs(1),
            runtime.pause(Duration::from_secs(3600)),
        )
        .await
        .expect("no pause after stop");
    }

    #[test]
    fn a_connection_is_claimed_once_until_released() {
        let runtime = Arc::new(GoogleRuntime::new(10, Duration::from_secs(5)));
        let claim = runtime.claim("c1").expect("first claim");
        assert!(runtime.claim("c1").is_none());
        assert!(runtime.claim("c2").is_some());
        drop(claim);
        assert!(runtime.claim("c1").is_some());
    }
}
