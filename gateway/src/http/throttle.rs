//! Throttling. The API is limited by tower-governor per credential (keyed by
//! a hash of the bearer token, never the token) and per client IP. Failed
//! client authentications are limited much harder, per IP and per client_id,
//! with governor's GCRA: once a key has used its failure budget it gets 429
//! with `Retry-After` without its secret even being checked. Limiter keys are
//! pruned periodically (they are never evicted by themselves).

use super::client_ip::{client_ip, peer_of};
use super::problem::Problem;
use crate::config::Limits;
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};

/// Keys API requests by client IP (forwarded headers only from trusted proxies).
#[derive(Clone, Debug)]
pub struct ClientIpKey {
    pub trusted: Arc<Vec<IpAddr>>,
}

impl KeyExtractor for ClientIpKey {
    type Key = IpAddr;
    fn extract<T>(&self, req: &Request<T>) -> Result<IpAddr, GovernorError> {
        let peer = peer_of(req).ok_or(GovernorError::UnableToExtractKey)?;
        Ok(client_ip(peer, req.headers(), &self.trusted))
    }
}

/// Keys API requests by credential: SHA-256 of the bearer token (or of the
/// Basic client id), falling back to the client IP for anonymous requests.
#[derive(Clone, Debug)]
pub struct CredentialKey {
    pub ip: ClientIpKey,
}

impl KeyExtractor for CredentialKey {
    type Key = [u8; 16];
    fn extract<T>(&self, req: &Request<T>) -> Result<[u8; 16], GovernorError> {
        let material = match req
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            Some(value) => value.trim().as_bytes().to_vec(),
            None => self.ip.extract(req)?.to_string().into_bytes(),
        };
        let digest = Sha256::digest(material);
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        Ok(key)
    }
}

pub type IpGovernor = GovernorConfig<
    ClientIpKey,
    governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>,
>;
pub type CredentialGovernor = GovernorConfig<
    CredentialKey,
    governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>,
>;

/// The API limiters, built once so a pruning task can reach them.
#[derive(Clone)]
pub struct ApiLimiters {
    pub per_ip: Arc<IpGovernor>,
    pub per_credential: Arc<CredentialGovernor>,
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
        let per_credential = GovernorConfigBuilder::default()
            .per_nanosecond(interval_ns)
            .burst_size(limits.api_burst)
            .key_extractor(CredentialKey { ip })
            .finish()
            .expect("positive limits");
        Self {
            per_ip: Arc::new(per_ip),
            per_credential: Arc::new(per_credential),
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

    pub fn credential_layer(
        &self,
    ) -> GovernorLayer<
        CredentialKey,
        governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>,
        axum::body::Body,
    > {
        GovernorLayer::new(self.per_credential.clone()).error_handler(governor_problem)
    }

    pub fn prune(&self) {
        self.per_ip.limiter().retain_recent();
        self.per_credential.limiter().retain_recent();
    }
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
    Ip(IpAddr),
    /// SHA-256 prefix of the presented client id (never the secret).
    Client([u8; 16]),
}

/// Failed-authentication budgets per IP and per client id.
pub struct AuthThrottle {
    per_ip: DefaultKeyedRateLimiter<FailureKey>,
    per_client: DefaultKeyedRateLimiter<FailureKey>,
    blocked: Mutex<HashMap<FailureKey, Instant>>,
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
        }
    }

    pub fn client_key(client_id: &str) -> FailureKey {
        let digest = Sha256::digest(client_id.as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        FailureKey::Client(key)
    }

    /// Seconds to wait if this IP or client id is locked out now.
    pub fn blocked_for(&self, ip: IpAddr, client_id: Option<&str>) -> Option<u64> {
        let now = Instant::now();
        let blocked = self.blocked.lock().expect("throttle lock");
        let mut keys = vec![FailureKey::Ip(ip)];
        keys.extend(client_id.map(Self::client_key));
        keys.iter()
            .filter_map(|k| blocked.get(k))
            .filter(|until| **until > now)
            .map(|until| until.duration_since(now).as_secs() + 1)
            .max()
    }

    /// Counts one failure; returns the lockout in seconds if a budget is now spent.
    pub fn record_failure(&self, ip: IpAddr, client_id: Option<&str>) -> Option<u64> {
        let clock = DefaultClock::default();
        let mut lockout = None;
        let mut checks = vec![(&self.per_ip, FailureKey::Ip(ip))];
        if let Some(id) = client_id {
            checks.push((&self.per_client, Self::client_key(id)));
        }
        for (limiter, key) in checks {
            if let Err(not_until) = limiter.check_key(&key) {
                let wait = not_until.wait_time_from(clock.now());
                self.blocked
                    .lock()
                    .expect("throttle lock")
                    .insert(key, Instant::now() + wait);
                lockout = Some(lockout.unwrap_or(0).max(wait.as_secs() + 1));
            }
        }
        lockout
    }

    /// Forgets expired lockouts and idle limiter keys.
    pub fn prune(&self) {
        let now = Instant::now();
        self.blocked
            .lock()
            .expect("throttle lock")
            .retain(|_, until| *until > now);
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
            assert_eq!(t.record_failure(a, Some("sgc_x")), None);
        }
        assert!(t.record_failure(a, Some("sgc_x")).is_some());
        assert!(t.blocked_for(a, None).is_some());
        assert_eq!(t.blocked_for(b, Some("sgc_x")), None);
    }
}
