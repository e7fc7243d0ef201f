//! `scopegate grant enable|disable|list|ledger`.

use super::{CliError, CliResult};
use crate::clock::rfc3339;
use crate::config::Config;
use crate::connector_host::ConnectorHost;
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
        /// A switch-off choice the connector offers, e.g. delete_events (repeatable).
        #[arg(long = "option", value_name = "NAME")]
        options: Vec<String>,
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
            let what = serde_json::json!({ "connector": grant.connector, "enabled": true, "contract_version": grant.contract_version });
            super::trail::enter_firm(
                config,
                registry,
                &firm,
                crate::access_trail::Kind::GrantSwitched,
                &super::trail::named_operator(&actor),
                what,
            )
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
            options,
        } => {
            catalogue.require(&connector).map_err(super::CliError)?;
            let chosen = switch_off_choices(&connector, &options)?;
            let grant = registry.disable_grant(&firm, &connector, &actor).await?;
            let what = serde_json::json!({ "connector": grant.connector, "enabled": false, "options": chosen });
            super::trail::enter_firm(
                config,
                registry,
                &firm,
                crate::access_trail::Kind::GrantSwitched,
                &super::trail::named_operator(&actor),
                what,
            )
            .await?;
            println!(
                "disabled {} for firm {}; its credentials and tokens are revoked",
                grant.connector, grant.firm_id
            );
            if !chosen.is_empty() {
                let line = switch_off_work(config, &firm, &connector, &actor, &chosen).await?;
                println!("{line}");
            }
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

/// The `--option` names, checked against what the connector offers.
pub(super) fn switch_off_choices(
    connector: &str,
    options: &[String],
) -> Result<Vec<&'static str>, CliError> {
    let registered = crate::connectors::registered();
    let offered = registered
        .iter()
        .find(|c| c.id() == connector)
        .map(|c| c.switch_off_options())
        .unwrap_or_default();
    options
        .iter()
        .map(|name| {
            offered
                .iter()
                .find(|o| o.name == name)
                .map(|o| o.name)
                .ok_or_else(|| {
                    let names: Vec<&str> = offered.iter().map(|o| o.name).collect();
                    CliError(format!(
                        "{connector} offers no switch-off option {name}{}",
                        if names.is_empty() {
                            String::new()
                        } else {
                            format!("; it offers {}", names.join(", "))
                        }
                    ))
                })
        })
        .collect()
}

/// The connector's own switch-off work (the grant is already off); its summary line.
pub(super) async fn switch_off_work(
    config: &Config,
    firm: &str,
    connector: &str,
    actor: &str,
    chosen: &[&'static str],
) -> Result<String, CliError> {
    let keyring = config
        .keyring()
        .map_err(|e| CliError(format!("cannot use the master key: {e}")))?;
    let host = ConnectorHost::open(config, keyring, crate::connectors::registered()).await?;
    let result = async {
        let running = host.connector(connector).map_err(CliError)?;
        let grant = host
            .operator_grant(firm, connector, actor)
            .await
            .map_err(|e| CliError(e.to_string()))?;
        let Some(work) = running
            .connector
            .switch_off(&running.capabilities, grant, chosen)
        else {
            return Ok(String::new());
        };
        let report = work.await.map_err(|e| CliError(e.to_string()))?;
        let summary = report["summary"].as_str().unwrap_or_default().to_string();
        match report["failures"].as_array().and_then(|f| f.first()) {
            Some(first) => Err(CliError(format!(
                "{summary} {} failure(s); first: {}",
                report["failures"].as_array().map_or(0, Vec::len),
                first.as_str().unwrap_or_default()
            ))),
            None => Ok(summary),
        }
    }
    .await;
    host.close().await;
    result
}
