//! The access trail as a firm and its auditor meet it: a test that causes
//! each kind of event once (logins good and bad, a hand-off, a user added,
//! reset and disabled, a credential issued, rotated and revoked, a vendor
//! token, a grant switched, a minimisation choice changed, a decoy planted
//! as `scopegate tripwire add` plants it, termination and purge, and a key
//! rotation through `reseal::rotate`, which `scopegate keys rotate` runs) finds an entry for each with who, from where and what,
//! never a secret; another firm's session sees none of them; and `verify`
//! names the first edited, deleted or reordered entry and a forged tombstone.

use ed25519_dalek::SigningKey;
use scopegate::access_trail::{self, Kind, NewEntry, TrailFilter, OPERATOR_CHAIN};
use scopegate::accounts::handoff::{self, Claims};
use scopegate::accounts::Role;
use scopegate::config::{Config, ConfigArgs};
use scopegate::privacy::retention::{mark_terminated, purge_firm};
use scopegate_e2e::settings::{add_login, login_response, AdminClient, PASSWORD};
use scopegate_e2e::{on_both_backends, small_seed, TestEnv};
use serde_json::{json, Value};
use std::collections::BTreeMap;

on_both_backends!(
    each_kind_of_access_is_entered_in_its_firms_trail_only,
    verify_names_the_first_edited_deleted_or_reordered_entry
);

const A: &str = "trail-alpha";
const B: &str = "trail-beta";

fn config(env: &TestEnv, handoff_key: String) -> Config {
    Config::resolve(&ConfigArgs {
        data_dir: Some(env.dir.path().to_path_buf()),
        database_url: Some(env.database_url.clone()),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        trusted_proxies: Some(vec!["127.0.0.1".parse().unwrap()]),
        metrics_listen: Some(scopegate::config::MetricsListen::Off),
        handoff_public_key: Some(handoff_key),
        ..Default::default()
    })
    .expect("config")
}

/// Every entry of a chain, by kind (the newest of each).
async fn by_kind(env: &TestEnv, chain: &str) -> BTreeMap<String, access_trail::Entry> {
    let entries = access_trail::page(&env.registry, chain, &TrailFilter::default(), 500)
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for e in entries.into_iter().rev() {
        out.insert(e.kind.clone(), e);
    }
    out
}

