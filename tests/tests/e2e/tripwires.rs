//! Tripwires as a thief trips them and the operator hears of it: a decoy
//! credential answered byte for byte like a wrong secret, a vendor token
//! probing outside its grant, a fee naming another grant's matter id; each
//! arriving at a local webhook receiver (signature checked) within a second,
//! and listed for the firm. Pseudonymous ids: each grant sees its own, stable
//! across credential rotation, switching off and on and master-key rotation,
//! and `trace` names the grant a leaked id came from.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use scopegate::config::AlertWebhook;
use scopegate::keys::{generate_key, Keyring};
use scopegate::security::pseudonyms::Pseudonyms;
use scopegate::tenancy::Tenancy;
use scopegate_e2e::{enable_with_credential, on_both_backends, small_seed, TestApp, TestEnv};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::Row;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

on_both_backends!(
    each_tripwire_reaches_the_webhook_within_a_second,
    pseudonymous_ids_are_per_grant_stable_and_traceable
);

const WEBHOOK_KEY: &str = "tripwire-test-hmac-key-0123456789";

/// A received alert: when it arrived and its body.
type Received = (Instant, Value);

/// A local webhook receiver that checks each signature and passes the event on.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel::<Received>();
    async fn receive(
        State(tx): State<mpsc::UnboundedSender<Received>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> axum::http::StatusCode {
        let at = Instant::now();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(WEBHOOK_KEY.as_bytes()).unwrap();
        mac.update(&body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let sent = headers
            .get("x-scopegate-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert_eq!(sent, expected, "the webhook's signature must verify");
        tx.send((at, serde_json::from_slice(&body).unwrap()))
            .unwrap();
        axum::http::StatusCode::NO_CONTENT
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/alerts", axum::routing::post(receive))
        .with_state(tx);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

/// The next alert of `kind`, and how long after `since` it arrived.
async fn next_alert(
    alerts: &mut mpsc::UnboundedReceiver<Received>,
    kind: &str,
    since: Instant,
) -> (Value, Duration) {
    loop {
        let (at, event) = tokio::time::timeout(Duration::from_secs(5), alerts.recv())
            .await
            .unwrap_or_else(|_| panic!("no {kind} alert within 5 s"))
            .unwrap();
        if event["kind"] == kind {
            return (event, at.duration_since(since));
        }
    }
}

async fn token_request(app: &TestApp, id: &str, secret: &str) -> reqwest::Response {
    app.http
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

/// Status, headers (without the date, which ticks, and any request id) and body bytes.
async fn answer(response: reqwest::Response) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let status = response.status().as_u16();
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    headers.sort();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

async fn post_fee(app: &TestApp, token: &str, key: &str, matter: &str) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/v1/fees"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({"matter_id": matter, "amount_cents": 5000, "currency": "ZAR", "description": "Consultation", "fee_date": "2026-11-20"}))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn first_matter(app: &TestApp, token: &str) -> String {
    let page: Value = app
        .get("/v1/matters?limit=1", token)
        .await
        .json()
        .await
        .unwrap();
    page["data"][0]["id"].as_str().unwrap().to_string()
}

async fn each_tripwire_reaches_the_webhook_within_a_second(env: TestEnv) {
    env.add_seeded_firm("alpha", small_seed()).await;
    env.add_seeded_firm("beta", small_seed()).await;
    let (alpha_id, alpha_secret) =
        enable_with_credential(&env.registry, "alpha", "accounting").await;
    let (beta_id, beta_secret) = enable_with_credential(&env.registry, "beta", "accounting").await;
    let (url, mut alerts) = receiver().await;
    let mut config = env.config();
    config.alert_webhook = Some(AlertWebhook {
        url: url.into(),
        key: WEBHOOK_KEY.to_string().into(),
    });
    let app = env.spawn_with(config).await;

    // A decoy in the real format, answered exactly like a real client id with a wrong secret.
    let decoy = env
        .registry
        .add_tripwire("alpha", "config backup on the file server")
        .await
        .unwrap();
    use secrecy::ExposeSecret;
    let wrong_secret = scopegate::secrets::generate(scopegate::secrets::SecretKind::ClientSecret);
    // The very format of a real credential (base58, so its length varies like theirs).
    use scopegate::secrets::{check_format, SecretKind};
    assert!(check_format(SecretKind::ClientId, &decoy.client_id).is_ok());
    assert!(check_format(
        SecretKind::ClientSecret,
        decoy.client_secret.expose_secret()
    )
    .is_ok());
    assert_eq!(&decoy.client_id[..4], &alpha_id[..4]);
    let wrong = answer(token_request(&app, &alpha_id, &wrong_secret).await).await;
    let sent = Instant::now();
    let tripped =
        answer(token_request(&app, &decoy.client_id, decoy.client_secret.expose_secret()).await)
            .await;
    assert_eq!(
        tripped, wrong,
        "a decoy must be answered exactly like a wrong secret"
    );
    assert_eq!(wrong.0, 401);
    let (event, decoy_latency) = next_alert(&mut alerts, "decoy_credential", sent).await;
    assert_eq!(event["firm_id"], "alpha");
    assert_eq!(event["tripwire_id"], decoy.tripwire_id.as_str());
    assert_eq!(event["source_ip"], "127.0.0.1");
    // The same in the form body, and the time each costs (the same class: one lookup, one hash).
    let (mut wrong_ms, mut decoy_ms) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        let t = Instant::now();
        token_request(&app, &alpha_id, &wrong_secret).await;
        wrong_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        token_request(&app, &decoy.client_id, &wrong_secret).await;
        decoy_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (wrong_median, decoy_median) = (median(&mut wrong_ms), median(&mut decoy_ms));
    println!(
        "token endpoint median: wrong secret {wrong_median:.2} ms, decoy {decoy_median:.2} ms"
    );
    assert!(decoy_median < wrong_median * 3.0 + 5.0 && wrong_median < decoy_median * 3.0 + 5.0);

    // A read-only token asking to post a fee, and asking for a route no connector has.
    let read_only: Value = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&alpha_id, Some(&alpha_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "transactions:read"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let read_only = read_only["access_token"].as_str().unwrap().to_string();
    let grant = env.registry.grant("alpha", "accounting").await.unwrap();
    let sent = Instant::now();
    let (status, problem) = post_fee(
        &app,
        &read_only,
        "probe-1",
        "00000000-0000-4000-8000-000000000001",
    )
    .await;
    assert_eq!(status, 403, "{problem}");
    let (event, scope_latency) = next_alert(&mut alerts, "out_of_scope", sent).await;
    assert_eq!(event["grant_id"], grant.id.as_str());
    assert_eq!(event["connector"], "accounting");
    assert!(
        event["detail"].as_str().unwrap().contains("fees:write"),
        "{event}"
    );
    let sent = Instant::now();
    let probe = app.get("/v1/clients", &read_only).await;
    assert_eq!(probe.status(), 404);
    let (event, path_latency) = next_alert(&mut alerts, "out_of_scope", sent).await;
    assert_eq!(event["grant_id"], grant.id.as_str());
    assert!(
        event["detail"].as_str().unwrap().contains("/v1/clients"),
        "{event}"
    );
    // Without a valid token, an unknown path is only a 404.
    assert_eq!(app.get("/v1/clients", "sga_nothing").await.status(), 404);

    // Beta's vendor's matter id, posted by alpha's vendor: refused like an unknown matter.
    let alpha = app.token(&alpha_id, &alpha_secret).await;
    let beta = app.token(&beta_id, &beta_secret).await;
    let foreign = first_matter(&app, &beta).await;
    let (unknown_status, unknown) = post_fee(
        &app,
        &alpha,
        "fee-unknown",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await;
    let _ = next_alert(&mut alerts, "forged_id", Instant::now()).await;
    let sent = Instant::now();
    let (status, refused) = post_fee(&app, &alpha, "fee-foreign", &foreign).await;
    assert_eq!(
        (status, &refused),
        (unknown_status, &unknown),
        "answered like an unknown matter"
    );
    assert_eq!(status, 422);
    assert_eq!(refused["field"], "matter_id");
    let (event, forged_latency) = next_alert(&mut alerts, "forged_id", sent).await;
    assert_eq!(event["firm_id"], "alpha");
    assert_eq!(event["grant_id"], grant.id.as_str());

    println!(
        "alert webhook latency: decoy credential {:.1} ms, out-of-scope route {:.1} ms, unknown path {:.1} ms, forged id {:.1} ms",
        decoy_latency.as_secs_f64() * 1000.0,
        scope_latency.as_secs_f64() * 1000.0,
        path_latency.as_secs_f64() * 1000.0,
        forged_latency.as_secs_f64() * 1000.0,
    );
    for latency in [decoy_latency, scope_latency, path_latency, forged_latency] {
        assert!(latency < Duration::from_secs(1), "{latency:?}");
    }

    // Stored for the firm, newest first; none for beta; counted.
    let page = loop {
        let page = env
            .registry
            .security_events("alpha", None, 100)
            .await
            .unwrap();
        if page.events.len() >= 5 + 15 {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(page.events.windows(2).all(|w| w[0].at >= w[1].at));
    assert_eq!(page.events[0].kind.as_str(), "forged_id");
    let two = env
        .registry
        .security_events("alpha", None, 2)
        .await
        .unwrap();
    let next = env
        .registry
        .security_events(
            "alpha",
            two.next_before
                .as_deref()
                .and_then(scopegate::security::events::parse_cursor),
            2,
        )
        .await
        .unwrap();
    assert_eq!(next.events[0], page.events[2]);
    assert!(env
        .registry
        .security_events("beta", None, 10)
        .await
        .unwrap()
        .events
        .is_empty());
    let metrics = app
        .http
        .get(format!("{}/metrics", app.metrics_base.as_ref().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("scopegate_security_events_total{kind=\"decoy_credential\"}"),
        "{metrics}"
    );
    app.stop().await;
}

/// The ids alpha's accounting vendor is shown for its first page of matters.
async fn shown_matters(app: &TestApp, token: &str) -> Vec<String> {
    let page: Value = app
        .get("/v1/matters?limit=5", token)
        .await
        .json()
        .await
        .unwrap();
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

async fn pseudonymous_ids_are_per_grant_stable_and_traceable(env: TestEnv) {
    let alpha_db = env.add_seeded_firm("alpha", small_seed()).await;
    let beta_db = env.add_seeded_firm("beta", small_seed()).await;
    // One record id in both firms' databases, to see two firms' grants disagree on it.
    let shared = uuid::Uuid::new_v4().to_string();
    for db in [&alpha_db, &beta_db] {
        sqlx::query("INSERT INTO matters (id, number, name, client_id, description, status, opened_at, change_seq) SELECT $1, 'M-SHARED', 'Shared', client_id, '', 'open', 0, 0 FROM matters LIMIT 1")
            .bind(&shared)
            .execute(db.pool())
            .await
            .unwrap();
    }
    let (alpha_id, alpha_secret) =
        enable_with_credential(&env.registry, "alpha", "accounting").await;
    enable_with_credential(&env.registry, "beta", "accounting").await;
    let first_key = generate_key();
    let keyring = Arc::new(Keyring::parse(&first_key).unwrap());
    let app = TestApp::start_with_keyring(env.config(), keyring.clone()).await;
    let token = app.token(&alpha_id, &alpha_secret).await;
    let shown = shown_matters(&app, &token).await;
    let real: Vec<String> = {
        let rows =
            sqlx::query("SELECT id FROM matters WHERE change_seq > 0 ORDER BY change_seq LIMIT 5")
                .fetch_all(alpha_db.pool())
                .await
                .unwrap();
        rows.iter().map(|r| r.get::<String, _>("id")).collect()
    };
    assert_eq!(shown.len(), real.len());
    for (shown, real) in shown.iter().zip(&real) {
        assert_ne!(shown, real, "a vendor never sees the firm's own id");
        assert_eq!(&app.shown_id("alpha", "accounting", real).await, shown);
    }
    // Transactions name matters by the same ids the matter list shows.
    let page: Value = app
        .get("/v1/transactions?limit=50", &token)
        .await
        .json()
        .await
        .unwrap();
    for t in page["data"].as_array().unwrap() {
        let matter: String = sqlx::query_scalar(
            "SELECT matter_id FROM accounting_transactions WHERE change_seq = $1",
        )
        .bind(t["change_seq"].as_i64().unwrap())
        .fetch_one(alpha_db.pool())
        .await
        .unwrap();
        assert_eq!(
            t["matter_id"].as_str().unwrap(),
            app.shown_id("alpha", "accounting", &matter).await
        );
    }
    // Two firms' grants see one record id differently; a second grant of the firm too.
    assert_ne!(
        app.shown_id("alpha", "accounting", &shared).await,
        app.shown_id("beta", "accounting", &shared).await
    );
    let webhook = scopegate::connectors::catalogue();
    env.registry
        .enable_grant(
            "alpha",
            &webhook.require("matter-webhook").unwrap().contract,
            "admin@alpha",
        )
        .await
        .unwrap();
    assert_ne!(
        app.shown_id("alpha", "matter-webhook", &shared).await,
        app.shown_id("alpha", "accounting", &shared).await
    );

    // A fee posted with a shown matter id lands on the real matter, and comes back in shown ids.
    let (status, fee) = post_fee(&app, &token, "fee-1", &shown[0]).await;
    assert_eq!(status, 201, "{fee}");
    assert_eq!(fee["matter_id"], shown[0].as_str());
    let stored = sqlx::query(
        "SELECT id, matter_id, transaction_id FROM fees WHERE idempotency_key = 'fee-1'",
    )
    .fetch_one(alpha_db.pool())
    .await
    .unwrap();
    assert_eq!(stored.get::<String, _>("matter_id"), real[0]);
    assert_eq!(
        fee["id"].as_str().unwrap(),
        app.shown_id("alpha", "accounting", &stored.get::<String, _>("id"))
            .await
    );
    assert_eq!(
        fee["transaction_id"].as_str().unwrap(),
        app.shown_id(
            "alpha",
            "accounting",
            &stored.get::<String, _>("transaction_id")
        )
        .await
    );

    // trace names firm, grant and record for an id taken from the vendor's response.
    let grant = env.registry.grant("alpha", "accounting").await.unwrap();
    let tenancy = Tenancy::new(env.registry.clone(), 4);
    let report = scopegate::security::trace::trace(
        &env.registry,
        &tenancy,
        &Pseudonyms::new(env.registry.clone(), keyring.clone()),
        &shown[1],
    )
    .await
    .unwrap();
    assert_eq!(report.hits.len(), 1, "{report:?}");
    assert_eq!(report.hits[0].firm_id, "alpha");
    assert_eq!(report.hits[0].grant_id, grant.id);
    assert_eq!(report.hits[0].table, "matters");
    assert_eq!(report.hits[0].record_id, real[1]);
    let none = scopegate::security::trace::trace(
        &env.registry,
        &tenancy,
        &Pseudonyms::new(env.registry.clone(), keyring.clone()),
        &uuid::Uuid::new_v4().to_string(),
    )
    .await
    .unwrap();
    assert!(none.hits.is_empty());

    // Stable across credential rotation and switching off and on.
    let rotated = env
        .registry
        .rotate_credential("alpha", "accounting", &alpha_id)
        .await
        .unwrap();
    let token = app
        .token(
            &rotated.client_id,
            secrecy::ExposeSecret::expose_secret(&rotated.client_secret),
        )
        .await;
    assert_eq!(shown_matters(&app, &token).await, shown);
    let contract = &webhook.require("accounting").unwrap().contract;
    env.registry
        .disable_grant("alpha", "accounting", "admin@alpha")
        .await
        .unwrap();
    env.registry
        .enable_grant("alpha", contract, "admin@alpha")
        .await
        .unwrap();
    let again = env
        .registry
        .issue_credential("alpha", "accounting")
        .await
        .unwrap();
    let token = app
        .token(
            &again.client_id,
            secrecy::ExposeSecret::expose_secret(&again.client_secret),
        )
        .await;
    assert_eq!(shown_matters(&app, &token).await, shown);
    app.stop().await;

    // And across master-key rotation: re-sealed under a new key, the old one retired.
    let second_key = generate_key();
    let both = Arc::new(Keyring::parse(&format!("{second_key}\n{first_key}")).unwrap());
    let report = scopegate::reseal::reseal(&env.registry, &both, &Default::default(), 50)
        .await
        .unwrap();
    assert!(report.values_resealed >= 2, "{report:?}");
    assert_eq!(report.left, 0);
    let only_new = Arc::new(Keyring::parse(&second_key).unwrap());
    let app = TestApp::start_with_keyring(env.config(), only_new).await;
    let token = app
        .token(
            &again.client_id,
            secrecy::ExposeSecret::expose_secret(&again.client_secret),
        )
        .await;
    assert_eq!(shown_matters(&app, &token).await, shown);
    app.stop().await;
}
