//! The accounting connector driven as a vendor drives it, on SQLite and
//! PostgreSQL: OAuth client credentials, paginated polling, fee posting, and
//! every refusal the RFCs and our schemas prescribe.

use scopegate_e2e::{
    enable_with_credential, on_both_backends, schema_fields, sensitive_values, small_seed, TestApp,
    TestEnv,
};
use serde_json::{json, Value};
use sqlx::Row;

on_both_backends!(
    vendor_flow_polls_posts_and_sees_only_new_changes,
    oauth_errors_follow_rfc_6749,
    bearer_errors_follow_rfc_6750,
    fee_posts_are_validated_and_write_nothing_when_bad,
    disabling_refuses_the_token_on_next_use
);

fn assert_items_only_schema_fields(page: &Value, schema: &str) {
    let allowed = schema_fields("accounting", schema);
    let top: Vec<&String> = page.as_object().unwrap().keys().collect();
    assert_eq!(
        top,
        vec!["data", "has_more", "next_cursor"],
        "page envelope"
    );
    for item in page["data"].as_array().unwrap() {
        for key in item.as_object().unwrap().keys() {
            assert!(
                allowed.contains(key),
                "field {key} is not in schema {schema}"
            );
        }
    }
}

async fn poll_all(
    app: &TestApp,
    token: &str,
    path: &str,
    cursor: Option<String>,
    limit: usize,
) -> (Vec<Value>, String, Vec<String>) {
    let mut items = Vec::new();
    let mut bodies = Vec::new();
    let mut cursor = cursor;
    for _ in 0..1000 {
        let url = match &cursor {
            Some(c) => format!("{path}?limit={limit}&cursor={c}"),
            None => format!("{path}?limit={limit}"),
        };
        let response = app.get(&url, token).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let text = response.text().await.unwrap();
        let page: Value = serde_json::from_str(&text).unwrap();
        assert_items_only_schema_fields(
            &page,
            if path.contains("matters") {
                "matter_ref"
            } else {
                "transaction"
            },
        );
        items.extend(page["data"].as_array().unwrap().iter().cloned());
        bodies.push(text);
        cursor = Some(page["next_cursor"].as_str().unwrap().to_string());
        if !page["has_more"].as_bool().unwrap() {
            return (items, cursor.unwrap(), bodies);
        }
    }
    panic!("pagination did not end");
}

async fn vendor_flow_polls_posts_and_sees_only_new_changes(env: TestEnv) {
    let db = env.add_seeded_firm("alpha-law", small_seed()).await;
    let (client_id, secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let app = env.spawn().await;

    // Token with HTTP Basic client authentication.
    let response = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "transactions:read fees:write");
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap().to_string();

    let (transactions, cursor, mut bodies) =
        poll_all(&app, &token, "/v1/transactions", None, 7).await;
    assert_eq!(transactions.len(), 60);
    let seqs: Vec<i64> = transactions
        .iter()
        .map(|t| t["change_seq"].as_i64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "change order");
    let (matters, _, matter_bodies) = poll_all(&app, &token, "/v1/matters", None, 4).await;
    assert_eq!(matters.len(), 10);
    bodies.extend(matter_bodies);

    // Nothing changed: the same cursor comes back with no data.
    let (none, same_cursor, _) =
        poll_all(&app, &token, "/v1/transactions", Some(cursor.clone()), 50).await;
    assert!(none.is_empty());
    assert_eq!(same_cursor, cursor);

    // Post three fees; the next poll shows exactly their three transactions.
    let mut fee_transactions = Vec::new();
    for (n, matter) in matters.iter().take(3).enumerate() {
        let response = app.http.post(app.url("/v1/fees")).bearer_auth(&token).header("Idempotency-Key", format!("fee-{n}"))
            .json(&json!({"matter_id": matter["id"], "amount_cents": 125_000 + n as i64, "currency": "ZAR", "description": "Drafting", "fee_date": "2026-11-20"}))
            .send().await.unwrap();
        assert_eq!(response.status(), 201);
        let fee: Value = response.json().await.unwrap();
        assert_eq!(fee["matter_id"], matter["id"]);
        fee_transactions.push(fee["transaction_id"].as_str().unwrap().to_string());
        bodies.push(fee.to_string());
    }
    let (new, _, new_bodies) = poll_all(&app, &token, "/v1/transactions", Some(cursor), 2).await;
    let new_ids: Vec<String> = new
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(new_ids, fee_transactions);
    bodies.extend(new_bodies);
    let stored: i64 = sqlx::query("SELECT count(*) AS n FROM fees")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get("n");
    assert_eq!(stored, 3);

    // No sensitive value in any response or outbound record.
    let mut exported = String::new();
    scopegate::outbound_log::export(&env.registry, "alpha-law", None, |r| {
        exported.push_str(&serde_json::to_string(r).unwrap());
        Ok(())
    })
    .await
    .unwrap();
    let everything = format!("{}{}", bodies.join("\n"), exported);
    for value in sensitive_values(&db).await {
        assert!(
            !everything.contains(&value),
            "sensitive value {value:?} left the gateway"
        );
    }
    // Every response was logged: one send and one result per request; a fee
    // post also records the inbound fee it wrote (a send and a result).
    // Counted after the graceful stop: a result may wait up to 10 ms to share
    // the next send's commit, and the stop commits it.
    let log_keys = app.state.log_keys.clone();
    app.stop().await;
    let report =
        scopegate::outbound_log::verify_all(&env.registry, &log_keys, Some("alpha-law"), None)
            .await
            .unwrap();
    assert!(report.faults.is_empty());
    let requests = 9 + 3 + 1 + 3 + 2; // transaction pages, matter pages, empty poll, fees, new pages
    let fees = 3;
    assert_eq!(report.records, 2 * (requests + fees) as u64);
}

