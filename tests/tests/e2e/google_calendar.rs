//! Google Calendar connector, end to end against the emulator: a fee earner
//! connects, their diary syncs, edits and deletions follow, only the allowed
//! fields ever reach Google, every call is logged, switching off stops at
//! once, and an expired or revoked token is handled visibly.

use scopegate::tenancy::FirmDb;
use scopegate_e2e::google::*;
use scopegate_e2e::{on_both_backends, small_seed, TestApp, TestEnv};
use scopegate_google_calendar::store;
use scopegate_google_emulator::Emulator;
use sqlx::Row;

const FIRM: &str = "harbour";

async fn connection_of(app: &TestApp, user: &str) -> store::Connection {
    Calendar::of(app)
        .connection(FIRM, user)
        .await
        .expect("connection")
}

fn api_calls(emulator: &Emulator) -> usize {
    emulator
        .received()
        .iter()
        .filter(|r| r.kind == "api")
        .count()
}

/// Calls the gateway made to the emulator (the browser's authorize visits are not the gateway's).
fn gateway_calls(emulator: &Emulator) -> i64 {
    emulator
        .received()
        .iter()
        .filter(|r| r.kind != "authorize")
        .count() as i64
}

/// Asserts the emulator holds exactly one event per live entry, with the right values.
async fn assert_calendar_matches(emulator: &Emulator, db: &FirmDb, user: &str) {
    let entries = live_entries(db, user).await;
    let events = emulator.live_events();
    assert_eq!(
        events.len(),
        entries.len(),
        "one event per live diary entry"
    );
    let mut got: Vec<(String, String, String, String)> = events
        .iter()
        .map(|e| {
            let time = |t: &serde_json::Value| {
                t["dateTime"]
                    .as_str()
                    .or(t["date"].as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            (
                e.event["summary"].as_str().unwrap_or_default().to_string(),
                e.event["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                time(&e.event["start"]),
                time(&e.event["end"]),
            )
        })
        .collect();
    got.sort();
    let mut expected: Vec<(String, String, String, String)> = entries
        .iter()
        .map(|(_, matter, description, starts_at, ends_at, all_day)| {
            let start = chrono::DateTime::from_timestamp_millis(*starts_at).unwrap();
            let end = chrono::DateTime::from_timestamp_millis(*ends_at).unwrap();
            let (start, end) = if *all_day {
                (
                    start.format("%Y-%m-%d").to_string(),
                    end.date_naive().succ_opt().unwrap().to_string(),
                )
            } else {
                (
                    start.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    end.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                )
            };
            (matter.clone(), description.clone(), start, end)
        })
        .collect();
    expected.sort();
    assert_eq!(got, expected);
    let ids: std::collections::BTreeSet<_> = events
        .iter()
        .map(|e| e.event["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids.len(), entries.len(), "event ids are distinct");
}

async fn set_description(db: &FirmDb, diary_id: &str, text: &str) {
    edit_diary(
        db,
        "UPDATE diary_entries SET description = $1, change_seq = $3 WHERE id = $2",
        text,
        diary_id,
    )
    .await;
}

async fn connect_sync_edit_delete_and_switch_off(env: TestEnv) {
    let running = start_emulator().await;
    let emulator = running.emulator.clone();
    let db = env.add_seeded_firm(FIRM, small_seed()).await;
    enable_google(&env, FIRM).await;
    let app = env.spawn_with(google_config(&env, &running, 50)).await;
    let user = busiest_user(&db).await;

    assert_eq!(
        connect_user(&app, FIRM, &user, "fee.earner@gmail.example").await,
        200
    );
    let live = live_entries(&db, &user).await.len() as i64;
    assert!(live > 0);
    eventually("the first sync completes", || async {
        let c = connection_of(&app, &user).await;
        c.events_count == live && c.last_sync_at.is_some()
    })
    .await;
    assert_calendar_matches(&emulator, &db, &user).await;
    let connection = connection_of(&app, &user).await;
    assert_eq!(connection.status, "active");
    assert!(connection
        .refresh_token_sealed
        .as_deref()
        .is_some_and(|t| t.starts_with("v2.") && t.contains(".google-refresh-token.")));

    // Edit one description, change only the private notes of another, delete a third, add one.
    let entries = live_entries(&db, &user).await;
    let api_before = api_calls(&emulator);
    set_description(&db, &entries[0].0, "Moved: court appearance").await;
    edit_diary(
        &db,
        "UPDATE diary_entries SET private_notes = $1, change_seq = $3 WHERE id = $2",
        "Private: new note nobody may see",
        &entries[1].0,
    )
    .await;
    edit_diary(
        &db,
        "UPDATE diary_entries SET deleted = 1, change_seq = $3 WHERE id = $2 AND $1 <> ''",
        "x",
        &entries[2].0,
    )
    .await;
    let matter: String = sqlx::query("SELECT matter_id FROM diary_entries WHERE id = $1")
        .bind(&entries[0].0)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get("matter_id");
    add_diary_entry(
        &db,
        &user,
        &matter,
        "Signing of the deed",
        chrono::Utc::now().timestamp_millis(),
    )
    .await;
    let target: i64 =
        sqlx::query("SELECT MAX(change_seq) AS m FROM diary_entries WHERE owner_user_id = $1")
            .bind(&user)
            .fetch_one(db.pool())
            .await
            .unwrap()
            .get("m");
    eventually("the edits are synced", || async {
        let c = connection_of(&app, &user).await;
        c.cursor >= target && c.events_count == live
    })
    .await;
    assert_calendar_matches(&emulator, &db, &user).await;
    let calls: Vec<String> = emulator
        .received()
        .into_iter()
        .filter(|r| r.kind == "api")
        .skip(api_before)
        .map(|r| r.method)
        .collect();
    let mut sorted = calls.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec!["DELETE", "POST", "PUT"],
        "update + delete + insert; the private-notes change cost no call"
    );

    // An expired access token is refreshed and the call retried.
    emulator.expire_access_tokens();
    set_description(&db, &entries[3].0, "After token expiry").await;
    eventually("the edit after token expiry is synced", || async {
        emulator
            .live_events()
            .iter()
            .any(|e| e.event["description"] == "After token expiry")
    })
    .await;
    assert!(emulator
        .received()
        .iter()
        .any(|r| r.kind == "api" && r.status == 401));

    // Only allowed fields, no sensitive value, every call logged.
    let sensitive = sensitive_values(&db, FIRM).await;
    assert!(assert_only_allowed_fields(&emulator, &sensitive) >= live as usize);
    let calls = gateway_calls(&emulator);
    eventually("every call has its completed outbound record", || async {
        completed_google_records(&env).await == calls
    })
    .await;

    // Switching the grant off stops syncing at once.
    env.registry
        .disable_grant(FIRM, "google-calendar", "admin@harbour")
        .await
        .unwrap();
    let received_before = emulator.received().len();
    set_description(&db, &entries[4].0, "Must not reach Google").await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        emulator.received().len(),
        received_before,
        "no call after the switch-off"
    );

    // The user disconnects, asking for the created events to go: deleted, token revoked and forgotten.
    let report = Calendar::of(&app)
        .disconnect(FIRM, &user, true)
        .await
        .expect("disconnect");
    assert_eq!(report.events_deleted as i64, live);
    assert!(report.revoked_at_google);
    assert_eq!(emulator.live_events().len(), 0);
    assert_eq!(emulator.live_refresh_tokens(), 0);
    let gone = connection_of(&app, &user).await;
    assert_eq!(gone.status, "disconnected");
    assert!(gone.refresh_token_sealed.is_none());
    let calls = gateway_calls(&emulator);
    eventually("the clean-up calls are logged too", || async {
        completed_google_records(&env).await == calls
    })
    .await;
    let sensitive = sensitive_values(&db, FIRM).await;
    assert_only_allowed_fields(&emulator, &sensitive);
    app.stop().await;
}

async fn revoked_grant_needs_reconsent_and_switch_off_deletes_events(env: TestEnv) {
    let running = start_emulator().await;
    let emulator = running.emulator.clone();
    let db = env.add_seeded_firm(FIRM, small_seed()).await;
    enable_google(&env, FIRM).await;
    let app = env.spawn_with(google_config(&env, &running, 50)).await;
    let user = busiest_user(&db).await;

    // A consent state works once; an unknown one is refused.
    let bogus = app
        .http
        .get(app.url("/oauth/google/callback?state=forged&code=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(bogus.status(), 400);
    assert_eq!(bogus.headers()["content-type"], "application/problem+json");
    let url = Calendar::of(&app).consent_url(FIRM, &user).await.unwrap();
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(
        query["scope"],
        "https://www.googleapis.com/auth/calendar.events"
    );
    assert!(query["state"].len() >= 16);

    assert_eq!(
        connect_user(&app, FIRM, &user, "fee.earner@gmail.example").await,
        200
    );
    let live = live_entries(&db, &user).await.len() as i64;
    eventually("the first sync completes", || async {
        connection_of(&app, &user).await.events_count == live
    })
    .await;

    // The user removes the app's access at Google: the next refresh gets invalid_grant.
    emulator.revoke_all_grants();
    let entries = live_entries(&db, &user).await;
    set_description(&db, &entries[0].0, "Synced after re-consent").await;
    eventually("the connection needs re-consent", || async {
        connection_of(&app, &user).await.status == "needs_reconsent"
    })
    .await;
    let c = connection_of(&app, &user).await;
    assert!(c
        .last_error
        .as_deref()
        .unwrap_or_default()
        .contains("invalid_grant"));
    assert!(c.refresh_token_sealed.is_none());
    let statuses = Calendar::of(&app).statuses(FIRM).await;
    assert_eq!(statuses[0].status, "needs_reconsent");

    // Connecting again resumes; the edit arrives and nothing is duplicated.
    assert_eq!(
        connect_user(&app, FIRM, &user, "fee.earner@gmail.example").await,
        200
    );
    eventually("the re-consented connection syncs", || async {
        emulator
            .live_events()
            .iter()
            .any(|e| e.event["description"] == "Synced after re-consent")
    })
    .await;
    eventually("all events are current", || async {
        let c = connection_of(&app, &user).await;
        c.events_count == live && c.job_due_at.is_none()
    })
    .await;
    assert_calendar_matches(&emulator, &db, &user).await;

    // Passes that sent changes recorded how long those changes may have waited.
    // The recorder is the process's one (the scrape covers every test in this binary).
    let scrape = scopegate::metrics::install()
        .expect("the recorder")
        .render();
    let lag_count = scrape
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "scopegate_connector_sync_lag_seconds_count{connector=\"google-calendar\"} ",
            )
        })
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(lag_count >= 1.0, "no sync lag recorded:\n{scrape}");
    assert!(scrape.contains(
        "scopegate_connector_sync_lag_seconds_bucket{connector=\"google-calendar\",le=\"30\"}"
    ));

    // The firm is terminated: every account disconnected, the created events deleted.
    let live_tokens = emulator.live_refresh_tokens();
    assert!(live_tokens > 0);
    let report = Calendar::of(&app)
        .switch_off(FIRM, "admin@harbour", true, true)
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.events_deleted as i64, live);
    assert_eq!(emulator.live_events().len(), 0);
    assert!(
        report.summary.contains("1 Google accounts disconnected"),
        "{}",
        report.summary
    );
    assert_eq!(
        emulator.live_refresh_tokens(),
        live_tokens - 1,
        "the token is revoked at Google"
    );
    assert!(connection_of(&app, &user)
        .await
        .refresh_token_sealed
        .is_none());
    let calls = gateway_calls(&emulator);
    eventually("every call is logged", || async {
        completed_google_records(&env).await == calls
    })
    .await;
    let sensitive = sensitive_values(&db, FIRM).await;
    assert_only_allowed_fields(&emulator, &sensitive);
    // Token-endpoint calls too are logged with the SHA-256 of exactly the
    // bytes Google received (the code exchange, refreshes, the revocation).
    let logged: std::collections::BTreeSet<String> = sqlx::query_scalar(
        "SELECT payload_sha256 FROM outbound_log WHERE firm_id = $1 AND kind = 'send'",
    )
    .bind(FIRM)
    .fetch_all(env.registry.pool())
    .await
    .unwrap()
    .into_iter()
    .collect();
    let credential_calls: Vec<_> = emulator
        .received()
        .into_iter()
        .filter(|r| r.kind == "token" || r.kind == "revoke")
        .collect();
    assert!(credential_calls.len() >= 2, "{credential_calls:?}");
    for r in credential_calls {
        assert!(
            logged.contains(&scopegate_contract::sha256_hex(r.body.as_bytes())),
            "the {} call's body is not what the log hashed",
            r.kind
        );
    }
    app.stop().await;
}

async fn converges_with_thirty_percent_faults(env: TestEnv) {
    let running = start_emulator().await;
    let emulator = running.emulator.clone();
    let mut seed = small_seed();
    seed.fee_earners = 1;
    seed.diary_entries = 300;
    let db = env.add_seeded_firm(FIRM, seed).await;
    enable_google(&env, FIRM).await;
    let app = env.spawn_with(google_config(&env, &running, 50)).await;
    let user = busiest_user(&db).await;
    let mut config = emulator.config();
    config.fault_rate = 0.3;
    config.retry_after_secs = 0;
    emulator.set_config(config);
    assert_eq!(
        connect_user(&app, FIRM, &user, "fee.earner@gmail.example").await,
        200
    );
    eventually("the sync converges despite faults", || async {
        connection_of(&app, &user).await.events_count == 300
    })
    .await;
    assert_calendar_matches(&emulator, &db, &user).await;
    let received = emulator.received();
    let faults = received
        .iter()
        .filter(|r| r.status == 429 || r.status == 503)
        .count();
    assert!(faults > 30, "faults were injected ({faults})");
    let calls = gateway_calls(&emulator);
    eventually("every call, failed or not, is logged", || async {
        completed_google_records(&env).await == calls
    })
    .await;
    let sensitive = sensitive_values(&db, FIRM).await;
    assert_only_allowed_fields(&emulator, &sensitive);
    app.stop().await;
}

on_both_backends!(
    connect_sync_edit_delete_and_switch_off,
    revoked_grant_needs_reconsent_and_switch_off_deletes_events,
    converges_with_thirty_percent_faults
);
