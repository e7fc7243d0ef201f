//! `/metrics` (issue 10, item 6): Prometheus text on a listener of its own,
//! never on the public one; after a vendor's token, poll and fee post it
//! counts them by route and status, with their latency, the outbound records
//! and commits, the token, a failed authentication and a throttled request,
//! and no label carries a firm id (or any other unbounded value).
//!
//! The recorder is one per process and the tests of this binary run at once,
//! so the checks compare a scrape before and after this test's requests.

use scopegate_e2e::{enable_with_credential, small_seed, Backend, TestEnv};
use serde_json::json;
use std::collections::BTreeSet;

/// The sum of the series `name` whose labels include all of `labels`.
fn value(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    scrape
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let have: Vec<&str> = series_labels.split(',').collect();
            (series_name == name && wanted.iter().all(|w| have.contains(&w.as_str())))
                .then(|| value.parse::<f64>().expect("a number"))
        })
        .sum()
}

/// Every label name used in the scrape.
fn label_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('{').and_then(|(_, rest)| rest.split_once('}')))
        .flat_map(|(labels, _)| labels.split(','))
        .filter_map(|pair| pair.split_once('=').map(|(k, _)| k.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_a_vendor_flow_on_their_own_listener() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let firm = "metrics-firm-7";
    let db = env.add_seeded_firm(firm, small_seed()).await;
    let (client_id, secret) = enable_with_credential(&env.registry, firm, "accounting").await;
    let mut config = env.config();
    config.limits.api_burst = 5;
    config.limits.api_rate_per_second = 1;
    let app = env.spawn_with(config).await;
    let metrics = app.metrics_base.clone().expect("metrics are on");
    assert_ne!(metrics, app.base, "metrics have a listener of their own");
    let scrape = || async {
        let r = app
            .http
            .get(format!("{metrics}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        r.text().await.unwrap()
    };
    let before = scrape().await;

    let token = app.token(&client_id, &secret).await;
    assert_eq!(
        app.get("/v1/transactions?limit=5", &token).await.status(),
        200
    );
    let matter: String = sqlx::query_scalar("SELECT id FROM matters LIMIT 1")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let matter = app.shown_id(firm, "accounting", &matter).await;
    let fee = app
        .http
        .post(app.url("/v1/fees"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "metrics-fee-1")
        .json(
            &json!({"matter_id": matter, "amount_cents": 150_000, "currency": "ZAR",
                      "description": "Drafting", "fee_date": "2026-11-20"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(fee.status(), 201);
    let refused = app
        .http
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", "sgs_wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    // A burst of 5 (per address and per credential), one back per second: the limit refuses soon.
    let mut throttled = false;
    for _ in 0..20 {
        if app.get("/v1/matters?limit=1", &token).await.status() == 429 {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "no request was throttled");
    // Not on the public listener.
    assert_eq!(
        app.http
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        app.http
            .get(format!("{metrics}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "the metrics listener serves /metrics only"
    );

    let after = scrape().await;
    assert!(
        value(&after, "scopegate_runtime_alive_tasks", &[]) >= 1.0,
        "the runtime's alive tasks are read at scrape time: {after}"
    );
    let grew = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert!(
        grew(
            "scopegate_tokens_issued_total",
            &[("connector", "accounting")]
        ) >= 1.0,
        "{after}"
    );
    for (route, method, status) in [
        ("/oauth/token", "POST", "200"),
        ("/oauth/token", "POST", "401"),
        ("/v1/transactions", "GET", "200"),
        ("/v1/fees", "POST", "201"),
        ("/v1/matters", "GET", "429"),
    ] {
        assert!(
            grew(
                "scopegate_http_requests_total",
                &[("route", route), ("method", method), ("status", status)]
            ) >= 1.0,
            "{route} {status}: {after}"
        );
    }
    assert!(
        grew(
            "scopegate_http_request_duration_seconds_count",
            &[("route", "/v1/fees"), ("method", "POST")]
        ) >= 1.0,
        "{after}"
    );
    assert!(
        grew(
            "scopegate_auth_failures_total",
            &[("endpoint", "oauth_token"), ("reason", "wrong_secret")]
        ) >= 1.0,
        "{after}"
    );
    assert!(
        grew("scopegate_throttled_total", &[("scope", "local")]) >= 1.0,
        "{after}"
    );
    // A poll is a send and a result; the fee, an inbound send and result.
    assert!(
        grew(
            "scopegate_outbound_records_total",
            &[
                ("kind", "send"),
                ("direction", "outbound"),
                ("connector", "accounting")
            ]
        ) >= 1.0,
        "{after}"
    );
    assert!(
        grew(
            "scopegate_outbound_records_total",
            &[
                ("kind", "send"),
                ("direction", "inbound"),
                ("connector", "accounting")
            ]
        ) >= 1.0,
        "{after}"
    );
    assert!(
        grew("scopegate_outbound_commit_batch_size_count", &[]) >= 1.0,
        "{after}"
    );
    assert!(
        grew("scopegate_outbound_commit_seconds_count", &[]) >= 1.0,
        "{after}"
    );
    assert!(
        grew("scopegate_firm_pool_opens_total", &[]) >= 1.0,
        "{after}"
    );
    assert!(
        grew("scopegate_firm_pool_hits_total", &[]) >= 1.0,
        "{after}"
    );
    // Present from the start for alert rules (other tests in this process may raise alerts).
    assert!(
        after.contains("\nscopegate_tripwire_alerts_total "),
        "{after}"
    );
    assert!(
        after.contains("scopegate_security_events_total{kind=\"forged_id\"} "),
        "{after}"
    );

    // Bounded cardinality: no firm, client or token in any label.
    for clear in [firm, client_id.as_str(), token.as_str(), matter.as_str()] {
        assert!(!after.contains(clear), "{clear} in the metrics");
    }
    let allowed: BTreeSet<String> = [
        "route",
        "method",
        "status",
        "connector",
        "kind",
        "direction",
        "endpoint",
        "reason",
        "limit",
        "scope",
        "check",
        "outcome",
        "le",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let used = label_names(&after);
    assert!(
        used.is_subset(&allowed),
        "unexpected labels: {:?}",
        used.difference(&allowed).collect::<Vec<_>>()
    );
    app.stop().await;
}
