//! Rotating the master key: every stored sealed value (each fee earner's
//! Google refresh token, each grant's event-id secret, a PKCE verifier parked
//! while a fee earner is at Google's consent screen) is re-sealed under the
//! new key. A gateway then holding only the new key (the old one retired: it
//! keeps only what verifies the outbound log) still refreshes Google tokens,
//! syncs a new diary entry, completes the consent parked before the rotation
//! and verifies the outbound log the old key chained. Before the rotation the
//! old key is counted as still sealing everything (what `keys retire` refuses on).

use scopegate::keys::{generate_key, retire_in_text, sealed_parts, Keyring};
use scopegate::reseal::{census, reseal, V1Purposes};
use scopegate_e2e::google::*;
use scopegate_e2e::{on_both_backends, small_seed, TestApp, TestEnv};
use sqlx::Row;
use std::sync::Arc;

on_both_backends!(rotation_reseals_every_secret_and_the_new_key_alone_serves);

const FIRMS: [&str; 2] = ["firm-a", "firm-b"];

async fn events_count(app: &TestApp, firm: &str, user: &str) -> i64 {
    Calendar::of(app)
        .connection(firm, user)
        .await
        .map(|c| c.events_count)
        .unwrap_or(-1)
}

/// Every sealed value stored in the registry, as text.
async fn stored_sealed(env: &TestEnv) -> Vec<String> {
    let mut out = Vec::new();
    for r in sqlx::query("SELECT value FROM connector_records")
        .fetch_all(env.registry.pool())
        .await
        .unwrap()
    {
        let value: serde_json::Value = serde_json::from_str(&r.get::<String, _>("value")).unwrap();
        for text in value.as_object().into_iter().flat_map(|o| o.values()) {
            if let Some(text) = text.as_str().filter(|t| sealed_parts(t).is_some()) {
                out.push(text.to_string());
            }
        }
    }
    for r in sqlx::query("SELECT payload_sealed FROM connector_parked")
        .fetch_all(env.registry.pool())
        .await
        .unwrap()
    {
        out.push(r.get("payload_sealed"));
    }
    out
}

