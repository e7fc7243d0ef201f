//! The settings page in a real browser (Debian's headless Chromium through
//! chromedriver): an admin logs in, switches accounting on and reads the
//! secret once, sees the consent entry, sees the vendor's poll appear in the
//! outbound viewer, switches accounting off and the vendor's token is
//! refused. Each step saves a screenshot to `tests/artifacts/`.
//! A fee earner connects their Google Calendar against the bundled emulator,
//! sees the sync, disconnects; an admin switches it off deleting the events.

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
        .wait_text("#outbound-empty", "No outbound calls")
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
    browser
        .log_in(&format!("{base}/settings"), "harbour-law", email)
        .await;
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

/// Kills the demo process when the test ends, passing or failing.
struct DemoProcess(std::process::Child);

impl Drop for DemoProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `scopegate` binary cargo built next to this test (`cargo test --workspace` builds it).
fn scopegate_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("scopegate");
    assert!(
        bin.exists(),
        "{} is missing: run the suite with `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// Starts `scopegate demo` exactly as the README says, reads the login it prints,
/// and logs in with it in the browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_login_works_in_the_browser() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(scopegate_binary())
        .args(["--listen", "127.0.0.1:0", "demo", "--demo-dir"])
        .arg(dir.path().join("demo"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start scopegate demo");
    let stdout = child.stdout.take().unwrap();
    let _demo = DemoProcess(child);
    let (mut base, mut password) = (String::new(), String::new());
    for line in BufReader::new(stdout).lines().take(200) {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("scopegate demo is running at ") {
            base = rest.split_whitespace().next().unwrap().to_string();
        }
        if line.contains("firm admin:") {
            password = line.rsplit("password ").next().unwrap().trim().to_string();
        }
        if line.contains("Stop with Ctrl-C") {
            break;
        }
    }
    assert!(
        base.starts_with("http://127.0.0.1:") && !password.is_empty(),
        "demo printed no login"
    );
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

/// `(matter name, description)` pairs of a user's live diary entries and of the emulator's live events.
async fn calendar_pairs(
    emulator: &scopegate_google_emulator::Emulator,
    db: &scopegate::tenancy::FirmDb,
    user: &str,
) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let mut entries: Vec<(String, String)> = scopegate_e2e::google::live_entries(db, user)
        .await
        .into_iter()
        .map(|(_, matter, description, ..)| (matter, description))
        .collect();
    let mut events: Vec<(String, String)> = emulator
        .live_events()
        .iter()
        .map(|e| {
            let text = |k: &str| e.event[k].as_str().unwrap_or_default().to_string();
            (text("summary"), text("description"))
        })
        .collect();
    entries.sort();
    events.sort();
    (entries, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fee_earner_connects_google_calendar_from_the_settings_page() {
    use scopegate_e2e::google::{
        busiest_user, eventually, google_args, google_setting, start_emulator,
    };
    let env = TestEnv::new(Backend::Sqlite).await;
    let db = env.add_seeded_firm("harbour-law", small_seed()).await;
    let earner = busiest_user(&db).await;
    add_login(
        &env.registry,
        "harbour-law",
        "admin@harbour.example",
        Role::Admin,
    )
    .await;
    env.registry
        .add_user(scopegate::accounts::users::NewUser {
            firm_id: "harbour-law",
            email: "lindiwe@harbour.example",
            name: "Lindiwe Earner",
            role: Role::FeeEarner,
            firm_user_id: Some(&earner),
            password: Some(PASSWORD),
        })
        .await
        .unwrap();
    let running = start_emulator().await;
    let emulator = running.emulator.clone();
    // Google redirects the browser to the gateway's real address, so the port is chosen first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args = google_args(&env, &running, 150);
    args.listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
    args.connector_settings.push(google_setting(
        "redirect_url",
        format!("http://127.0.0.1:{port}/oauth/google/callback"),
    ));
    let app = env
        .spawn_with(scopegate::config::Config::resolve(&args).unwrap())
        .await;
    let browser = Browser::start().await;

    // The admin switches Google Calendar on from the integrations page.
    log_in(&browser, &app.base, "admin@harbour.example").await;
    browser.click("#switch-google-calendar").await;
    browser.wait_text("#status-google-calendar", "On").await;
    browser.click("#logout").await;
    browser.wait_text("#login-error", "logged out").await;

    // The fee earner connects; the emulator approves and Google's redirect
    // brings the browser back to the page, which says so.
    log_in(&browser, &app.base, "lindiwe@harbour.example").await;
    browser.click("[data-tab=google-calendar]").await;
    browser
        .wait_text("#google-not-connected", "not connected")
        .await;
    browser.screenshot("settings-google-01-not-connected").await;
    browser.click("#google-connect").await;
    browser
        .wait_text("#flash", "Google Calendar is connected")
        .await;
    browser.wait_text("#google-connected", "Connected").await;
    assert_eq!(
        browser.active_id().await,
        "h-google-calendar",
        "focus lands on the Google section after the redirect"
    );
    browser.screenshot("settings-google-02-connected").await;

    // The sync worker runs; the page shows the events, and the emulator holds
    // exactly the fee earner's live diary entries.
    let live = scopegate_e2e::google::live_entries(&db, &earner)
        .await
        .len();
    assert!(live > 0, "the fee earner has diary entries");
    eventually("the sync put every live entry in the calendar", || async {
        let (entries, events) = calendar_pairs(&emulator, &db, &earner).await;
        entries == events
    })
    .await;
    eventually("the connection counts the events", || async {
        scopegate_e2e::google::Calendar::of(&app)
            .connection("harbour-law", &earner)
            .await
            .is_some_and(|c| c.events_count == live as i64 && c.last_sync_at.is_some())
    })
    .await;
    browser.click("[data-tab=integrations]").await;
    browser.click("[data-tab=google-calendar]").await;
    browser
        .wait_text("#google-me-events", &live.to_string())
        .await;
    let last_sync = browser
        .text(&browser.find("#google-me-last-sync").await)
        .await;
    assert!(!last_sync.contains("Not yet"), "{last_sync}");
    browser.screenshot("settings-google-03-synced").await;

    // Disconnect, deleting the events: revoked at Google, forgotten here; the
    // page offers to connect again.
    browser.click("#google-delete-events").await;
    browser.click("#google-disconnect").await;
    browser
        .wait_text("#flash", "access revoked at Google")
        .await;
    browser
        .wait_text("#flash", &format!("{live} events deleted"))
        .await;
    browser.find("#google-connect").await;
    assert_eq!(emulator.live_refresh_tokens(), 0);
    assert_eq!(emulator.live_events().len(), 0);
    let gone = scopegate_e2e::google::Calendar::of(&app)
        .connection("harbour-law", &earner)
        .await
        .unwrap();
    assert_eq!(gone.status, "disconnected");
    assert!(gone.refresh_token_sealed.is_none());
    browser.screenshot("settings-google-04-disconnected").await;

    // Connect again, then the admin switches Google Calendar off and has the
    // created events deleted.
    browser.click("#google-connect").await;
    browser.wait_text("#google-connected", "Connected").await;
    eventually("the sync ran again", || async {
        let (entries, events) = calendar_pairs(&emulator, &db, &earner).await;
        entries == events
    })
    .await;
    browser.click("#logout").await;
    browser.wait_text("#login-error", "logged out").await;
    log_in(&browser, &app.base, "admin@harbour.example").await;
    browser.click("[data-tab=google-calendar]").await;
    browser
        .wait_text("#google-fee-earners", "lindiwe@harbour.example")
        .await;
    browser
        .screenshot("settings-google-05-admin-overview")
        .await;
    browser.click("[data-tab=integrations]").await;
    browser.wait_text("#status-google-calendar", "On").await;
    // The tab re-renders the list once loaded; click again if the first click hit the old one.
    for _ in 0..20 {
        if browser.find_all_visible("#delete-events").await > 0 {
            break;
        }
        browser.click("#switch-google-calendar").await;
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    browser.find("#delete-events").await;
    assert_eq!(
        browser.active_id().await,
        "delete-events",
        "focus moves to the choice"
    );
    browser.keys(" ").await;
    browser
        .screenshot("settings-google-06-switch-off-choice")
        .await;
    browser.click("#confirm-switch-off").await;
    browser
        .wait_text("#switch-off-result", &format!("{live} events deleted"))
        .await;
    assert_eq!(browser.active_id().await, "switch-google-calendar");
    browser.wait_text("#status-google-calendar", "Off").await;
    assert_eq!(
        emulator.live_events().len(),
        0,
        "the created events are gone"
    );
    browser.screenshot("settings-google-07-switched-off").await;
    browser.quit().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn google_calendar_tab_says_when_the_operator_has_not_configured_it() {
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
    log_in(&browser, &app.base, "admin@harbour.example").await;
    browser.click("[data-tab=google-calendar]").await;
    browser
        .wait_text("#google-unconfigured", "has not configured it")
        .await;
    browser.screenshot("settings-google-00-unconfigured").await;
    browser.quit().await;
    app.stop().await;
}
