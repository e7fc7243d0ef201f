//! `scopegate google ...`: the operator's view of the Google Calendar
//! connector, usable before the settings page exists. `connect` prints the
//! authorize URL a fee earner opens; `status` lists a firm's connections;
//! `disconnect` and `switch-off` stop syncing (optionally deleting the
//! events the gateway created).

use super::{CliError, CliResult};
use crate::config::Config;
use crate::google::GoogleContext;
use crate::outbound_log::OutboundLog;
use crate::registry::Registry;
use crate::tenancy::Tenancy;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum GoogleCommand {
    /// Print the Google consent URL for a fee earner (`users.id` in the firm's database).
    Connect {
        #[arg(long)]
        firm: String,
        #[arg(long)]
        user: String,
    },
    /// List a firm's Google Calendar connections.
    Status {
        #[arg(long)]
        firm: String,
    },
    /// Disconnect a fee earner: stop syncing, revoke the token at Google, forget it here.
    Disconnect {
        #[arg(long)]
        firm: String,
        #[arg(long)]
        user: String,
        /// Also delete the events the gateway created in their calendar.
        #[arg(long)]
        delete_events: bool,
    },
    /// Switch Google Calendar off for a firm (syncing stops at once).
    SwitchOff {
        #[arg(long)]
        firm: String,
        /// Who is switching off (kept in the consent ledger).
        #[arg(long)]
        actor: String,
        /// Also delete the events the gateway created in every connected calendar.
        #[arg(long)]
        delete_events: bool,
    },
}

fn problem_line(e: scopegate_contract::ConnectorError) -> CliError {
    CliError(e.to_string())
}

pub async fn run(config: Config, command: GoogleCommand) -> CliResult {
    crate::telemetry::init(config.log_format, "warn");
    // Listing statuses opens nothing sealed; everything else needs the master key.
    let keyring = match command {
        GoogleCommand::Status { .. } => std::sync::Arc::new(crate::keys::Keyring::ephemeral()),
        _ => config
            .keyring()
            .map_err(|e| CliError(format!("cannot use the master key: {e}")))?,
    };
    // Only what the connector needs: the registry, the firm pools, the outbound
    // log (the writer commits its queue before this command exits), no listener.
    let registry = Registry::connect_and_migrate(&config.database_url).await?;
    let catalogue = super::catalogue(&config)?;
    let (log, log_writer) =
        OutboundLog::start(registry.clone(), std::sync::Arc::new(keyring.log_keys()));
    let state = GoogleContext::new(
        registry.clone(),
        Tenancy::new(registry.clone(), config.firm_pool_capacity),
        log,
        keyring,
        catalogue,
        config.google.clone(),
    );
    let result = match command {
        GoogleCommand::Connect { firm, user } => {
            crate::google::consent::start(&state, &firm, &user)
                .await
                .map(|url| {
                    println!("Ask the fee earner to open this link within 10 minutes:");
                    println!("{url}");
                })
                .map_err(problem_line)
        }
        GoogleCommand::Status { firm } => {
            crate::google::consent::connection_statuses(&state, &firm)
                .await
                .map(|rows| {
                    if rows.is_empty() {
                        println!("no Google Calendar connections in firm {firm}");
                    }
                    for c in rows {
                        println!(
                            "{}\t{}\tevents={}\tlast_sync={}\t{}",
                            c.firm_user_id,
                            c.status,
                            c.events_count,
                            c.last_sync_at
                                .map(crate::clock::rfc3339)
                                .unwrap_or_else(|| "never".into()),
                            c.last_error.unwrap_or_default()
                        );
                    }
                })
                .map_err(problem_line)
        }
        GoogleCommand::Disconnect {
            firm,
            user,
            delete_events,
        } => crate::google::consent::disconnect(&state, &firm, &user, delete_events)
            .await
            .map(|r| {
                println!(
                    "disconnected {user}: {} event(s) deleted; token {}",
                    r.events_deleted,
                    if r.revoked_at_google {
                        "revoked at Google and deleted here"
                    } else {
                        "deleted here (Google could not confirm the revocation)"
                    }
                )
            })
            .map_err(problem_line),
        GoogleCommand::SwitchOff {
            firm,
            actor,
            delete_events,
        } => crate::google::switch_off::switch_off(&state, &firm, &actor, delete_events)
            .await
            .map_err(problem_line)
            .and_then(|r| {
                println!(
                    "Google Calendar switched off for {firm}; {} event(s) deleted",
                    r.events_deleted
                );
                match r.failures.first() {
                    Some(first) => Err(CliError(format!(
                        "{} connection(s) kept their events: {first}",
                        r.failures.len()
                    ))),
                    None => Ok(()),
                }
            }),
    };
    state.runtime.stop();
    drop(state);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), log_writer).await;
    registry.close().await;
    result
}
