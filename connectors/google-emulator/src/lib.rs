//! A small, faithful local stand-in for the parts of Google that scopegate's
//! Google Calendar connector uses: the OAuth 2.0 authorize (auto-approving),
//! token (authorization code with PKCE, refresh) and revoke endpoints, and the
//! Calendar API v3 events resource (insert, get, list, update, patch, delete)
//! with Google's status codes and error bodies.
//!
//! It records every request it receives (kind, method, path, status, body) so
//! tests can check exactly what left the gateway, and it can inject latency,
//! 429/503 answers (for every account, or only one account's, with any
//! `Retry-After`), a share of calls answered late, calls that are never
//! answered, expired access tokens and revoked grants, and per account: any
//! 5xx, a body trickled byte by byte, an oversized body (counting how much of
//! it the client took) and redirects.
//!
//! With `quotas` set it enforces Google's Calendar API usage quotas (requests
//! per minute per user and per project, see [`quota`]) and answers a request
//! over them as Google does: 403 `userRateLimitExceeded` or `rateLimitExceeded`.
//!
//! Admin endpoints (not part of Google) live under `/_emulator/`.

mod calendar;
mod oauth;
pub mod quota;

use axum::routing::{delete, get, post};
use axum::Router;
pub use quota::Quotas;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// What the emulator accepts and how it misbehaves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmulatorConfig {
    pub client_id: String,
    pub client_secret: String,
    /// Lifetime of issued access tokens, seconds.
    pub access_token_ttl_secs: i64,
    /// Added to every Calendar API answer, milliseconds.
    pub latency_ms: u64,
    /// Share (0..=1) of Calendar API calls answered with 429 or 503 instead.
    pub fault_rate: f64,
    /// Retry-After seconds sent with injected 429s (none when 0).
    pub retry_after_secs: u64,
    /// Share (0..=1) of Calendar API calls, beyond `fault_rate`'s, answered
    /// correctly but only after `slow_ms` more.
    #[serde(default)]
    pub slow_rate: f64,
    /// Extra delay of the slow calls, milliseconds.
    #[serde(default)]
    pub slow_ms: u64,
    /// Faults of single Google accounts (by account name), applied to every
    /// Calendar API call that account's token makes.
    #[serde(default)]
    pub account_faults: BTreeMap<String, AccountFault>,
    /// Google's usage quotas, enforced on Calendar API calls when set
    /// ([`Quotas::GOOGLE`] for Google's defaults); `None` (the default) lets
    /// every call through, as tests that sync at 1,000 calls/s need.
    #[serde(default)]
    pub quotas: Option<Quotas>,
}

/// How one account's Calendar API calls misbehave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountFault {
    /// Never answered: the request is read and the connection left open.
    Hang,
    /// Answered 429 `rateLimitExceeded` with this `Retry-After` (seconds).
    RateLimited { retry_after_secs: u64 },
    /// Answered with this 5xx status and Google's `backendError` body.
    ServerError { status: u16 },
    /// The call is carried out and answered at once, but the body is sent one
    /// byte every `interval_ms`.
    SlowBody { interval_ms: u64 },
    /// Answered 200 with a valid event whose body is `bytes` long, streamed in
    /// 64 KiB chunks (see [`Emulator::oversized_bodies`] for what was taken).
    OversizedBody { bytes: u64 },
    /// Answered with this 3xx status and `Location: location`; nothing is done.
    Redirect { status: u16, location: String },
}

/// One oversized body the emulator streamed: how much of it the client took.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamedBody {
    pub account: String,
    /// Bytes handed to the connection (the client read them, or they sit in
    /// the socket buffers, at most a few MiB on loopback).
    pub sent: u64,
    pub total: u64,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            client_id: "emulator-client.apps.googleusercontent.com".into(),
            client_secret: "emulator-secret".into(),
            access_token_ttl_secs: 3600,
            latency_ms: 0,
            fault_rate: 0.0,
            retry_after_secs: 0,
            slow_rate: 0.0,
            slow_ms: 0,
            account_faults: BTreeMap::new(),
            quotas: None,
        }
    }
}

