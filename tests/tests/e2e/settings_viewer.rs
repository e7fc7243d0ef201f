//! The outbound-call viewer (filters, pagination, export identical to
//! `scopegate audit export`) and the re-consent view when a connector's data
//! contract is newer than the one the firm consented to.

use scopegate::accounts::Role;
use scopegate::config::ConfigArgs;
use scopegate_e2e::settings::{add_login, AdminClient};
use scopegate_e2e::{enable_with_credential, on_both_backends, small_seed, TestEnv};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Write;

async fn outbound_viewer_filters_pages_and_exports(env: TestEnv) {
    env.add_seeded_firm("f1", small_seed()).await;
    add_login(&env.registry, "f1", "admin@f1.example", Role::Admin).await;
    let (client, secret) = enable_with_credential(&env.registry, "f1", "accounting").await;
    let app = env.spawn().await;
    let token = app.token(&client, &secret).await;
    let started = chrono::Utc::now().timestamp_millis();
    for _ in 0..3 {
        assert_eq!(
            app.get("/v1/transactions?limit=2", &token).await.status(),
            200
        );
    }
    let matters: Value = app
        .get("/v1/matters?limit=2", &token)
        .await
        .json()
        .await
        .unwrap();
    let matter_id = matters["data"][0]["id"].as_str().unwrap().to_string();
    let fee = |amount: i64| {
        app.http
            .post(app.url("/v1/fees"))
            .bearer_auth(&token)
            .header("idempotency-key", "k1")
            .json(&json!({"matter_id": matter_id, "amount_cents": amount, "currency": "ZAR", "description": "Drafting", "fee_date": "2026-01-02"}))
            .send()
    };
    assert_eq!(fee(100).await.unwrap().status(), 201);
    // The same key with another body: refused, and logged with its failure status.
    let failed = fee(200).await.unwrap();
    assert_eq!(failed.status(), 422);
    let failed_status = failed.status().as_u16() as i64;

    let admin = AdminClient::login(&app.base, "f1", "admin@f1.example").await;
    let all = admin.get_json("/admin/v1/outbound").await;
    let calls = all["data"].as_array().unwrap();
    // 6 requests and each fee post's inbound record: one row per call, its
    // send and its result together (16 records in the log).
    const CALLS: usize = 8;
    const RECORDS: usize = 16;
    assert_eq!(calls.len(), CALLS, "8 calls, each a send with its result");
    assert!(
        calls
            .windows(2)
            .all(|w| w[0]["seq"].as_i64() > w[1]["seq"].as_i64()),
        "newest first"
    );
    for call in calls {
        let result = &call["result"];
        assert!(
            result["seq"].as_i64().unwrap() > call["seq"].as_i64().unwrap(),
            "the result follows its send: {call}"
        );
        assert!(result["at"].as_i64().unwrap() >= call["at"].as_i64().unwrap());
        assert!(result["latency_us"].as_i64().unwrap() >= 0);
        assert!(
            call.get("kind").is_none(),
            "no separate result rows: {call}"
        );
    }
    assert!(all["next_before"].is_null());

    let ok = admin.get_json("/admin/v1/outbound?status=ok").await;
    assert_eq!(ok["data"].as_array().unwrap().len(), 6);
    assert!(ok["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["result"]["status"].as_i64().unwrap() < 300));
    // The refused fee: its inbound record and the logged answer.
    let errors = admin.get_json("/admin/v1/outbound?status=error").await;
    assert_eq!(errors["data"].as_array().unwrap().len(), 2);
    assert!(errors["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["result"]["status"] == failed_status));
    let exact = admin
        .get_json(&format!("/admin/v1/outbound?status={failed_status}"))
        .await;
    assert_eq!(exact["data"], errors["data"]);
    let future = chrono::Utc::now() + chrono::Duration::hours(1);
    let none = admin
        .get_json(&format!(
            "/admin/v1/outbound?from={}",
            future.timestamp_millis()
        ))
        .await;
    assert_eq!(none["data"], json!([]));
    let none = admin
        .get_json(&format!("/admin/v1/outbound?to={}", started - 60_000))
        .await;
    assert_eq!(none["data"], json!([]));
    let from_start = admin
        .get_json(&format!(
            "/admin/v1/outbound?from={}&connector=accounting",
            started - 60_000
        ))
        .await;
    assert_eq!(from_start["data"].as_array().unwrap().len(), CALLS);
    assert_eq!(
        admin
            .get_json("/admin/v1/outbound?connector=google_calendar")
            .await["data"],
        json!([])
    );
    assert_eq!(
        admin.get("/admin/v1/outbound?status=maybe").await.status(),
        422
    );
    // A status is three digits (the document's pattern), and an empty filter is not "no filter".
    for query in [
        "status=+200",
        "status=0200",
        "status=",
        "limit=",
        "connector=",
    ] {
        let refused = admin.get(&format!("/admin/v1/outbound?{query}")).await;
        assert_eq!(refused.status(), 422, "{query}");
    }
    assert_eq!(
        admin
            .get("/admin/v1/outbound?from=yesterday")
            .await
            .status(),
        422
    );
    assert_eq!(admin.get("/admin/v1/outbound?limit=0").await.status(), 422);

    // Pages of 3 walk every call once.
    let mut seen = Vec::new();
    let mut before: Option<i64> = None;
    for _ in 0..10 {
        let path = match before {
            Some(b) => format!("/admin/v1/outbound?limit=3&before={b}"),
            None => "/admin/v1/outbound?limit=3".to_string(),
        };
        let page = admin.get_json(&path).await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["seq"].as_i64().unwrap()),
        );
        match page["next_before"].as_i64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    let sends: Vec<i64> = calls.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert_eq!(seen, sends);
    assert_eq!(seen.len(), CALLS);

    // The export is byte for byte what `scopegate audit export` writes.
    let export = admin.get("/admin/v1/outbound/export").await;
    assert_eq!(export.headers()["content-type"], "application/x-ndjson");
    let exported = export.bytes().await.unwrap().to_vec();
    let mut cli = Vec::new();
    scopegate::outbound_log::export(&env.registry, "f1", None, |r| {
        serde_json::to_writer(&mut cli, r)?;
        cli.write_all(b"\n")
    })
    .await
    .unwrap();
    assert_eq!(exported, cli);
    assert_eq!(exported.iter().filter(|b| **b == b'\n').count(), RECORDS);
    app.stop().await;
}

/// Copies the built-in accounting contract into `dir`, adds `opened_at` to
/// matter references and calls it version 2.
fn newer_contract(dir: &std::path::Path) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/accounting");
    let dst = dir.join("accounting");
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dst.join("manifest.json")).unwrap()).unwrap();
    manifest["contract_version"] = json!("2");
    std::fs::write(dst.join("manifest.json"), manifest.to_string()).unwrap();
    let mut matter: Value =
        serde_json::from_str(&std::fs::read_to_string(dst.join("matter-ref.json")).unwrap())
            .unwrap();
    matter["properties"]["opened_at"] = json!({"type": "string", "format": "date-time", "description": "Date the matter was opened", "x-column": "opened_at", "x-column-type": "unix-ms"});
    std::fs::write(dst.join("matter-ref.json"), matter.to_string()).unwrap();
}

