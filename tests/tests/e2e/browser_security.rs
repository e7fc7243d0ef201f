//! The security tab in a real browser: after a decoy credential is used, a
//! read-only vendor token tries to post a fee and a fee names another firm's
//! matter id, a firm admin opens Security and sees the three events, newest
//! first, naming the grant; a bookkeeper gets no such tab and the API refuses
//! them. The page is saved to `tests/artifacts/security-01-events.png`.

use scopegate::accounts::Role;
use scopegate_e2e::settings::{add_login, AdminClient};
use scopegate_e2e::webdriver::Browser;
use scopegate_e2e::{enable_with_credential, small_seed, Backend, TestEnv};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admin_sees_the_firms_security_events() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.add_seeded_firm("harbour-law", small_seed()).await;
    env.add_seeded_firm("other-law", small_seed()).await;
    let (client_id, secret) =
        enable_with_credential(&env.registry, "harbour-law", "accounting").await;
    let (other_id, other_secret) =
        enable_with_credential(&env.registry, "other-law", "accounting").await;
    add_login(
        &env.registry,
        "harbour-law",
        "admin@harbour.example",
        Role::Admin,
    )
    .await;
    add_login(
        &env.registry,
        "harbour-law",
        "books@harbour.example",
        Role::Bookkeeper,
    )
    .await;
    let app = env.spawn().await;

    // A decoy used, a probe, a foreign matter id.
    let decoy = env
        .registry
        .add_tripwire("harbour-law", "config backup")
        .await
        .unwrap();
    let refused = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(
            &decoy.client_id,
            Some(secrecy::ExposeSecret::expose_secret(&decoy.client_secret)),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let read_only: Value = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "transactions:read"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fee = |token: String, matter: String| {
        app.http
            .post(app.url("/v1/fees"))
            .bearer_auth(token)
            .header("Idempotency-Key", "k1")
            .json(&json!({"matter_id": matter, "amount_cents": 100, "currency": "ZAR", "description": "Fee", "fee_date": "2026-11-21"}))
            .send()
    };
    let probe = fee(
        read_only["access_token"].as_str().unwrap().to_string(),
        uuid::Uuid::new_v4().to_string(),
    )
    .await
    .unwrap();
    assert_eq!(probe.status(), 403);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let other = app.token(&other_id, &other_secret).await;
    let page: Value = app
        .get("/v1/matters?limit=1", &other)
        .await
        .json()
        .await
        .unwrap();
    let foreign = page["data"][0]["id"].as_str().unwrap().to_string();
    let token = app.token(&client_id, &secret).await;
    assert_eq!(fee(token, foreign).await.unwrap().status(), 422);
    let grant = env
        .registry
        .grant("harbour-law", "accounting")
        .await
        .unwrap();
    for _ in 0..100 {
        if env
            .registry
            .security_events("harbour-law", None, 10)
            .await
            .unwrap()
            .events
            .len()
            == 3
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The API: the firm's three, for a manager only.
    let admin = AdminClient::login(&app.base, "harbour-law", "admin@harbour.example").await;
    let events = admin.get_json("/admin/v1/security-events?limit=2").await;
    assert_eq!(events["events"].as_array().unwrap().len(), 2, "{events}");
    assert_eq!(events["events"][0]["kind"], "forged_id");
    let older = admin
        .get_json(&format!(
            "/admin/v1/security-events?before={}",
            events["next_before"].as_str().unwrap()
        ))
        .await;
    assert_eq!(older["events"][0]["kind"], "decoy_credential", "{older}");
    assert!(older["next_before"].is_null());
    let books = AdminClient::login(&app.base, "harbour-law", "books@harbour.example").await;
    assert_eq!(books.get("/admin/v1/security-events").await.status(), 403);
    assert_eq!(
        admin
            .get("/admin/v1/security-events?limit=0")
            .await
            .status(),
        422
    );

    let browser = Browser::start().await;
    browser.resize(1280, 900).await;
    browser
        .log_in(
            &app.url("/settings"),
            "harbour-law",
            "admin@harbour.example",
        )
        .await;
    browser.wait_text("#connectors", "Accounting system").await;
    browser.click("[data-tab=security]").await;
    let table = browser
        .wait_text("#security-events", "Decoy credential used")
        .await;
    assert!(table.contains("Out-of-scope probe"), "{table}");
    assert!(table.contains("Foreign or forged id"), "{table}");
    assert!(table.contains(&grant.id), "{table}");
    assert!(table.contains("config backup"), "{table}");
    assert_eq!(browser.find_all_visible(".security-event").await, 3);
    let first = browser.find(".security-event").await;
    assert_eq!(
        browser.attribute(&first, "data-kind").await.as_deref(),
        Some("forged_id")
    );
    browser.wait_text("#security-summary", "3 event(s)").await;
    browser.screenshot("security-01-events").await;
    browser.quit().await;

    // A bookkeeper's page has no security tab.
    let browser = Browser::start().await;
    browser
        .log_in(
            &app.url("/settings"),
            "harbour-law",
            "books@harbour.example",
        )
        .await;
    browser.wait_text("#who-firm", "Firm harbour-law").await;
    assert_eq!(browser.find_all_visible("[data-tab=security]").await, 0);
    browser.quit().await;
    app.stop().await;
}