async fn each_kind_of_access_is_entered_in_its_firms_trail_only(env: TestEnv) {
    env.add_seeded_firm(A, small_seed()).await;
    env.add_seeded_firm(B, small_seed()).await;
    add_login(&env.registry, A, "owner@alpha.example", Role::Owner).await;
    add_login(&env.registry, B, "owner@beta.example", Role::Owner).await;
    let host_key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let public = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        host_key.verifying_key().to_bytes(),
    );
    let app = env.spawn_with(config(&env, public)).await;
    let keys = app.state.log_keys.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // A wrong password, then the right one, from two addresses behind the proxy.
    let r = login_response(
        &http,
        &app.base,
        A,
        "owner@alpha.example",
        "not the password",
        Some("203.0.113.7"),
    )
    .await;
    assert_eq!(r.status(), 401);
    // A firm that does not exist starts no chain.
    let r = login_response(
        &http,
        &app.base,
        "no-such-firm",
        "x@y.example",
        "whatever",
        Some("203.0.113.7"),
    )
    .await;
    assert_eq!(r.status(), 401);
    let r = login_response(
        &http,
        &app.base,
        A,
        "owner@alpha.example",
        PASSWORD,
        Some("203.0.113.8"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let admin = AdminClient::from_response(&app.base, http.clone(), r).await;

    // The host application's hand-off.
    let claims = Claims {
        firm: A.into(),
        email: "sipho@alpha.example".into(),
        name: "Sipho Dlamini".into(),
        role: Role::FeeEarner,
        firm_user_id: Some("u-123".into()),
        exp: chrono::Utc::now().timestamp() + 60,
        nonce: uuid::Uuid::new_v4().to_string(),
    };
    let r = http
        .get(app.url("/settings/handoff"))
        .query(&[("assertion", handoff::sign(&host_key, &claims))])
        .header("x-forwarded-for", "198.51.100.4")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // Users.
    let r = admin
        .post(
            "/admin/v1/users",
            Some(json!({"email": "books@alpha.example", "name": "Books", "role": "bookkeeper"})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let added: Value = r.json().await.unwrap();
    let user_id = added["user"]["id"].as_str().unwrap().to_string();
    let first_password = added["password"].as_str().unwrap().to_string();
    let r = admin
        .post(&format!("/admin/v1/users/{user_id}/reset-password"), None)
        .await;
    assert_eq!(r.status(), 200);
    let reset: Value = r.json().await.unwrap();
    let second_password = reset["password"].as_str().unwrap().to_string();
    assert_eq!(
        admin
            .post(&format!("/admin/v1/users/{user_id}/disable"), None)
            .await
            .status(),
        200
    );

    // A grant, its credentials and a vendor's token.
    assert_eq!(
        admin
            .post("/admin/v1/connectors/accounting/enable", None)
            .await
            .status(),
        200
    );
    let r = admin
        .post("/admin/v1/connectors/accounting/credentials", None)
        .await;
    assert_eq!(r.status(), 201);
    let issued: Value = r.json().await.unwrap();
    let client_id = issued["client_id"].as_str().unwrap().to_string();
    let secret = issued["client_secret"].as_str().unwrap().to_string();
    let token = app.token(&client_id, &secret).await;
    let r = admin
        .post(
            &format!("/admin/v1/connectors/accounting/credentials/{client_id}/rotate"),
            None,
        )
        .await;
    assert_eq!(r.status(), 201);
    let rotated: Value = r.json().await.unwrap();
    let new_client_id = rotated["client_id"].as_str().unwrap().to_string();
    let new_secret = rotated["client_secret"].as_str().unwrap().to_string();
    let r = admin
        .send(
            reqwest::Method::DELETE,
            &format!("/admin/v1/connectors/accounting/credentials/{new_client_id}"),
            None,
        )
        .await;
    assert_eq!(r.status(), 204);

    // A key rotation, as `scopegate keys rotate` runs it, goes to the operator's chain.
    scopegate::reseal::rotate(
        &env.registry,
        &app.state.keyring,
        &Default::default(),
        100,
        "ops",
        "cli",
    )
    .await
    .unwrap();

    // A minimisation choice changed on the integrations page, and a decoy
    // planted as `scopegate tripwire add` plants it.
    let r = admin
        .send(
            reqwest::Method::PUT,
            "/admin/v1/connectors/google-calendar/choices",
            Some(json!({"event_title": "matter_number"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let decoy = scopegate::security::tripwires::plant(
        &env.registry,
        &keys,
        A,
        "config backup",
        "operator:dpo",
        "cli",
    )
    .await
    .unwrap();

    // The firm's page: every kind above, newest first, with who, where and what.
    let page = admin.get_json("/admin/v1/audit-trail?limit=500").await;
    let data = page["data"].as_array().unwrap();
    let seqs: Vec<i64> = data.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    let entry = |kind: &str| -> Value {
        data.iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} entry in {page}"))
            .clone()
    };
    let failed = entry("login_failed");
    assert_eq!(
        (failed["actor"].as_str(), failed["from"].as_str()),
        (Some("owner@alpha.example"), Some("203.0.113.7"))
    );
    assert_eq!(failed["what"]["email"], "owner@alpha.example");
    let ok = entry("login_succeeded");
    assert_eq!(
        (ok["actor"].as_str(), ok["from"].as_str()),
        (Some("owner@alpha.example"), Some("203.0.113.8"))
    );
    let handed = entry("handoff");
    assert_eq!(
        (handed["actor"].as_str(), handed["from"].as_str()),
        (Some("sipho@alpha.example"), Some("198.51.100.4"))
    );
    assert_eq!(handed["what"]["firm_user_id"], "u-123");
    for kind in ["user_added", "password_reset", "user_disabled"] {
        let e = entry(kind);
        assert_eq!(e["actor"], "owner@alpha.example", "{e}");
        assert_eq!(e["from"], "127.0.0.1", "{e}");
        assert_eq!(e["what"]["user_id"], user_id.as_str(), "{e}");
    }
    assert_eq!(
        entry("grant_switched")["what"],
        json!({"connector": "accounting", "enabled": true, "contract_version": entry("grant_switched")["what"]["contract_version"]})
    );
    assert_eq!(
        entry("credential_issued")["what"]["client_id"],
        client_id.as_str()
    );
    assert_eq!(
        entry("credential_rotated")["what"],
        json!({"connector": "accounting", "client_id": new_client_id, "replaces": client_id})
    );
    assert_eq!(
        entry("credential_revoked")["what"]["client_id"],
        new_client_id.as_str()
    );
    let vendor = entry("token_issued");
    assert_eq!(vendor["actor"], client_id.as_str());
    assert_eq!(vendor["from"], "127.0.0.1");
    assert_eq!(vendor["what"]["connector"], "accounting");
    let chose = entry("minimisation_changed");
    assert_eq!(chose["actor"], "owner@alpha.example", "{chose}");
    assert_eq!(chose["what"]["connector"], "google-calendar", "{chose}");
    assert_eq!(
        chose["what"]["after"]["event_title"], "matter_number",
        "{chose}"
    );
    let planted = entry("tripwire_planted");
    assert_eq!(
        (planted["actor"].as_str(), planted["from"].as_str()),
        (Some("operator:dpo"), Some("cli"))
    );
    assert_eq!(planted["what"]["tripwire_id"], decoy.tripwire_id.as_str());
    assert!(
        !planted.to_string().contains(&decoy.client_id),
        "the decoy's client id stays out of the trail: {planted}"
    );
    // Filters: kind, actor (any case), time.
    let only = admin
        .get_json("/admin/v1/audit-trail?kind=token_issued")
        .await;
    assert_eq!(only["data"].as_array().unwrap().len(), 1);
    let sipho = admin.get_json("/admin/v1/audit-trail?actor=SIPHO").await;
    assert_eq!(
        sipho["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["handoff"]
    );
    let future = admin
        .get_json(&format!(
            "/admin/v1/audit-trail?from={}",
            chrono::Utc::now().timestamp_millis() + 60_000
        ))
        .await;
    assert!(future["data"].as_array().unwrap().is_empty());
    let paged = admin.get_json("/admin/v1/audit-trail?limit=3").await;
    let before = paged["next_before"].as_i64().expect("more pages");
    let older = admin
        .get_json(&format!("/admin/v1/audit-trail?limit=3&before={before}"))
        .await;
    assert!(older["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["seq"].as_i64().unwrap() < before));
    // Bad input: a problem naming it.
    for (query, status) in [
        ("kind=login", 422),
        ("limit=0", 422),
        ("firm=trail-beta", 400),
        ("actor=", 422),
    ] {
        let r = admin.get(&format!("/admin/v1/audit-trail?{query}")).await;
        assert_eq!(r.status(), status, "{query}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{query}"
        );
    }

    // Never a password, secret or token in the trail.
    let texts: Vec<String> =
        sqlx::query_scalar("SELECT actor || ' ' || origin || ' ' || what FROM access_trail")
            .fetch_all(env.registry.pool())
            .await
            .unwrap();
    for secret in [
        PASSWORD,
        &first_password,
        &second_password,
        &secret,
        &new_secret,
        &token,
    ] {
        assert!(
            texts.iter().all(|t| !t.contains(secret)),
            "a secret is in the trail"
        );
    }

    // The other firm sees its own login only.
    let other = AdminClient::login(&app.base, B, "owner@beta.example").await;
    let theirs = other.get_json("/admin/v1/audit-trail?limit=500").await;
    let kinds: Vec<&str> = theirs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["login_succeeded"]);
    assert!(!theirs.to_string().contains("alpha"), "{theirs}");
    // A fee earner has no trail to read.
    let fee_earner = AdminClient::from_response(
        &app.base,
        http.clone(),
        http.get(app.url("/settings/handoff"))
            .query(&[(
                "assertion",
                handoff::sign(
                    &host_key,
                    &Claims {
                        nonce: uuid::Uuid::new_v4().to_string(),
                        ..claims.clone()
                    },
                ),
            )])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(fee_earner.get("/admin/v1/audit-trail").await.status(), 403);

    // Termination goes in the firm's chain, the purge in the operator's (naming no firm).
    mark_terminated(&env.registry, &keys, A, "dpo")
        .await
        .unwrap();
    let terminated = by_kind(&env, A).await;
    let t = &terminated["firm_terminated"];
    assert_eq!((t.actor.as_str(), t.from.as_str()), ("operator:dpo", "cli"));
    let mut seen: Vec<String> = terminated.keys().cloned().collect();
    purge_firm(&env.registry, &keys, A, true, "dpo")
        .await
        .unwrap();
    assert!(
        by_kind(&env, A).await.is_empty(),
        "the purged firm's chain is gone"
    );
    let operator = by_kind(&env, OPERATOR_CHAIN).await;
    let purged = &operator["firm_purged"];
    assert_eq!(
        (purged.actor.as_str(), purged.from.as_str()),
        ("operator:dpo", "cli")
    );
    assert!(!purged.what.contains(A), "{}", purged.what);
    let rotated = &operator["key_rotated"];
    assert_eq!(
        (rotated.actor.as_str(), rotated.from.as_str()),
        ("operator:ops", "cli")
    );
    assert!(rotated.what.contains("key_id"), "{}", rotated.what);
    seen.extend(operator.keys().cloned());
    let missing: Vec<&str> = Kind::ALL
        .iter()
        .map(|k| k.as_str())
        .filter(|k| !seen.iter().any(|s| s == k))
        .collect();
    assert!(missing.is_empty(), "no entry for {missing:?}");

    let report = access_trail::verify_trails(&env.registry, &keys, None)
        .await
        .unwrap();
    assert_eq!(report.faults, vec![]);
    assert_eq!(report.purged.len(), 1);
    assert_eq!(report.purged[0].chain, A);
    app.stop().await;
}

async fn verify_names_the_first_edited_deleted_or_reordered_entry(env: TestEnv) {
    env.add_seeded_firm(A, small_seed()).await;
    let keys = scopegate::keys::Keyring::ephemeral().log_keys();
    for n in 0..5 {
        access_trail::record(
            &env.registry,
            &keys,
            NewEntry::firm(
                A,
                Kind::LoginSucceeded,
                &format!("u{n}@alpha.example"),
                "10.0.0.1",
                json!({"n": n}),
            ),
        )
        .await
        .unwrap();
    }
    access_trail::record(
        &env.registry,
        &keys,
        NewEntry::operator(Kind::KeyRotated, "ops", "cli", json!({"key_id": "k"})),
    )
    .await
    .unwrap();
    let verify = || async {
        access_trail::verify_trails(&env.registry, &keys, None)
            .await
            .unwrap()
    };
    let report = verify().await;
    assert_eq!(
        (report.chains, report.entries, report.faults.len()),
        (2, 6, 0)
    );
    let registry = env.registry.clone();
    let exec = |sql: &'static str| {
        let registry = registry.clone();
        async move {
            sqlx::query(sql).execute(registry.pool()).await.unwrap();
        }
    };
    let first_fault = |report: access_trail::TrailReport| {
        let f = report.faults.first().cloned().expect("a fault");
        (f.chain, f.seq, f.problem)
    };

    // Edited: where it came from.
    exec("UPDATE access_trail SET origin = '10.9.9.9' WHERE chain = 'trail-alpha' AND seq = 3")
        .await;
    let (chain, seq, problem) = first_fault(verify().await);
    assert_eq!((chain.as_str(), seq), (A, 3), "{problem}");
    assert!(problem.contains("do not match"), "{problem}");
    exec("UPDATE access_trail SET origin = '10.0.0.1' WHERE chain = 'trail-alpha' AND seq = 3")
        .await;
    assert!(verify().await.faults.is_empty());

    // Reordered: entries 2 and 3 swap places.
    exec("UPDATE access_trail SET seq = -2 WHERE chain = 'trail-alpha' AND seq = 2").await;
    exec("UPDATE access_trail SET seq = 2 WHERE chain = 'trail-alpha' AND seq = 3").await;
    exec("UPDATE access_trail SET seq = 3 WHERE chain = 'trail-alpha' AND seq = -2").await;
    let (_, seq, problem) = first_fault(verify().await);
    assert_eq!(seq, 2, "{problem}");
    exec("UPDATE access_trail SET seq = -2 WHERE chain = 'trail-alpha' AND seq = 2").await;
    exec("UPDATE access_trail SET seq = 2 WHERE chain = 'trail-alpha' AND seq = 3").await;
    exec("UPDATE access_trail SET seq = 3 WHERE chain = 'trail-alpha' AND seq = -2").await;
    assert!(verify().await.faults.is_empty());

    // Deleted: one in the middle, then the last one (the head still says 5).
    exec("DELETE FROM access_trail WHERE chain = 'trail-alpha' AND seq = 4").await;
    let (_, seq, problem) = first_fault(verify().await);
    assert_eq!(seq, 4, "{problem}");
    assert!(problem.contains("missing"), "{problem}");
    exec("DELETE FROM access_trail WHERE chain = 'trail-alpha' AND seq = 5").await;
    exec("UPDATE access_trail_heads SET seq = 3, hash = (SELECT hash FROM access_trail WHERE chain = 'trail-alpha' AND seq = 3) WHERE chain = 'trail-alpha'").await;
    assert!(
        verify().await.faults.is_empty(),
        "a chain cut at its end with its head set back looks whole without a checkpoint"
    );
    exec("UPDATE access_trail_heads SET seq = 5 WHERE chain = 'trail-alpha'").await;
    let (_, seq, problem) = first_fault(verify().await);
    assert_eq!(seq, 4, "{problem}");
    assert!(problem.contains("chain head"), "{problem}");
    // The operator chain's head deleted.
    exec("DELETE FROM access_trail_heads WHERE chain = '@operator'").await;
    let faults = verify().await.faults;
    assert!(
        faults
            .iter()
            .any(|f| f.chain == OPERATOR_CHAIN && f.problem.contains("no head")),
        "{faults:?}"
    );
    // A forged tombstone.
    exec("INSERT INTO access_trail_tombstones (chain, last_seq, last_hash, purged_at, mac_key, mac) VALUES ('gone-firm', 9, 'ab', 1, 'k', 'cd')").await;
    let faults = verify().await.faults;
    assert!(
        faults
            .iter()
            .any(|f| f.chain == "gone-firm" && f.problem.contains("tombstone")),
        "{faults:?}"
    );
}
