//! Concurrent retries of one `Idempotency-Key` post exactly one fee, on SQLite and PostgreSQL;
//! an amount sent as `1500.0` is the fee `1500`.

use scopegate_e2e::{enable_with_credential, on_both_backends, small_seed, TestEnv};
use serde_json::{json, Value};
use sqlx::Row;

on_both_backends!(
    sixty_four_concurrent_retries_post_one_fee,
    an_amount_written_as_a_whole_float_is_the_same_fee
);

async fn sixty_four_concurrent_retries_post_one_fee(env: TestEnv) {
    let db = env.add_seeded_firm("alpha-law", small_seed()).await;
    let (client_id, secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let app = env.spawn().await;
    let token = app.token(&client_id, &secret).await;
    let matter: String = sqlx::query("SELECT id FROM matters LIMIT 1")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get("id");
    // Named as the vendor's grant is shown it.
    let matter = app.shown_id("alpha-law", "accounting", &matter).await;
    let body = json!({"matter_id": matter, "amount_cents": 77_700, "currency": "ZAR", "description": "Retried fee", "fee_date": "2026-11-21"});
    let before: i64 = sqlx::query("SELECT count(*) AS n FROM accounting_transactions")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get("n");
    let attempts = futures::future::join_all((0..64).map(|_| {
        app.http
            .post(app.url("/v1/fees"))
            .bearer_auth(&token)
            .header("Idempotency-Key", "retry-me")
            .json(&body)
            .send()
    }))
    .await;
    let mut created = 0;
    let mut fee_ids = std::collections::BTreeSet::new();
    for response in attempts {
        let response = response.unwrap();
        match response.status().as_u16() {
            201 => created += 1,
            200 => {}
            other => panic!("unexpected status {other}: {:?}", response.text().await),
        }
        let fee: Value = response.json().await.unwrap();
        fee_ids.insert(fee["id"].as_str().unwrap().to_string());
    }
    assert_eq!(created, 1, "exactly one attempt creates the fee");
    assert_eq!(fee_ids.len(), 1, "every retry sees the same fee");
    let fees: i64 = sqlx::query("SELECT count(*) AS n FROM fees")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get("n");
    let after: i64 = sqlx::query("SELECT count(*) AS n FROM accounting_transactions")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get("n");
    assert_eq!((fees, after - before), (1, 1));
    app.stop().await;
}

/// JSON Schema counts `1500.0` as an integer, so the fee schema accepts it: the
/// fee is posted (it used to fail with 500), and a retry sending `1500` is the
/// same request, replayed, not "a different body".
async fn an_amount_written_as_a_whole_float_is_the_same_fee(env: TestEnv) {
    let db = env.add_seeded_firm("alpha-law", small_seed()).await;
    let (client_id, secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let app = env.spawn().await;
    let token = app.token(&client_id, &secret).await;
    let matter: String = sqlx::query("SELECT id FROM matters LIMIT 1")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get("id");
    // Named as the vendor's grant is shown it.
    let matter = app.shown_id("alpha-law", "accounting", &matter).await;
    let post = |amount: &'static str| {
        let body = format!(
            r#"{{"matter_id": "{matter}", "amount_cents": {amount}, "currency": "ZAR", "description": "Float fee", "fee_date": "2026-11-21"}}"#
        );
        app.http
            .post(app.url("/v1/fees"))
            .bearer_auth(&token)
            .header("Idempotency-Key", "whole-float")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let first = post("1500.0").await.unwrap();
    assert_eq!(first.status(), 201, "{:?}", first.text().await);
    let fee: Value = first.json().await.unwrap();
    assert_eq!(fee["amount_cents"], json!(1500));
    let retry = post("1500").await.unwrap();
    assert_eq!(retry.status(), 200, "{:?}", retry.text().await);
    let replayed: Value = retry.json().await.unwrap();
    assert_eq!(replayed["id"], fee["id"]);
    app.stop().await;
}
