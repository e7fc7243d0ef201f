//! Limits shared across instances (issue 10, item 5): two `scopegate serve`
//! processes on one PostgreSQL registry and one Redis, with failures and
//! requests split between them, keep one budget; and with Redis configured
//! but unreachable, failure budgets fail closed (503, nothing checked) while
//! API limits fall back to each process's own.
//!
//! Each phase comes from its own client address (X-Forwarded-For from the
//! trusted loopback proxy), so the budgets of one phase do not touch another's.

use crate::common::*;
use reqwest::{Client, Response, StatusCode};
use std::time::Instant;

/// Failure budgets and API limits small enough to reach in a test; the
/// loopback "proxy" is trusted so each phase can have its own address.
const LIMITS: &[(&str, &str)] = &[
    ("SCOPEGATE_AUTH_FAILURES_PER_IP", "4"),
    ("SCOPEGATE_AUTH_FAILURES_PER_CLIENT", "6"),
    ("SCOPEGATE_API_BURST", "8"),
    ("SCOPEGATE_API_RATE_PER_SECOND", "1"),
    ("SCOPEGATE_TRUSTED_PROXIES", "127.0.0.1"),
];

fn env<'a>(key: &'a str, redis: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("SCOPEGATE_MASTER_KEY", key),
        ("SCOPEGATE_REDIS_URL", redis),
    ];
    env.extend_from_slice(LIMITS);
    env
}

async fn token_request(http: &Client, base: &str, from: &str, id: &str, secret: &str) -> Response {
    http.post(format!("{base}/oauth/token"))
        .header("x-forwarded-for", from)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .expect("token request")
}

async fn login(http: &Client, base: &str, from: &str, password: &str) -> StatusCode {
    http.post(format!("{base}/admin/v1/session"))
        .header("x-forwarded-for", from)
        .json(&serde_json::json!({
            "firm": "alpha-law", "email": "amy@alpha.example", "password": password
        }))
        .send()
        .await
        .expect("login")
        .status()
}

