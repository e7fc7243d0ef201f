//! The registry's store behaviour, run on SQLite and on PostgreSQL: firms,
//! grants and the consent ledger, credentials and tokens, and the rule that a
//! bad request leaves the registry unchanged.

use scopegate::registry::StoreError;
use scopegate_e2e::{enable_with_credential, on_both_backends, small_seed, TestEnv};
use secrecy::ExposeSecret;

on_both_backends!(
    firms_register_once_and_are_found,
    grants_switch_with_ledger_and_refuse_repeats,
    disabling_kills_credentials_and_tokens_in_one_step,
    credential_and_token_checks,
    a_changed_schema_does_not_widen_a_grant,
    rotation_replaces_a_credential_all_or_nothing,
    a_resolved_token_is_dropped_by_any_change_on_any_instance,
    choices_kept_under_a_generation_are_read_again_after_any_change,
    a_grant_found_on_is_off_after_any_change_on_any_instance,
);

async fn firms_register_once_and_are_found(env: TestEnv) {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let again = env
        .registry
        .add_firm("alpha-law", "Alpha again", "sqlite://x.db")
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert!(matches!(
        env.registry.add_firm("Bad Id", "x", "sqlite://x.db").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        env.registry.firm("nobody").await,
        Err(StoreError::NotFound(_))
    ));
    let firms = env.registry.firms().await.unwrap();
    assert_eq!(firms.len(), 1);
    assert_eq!(firms[0].name, "Firm alpha-law");
}

async fn grants_switch_with_ledger_and_refuse_repeats(env: TestEnv) {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let accounting = scopegate::connectors::catalogue()
        .require("accounting")
        .unwrap();
    let registry = &env.registry;
    assert!(matches!(
        registry
            .disable_grant("alpha-law", "accounting", "amy")
            .await,
        Err(StoreError::Conflict(_))
    ));
    let grant = registry
        .enable_grant("alpha-law", &accounting.contract, "amy@alpha")
        .await
        .unwrap();
    assert!(grant.enabled);
    assert_eq!(grant.schema_hash, accounting.schema_hash);
    assert!(matches!(
        registry
            .enable_grant("alpha-law", &accounting.contract, "amy@alpha")
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        registry
            .enable_grant("ghost", &accounting.contract, "amy")
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        registry
            .enable_grant("alpha-law", &accounting.contract, "  ")
            .await,
        Err(StoreError::Invalid(_))
    ));
    registry
        .disable_grant("alpha-law", "accounting", "ben@alpha")
        .await
        .unwrap();
    registry
        .enable_grant("alpha-law", &accounting.contract, "amy@alpha")
        .await
        .unwrap();
    let ledger = registry.consent_ledger("alpha-law").await.unwrap();
    let summary: Vec<(String, String)> = ledger
        .iter()
        .map(|e| (e.action.clone(), e.actor.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("enable".to_string(), "amy@alpha".to_string()),
            ("disable".to_string(), "ben@alpha".to_string()),
            ("enable".to_string(), "amy@alpha".to_string()),
        ]
    );
    assert!(ledger
        .iter()
        .all(|e| e.schema_hash == accounting.schema_hash && e.contract_version == "1" && e.at > 0));
}

