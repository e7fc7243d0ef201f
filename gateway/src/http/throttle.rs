//! Throttling. The API is limited per client address (an IPv4 address or an
//! IPv6 /64, forwarded headers only from trusted proxies) with tower-governor,
//! and per credential: the bearer token is resolved to the credential it was
//! issued for, so respelling the header or minting another token does not buy
//! a fresh budget. Failed client authentications are limited much harder with
//! governor's GCRA, per client id and per address; once a key has used its
//! failure budget, what it refuses is described at [`AuthThrottle`]. Limiter
//! keys are pruned periodically (they are never evicted by themselves).

use super::client_ip::{client_ip, peer_of, rate_key};
use super::problem::Problem;
use crate::config::Limits;
use crate::http::AppState;
use crate::registry::Registry;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use lru::LruCache;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};

/// Keys API requests by client: its IP (forwarded headers only from trusted
/// proxies), an IPv6 address by its /64.
#[derive(Clone, Debug)]
pub struct ClientIpKey {
    pub trusted: Arc<Vec<IpAddr>>,
}

impl ClientIpKey {
    fn of<T>(&self, req: &axum::http::Request<T>) -> Option<IpAddr> {
        let peer = peer_of(req)?;
        Some(rate_key(client_ip(peer, req.headers(), &self.trusted)))
    }
}

impl KeyExtractor for ClientIpKey {
    type Key = IpAddr;
    fn extract<T>(&self, req: &axum::http::Request<T>) -> Result<IpAddr, GovernorError> {
        self.of(req).ok_or(GovernorError::UnableToExtractKey)
    }
}

pub type IpGovernor = GovernorConfig<
    ClientIpKey,
    governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>,
>;

/// What a per-credential budget is keyed by.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum ApiKey {
    /// The credential a live bearer token was issued for.
    Credential(String),
    /// No token, or one that resolves to nothing: the client address (it gets a 401 anyway).
    Client(IpAddr),
}

/// How many tokens' credential ids are remembered.
const TOKEN_CACHE: usize = 16_384;

/// The API limiters, built once so a pruning task can reach them.
pub struct ApiLimiters {
    pub per_ip: Arc<IpGovernor>,
    per_credential: DefaultKeyedRateLimiter<ApiKey>,
    /// SHA-256 of recently used tokens -> their credential id, so only a
    /// token's first request pays for a lookup here.
    token_credentials: Mutex<LruCache<[u8; 32], String>>,
    ip: ClientIpKey,
}

impl ApiLimiters {
    pub fn new(limits: &Limits, trusted: Arc<Vec<IpAddr>>) -> Self {
        let ip = ClientIpKey { trusted };
        // tower_governor's `per_*` sets the replenish *interval* (one token every n units).
        let interval_ns = (1_000_000_000 / limits.api_rate_per_second.max(1)).max(1);
        let per_ip = GovernorConfigBuilder::default()
            .per_nanosecond(interval_ns)
            .burst_size(limits.api_burst)
            .key_extractor(ip.clone())
            .finish()
            .expect("positive limits");
        let quota = Quota::with_period(Duration::from_nanos(interval_ns))
            .expect("positive")
            .allow_burst(NonZeroU32::new(limits.api_burst.max(1)).expect("positive"));
        Self {
            per_ip: Arc::new(per_ip),
            per_credential: RateLimiter::keyed(quota),
            token_credentials: Mutex::new(LruCache::new(
                NonZeroUsize::new(TOKEN_CACHE).expect("positive"),
            )),
            ip,
        }
    }

    pub fn ip_layer(
        &self,
    ) -> GovernorLayer<
        ClientIpKey,
        governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>,
        axum::body::Body,
    > {
        GovernorLayer::new(self.per_ip.clone()).error_handler(governor_problem)
    }

