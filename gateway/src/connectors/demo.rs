//! `scopegate demo`: a throwaway gateway on SQLite in a fresh data directory
//! with two seeded demo firms; the accounting connector is switched on for
//! one of them and a working `curl` sequence is printed. Google Calendar runs
//! against the bundled Google emulator: one demo fee earner is connected and
//! their diary synced, and the emulator's URL to see the events is printed,
//! as is where `/metrics` is served.

/// A failed demo step: the line to print.
pub struct DemoError(pub String);

impl<E: std::fmt::Display> From<E> for DemoError {
    fn from(e: E) -> Self {
        DemoError(e.to_string())
    }
}

type DemoResult = Result<(), DemoError>;
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

/// Runs the demo until Ctrl-C; an error is the line to print.
pub async fn run(config: Config, args: DemoArgs) -> Result<(), String> {
    run_demo(config, args).await.map_err(|DemoError(line)| line)
}

async fn run_demo(mut config: Config, args: DemoArgs) -> DemoResult {
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
        return Err(DemoError(format!(
            "{} already holds a demo; pass a new --demo-dir",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| DemoError(format!("cannot create {}: {e}", dir.display())))?;
    config.data_dir = dir.clone();
    config.checkpoint_path = dir.join("audit-checkpoints.jsonl");
    config.database_url = format!("sqlite://{}", dir.join("registry.db").display());
    let registry = Registry::connect_and_migrate(&config.database_url).await?;
    let catalogue = super::catalogue_from(config.schemas_dir.as_deref())?;
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
    let accounting = catalogue.require("accounting").map_err(DemoError)?;
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
    let calendar = catalogue
        .require(google_demo::CONNECTOR)
        .map_err(DemoError)?;
    registry
        .enable_grant(FIRMS[0].0, &calendar.contract, "admin@harbour-law.example")
        .await?;
    registry.close().await;

    let emulator = google_demo::start_emulator(&mut config).await?;
    // A fresh master key kept beside the demo data, so `audit verify` can check the keyed chain.
    let key_file = dir.join("master.key");
    let key = crate::keys::generate_key();
    std::fs::write(&key_file, format!("{key}\n"))
        .map_err(|e| DemoError(format!("cannot write {}: {e}", key_file.display())))?;
    let app =
        Application::build(config, Arc::new(Keyring::parse(&key)?), super::registered()).await?;
    let base = format!("http://{}", app.local_addr());
    let metrics = app.metrics_addr();
    let calendar_state = app.state();
    // The vendor names the matter by the id its grant is shown, not the firm's own.
    let matter_id = shown_matter_id(&calendar_state, FIRMS[0].0, &matter_id).await?;
    let (serving_tx, serving_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = serving_rx.await;
        shutdown_signal().await;
    }));
    let _ = serving_tx.send(());
    let calendar_line =
        google_demo::connect_and_sync(&calendar_state, &base, &dir, FIRMS[0].0, &emulator).await?;
    drop(calendar_state);
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
    println!(
        "  scopegate --data-dir {} --master-key-file {} audit verify --checkpoints {}",
        dir.display(),
        key_file.display(),
        dir.join("audit-checkpoints.jsonl").display()
    );
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
    println!(
        "  The fee earner connects their own Google Calendar on the page's Google Calendar tab\n  (the bundled emulator approves at once and sends the browser back to the page)."
    );
    println!("{calendar_line}");
    if let Some(metrics) = metrics {
        println!("Metrics (Prometheus text, its own listener):");
        println!("  curl -s http://{metrics}/metrics");
    }
    println!("API description: {base}/openapi.json    Stop with Ctrl-C.");
    server
        .await
        .map_err(|e| DemoError(format!("the demo gateway stopped: {e}")))??;
    drop(emulator);
    Ok(())
}

/// The Google Calendar part of the demo.
mod google_demo {
    use super::DemoError;
    use crate::app::AppState;
    use crate::capabilities::grant_for_operator;
    use crate::config::Config;
    use scopegate_google_emulator::{Emulator, EmulatorConfig, RunningEmulator};
    use sqlx::Row;
    use std::time::Duration;

    pub const CONNECTOR: &str = "google-calendar";

    /// Starts the emulator (auto-approving consent) on a free loopback port and points the config at it.
    pub async fn start_emulator(config: &mut Config) -> Result<RunningEmulator, DemoError> {
        let emulator = Emulator::new(EmulatorConfig::default())
            .start("127.0.0.1:0".parse().expect("addr"))
            .await
            .map_err(|e| DemoError(format!("cannot start the Google emulator: {e}")))?;
        let emulated = emulator.emulator.config();
        let settings = config
            .connector_settings
            .entry(CONNECTOR.to_string())
            .or_default();
        for (key, value) in [
            ("auth_url", emulator.auth_url()),
            ("token_url", emulator.token_url()),
            ("revoke_url", emulator.revoke_url()),
            ("api_base", emulator.api_base()),
            ("client_id", emulated.client_id),
            ("sync_interval_ms", "500".into()),
        ] {
            settings.insert(key.to_string(), value);
        }
        config
            .connector_secrets
            .entry(CONNECTOR.to_string())
            .or_default()
            .insert("client_secret".into(), emulated.client_secret.into());
        Ok(emulator)
    }