async fn newer_contracts_show_what_changed_and_need_reconsent(env: TestEnv) {
    env.add_seeded_firm("f1", small_seed()).await;
    add_login(&env.registry, "f1", "admin@f1.example", Role::Admin).await;
    let (client, secret) = enable_with_credential(&env.registry, "f1", "accounting").await;
    let schemas = tempfile::tempdir().unwrap();
    newer_contract(schemas.path());
    let config = scopegate::config::Config::resolve(&ConfigArgs {
        data_dir: Some(env.dir.path().to_path_buf()),
        database_url: Some(env.database_url.clone()),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        schemas_dir: Some(schemas.path().to_path_buf()),
        metrics_listen: Some(scopegate::config::MetricsListen::Off),
        ..Default::default()
    })
    .unwrap();
    let app = env.spawn_with(config).await;
    let admin = AdminClient::login(&app.base, "f1", "admin@f1.example").await;
    let list = admin.get_json("/admin/v1/connectors").await;
    let c = &list["data"][0];
    assert_eq!(c["contract_version"], "2");
    assert_eq!(c["consented"]["contract_version"], "1");
    assert_eq!(c["needs_reconsent"], true);
    assert_eq!(c["changes"]["known"], true);
    assert_eq!(c["changes"]["from_version"], "1");
    let changes = c["changes"]["schemas"].as_array().unwrap();
    let matter = changes
        .iter()
        .find(|s| s["schema"] == "matter_ref")
        .expect("matter_ref changed");
    assert_eq!(matter["added"], json!(["opened_at"]));
    assert_eq!(matter["removed"], json!([]));
    // The pages embed matter references, so they are listed as changed too; nothing else is.
    let changed: BTreeSet<&str> = changes
        .iter()
        .map(|s| s["schema"].as_str().unwrap())
        .collect();
    assert!(
        changed.iter().all(|s| s.starts_with("matter")),
        "{changed:?}"
    );
    // The field list is generated from the newer schema.
    let receives = c["receives"].as_array().unwrap();
    let matter_fields = receives
        .iter()
        .find(|r| r["schema"] == "matter_ref")
        .unwrap()["fields"]
        .to_string();
    assert!(matter_fields.contains("Date the matter was opened"));
    // Until re-consent the vendor gets nothing, not even a token.
    let refused = app
        .http
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let after: Value = admin
        .post("/admin/v1/connectors/accounting/enable", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["needs_reconsent"], false);
    assert_eq!(after["consented"]["contract_version"], "2");
    let token = app.token(&client, &secret).await;
    let matters: Value = app
        .get("/v1/matters?limit=1", &token)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        matters["data"][0]["opened_at"].is_string(),
        "the re-consented field now flows: {matters}"
    );
    let ledger = admin.get_json("/admin/v1/consent-ledger").await;
    assert_eq!(ledger["data"][0]["contract_version"], "2");
    assert_eq!(ledger["data"][0]["actor"], "admin@f1.example (settings)");
    assert_eq!(ledger["data"][1]["contract_version"], "1");
    app.stop().await;
}

on_both_backends!(
    outbound_viewer_filters_pages_and_exports,
    newer_contracts_show_what_changed_and_need_reconsent,
);