    /// The credential a bearer token was issued for, if the token is live.
    async fn credential_of(&self, registry: &Registry, token: &str) -> Option<String> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(id) = self
            .token_credentials
            .lock()
            .expect("cache lock")
            .get(&digest)
        {
            return Some(id.clone());
        }
        let grant = registry.resolve_token(token).await.ok().flatten()?;
        self.token_credentials
            .lock()
            .expect("cache lock")
            .put(digest, grant.credential_id.clone());
        Some(grant.credential_id)
    }

    /// The budget key of a request: its credential, else its client address.
    /// (Takes what it needs from the request up front: a request body is not
    /// `Sync`, so no borrow of the request may live across the lookup.)
    async fn key_of(
        &self,
        registry: &Registry,
        token: Option<String>,
        client: Option<IpAddr>,
    ) -> Option<ApiKey> {
        if let Some(token) = token {
            if let Some(id) = self.credential_of(registry, &token).await {
                return Some(ApiKey::Credential(id));
            }
        }
        client.map(ApiKey::Client)
    }

    pub fn prune(&self) {
        self.per_ip.limiter().retain_recent();
        self.per_credential.retain_recent();
    }
}

/// The token of an `Authorization: Bearer` header, read as the bearer extractor reads it.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Middleware: the per-credential API budget (`from_fn_with_state`).
pub async fn limit_per_credential(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let limiters = &state.api_limiters;
    let token = bearer_token(req.headers()).map(str::to_string);
    let client = limiters.ip.of(&req);
    let Some(key) = limiters.key_of(&state.registry, token, client).await else {
        return Problem::internal("rate limiter could not find the client address").into_response();
    };
    if let Err(not_until) = limiters.per_credential.check_key(&key) {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        return Problem::too_many_requests(ceil_secs(wait)).into_response();
    }
    next.run(req).await
}

fn ceil_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

fn governor_problem(error: GovernorError) -> Response {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => {
            Problem::too_many_requests(wait_time).into_response()
        }
        GovernorError::UnableToExtractKey => {
            Problem::internal("rate limiter could not find the client address").into_response()
        }
        GovernorError::Other { msg, .. } => {
            Problem::internal(msg.unwrap_or_default()).into_response()
        }
    }
}

/// What a failure budget is keyed by.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum FailureKey {
    /// A client address (an IPv6 address by its /64).
    Ip(IpAddr),
    /// SHA-256 prefix of the presented client id or account (never the secret).
    Client([u8; 16]),
}

/// Failed-authentication budgets per address and per client id (or settings
/// account). What a spent budget refuses is up to the caller, and chosen so
/// that nobody else's trouble refuses a right secret or password:
///
/// - an address over its budget is refused outright (its requests are not
///   checked), so callers count against it only failures that point at a
///   guesser: unknown client ids, or any failed login;
/// - a client id or account over its budget still has its right secret or
///   password accepted; wrong ones get 429, and an address that has already
///   failed for it is refused unchecked until it recovers ([`Self::tried_from`]).
pub struct AuthThrottle {
    per_ip: DefaultKeyedRateLimiter<FailureKey>,
    per_client: DefaultKeyedRateLimiter<FailureKey>,
    blocked: Mutex<HashMap<FailureKey, Instant>>,
    /// When an address last failed for a client key.
    tried: Mutex<HashMap<(FailureKey, IpAddr), Instant>>,
    recovery: Duration,
}

impl AuthThrottle {
    pub fn new(limits: &Limits) -> Self {
        let period = Duration::from_secs(limits.auth_failure_recovery_secs);
        let quota = |burst: u32| {
            Quota::with_period(period)
                .expect("positive")
                .allow_burst(NonZeroU32::new(burst).expect("positive"))
        };
        Self {
            per_ip: RateLimiter::keyed(quota(limits.auth_failures_per_ip)),
            per_client: RateLimiter::keyed(quota(limits.auth_failures_per_client)),
            blocked: Mutex::new(HashMap::new()),
            tried: Mutex::new(HashMap::new()),
            recovery: period,
        }
    }

