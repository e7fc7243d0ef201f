//! A registry of many firms for the tenancy bench: one seeded firm database
//! copied per active firm, and for every registered firm the rows a live
//! accounting grant leaves behind (grant, credential, access token), written
//! in bulk. The first firm goes through the registry's own calls
//! (`enable_grant`, `issue_credential`, `authenticate_client`,
//! `issue_token`); the others copy its grant's contract and are written in
//! one transaction, since 100,000 separate fsynced commits would take minutes.

use scopegate::registry::Registry;
use scopegate::secrets::{self, SecretKind};
use scopegate::tenancy::{default_firm_url, provision_firm_database, seed};
use secrecy::ExposeSecret;
use std::path::Path;

/// The firms of one run and the bearer tokens of the active ones.
pub struct ScaleRegistry {
    /// Every registered firm id, in order.
    pub firm_ids: Vec<String>,
    /// The active firms (spread evenly over `firm_ids`) with their access tokens.
    pub active: Vec<ActiveFirm>,
    /// Size of the seeded template each provisioned firm database is copied from.
    pub template_bytes: u64,
    /// How many firm databases were copied onto disk.
    pub provisioned: usize,
}

/// An active firm: its database exists, and its vendor holds a live token.
pub struct ActiveFirm {
    pub firm_id: String,
    pub access_token: String,
}

/// The connector whose grants the bench registers.
const CONNECTOR: &str = "accounting";
/// A token lifetime long enough for any run.
const TOKEN_TTL_MS: i64 = 3_600_000;

fn sqlite_path(url: &str) -> &str {
    url.trim_start_matches("sqlite://")
}

