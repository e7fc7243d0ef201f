//! Minimisation choices: a firm switches Google Calendar's event title from
//! the matter name to the matter number on the integrations page. The choice
//! is a consent event (ledger entry by whom, with the choices and the hash of
//! schema and choices), the events already in Google get the number as their
//! title on the next pass, and no matter name leaves in any payload after.

use scopegate::accounts::Role;
use scopegate_e2e::google::*;
use scopegate_e2e::settings::{add_login, AdminClient};
use scopegate_e2e::{on_both_backends, small_seed, TestEnv};
use serde_json::{json, Value};
use sqlx::Row;

const FIRM: &str = "harbour";

async fn matter_number_replaces_the_matter_name_everywhere_it_leaves(env: TestEnv) {
    let running = start_emulator().await;
    let emulator = running.emulator.clone();
    let db = env.add_seeded_firm(FIRM, small_seed()).await;
    add_login(&env.registry, FIRM, "admin@harbour.example", Role::Admin).await;
    enable_google(&env, FIRM).await;
    let app = env.spawn_with(google_config(&env, &running, 50)).await;
    let user = busiest_user(&db).await;
    let admin = AdminClient::login(&app.base, FIRM, "admin@harbour.example").await;

    // A firm that never chose has the manifest's default.
    let list = admin.get_json("/admin/v1/connectors").await;
    let google = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "google-calendar")
        .unwrap()
        .clone();
    assert_eq!(google["choices"][0]["name"], "event_title");
    assert_eq!(google["choices"][0]["chosen"], "matter_name");

    assert_eq!(
        connect_user(&app, FIRM, &user, "fee.earner@gmail.example").await,
        200
    );
    let live = live_entries(&db, &user).await;
    let names: Vec<String> = live.iter().map(|e| e.1.clone()).collect();
    eventually("the first sync completes", || async {
        Calendar::of(&app)
            .connection(FIRM, &user)
            .await
            .is_some_and(|c| c.events_count == live.len() as i64)
    })
    .await;
    assert!(emulator
        .live_events()
        .iter()
        .all(|e| names.contains(&e.event["summary"].as_str().unwrap().to_string())));

    // Bad input: an unknown choice, an option not offered; nothing changes.
    let refused = admin
        .put(
            "/admin/v1/connectors/google-calendar/choices",
            json!({"colour": "red"}),
        )
        .await;
    assert_eq!(refused.status(), 400);
    // A choice only another connector offers: that connector has no such resource.
    let elsewhere = admin
        .put(
            "/admin/v1/connectors/accounting/choices",
            json!({"event_title": "matter_number"}),
        )
        .await;
    assert_eq!(elsewhere.status(), 404);
    let refused = admin
        .put(
            "/admin/v1/connectors/google-calendar/choices",
            json!({"event_title": "client_name"}),
        )
        .await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("matter_number"),
        "{problem}"
    );
    let before = env.registry.consent_ledger(FIRM).await.unwrap().len();
    assert_eq!(before, 1);

    emulator.take_received();
    let changed = admin
        .put(
            "/admin/v1/connectors/google-calendar/choices",
            json!({"event_title": "matter_number"}),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["choices"][0]["chosen"], "matter_number");
    let summary = changed["receives"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "summary")
        .unwrap()
        .clone();
    assert_eq!(summary["description"], "Matter number (the event title)");

    // A consent event: by whom, with the choice and the hash of schema and choices.
    let ledger = env.registry.consent_ledger(FIRM).await.unwrap();
    assert_eq!(ledger.len(), 2);
    let entry = &ledger[1];
    assert_eq!(entry.action, "choose");
    assert_eq!(entry.actor, "admin@harbour.example (settings)");
    assert_eq!(entry.choices["event_title"], "matter_number");
    assert_ne!(entry.contract_hash, ledger[0].contract_hash);
    assert_eq!(ledger[0].choices["event_title"], "matter_name");
    let shown = admin.get_json("/admin/v1/consent-ledger").await;
    assert_eq!(shown["data"][0]["action"], "choose");
    assert_eq!(shown["data"][0]["choices"]["event_title"], "matter_number");
    // Setting the same again is no new consent.
    admin
        .put(
            "/admin/v1/connectors/google-calendar/choices",
            json!({"event_title": "matter_number"}),
        )
        .await;
    assert_eq!(env.registry.consent_ledger(FIRM).await.unwrap().len(), 2);

    // The next pass re-titles every event already in Google with its matter number.
    let numbers: std::collections::BTreeMap<String, String> = sqlx::query(
        "SELECT d.id, m.number FROM diary_entries d JOIN matters m ON m.id = d.matter_id WHERE d.owner_user_id = $1 AND d.deleted = 0",
    )
    .bind(&user)
    .fetch_all(db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("id"), r.get("number")))
    .collect();
    let wanted: std::collections::BTreeSet<String> = numbers.values().cloned().collect();
    eventually("every event carries its matter number", || async {
        let events = emulator.live_events();
        events.len() == live.len()
            && events
                .iter()
                .all(|e| wanted.contains(e.event["summary"].as_str().unwrap_or_default()))
    })
    .await;
    // No payload that left after the change carries a matter name.
    let sent = emulator.received();
    assert!(sent.iter().any(|r| r.kind == "api" && !r.body.is_empty()));
    for r in &sent {
        for name in &names {
            assert!(
                !r.body.contains(name.as_str()),
                "matter name {name:?} left in {}",
                r.body
            );
        }
    }
    // The log names the field, and every payload passed the event schema (nothing refused).
    let c = Calendar::of(&app).connection(FIRM, &user).await.unwrap();
    assert!(c.last_error.is_none(), "{:?}", c.last_error);
    assert!(c
        .variant
        .as_deref()
        .is_some_and(|v| v.contains("matter_number")));
    app.stop().await;
}

on_both_backends!(matter_number_replaces_the_matter_name_everywhere_it_leaves);
