//! The registry unreachable mid-run (issue 12): the gateway reaches its
//! PostgreSQL registry through a proxy the test cuts. Whether the server hangs
//! up on every connection or nothing answers at all (a partition), vendor
//! requests answer 503 problem+json within a bound (never a hang); once the
//! registry is back they work again without restarting the gateway, and the
//! outbound log verifies with every response sent in it.
//!
//! A SQLite registry has no such fault: it is a file the gateway holds open
//! (removing it leaves the open file in use; root reads a file whatever its
//! mode), so its failure is the disk filling up (the `disk_full` process test).

use futures::future::join_all;
use scopegate::outbound_log::{export, verify_all};
use scopegate_e2e::proxy::{Cut, CutProxy};
use scopegate_e2e::{
    enable_with_credential, postgres_available, small_seed, Backend, TestApp, TestEnv,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// The request timeout the gateway runs with here; no answer may take longer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How soon after the registry is back a poll must succeed again.
const RECOVERY: Duration = Duration::from_secs(15);

/// One vendor poll: (status, content type, body, how long it took).
async fn poll(app: &TestApp, token: &str) -> (u16, String, Vec<u8>, Duration) {
    let started = Instant::now();
    let r = app.get("/v1/transactions?limit=5", token).await;
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = r.bytes().await.expect("body").to_vec();
    (status, content_type, body, started.elapsed())
}

/// A token request: (status, content type, body, how long it took).
async fn token_request(app: &TestApp, id: &str, secret: &str) -> (u16, String, Value, Duration) {
    let started = Instant::now();
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request");
    let status = r.status().as_u16();
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, content_type, body, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registry_outage_answers_503_quickly_and_recovers_without_restart() {
    if !postgres_available().await {
        return;
    }
    let env = TestEnv::new(Backend::Postgres).await;
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let (client_id, secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let (proxy, through) = CutProxy::for_postgres_url(&env.database_url).await;
    let mut config = env.config();
    config.database_url = through;
    config.server.request_timeout = REQUEST_TIMEOUT;
    let app = env.spawn_with(config).await;
    let token = app.token(&client_id, &secret).await;
    let mut delivered = Vec::new();
    let (status, _, body, _) = poll(&app, &token).await;
    assert_eq!(status, 200);
    delivered.push(body);

    for cut in [Cut::Refuse, Cut::Silent] {
        proxy.cut(cut);
        // Four polls at once and a token request, while the registry is away.
        let polls = join_all((0..4).map(|_| poll(&app, &token))).await;
        let issued = token_request(&app, &client_id, &secret).await;
        let slowest = polls
            .iter()
            .map(|p| p.3)
            .chain([issued.3])
            .max()
            .expect("timings");
        println!(
            "registry {cut:?}: polls {:?} in {:?}; token request {} in {:?}; slowest {slowest:?}",
            polls.iter().map(|p| p.0).collect::<Vec<_>>(),
            polls.iter().map(|p| p.3).collect::<Vec<_>>(),
            issued.0,
            issued.3,
        );
        for (status, content_type, body, took) in &polls {
            assert_eq!(*status, 503, "poll while the registry is {cut:?}");
            assert_eq!(content_type, "application/problem+json");
            let problem: Value = serde_json::from_slice(body).expect("problem json");
            assert!(
                problem["detail"].as_str().is_some_and(|d| d.len() > 20),
                "{problem}"
            );
            assert!(*took < REQUEST_TIMEOUT + Duration::from_secs(2), "{took:?}");
        }
        assert_eq!(
            issued.0, 503,
            "token request while the registry is {cut:?}: {}",
            issued.2
        );
        assert!(issued.3 < REQUEST_TIMEOUT + Duration::from_secs(2));

        proxy.restore();
        let restored = Instant::now();
        loop {
            let (status, _, body, _) = poll(&app, &token).await;
            if status == 200 {
                delivered.push(body);
                break;
            }
            assert!(
                restored.elapsed() < RECOVERY,
                "the gateway did not recover within {RECOVERY:?} after the registry came back ({status})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "registry back after {cut:?}: first 200 poll after {:?}",
            restored.elapsed()
        );
        // A new token works too (the registry takes writes again).
        let (status, _, _, _) = token_request(&app, &client_id, &secret).await;
        assert_eq!(status, 200);
    }

    let keys = app.state.log_keys.clone();
    app.stop().await;
    let report = verify_all(&env.registry, &keys, None, None)
        .await
        .expect("verify");
    assert!(report.faults.is_empty(), "{:?}", report.faults);
    // Every response the vendor got is in the log, with its result.
    let mut records = Vec::new();
    export(&env.registry, "alpha-law", None, |r| {
        records.push(r.clone());
        Ok(())
    })
    .await
    .expect("export");
    for body in &delivered {
        let hash = hex::encode(Sha256::digest(body));
        let send = records
            .iter()
            .find(|r| r.kind == "send" && r.payload_sha256 == hash)
            .expect("a delivered response has its send record");
        assert!(records
            .iter()
            .any(|r| r.kind == "result" && r.send_seq == Some(send.seq) && r.status == Some(200)));
    }
    drop(proxy);
}