    pub fn client_key(client_id: &str) -> FailureKey {
        let digest = Sha256::digest(client_id.as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        FailureKey::Client(key)
    }

    fn blocked(&self, key: &FailureKey) -> Option<u64> {
        let now = Instant::now();
        self.blocked
            .lock()
            .expect("throttle lock")
            .get(key)
            .filter(|until| **until > now)
            .map(|until| ceil_secs(until.duration_since(now)))
    }

    /// Seconds to wait if this address is locked out now.
    pub fn ip_blocked(&self, ip: IpAddr) -> Option<u64> {
        self.blocked(&FailureKey::Ip(rate_key(ip)))
    }

    /// Seconds to wait if this client id (or account) is over its budget now.
    pub fn client_blocked(&self, client_id: &str) -> Option<u64> {
        self.blocked(&Self::client_key(client_id))
    }

    /// Seconds until this address may try this client id again, if it failed
    /// for it within the recovery period.
    pub fn tried_from(&self, ip: IpAddr, client_id: &str) -> Option<u64> {
        let now = Instant::now();
        let key = (Self::client_key(client_id), rate_key(ip));
        self.tried
            .lock()
            .expect("throttle lock")
            .get(&key)
            .map(|at| *at + self.recovery)
            .filter(|until| *until > now)
            .map(|until| ceil_secs(until.duration_since(now)))
    }

    /// Counts one failure against `key`; returns the lockout if its budget is now spent.
    fn spend(&self, limiter: &DefaultKeyedRateLimiter<FailureKey>, key: FailureKey) -> Option<u64> {
        let not_until = limiter.check_key(&key).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        self.blocked
            .lock()
            .expect("throttle lock")
            .insert(key, Instant::now() + wait);
        Some(ceil_secs(wait))
    }

    /// Counts a failure against the address only (an unknown client id, a malformed request).
    pub fn record_ip_failure(&self, ip: IpAddr) -> Option<u64> {
        self.spend(&self.per_ip, FailureKey::Ip(rate_key(ip)))
    }

    /// Counts a failure against the client id only, remembering the address it came from.
    pub fn record_client_failure(&self, ip: IpAddr, client_id: &str) -> Option<u64> {
        let key = Self::client_key(client_id);
        self.tried
            .lock()
            .expect("throttle lock")
            .insert((key.clone(), rate_key(ip)), Instant::now());
        self.spend(&self.per_client, key)
    }

    /// Counts a failure against both; returns the longer lockout if a budget is now spent.
    pub fn record_failure(&self, ip: IpAddr, client_id: &str) -> Option<u64> {
        let by_ip = self.record_ip_failure(ip);
        let by_client = self.record_client_failure(ip, client_id);
        by_ip.max(by_client)
    }

    /// Forgets expired lockouts, old tries and idle limiter keys.
    pub fn prune(&self) {
        let now = Instant::now();
        self.blocked
            .lock()
            .expect("throttle lock")
            .retain(|_, until| *until > now);
        let recovery = self.recovery;
        self.tried
            .lock()
            .expect("throttle lock")
            .retain(|_, at| *at + recovery > now);
        self.per_ip.retain_recent();
        self.per_client.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            api_rate_per_second: 10,
            api_burst: 10,
            auth_failures_per_ip: 3,
            auth_failures_per_client: 10,
            auth_failure_recovery_secs: 60,
        }
    }

    #[test]
    fn ip_is_locked_after_its_failure_budget_and_others_are_not() {
        let t = AuthThrottle::new(&limits());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(t.record_failure(a, "sgc_x"), None);
        }
        assert!(t.record_failure(a, "sgc_x").is_some());
        assert!(t.ip_blocked(a).is_some());
        assert_eq!(t.ip_blocked(b), None);
        assert_eq!(t.client_blocked("sgc_x"), None, "4 of its 10");
    }

    #[test]
    fn client_failures_do_not_spend_the_address_budget() {
        let t = AuthThrottle::new(&limits());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            assert_eq!(t.record_client_failure(a, "sgc_stale"), None);
        }
        assert!(t.record_client_failure(a, "sgc_stale").is_some());
        assert!(t.client_blocked("sgc_stale").is_some());
        assert_eq!(t.ip_blocked(a), None);
        assert_eq!(t.client_blocked("sgc_other"), None);
        assert!(t.tried_from(a, "sgc_stale").is_some());
        assert_eq!(
            t.tried_from("192.0.2.9".parse().unwrap(), "sgc_stale"),
            None
        );
    }

    #[test]
    fn an_ipv6_64_shares_one_failure_budget() {
        let t = AuthThrottle::new(&limits());
        for n in 1..=3 {
            let ip: IpAddr = format!("2001:db8:7:7::{n}").parse().unwrap();
            assert_eq!(t.record_ip_failure(ip), None);
        }
        assert!(t
            .record_ip_failure("2001:db8:7:7:ffff::1".parse().unwrap())
            .is_some());
        assert!(t
            .ip_blocked("2001:db8:7:7::abcd".parse().unwrap())
            .is_some());
        assert_eq!(t.ip_blocked("2001:db8:7:8::1".parse().unwrap()), None);
    }
}
