//! The privacy office's reports, checked against the test's own traffic: a
//! vendor polls through the real API, a second connector's sends are logged
//! beside it, and the disclosure report (POPIA s23) and the breach scope
//! (POPIA s22) must name exactly the recipients and the clients that traffic
//! reached, counted independently from what the vendor received.

use scopegate::accounts::Role;
use scopegate::outbound_log::{Direction, NewSend};
use scopegate::privacy::{self, Channel, Subject};
use scopegate::tenancy::FirmDb;
use scopegate_e2e::settings::{add_login, AdminClient};
use scopegate_e2e::{enable_with_credential, on_both_backends, small_seed, TestApp, TestEnv};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

on_both_backends!(
    the_disclosure_report_names_exactly_who_received_a_clients_records,
    breach_scope_lists_exactly_the_clients_a_grant_reached_in_the_window,
    the_admin_api_answers_for_the_sessions_firm_only
);

/// One page from firm f1's accounting vendor: (the firm's ids of its items, next cursor).
/// The vendor is shown its grant's ids; the reports name the firm's own.
async fn poll(app: &TestApp, token: &str, path: &str) -> (Vec<String>, Option<String>) {
    let response = app.get(path, token).await;
    assert_eq!(response.status(), 200, "{path}");
    let body: Value = response.json().await.unwrap();
    let mut ids = Vec::new();
    for item in body["data"].as_array().unwrap() {
        let shown = item["id"].as_str().unwrap();
        ids.push(app.real_id("f1", "accounting", shown).await);
    }
    (ids, body["next_cursor"].as_str().map(str::to_string))
}

/// The client each record id is about, by the test's own SQL.
async fn client_of(db: &FirmDb, record: &str) -> Option<String> {
    for query in [
        "SELECT id FROM clients WHERE id = $1",
        "SELECT client_id FROM matters WHERE id = $1",
        "SELECT m.client_id FROM accounting_transactions t JOIN matters m ON m.id = t.matter_id WHERE t.id = $1",
        "SELECT m.client_id FROM diary_entries d JOIN matters m ON m.id = d.matter_id WHERE d.id = $1",
    ] {
        let found: Option<String> = sqlx::query_scalar(query)
            .bind(record)
            .fetch_optional(db.pool())
            .await
            .unwrap();
        if found.is_some() {
            return found;
        }
    }
    None
}

