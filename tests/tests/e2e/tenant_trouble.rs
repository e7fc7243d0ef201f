//! One tenant's trouble never reaches another (issue 12): a vendor's stale
//! credential for one firm does not lock it out of its other firms, API
//! budgets follow the credential (not the spelling of its header, not a fresh
//! token) and an IPv6 client's /64, a locked settings account still takes its
//! right password, admin password hashing waits for the bounded permits, and a
//! firm whose own database is unreachable answers 503 problem+json quickly
//! while ten other firms are served as fast as before.

use scopegate::accounts::Role;
use scopegate::http::logins::PASSWORD_CHECKS_AT_ONCE;
use scopegate::tenancy::{provision_firm_database, seed};
use scopegate_e2e::proxy::{Cut, CutProxy};
use scopegate_e2e::settings::{add_login, login_response, AdminClient, PASSWORD};
use scopegate_e2e::{
    enable_with_credential, fresh_postgres_database, on_both_backends, small_seed, Backend,
    TestApp, TestEnv,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// POSTs a client-credentials token request from `ip` (via the trusted proxy header).
async fn token_request(
    app: &TestApp,
    ip: &str,
    client_id: &str,
    secret: &str,
) -> reqwest::Response {
    app.http
        .post(app.url("/oauth/token"))
        .header("X-Forwarded-For", ip)
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request")
}

/// GETs an API path from `ip` with a raw `Authorization` header value.
async fn api_get(app: &TestApp, ip: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut request = app
        .http
        .get(app.url("/v1/matters?limit=1"))
        .header("X-Forwarded-For", ip);
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    request.send().await.expect("api request")
}

fn tally(statuses: &[u16]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for s in statuses {
        *counts.entry(*s).or_insert(0) += 1;
    }
    counts
        .iter()
        .map(|(s, n)| format!("{n}x{s}"))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn stale_credential_of_one_firm_does_not_lock_out_the_others(env: TestEnv) {
    // 101 firms with the accounting connector on; their own databases are
    // never opened (a token needs only the registry).
    let mut credentials = Vec::new();
    for n in 0..101 {
        let firm = format!("firm-{n:03}");
        let url = format!(
            "sqlite://{}/never-opened-{firm}.db",
            env.dir.path().display()
        );
        env.registry
            .add_firm(&firm, &format!("Firm {n}"), &url)
            .await
            .expect("add firm");
        credentials.push(enable_with_credential(&env.registry, &firm, "accounting").await);
    }
    let (stale_id, stale_secret) = credentials[0].clone();
    env.registry
        .revoke_credential("firm-000", &stale_id)
        .await
        .expect("revoke");
    // Failure budgets at their defaults; the general API rate is not what this is about.
    let mut config = env.config();
    config.limits.api_rate_per_second = 10_000;
    config.limits.api_burst = 10_000;
    let app = env.spawn_with(config).await;
    let vendor = "198.51.100.77";

    let mut retries = Vec::new();
    for _ in 0..50 {
        retries.push(
            token_request(&app, vendor, &stale_id, &stale_secret)
                .await
                .status()
                .as_u16(),
        );
    }
    let mut others = Vec::new();
    for (client_id, secret) in &credentials[1..] {
        let r = token_request(&app, vendor, client_id, secret).await;
        others.push(r.status().as_u16());
    }
    println!(
        "50 retries of a revoked credential: {}; then 100 other firms' right credentials from the same IP: {}",
        tally(&retries),
        tally(&others)
    );
    assert_eq!(
        others.iter().filter(|s| **s == 200).count(),
        100,
        "every other firm's credential must still get a token"
    );
    assert!(retries.iter().all(|s| *s == 401), "{}", tally(&retries));

    // A flood of failures for one client id is still throttled...
    let r = token_request(&app, vendor, &stale_id, &stale_secret).await;
    assert_eq!(r.status(), 429, "the 51st failure of one client id");
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "slow_down");
    // ...and so is a spray of client ids this gateway never issued; neither
    // reaches the right credential of another firm from the same address.
    let mut sprayed = Vec::new();
    for _ in 0..6 {
        let unknown = scopegate::secrets::generate(scopegate::secrets::SecretKind::ClientId);
        let guess = scopegate::secrets::generate(scopegate::secrets::SecretKind::ClientSecret);
        sprayed.push(
            token_request(&app, vendor, &unknown, &guess)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(sprayed, vec![401, 401, 401, 401, 401, 429]);
    let (client_id, secret) = &credentials[1];
    assert_eq!(
        token_request(&app, vendor, client_id, secret)
            .await
            .status(),
        200
    );
    app.stop().await;
}

async fn api_budget_follows_the_credential(env: TestEnv) {
    env.add_seeded_firm("f1", small_seed()).await;
    let (client_id, secret) = enable_with_credential(&env.registry, "f1", "accounting").await;
    let mut config = env.config();
    config.limits.api_rate_per_second = 1;
    config.limits.api_burst = 3;
    let app = env.spawn_with(config).await;
    let token_of = |r: Value| r["access_token"].as_str().unwrap().to_string();
    let first = token_of(
        token_request(&app, "192.0.2.1", &client_id, &secret)
            .await
            .json()
            .await
            .unwrap(),
    );
    let second = token_of(
        token_request(&app, "192.0.2.2", &client_id, &secret)
            .await
            .json()
            .await
            .unwrap(),
    );
    // Spend the credential's burst (each request from its own address, so
    // only the per-credential budget is in play).
    for n in 0..3 {
        let r = api_get(
            &app,
            &format!("192.0.2.{}", 10 + n),
            Some(&format!("Bearer {first}")),
        )
        .await;
        assert_eq!(r.status(), 200, "request {n} within the burst");
    }
    // Respelling the header, or minting another token, is the same credential.
    let variants = [
        format!("Bearer  {first}"),
        format!("Bearer {first}\t"),
        format!("Bearer   {first}"),
        format!("Bearer {second}"),
        format!("Bearer  {second}"),
        format!("Bearer {second} "),
    ];
    let mut statuses = Vec::new();
    for (n, value) in variants.iter().enumerate() {
        let r = api_get(&app, &format!("192.0.2.{}", 20 + n), Some(value)).await;
        if r.status() == 429 {
            assert_eq!(r.headers()["content-type"], "application/problem+json");
            assert!(r.headers().contains_key("retry-after"));
        }
        statuses.push(r.status().as_u16());
    }
    println!(
        "after the burst, respelled headers and a second token: {}",
        tally(&statuses)
    );
    // The budget refills one request a second: allow at most one through.
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= variants.len() - 1,
        "{statuses:?}"
    );

    app.stop().await;
}

async fn an_ipv6_64_is_one_client(env: TestEnv) {
    let mut config = env.config();
    config.limits.api_rate_per_second = 1;
    config.limits.api_burst = 3;
    let app = env.spawn_with(config).await;
    // One /64 is one client (a host gets a whole /64); the next /64 is another.
    let mut same_64 = Vec::new();
    for n in 1..=8 {
        let ip = format!("2001:db8:1:2:{n:x}:{n:x}:{n:x}:{n:x}");
        same_64.push(api_get(&app, &ip, None).await.status().as_u16());
    }
    println!("8 addresses of one IPv6 /64 (burst 3): {}", tally(&same_64));
    assert!(
        same_64.iter().filter(|s| **s == 429).count() >= 4,
        "{same_64:?}"
    );
    assert_eq!(
        api_get(&app, "2001:db8:1:3::1", None).await.status(),
        401,
        "another /64 has its own budget"
    );
    app.stop().await;
}

async fn a_locked_account_still_takes_its_right_password(env: TestEnv) {
    env.add_seeded_firm("f1", small_seed()).await;
    add_login(&env.registry, "f1", "admin@f1.example", Role::Admin).await;
    let mut config = env.config();
    config.limits.auth_failures_per_ip = 100;
    config.limits.auth_failures_per_client = 3;
    let app = env.spawn_with(config).await;
    let login = |password: &'static str, ip: &'static str| {
        login_response(
            &app.http,
            &app.base,
            "f1",
            "admin@f1.example",
            password,
            Some(ip),
        )
    };
    // Someone guesses from four addresses: the account is now over its budget.
    let mut guesses = Vec::new();
    for ip in [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
    ] {
        guesses.push(login("wrong password!!", ip).await.status().as_u16());
    }
    assert_eq!(guesses, vec![401, 401, 401, 429]);
    // The admin, from her own address, still gets in with the right password.
    let r = login(PASSWORD, "203.0.113.7").await;
    println!(
        "right password from a clean address while the account is locked: {}",
        r.status()
    );
    assert_eq!(
        r.status(),
        200,
        "the lockout must not refuse the right password"
    );
    // The guessers are slowed: an address that already failed is not checked
    // again while the account is locked (not even with the right password)...
    for ip in ["198.51.100.1", "198.51.100.4"] {
        let r = login(PASSWORD, ip).await;
        assert_eq!(r.status(), 429, "{ip} already guessed");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        assert!(r.headers().contains_key("retry-after"));
        let body: Value = r.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains("retry after"),
            "{body}"
        );
    }
    // ...and a new address gets one guess, then the same.
    assert_eq!(login("wrong password!!", "192.0.2.80").await.status(), 429);
    assert_eq!(login(PASSWORD, "192.0.2.80").await.status(), 429);
    assert_eq!(login(PASSWORD, "192.0.2.81").await.status(), 200);
    app.stop().await;
}

async fn admin_password_hashing_waits_for_the_bounded_permits(env: TestEnv) {
    env.add_seeded_firm("f1", small_seed()).await;
    let owner = add_login(&env.registry, "f1", "owner@f1.example", Role::Owner).await;
    let target = add_login(&env.registry, "f1", "clerk@f1.example", Role::Bookkeeper).await;
    let app = env.spawn().await;
    let admin = AdminClient::login(&app.base, "f1", &owner.email).await;
    let new_user = json!({"email": "new@f1.example", "name": "New Person", "role": "fee_earner"});
    let reset = format!("/admin/v1/users/{}/reset-password", target.id);

    // Every password-hashing permit is taken (as by a flood of logins).
    let held = app
        .state
        .accounts
        .password_checks
        .acquire_many(PASSWORD_CHECKS_AT_ONCE as u32)
        .await
        .expect("permits");
    let started = std::time::Instant::now();
    let added = admin.post("/admin/v1/users", Some(new_user.clone())).await;
    let reset_busy = admin.post(&reset, None).await;
    println!(
        "with every hashing permit taken: add user {} and reset password {} after {:?}",
        added.status(),
        reset_busy.status(),
        started.elapsed()
    );
    for r in [added, reset_busy] {
        assert_eq!(r.status(), 503, "hashing must wait for a permit");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        assert!(r.headers().contains_key("retry-after"));
        let body: Value = r.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("busy"), "{body}");
    }
    assert_eq!(
        env.registry.users("f1").await.unwrap().len(),
        2,
        "nobody was added"
    );
    drop(held);
    let r = login_response(&app.http, &app.base, "f1", &target.email, PASSWORD, None).await;
    assert_eq!(r.status(), 200, "the old password still works");

    // With permits free both work, and their passwords log in.
    let added = admin.post("/admin/v1/users", Some(new_user)).await;
    assert_eq!(added.status(), 201);
    let body: Value = added.json().await.unwrap();
    let password = body["password"].as_str().unwrap();
    let r = login_response(&app.http, &app.base, "f1", "new@f1.example", password, None).await;
    assert_eq!(r.status(), 200);
    let r = admin.post(&reset, None).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let password = body["password"].as_str().unwrap();
    let r = login_response(&app.http, &app.base, "f1", &target.email, password, None).await;
    assert_eq!(r.status(), 200);
    app.stop().await;
}

