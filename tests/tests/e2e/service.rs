//! Service plumbing: health and readiness (including the 503 path when the
//! registry is gone), problem+json for unknown routes, and the bounded,
//! per-firm tenancy layer.

use scopegate::tenancy::Tenancy;
use scopegate_e2e::{on_both_backends, small_seed, TestEnv};
use serde_json::Value;

on_both_backends!(
    health_and_readiness_follow_the_registry,
    firm_pools_are_bounded_and_per_firm
);

async fn health_and_readiness_follow_the_registry(env: TestEnv) {
    let app = env.spawn().await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let missing = app
        .http
        .get(app.url("/v2/everything"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = missing.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("openapi"));
    // The registry goes away: readiness says so, liveness does not.
    app.state.registry.close().await;
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.headers()["content-type"], "application/problem+json");
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.stop().await;
}

struct Operator(&'static str);
impl scopegate::tenancy::FirmScope for Operator {
    fn firm_id(&self) -> &str {
        self.0
    }
}

async fn firm_pools_are_bounded_and_per_firm(env: TestEnv) {
    for firm in ["alpha-law", "beta-law", "gamma-law"] {
        env.add_seeded_firm(firm, small_seed()).await;
    }
    let tenancy = Tenancy::new(env.registry.clone(), 2);
    let mut numbers = Vec::new();
    for firm in ["alpha-law", "beta-law", "gamma-law", "alpha-law"] {
        let db = tenancy.firm_db(&Operator(firm)).await.unwrap();
        assert_eq!(db.firm_id, firm);
        let row: (String,) = sqlx::query_as("SELECT number FROM matters ORDER BY number LIMIT 1")
            .fetch_one(db.pool())
            .await
            .unwrap();
        numbers.push(row.0);
        assert!(tenancy.open_pools() <= 2, "LRU bound exceeded");
    }
    assert_eq!(
        numbers[0], numbers[3],
        "same firm, same data after eviction and reopening"
    );
    assert!(tenancy.firm_db(&Operator("ghost-law")).await.is_err());
}