async fn rotation_reseals_every_secret_and_the_new_key_alone_serves(env: TestEnv) {
    let running = start_emulator().await;
    let emulator = running.emulator.clone();
    let mut dbs = Vec::new();
    for firm in FIRMS {
        dbs.push(env.add_seeded_firm(firm, small_seed()).await);
        enable_google(&env, firm).await;
    }
    let (old, new) = (generate_key(), generate_key());
    let old_id = Keyring::parse(&old).unwrap().primary_id().to_string();
    let app = TestApp::start_with_keyring(
        google_config(&env, &running, 20),
        Arc::new(Keyring::parse(&old).unwrap()),
    )
    .await;
    let mut users = Vec::new();
    for (firm, db) in FIRMS.iter().zip(&dbs) {
        let user = busiest_user(db).await;
        assert_eq!(
            connect_user(&app, firm, &user, &format!("{user}@{firm}.example")).await,
            200
        );
        let live = live_entries(db, &user).await.len() as i64;
        eventually("the first sync completes", || async {
            events_count(&app, firm, &user).await == live
        })
        .await;
        users.push(user);
    }
    // Another fee earner of firm A is at Google's consent screen during the rotation.
    let waiting: String = sqlx::query("SELECT id FROM users WHERE id <> $1 ORDER BY id LIMIT 1")
        .bind(&users[0])
        .fetch_one(dbs[0].pool())
        .await
        .unwrap()
        .get("id");
    let mut pending = Calendar::of(&app)
        .consent_url(FIRMS[0], &waiting)
        .await
        .unwrap();
    pending
        .query_pairs_mut()
        .append_pair("login_hint", "waiting@firm-a.example");
    app.stop().await;

    // Two refresh tokens, two event-id secrets and the parked verifier: all under the old key.
    let before = stored_sealed(&env).await;
    assert_eq!(before.len(), 5, "{before:?}");
    assert_eq!(census(&env.registry).await.unwrap().of(&old_id).total(), 5);

    // The new key goes first in the key file; the rotation re-seals everything.
    let both_text = format!("{new}\n{old}\n");
    let both = Keyring::parse(&both_text).unwrap();
    let purposes: V1Purposes = scopegate::connectors::registered()
        .iter()
        .map(|c| {
            (
                c.id().to_string(),
                c.sealed_purposes().iter().map(|p| p.to_string()).collect(),
            )
        })
        .collect();
    let report = reseal(&env.registry, &both, &purposes, 2).await.unwrap();
    eprintln!("{report:?}");
    assert_eq!(
        (
            report.values_resealed,
            report.parked_resealed,
            report.unopened,
            report.left
        ),
        (4, 1, 0, 0)
    );
    let after = stored_sealed(&env).await;
    assert_eq!(after.len(), 5);
    for (was, now) in before.iter().zip(&after) {
        assert_ne!(was, now);
        assert_eq!(sealed_parts(now).unwrap().key_id, both.primary_id());
    }
    let counted = census(&env.registry).await.unwrap();
    assert_eq!(counted.of(&old_id).total(), 0);
    assert_eq!(counted.of(both.primary_id()).total(), 5);

    // The old key retired: the gateway holds only the new one.
    let retired = Keyring::parse(&retire_in_text(&both_text, &old_id).unwrap()).unwrap();
    assert!(!retired.holds(&old_id));
    let app =
        TestApp::start_with_keyring(google_config(&env, &running, 20), Arc::new(retired)).await;
    // Every access token is stale, so each sync must open its refresh token anew.
    emulator.expire_access_tokens();
    let refreshes_before = emulator
        .received()
        .iter()
        .filter(|r| r.kind == "token")
        .count();
    for ((firm, db), user) in FIRMS.iter().zip(&dbs).zip(&users) {
        let matter: String =
            sqlx::query("SELECT matter_id FROM diary_entries WHERE owner_user_id = $1 LIMIT 1")
                .bind(user)
                .fetch_one(db.pool())
                .await
                .unwrap()
                .get("matter_id");
        add_diary_entry(db, user, &matter, "Rotated key hearing", 1_900_000_000_000).await;
        let live = live_entries(db, user).await.len() as i64;
        eventually(
            "the new entry reaches Google under the new key alone",
            || async { events_count(&app, firm, user).await == live },
        )
        .await;
    }
    let refreshes: Vec<u16> = emulator
        .received()
        .iter()
        .filter(|r| r.kind == "token")
        .skip(refreshes_before)
        .map(|r| r.status)
        .collect();
    assert!(
        refreshes.len() >= 2 && refreshes.iter().all(|s| *s == 200),
        "each refresh token opened and was accepted: {refreshes:?}"
    );
    let described: Vec<String> = emulator
        .live_events()
        .iter()
        .filter_map(|e| e.event["description"].as_str().map(str::to_string))
        .filter(|d| d.contains("Rotated key hearing"))
        .collect();
    assert_eq!(described.len(), 2, "one new event per firm, none twice");

    // The consent parked under the old key completes with the new key alone.
    let to_google = app.http.get(pending.as_str()).send().await.unwrap();
    assert_eq!(to_google.status(), 302);
    let location = to_google.headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let query = location.split_once('?').unwrap().1;
    let back = app
        .http
        .get(app.url(&format!("/oauth/google/callback?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 200, "{}", back.text().await.unwrap());
    let waiting_live = live_entries(&dbs[0], &waiting).await.len() as i64;
    eventually(
        "the fee earner who consented during the rotation syncs",
        || async { events_count(&app, FIRMS[0], &waiting).await == waiting_live },
    )
    .await;

    // What the old key chained in the outbound log still verifies.
    let log = scopegate::outbound_log::verify_all(&env.registry, &app.state.log_keys, None, None)
        .await
        .unwrap();
    assert!(log.faults.is_empty(), "{:?}", log.faults);
    let chained_by_old: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM outbound_log WHERE mac_key = $1")
            .bind(&old_id)
            .fetch_one(env.registry.pool())
            .await
            .unwrap()
            .get("n");
    assert!(chained_by_old > 0 && log.records as i64 > chained_by_old);
    app.stop().await;
}
