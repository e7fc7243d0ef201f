//! Settings security: hardened session cookie and response headers, login
//! throttling with one generic error, idle timeout, CSRF refusal, and the
//! host application's hand-off (good, replayed, expired, forged).

use ed25519_dalek::SigningKey;
use scopegate::accounts::handoff::{self, Claims};
use scopegate::accounts::Role;
use scopegate::config::{Config, ConfigArgs};
use scopegate_e2e::settings::{add_login, login_response, session_cookie, AdminClient, PASSWORD};
use scopegate_e2e::{on_both_backends, small_seed, TestEnv};
use serde_json::Value;
use std::time::Duration;

fn config_with(env: &TestEnv, f: impl FnOnce(&mut ConfigArgs)) -> Config {
    let mut args = ConfigArgs {
        data_dir: Some(env.dir.path().to_path_buf()),
        database_url: Some(env.database_url.clone()),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        trusted_proxies: Some(vec!["127.0.0.1".parse().unwrap()]),
        metrics_listen: Some(scopegate::config::MetricsListen::Off),
        ..Default::default()
    };
    f(&mut args);
    Config::resolve(&args).expect("config")
}

async fn cookie_and_headers_are_hardened(env: TestEnv) {
    env.add_seeded_firm("f1", small_seed()).await;
    add_login(&env.registry, "f1", "admin@f1.example", Role::Admin).await;
    let app = env.spawn().await;
    let r = login_response(
        &app.http,
        &app.base,
        "f1",
        "admin@f1.example",
        PASSWORD,
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains("Secure"),
        "plain HTTP must not claim Secure: {set_cookie}"
    );
    assert!(r.headers().get("strict-transport-security").is_none());
    let page = app.http.get(app.url("/settings")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("http://") && !html.contains("https://"),
        "the page has inline script or an external asset"
    );
    // The stored session is a hash, never the cookie's id.
    let id = session_cookie(&r)
        .unwrap()
        .trim_start_matches("sg_session=")
        .to_string();
    let stored: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM admin_sessions WHERE id_sha256 = '{id}'"
    )))
    .fetch_one(env.registry.pool())
    .await
    .unwrap();
    assert_eq!(stored, 0);
    app.stop().await;

    // Behind TLS: Secure cookie and HSTS.
    let tls = config_with(&env, |a| {
        a.public_url = Some("https://settings.example".into())
    });
    let app = env.spawn_with(tls).await;
    let r = login_response(
        &app.http,
        &app.base,
        "f1",
        "admin@f1.example",
        PASSWORD,
        None,
    )
    .await;
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("; Secure"));
    assert!(r.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .contains("max-age="));
    app.stop().await;
}

