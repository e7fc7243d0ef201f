//! Throttling. The API is limited per client address (an IPv4 address or an
//! IPv6 /64, forwarded headers only from trusted proxies) with tower-governor,
//! and per credential: the bearer token is resolved to the credential it was
//! issued for, so respelling the header or minting another token does not buy
//! a fresh budget. Failed client authentications are limited much harder with
//! governor's GCRA, per client id and per address; once a key has used its
//! failure budget, what it refuses is described at [`AuthThrottle`]. Limiter
//! keys are pruned periodically (they are never evicted by themselves).
//!
//! With Redis configured ([`super::shared_limits`]), every budget is also
//! kept there, shared by all instances, behind the per-process governors
//! (the first line: what they refuse never reaches Redis). When Redis does
//! not answer, failure budgets fail closed ([`Refusal::Unavailable`]: no
//! secret or password is checked where a budget would be consulted) and API
//! limits fall back to the per-process ones. Refusals are counted in
//! `scopegate_throttled_total{limit, scope}`.

use super::client_ip::{client_ip, peer_of, rate_key};
use super::problem::Problem;
use super::shared_limits::{Budget, SharedLimits};
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

/// The refusals of request limits, by limit and by where they were decided.
fn count_throttled(limit: &'static str, scope: &'static str) {
    metrics::counter!("scopegate_throttled_total", "limit" => limit, "scope" => scope).increment(1);
}

/// The API limiters, built once so a pruning task can reach them.
pub struct ApiLimiters {
    pub per_ip: Arc<IpGovernor>,
    per_credential: DefaultKeyedRateLimiter<ApiKey>,
    /// SHA-256 of recently used tokens -> their credential id, so only a
    /// token's first request pays for a lookup here.
    token_credentials: Mutex<LruCache<[u8; 32], String>>,
    ip: ClientIpKey,
    shared: Option<Arc<SharedLimits>>,
    interval: Duration,
    burst: u32,
}

