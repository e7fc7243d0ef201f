//! Unused grants: an enabled grant with no outbound record for the threshold
//! is flagged on the integrations page, and with `--auto-disable-unused` the
//! periodic job switches it off through the admin's path (credentials
//! revoked) with a ledger entry by `scopegate` naming the reason. Time moves
//! by the `now` the job is handed.

use scopegate::accounts::Role;
use scopegate::config::{Config, ConfigArgs};
use scopegate_e2e::settings::{add_login, AdminClient};
use scopegate_e2e::{enable_with_credential, on_both_backends, small_seed, TestEnv};
use serde_json::Value;

const DAY: i64 = 86_400_000;

fn config(env: &TestEnv) -> Config {
    Config::resolve(&ConfigArgs {
        data_dir: Some(env.dir.path().to_path_buf()),
        database_url: Some(env.database_url.clone()),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        metrics_listen: Some(scopegate::config::MetricsListen::Off),
        unused_grant_days: Some(90),
        auto_disable_unused: Some(true),
        ..Default::default()
    })
    .unwrap()
}

fn accounting(list: &Value) -> Value {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "accounting")
        .unwrap()
        .clone()
}

async fn unused_grants_are_flagged_then_switched_off_by_the_gateway(env: TestEnv) {
    env.add_seeded_firm("busy", small_seed()).await;
    env.add_seeded_firm("idle", small_seed()).await;
    add_login(&env.registry, "idle", "admin@idle.example", Role::Admin).await;
    let (busy_client, busy_secret) =
        enable_with_credential(&env.registry, "busy", "accounting").await;
    let (idle_client, idle_secret) =
        enable_with_credential(&env.registry, "idle", "accounting").await;
    let app = env.spawn_with(config(&env)).await;
    let token = app.token(&busy_client, &busy_secret).await;
    assert_eq!(
        app.get("/v1/transactions?limit=2", &token).await.status(),
        200
    );
    let idle_token = app.token(&idle_client, &idle_secret).await;
    let now = chrono::Utc::now().timestamp_millis();

    // Switched on just now, no traffic yet: counts from the switch-on, not flagged.
    let admin = AdminClient::login(&app.base, "idle", "admin@idle.example").await;
    assert!(accounting(&admin.get_json("/admin/v1/connectors").await)["unused"].is_null());
    let nothing = scopegate::app::switch_off_unused_grants(&app.state, now + 89 * DAY).await;
    assert!(nothing.is_empty(), "{nothing:?}");

    // 91 days on, the busy firm's traffic of "today" is 91 days old as well;
    // move the busy firm's last record forward so only the idle firm is unused.
    sqlx::query("UPDATE outbound_log SET at = $1 WHERE firm_id = 'busy'")
        .bind(now + 60 * DAY)
        .execute(env.registry.pool())
        .await
        .unwrap();
    let done = scopegate::app::switch_off_unused_grants(&app.state, now + 91 * DAY).await;
    assert_eq!(
        done,
        vec![scopegate::app::SwitchedOffUnused {
            firm_id: "idle".into(),
            connector: "accounting".into(),
            days: 91
        }]
    );
    assert!(
        !env.registry
            .grant("idle", "accounting")
            .await
            .unwrap()
            .enabled
    );
    assert!(
        env.registry
            .grant("busy", "accounting")
            .await
            .unwrap()
            .enabled
    );
    // The same path as an admin's switch-off: the credential's token is dead.
    assert_eq!(
        app.get("/v1/transactions?limit=1", &idle_token)
            .await
            .status(),
        401
    );
    let ledger = env.registry.consent_ledger("idle").await.unwrap();
    let last = ledger.last().unwrap();
    assert_eq!(last.action, "disable");
    assert_eq!(last.actor, "scopegate");
    assert_eq!(last.reason.as_deref(), Some("unused for 90 days"));
    let shown = admin.get_json("/admin/v1/consent-ledger").await;
    assert_eq!(shown["data"][0]["reason"], "unused for 90 days");
    // Another instance running the same job later finds nothing to do.
    assert!(
        scopegate::app::switch_off_unused_grants(&app.state, now + 92 * DAY)
            .await
            .is_empty()
    );
    app.stop().await;
}

async fn the_integrations_page_flags_an_unused_grant(env: TestEnv) {
    env.add_seeded_firm("idle", small_seed()).await;
    add_login(&env.registry, "idle", "admin@idle.example", Role::Admin).await;
    enable_with_credential(&env.registry, "idle", "accounting").await;
    let app = env.spawn().await;
    // Switched on 100 days ago (and never used).
    sqlx::query("UPDATE grants SET updated_at = updated_at - $1 WHERE firm_id = 'idle'")
        .bind(100 * DAY)
        .execute(env.registry.pool())
        .await
        .unwrap();
    let admin = AdminClient::login(&app.base, "idle", "admin@idle.example").await;
    let c = accounting(&admin.get_json("/admin/v1/connectors").await);
    assert_eq!(c["unused"]["days"], 100);
    assert_eq!(c["unused"]["threshold_days"], 90);
    // Without --auto-disable-unused it is only flagged.
    assert!(!app.state.config.auto_disable_unused);
    assert!(
        env.registry
            .grant("idle", "accounting")
            .await
            .unwrap()
            .enabled
    );
    app.stop().await;
}

on_both_backends!(
    unused_grants_are_flagged_then_switched_off_by_the_gateway,
    the_integrations_page_flags_an_unused_grant,
);