on_both_backends!(
    stale_credential_of_one_firm_does_not_lock_out_the_others,
    api_budget_follows_the_credential,
    an_ipv6_64_is_one_client,
    a_locked_account_still_takes_its_right_password,
    admin_password_hashing_waits_for_the_bounded_permits,
    one_firms_database_down_leaves_the_others_alone,
);

/// How a firm's own database is taken away: on SQLite its file is moved aside
/// (the gateway opens firm databases lazily, so the next open fails); on
/// PostgreSQL the gateway reaches it through a proxy that hangs up or goes silent.
enum FirmOutage {
    File(std::path::PathBuf),
    Proxy(CutProxy),
}

impl FirmOutage {
    fn start(&self, cut: Cut) {
        match self {
            FirmOutage::File(path) => std::fs::rename(path, path.with_extension("away"))
                .expect("move the firm file aside"),
            FirmOutage::Proxy(proxy) => proxy.cut(cut),
        }
    }

    fn end(&self) {
        match self {
            FirmOutage::File(path) => {
                std::fs::rename(path.with_extension("away"), path).expect("move the firm file back")
            }
            FirmOutage::Proxy(proxy) => proxy.restore(),
        }
    }

    /// The ways this backend's database goes away.
    fn cuts(&self) -> Vec<Cut> {
        match self {
            FirmOutage::File(_) => vec![Cut::Refuse],
            FirmOutage::Proxy(_) => vec![Cut::Refuse, Cut::Silent],
        }
    }
}

