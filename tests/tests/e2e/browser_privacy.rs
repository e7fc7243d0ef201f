//! The privacy office's tab in a real browser (headless Chromium): a vendor
//! polls transactions; the firm's admin opens "Privacy office", asks who
//! received data about one client (the accounting vendor, with its
//! credential), then lists the clients to notify for the accounting grant,
//! with a CSV download. A fee earner does not see the tab. Screenshots go to
//! `tests/artifacts/`.

use scopegate::accounts::Role;
use scopegate_e2e::settings::add_login;
use scopegate_e2e::webdriver::Browser;
use scopegate_e2e::{enable_with_credential, small_seed, Backend, TestEnv};

const FIRM: &str = "harbour-law";

async fn log_in(browser: &Browser, url: &str, email: &str) {
    browser.log_in(url, FIRM, email).await;
    browser.wait_text("#connectors", "Accounting system").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_privacy_office_answers_who_received_what_and_whom_to_notify() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let db = env.add_seeded_firm(FIRM, small_seed()).await;
    add_login(&env.registry, FIRM, "dpo@harbour.example", Role::Admin).await;
    add_login(&env.registry, FIRM, "fee@harbour.example", Role::FeeEarner).await;
    let (client_id, secret) = enable_with_credential(&env.registry, FIRM, "accounting").await;
    let app = env.spawn().await;
    let token = app.token(&client_id, &secret).await;
    let page: serde_json::Value = app
        .get("/v1/transactions?limit=5", &token)
        .await
        .json()
        .await
        .unwrap();
    // The vendor is shown its grant's id; the firm's database has the real one.
    let shown = page["data"][0]["id"].as_str().unwrap();
    let transaction = app.real_id(FIRM, "accounting", shown).await;
    let (client, name): (String, String) = sqlx::query_as(
        "SELECT c.id, c.full_name FROM accounting_transactions t JOIN matters m ON m.id = t.matter_id JOIN clients c ON c.id = m.client_id WHERE t.id = $1",
    )
    .bind(&transaction)
    .fetch_one(db.pool())
    .await
    .unwrap();

    let browser = Browser::start().await;
    log_in(&browser, &app.url("/settings"), "dpo@harbour.example").await;
    browser.click("[data-tab=privacy]").await;
    browser.find("#d-id").await;
    browser.type_into("#d-id", &client).await;
    browser.click("#disclosures-submit").await;
    let table = browser.wait_text("#disclosures-table", "accounting").await;
    assert!(
        table.contains(&client_id),
        "the vendor's credential is named: {table}"
    );
    assert!(table.contains("amount_cents"), "{table}");
    let summary = browser
        .wait_text("#disclosures-summary", "1 recipient")
        .await;
    assert!(summary.contains(&client), "{summary}");
    browser.screenshot("privacy-01-disclosures").await;

    browser.click("#breach-submit").await;
    let notify = browser.wait_text("#breach-table", &name).await;
    assert!(notify.contains("amount_cents"), "{notify}");
    let csv = browser.find("#breach-csv").await;
    let href = browser.attribute(&csv, "href").await.unwrap_or_default();
    assert!(
        href.contains("format=csv") && href.contains("channel=grant"),
        "{href}"
    );
    browser.scroll_to("#breach-form").await;
    browser.screenshot("privacy-02-breach-scope").await;

    // A fee earner has no privacy office tab.
    browser.click("#logout").await;
    browser.find("#login-firm").await;
    log_in(&browser, &app.url("/settings"), "fee@harbour.example").await;
    assert_eq!(browser.find_all_visible("[data-tab=privacy]").await, 0);
    browser.quit().await;
}
