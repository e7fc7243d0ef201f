//! `scopegate grant enable|disable|list|ledger`.

use super::CliResult;
use crate::clock::rfc3339;
use crate::config::Config;
use crate::registry::Registry;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum GrantCommand {
    /// Switch a connector on for a firm (records consent to its current data contract).
    Enable {
        #[arg(long)]
        firm: String,
        #[arg(long)]
        connector: String,
        /// Who is switching (recorded in the consent ledger).
        #[arg(long, default_value = "operator")]
        actor: String,
    },
    /// Switch a connector off: its credentials and tokens stop working at once.
    Disable {
        #[arg(long)]
        firm: String,
        #[arg(long)]
        connector: String,
        #[arg(long, default_value = "operator")]
        actor: String,
    },
    /// List grants (of one firm, or all).
    List {
        #[arg(long)]
        firm: Option<String>,
    },
    /// Show a firm's consent ledger.
    Ledger {
        #[arg(long)]
        firm: String,
    },
}

pub async fn run(config: &Config, registry: &Registry, command: GrantCommand) -> CliResult {
    let catalogue = super::catalogue(config)?;
    match command {
        GrantCommand::Enable {
            firm,
            connector,
            actor,
        } => {
            let connector = catalogue.require(&connector).map_err(super::CliError)?;
            let grant = registry
                .enable_grant(&firm, &connector.contract, &actor)
                .await?;
            println!(
                "enabled {} for firm {} (data contract version {}, {})",
                grant.connector,
                grant.firm_id,
                grant.contract_version,
                &grant.schema_hash[..12]
            );
        }
        GrantCommand::Disable {
            firm,
            connector,
            actor,
        } => {
            catalogue.require(&connector).map_err(super::CliError)?;
            let grant = registry.disable_grant(&firm, &connector, &actor).await?;
            println!(
                "disabled {} for firm {}; its credentials and tokens are revoked",
                grant.connector, grant.firm_id
            );
        }
        GrantCommand::List { firm } => {
            for g in registry.grants(firm.as_deref()).await? {
                let current = catalogue
                    .get(&g.connector)
                    .map(|c| c.schema_hash == g.schema_hash)
                    .unwrap_or(false);
                let state = match (g.enabled, current) {
                    (true, true) => "on",
                    (true, false) => "on (needs re-consent: contract changed)",
                    _ => "off",
                };
                println!(
                    "{}\t{}\t{}\tv{}\t{}",
                    g.firm_id,
                    g.connector,
                    state,
                    g.contract_version,
                    rfc3339(g.updated_at)
                );
            }
        }
        GrantCommand::Ledger { firm } => {
            for e in registry.consent_ledger(&firm).await? {
                println!(
                    "{}\t{}\t{}\t{}\tv{}\t{}",
                    rfc3339(e.at),
                    e.connector,
                    e.action,
                    e.actor,
                    e.contract_version,
                    &e.schema_hash[..12]
                );
            }
        }
    }
    Ok(())
}
