//! The exits a review found outside the rule, each shut by the contract's
//! types, and the example connector: every response that depends on firm data
//! is an outbound record holding the SHA-256 of the exact bytes sent; a Google
//! event that fails its schema is neither sent nor logged; the matter webhook
//! delivers only for opted-in firms, only through the log.

use scopegate::outbound_log::{export, LogRecord};
use scopegate_e2e::google::*;
use scopegate_e2e::{enable_with_credential, on_both_backends, small_seed, TestEnv};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::sync::{Arc, Mutex};

on_both_backends!(
    unknown_matter_answer_is_logged_as_the_bytes_sent,
    fee_responses_are_logged_as_the_bytes_sent,
    an_event_failing_its_schema_is_neither_sent_nor_logged,
    matter_webhook_delivers_only_for_opted_in_firms_through_the_log
);

async fn records(env: &TestEnv, firm: &str) -> Vec<LogRecord> {
    let mut out = Vec::new();
    export(&env.registry, firm, None, |r| {
        out.push(r.clone());
        Ok(())
    })
    .await
    .expect("export");
    out
}

/// The outbound send whose payload hash is that of `bytes`, and its result's status.
fn logged_as_sent(records: &[LogRecord], bytes: &[u8]) -> Option<(LogRecord, Option<i64>)> {
    let hash = hex::encode(Sha256::digest(bytes));
    let send = records
        .iter()
        .find(|r| r.kind == "send" && r.direction == "outbound" && r.payload_sha256 == hash)?;
    let status = records
        .iter()
        .find(|r| r.kind == "result" && r.send_seq == Some(send.seq))
        .and_then(|r| r.status);
    Some((send.clone(), status))
}