async fn oauth_error(
    app: &TestApp,
    request: reqwest::RequestBuilder,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let _ = app;
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.json().await.unwrap(), headers)
}

async fn oauth_errors_follow_rfc_6749(env: TestEnv) {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let (client_id, secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let mut config = env.config();
    config.limits.auth_failures_per_ip = 1000;
    let app = env.spawn_with(config).await;
    let token_url = app.url("/oauth/token");
    let (s, b, _) = oauth_error(
        &app,
        app.http.post(&token_url).form(&[
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
        ]),
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_request")));
    let (s, b, _) = oauth_error(
        &app,
        app.http
            .post(&token_url)
            .json(&json!({"grant_type": "client_credentials"})),
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_request")));
    let (s, b, h) = oauth_error(
        &app,
        app.http
            .post(&token_url)
            .basic_auth(&client_id, Some("sgs_wrong"))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
    assert!(h["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    let (s, b, h) = oauth_error(
        &app,
        app.http.post(&token_url).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", &secret[..secret.len() - 2]),
        ]),
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
    assert!(h.get("www-authenticate").is_none());
    let (s, b, _) = oauth_error(
        &app,
        app.http
            .post(&token_url)
            .basic_auth(&client_id, Some(&secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
            ]),
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_request")));
    let (s, b, _) = oauth_error(
        &app,
        app.http
            .post(&token_url)
            .basic_auth(&client_id, Some(&secret))
            .form(&[("grant_type", "password")]),
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (s, b, _) = oauth_error(
        &app,
        app.http
            .post(&token_url)
            .basic_auth(&client_id, Some(&secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "transactions:read clients:read"),
            ]),
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_scope")));
    let (s, b, _) = oauth_error(
        &app,
        app.http
            .post(&token_url)
            .basic_auth(&client_id, Some(&secret))
            .body("grant_type=client_credentials&grant_type=client_credentials")
            .header("content-type", "application/x-www-form-urlencoded"),
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_request")));

    // RFC 7009: revocation answers 200 also for unknown tokens, and revoked tokens stop working.
    let token = app.token(&client_id, &secret).await;
    let revoke_url = app.url("/oauth/revoke");
    let r = app
        .http
        .post(&revoke_url)
        .basic_auth(&client_id, Some(&secret))
        .form(&[("token", "sga_unknown")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.get("/v1/matters", &token).await.status(), 200);
    let r = app
        .http
        .post(&revoke_url)
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("token", token.as_str()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.get("/v1/matters", &token).await.status(), 401);
    app.stop().await;
}

async fn bearer_errors_follow_rfc_6750(env: TestEnv) {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let (client_id, secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let app = env.spawn().await;
    let missing = app
        .http
        .get(app.url("/v1/transactions"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    assert!(missing.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let garbage = app.get("/v1/transactions", "sga_notatoken").await;
    assert_eq!(garbage.status(), 401);
    assert!(garbage.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let narrow = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "fees:write"),
        ])
        .send()
        .await
        .unwrap();
    let narrow: Value = narrow.json().await.unwrap();
    let response = app
        .get("/v1/transactions", narrow["access_token"].as_str().unwrap())
        .await;
    assert_eq!(response.status(), 403);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
    let token = app.token(&client_id, &secret).await;
    let forged = app.get("/v1/transactions?cursor=Zm9yZ2Vk", &token).await;
    assert_eq!(forged.status(), 400);
    let problem: Value = forged.json().await.unwrap();
    assert_eq!(problem["field"], "cursor");
    let spec: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["paths"]["/v1/fees"]["post"].is_object());
    app.stop().await;
}

async fn fee_posts_are_validated_and_write_nothing_when_bad(env: TestEnv) {
    let alpha = env.add_seeded_firm("alpha-law", small_seed()).await;
    let beta = env.add_seeded_firm("beta-law", small_seed()).await;
    let (client_id, secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let app = env.spawn().await;
    let token = app.token(&client_id, &secret).await;
    let own: String = sqlx::query("SELECT id FROM matters LIMIT 1")
        .fetch_one(alpha.pool())
        .await
        .unwrap()
        .get("id");
    let foreign: String = sqlx::query("SELECT id FROM matters LIMIT 1")
        .fetch_one(beta.pool())
        .await
        .unwrap()
        .get("id");
    // The vendor names the matter by the id its grant is shown; beta's real id is no matter of alpha's.
    let own = app.shown_id("alpha-law", "accounting", &own).await;
    let good = json!({"matter_id": own, "amount_cents": 5000, "currency": "ZAR", "description": "Consultation", "fee_date": "2026-11-20"});
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut v = good.clone();
                v["client_email"] = json!("x@y.z");
                v
            },
            "client_email",
        ),
        (
            {
                let mut v = good.clone();
                v["amount_cents"] = json!(-100);
                v
            },
            "amount_cents",
        ),
        (
            {
                let mut v = good.clone();
                v["amount_cents"] = json!(10_000_000_000_i64);
                v
            },
            "amount_cents",
        ),
        (
            {
                let mut v = good.clone();
                v["amount_cents"] = json!("5000");
                v
            },
            "amount_cents",
        ),
        (
            {
                let mut v = good.clone();
                v["fee_date"] = json!("20 Nov");
                v
            },
            "fee_date",
        ),
        (
            {
                let mut v = good.clone();
                v["matter_id"] = json!(foreign);
                v
            },
            "matter_id",
        ),
        (
            {
                let mut v = good.clone();
                v["matter_id"] = json!("00000000-0000-0000-0000-000000000000");
                v
            },
            "matter_id",
        ),
        (
            {
                let mut v = good.clone();
                v.as_object_mut().unwrap().remove("currency");
                v
            },
            "currency",
        ),
    ];
    for (n, (body, field)) in cases.iter().enumerate() {
        let r = app
            .http
            .post(app.url("/v1/fees"))
            .bearer_auth(&token)
            .header("Idempotency-Key", format!("bad-{n}"))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "case {n}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let problem: Value = r.json().await.unwrap();
        if !field.is_empty() {
            assert_eq!(problem["field"], *field, "case {n}: {problem}");
        }
        assert!(!problem["detail"].as_str().unwrap().is_empty());
    }
    let no_key = app
        .http
        .post(app.url("/v1/fees"))
        .bearer_auth(&token)
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 400);
    let not_json = app
        .http
        .post(app.url("/v1/fees"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "k")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    for db in [&alpha, &beta] {
        let n: i64 = sqlx::query("SELECT count(*) AS n FROM fees")
            .fetch_one(db.pool())
            .await
            .unwrap()
            .get("n");
        assert_eq!(n, 0, "a refused fee was written");
    }
    // Same key, different body: refused, original kept.
    let first = app
        .http
        .post(app.url("/v1/fees"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "k1")
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let mut changed = good.clone();
    changed["amount_cents"] = json!(9999);
    let reused = app
        .http
        .post(app.url("/v1/fees"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "k1")
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 422);
    let replay = app
        .http
        .post(app.url("/v1/fees"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "k1")
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    app.stop().await;
}

async fn disabling_refuses_the_token_on_next_use(env: TestEnv) {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let (client_id, secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let app = env.spawn().await;
    let token = app.token(&client_id, &secret).await;
    assert_eq!(
        app.get("/v1/transactions?limit=1", &token).await.status(),
        200
    );
    env.registry
        .disable_grant("alpha-law", "accounting", "amy@alpha")
        .await
        .unwrap();
    let refused = app.get("/v1/transactions?limit=1", &token).await;
    assert_eq!(refused.status(), 401);
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}
