//! Cross-firm isolation under randomised abuse: three firms with their own
//! databases and credentials; 10,000 requests with swapped tokens, other
//! firms' matter ids in fee posts, forged and foreign cursors and forged firm
//! parameters. Not one record of another firm may be returned or written.

use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scopegate_e2e::{enable_with_credential, on_both_backends, small_seed, TestEnv};
use serde_json::{json, Value};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

on_both_backends!(ten_thousand_randomised_requests_never_cross_firms);

const FIRMS: [&str; 3] = ["alpha-law", "beta-law", "gamma-law"];

struct FirmIds {
    transactions: BTreeSet<String>,
    matters: Vec<String>,
}

async fn ten_thousand_randomised_requests_never_cross_firms(env: TestEnv) {
    let requests: usize = std::env::var("CROSS_FIRM_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut dbs = Vec::new();
    let mut tokens = Vec::new();
    let mut config = env.config();
    config.limits.api_rate_per_second = 1_000_000;
    config.limits.api_burst = 1_000_000;
    for firm in FIRMS {
        dbs.push(env.add_seeded_firm(firm, small_seed()).await);
    }
    let app = Arc::new(env.spawn_with(config).await);
    for firm in FIRMS {
        let (id, secret) = enable_with_credential(&env.registry, firm, "accounting").await;
        tokens.push(app.token(&id, &secret).await);
    }
    // Each firm's ids as its vendor's grant is shown them; the real matter ids for the databases.
    let mut ids = Vec::new();
    let mut real_matters = BTreeMap::new();
    for (f, db) in dbs.iter().enumerate() {
        let mut transactions = BTreeSet::new();
        for r in sqlx::query("SELECT id FROM accounting_transactions")
            .fetch_all(db.pool())
            .await
            .unwrap()
        {
            let real = r.get::<String, _>("id");
            transactions.insert(app.shown_id(FIRMS[f], "accounting", &real).await);
        }
        let mut matters = Vec::new();
        for r in sqlx::query("SELECT id FROM matters")
            .fetch_all(db.pool())
            .await
            .unwrap()
        {
            let real = r.get::<String, _>("id");
            matters.push(app.shown_id(FIRMS[f], "accounting", &real).await);
            real_matters.insert(real, f);
        }
        ids.push(FirmIds {
            transactions,
            matters,
        });
    }
    let all_matters: BTreeMap<String, usize> = ids
        .iter()
        .enumerate()
        .flat_map(|(f, i)| i.matters.iter().map(move |m| (m.clone(), f)))
        .collect();
    let ids = Arc::new(ids);
    let tokens = Arc::new(tokens);
    let posted = Arc::new([
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ]);
    let checked = Arc::new(AtomicUsize::new(0));

    futures::stream::iter(0..requests)
        .for_each_concurrent(16, |n| {
            let (app, ids, tokens, posted, checked, all_matters) = (app.clone(), ids.clone(), tokens.clone(), posted.clone(), checked.clone(), all_matters.clone());
            async move {
                let mut rng = StdRng::seed_from_u64(n as u64);
                let firm = rng.gen_range(0..3);
                let token = &tokens[firm];
                match rng.gen_range(0..5) {
                    0 | 1 => {
                        // Poll with a random (possibly foreign or forged) cursor.
                        let cursor = scopegate_accounting::encode_cursor(rng.gen_range(0..400));
                        let path = if rng.gen_bool(0.5) { format!("/v1/transactions?limit={}&cursor={cursor}", rng.gen_range(1..80)) } else { format!("/v1/transactions?limit={}", rng.gen_range(1..80)) };
                        let r = app.get(&path, token).await;
                        assert_eq!(r.status(), 200);
                        let page: Value = r.json().await.unwrap();
                        for item in page["data"].as_array().unwrap() {
                            let id = item["id"].as_str().unwrap();
                            assert!(ids[firm].transactions.contains(id) || !ids.iter().enumerate().any(|(f, i)| f != firm && i.transactions.contains(id)), "firm {firm} received transaction {id} of another firm");
                            checked.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    2 => {
                        let r = app.get("/v1/matters?limit=100", token).await;
                        let page: Value = r.json().await.unwrap();
                        for item in page["data"].as_array().unwrap() {
                            assert_eq!(all_matters.get(item["id"].as_str().unwrap()), Some(&firm), "foreign matter returned");
                            checked.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    3 => {
                        // Fee post naming a random firm's matter.
                        let owner = rng.gen_range(0..3);
                        let matter = &ids[owner].matters[rng.gen_range(0..ids[owner].matters.len())];
                        let r = app.http.post(app.url("/v1/fees")).bearer_auth(token).header("Idempotency-Key", format!("k{n}"))
                            .json(&json!({"matter_id": matter, "amount_cents": rng.gen_range(1..100_000), "currency": "ZAR", "description": "x", "fee_date": "2026-11-20"}))
                            .send().await.unwrap();
                        if owner == firm {
                            assert_eq!(r.status(), 201);
                            posted[firm].fetch_add(1, Ordering::Relaxed);
                        } else {
                            assert_eq!(r.status(), 422, "fee on another firm's matter was accepted");
                        }
                    }
                    _ => {
                        // Forged firm selectors and swapped tokens: the token alone decides.
                        let other = FIRMS[(firm + 1) % 3];
                        let r = app.http.get(app.url(&format!("/v1/transactions?firm={other}"))).bearer_auth(token).header("X-Firm-Id", other).send().await.unwrap();
                        assert_eq!(r.status(), 400);
                        let r = app.http.get(app.url("/v1/matters?limit=5")).bearer_auth(token).header("X-Firm-Id", other).send().await.unwrap();
                        let page: Value = r.json().await.unwrap();
                        for item in page["data"].as_array().unwrap() {
                            assert_eq!(all_matters.get(item["id"].as_str().unwrap()), Some(&firm));
                        }
                    }
                }
            }
        })
        .await;

    // What landed in each firm's database came only from its own token, on its own matters.
    for (f, db) in dbs.iter().enumerate() {
        let rows = sqlx::query("SELECT matter_id, source FROM fees")
            .fetch_all(db.pool())
            .await
            .unwrap();
        assert_eq!(
            rows.len(),
            posted[f].load(Ordering::Relaxed),
            "fees in firm {f}"
        );
        for row in rows {
            assert_eq!(
                real_matters.get(&row.get::<String, _>("matter_id")),
                Some(&f)
            );
        }
    }
    eprintln!(
        "{requests} randomised requests, {} returned records checked, fees posted {:?}",
        checked.load(Ordering::Relaxed),
        posted
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .collect::<Vec<_>>()
    );
    assert!(checked.load(Ordering::Relaxed) > requests);
    Arc::try_unwrap(app).ok().expect("app").stop().await;
}
