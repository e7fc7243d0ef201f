//! `scopegate firm add|list|seed-demo`.

use super::{CliError, CliResult};
use crate::config::Config;
use crate::registry::{firms::slug, redact_url, Registry};
use crate::tenancy::{default_firm_url, provision_firm_database, seed};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum FirmCommand {
    /// Register a firm and create (or connect) its own database.
    Add {
        /// Display name, e.g. "Harbour Law".
        #[arg(long)]
        name: String,
        /// Firm id (default: derived from the name).
        #[arg(long)]
        id: Option<String>,
        /// The firm's database: sqlite://... or postgres://... (default: a SQLite file in the data directory).
        #[arg(long)]
        data_url: Option<String>,
    },
    /// List registered firms.
    List,
    /// End a firm as a customer: every grant off, credentials and tokens
    /// revoked, Google accounts disconnected, settings logins disabled.
    Terminate {
        #[arg(long)]
        firm: String,
        /// Who terminates it (kept in the consent ledger).
        #[arg(long)]
        actor: String,
        /// A connector's switch-off option to run as well, e.g. delete_events (repeatable).
        #[arg(long = "option", value_name = "NAME")]
        options: Vec<String>,
    },
    /// Delete everything the registry holds of a terminated firm now (on
    /// request), leaving only a tombstone of its outbound log.
    Purge {
        #[arg(long)]
        firm: String,
        /// Purge at once rather than when the retention period ends.
        #[arg(long)]
        now: bool,
        #[arg(long)]
        actor: String,
    },
    /// Fill a firm's database with realistic fake records (including sensitive fields).
    SeedDemo {
        firm: String,
        #[arg(long, default_value_t = 400)]
        transactions: usize,
        #[arg(long, default_value_t = 240)]
        diary_entries: usize,
    },
}

pub async fn run(config: &Config, registry: &Registry, command: FirmCommand) -> CliResult {
    match command {
        FirmCommand::Add { name, id, data_url } => {
            let id = id.unwrap_or_else(|| slug(&name));
            crate::registry::firms::validate_firm_id(&id)?;
            if registry.firm(&id).await.is_ok() {
                return Err(CliError(format!("firm {id} is already registered")));
            }
            let url = data_url.unwrap_or_else(|| default_firm_url(&config.data_dir, &id));
            crate::registry::firms::refuse_embedded_password(&url)?;
            let db = provision_firm_database(&id, &url).await?;
            db.pool().close().await;
            let firm = registry.add_firm(&id, &name, &url).await?;
            println!(
                "registered firm {} ({}) with its database at {}",
                firm.id,
                firm.name,
                redact_url(&url)
            );
            Ok(())
        }
        FirmCommand::Terminate {
            firm,
            actor,
            options,
        } => super::termination::terminate(config, registry, &firm, &actor, &options).await,
        FirmCommand::Purge { firm, now, actor } => {
            super::termination::purge(config, registry, &firm, now, &actor).await
        }
        FirmCommand::List => {
            for firm in registry.firms().await? {
                println!("{}\t{}\t{}", firm.id, firm.name, redact_url(&firm.data_url));
            }
            Ok(())
        }
        FirmCommand::SeedDemo {
            firm,
            transactions,
            diary_entries,
        } => {
            let firm = registry.firm(&firm).await?;
            let db = provision_firm_database(&firm.id, &firm.data_url).await?;
            let size = seed::SeedSize {
                transactions,
                diary_entries,
                ..Default::default()
            };
            let counts = seed::seed_demo(&db, size).await?;
            db.pool().close().await;
            println!(
                "seeded {}: {} users, {} clients, {} matters, {} diary entries, {} transactions",
                firm.id,
                counts.users,
                counts.clients,
                counts.matters,
                counts.diary_entries,
                counts.transactions
            );
            Ok(())
        }
    }
}
