//! The settings page in a real browser (Debian's headless Chromium through
//! chromedriver): an admin logs in, switches accounting on and reads the
//! secret once, sees the consent entry, sees the vendor's poll appear in the
//! outbound viewer, switches accounting off and the vendor's token is
//! refused. Each step saves a screenshot to `tests/artifacts/`.
//! (The fee earner's Google Calendar connection is tested once the Google
//! Calendar connector is merged; see `gateway/src/http/admin/google.rs`.)

use scopegate::accounts::Role;
use scopegate_e2e::settings::{add_login, PASSWORD};
use scopegate_e2e::webdriver::Browser;
use scopegate_e2e::{small_seed, Backend, TestEnv};

const TAB: &str = "\u{E004}";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_runs_accounting_from_the_settings_page() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.add_seeded_firm("harbour-law", small_seed()).await;
    add_login(
        &env.registry,
        "harbour-law",
        "admin@harbour.example",
        Role::Admin,
    )
    .await;
    let app = env.spawn().await;
    let browser = Browser::start().await;

    // Log in, using the keyboard to move between fields.
    browser.goto(&app.url("/settings")).await;
    browser.find("#login-firm").await;
    browser.type_into("#login-firm", "harbour-law").await;
    browser.keys(TAB).await;
    assert_eq!(
        browser.active_id().await,
        "login-email",
        "Tab moves to the email field"
    );
    browser
        .type_into("#login-email", "admin@harbour.example")
        .await;
    browser
        .type_into("#login-password", "wrong password!")
        .await;
    browser.click("#login-submit").await;
    browser.wait_text("#login-error", "not right").await;
    browser.screenshot("settings-01-login-refused").await;
    browser.type_into("#login-password", PASSWORD).await;
    browser.keys("\u{E007}").await;
    browser.wait_text("#connectors", "Accounting system").await;
    let fields = browser
        .wait_text("#connector-accounting", "Amount in cents")
        .await;
    assert!(
        fields.contains("Transaction reference") && fields.contains("Matter reference"),
        "{fields}"
    );
    assert!(!fields.contains("internal_note"));
    browser.wait_text("#who-firm", "Firm harbour-law").await;
    browser.screenshot("settings-02-integrations-off").await;

    // Switch accounting on and issue a credential; the secret is shown once.
    let switch = browser.find("#switch-accounting").await;
    assert_eq!(
        browser.attribute(&switch, "aria-checked").await.as_deref(),
        Some("false")
    );
    browser.click("#switch-accounting").await;
    browser.wait_text("#status-accounting", "On").await;
    browser.click("#issue-accounting").await;
    let client_id = browser.wait_text("#new-client-id", "sgc_").await;
    let secret = browser
        .text(&browser.find("#new-client-secret").await)
        .await;
    assert!(secret.len() > 20, "secret shown: {secret:?}");
    assert_eq!(
        browser.active_id().await,
        "copy-secret",
        "focus moves to the copy button"
    );
    browser.screenshot("settings-03-secret-shown-once").await;

    // The consent ledger names who switched it on.
    browser.click("[data-tab=ledger]").await;
    let ledger = browser.wait_text("#ledger-table", "Switched on").await;
    assert!(
        ledger.contains("admin@harbour.example (settings)") && ledger.contains("version 1"),
        "{ledger}"
    );
    browser.screenshot("settings-04-consent-history").await;

    // The vendor polls with the credential; the call shows up in the viewer.
    let token = app.token(&client_id, &secret).await;
    assert_eq!(
        app.get("/v1/transactions?limit=3", &token).await.status(),
        200
    );
    browser.click("[data-tab=outbound]").await;
    let outbound = browser
        .wait_text("#outbound-table", "/v1/transactions")
        .await;
    assert!(
        outbound.contains("amount_cents") && outbound.contains("200"),
        "{outbound}"
    );
    browser.screenshot("settings-05-outbound-call").await;

    // Filtering by failed calls hides it.
    browser.find("#f-status").await;
    browser.click("#f-status option[value=error]").await;
    browser.click("#outbound-filter button[type=submit]").await;
    browser
        .wait_text("#outbound-empty", "No outbound records")
        .await;

    // Switch accounting off: the vendor's token is refused at once.
    browser.click("[data-tab=integrations]").await;
    browser.wait_text("#status-accounting", "On").await;
    browser.click("#switch-accounting").await;
    browser.wait_text("#status-accounting", "Off").await;
    browser.wait_text("#flash", "switched off").await;
    browser.screenshot("settings-06-switched-off").await;
    assert_eq!(
        app.get("/v1/transactions?limit=3", &token).await.status(),
        401
    );
    let token_again = app
        .http
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token_again.status(), 401);
    browser.click("[data-tab=ledger]").await;
    browser.wait_text("#ledger-table", "Switched off").await;

    // Log out: back to the login form, and the session is gone.
    browser.click("#logout").await;
    browser.wait_text("#login-error", "logged out").await;
    browser.quit().await;
    app.stop().await;
}

