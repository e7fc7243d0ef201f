//! Snapshots of exactly what leaves: for one firm seeded with the demo data,
//! the bodies each connector sends to its third party (the accounting vendor's
//! pages, fee result and fee refusal; the Google Calendar event bodies as the
//! emulator received them; the matter webhook's delivery), stored under
//! `snapshots/` and reviewed like code. Any widening of a payload (a new
//! field, a value that was not sent before) is a snapshot diff.
//!
//! The seed is deterministic for a firm id (`seed_demo` seeds its RNG from
//! it) apart from row ids (UUID v4) and times (relative to now). Those, the
//! Google event ids (derived from a per-grant secret), cursors and change
//! sequence numbers are redacted, each after checking its shape, so the
//! snapshots hold on every run and on both backends. With `CI=true` insta
//! writes nothing and a mismatch fails the test; locally a mismatch leaves a
//! `.snap.new` beside the snapshot (`cargo insta review`, or rename it).

use crate::outbound_exits::start_webhook;
use insta::internals::{Content, Redaction};
use scopegate::tenancy::{seed::SeedSize, FirmDb};
use scopegate_e2e::google::*;
use scopegate_e2e::{enable_with_credential, on_both_backends, TestApp, TestEnv};
use serde_json::{json, Value};

on_both_backends!(
    accounting_bodies,
    google_calendar_event_bodies,
    matter_webhook_delivery
);

/// The firm id seeds the demo data's RNG: keep it, or every snapshot changes.
const FIRM: &str = "harbour-law";

/// Small enough to read in a snapshot; one all-day diary entry among the first fee earner's.
fn snapshot_seed() -> SeedSize {
    SeedSize {
        fee_earners: 2,
        clients: 4,
        matters: 4,
        diary_entries: 8,
        transactions: 6,
    }
}

fn text(value: &Content) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value:?}"))
        .to_string()
}

/// A row id: a UUID.
fn uuid() -> Redaction {
    insta::dynamic_redaction(|value, path| {
        let s = text(&value);
        assert!(
            uuid::Uuid::parse_str(&s).is_ok(),
            "{path} is not a UUID: {s}"
        );
        "[uuid]"
    })
}

/// A stored time sent as RFC 3339 UTC with milliseconds (`2026-11-20T09:30:00.000Z`).
fn timestamp() -> Redaction {
    insta::dynamic_redaction(|value, path| {
        let s = text(&value);
        let parsed = chrono::DateTime::parse_from_rfc3339(&s);
        assert!(
            parsed.is_ok() && s.ends_with('Z') && s.len() == 24,
            "{path} is not RFC 3339 UTC with milliseconds: {s}"
        );
        "[timestamp]"
    })
}

/// A change sequence number: a positive integer.
fn change_seq() -> Redaction {
    insta::dynamic_redaction(|value, path| {
        assert!(
            value.as_i64().is_some_and(|n| n > 0) || value.as_u64().is_some_and(|n| n > 0),
            "{path} is not a positive integer: {value:?}"
        );
        "[change_seq]"
    })
}

/// An opaque paging cursor: base64url text.
fn cursor() -> Redaction {
    insta::dynamic_redaction(|value, path| {
        let s = text(&value);
        assert!(
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{path} is not a base64url cursor: {s}"
        );
        "[cursor]"
    })
}

/// The demo firm, seeded with the snapshot seed.
async fn seeded(env: &TestEnv) -> FirmDb {
    env.add_seeded_firm(FIRM, snapshot_seed()).await
}

/// Change sequence numbers of a page's items must rise; the snapshot redacts them.
fn assert_change_order(page: &Value) {
    let seqs: Vec<i64> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|item| item["change_seq"].as_i64().expect("change_seq"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "change order: {seqs:?}"
    );
}

async fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    let response = app.get(path, token).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.expect("json")
}

