//! Termination and purge: a terminated firm's vendor token stops working and
//! nothing new can be granted; its purge leaves nothing of it in any registry
//! table (listed from the database's own catalogue, not by hand) except its
//! keyed tombstone; `audit verify` passes afterwards, also against a signed
//! checkpoint taken before the purge, and catches a forged tombstone and a
//! purge that hides records deleted before it. The other firm is untouched.

use scopegate::accounts::Role;
use scopegate::outbound_log::checkpoint::{append_line, current_heads, Checkpoint};
use scopegate::outbound_log::{verify_all, Checkpoints};
use scopegate::privacy::retention::{mark_terminated, purge_due, purge_firm, RetentionPolicy};
use scopegate::privacy::Purged;
use scopegate::registry::{Backend, Registry};
use scopegate_e2e::settings::add_login;
use scopegate_e2e::{enable_with_credential, on_both_backends, small_seed, TestEnv};
use sqlx::Row;

on_both_backends!(
    a_purged_firm_leaves_only_its_tombstone_and_the_log_still_verifies,
    the_scheduled_purge_keeps_the_log_for_the_audit_period
);

const GONE: &str = "firm-to-purge";
const KEPT: &str = "firm-to-keep";

/// Every (table, text column) of the registry, from its own catalogue.
async fn text_columns(registry: &Registry) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match registry.backend() {
        Backend::Sqlite => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(registry.pool())
            .await
            .unwrap();
            for table in tables {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT name, type FROM pragma_table_info('{table}')"
                )))
                .fetch_all(registry.pool())
                .await
                .unwrap();
                for r in rows {
                    let ty: String = r.get("type");
                    if ty.eq_ignore_ascii_case("TEXT") {
                        out.push((table.clone(), r.get("name")));
                    }
                }
            }
        }
        Backend::Postgres => {
            let rows = sqlx::query("SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns WHERE table_schema = current_schema() AND data_type IN ('text', 'character varying')")
                .fetch_all(registry.pool())
                .await
                .unwrap();
            for r in rows {
                out.push((r.get("t"), r.get("c")));
            }
        }
    }
    out
}

/// (table, column) holding `needle` anywhere in the registry.
async fn where_found(registry: &Registry, needle: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (table, column) in text_columns(registry).await {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {table} WHERE {column} LIKE $1"
        )))
        .bind(format!("%{needle}%"))
        .fetch_one(registry.pool())
        .await
        .unwrap();
        if n > 0 {
            found.push((table, column));
        }
    }
    found
}

async fn count(registry: &Registry, sql: &str, firm: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(firm)
        .fetch_one(registry.pool())
        .await
        .unwrap()
}

