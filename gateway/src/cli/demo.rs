//! `scopegate demo`: a throwaway gateway on SQLite in a fresh data directory
//! with two seeded demo firms; the accounting connector is switched on for
//! one of them and a working `curl` sequence is printed.

use super::{CliError, CliResult};
use crate::app::{shutdown_signal, Application};
use crate::config::Config;
use crate::keys::Keyring;
use crate::registry::Registry;
use crate::tenancy::{default_firm_url, provision_firm_database, seed};
use clap::Args;
use secrecy::ExposeSecret;
use sqlx::Row;
use std::sync::Arc;

#[derive(Args)]
pub struct DemoArgs {
    /// Keep the demo's data in this folder instead of a fresh temporary one.
    #[arg(long)]
    pub demo_dir: Option<std::path::PathBuf>,
}

const FIRMS: &[(&str, &str)] = &[
    ("harbour-law", "Harbour Law Inc."),
    ("ndlovu-attorneys", "Ndlovu Attorneys"),
];

pub async fn run(mut config: Config, args: DemoArgs) -> CliResult {
    crate::telemetry::init(config.log_format, "warn");
    let dir = match args.demo_dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!(
            "scopegate-demo-{}-{}",
            std::process::id(),
            crate::clock::now_ms()
        )),
    };
    if dir.join("registry.db").exists() {
        return Err(CliError(format!(
            "{} already holds a demo; pass a new --demo-dir",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError(format!("cannot create {}: {e}", dir.display())))?;
    config.data_dir = dir.clone();
    config.database_url = format!("sqlite://{}", dir.join("registry.db").display());
    let registry = Registry::connect_and_migrate(&config.database_url).await?;
    let catalogue = super::catalogue(&config)?;
    let mut matter_id = String::new();
    let mut fee_earner: Option<(String, String, String)> = None;
    for (id, name) in FIRMS {
        let url = default_firm_url(&dir, id);
        let db = provision_firm_database(id, &url).await?;
        seed::seed_demo(&db, seed::SeedSize::default()).await?;
        if matter_id.is_empty() {
            matter_id = sqlx::query("SELECT id FROM matters ORDER BY number LIMIT 1")
                .fetch_one(db.pool())
                .await?
                .get("id");
        }
        if fee_earner.is_none() {
            let row = sqlx::query("SELECT id, full_name, email FROM users ORDER BY email LIMIT 1")
                .fetch_one(db.pool())
                .await?;
            fee_earner = Some((row.get("id"), row.get("full_name"), row.get("email")));
        }
        db.pool().close().await;
        registry.add_firm(id, name, &url).await?;
    }
    let accounting = catalogue.require("accounting").map_err(CliError)?;
    registry
        .enable_grant(
            FIRMS[0].0,
            &accounting.contract,
            "admin@harbour-law.example",
        )
        .await?;
    let credential = registry.issue_credential(FIRMS[0].0, "accounting").await?;
    let admin_password = crate::accounts::passwords::generate();
    registry
        .add_user(crate::accounts::users::NewUser {
            firm_id: FIRMS[0].0,
            email: "admin@harbour-law.example",
            name: "Harbour Admin",
            role: crate::accounts::Role::Admin,
            firm_user_id: None,
            password: Some(&admin_password),
        })
        .await?;
    let (earner_id, earner_name, earner_email) = fee_earner.expect("seeded fee earner");
    let earner_password = crate::accounts::passwords::generate();
    registry
        .add_user(crate::accounts::users::NewUser {
            firm_id: FIRMS[0].0,
            email: &earner_email,
            name: &earner_name,
            role: crate::accounts::Role::FeeEarner,
            firm_user_id: Some(&earner_id),
            password: Some(&earner_password),
        })
        .await?;
    registry.close().await;

    let app = Application::build(config, Arc::new(Keyring::ephemeral())).await?;
    let base = format!("http://{}", app.local_addr());
    println!(
        "scopegate demo is running at {base} (data in {})",
        dir.display()
    );
    println!(
        "firms: {} (accounting switched on), {} (nothing shared)",
        FIRMS[0].0, FIRMS[1].0
    );
    println!();
    println!("Try the accounting connector as the vendor would (bash):");
    println!();
    println!("export SG={base}");
    println!("export CLIENT_ID={}", credential.client_id);
    println!(
        "export CLIENT_SECRET={}",
        credential.client_secret.expose_secret()
    );
    println!("TOKEN=$(curl -s -u \"$CLIENT_ID:$CLIENT_SECRET\" -d grant_type=client_credentials \"$SG/oauth/token\" | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')");
    println!("curl -s -H \"Authorization: Bearer $TOKEN\" \"$SG/v1/transactions?limit=3\"");
    println!("curl -s -H \"Authorization: Bearer $TOKEN\" \"$SG/v1/matters?limit=3\"");
    println!(
        "curl -s -H \"Authorization: Bearer $TOKEN\" -H 'Idempotency-Key: demo-fee-1' -H 'Content-Type: application/json' -d '{{\"matter_id\":\"{matter_id}\",\"amount_cents\":150000,\"currency\":\"ZAR\",\"description\":\"Drafting of contract\",\"fee_date\":\"{}\"}}' \"$SG/v1/fees\"",
        chrono::Utc::now().format("%Y-%m-%d")
    );
    println!();
    println!("Then see what left, and check the log's hash chain:");
    println!(
        "  scopegate --data-dir {} audit export --firm {}",
        dir.display(),
        FIRMS[0].0
    );
    println!("  scopegate --data-dir {} audit verify", dir.display());
    println!();
    println!("Settings page: {base}/settings");
    println!(
        "  firm admin:  firm {}  email admin@harbour-law.example  password {admin_password}",
        FIRMS[0].0
    );
    println!(
        "  fee earner:  firm {}  email {earner_email}  password {earner_password}",
        FIRMS[0].0
    );
    println!("API description: {base}/openapi.json    Stop with Ctrl-C.");
    app.run_until(shutdown_signal()).await?;
    Ok(())
}
