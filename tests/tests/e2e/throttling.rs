//! Brute force and rate limits: an address spraying unknown client ids is
//! locked out after the configured number of failures while issued
//! credentials (from any address) still work; guessing one client id is
//! throttled per client id; the API answers 429 with Retry-After past its burst.

use scopegate_e2e::{enable_with_credential, small_seed, Backend, TestEnv};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guessing_is_throttled_per_ip_and_the_owner_still_gets_in() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let (client_id, secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let mut config = env.config();
    config.limits.auth_failures_per_ip = 3;
    config.limits.auth_failures_per_client = 20;
    let app = env.spawn_with(config).await;
    let attempt = |ip: &'static str, client_id: String, secret: String| {
        app.http
            .post(app.url("/oauth/token"))
            .header("X-Forwarded-For", ip)
            .basic_auth(client_id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    use scopegate::secrets::{generate, SecretKind};
    let wrong = generate(SecretKind::ClientSecret);
    // An address spraying client ids this gateway never issued spends its budget.
    for n in 0..3 {
        let r = attempt(
            "198.51.100.10",
            generate(SecretKind::ClientId),
            wrong.clone(),
        )
        .await
        .unwrap();
        assert_eq!(
            r.status(),
            401,
            "failure {n} should still be an ordinary 401"
        );
    }
    let r = attempt(
        "198.51.100.10",
        generate(SecretKind::ClientId),
        wrong.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 429);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    // Locked out: unknown client ids from this IP are not even looked at...
    assert_eq!(
        attempt(
            "198.51.100.10",
            generate(SecretKind::ClientId),
            secret.clone()
        )
        .await
        .unwrap()
        .status(),
        429
    );
    // ...but a credential this gateway issued is still checked there: its
    // right secret gets a token (the spray must not lock out the firms behind
    // the same address) and a wrong one is an ordinary failure of that client id.
    assert_eq!(
        attempt("198.51.100.10", client_id.clone(), secret.clone())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        attempt("198.51.100.10", client_id.clone(), wrong.clone())
            .await
            .unwrap()
            .status(),
        401
    );
    // The owner, from another IP, still gets a token.
    let ok = attempt("203.0.113.5", client_id.clone(), secret.clone())
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert!(body["access_token"].as_str().unwrap().starts_with("sga_"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guessing_one_client_from_many_ips_is_throttled_per_client() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let (client_id, _secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let mut config = env.config();
    config.limits.auth_failures_per_ip = 100;
    config.limits.auth_failures_per_client = 5;
    let app = env.spawn_with(config).await;
    let mut statuses = Vec::new();
    for n in 0..7 {
        let r = app
            .http
            .post(app.url("/oauth/token"))
            .header("X-Forwarded-For", format!("192.0.2.{n}"))
            .basic_auth(&client_id, Some("sgs_guess"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, vec![401, 401, 401, 401, 401, 429, 429]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_requests_past_the_burst_get_429_problem() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let (client_id, secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let mut config = env.config();
    config.limits.api_rate_per_second = 1;
    config.limits.api_burst = 5;
    let app = env.spawn_with(config).await;
    let token = app.token(&client_id, &secret).await;
    let mut last = None;
    for _ in 0..12 {
        let r = app.get("/v1/matters?limit=1", &token).await;
        if r.status() == 429 {
            last = Some(r);
            break;
        }
    }
    let r = last.expect("throttled within 12 requests");
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    app.stop().await;
}