async fn a_purged_firm_leaves_only_its_tombstone_and_the_log_still_verifies(env: TestEnv) {
    env.add_seeded_firm(GONE, small_seed()).await;
    env.add_seeded_firm(KEPT, small_seed()).await;
    let mut identifiers = vec![GONE.to_string()];
    for firm in [GONE, KEPT] {
        let (client_id, _) = enable_with_credential(&env.registry, firm, "accounting").await;
        enable_with_credential(&env.registry, firm, "matter-webhook").await;
        let user = add_login(
            &env.registry,
            firm,
            &format!("dpo@{firm}.example"),
            Role::Admin,
        )
        .await;
        if firm == GONE {
            identifiers.extend([client_id, user.id.clone(), user.email.clone()]);
            for g in env.registry.grants(Some(firm)).await.unwrap() {
                identifiers.push(g.id);
            }
        }
    }
    let app = env.spawn().await;
    let mut tokens = Vec::new();
    for firm in [GONE, KEPT] {
        let (client_id, secret) = {
            let issued = env
                .registry
                .issue_credential(firm, "accounting")
                .await
                .unwrap();
            use secrecy::ExposeSecret;
            (
                issued.client_id,
                issued.client_secret.expose_secret().to_string(),
            )
        };
        let token = app.token(&client_id, &secret).await;
        assert_eq!(
            app.get("/v1/transactions?limit=5", &token).await.status(),
            200
        );
        assert_eq!(app.get("/v1/matters?limit=5", &token).await.status(), 200);
        if firm == GONE {
            identifiers.push(client_id);
            // A planted decoy, and a probe: tripwire and security-event rows (the
            // polls above made the grant's pseudonym key), all of them the firm's.
            let decoy = env.registry.add_tripwire(firm, "backup").await.unwrap();
            identifiers.extend([decoy.client_id, decoy.tripwire_id]);
            assert_eq!(app.get("/v1/clients", &token).await.status(), 404);
            while env
                .registry
                .security_events(firm, None, 1)
                .await
                .unwrap()
                .events
                .is_empty()
            {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        tokens.push(token);
    }
    let keys = app.state.log_keys.clone();
    let checkpoints_path = env.dir.path().join("checkpoints.jsonl");
    let line =
        Checkpoint::new(current_heads(&env.registry).await.unwrap(), &keys).signed_line(&keys);
    append_line(&checkpoints_path, &line).unwrap();

    // Terminated: no purge before that, and the gateway stops serving the firm.
    let refused = purge_firm(&env.registry, &keys, GONE, true, "dpo")
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("not terminated"), "{refused}");
    mark_terminated(&env.registry, &keys, GONE, "dpo")
        .await
        .unwrap();
    for g in env.registry.grants(Some(GONE)).await.unwrap() {
        env.registry
            .disable_grant(GONE, &g.connector, "dpo")
            .await
            .unwrap();
    }
    assert_eq!(
        app.get("/v1/transactions?limit=5", &tokens[0])
            .await
            .status(),
        401
    );
    let catalogue = scopegate::connectors::catalogue();
    let again = env
        .registry
        .enable_grant(
            GONE,
            &catalogue.require("accounting").unwrap().contract,
            "dpo",
        )
        .await
        .unwrap_err();
    assert!(again.to_string().contains("terminated"), "{again}");
    let users = env.registry.users(GONE).await.unwrap();
    assert!(users.iter().all(|u| u.disabled_at.is_some()));

    let head_before: i64 = count(
        &env.registry,
        "SELECT seq FROM outbound_chain_heads WHERE firm_id = $1",
        GONE,
    )
    .await;
    assert!(head_before > 0);
    let Purged::Everything { tombstone } = purge_firm(&env.registry, &keys, GONE, true, "dpo")
        .await
        .unwrap()
    else {
        panic!("a purge on request takes everything");
    };
    assert_eq!(tombstone.last_seq, head_before);

    // Nothing of the purged firm in any table but its tombstones (the outbound
    // log's and the access trail's; the operator's trail names neither firm
    // nor any of its ids).
    let tombstones = ["outbound_tombstones", "access_trail_tombstones"];
    for id in &identifiers {
        let found: Vec<(String, String)> = where_found(&env.registry, id)
            .await
            .into_iter()
            .filter(|(t, _)| !tombstones.contains(&t.as_str()))
            .collect();
        assert!(found.is_empty(), "{id} is still in {found:?}");
    }
    let mut found = where_found(&env.registry, GONE).await;
    found.sort();
    assert_eq!(
        found,
        vec![
            ("access_trail_tombstones".to_string(), "chain".to_string()),
            ("outbound_tombstones".to_string(), "firm_id".to_string())
        ]
    );
    // The other firm still works, and its log is whole.
    assert_eq!(
        app.get("/v1/transactions?limit=5", &tokens[1])
            .await
            .status(),
        200
    );
    assert!(
        count(
            &env.registry,
            "SELECT COUNT(*) FROM outbound_log WHERE firm_id = $1",
            KEPT
        )
        .await
            > 0
    );

    let checkpoints = Checkpoints::load(&checkpoints_path, &keys).unwrap();
    let report = verify_all(&env.registry, &keys, None, Some(&checkpoints))
        .await
        .unwrap();
    assert_eq!(report.faults, vec![], "a purge is not a deletion");
    assert_eq!(report.purged.len(), 1);
    assert_eq!(report.purged[0].firm_id, GONE);

    // A tombstone edited to hide records cut before the purge does not hold
    // under the log key, and no longer vouches for the checkpointed chain.
    sqlx::query("UPDATE outbound_tombstones SET last_seq = last_seq - 2 WHERE firm_id = $1")
        .bind(GONE)
        .execute(env.registry.pool())
        .await
        .unwrap();
    let report = verify_all(&env.registry, &keys, None, Some(&checkpoints))
        .await
        .unwrap();
    let problems: Vec<&str> = report.faults.iter().map(|f| f.problem.as_str()).collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("tombstone does not hold"),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("saw its chain at record"),
        "{problems:?}"
    );
    // Without the key, verify names the tombstone as forged even with no checkpoint.
    let report = verify_all(&env.registry, &keys, None, None).await.unwrap();
    assert_eq!(report.faults.len(), 1);
    app.stop().await;
}