async fn login_is_throttled_with_one_generic_error(env: TestEnv) {
    env.add_seeded_firm("f1", small_seed()).await;
    add_login(&env.registry, "f1", "admin@f1.example", Role::Admin).await;
    add_login(&env.registry, "f1", "other@f1.example", Role::Admin).await;
    // Per account: 3 failures from different addresses lock the account, not the others.
    let app = env
        .spawn_with(config_with(&env, |a| {
            a.auth_failures_per_ip = Some(100);
            a.auth_failures_per_client = Some(3);
        }))
        .await;
    let wrong = login_response(
        &app.http,
        &app.base,
        "f1",
        "admin@f1.example",
        "wrong password!!",
        Some("198.51.100.1"),
    )
    .await;
    let unknown = login_response(
        &app.http,
        &app.base,
        "f1",
        "nobody@f1.example",
        "wrong password!!",
        Some("198.51.100.1"),
    )
    .await;
    let no_firm = login_response(
        &app.http,
        &app.base,
        "nofirm",
        "admin@f1.example",
        PASSWORD,
        Some("198.51.100.1"),
    )
    .await;
    let mut details = Vec::new();
    for r in [wrong, unknown, no_firm] {
        assert_eq!(r.status(), 401);
        let body: Value = r.json().await.unwrap();
        details.push(body["detail"].as_str().unwrap().to_string());
    }
    assert!(
        details.iter().all(|d| d == &details[0]),
        "errors differ: {details:?}"
    );
    for i in 2..=3 {
        let r = login_response(
            &app.http,
            &app.base,
            "f1",
            "admin@f1.example",
            "wrong password!!",
            Some(&format!("198.51.100.{i}")),
        )
        .await;
        assert_eq!(r.status(), 401);
    }
    let r = login_response(
        &app.http,
        &app.base,
        "f1",
        "admin@f1.example",
        "wrong password!!",
        Some("198.51.100.9"),
    )
    .await;
    assert_eq!(r.status(), 429);
    // While the account is locked, an address that guessed is refused even
    // the right password; a clean address still gets in with it (see
    // tenant_trouble.rs: the lockout must not keep the admin out).
    let r = login_response(
        &app.http,
        &app.base,
        "f1",
        "admin@f1.example",
        PASSWORD,
        Some("198.51.100.9"),
    )
    .await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let r = login_response(
        &app.http,
        &app.base,
        "f1",
        "admin@f1.example",
        PASSWORD,
        Some("203.0.113.7"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = login_response(
        &app.http,
        &app.base,
        "f1",
        "other@f1.example",
        PASSWORD,
        Some("203.0.113.7"),
    )
    .await;
    assert_eq!(r.status(), 200, "another account is not locked");
    app.stop().await;

    // Per IP: failures across accounts lock the address, not other addresses.
    let app = env
        .spawn_with(config_with(&env, |a| {
            a.auth_failures_per_ip = Some(3);
            a.auth_failures_per_client = Some(100);
        }))
        .await;
    for i in 0..4 {
        let r = login_response(
            &app.http,
            &app.base,
            "f1",
            &format!("guess{i}@f1.example"),
            "wrong password!!",
            Some("192.0.2.50"),
        )
        .await;
        assert_eq!(r.status(), if i < 3 { 401 } else { 429 }, "attempt {i}");
    }
    let r = login_response(
        &app.http,
        &app.base,
        "f1",
        "admin@f1.example",
        PASSWORD,
        Some("192.0.2.50"),
    )
    .await;
    assert_eq!(r.status(), 429);
    let r = login_response(
        &app.http,
        &app.base,
        "f1",
        "admin@f1.example",
        PASSWORD,
        Some("192.0.2.51"),
    )
    .await;
    assert_eq!(r.status(), 200);
    app.stop().await;
}

async fn idle_sessions_time_out(env: TestEnv) {
    env.add_seeded_firm("f1", small_seed()).await;
    add_login(&env.registry, "f1", "admin@f1.example", Role::Admin).await;
    let app = env
        .spawn_with(config_with(&env, |a| a.session_idle_secs = Some(2)))
        .await;
    let admin = AdminClient::login(&app.base, "f1", "admin@f1.example").await;
    // Activity keeps it alive past the idle timeout...
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(admin.get("/admin/v1/me").await.status(), 200);
    }
    // ...and idleness ends it, for good.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(admin.get("/admin/v1/me").await.status(), 401);
    assert_eq!(admin.get("/admin/v1/me").await.status(), 401);
    app.stop().await;
}

async fn sessions_end_at_their_absolute_lifetime(env: TestEnv) {
    env.add_seeded_firm("f1", small_seed()).await;
    add_login(&env.registry, "f1", "admin@f1.example", Role::Admin).await;
    let app = env
        .spawn_with(config_with(&env, |a| {
            a.session_idle_secs = Some(2);
            a.session_max_secs = Some(3);
        }))
        .await;
    let admin = AdminClient::login(&app.base, "f1", "admin@f1.example").await;
    let started = std::time::Instant::now();
    let mut last_ok = Duration::ZERO;
    for _ in 0..16 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        match admin.get("/admin/v1/me").await.status().as_u16() {
            200 => last_ok = started.elapsed(),
            401 => break,
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        last_ok >= Duration::from_millis(2_000),
        "ended early, at {last_ok:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(4_600),
        "still alive past its lifetime"
    );
    assert_eq!(admin.get("/admin/v1/me").await.status(), 401);
    app.stop().await;
}

async fn state_changes_need_the_csrf_token(env: TestEnv) {
    env.add_seeded_firm("f1", small_seed()).await;
    add_login(&env.registry, "f1", "admin@f1.example", Role::Admin).await;
    let app = env.spawn().await;
    let admin = AdminClient::login(&app.base, "f1", "admin@f1.example").await;
    let enable = app.url("/admin/v1/connectors/accounting/enable");
    let none = app
        .http
        .post(&enable)
        .header("cookie", &admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 403);
    let wrong = app
        .http
        .post(&enable)
        .header("cookie", &admin.cookie)
        .header("x-csrf-token", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let body: Value = wrong.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("CSRF"));
    assert!(
        env.registry.grants(Some("f1")).await.unwrap().is_empty(),
        "nothing may change"
    );
    // Another session's token does not fit this session.
    let other = AdminClient::login(&app.base, "f1", "admin@f1.example").await;
    let mixed = app
        .http
        .post(&enable)
        .header("cookie", &admin.cookie)
        .header("x-csrf-token", &other.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(mixed.status(), 403);
    let logout = app
        .http
        .delete(app.url("/admin/v1/session"))
        .header("cookie", &admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 403);
    // A cross-site form post (not JSON) cannot log in.
    let form = app
        .http
        .post(app.url("/admin/v1/session"))
        .form(&[
            ("firm", "f1"),
            ("email", "admin@f1.example"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    // With the token it works, and logout ends the session.
    assert_eq!(
        admin
            .post("/admin/v1/connectors/accounting/enable", None)
            .await
            .status(),
        200
    );
    assert!(
        env.registry
            .grant("f1", "accounting")
            .await
            .unwrap()
            .enabled
    );
    assert_eq!(
        admin
            .send(reqwest::Method::DELETE, "/admin/v1/session", None)
            .await
            .status(),
        204
    );
    assert_eq!(admin.get("/admin/v1/me").await.status(), 401);
    app.stop().await;
}

fn claims(firm: &str, exp_in: i64) -> Claims {
    Claims {
        firm: firm.into(),
        email: "sipho@f1.example".into(),
        name: "Sipho Dlamini".into(),
        role: Role::FeeEarner,
        firm_user_id: Some("u-123".into()),
        exp: chrono::Utc::now().timestamp() + exp_in,
        nonce: uuid::Uuid::new_v4().to_string(),
    }
}

async fn handoff_assertions_are_single_use_signed_and_short(env: TestEnv) {
    env.add_seeded_firm("f1", small_seed()).await;
    let host_key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let public = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        host_key.verifying_key().to_bytes(),
    );
    let app = env
        .spawn_with(config_with(&env, |a| a.handoff_public_key = Some(public)))
        .await;
    let go = |assertion: String| {
        let http = app.http.clone();
        let url = app.url("/settings/handoff");
        async move {
            http.get(url)
                .query(&[("assertion", assertion)])
                .send()
                .await
                .unwrap()
        }
    };
    let good = handoff::sign(&host_key, &claims("f1", 60));
    let r = go(good.clone()).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/settings");
    let admin = AdminClient::from_response(&app.base, app.http.clone(), r).await;
    let me = admin.get_json("/admin/v1/me").await;
    assert_eq!(me["user"]["email"], "sipho@f1.example");
    assert_eq!(me["user"]["role"], "fee_earner");
    assert_eq!(me["user"]["firm_user_id"], "u-123");
    assert_eq!(me["user"]["has_password"], false);
    // A fee earner cannot switch connectors.
    assert_eq!(
        admin
            .post("/admin/v1/connectors/accounting/enable", None)
            .await
            .status(),
        403
    );

    let replay = go(good).await;
    assert_eq!(replay.status(), 401);
    assert!(session_cookie(&replay).is_none());
    let body: Value = replay.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("already used"),
        "{body}"
    );

    let expired = go(handoff::sign(&host_key, &claims("f1", -5))).await;
    assert_eq!(expired.status(), 401);
    let too_long = go(handoff::sign(&host_key, &claims("f1", 3600))).await;
    assert_eq!(too_long.status(), 401);
    let stranger = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let forged = go(handoff::sign(&stranger, &claims("f1", 60))).await;
    assert_eq!(forged.status(), 401);
    let body: Value = forged.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("signature"),
        "{body}"
    );
    // Editing the claims (say, to become an admin) breaks the signature.
    let genuine = handoff::sign(&host_key, &claims("f1", 60));
    let (_, sig) = genuine.split_once('.').unwrap();
    let mut admin_claims = claims("f1", 60);
    admin_claims.role = Role::Owner;
    let payload = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        serde_json::to_vec(&admin_claims).unwrap(),
    );
    assert_eq!(go(format!("{payload}.{sig}")).await.status(), 401);
    let unknown_firm = go(handoff::sign(&host_key, &claims("nofirm", 60))).await;
    assert_eq!(unknown_firm.status(), 401);
    assert_eq!(
        env.registry.users("f1").await.unwrap().len(),
        1,
        "only the good hand-off made a user"
    );
    app.stop().await;

    // Without a configured key, hand-off is refused.
    let app = env.spawn().await;
    let r = app
        .http
        .get(app.url("/settings/handoff"))
        .query(&[("assertion", handoff::sign(&host_key, &claims("f1", 60)))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}

on_both_backends!(
    cookie_and_headers_are_hardened,
    login_is_throttled_with_one_generic_error,
    idle_sessions_time_out,
    sessions_end_at_their_absolute_lifetime,
    state_changes_need_the_csrf_token,
    handoff_assertions_are_single_use_signed_and_short,
);
