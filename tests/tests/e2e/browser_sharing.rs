//! What is shared, at a glance, in a real browser: the integrations page
//! shows each connector's sharing chart (drawn by the gateway, with its text
//! alternative) and the minimisation choice, which an admin changes and then
//! finds in the consent history; the outbound viewer shows one row per call,
//! "Outcome unknown" where no result was recorded. Screenshots go to
//! `tests/artifacts/sharing-*.png`.

use scopegate::accounts::Role;
use scopegate::outbound_log::{Direction, NewSend};
use scopegate_e2e::google::enable_google;
use scopegate_e2e::settings::add_login;
use scopegate_e2e::webdriver::Browser;
use scopegate_e2e::{enable_with_credential, small_seed, Backend, TestEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_sees_the_sharing_chart_changes_a_choice_and_reads_calls() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.add_seeded_firm("harbour-law", small_seed()).await;
    add_login(
        &env.registry,
        "harbour-law",
        "admin@harbour.example",
        Role::Admin,
    )
    .await;
    let (client, secret) = enable_with_credential(&env.registry, "harbour-law", "accounting").await;
    enable_google(&env, "harbour-law").await;
    let app = env.spawn().await;
    let token = app.token(&client, &secret).await;
    for limit in [5, 3, 8] {
        let path = format!("/v1/transactions?limit={limit}");
        assert_eq!(app.get(&path, &token).await.status(), 200);
    }
    let grant = env
        .registry
        .grant("harbour-law", "accounting")
        .await
        .unwrap();
    // A call whose result was never recorded.
    app.state
        .log
        .record_send(NewSend {
            firm_id: "harbour-law".into(),
            grant_id: grant.id,
            connector: "accounting".into(),
            direction: Direction::Outbound,
            method: "GET".into(),
            target: "/v1/matters".into(),
            fields: vec!["id".into(), "number".into()],
            record_ids: vec!["m-unknown".into()],
            payload: b"{}".to_vec(),
        })
        .await
        .unwrap();

    let browser = Browser::start().await;
    browser.resize(1280, 2200).await;
    browser
        .log_in(
            &app.url("/settings"),
            "harbour-law",
            "admin@harbour.example",
        )
        .await;
    browser.wait_text("#connectors", "Accounting system").await;

    // The chart, with its text alternative (total and peak day).
    let chart = browser.find("#sharing-chart-accounting").await;
    let alt = browser.attribute(&chart, "alt").await.unwrap_or_default();
    assert!(
        alt.contains("records shared with Accounting system in the last 30 days; peak"),
        "{alt}"
    );
    let src = browser.attribute(&chart, "src").await.unwrap_or_default();
    assert!(
        src.starts_with("/admin/v1/connectors/accounting/sharing.svg"),
        "{src}"
    );
    browser
        .wait_text(
            "#sharing-accounting",
            "Records shared per day, last 30 days",
        )
        .await;
    let google = browser.find("#sharing-chart-google-calendar").await;
    let none = browser.attribute(&google, "alt").await.unwrap_or_default();
    assert!(
        none.starts_with("No records shared with Google Calendar"),
        "{none}"
    );
    // The choice control, on the manifest's default.
    let card = browser
        .wait_text("#connector-google-calendar", "Event title")
        .await;
    assert!(card.contains("Matter name (the event title)"), "{card}");
    browser
        .screenshot("sharing-01-integrations-chart-and-choice")
        .await;

    browser
        .click("#choice-google-calendar-event_title option[value=matter_number]")
        .await;
    browser
        .click("#choice-google-calendar-event_title-save")
        .await;
    browser.wait_text("#flash", "recorded as a consent").await;
    browser
        .wait_text(
            "#connector-google-calendar",
            "Matter number (the event title)",
        )
        .await;
    browser.screenshot("sharing-02-choice-changed").await;

    browser.click("[data-tab=ledger]").await;
    let ledger = browser.wait_text("#ledger-table", "Choice changed").await;
    assert!(ledger.contains("event title: matter number"), "{ledger}");
    assert!(
        ledger.contains("admin@harbour.example (settings)"),
        "{ledger}"
    );
    browser
        .screenshot("sharing-03-consent-history-choice")
        .await;

    // One row per call: three polls with their status and time taken, and the unknown one.
    browser.click("[data-tab=outbound]").await;
    let calls = browser
        .wait_text("#outbound-table", "Outcome unknown")
        .await;
    assert_eq!(
        browser.find_all_visible("#outbound-table tbody tr").await,
        4,
        "one row per call: {calls}"
    );
    assert_eq!(calls.matches("/v1/transactions").count(), 3, "{calls}");
    assert_eq!(calls.matches(" ms").count(), 3, "{calls}");
    assert!(!calls.contains("Result of"), "{calls}");
    browser.screenshot("sharing-04-one-row-per-call").await;
    browser.quit().await;
    app.stop().await;
}
