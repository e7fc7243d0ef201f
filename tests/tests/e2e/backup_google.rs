//! Google Calendar sync resumes after a restore: a backup taken while a fee
//! earner's calendar syncs, restored into a fresh place and served with the
//! same master key, opens the sealed refresh token, picks up the durable sync
//! state and carries a new diary entry to Google without duplicating any event.

use scopegate::backup::{self, BackupKey, RestoreTarget};
use scopegate::config::Config;
use scopegate::keys::Keyring;
use scopegate::registry::Registry;
use scopegate::tenancy::provision_firm_database;
use scopegate_e2e::google::*;
use scopegate_e2e::{
    fresh_postgres_database, on_both_backends, small_seed, Backend, TestApp, TestEnv,
};
use std::sync::Arc;

on_both_backends!(google_sync_resumes_on_restored_data);

const FIRM: &str = "harbour";

async fn events_count(app: &TestApp, user: &str) -> i64 {
    Calendar::of(app)
        .connection(FIRM, user)
        .await
        .map(|c| c.events_count)
        .unwrap_or(-1)
}

async fn google_sync_resumes_on_restored_data(env: TestEnv) {
    if env.backend == Backend::Postgres
        && !(backup::pg_tool_available("pg_dump") && backup::pg_tool_available("pg_restore"))
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "pg_dump/pg_restore missing with CI=true"
        );
        eprintln!("SKIPPED: pg_dump or pg_restore is missing (apt-get install postgresql-client)");
        return;
    }
    let running = start_emulator().await;
    let emulator = running.emulator.clone();
    let db = env.add_seeded_firm(FIRM, small_seed()).await;
    enable_google(&env, FIRM).await;
    let keyring = Arc::new(Keyring::ephemeral());
    let app = TestApp::start_with_keyring(google_config(&env, &running, 50), keyring.clone()).await;
    let user = busiest_user(&db).await;
    assert_eq!(
        connect_user(&app, FIRM, &user, "fee.earner@gmail.example").await,
        200
    );
    let live = live_entries(&db, &user).await.len() as i64;
    eventually("the first sync completes", || async {
        events_count(&app, &user).await == live
    })
    .await;

    // Back up while the gateway runs, then stop it.
    let key = BackupKey::parse(&scopegate::keys::generate_key()).unwrap();
    let out = env.dir.path().join("backups");
    let report = backup::backup(&env.database_url, &out, &key, 7)
        .await
        .unwrap();
    app.stop().await;

    // Restore into a fresh place.
    let fresh = tempfile::tempdir().unwrap();
    let target = RestoreTarget {
        data_dir: fresh.path().join("data"),
        registry_postgres_url: match env.backend {
            Backend::Postgres => Some(fresh_postgres_database("restored").await),
            Backend::Sqlite => None,
        },
        firm_postgres_url: None,
    };
    let restored = backup::restore(&report.file, &key, &target).await.unwrap();
    let registry = Registry::connect_and_migrate(&restored.registry_url)
        .await
        .unwrap();
    let firm = registry.firm(FIRM).await.unwrap();
    assert_ne!(
        firm.data_url,
        db_url(&env).await,
        "the restored firm has its own database"
    );
    let restored_db = provision_firm_database(FIRM, &firm.data_url).await.unwrap();

    // A gateway on the restored data, same master key, same Google.
    let mut args = google_args(&env, &running, 50);
    args.data_dir = Some(target.data_dir.clone());
    args.database_url = Some(restored.registry_url.clone());
    let config = Config::resolve(&args).unwrap();
    let log_keys = keyring.log_keys();
    let app = TestApp::start_with_keyring(config, keyring).await;
    let matter: String = sqlx::Row::get(
        &sqlx::query("SELECT id FROM matters LIMIT 1")
            .fetch_one(restored_db.pool())
            .await
            .unwrap(),
        "id",
    );
    add_diary_entry(
        &restored_db,
        &user,
        &matter,
        "Consultation after the restore",
        1_900_000_000_000,
    )
    .await;
    eventually("the restored gateway syncs the new entry", || async {
        events_count(&app, &user).await == live + 1
    })
    .await;
    let events = emulator.live_events();
    assert_eq!(
        events.len() as i64,
        live + 1,
        "one event per live entry, none duplicated"
    );
    assert!(events
        .iter()
        .any(|e| e.event["description"] == "Consultation after the restore"));
    app.stop().await;
    let report = scopegate::outbound_log::verify_all(&registry, &log_keys, None, None)
        .await
        .unwrap();
    assert!(report.faults.is_empty(), "{:?}", report.faults);
    assert!(report.records > 0);
}

/// The original firm database's URL.
async fn db_url(env: &TestEnv) -> String {
    env.registry.firm(FIRM).await.unwrap().data_url
}