impl ApiLimiters {
    pub fn new(
        limits: &Limits,
        trusted: Arc<Vec<IpAddr>>,
        shared: Option<Arc<SharedLimits>>,
    ) -> Self {
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
            shared,
            interval: Duration::from_nanos(interval_ns),
            burst: limits.api_burst.max(1),
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

    /// The shared budgets of a request: its address's and, for the API, its
    /// credential's (or client's), taken together. `None`: allowed (or Redis
    /// is not configured or unavailable: the per-process limits stand alone).
    async fn shared_refusal(&self, client: IpAddr, key: Option<&ApiKey>) -> Option<Response> {
        let shared = self.shared.as_ref()?;
        let mut keys = vec![shared.key("api", "ip", client.to_string().as_bytes())];
        match key {
            Some(ApiKey::Credential(id)) => {
                keys.push(shared.key("api", "credential", id.as_bytes()))
            }
            Some(ApiKey::Client(ip)) => {
                keys.push(shared.key("api", "client", ip.to_string().as_bytes()))
            }
            None => {}
        }
        match shared.take(&keys, self.interval, self.burst).await {
            Ok(None) => None,
            Ok(Some((wait, worst))) => {
                let limit = if worst == 0 {
                    "requests_per_ip"
                } else {
                    "requests_per_credential"
                };
                count_throttled(limit, "shared");
                Some(Problem::too_many_requests(ceil_secs(wait)).into_response())
            }
            Err(_) => {
                count_throttled("requests", "fallback_local");
                None
            }
        }
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

/// Middleware: the per-credential API budget, then the shared per-address
/// and per-credential budgets (`from_fn_with_state`).
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
        count_throttled("requests_per_credential", "local");
        return Problem::too_many_requests(ceil_secs(wait)).into_response();
    }
    if let Some(client) = client {
        if let Some(refusal) = limiters.shared_refusal(client, Some(&key)).await {
            return refusal;
        }
    }
    next.run(req).await
}

/// Middleware: the shared per-address budget of the routes outside the API
/// (OAuth, settings), behind their per-process one (`from_fn_with_state`).
pub async fn limit_shared_per_ip(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let limiters = &state.api_limiters;
    if limiters.shared.is_some() {
        if let Some(client) = limiters.ip.of(&req) {
            if let Some(refusal) = limiters.shared_refusal(client, None).await {
                return refusal;
            }
        }
    }
    next.run(req).await
}

fn ceil_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

fn governor_problem(error: GovernorError) -> Response {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => {
            count_throttled("requests_per_ip", "local");
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

/// Why an attempt is refused by the failure budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A budget is spent: retry after this many seconds (429).
    Throttled(u64),
    /// Redis is configured but did not answer: the budget cannot be
    /// consulted, so the attempt is refused unchecked (503, fail closed).
    Unavailable,
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
///   failed for it is refused unchecked until it recovers ([`Self::locked_out`]).
///
/// Every check asks this process's state first and, when it does not
/// refuse, Redis; every failure is counted in both. With Redis configured
/// and unreachable, a check that would consult a budget answers
/// [`Refusal::Unavailable`].
pub struct AuthThrottle {
    /// `oauth_token` or `settings_login`: the metrics label and the Redis key space.
    limit: &'static str,
    per_ip: DefaultKeyedRateLimiter<FailureKey>,
    per_client: DefaultKeyedRateLimiter<FailureKey>,
    blocked: Mutex<HashMap<FailureKey, Instant>>,
    /// When an address last failed for a client key.
    tried: Mutex<HashMap<(FailureKey, IpAddr), Instant>>,
    recovery: Duration,
    burst_ip: u32,
    burst_client: u32,
    shared: Option<Arc<SharedLimits>>,
}

/// The Redis keys of one failure key: its GCRA state and its block mark.
struct SharedNames {
    tat: String,
    block: String,
}

impl AuthThrottle {
    pub fn new(limit: &'static str, limits: &Limits, shared: Option<Arc<SharedLimits>>) -> Self {
        let period = Duration::from_secs(limits.auth_failure_recovery_secs);
        let quota = |burst: u32| {
            Quota::with_period(period)
                .expect("positive")
                .allow_burst(NonZeroU32::new(burst).expect("positive"))
        };
        Self {
            limit,
            per_ip: RateLimiter::keyed(quota(limits.auth_failures_per_ip)),
            per_client: RateLimiter::keyed(quota(limits.auth_failures_per_client)),
            blocked: Mutex::new(HashMap::new()),
            tried: Mutex::new(HashMap::new()),
            recovery: period,
            burst_ip: limits.auth_failures_per_ip,
            burst_client: limits.auth_failures_per_client,
            shared,
        }
    }

    pub fn client_key(client_id: &str) -> FailureKey {
        let digest = Sha256::digest(client_id.as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        FailureKey::Client(key)
    }

    fn names(&self, shared: &SharedLimits, key: &FailureKey) -> SharedNames {
        let (kind, id) = match key {
            FailureKey::Ip(ip) => ("ip", ip.to_string().into_bytes()),
            FailureKey::Client(digest) => ("client", digest.to_vec()),
        };
        SharedNames {
            tat: shared.key(self.limit, &format!("{kind}:tat"), &id),
            block: shared.key(self.limit, &format!("{kind}:block"), &id),
        }
    }

    fn tried_name(&self, shared: &SharedLimits, client: &FailureKey, ip: IpAddr) -> String {
        let FailureKey::Client(digest) = client else {
            unreachable!("tries are kept per client key")
        };
        let mut id = digest.to_vec();
        id.extend(ip.to_string().as_bytes());
        shared.key(self.limit, "tried", &id)
    }

    fn refused(&self, refusal: Refusal, scope: &'static str) -> Option<Refusal> {
        count_throttled(self.limit, scope);
        Some(refusal)
    }

    fn local_blocked(&self, key: &FailureKey) -> Option<u64> {
        let now = Instant::now();
        self.blocked
            .lock()
            .expect("throttle lock")
            .get(key)
            .filter(|until| **until > now)
            .map(|until| ceil_secs(until.duration_since(now)))
    }

    /// Seconds to wait (in this process) if this address failed for this client key lately.
    fn local_tried(&self, client: &FailureKey, ip: IpAddr) -> Option<u64> {
        let now = Instant::now();
        self.tried
            .lock()
            .expect("throttle lock")
            .get(&(client.clone(), ip))
            .map(|at| *at + self.recovery)
            .filter(|until| *until > now)
            .map(|until| ceil_secs(until.duration_since(now)))
    }

    /// Whether every one of `keys` is marked in Redis; the shortest wait if so.
    async fn shared_all_marked(&self, keys: &[&str]) -> Result<Option<u64>, Refusal> {
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        let left = shared
            .remaining(keys)
            .await
            .map_err(|_| Refusal::Unavailable)?;
        Ok(left
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .and_then(|waits| waits.into_iter().min())
            .map(ceil_secs))
    }

    async fn blocked(&self, key: FailureKey) -> Option<Refusal> {
        if let Some(wait) = self.local_blocked(&key) {
            return self.refused(Refusal::Throttled(wait), "local");
        }
        let Some(shared) = &self.shared else {
            return None;
        };
        let names = self.names(shared, &key);
        match self.shared_all_marked(&[&names.block]).await {
            Ok(None) => None,
            Ok(Some(wait)) => self.refused(Refusal::Throttled(wait), "shared"),
            Err(refusal) => self.refused(refusal, "unavailable"),
        }
    }

    /// Whether this address is locked out now.
    pub async fn ip_blocked(&self, ip: IpAddr) -> Option<Refusal> {
        self.blocked(FailureKey::Ip(rate_key(ip))).await
    }

    /// Whether this client id (or account) is over its budget now.
    pub async fn client_blocked(&self, client_id: &str) -> Option<Refusal> {
        self.blocked(Self::client_key(client_id)).await
    }

    /// Whether this client id (or account) is over its budget *and* this
    /// address failed for it within the recovery period: such an address is
    /// not checked again until either passes (the shorter wait is given).
    pub async fn locked_out(&self, ip: IpAddr, client_id: &str) -> Option<Refusal> {
        let key = Self::client_key(client_id);
        let ip = rate_key(ip);
        if let (Some(locked), Some(tried)) = (self.local_blocked(&key), self.local_tried(&key, ip))
        {
            return self.refused(Refusal::Throttled(locked.min(tried)), "local");
        }
        let Some(shared) = &self.shared else {
            return None;
        };
        let names = self.names(shared, &key);
        let tried = self.tried_name(shared, &key, ip);
        match self.shared_all_marked(&[&names.block, &tried]).await {
            Ok(None) => None,
            Ok(Some(wait)) => self.refused(Refusal::Throttled(wait), "shared"),
            Err(refusal) => self.refused(refusal, "unavailable"),
        }
    }

    /// Counts one failure against `key` in this process; returns the lockout if its budget is now spent.
    fn spend_local(
        &self,
        limiter: &DefaultKeyedRateLimiter<FailureKey>,
        key: &FailureKey,
    ) -> Option<u64> {
        let not_until = limiter.check_key(key).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        self.blocked
            .lock()
            .expect("throttle lock")
            .insert(key.clone(), Instant::now() + wait);
        Some(ceil_secs(wait))
    }

    /// Counts a failure against the address and/or the client key, in this
    /// process and in Redis (one script); the longer lockout if a budget is now spent.
    async fn record(&self, ip: IpAddr, client: Option<&str>, count_ip: bool) -> Option<Refusal> {
        let ip = rate_key(ip);
        let client = client.map(Self::client_key);
        let mut local = None;
        if count_ip {
            local = self.spend_local(&self.per_ip, &FailureKey::Ip(ip));
        }
        if let Some(key) = &client {
            self.tried
                .lock()
                .expect("throttle lock")
                .insert((key.clone(), ip), Instant::now());
            local = local.max(self.spend_local(&self.per_client, key));
        }
        let shared_wait = match &self.shared {
            None => Ok(None),
            Some(shared) => {
                let mut budgets = Vec::new();
                if count_ip {
                    let names = self.names(shared, &FailureKey::Ip(ip));
                    budgets.push(Budget {
                        tat: names.tat,
                        block: names.block,
                        burst: self.burst_ip,
                    });
                }
                let tried = client.as_ref().map(|key| {
                    let names = self.names(shared, key);
                    budgets.push(Budget {
                        tat: names.tat,
                        block: names.block,
                        burst: self.burst_client,
                    });
                    self.tried_name(shared, key, ip)
                });
                shared
                    .spend(
                        &budgets,
                        self.recovery,
                        tried.as_deref().map(|t| (t, self.recovery)),
                    )
                    .await
                    .map(|wait| wait.map(ceil_secs))
            }
        };
        match (local, shared_wait) {
            (Some(l), Ok(Some(s))) => self.refused(Refusal::Throttled(l.max(s)), "local"),
            (Some(l), _) => self.refused(Refusal::Throttled(l), "local"),
            (None, Ok(Some(s))) => self.refused(Refusal::Throttled(s), "shared"),
            (None, Ok(None)) => None,
            (None, Err(_)) => self.refused(Refusal::Unavailable, "unavailable"),
        }
    }

    /// Counts a failure against the address only (an unknown client id, a malformed request).
    pub async fn record_ip_failure(&self, ip: IpAddr) -> Option<Refusal> {
        self.record(ip, None, true).await
    }

    /// Counts a failure against the client id only, remembering the address it came from.
    pub async fn record_client_failure(&self, ip: IpAddr, client_id: &str) -> Option<Refusal> {
        self.record(ip, Some(client_id), false).await
    }

    /// Counts a failure against both; returns the longer lockout if a budget is now spent.
    pub async fn record_failure(&self, ip: IpAddr, client_id: &str) -> Option<Refusal> {
        self.record(ip, Some(client_id), true).await
    }

    /// Forgets expired lockouts, old tries and idle limiter keys (Redis's expire by themselves).
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

    fn throttle() -> AuthThrottle {
        AuthThrottle::new("test", &limits(), None)
    }

    #[tokio::test]
    async fn ip_is_locked_after_its_failure_budget_and_others_are_not() {
        let t = throttle();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(t.record_failure(a, "sgc_x").await, None);
        }
        assert!(matches!(
            t.record_failure(a, "sgc_x").await,
            Some(Refusal::Throttled(_))
        ));
        assert!(t.ip_blocked(a).await.is_some());
        assert_eq!(t.ip_blocked(b).await, None);
        assert_eq!(t.client_blocked("sgc_x").await, None, "4 of its 10");
    }

    #[tokio::test]
    async fn client_failures_do_not_spend_the_address_budget() {
        let t = throttle();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            assert_eq!(t.record_client_failure(a, "sgc_stale").await, None);
        }
        assert!(t.record_client_failure(a, "sgc_stale").await.is_some());
        assert!(t.client_blocked("sgc_stale").await.is_some());
        assert_eq!(t.ip_blocked(a).await, None);
        assert_eq!(t.client_blocked("sgc_other").await, None);
        assert!(t.locked_out(a, "sgc_stale").await.is_some());
        assert_eq!(
            t.locked_out("192.0.2.9".parse().unwrap(), "sgc_stale")
                .await,
            None,
            "an address that has not failed for it is still checked"
        );
    }

    #[tokio::test]
    async fn an_ipv6_64_shares_one_failure_budget() {
        let t = throttle();
        for n in 1..=3 {
            let ip: IpAddr = format!("2001:db8:7:7::{n}").parse().unwrap();
            assert_eq!(t.record_ip_failure(ip).await, None);
        }
        assert!(t
            .record_ip_failure("2001:db8:7:7:ffff::1".parse().unwrap())
            .await
            .is_some());
        assert!(t
            .ip_blocked("2001:db8:7:7::abcd".parse().unwrap())
            .await
            .is_some());
        assert_eq!(t.ip_blocked("2001:db8:7:8::1".parse().unwrap()).await, None);
    }

    /// Redis configured but unreachable: every check that would consult a
    /// budget refuses (fail closed), while this process's refusals still come first.
    #[tokio::test]
    async fn unreachable_redis_fails_failure_budgets_closed() {
        use hmac::Mac;
        let names = <hmac::Hmac<Sha256> as Mac>::new_from_slice(b"k").unwrap();
        let shared = SharedLimits::new(&"redis://127.0.0.1:1/".to_string().into(), names).unwrap();
        let t = AuthThrottle::new("test", &limits(), Some(Arc::new(shared)));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(t.ip_blocked(a).await, Some(Refusal::Unavailable));
        assert_eq!(t.client_blocked("sgc_x").await, Some(Refusal::Unavailable));
        assert_eq!(t.locked_out(a, "sgc_x").await, Some(Refusal::Unavailable));
        assert_eq!(
            t.record_failure(a, "sgc_x").await,
            Some(Refusal::Unavailable)
        );
        for _ in 0..3 {
            t.record_ip_failure(a).await;
        }
        assert!(
            matches!(t.ip_blocked(a).await, Some(Refusal::Throttled(_))),
            "the per-process budget answers first"
        );
    }

    mod properties {
        use super::super::bearer_token;
        use axum::http::{header::AUTHORIZATION, HeaderMap, HeaderValue};
        use proptest::prelude::*;

        fn with_authorization(value: &[u8]) -> Option<HeaderMap> {
            let value = HeaderValue::from_bytes(value).ok()?;
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value);
            Some(headers)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn the_bearer_token_is_read_back_as_sent(token in "[!-~]{1,80}") {
                let headers = with_authorization(format!("Bearer {token}").as_bytes()).unwrap();
                prop_assert_eq!(bearer_token(&headers), Some(token.as_str()));
            }

            #[test]
            fn any_authorization_header_is_read_without_panicking(value in proptest::collection::vec(any::<u8>(), 0..100)) {
                if let Some(headers) = with_authorization(&value) {
                    if let Some(token) = bearer_token(&headers) {
                        prop_assert!(value.starts_with(b"Bearer "));
                        prop_assert_eq!(token, token.trim());
                    }
                }
            }
        }
    }
}