/// Registers a seeded firm whose database the test can take away.
async fn firm_with_outage(env: &TestEnv, firm_id: &str) -> FirmOutage {
    let (direct, registered, outage) = match env.backend {
        Backend::Sqlite => {
            let url = scopegate::tenancy::default_firm_url(env.dir.path(), firm_id);
            let path = std::path::PathBuf::from(url.trim_start_matches("sqlite://"));
            (url.clone(), url, FirmOutage::File(path))
        }
        Backend::Postgres => {
            let url = fresh_postgres_database(firm_id).await;
            let (proxy, through) = CutProxy::for_postgres_url(&url).await;
            (url, through, FirmOutage::Proxy(proxy))
        }
    };
    let db = provision_firm_database(firm_id, &direct)
        .await
        .expect("firm database");
    seed::seed_demo(&db, small_seed()).await.expect("seed");
    // Closed, so a SQLite file is whole (no WAL beside it) when it is moved.
    db.pool().close().await;
    env.registry
        .add_firm(firm_id, &format!("Firm {firm_id}"), &registered)
        .await
        .expect("add firm");
    outage
}

/// A poll: (status, content type, detail of a problem, time taken).
async fn timed_poll(app: &TestApp, token: &str) -> (u16, String, String, Duration) {
    let started = Instant::now();
    let r = app.get("/v1/transactions?limit=5", token).await;
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let detail = body["detail"].as_str().unwrap_or_default().to_string();
    (status, content_type, detail, started.elapsed())
}

