//! The sharing chart: records shared per day with a connector, over the last
//! 30 days, drawn by the gateway as SVG within the page's CSP, with its total
//! and peak day in words; and a call whose result was never recorded shows in
//! the viewer as one row with an unknown outcome.

use scopegate::accounts::Role;
use scopegate::outbound_log::{Direction, NewSend};
use scopegate_e2e::settings::{add_login, AdminClient};
use scopegate_e2e::{enable_with_credential, on_both_backends, small_seed, TestEnv};
use serde_json::Value;

const DAY: i64 = 86_400_000;

async fn the_chart_counts_records_per_day_and_says_so(env: TestEnv) {
    env.add_seeded_firm("f1", small_seed()).await;
    env.add_seeded_firm("f2", small_seed()).await;
    add_login(&env.registry, "f1", "admin@f1.example", Role::Admin).await;
    add_login(&env.registry, "f1", "fee@f1.example", Role::FeeEarner).await;
    let (client, secret) = enable_with_credential(&env.registry, "f1", "accounting").await;
    let (client2, secret2) = enable_with_credential(&env.registry, "f2", "accounting").await;
    let app = env.spawn().await;
    let token = app.token(&client, &secret).await;
    let page: Value = app
        .get("/v1/transactions?limit=5", &token)
        .await
        .json()
        .await
        .unwrap();
    let mut ids: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    // The same five records again today: still five distinct records.
    assert_eq!(
        app.get("/v1/transactions?limit=5", &token).await.status(),
        200
    );
    let more: Value = app
        .get(
            "/v1/transactions?limit=3",
            &app.token(&client, &secret).await,
        )
        .await
        .json()
        .await
        .unwrap();
    ids.extend(
        more["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string()),
    );
    ids.sort();
    ids.dedup();
    // Another firm's traffic never counts.
    let other = app.token(&client2, &secret2).await;
    assert_eq!(
        app.get("/v1/transactions?limit=50", &other).await.status(),
        200
    );
    // Yesterday's sends: move one of today's sends back a day.
    let first: i64 = sqlx::Row::get(
        &sqlx::query(
            "SELECT MIN(seq) AS s FROM outbound_log WHERE firm_id = 'f1' AND kind = 'send'",
        )
        .fetch_one(env.registry.pool())
        .await
        .unwrap(),
        "s",
    );
    sqlx::query("UPDATE outbound_log SET at = at - $1 WHERE firm_id = 'f1' AND seq = $2")
        .bind(DAY)
        .bind(first)
        .execute(env.registry.pool())
        .await
        .unwrap();

    let admin = AdminClient::login(&app.base, "f1", "admin@f1.example").await;
    let list = admin.get_json("/admin/v1/connectors").await;
    let c = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "accounting")
        .unwrap()
        .clone();
    let sharing = &c["sharing"];
    assert_eq!(sharing["days"], 30);
    // Today: the records of the later sends (all of `ids`); yesterday: the first send's five.
    let today = ids.len() as i64;
    assert_eq!(sharing["total"], today + 5, "{sharing}");
    assert_eq!(sharing["peak"]["records"], today);

    let svg = admin
        .get("/admin/v1/connectors/accounting/sharing.svg")
        .await;
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    let csp = svg.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let svg = svg.text().await.unwrap();
    assert_eq!(svg.matches("<rect class=\"day\"").count(), 30);
    let counts: Vec<i64> = svg
        .split("data-records=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts[29], today, "today is the last bar");
    assert_eq!(counts[28], 5, "yesterday");
    assert_eq!(counts.iter().sum::<i64>(), today + 5);
    assert!(svg.contains(&format!(
        "{} records shared in the last 30 days; peak {today} on",
        today + 5
    )));
    assert!(
        !svg.contains("style="),
        "no inline style for the CSP to refuse"
    );
    assert!(!svg.contains("<script"));
    // Only those who may read the log see the chart; unknown connectors are 404.
    let fee = AdminClient::login(&app.base, "f1", "fee@f1.example").await;
    assert_eq!(
        fee.get("/admin/v1/connectors/accounting/sharing.svg")
            .await
            .status(),
        403
    );
    assert_eq!(
        admin
            .get("/admin/v1/connectors/nope/sharing.svg")
            .await
            .status(),
        404
    );
    app.stop().await;
}

async fn a_call_without_a_result_shows_its_outcome_unknown(env: TestEnv) {
    env.add_seeded_firm("f1", small_seed()).await;
    add_login(&env.registry, "f1", "admin@f1.example", Role::Admin).await;
    let (client, secret) = enable_with_credential(&env.registry, "f1", "accounting").await;
    let app = env.spawn().await;
    let token = app.token(&client, &secret).await;
    assert_eq!(app.get("/v1/matters?limit=1", &token).await.status(), 200);
    let grant = env.registry.grant("f1", "accounting").await.unwrap();
    // A send committed before the data left, and no result (the process died mid-call).
    let receipt = app
        .state
        .log
        .record_send(NewSend {
            firm_id: "f1".into(),
            grant_id: grant.id.clone(),
            connector: "accounting".into(),
            direction: Direction::Outbound,
            method: "GET".into(),
            target: "/v1/matters".into(),
            fields: vec!["id".into()],
            record_ids: vec!["m-1".into()],
            payload: b"{}".to_vec(),
        })
        .await
        .unwrap();
    let admin = AdminClient::login(&app.base, "f1", "admin@f1.example").await;
    let calls = admin.get_json("/admin/v1/outbound").await;
    let calls = calls["data"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "one row per call: {calls:?}");
    assert_eq!(calls[0]["seq"], receipt.seq);
    assert!(calls[0]["result"].is_null(), "outcome unknown");
    assert_eq!(calls[1]["result"]["status"], 200);
    // A status filter keeps only calls with a recorded result of that status.
    let ok = admin.get_json("/admin/v1/outbound?status=ok").await;
    assert_eq!(ok["data"].as_array().unwrap().len(), 1);
    app.stop().await;
}

on_both_backends!(
    the_chart_counts_records_per_day_and_says_so,
    a_call_without_a_result_shows_its_outcome_unknown,
);