async fn post_fee(app: &TestApp, token: &str, key: &str, fee: &Value) -> (u16, String, Value) {
    let response = app
        .http
        .post(app.url("/v1/fees"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(fee)
        .send()
        .await
        .expect("post fee");
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("content-type")
        .to_string();
    (status, content_type, response.json().await.expect("json"))
}

/// What the accounting vendor receives: a page of transactions, a page of
/// matter references, a posted fee and the 422 for a matter the firm lacks.
async fn accounting_bodies(env: TestEnv) {
    let db = seeded(&env).await;
    let (client_id, secret) = enable_with_credential(&env.registry, FIRM, "accounting").await;
    let app = env.spawn().await;
    let token = app.token(&client_id, &secret).await;

    let transactions = get_json(&app, "/v1/transactions?limit=3", &token).await;
    assert_change_order(&transactions);
    insta::assert_json_snapshot!("accounting_transactions_page", transactions, {
        ".data[].id" => uuid(),
        ".data[].matter_id" => uuid(),
        ".data[].posted_at" => timestamp(),
        ".data[].change_seq" => change_seq(),
        ".next_cursor" => cursor(),
    });

    let matters = get_json(&app, "/v1/matters?limit=3", &token).await;
    assert_change_order(&matters);
    insta::assert_json_snapshot!("accounting_matters_page", matters, {
        ".data[].id" => uuid(),
        ".data[].change_seq" => change_seq(),
        ".next_cursor" => cursor(),
    });

    let matter: String = sqlx::query_scalar("SELECT id FROM matters WHERE number = 'MAT01000'")
        .fetch_one(db.pool())
        .await
        .expect("matter MAT01000");
    // Named as the vendor's grant is shown it (each grant sees its own ids).
    let matter = app.shown_id(FIRM, "accounting", &matter).await;
    let fee = json!({"matter_id": matter, "amount_cents": 150_000, "currency": "ZAR",
                     "description": "Consultation and drafting", "fee_date": "2026-11-20"});
    let (status, content_type, result) = post_fee(&app, &token, "snapshot-fee", &fee).await;
    assert_eq!((status, content_type.as_str()), (201, "application/json"));
    assert_eq!(result["matter_id"], matter);
    insta::assert_json_snapshot!("accounting_fee_result", result, {
        ".id" => uuid(),
        ".matter_id" => uuid(),
        ".transaction_id" => uuid(),
    });

    // A well-formed matter id this firm does not have (nor any other: it is not a UUID v4).
    let unknown = json!({"matter_id": "00000000-0000-0000-0000-000000000000", "amount_cents": 5_000,
                         "currency": "ZAR", "description": "Consultation", "fee_date": "2026-11-20"});
    let (status, content_type, problem) = post_fee(&app, &token, "snapshot-422", &unknown).await;
    assert_eq!(
        (status, content_type.as_str()),
        (422, "application/problem+json")
    );
    insta::assert_json_snapshot!("accounting_fee_unknown_matter_problem", problem);
    app.stop().await;
}

/// What Google receives when the first fee earner connects: one event body
/// per live diary entry of theirs, with the method and path it was sent to.
async fn google_calendar_event_bodies(env: TestEnv) {
    let running = start_emulator().await;
    let emulator = running.emulator.clone();
    let db = seeded(&env).await;
    enable_google(&env, FIRM).await;
    let app = env.spawn_with(google_config(&env, &running, 50)).await;
    // Seeded emails (`<first name>.<n>@<firm>.example`) are deterministic; user ids are not.
    let user: String = sqlx::query_scalar("SELECT id FROM users ORDER BY email LIMIT 1")
        .fetch_one(db.pool())
        .await
        .expect("user");
    assert_eq!(
        connect_user(&app, FIRM, &user, "fee.earner@gmail.example").await,
        200
    );
    let live = live_entries(&db, &user).await.len();
    assert!(live > 0);
    eventually("the first sync completes", || async {
        emulator.live_events().len() == live
    })
    .await;
    app.stop().await;

    let mut sent: Vec<Value> = emulator
        .received()
        .iter()
        .filter(|r| r.kind == "api" && !r.body.is_empty())
        .map(|r| {
            let body: Value = serde_json::from_str(&r.body).expect("event body is JSON");
            json!({"method": r.method, "path": r.path, "body": redact_event(body)})
        })
        .collect();
    assert_eq!(sent.len(), live, "one insert per live entry, no retry");
    // The order of the inserts is the sync's; times are redacted, so sort what is left.
    sent.sort_by_key(|v| v.to_string());
    insta::assert_json_snapshot!("google_calendar_event_bodies", sent);
}

/// Redacts an event body's id and times (derived from a per-grant secret and
/// from now) after checking their shape; everything else stays as sent.
fn redact_event(mut body: Value) -> Value {
    let id = body["id"].as_str().expect("event id").to_string();
    // Google's rule for client-chosen ids: base32hex (a-v, 0-9), 5 to 1024 characters.
    assert!(
        (5..=1024).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='v').contains(&c)),
        "event id is not base32hex: {id}"
    );
    body["id"] = json!("[event id]");
    for key in ["start", "end"] {
        let Some(time) = body.get_mut(key).and_then(Value::as_object_mut) else {
            continue;
        };
        if let Some(Value::String(t)) = time.get("dateTime") {
            assert!(
                chrono::DateTime::parse_from_rfc3339(t).is_ok() && t.ends_with('Z'),
                "{key}.dateTime is not RFC 3339 UTC: {t}"
            );
            time.insert("dateTime".into(), json!("[date-time]"));
        }
        if let Some(Value::String(d)) = time.get("date") {
            assert!(
                chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok(),
                "{key}.date is not YYYY-MM-DD: {d}"
            );
            time.insert("date".into(), json!("[date]"));
        }
    }
    body
}

/// What the matter webhook receives: the opted-in firm's matter references, delivered once.
async fn matter_webhook_delivery(env: TestEnv) {
    let db = seeded(&env).await;
    let catalogue = scopegate::connectors::catalogue();
    let webhook = catalogue.require("matter-webhook").expect("connector");
    env.registry
        .enable_grant(FIRM, &webhook.contract, "admin@harbour-law")
        .await
        .expect("enable");
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
    let matters: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM matters")
        .fetch_one(db.pool())
        .await
        .expect("count");
    let delivered = || {
        received
            .lock()
            .unwrap()
            .iter()
            .map(|body| {
                serde_json::from_slice::<Value>(body).expect("delivery is JSON")["matters"]
                    .as_array()
                    .expect("matters")
                    .len() as i64
            })
            .sum::<i64>()
    };
    eventually("the matters are delivered", || async {
        delivered() >= matters
    })
    .await;
    app.stop().await;
    let bodies: Vec<Value> = received
        .lock()
        .unwrap()
        .iter()
        .map(|body| serde_json::from_slice(body).expect("json"))
        .collect();
    for body in &bodies {
        assert_change_order(&json!({"data": body["matters"]}));
    }
    insta::assert_json_snapshot!("matter_webhook_deliveries", bodies, {
        "[].matters[].id" => uuid(),
        "[].matters[].change_seq" => change_seq(),
    });
}
