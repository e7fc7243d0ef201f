//! The privacy office's reports for Google Calendar. At consent the gateway
//! asks Google which account was connected (Calendars: get on `primary`) and
//! keeps it on the connection with the time it held it, so the disclosure
//! report names the Google accounts a client's diary entries went to, and a
//! breach scope for one Google account lists exactly the clients of that fee
//! earner's synced entries while the account was connected: checked against
//! the test's own SQL, through the admin API as an information officer uses it.

use scopegate::accounts::Role;
use scopegate::tenancy::FirmDb;
use scopegate_e2e::google::*;
use scopegate_e2e::settings::{add_login, AdminClient};
use scopegate_e2e::{on_both_backends, small_seed, TestApp, TestEnv};
use serde_json::Value;
use std::collections::BTreeSet;

const FIRM: &str = "harbour";
const OFFICER: &str = "dpo@harbour.example";

on_both_backends!(google_accounts_are_named_in_disclosures_and_scoped_in_a_breach);

/// The clients of `user`'s live diary entries, by the test's own SQL.
async fn clients_of_user(db: &FirmDb, user: &str) -> BTreeSet<String> {
    sqlx::query_scalar("SELECT DISTINCT m.client_id FROM diary_entries d JOIN matters m ON m.id = d.matter_id WHERE d.owner_user_id = $1 AND d.deleted = 0")
        .bind(user)
        .fetch_all(db.pool())
        .await
        .unwrap()
        .into_iter()
        .collect()
}

async fn wait_synced(app: &TestApp, db: &FirmDb, user: &str, after: i64) {
    let live = live_entries(db, user).await.len() as i64;
    eventually("the fee earner's diary is synced", || async {
        let c = Calendar::of(app).connection(FIRM, user).await;
        c.is_some_and(|c| c.events_count == live && c.last_sync_at.is_some_and(|t| t > after))
    })
    .await;
}

async fn scope_of(admin: &AdminClient, account: &str) -> Value {
    let response = admin
        .get(&format!(
            "/admin/v1/privacy/breach-scope?channel=account:{account}&since=0"
        ))
        .await;
    assert_eq!(response.status(), 200, "{account}");
    response.json().await.unwrap()
}

fn affected(scope: &Value) -> BTreeSet<String> {
    scope["affected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["client"]["id"].as_str().unwrap().to_string())
        .collect()
}

async fn google_accounts_are_named_in_disclosures_and_scoped_in_a_breach(env: TestEnv) {
    let running = start_emulator().await;
    let db = env.add_seeded_firm(FIRM, small_seed()).await;
    enable_google(&env, FIRM).await;
    let app = env.spawn_with(google_config(&env, &running, 50)).await;
    let users: Vec<String> = sqlx::query_scalar("SELECT owner_user_id FROM diary_entries WHERE deleted = 0 GROUP BY owner_user_id ORDER BY COUNT(*) DESC, owner_user_id LIMIT 2")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(users.len(), 2, "the seed has two fee earners with entries");
    let accounts = ["partner.a@gmail.example", "associate.b@gmail.example"];
    for (user, account) in users.iter().zip(accounts) {
        assert_eq!(connect_user(&app, FIRM, user, account).await, 200);
    }
    for user in &users {
        wait_synced(&app, &db, user, 0).await;
    }
    let connection = Calendar::of(&app)
        .connection(FIRM, &users[0])
        .await
        .unwrap();
    assert_eq!(connection.accounts.len(), 1);
    assert_eq!(connection.accounts[0].account.as_deref(), Some(accounts[0]));
    assert_eq!(connection.accounts[0].until, None);

    add_login(&env.registry, FIRM, OFFICER, Role::Admin).await;
    let admin = AdminClient::login(&app.base, FIRM, OFFICER).await;

    // Breach scope per account: exactly the clients of that fee earner's entries.
    let expected: Vec<BTreeSet<String>> = vec![
        clients_of_user(&db, &users[0]).await,
        clients_of_user(&db, &users[1]).await,
    ];
    let mut calls_before = Vec::new();
    for (i, account) in accounts.iter().enumerate() {
        let scope = scope_of(&admin, account).await;
        assert_eq!(affected(&scope), expected[i], "{scope}");
        assert_eq!(scope["channel"]["kind"], "account");
        assert_eq!(scope["connector"], "google-calendar");
        let live = live_entries(&db, &users[i]).await.len() as u64;
        assert_eq!(
            scope["calls"].as_u64().unwrap(),
            live,
            "one insert per entry: {scope}"
        );
        calls_before.push(scope["calls"].as_u64().unwrap());
    }
    let unknown = admin
        .get("/admin/v1/privacy/breach-scope?channel=account:nobody@gmail.example&since=0")
        .await;
    assert_eq!(unknown.status(), 404);

    // Disclosures: the Google accounts whose fee earner had entries about the client.
    let client = expected[0].iter().next().unwrap().clone();
    let report = admin
        .get_json(&format!(
            "/admin/v1/privacy/disclosures?subject=client:{client}"
        ))
        .await;
    let google: Vec<&Value> = report["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["connector"] == "google-calendar")
        .collect();
    assert_eq!(google.len(), 1, "{report}");
    let named: BTreeSet<String> = google[0]["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let wanted: BTreeSet<String> = accounts
        .iter()
        .zip(&expected)
        .filter(|(_, clients)| clients.contains(&client))
        .map(|(a, _)| a.to_string())
        .collect();
    assert_eq!(named, wanted, "{report}");

    // The first fee earner reconnects with another Google account: what is
    // written from then on goes to the new account, not the old one.
    let moved = "partner.a.new@gmail.example";
    let switched_at = scopegate::clock::now_ms();
    assert_eq!(connect_user(&app, FIRM, &users[0], moved).await, 200);
    wait_synced(&app, &db, &users[0], switched_at).await;
    let connection = Calendar::of(&app)
        .connection(FIRM, &users[0])
        .await
        .unwrap();
    assert_eq!(connection.accounts.len(), 2);
    assert!(connection.accounts[0].until.is_some());
    let old = scope_of(&admin, accounts[0]).await;
    assert_eq!(old["calls"].as_u64().unwrap(), calls_before[0], "{old}");
    let new = scope_of(&admin, moved).await;
    assert_eq!(affected(&new), expected[0], "{new}");
    assert!(new["calls"].as_u64().unwrap() >= calls_before[0], "{new}");
}