/// One request the emulator received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Received {
    /// `authorize`, `token`, `revoke` or `api`.
    pub kind: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// The body as sent (form or JSON text); empty when there was none.
    pub body: String,
    /// When it was answered, milliseconds since the Unix epoch.
    #[serde(default)]
    pub at_ms: i64,
}

/// A stored event, as Google would return it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredEvent {
    pub account: String,
    pub calendar: String,
    pub event: Value,
    pub cancelled: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Code {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub scope: String,
    pub account: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Refresh {
    pub account: String,
    pub scope: String,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub account: String,
    pub refresh: Option<String>,
    pub expires_at_ms: i64,
    pub revoked: bool,
}

#[derive(Default)]
pub(crate) struct World {
    pub codes: HashMap<String, Code>,
    pub refresh: HashMap<String, Refresh>,
    pub access: HashMap<String, Access>,
    /// (account, calendar, event id) -> event.
    pub events: BTreeMap<(String, String, String), StoredEvent>,
    pub received: Vec<Received>,
    pub accounts: u64,
    /// Oversized bodies: account, total length, bytes handed over so far.
    pub streamed: Vec<(String, u64, Arc<std::sync::atomic::AtomicU64>)>,
    /// Calendar API requests admitted in the last minute (when quotas are on).
    pub quota_windows: quota::QuotaWindows,
}

/// The emulator's shared state.
pub struct Inner {
    pub(crate) config: Mutex<EmulatorConfig>,
    pub(crate) world: Mutex<World>,
}

/// A cheap handle on a running (or routable) emulator.
#[derive(Clone)]
pub struct Emulator(pub(crate) Arc<Inner>);

/// An emulator listening on a socket.
pub struct RunningEmulator {
    pub emulator: Emulator,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT/`
    pub fn root_url(&self) -> String {
        format!("http://{}/", self.addr)
    }
    pub fn auth_url(&self) -> String {
        format!("http://{}/o/oauth2/v2/auth", self.addr)
    }
    pub fn token_url(&self) -> String {
        format!("http://{}/token", self.addr)
    }
    pub fn revoke_url(&self) -> String {
        format!("http://{}/revoke", self.addr)
    }
    /// The Calendar API base, ending in `calendar/v3/`.
    pub fn api_base(&self) -> String {
        format!("http://{}/calendar/v3/", self.addr)
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Emulator {
    pub fn new(config: EmulatorConfig) -> Self {
        Self(Arc::new(Inner {
            config: Mutex::new(config),
            world: Mutex::new(World::default()),
        }))
    }

    /// Binds `addr` (port 0 for a free one) and serves in a background task.
    pub async fn start(self, addr: SocketAddr) -> std::io::Result<RunningEmulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let router = self.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(RunningEmulator {
            emulator: self,
            addr,
            task,
        })
    }

    /// The emulator's routes (Google's paths plus `/_emulator/...`).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/o/oauth2/v2/auth", get(oauth::authorize))
            .route("/token", post(oauth::token))
            .route("/revoke", post(oauth::revoke))
            .route(
                "/calendar/v3/calendars/{calendar}",
                get(calendar::get_calendar),
            )
            .route(
                "/calendar/v3/calendars/{calendar}/events",
                post(calendar::insert).get(calendar::list),
            )
            .route(
                "/calendar/v3/calendars/{calendar}/events/{event}",
                get(calendar::get_one)
                    .put(calendar::update)
                    .patch(calendar::patch)
                    .delete(calendar::remove),
            )
            .route("/_emulator/requests", get(admin_requests))
            .route("/_emulator/events", get(admin_events))
            .route("/_emulator/config", post(admin_config))
            .route("/_emulator/expire-tokens", post(admin_expire))
            .route("/_emulator/revoke-all", post(admin_revoke_all))
            .route("/_emulator/reset-requests", delete(admin_reset))
            .with_state(self.clone())
    }

    pub fn config(&self) -> EmulatorConfig {
        self.0.config.lock().expect("config").clone()
    }

    pub fn set_config(&self, config: EmulatorConfig) {
        *self.0.config.lock().expect("config") = config;
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.0.world.lock().expect("world").received.clone()
    }

    /// Every request received since the last take (or the start), forgetting them.
    pub fn take_received(&self) -> Vec<Received> {
        std::mem::take(&mut self.0.world.lock().expect("world").received)
    }

    /// Forgets the recorded requests.
    pub fn clear_received(&self) {
        self.0.world.lock().expect("world").received.clear();
    }

    /// Live (not cancelled) events of every account.
    pub fn live_events(&self) -> Vec<StoredEvent> {
        self.0
            .world
            .lock()
            .expect("world")
            .events
            .values()
            .filter(|e| !e.cancelled)
            .cloned()
            .collect()
    }

    /// How many live (not cancelled) events there are, without copying them.
    pub fn live_event_count(&self) -> usize {
        self.0
            .world
            .lock()
            .expect("world")
            .events
            .values()
            .filter(|e| !e.cancelled)
            .count()
    }

    /// Whether some live event satisfies `test` (looked at in place, not copied).
    pub fn any_live_event(&self, test: impl Fn(&StoredEvent) -> bool) -> bool {
        self.0
            .world
            .lock()
            .expect("world")
            .events
            .values()
            .any(|e| !e.cancelled && test(e))
    }

    /// Every oversized body streamed so far and how much of it was handed over.
    pub fn oversized_bodies(&self) -> Vec<StreamedBody> {
        self.0
            .world
            .lock()
            .expect("world")
            .streamed
            .iter()
            .map(|(account, total, sent)| StreamedBody {
                account: account.clone(),
                sent: sent.load(std::sync::atomic::Ordering::SeqCst),
                total: *total,
            })
            .collect()
    }

    /// Marks every issued access token as expired (the next API call answers 401).
    pub fn expire_access_tokens(&self) {
        let mut world = self.0.world.lock().expect("world");
        for token in world.access.values_mut() {
            token.expires_at_ms = 0;
        }
    }

    /// Revokes every refresh token, as a user removing the app's access would
    /// (the next refresh answers `invalid_grant`).
    pub fn revoke_all_grants(&self) {
        let mut world = self.0.world.lock().expect("world");
        for token in world.refresh.values_mut() {
            token.revoked = true;
        }
        for token in world.access.values_mut() {
            token.revoked = true;
        }
    }

    /// Refresh tokens that are still valid.
    pub fn live_refresh_tokens(&self) -> usize {
        self.0
            .world
            .lock()
            .expect("world")
            .refresh
            .values()
            .filter(|r| !r.revoked)
            .count()
    }

    pub(crate) fn record(&self, kind: &str, method: &str, path: &str, status: u16, body: &str) {
        self.0.world.lock().expect("world").received.push(Received {
            kind: kind.into(),
            method: method.into(),
            path: path.into(),
            status,
            body: body.into(),
            at_ms: now_ms(),
        });
    }
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn admin_requests(
    axum::extract::State(emulator): axum::extract::State<Emulator>,
) -> axum::Json<Vec<Received>> {
    axum::Json(emulator.received())
}

async fn admin_events(
    axum::extract::State(emulator): axum::extract::State<Emulator>,
) -> axum::Json<Vec<StoredEvent>> {
    axum::Json(emulator.live_events())
}

async fn admin_config(
    axum::extract::State(emulator): axum::extract::State<Emulator>,
    axum::Json(config): axum::Json<EmulatorConfig>,
) -> axum::http::StatusCode {
    emulator.set_config(config);
    axum::http::StatusCode::NO_CONTENT
}

async fn admin_expire(
    axum::extract::State(emulator): axum::extract::State<Emulator>,
) -> axum::http::StatusCode {
    emulator.expire_access_tokens();
    axum::http::StatusCode::NO_CONTENT
}

async fn admin_revoke_all(
    axum::extract::State(emulator): axum::extract::State<Emulator>,
) -> axum::http::StatusCode {
    emulator.revoke_all_grants();
    axum::http::StatusCode::NO_CONTENT
}

async fn admin_reset(
    axum::extract::State(emulator): axum::extract::State<Emulator>,
) -> axum::http::StatusCode {
    emulator.clear_received();
    axum::http::StatusCode::NO_CONTENT
}