#[test]
fn failures_split_between_two_instances_share_one_budget() {
    let Some(redis) = redis_url() else { return };
    let Some(url) = fresh_database("limits") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let with_db = |args: &[&str]| {
        let mut all = vec!["--database-url", url.as_str()];
        all.extend(args);
        ok(d, &all)
    };
    with_db(&["firm", "add", "--name", "Alpha Law", "--id", "alpha-law"]);
    with_db(&["firm", "seed-demo", "alpha-law", "--transactions", "10"]);
    with_db(&[
        "grant",
        "enable",
        "--firm",
        "alpha-law",
        "--connector",
        "accounting",
    ]);
    let creds = with_db(&[
        "credential",
        "issue",
        "--firm",
        "alpha-law",
        "--connector",
        "accounting",
    ]);
    let (client_id, secret) = (field(&creds, "client_id"), field(&creds, "client_secret"));
    add_login(
        d,
        Some(&url),
        "alpha-law",
        "amy@alpha.example",
        "correct horse battery staple",
    );
    let key = master_key();
    let a = Server::start(d, &env(&key, &redis), Some(&url));
    let b = Server::start(d, &env(&key, &redis), Some(&url));
    let both = [a.base.as_str(), b.base.as_str()];
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = Client::new();

        // 1. Unknown client ids from one address, alternating instances: each
        // instance sees at most 3 of the 5, under its own budget of 4, yet the
        // fifth is refused, and then the other instance refuses that address too.
        let from = "198.51.100.1";
        let mut statuses = Vec::new();
        for n in 0..5 {
            let r = token_request(&http, both[n % 2], from, &format!("nobody-{n}"), "x").await;
            statuses.push(r.status().as_u16());
        }
        println!("unknown client ids from one address, A/B alternating: {statuses:?}");
        assert_eq!(
            statuses,
            [401, 401, 401, 401, 429],
            "the shared address budget (4) did not hold"
        );
        let r = token_request(&http, both[1], from, "nobody-5", "x").await;
        assert_eq!(r.status(), 429, "B did not see A's lockout of the address");
        assert!(r.headers().contains_key("retry-after"));
        // A right secret is still taken from that address (known client ids are checked).
        let r = token_request(&http, both[1], from, &client_id, &secret).await;
        assert_eq!(
            r.status(),
            200,
            "a right secret was refused by the address lockout"
        );

        // 2. Wrong secrets for the issued client id, each from a new address,
        // alternating: the client id's shared budget (6) holds.
        let mut statuses = Vec::new();
        for n in 0..7 {
            let from = format!("198.51.100.{}", 10 + n);
            let r = token_request(&http, both[n % 2], &from, &client_id, "sgs_wrong").await;
            statuses.push(r.status().as_u16());
        }
        println!("wrong secrets for one client id, A/B alternating: {statuses:?}");
        assert_eq!(
            statuses,
            [401, 401, 401, 401, 401, 401, 429],
            "the shared client budget (6) did not hold"
        );
        let r = token_request(&http, both[0], "198.51.100.30", &client_id, &secret).await;
        assert_eq!(
            r.status(),
            200,
            "a right secret was refused by the client lockout"
        );
        let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string();

        // 3. API requests of one credential, each from a new address,
        // alternating: one burst of 8 between the two (each alone allows 8).
        let started = Instant::now();
        let mut statuses = Vec::new();
        for n in 0..12 {
            let r = http
                .get(format!("{}/v1/matters?limit=1", both[n % 2]))
                .header("x-forwarded-for", format!("198.51.100.{}", 40 + n))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
        }
        let refilled = started.elapsed().as_secs() as usize + 1;
        println!("API requests of one credential, A/B alternating: {statuses:?}");
        let served = statuses.iter().filter(|s| **s == 200).count();
        assert!(
            served >= 8 && served <= 8 + refilled,
            "served {served}: {statuses:?}"
        );
        assert!(statuses.contains(&429), "{statuses:?}");

        // 4. Settings logins: wrong passwords from one address, alternating.
        let mut statuses = Vec::new();
        for n in 0..5 {
            statuses.push(
                login(&http, both[n % 2], "198.51.100.60", "wrong password")
                    .await
                    .as_u16(),
            );
        }
        println!("wrong passwords from one address, A/B alternating: {statuses:?}");
        assert_eq!(
            statuses,
            [401, 401, 401, 401, 429],
            "the shared login budget (4) did not hold"
        );
        assert_eq!(
            login(
                &http,
                both[1],
                "198.51.100.60",
                "correct horse battery staple"
            )
            .await,
            429
        );
        assert_eq!(
            login(
                &http,
                both[1],
                "198.51.100.61",
                "correct horse battery staple"
            )
            .await,
            200
        );

        let scrape = http
            .get(format!("{}/metrics", a.metrics_base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metric(&scrape, "scopegate_throttled_total", &[("scope", "shared")]) >= Some(1.0),
            "{scrape}"
        );
    });
    // What Redis holds names no client id, firm, account or address.
    let mut redis = redis::Client::open(redis.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("scopegate:*")
        .query(&mut redis)
        .unwrap();
    assert!(
        keys.iter().any(|k| k.starts_with("scopegate:oauth_token:")),
        "{keys:?}"
    );
    for key in &keys {
        for clear in [client_id.as_str(), "alpha-law", "amy@", "198.51.100."] {
            assert!(!key.contains(clear), "{key} names {clear}");
        }
    }
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

#[test]
fn unreachable_redis_fails_failure_budgets_closed_and_the_api_falls_back_to_local_limits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let creds = accounting_vendor(d, "alpha-law");
    let (client_id, secret) = (field(&creds, "client_id"), field(&creds, "client_secret"));
    add_login(
        d,
        None,
        "alpha-law",
        "amy@alpha.example",
        "correct horse battery staple",
    );
    let key = master_key();
    // Nothing listens on port 1: every shared check fails at once.
    let mut env = env(&key, "redis://127.0.0.1:1/");
    env.push(("SCOPEGATE_API_BURST", "3"));
    let server = Server::start(d, &env, None);
    let base = server.base.as_str();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = Client::new();
        // Failure budgets fail closed: an unknown client id and a wrong secret
        // are refused with 503, unchecked and uncounted; a right secret works.
        let r = token_request(&http, base, "198.51.100.1", "nobody", "x").await;
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key("retry-after"));
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
        let r = token_request(&http, base, "198.51.100.2", &client_id, "sgs_wrong").await;
        assert_eq!(r.status(), 503);
        let r = token_request(&http, base, "198.51.100.3", &client_id, &secret).await;
        assert_eq!(r.status(), 200, "a right secret must not need Redis");
        let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        // Logins wait: no password is checked without the budgets.
        assert_eq!(
            login(&http, base, "198.51.100.4", "correct horse battery staple").await,
            503
        );
        // The API is served, limited by this process alone (burst 3).
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let r = http
                .get(format!("{base}/v1/matters?limit=1"))
                .header("x-forwarded-for", "198.51.100.5")
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
        }
        println!("API with Redis unreachable: {statuses:?}");
        assert_eq!(statuses, [200, 200, 200, 429]);
        let scrape = http
            .get(format!("{}/metrics", server.metrics_base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = |labels: &[(&str, &str)]| metric(&scrape, "scopegate_throttled_total", labels);
        assert!(value(&[("scope", "unavailable")]) >= Some(4.0), "{scrape}");
        // Three token requests, the login and the three API requests Redis did not limit.
        assert_eq!(value(&[("scope", "fallback_local")]), Some(7.0), "{scrape}");
        assert!(
            metric(&scrape, "scopegate_redis_errors_total", &[]) >= Some(1.0),
            "{scrape}"
        );
    });
    let log = server.log_text();
    assert!(log.contains("Redis for shared limits"), "{log}");
    assert!(server.terminate().success());
}