async fn post_fee(
    app: &scopegate_e2e::TestApp,
    token: &str,
    key: &str,
    fee: &Value,
) -> (u16, String, Vec<u8>) {
    let response = app
        .http
        .post(app.url("/v1/fees"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(fee)
        .send()
        .await
        .expect("post");
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

async fn unknown_matter_answer_is_logged_as_the_bytes_sent(env: TestEnv) {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let beta = env.add_seeded_firm("beta-law", small_seed()).await;
    let (client_id, secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let app = env.spawn().await;
    let token = app.token(&client_id, &secret).await;
    let foreign: String = sqlx::query("SELECT id FROM matters LIMIT 1")
        .fetch_one(beta.pool())
        .await
        .unwrap()
        .get("id");
    let fee = json!({"matter_id": foreign, "amount_cents": 5000, "currency": "ZAR", "description": "Consultation", "fee_date": "2026-11-20"});
    let (status, content_type, body) = post_fee(&app, &token, "k-unknown", &fee).await;
    assert_eq!(status, 422);
    assert_eq!(content_type, "application/problem+json");
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["field"], "matter_id");
    app.stop().await;

    let log = records(&env, "alpha-law").await;
    let (send, result) = logged_as_sent(&log, &body).expect(
        "the 422 that reveals whether a matter exists is an outbound record of its exact bytes",
    );
    assert_eq!(result, Some(422));
    assert_eq!(send.record_ids, vec![foreign.clone()]);
    // The inbound fee itself was recorded before the firm database was read.
    let inbound = log
        .iter()
        .find(|r| r.kind == "send" && r.direction == "inbound")
        .expect("inbound record");
    assert!(inbound.seq < send.seq);
    assert!(records(&env, "beta-law").await.is_empty());
}

async fn fee_responses_are_logged_as_the_bytes_sent(env: TestEnv) {
    let alpha = env.add_seeded_firm("alpha-law", small_seed()).await;
    let (client_id, secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let app = env.spawn().await;
    let token = app.token(&client_id, &secret).await;
    let matter: String = sqlx::query("SELECT id FROM matters LIMIT 1")
        .fetch_one(alpha.pool())
        .await
        .unwrap()
        .get("id");
    let matter = app.shown_id("alpha-law", "accounting", &matter).await;
    let fee = json!({"matter_id": matter, "amount_cents": 7500, "currency": "ZAR", "description": "Drafting", "fee_date": "2026-11-21"});
    let (created, _, first) = post_fee(&app, &token, "k-fee", &fee).await;
    assert_eq!(created, 201);
    let (replayed, _, again) = post_fee(&app, &token, "k-fee", &fee).await;
    assert_eq!(replayed, 200);
    assert_eq!(first, again, "a replay returns the original fee");
    let mut other = fee.clone();
    other["amount_cents"] = json!(1);
    let (reused, _, refusal) = post_fee(&app, &token, "k-fee", &other).await;
    assert_eq!(reused, 422);
    // The vendor is shown the fee's id through its grant; the log names the firm's own.
    let real_fee: String = sqlx::query("SELECT id FROM fees WHERE idempotency_key = 'k-fee'")
        .fetch_one(alpha.pool())
        .await
        .unwrap()
        .get("id");
    let shown_fee = app.shown_id("alpha-law", "accounting", &real_fee).await;
    app.stop().await;

    let log = records(&env, "alpha-law").await;
    let (send, status) = logged_as_sent(&log, &first).expect("the fee response is logged");
    assert_eq!(status, Some(201));
    let fee_id = serde_json::from_slice::<Value>(&first).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(fee_id, shown_fee);
    assert!(send.record_ids.contains(&real_fee));
    assert!(send.target.starts_with("/v1/fees response to credential "));
    let replays: Vec<_> = log
        .iter()
        .filter(|r| r.kind == "result" && r.status == Some(200))
        .collect();
    assert!(!replays.is_empty(), "the replay is logged too");
    assert_eq!(
        logged_as_sent(&log, &refusal).map(|(_, s)| s),
        Some(Some(422))
    );
    // Every send has its result: nothing left the gateway half-recorded.
    let sends = log.iter().filter(|r| r.kind == "send").count();
    let results = log.iter().filter(|r| r.kind == "result").count();
    assert_eq!(sends, results);
}

async fn an_event_failing_its_schema_is_neither_sent_nor_logged(env: TestEnv) {
    const FIRM: &str = "harbour";
    let running = start_emulator().await;
    let emulator = running.emulator.clone();
    let db = env.add_seeded_firm(FIRM, small_seed()).await;
    let user = busiest_user(&db).await;
    let matter: String =
        sqlx::query("SELECT matter_id FROM diary_entries WHERE owner_user_id = $1 LIMIT 1")
            .bind(&user)
            .fetch_one(db.pool())
            .await
            .unwrap()
            .get("matter_id");
    // Longer than the event schema's 8192 characters: this entry must not leave.
    let oversized =
        add_diary_entry(&db, &user, &matter, &"x".repeat(9000), 1_790_000_000_000).await;
    enable_google(&env, FIRM).await;
    let app = env.spawn_with(google_config(&env, &running, 50)).await;
    assert_eq!(
        connect_user(&app, FIRM, &user, "fee.earner@gmail.example").await,
        200
    );
    let live = live_entries(&db, &user).await.len();
    eventually("the other entries are synced", || async {
        emulator.live_events().len() == live - 1
    })
    .await;
    app.stop().await;
    let log = records(&env, FIRM).await;
    assert!(
        !log.iter()
            .any(|r| r.kind == "send" && r.record_ids.contains(&oversized)),
        "no send record names the refused entry"
    );
    assert!(
        !emulator
            .received()
            .iter()
            .any(|r| r.body.contains("xxxxxxxxxx")),
        "Google never received it"
    );
    let sent: std::collections::BTreeSet<&String> = log
        .iter()
        .filter(|r| r.kind == "send")
        .flat_map(|r| r.record_ids.iter())
        .collect();
    for (id, ..) in live_entries(&db, &user).await {
        assert_eq!(sent.contains(&id), id != oversized, "entry {id}");
    }
}

/// A loopback webhook that keeps every body it receives.
pub(crate) async fn start_webhook() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body.to_vec());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, received)
}

fn delivered_ids(received: &Mutex<Vec<Vec<u8>>>) -> Vec<String> {
    received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|body| {
            let v: Value = serde_json::from_slice(body).unwrap();
            v["matters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn matter_webhook_delivers_only_for_opted_in_firms_through_the_log(env: TestEnv) {
    let alpha = env.add_seeded_firm("alpha-law", small_seed()).await;
    let beta = env.add_seeded_firm("beta-law", small_seed()).await;
    let catalogue = scopegate::connectors::catalogue();
    let webhook = catalogue.require("matter-webhook").unwrap();
    env.registry
        .enable_grant("alpha-law", &webhook.contract, "admin@alpha-law")
        .await
        .unwrap();
    let (url, received) = start_webhook().await;
    let mut config = env.config();
    config.connector_settings.insert(
        "matter-webhook".into(),
        [
            ("url".to_string(), url),
            ("interval_ms".to_string(), "50".to_string()),
        ]
        .into(),
    );
    let app = env.spawn_with(config).await;
    let alpha_matters: Vec<String> = sqlx::query("SELECT id FROM matters ORDER BY change_seq")
        .fetch_all(alpha.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("id"))
        .collect();
    eventually("alpha's matters are delivered", || async {
        delivered_ids(&received).len() >= alpha_matters.len()
    })
    .await;
    let mut got = delivered_ids(&received);
    got.sort();
    let mut want = alpha_matters.clone();
    want.sort();
    assert_eq!(got, want, "each of alpha's matters once, nothing of beta's");
    for body in received.lock().unwrap().iter() {
        let v: Value = serde_json::from_slice(body).unwrap();
        for m in v["matters"].as_array().unwrap() {
            let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["change_seq", "id", "name", "number"]);
        }
    }

    // Switched off: a renamed matter no longer leaves.
    env.registry
        .disable_grant("alpha-law", "matter-webhook", "admin@alpha-law")
        .await
        .unwrap();
    let mut tx = alpha.pool().begin().await.unwrap();
    let seq = scopegate::tenancy::next_change_seqs(&mut tx, 1)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE matters SET name = 'Renamed after switch-off', change_seq = $1 WHERE id = $2",
    )
    .bind(seq)
    .bind(&alpha_matters[0])
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    app.stop().await;
    assert_eq!(delivered_ids(&received).len(), alpha_matters.len());

    let log = records(&env, "alpha-law").await;
    for body in received.lock().unwrap().iter() {
        let (send, status) = logged_as_sent(&log, body).expect("each delivery is logged first");
        assert_eq!(status, Some(200));
        assert_eq!(send.connector, "matter-webhook");
    }
    assert!(records(&env, "beta-law").await.is_empty());
    drop(beta);
}
