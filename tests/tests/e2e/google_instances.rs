//! Two gateway instances sharing one registry both run the calendar sync
//! worker; the per-connection lease makes exactly one of them sync a given
//! fee earner at a time, so no event is inserted twice and no call is wasted.

use scopegate_e2e::google::*;
use scopegate_e2e::{on_both_backends, small_seed, TestApp, TestEnv};

const FIRM: &str = "harbour-law";
const ENTRIES: usize = 150;

on_both_backends!(
    two_instances_sync_each_connection_once,
    a_reconnect_through_one_instance_retires_the_other_instances_cached_token
);

async fn two_instances_sync_each_connection_once(env: TestEnv) {
    let running = start_emulator().await;
    let emulator = running.emulator.clone();
    let mut seed = small_seed();
    seed.fee_earners = 1;
    seed.diary_entries = ENTRIES;
    let db = env.add_seeded_firm(FIRM, seed).await;
    enable_google(&env, FIRM).await;
    // Two instances of one deployment: same registry, same master key.
    let keys = std::sync::Arc::new(scopegate::keys::Keyring::ephemeral());
    let a = TestApp::start_with_keyring(google_config(&env, &running, 20), keys.clone()).await;
    let b = TestApp::start_with_keyring(google_config(&env, &running, 20), keys).await;
    // Slow calls make the two workers' passes overlap.
    let mut slow = emulator.config();
    slow.latency_ms = 10;
    emulator.set_config(slow);
    let user = busiest_user(&db).await;
    assert_eq!(
        connect_user(&a, FIRM, &user, "earner@gmail.example").await,
        200
    );
    eventually("both instances together sync every entry", || async {
        Calendar::of(&a)
            .connection(FIRM, &user)
            .await
            .is_some_and(|c| c.events_count == ENTRIES as i64)
    })
    .await;
    // Let both workers run a few more idle rounds: nothing more may be sent.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let received = emulator.received();
    let inserts = received
        .iter()
        .filter(|r| r.kind == "api" && r.method == "POST")
        .count();
    let duplicates = received
        .iter()
        .filter(|r| r.kind == "api" && r.status == 409)
        .count();
    eprintln!(
        "inserts {inserts}, duplicates {duplicates}, calls {}",
        received.len()
    );
    assert_eq!(emulator.live_events().len(), ENTRIES);
    assert_eq!(
        (inserts, duplicates),
        (ENTRIES, 0),
        "an event was inserted twice"
    );
    let calls = received.iter().filter(|r| r.kind != "authorize").count() as i64;
    eventually("every call is logged once", || async {
        completed_google_records(&env).await == calls
    })
    .await;
    a.stop().await;
    b.stop().await;
}

async fn a_reconnect_through_one_instance_retires_the_other_instances_cached_token(env: TestEnv) {
    let running = start_emulator().await;
    let emulator = running.emulator.clone();
    let mut seed = small_seed();
    seed.fee_earners = 1;
    seed.diary_entries = 20;
    let db = env.add_seeded_firm(FIRM, seed).await;
    enable_google(&env, FIRM).await;
    let keys = std::sync::Arc::new(scopegate::keys::Keyring::ephemeral());
    // A only syncs when woken (by its own consent callbacks); B polls.
    let a =
        TestApp::start_with_keyring(google_config(&env, &running, 3_600_000), keys.clone()).await;
    let b = TestApp::start_with_keyring(google_config(&env, &running, 20), keys).await;
    let user = busiest_user(&db).await;
    let matter: String = sqlx::query_scalar("SELECT id FROM matters LIMIT 1")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let in_calendar = |account: &'static str, description: &'static str| {
        let emulator = emulator.clone();
        move || {
            let emulator = emulator.clone();
            async move {
                emulator
                    .live_events()
                    .iter()
                    .any(|e| e.account == account && e.event["description"] == description)
            }
        }
    };
    assert_eq!(
        connect_user(&a, FIRM, &user, "old@gmail.example").await,
        200
    );
    // B syncs a new entry, so B now holds the old account's token.
    add_diary_entry(
        &db,
        &user,
        &matter,
        "Before the reconnect",
        scopegate::clock::now_ms(),
    )
    .await;
    eventually(
        "B syncs to the old account",
        in_calendar("old@gmail.example", "Before the reconnect"),
    )
    .await;
    // The fee earner reconnects with another Google account, through A.
    assert_eq!(
        connect_user(&a, FIRM, &user, "new@gmail.example").await,
        200
    );
    let live = 21; // 20 seeded entries and the one above
    eventually(
        "the reconnect re-sends every entry to the new account",
        || async {
            emulator
                .live_events()
                .iter()
                .filter(|e| e.account == "new@gmail.example")
                .count()
                == live
        },
    )
    .await;
    // Only B polls now: this entry is synced by the instance that cached the old token.
    add_diary_entry(
        &db,
        &user,
        &matter,
        "After the reconnect",
        scopegate::clock::now_ms(),
    )
    .await;
    eventually(
        "the new entry reaches the new account",
        in_calendar("new@gmail.example", "After the reconnect"),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let leaked = emulator
        .live_events()
        .iter()
        .filter(|e| {
            e.account == "old@gmail.example" && e.event["description"] == "After the reconnect"
        })
        .count();
    assert_eq!(
        leaked, 0,
        "a stale token sent a diary entry to the account the fee earner left"
    );
    a.stop().await;
    b.stop().await;
}