async fn disabling_kills_credentials_and_tokens_in_one_step(env: TestEnv) {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let (client_id, secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let client = env
        .registry
        .authenticate_client(&client_id, &secret)
        .await
        .unwrap()
        .expect("authenticates");
    let token = env
        .registry
        .issue_token(&client, &["transactions:read".into()], 900)
        .await
        .unwrap();
    let token = token.access_token.expose_secret().to_string();
    assert!(env.registry.resolve_token(&token).await.unwrap().is_some());
    env.registry
        .disable_grant("alpha-law", "accounting", "amy")
        .await
        .unwrap();
    assert!(
        env.registry.resolve_token(&token).await.unwrap().is_none(),
        "token outlived its grant"
    );
    assert!(
        env.registry
            .authenticate_client(&client_id, &secret)
            .await
            .unwrap()
            .is_none(),
        "credential outlived its grant"
    );
    assert!(env
        .registry
        .credentials("alpha-law")
        .await
        .unwrap()
        .iter()
        .all(|c| c.revoked_at.is_some()));
}

async fn credential_and_token_checks(env: TestEnv) {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    env.add_seeded_firm("beta-law", small_seed()).await;
    assert!(matches!(
        env.registry
            .issue_credential("alpha-law", "accounting")
            .await,
        Err(StoreError::NotFound(_))
    ));
    let (a_id, a_secret) = enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let (b_id, b_secret) = enable_with_credential(&env.registry, "beta-law", "accounting").await;
    assert!(a_secret.starts_with("sgs_") && a_id.starts_with("sgc_"));
    // Another firm's secret with this client id, a truncated secret, a typo: all refused.
    assert!(env
        .registry
        .authenticate_client(&a_id, &b_secret)
        .await
        .unwrap()
        .is_none());
    assert!(env
        .registry
        .authenticate_client(&a_id, &a_secret[..a_secret.len() - 1])
        .await
        .unwrap()
        .is_none());
    let a = env
        .registry
        .authenticate_client(&a_id, &a_secret)
        .await
        .unwrap()
        .unwrap();
    let b = env
        .registry
        .authenticate_client(&b_id, &b_secret)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.firm_id.as_str(), b.firm_id.as_str()),
        ("alpha-law", "beta-law")
    );
    let token = env
        .registry
        .issue_token(&a, &["fees:write".into()], 900)
        .await
        .unwrap();
    let grant = env
        .registry
        .resolve_token(token.access_token.expose_secret())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.firm_id, "alpha-law");
    assert_eq!(grant.scopes, vec!["fees:write"]);
    // Expired tokens do not resolve.
    let short = env
        .registry
        .issue_token(&a, &["fees:write".into()], -1)
        .await
        .unwrap();
    assert!(env
        .registry
        .resolve_token(short.access_token.expose_secret())
        .await
        .unwrap()
        .is_none());
    // Revoking one credential leaves the other firm untouched.
    env.registry
        .revoke_credential("alpha-law", &a_id)
        .await
        .unwrap();
    assert!(env
        .registry
        .resolve_token(token.access_token.expose_secret())
        .await
        .unwrap()
        .is_none());
    assert!(env
        .registry
        .authenticate_client(&b_id, &b_secret)
        .await
        .unwrap()
        .is_some());
    assert!(matches!(
        env.registry.revoke_credential("beta-law", &a_id).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn a_changed_schema_does_not_widen_a_grant(env: TestEnv) {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let (client_id, secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    // The operator ships a wider transaction schema (adds internal_note).
    let schemas = env.dir.path().join("schemas");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/accounting");
    std::fs::create_dir_all(schemas.join("accounting")).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            schemas.join("accounting").join(entry.file_name()),
        )
        .unwrap();
    }
    let path = schemas.join("accounting/transaction.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["properties"]["internal_note"] = serde_json::json!({"type": "string", "x-column": "internal_note", "description": "Internal note"});
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let manifest_path = schemas.join("accounting/manifest.json");
    let manifest = std::fs::read_to_string(&manifest_path)
        .unwrap()
        .replace("\"contract_version\": \"1\"", "\"contract_version\": \"2\"");
    std::fs::write(&manifest_path, manifest).unwrap();

    let mut config = env.config();
    config.schemas_dir = Some(schemas.clone());
    let app = env.spawn_with(config).await;
    let refused = app
        .http
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("re-consent"));

    // Re-consent to version 2 through the same catalogue: now it serves, with the wider field.
    let wider = scopegate::connectors::catalogue_from(Some(&schemas)).unwrap();
    env.registry
        .enable_grant(
            "alpha-law",
            &wider.require("accounting").unwrap().contract,
            "amy@alpha",
        )
        .await
        .unwrap();
    let token = app.token(&client_id, &secret).await;
    let page: serde_json::Value = app
        .get("/v1/transactions?limit=2", &token)
        .await
        .json()
        .await
        .unwrap();
    assert!(page["data"][0]["internal_note"].is_string(), "{page}");
    let ledger = env.registry.consent_ledger("alpha-law").await.unwrap();
    assert_eq!(ledger.last().unwrap().contract_version, "2");
    app.stop().await;
}

async fn rotation_replaces_a_credential_all_or_nothing(env: TestEnv) {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let (old_id, old_secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let client = env
        .registry
        .authenticate_client(&old_id, &old_secret)
        .await
        .unwrap()
        .unwrap();
    let token = env
        .registry
        .issue_token(&client, &["fees:write".into()], 900)
        .await
        .unwrap();
    let new = env
        .registry
        .rotate_credential("alpha-law", "accounting", &old_id)
        .await
        .unwrap();
    assert!(env
        .registry
        .authenticate_client(&old_id, &old_secret)
        .await
        .unwrap()
        .is_none());
    assert!(env
        .registry
        .resolve_token(token.access_token.expose_secret())
        .await
        .unwrap()
        .is_none());
    assert!(env
        .registry
        .authenticate_client(&new.client_id, new.client_secret.expose_secret())
        .await
        .unwrap()
        .is_some());
    // Rotating what is no longer active fails and issues nothing.
    let before = env.registry.credentials("alpha-law").await.unwrap().len();
    assert!(matches!(
        env.registry
            .rotate_credential("alpha-law", "accounting", &old_id)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        env.registry.credentials("alpha-law").await.unwrap().len(),
        before
    );
}

/// alpha-law with accounting on and its vendor's client authenticated, and a
/// second registry handle on the same database (another instance's).
async fn a_client_on_two_instances(
    env: &TestEnv,
) -> (
    scopegate::registry::Registry,
    scopegate::registry::credentials::AuthenticatedClient,
) {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let other = scopegate::registry::Registry::connect(&env.database_url)
        .await
        .unwrap();
    let (client_id, secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let client = env
        .registry
        .authenticate_client(&client_id, &secret)
        .await
        .unwrap()
        .expect("authenticates");
    (other, client)
}

/// A fresh access token of `client`.
async fn token_for(
    env: &TestEnv,
    client: &scopegate::registry::credentials::AuthenticatedClient,
) -> String {
    env.registry
        .issue_token(client, &["transactions:read".into()], 900)
        .await
        .unwrap()
        .access_token
        .expose_secret()
        .to_string()
}

/// Resolved tokens are kept in memory only while nothing has changed: a
/// token, credential or grant changed by any statement (here raw SQL, as no
/// code path of the gateway) through either of two instances is refused by
/// both on their very next lookup.
async fn a_resolved_token_is_dropped_by_any_change_on_any_instance(env: TestEnv) {
    let (other, client) = a_client_on_two_instances(&env).await;
    let issue = || token_for(&env, &client);
    let both_resolve = |token: String| {
        let (a, b) = (env.registry.clone(), other.clone());
        async move {
            let mut answers = Vec::new();
            for registry in [&a, &b, &a, &b] {
                answers.push(registry.resolve_token(&token).await.unwrap().is_some());
            }
            answers
        }
    };
    let changes: [(&str, &scopegate::registry::Registry); 3] = [
        (
            "UPDATE access_tokens SET revoked_at = 1 WHERE revoked_at IS NULL",
            &other,
        ),
        (
            "UPDATE credentials SET revoked_at = 1 WHERE revoked_at IS NULL",
            &env.registry,
        ),
        ("UPDATE grants SET enabled = 0", &other),
    ];
    for (change, through) in changes {
        let token = issue().await;
        assert_eq!(
            both_resolve(token.clone()).await,
            [true; 4],
            "before: {change}"
        );
        sqlx::query(change).execute(through.pool()).await.unwrap();
        assert_eq!(both_resolve(token).await, [false; 4], "after: {change}");
        // Back on for the next change (a fresh credential is not needed: tokens
        // are issued to the client checked above, and its row is only revoked).
        sqlx::query("UPDATE credentials SET revoked_at = NULL")
            .execute(env.registry.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE grants SET enabled = 1")
            .execute(env.registry.pool())
            .await
            .unwrap();
    }
    other.close().await;
}

async fn choices_kept_under_a_generation_are_read_again_after_any_change(env: TestEnv) {
    let (other, client) = a_client_on_two_instances(&env).await;
    let token = token_for(&env, &client).await;
    // What a poll does: resolve its token, then read the choices under its generation.
    let read_on = |registry: scopegate::registry::Registry| {
        let token = token.clone();
        async move {
            let generation = registry
                .resolve_token(&token)
                .await
                .unwrap()
                .expect("live")
                .resolved_under;
            let chosen = registry
                .stored_choices_under("alpha-law", "accounting", Some(generation))
                .await
                .unwrap();
            (generation, chosen.get("title").cloned())
        }
    };
    let changes: [(&str, Option<&str>, &scopegate::registry::Registry); 3] = [
        (
            r#"INSERT INTO grant_choices (firm_id, connector, choices, updated_at, updated_by) VALUES ('alpha-law', 'accounting', '{"title":"number"}', 1, 'test')"#,
            Some("number"),
            &other,
        ),
        (
            r#"UPDATE grant_choices SET choices = '{"title":"name"}'"#,
            Some("name"),
            &env.registry,
        ),
        ("DELETE FROM grant_choices", None, &other),
    ];
    for (change, now, through) in changes {
        let (before, was) = read_on(env.registry.clone()).await;
        assert_eq!(read_on(other.clone()).await, (before, was.clone()));
        sqlx::query(change).execute(through.pool()).await.unwrap();
        for registry in [&env.registry, &other] {
            // The control: under the generation read before the change, the
            // value kept in memory still answers; only a moved generation
            // makes a request read the change.
            let kept = registry
                .stored_choices_under("alpha-law", "accounting", Some(before))
                .await
                .unwrap();
            assert_eq!(kept.get("title"), was.as_ref(), "kept: {change}");
            let (generation, read) = read_on(registry.clone()).await;
            assert!(generation > before, "{change} moves the generation");
            assert_eq!(read.as_deref(), now, "after: {change}");
        }
    }
    other.close().await;
}

async fn a_grant_found_on_is_off_after_any_change_on_any_instance(env: TestEnv) {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let other = scopegate::registry::Registry::connect(&env.database_url)
        .await
        .unwrap();
    let accounting = scopegate::connectors::catalogue()
        .require("accounting")
        .unwrap();
    let grant = env
        .registry
        .enable_grant("alpha-law", &accounting.contract, "amy@alpha")
        .await
        .unwrap();
    let hash = accounting.schema_hash.clone();
    let both = |firm: &'static str| {
        let (a, b, id, hash) = (
            env.registry.clone(),
            other.clone(),
            grant.id.clone(),
            hash.clone(),
        );
        async move {
            let mut answers = Vec::new();
            for registry in [&a, &b, &a, &b] {
                answers.push(registry.grant_is_active(firm, &id, &hash).await.unwrap());
            }
            answers
        }
    };
    assert_eq!(both("alpha-law").await, [true; 4]);
    assert_eq!(both("beta-law").await, [false; 4], "another firm's id");
    let changes: [(&str, &scopegate::registry::Registry); 2] = [
        ("UPDATE grants SET enabled = 0", &other),
        ("UPDATE grants SET schema_hash = 'older'", &env.registry),
    ];
    for (change, through) in changes {
        sqlx::query(change).execute(through.pool()).await.unwrap();
        assert_eq!(both("alpha-law").await, [false; 4], "after: {change}");
        sqlx::query("UPDATE grants SET enabled = 1, schema_hash = $1")
            .bind(&hash)
            .execute(env.registry.pool())
            .await
            .unwrap();
        assert_eq!(
            both("alpha-law").await,
            [true; 4],
            "back on after: {change}"
        );
    }
    other.close().await;
}