async fn matters_of(db: &FirmDb) -> Vec<(String, String)> {
    sqlx::query_as("SELECT id, client_id FROM matters ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap()
}

/// A send of the matter-webhook grant carrying `matters`, as its connector logs them.
fn webhook_send(grant_id: &str, matters: &[String]) -> NewSend {
    NewSend {
        firm_id: "f1".into(),
        grant_id: grant_id.into(),
        connector: "matter-webhook".into(),
        direction: Direction::Outbound,
        method: "POST".into(),
        target: "https://hooks.example/matters".into(),
        fields: vec!["id".into(), "number".into()],
        record_ids: matters.to_vec(),
        payload: b"[]".to_vec(),
    }
}

async fn the_disclosure_report_names_exactly_who_received_a_clients_records(env: TestEnv) {
    let db = env.add_seeded_firm("f1", small_seed()).await;
    let (client_id, secret) = enable_with_credential(&env.registry, "f1", "accounting").await;
    enable_with_credential(&env.registry, "f1", "matter-webhook").await;
    let webhook_grant = env.registry.grant("f1", "matter-webhook").await.unwrap();
    let app = env.spawn().await;
    let token = app.token(&client_id, &secret).await;

    // The vendor's traffic: three pages of transactions and one of matters.
    let mut received: Vec<Vec<String>> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..3 {
        let path = match &cursor {
            Some(c) => format!("/v1/transactions?limit=7&cursor={c}"),
            None => "/v1/transactions?limit=7".into(),
        };
        let (ids, next) = poll(&app, &token, &path).await;
        received.push(ids);
        cursor = next;
    }
    received.push(poll(&app, &token, "/v1/matters?limit=4").await.0);
    // The webhook's: the first two matters, once.
    let matters = matters_of(&db).await;
    let hooked: Vec<String> = matters.iter().take(2).map(|(m, _)| m.clone()).collect();
    app.state
        .log
        .record_send(webhook_send(&webhook_grant.id, &hooked))
        .await
        .unwrap();

    // Every client of the firm: who received which of its records, counted here.
    let clients: Vec<String> = sqlx::query_scalar("SELECT id FROM clients ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap();
    let mut checked_someone_with_both = false;
    for client in &clients {
        let mut expected: BTreeMap<&str, (BTreeSet<String>, usize)> = BTreeMap::new();
        for call in &received {
            let mut hit = false;
            for id in call {
                if client_of(&db, id).await.as_deref() == Some(client) {
                    expected
                        .entry("accounting")
                        .or_default()
                        .0
                        .insert(id.clone());
                    hit = true;
                }
            }
            if hit {
                expected.entry("accounting").or_default().1 += 1;
            }
        }
        let mine: BTreeSet<String> = hooked
            .iter()
            .filter(|m| matters.iter().any(|(id, c)| id == *m && c == client))
            .cloned()
            .collect();
        if !mine.is_empty() {
            expected.insert("matter-webhook", (mine, 1));
        }
        checked_someone_with_both |= expected.len() == 2;

        let report = privacy::disclosures(
            &env.registry,
            &db,
            "f1",
            Subject::Client(client.clone()),
            &[],
        )
        .await
        .unwrap();
        let got: BTreeMap<&str, (usize, usize)> = report
            .recipients
            .iter()
            .map(|r| (r.connector.as_str(), (r.records, r.calls)))
            .collect();
        let want: BTreeMap<&str, (usize, usize)> = expected
            .iter()
            .map(|(c, (ids, calls))| (*c, (ids.len(), *calls)))
            .collect();
        assert_eq!(got, want, "client {client}: {report:#?}");
        for r in &report.recipients {
            assert!(r.first_at <= r.last_at);
            if r.connector == "accounting" {
                assert_eq!(r.credentials, vec![client_id.clone()]);
                assert!(r.fields.contains(&"matter_id".to_string()), "{r:?}");
            }
        }
    }
    assert!(
        checked_someone_with_both,
        "the traffic reached at least one client through both connectors"
    );

    // By matter: the first hooked matter went to the webhook, and to the
    // vendor only if a polled transaction or the matters page carried it.
    let matter = &hooked[0];
    let report = privacy::disclosures(
        &env.registry,
        &db,
        "f1",
        Subject::Matter(matter.clone()),
        &[],
    )
    .await
    .unwrap();
    let mut vendor_saw = false;
    for call in &received {
        for id in call {
            let under: Option<String> =
                sqlx::query_scalar("SELECT matter_id FROM accounting_transactions WHERE id = $1")
                    .bind(id)
                    .fetch_optional(db.pool())
                    .await
                    .unwrap();
            vendor_saw |= id == matter || under.as_deref() == Some(matter.as_str());
        }
    }
    let connectors: BTreeSet<&str> = report
        .recipients
        .iter()
        .map(|r| r.connector.as_str())
        .collect();
    let mut want = BTreeSet::from(["matter-webhook"]);
    if vendor_saw {
        want.insert("accounting");
    }
    assert_eq!(connectors, want);

    // A client nobody heard of: nothing about them, and no recipient.
    let none = privacy::disclosures(
        &env.registry,
        &db,
        "f1",
        Subject::Client("no-such".into()),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(none.records_about_subject, 0);
    assert!(none.recipients.is_empty());
    app.stop().await;
}

async fn breach_scope_lists_exactly_the_clients_a_grant_reached_in_the_window(env: TestEnv) {
    let db = env.add_seeded_firm("f1", small_seed()).await;
    let (client_id, secret) = enable_with_credential(&env.registry, "f1", "accounting").await;
    enable_with_credential(&env.registry, "f1", "matter-webhook").await;
    let accounting = env.registry.grant("f1", "accounting").await.unwrap();
    let webhook = env.registry.grant("f1", "matter-webhook").await.unwrap();
    let app = env.spawn().await;
    let token = app.token(&client_id, &secret).await;

    // Before the split: the first page.
    let (before, cursor) = poll(&app, &token, "/v1/transactions?limit=12").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let split = scopegate::clock::now_ms();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    // After it: the next page through the vendor, and every matter through the webhook.
    let (after, _) = poll(
        &app,
        &token,
        &format!("/v1/transactions?limit=5&cursor={}", cursor.unwrap()),
    )
    .await;
    let every_matter: Vec<String> = matters_of(&db).await.into_iter().map(|(m, _)| m).collect();
    app.state
        .log
        .record_send(webhook_send(&webhook.id, &every_matter))
        .await
        .unwrap();

    let mut want_after: BTreeMap<String, usize> = BTreeMap::new();
    for id in &after {
        *want_after
            .entry(client_of(&db, id).await.unwrap())
            .or_default() += 1;
    }
    let mut want_all = want_after.clone();
    for id in &before {
        *want_all
            .entry(client_of(&db, id).await.unwrap())
            .or_default() += 1;
    }
    let scope = |channel: Channel, since: i64| {
        let (registry, db) = (env.registry.clone(), db.clone());
        async move {
            privacy::breach_scope(&registry, &db, "f1", channel, since, i64::MAX)
                .await
                .unwrap()
        }
    };
    let affected = |s: &privacy::BreachScope| -> BTreeMap<String, usize> {
        s.affected
            .iter()
            .map(|a| (a.client.id.clone(), a.records))
            .collect()
    };

    let after_split = scope(Channel::Grant(accounting.id.clone()), split).await;
    assert_eq!(after_split.calls, 1);
    assert_eq!(affected(&after_split), want_after);
    for a in &after_split.affected {
        assert!(a.first_at >= split && a.fields.contains(&"reference".to_string()));
        assert!(!a.client.full_name.is_empty() && a.client.email.contains('@'));
    }
    let whole = scope(Channel::Grant(accounting.id.clone()), 0).await;
    assert_eq!(whole.calls, 2);
    assert_eq!(affected(&whole), want_all);
    // The credential's channel is its grant's sends while it was valid.
    let by_credential = scope(Channel::Credential(client_id.clone()), split).await;
    assert_eq!(affected(&by_credential), want_after);
    assert!(by_credential.note.is_some());
    // The webhook's grant reached every client with a matter, and only after the split.
    let hooked = scope(Channel::Grant(webhook.id.clone()), split).await;
    let with_matters: BTreeSet<String> =
        matters_of(&db).await.into_iter().map(|(_, c)| c).collect();
    assert_eq!(
        hooked
            .affected
            .iter()
            .map(|a| a.client.id.clone())
            .collect::<BTreeSet<_>>(),
        with_matters
    );

    // CSV: a header and one line per client.
    let csv = after_split.to_csv();
    assert!(csv.starts_with("client_id,full_name,email,fields,first_at,last_at,records\r\n"));
    assert_eq!(csv.lines().count(), 1 + want_after.len());
    // A grant of no such id is a clear error.
    let unknown = privacy::breach_scope(
        &env.registry,
        &db,
        "f1",
        Channel::Grant("nope".into()),
        0,
        i64::MAX,
    )
    .await
    .unwrap_err();
    assert!(unknown.to_string().contains("no grant nope"), "{unknown}");
    app.stop().await;
}

async fn the_admin_api_answers_for_the_sessions_firm_only(env: TestEnv) {
    let db = env.add_seeded_firm("f1", small_seed()).await;
    env.add_seeded_firm("f2", small_seed()).await;
    let (client_id, secret) = enable_with_credential(&env.registry, "f1", "accounting").await;
    enable_with_credential(&env.registry, "f2", "accounting").await;
    let other_grant = env.registry.grant("f2", "accounting").await.unwrap();
    let grant = env.registry.grant("f1", "accounting").await.unwrap();
    add_login(&env.registry, "f1", "admin@f1.example", Role::Admin).await;
    add_login(&env.registry, "f1", "books@f1.example", Role::Bookkeeper).await;
    let app = env.spawn().await;
    let token = app.token(&client_id, &secret).await;
    let (ids, _) = poll(&app, &token, "/v1/transactions?limit=3").await;
    let client = client_of(&db, &ids[0]).await.unwrap();
    let admin = AdminClient::login(&app.base, "f1", "admin@f1.example").await;

    let report = admin
        .get_json(&format!(
            "/admin/v1/privacy/disclosures?subject=client:{client}"
        ))
        .await;
    assert_eq!(
        report["recipients"][0]["connector"], "accounting",
        "{report}"
    );
    assert_eq!(report["recipients"][0]["grant_id"], grant.id.as_str());

    let scope = admin
        .get_json(&format!(
            "/admin/v1/privacy/breach-scope?channel=grant:{}&since=0",
            grant.id
        ))
        .await;
    assert_eq!(scope["calls"], 1);
    assert!(scope["affected"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["client"]["id"] == client.as_str()));
    let csv = admin
        .get(&format!(
            "/admin/v1/privacy/breach-scope?channel=credential:{client_id}&since=0&format=csv"
        ))
        .await;
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(csv.text().await.unwrap().contains(&client));

    // Another firm's grant is not found in this one; bad input is a problem naming it.
    for (path, status, field) in [
        (
            format!(
                "/admin/v1/privacy/breach-scope?channel=grant:{}&since=0",
                other_grant.id
            ),
            404,
            None,
        ),
        (
            "/admin/v1/privacy/breach-scope?channel=grant:x".to_string(),
            422,
            Some("since"),
        ),
        (
            "/admin/v1/privacy/disclosures?subject=firm:f2".to_string(),
            422,
            Some("subject"),
        ),
        (
            "/admin/v1/privacy/disclosures".to_string(),
            422,
            Some("subject"),
        ),
        (
            "/admin/v1/privacy/disclosures?subject=client:x&firm=f2".to_string(),
            400,
            None,
        ),
    ] {
        let r = admin.get(&path).await;
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let body: Value = r.json().await.unwrap();
        assert!(!body["detail"].as_str().unwrap().is_empty());
        if let Some(field) = field {
            assert_eq!(body["field"], field, "{path}");
        }
    }
    // A bookkeeper reads the log but not who received what about a person.
    let books = AdminClient::login(&app.base, "f1", "books@f1.example").await;
    let refused = books
        .get(&format!(
            "/admin/v1/privacy/disclosures?subject=client:{client}"
        ))
        .await;
    assert_eq!(refused.status(), 403);
    app.stop().await;
}