/// A newer accounting contract (version 2, matter references gain `opened_at`) in `dir`.
fn newer_contract(dir: &std::path::Path) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/accounting");
    let dst = dir.join("accounting");
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    let edit = |file: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let path = dst.join(file);
        let mut doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        f(&mut doc);
        std::fs::write(path, doc.to_string()).unwrap();
    };
    edit("manifest.json", &|m| m["contract_version"] = "2".into());
    edit("matter-ref.json", &|m| {
        m["properties"]["opened_at"] = serde_json::json!({"type": "string", "format": "date-time",
            "description": "Date the matter was opened", "x-column": "opened_at", "x-column-type": "unix-ms"})
    });
}

async fn log_in(browser: &Browser, base: &str, email: &str) {
    browser.goto(&format!("{base}/settings")).await;
    browser.type_into("#login-firm", "harbour-law").await;
    browser.type_into("#login-email", email).await;
    browser.type_into("#login-password", PASSWORD).await;
    browser.click("#login-submit").await;
    browser.wait_text("#connectors", "Accounting system").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fee_earner_reads_and_admin_reconsents_and_manages_users() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.add_seeded_firm("harbour-law", small_seed()).await;
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
        "thandi@harbour.example",
        Role::FeeEarner,
    )
    .await;
    scopegate_e2e::enable_with_credential(&env.registry, "harbour-law", "accounting").await;
    let schemas = tempfile::tempdir().unwrap();
    newer_contract(schemas.path());
    let mut config = env.config();
    config.schemas_dir = Some(schemas.path().to_path_buf());
    let app = env.spawn_with(config).await;
    let browser = Browser::start().await;

    // A fee earner sees what is shared but cannot switch it, nor see the audit tabs.
    log_in(&browser, &app.base, "thandi@harbour.example").await;
    let switch = browser.find("#switch-accounting").await;
    assert!(
        browser.attribute(&switch, "disabled").await.is_some(),
        "switch is read-only"
    );
    browser
        .wait_text("#status-accounting", "needs re-consent")
        .await;
    assert!(browser.find_all_visible("[data-tab=users]").await == 0);
    assert!(browser.find_all_visible("#reconsent-accounting").await == 0);
    browser.screenshot("settings-07-fee-earner-view").await;
    browser.click("#logout").await;
    browser.wait_text("#login-error", "logged out").await;

    // The admin sees exactly what changed, and re-consents.
    log_in(&browser, &app.base, "admin@harbour.example").await;
    let notice = browser
        .wait_text("#connector-accounting .notice", "version 1 to 2")
        .await;
    assert!(
        notice.contains("New field opened_at in Matter reference"),
        "{notice}"
    );
    browser
        .wait_text("#connector-accounting", "Date the matter was opened")
        .await;
    browser.screenshot("settings-08-reconsent-needed").await;
    browser.click("#reconsent-accounting").await;
    browser.wait_text("#status-accounting", "On").await;
    browser
        .wait_text(
            "#connector-accounting",
            "Consented to data contract version 2",
        )
        .await;

    // Users: add a bookkeeper; the generated password is shown once.
    browser.click("[data-tab=users]").await;
    browser
        .wait_text("#users-table", "thandi@harbour.example")
        .await;
    browser.type_into("#u-email", "books@harbour.example").await;
    browser.type_into("#u-name", "Bongani Books").await;
    browser.click("#u-role option[value=bookkeeper]").await;
    browser.click("#user-form button[type=submit]").await;
    browser
        .wait_text("#users-table", "books@harbour.example")
        .await;
    let password = browser
        .text(&browser.find("#new-user-password").await)
        .await;
    assert_eq!(password.len(), 20);
    browser.screenshot("settings-09-users").await;
    let r = scopegate_e2e::settings::login_response(
        &app.http,
        &app.base,
        "harbour-law",
        "books@harbour.example",
        &password,
        None,
    )
    .await;
    assert_eq!(r.status(), 200);

    // The narrow (phone) layout.
    browser.click("[data-tab=integrations]").await;
    browser.resize(390, 844).await;
    browser.wait_text("#status-accounting", "On").await;
    browser.screenshot("settings-10-narrow").await;
    browser.quit().await;
    app.stop().await;
}

/// Drives a running `scopegate demo` (not started by the suite): run the demo,
/// then `SCOPEGATE_DEMO_URL=... SCOPEGATE_DEMO_PASSWORD=... cargo test -p
/// scopegate-e2e --test browser_settings -- --ignored demo`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a running `scopegate demo`; see the doc comment"]
async fn demo_login_works_in_the_browser() {
    let base = std::env::var("SCOPEGATE_DEMO_URL").expect("SCOPEGATE_DEMO_URL");
    let password = std::env::var("SCOPEGATE_DEMO_PASSWORD").expect("SCOPEGATE_DEMO_PASSWORD");
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/settings")).await;
    browser.type_into("#login-firm", "harbour-law").await;
    browser
        .type_into("#login-email", "admin@harbour-law.example")
        .await;
    browser.type_into("#login-password", &password).await;
    browser.click("#login-submit").await;
    browser.wait_text("#status-accounting", "On").await;
    browser.wait_text("#credentials-accounting", "Active").await;
    browser.screenshot("demo-01-integrations").await;
    browser.click("[data-tab=ledger]").await;
    browser
        .wait_text("#ledger-table", "admin@harbour-law.example")
        .await;
    browser.click("[data-tab=outbound]").await;
    browser.find("#outbound-table").await;
    browser.screenshot("demo-02-outbound").await;
    browser.quit().await;
}