/// Three polls by each of `tokens`, the firms side by side; the latencies of all, sorted.
async fn poll_others(app: &TestApp, tokens: &[String]) -> Vec<Duration> {
    let per_firm = futures::future::join_all(tokens.iter().map(|token| async move {
        let mut took = Vec::new();
        for _ in 0..3 {
            let (status, _, detail, t) = timed_poll(app, token).await;
            assert_eq!(status, 200, "another firm's poll: {detail}");
            took.push(t);
        }
        took
    }))
    .await;
    let mut all: Vec<Duration> = per_firm.into_iter().flatten().collect();
    all.sort();
    all
}

fn median_max(sorted: &[Duration]) -> (Duration, Duration) {
    (sorted[sorted.len() / 2], *sorted.last().expect("latencies"))
}

async fn one_firms_database_down_leaves_the_others_alone(env: TestEnv) {
    const OTHERS: usize = 10;
    /// No answer about the troubled firm may take longer than this.
    const BOUND: Duration = Duration::from_secs(7);
    let outage = firm_with_outage(&env, "troubled").await;
    let (troubled_id, troubled_secret) =
        enable_with_credential(&env.registry, "troubled", "accounting").await;
    let mut others = Vec::new();
    for n in 0..OTHERS {
        let firm = format!("other-{n:02}");
        env.add_seeded_firm(&firm, small_seed()).await;
        others.push(enable_with_credential(&env.registry, &firm, "accounting").await);
    }
    let mut config = env.config();
    config.limits.api_rate_per_second = 10_000;
    config.limits.api_burst = 10_000;
    let app = env.spawn_with(config).await;
    let troubled = app.token(&troubled_id, &troubled_secret).await;
    let mut tokens = Vec::new();
    for (id, secret) in &others {
        tokens.push(app.token(id, secret).await);
    }
    if env.backend == Backend::Postgres {
        // The troubled firm's pool is open and warm when its database goes away.
        assert_eq!(timed_poll(&app, &troubled).await.0, 200);
    }
    let (base_median, base_max) = median_max(&poll_others(&app, &tokens).await);
    println!("{OTHERS} other firms before: median {base_median:?}, max {base_max:?}");

    for cut in outage.cuts() {
        outage.start(cut);
        let (troubled_polls, during) = tokio::join!(
            futures::future::join_all((0..4).map(|_| timed_poll(&app, &troubled))),
            poll_others(&app, &tokens),
        );
        let fee = app
            .http
            .post(app.url("/v1/fees"))
            .bearer_auth(&troubled)
            .header("Idempotency-Key", "during-the-outage")
            .json(&json!({"matter_id": "00000000-0000-4000-8000-000000000001", "amount_cents": 100, "currency": "ZAR", "description": "Fee", "fee_date": "2026-11-21"}))
            .send()
            .await
            .expect("fee");
        let (median, max) = median_max(&during);
        println!(
            "troubled firm's database {cut:?}: its polls {:?} in {:?} (\"{}\"), a fee post {}; {OTHERS} other firms meanwhile: median {median:?}, max {max:?}",
            troubled_polls.iter().map(|p| p.0).collect::<Vec<_>>(),
            troubled_polls.iter().map(|p| p.3).collect::<Vec<_>>(),
            troubled_polls[0].2,
            fee.status(),
        );
        for (status, content_type, detail, took) in &troubled_polls {
            assert_eq!(*status, 503, "the troubled firm's poll ({cut:?}): {detail}");
            assert_eq!(content_type, "application/problem+json");
            assert!(detail.contains("try again"), "{detail}");
            assert!(*took < BOUND, "the troubled firm's poll took {took:?}");
        }
        assert_eq!(
            fee.status(),
            503,
            "a fee post while the firm's database is away"
        );
        assert_eq!(fee.headers()["content-type"], "application/problem+json");
        assert!(
            max < base_max.max(Duration::from_millis(100)) * 5,
            "other firms slowed down: max {max:?} against {base_max:?} before"
        );

        outage.end();
        let back = Instant::now();
        loop {
            let (status, _, detail, _) = timed_poll(&app, &troubled).await;
            if status == 200 {
                break;
            }
            assert!(
                back.elapsed() < Duration::from_secs(15),
                "the troubled firm did not recover without a restart: {status} {detail}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "troubled firm's database back after {cut:?}: first 200 after {:?}",
            back.elapsed()
        );
    }
    app.stop().await;
}