async fn the_scheduled_purge_keeps_the_log_for_the_audit_period(env: TestEnv) {
    env.add_seeded_firm(GONE, small_seed()).await;
    env.add_seeded_firm(KEPT, small_seed()).await;
    enable_with_credential(&env.registry, GONE, "accounting").await;
    let app = env.spawn().await;
    let keys = app.state.log_keys.clone();
    let issued = env
        .registry
        .issue_credential(GONE, "accounting")
        .await
        .unwrap();
    let token = {
        use secrecy::ExposeSecret;
        app.token(&issued.client_id, issued.client_secret.expose_secret())
            .await
    };
    assert_eq!(
        app.get("/v1/transactions?limit=3", &token).await.status(),
        200
    );
    let at = mark_terminated(&env.registry, &keys, GONE, "dpo")
        .await
        .unwrap();
    const DAY: i64 = 86_400_000;
    let policy = RetentionPolicy {
        data_ms: 183 * DAY,
        log_ms: 365 * DAY,
    };

    // Before the retention period ends: nothing.
    assert!(purge_due(&env.registry, &keys, policy, at + 182 * DAY)
        .await
        .unwrap()
        .is_empty());
    // After it: the data, not the log.
    let done = purge_due(&env.registry, &keys, policy, at + 184 * DAY)
        .await
        .unwrap();
    assert_eq!(
        done,
        vec![Purged::Data {
            firm_id: GONE.into()
        }]
    );
    assert_eq!(
        count(
            &env.registry,
            "SELECT COUNT(*) FROM grants WHERE firm_id = $1",
            GONE
        )
        .await,
        0
    );
    assert!(
        count(
            &env.registry,
            "SELECT COUNT(*) FROM outbound_log WHERE firm_id = $1",
            GONE
        )
        .await
            > 0
    );
    assert!(verify_all(&env.registry, &keys, None, None)
        .await
        .unwrap()
        .faults
        .is_empty());
    // Run again (another instance): nothing more until the audit period ends.
    assert!(purge_due(&env.registry, &keys, policy, at + 200 * DAY)
        .await
        .unwrap()
        .is_empty());
    let done = purge_due(&env.registry, &keys, policy, at + 366 * DAY)
        .await
        .unwrap();
    assert!(matches!(&done[..], [Purged::Everything { tombstone }] if tombstone.firm_id == GONE));
    assert_eq!(
        count(
            &env.registry,
            "SELECT COUNT(*) FROM outbound_log WHERE firm_id = $1",
            GONE
        )
        .await,
        0
    );
    let report = verify_all(&env.registry, &keys, None, None).await.unwrap();
    assert!(report.faults.is_empty(), "{:?}", report.faults);
    assert_eq!(report.purged.len(), 1);
    assert!(env.registry.firm(KEPT).await.is_ok());
    app.stop().await;
}