    /// Connects the first demo fee earner (the emulator approves at once), waits for the sync,
    /// and returns the lines to print.
    pub async fn connect_and_sync(
        state: &AppState,
        base: &str,
        dir: &std::path::Path,
        firm: &str,
        emulator: &RunningEmulator,
    ) -> Result<String, DemoError> {
        let grant = state.registry.grant(firm, CONNECTOR).await?;
        let db = state.tenancy.firm_db(&grant).await?;
        let user: String = sqlx::query(
            "SELECT owner_user_id FROM diary_entries GROUP BY owner_user_id ORDER BY COUNT(*) DESC, owner_user_id LIMIT 1",
        )
        .fetch_one(db.pool())
        .await
        .map_err(crate::registry::StoreError::from)?
        .get("owner_user_id");
        let live: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM diary_entries WHERE owner_user_id = $1 AND deleted = 0",
        )
        .bind(&user)
        .fetch_one(db.pool())
        .await
        .map_err(crate::registry::StoreError::from)?
        .get("n");
        let running = state
            .connectors
            .iter()
            .find(|r| r.connector.id() == CONNECTOR)
            .ok_or_else(|| DemoError("the Google Calendar connector is not registered".into()))?;
        let compiled = state.catalogue.require(CONNECTOR).map_err(DemoError)?;
        let operator = |args: Vec<String>| {
            let handle = grant_for_operator(&grant, &compiled, "demo");
            async move {
                let handle = handle.map_err(|_| DemoError("the demo grant is stale".into()))?;
                let printed =
                    match running
                        .connector
                        .operator_command(&running.capabilities, handle, &args)
                    {
                        Some(work) => work.await.map_err(|e| DemoError(e.to_string())),
                        None => Err(DemoError("the connector has no operator commands".into())),
                    };
                printed
            }
        };
        let printed = operator(vec!["connect".into(), "--user".into(), user.clone()]).await?;
        let mut url = oauth2_url(&printed)?;
        url.query_pairs_mut()
            .append_pair("login_hint", "demo.fee.earner@gmail.example");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let approved = http.get(url.as_str()).send().await?;
        let location = approved
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| DemoError("the Google emulator did not approve the consent".into()))?
            .to_string();
        let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let back = http
            .get(format!("{base}/oauth/google/callback?{query}"))
            .send()
            .await?;
        if !back.status().is_success() {
            return Err(DemoError(format!(
                "the consent callback failed: {}",
                back.text().await.unwrap_or_default()
            )));
        }
        let mut synced = 0;
        for _ in 0..300 {
            let status = operator(vec!["status".into()]).await?;
            synced = status
                .lines()
                .filter(|l| l.starts_with(&format!("{user}\t")))
                .find_map(|l| l.split('\t').find_map(|f| f.strip_prefix("events=")))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if synced >= live {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(format!(
            "Google Calendar (against the bundled emulator at {root}): fee earner {user} of {firm} is connected;\n\
             {synced} of {live} diary entries synced, carrying only matter name, date and description.\n\
             See the events:        curl -s {root}_emulator/events\n\
             See what Google got:   curl -s {root}_emulator/requests\n\
             Edit the diary in {firms}/{firm}.db and the change follows within a second.\n\
             Connections:           scopegate --data-dir {data} connector google-calendar --firm {firm} status",
            root = emulator.root_url(),
            firms = dir.join("firms").display(),
            data = dir.display(),
        ))
    }

    /// The authorize URL on the last line the `connect` command printed.
    fn oauth2_url(printed: &str) -> Result<reqwest::Url, DemoError> {
        printed
            .lines()
            .last()
            .and_then(|line| reqwest::Url::parse(line.trim()).ok())
            .ok_or_else(|| DemoError("the connect command printed no URL".into()))
    }
}

/// The id the firm's accounting grant shows its vendor for the matter `real`.
async fn shown_matter_id(
    state: &crate::app::AppState,
    firm_id: &str,
    real: &str,
) -> Result<String, DemoError> {
    use crate::security::pseudonyms::{GrantRef, Pseudonyms};
    let grant = state.registry.grant(firm_id, "accounting").await?;
    Pseudonyms::new(state.registry.clone(), state.keyring.clone())
        .for_grant(&GrantRef {
            firm_id,
            grant_id: &grant.id,
            connector: "accounting",
        })
        .await
        .map_err(|e| DemoError(e.to_string()))?
        .disguise(real)
        .ok_or_else(|| DemoError(format!("matter {real} has no UUID id")))
}