/// Registers `firm_count` firms; `active_count` of them (evenly spread) get a
/// database copied from the template, and so does every other one when
/// `provision_all` is set.
pub async fn create(
    registry: &Registry,
    data_dir: &Path,
    firm_count: usize,
    active_count: usize,
    provision_all: bool,
) -> ScaleRegistry {
    assert!(
        (1..=firm_count).contains(&active_count),
        "active firms ({active_count}) must be between 1 and the registered firms ({firm_count})"
    );
    let firm_ids: Vec<String> = (0..firm_count).map(|i| format!("firm-{i:06}")).collect();
    let stride = firm_count / active_count;
    let is_active = |index: usize| index.is_multiple_of(stride) && index / stride < active_count;
    let template = seeded_template(data_dir).await;
    let template_bytes = std::fs::metadata(&template).expect("template").len();
    let mut provisioned = 0;
    let mut tx = registry.pool().begin().await.expect("begin");
    let now = scopegate::clock::now_ms();
    for (index, id) in firm_ids.iter().enumerate() {
        let url = default_firm_url(data_dir, id);
        if provision_all || is_active(index) {
            std::fs::copy(&template, sqlite_path(&url)).expect("copy template");
            provisioned += 1;
        }
        // The same row `Registry::add_firm` writes, in one transaction for all firms.
        sqlx::query("INSERT INTO firms (id, name, data_url, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(format!("Firm {id}"))
            .bind(&url)
            .bind(now)
            .execute(&mut *tx)
            .await
            .expect("register firm");
    }
    tx.commit().await.expect("commit firms");

    let (first_token, contract) = grant_through_the_registry(registry, &firm_ids[0]).await;
    let mut tokens = vec![first_token];
    let mut tx = registry.pool().begin().await.expect("begin");
    for id in &firm_ids[1..] {
        tokens.push(insert_live_grant(&mut tx, id, &contract, now).await);
    }
    tx.commit().await.expect("commit grants");
    // A registry that has been running has its log checkpointed; one
    // transaction of 100,000 firms would otherwise leave them all in the WAL.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(registry.pool())
        .await
        .expect("checkpoint");

    let active = firm_ids
        .iter()
        .zip(tokens)
        .enumerate()
        .filter(|(index, _)| is_active(*index))
        .map(|(_, (id, access_token))| ActiveFirm {
            firm_id: id.clone(),
            access_token,
        })
        .collect();
    ScaleRegistry {
        firm_ids,
        active,
        template_bytes,
        provisioned,
    }
}

/// One seeded firm database, checkpointed into a single file; returns its path.
async fn seeded_template(data_dir: &Path) -> String {
    std::fs::create_dir_all(data_dir.join("firms")).expect("firms dir");
    let template_url = default_firm_url(data_dir, "template");
    let template = provision_firm_database("template", &template_url)
        .await
        .expect("template database");
    seed::seed_demo(
        &template,
        seed::SeedSize {
            fee_earners: 3,
            clients: 8,
            matters: 10,
            diary_entries: 30,
            transactions: 60,
        },
    )
    .await
    .expect("seed");
    sqlx::query("VACUUM")
        .execute(template.pool())
        .await
        .expect("vacuum");
    template.pool().close().await; // last connection closed: WAL checkpointed into the file
    sqlite_path(&template_url).to_string()
}

/// What every bulk-written grant copies from the first one.
struct GrantContract {
    schema_hash: String,
    contract_version: String,
    scopes: String,
}

/// Switches the connector on for `firm_id`, issues a credential and a token,
/// all through the registry; returns the token and the grant's contract.
async fn grant_through_the_registry(registry: &Registry, firm_id: &str) -> (String, GrantContract) {
    let catalogue = scopegate::connectors::catalogue();
    let connector = catalogue.require(CONNECTOR).expect("accounting connector");
    let grant = registry
        .enable_grant(firm_id, &connector.contract, "admin@bench")
        .await
        .expect("enable grant");
    let issued = registry
        .issue_credential(firm_id, CONNECTOR)
        .await
        .expect("credential");
    let client = registry
        .authenticate_client(&issued.client_id, issued.client_secret.expose_secret())
        .await
        .expect("authenticate")
        .expect("the issued secret authenticates");
    let scopes = connector.contract.manifest.scopes.clone();
    let token = registry
        .issue_token(&client, &scopes, TOKEN_TTL_MS / 1000)
        .await
        .expect("token");
    let contract = GrantContract {
        schema_hash: grant.schema_hash,
        contract_version: grant.contract_version,
        scopes: scopes.join(" "),
    };
    (token.access_token.expose_secret().to_string(), contract)
}

/// The grant, credential and access-token rows `enable_grant`,
/// `issue_credential` and `issue_token` write (the consent ledger aside);
/// returns the token.
async fn insert_live_grant(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    firm_id: &str,
    contract: &GrantContract,
    now: i64,
) -> String {
    let grant_id = uuid::Uuid::new_v4().to_string();
    let credential_id = uuid::Uuid::new_v4().to_string();
    let token = secrets::generate(SecretKind::AccessToken);
    sqlx::query("INSERT INTO grants (id, firm_id, connector, enabled, schema_hash, contract_version, updated_at) VALUES ($1, $2, $3, 1, $4, $5, $6)")
        .bind(&grant_id).bind(firm_id).bind(CONNECTOR).bind(&contract.schema_hash).bind(&contract.contract_version).bind(now)
        .execute(&mut **tx).await.expect("grant");
    sqlx::query("INSERT INTO credentials (id, grant_id, firm_id, client_id, secret_sha256, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&credential_id).bind(&grant_id).bind(firm_id)
        .bind(secrets::generate(SecretKind::ClientId))
        .bind(secrets::sha256_hex(secrets::generate(SecretKind::ClientSecret)))
        .bind(now)
        .execute(&mut **tx).await.expect("credential");
    sqlx::query("INSERT INTO access_tokens (token_sha256, grant_id, credential_id, firm_id, scopes, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(secrets::sha256_hex(&token)).bind(&grant_id).bind(&credential_id).bind(firm_id)
        .bind(&contract.scopes).bind(now).bind(now + TOKEN_TTL_MS)
        .execute(&mut **tx).await.expect("access token");
    token
}
