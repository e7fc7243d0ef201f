//! `scopegate tripwire add` (plant a decoy credential) and `scopegate trace
//! ID` (which firm, grant and record a leaked pseudonymous id came from).

use super::{CliError, CliResult};
use crate::config::Config;
use crate::registry::Registry;
use crate::security::pseudonyms::Pseudonyms;
use crate::security::tripwires;
use crate::tenancy::Tenancy;
use clap::{Args, Subcommand};
use secrecy::ExposeSecret;

#[derive(Subcommand)]
pub enum TripwireCommand {
    /// Plant a decoy credential: a client id and secret in the real format,
    /// shown once; any use answers like a wrong secret and raises an alert.
    Add {
        #[arg(long)]
        firm: String,
        /// Where it is planted (e.g. "config backup on fileserver").
        #[arg(long)]
        label: String,
    },
}

/// `scopegate trace ID`.
#[derive(Args)]
pub struct TraceArgs {
    /// A record id as some third party was shown it.
    pub id: String,
}

pub async fn run(config: &Config, registry: &Registry, command: TripwireCommand) -> CliResult {
    match command {
        TripwireCommand::Add { firm, label } => {
            let planted = match config.keyring() {
                Ok(keyring) => {
                    let actor = super::trail::operator();
                    let (keys, from) = (keyring.log_keys(), super::trail::FROM_CLI);
                    tripwires::plant(registry, &keys, &firm, &label, &actor, from).await?
                }
                Err(_) => {
                    let planted = registry.add_tripwire(&firm, &label).await?;
                    eprintln!("note: not entered in the access trail (tripwire_planted; it is keyed): configure the master key");
                    planted
                }
            };
            println!("client_id={}", planted.client_id);
            println!("client_secret={}", planted.client_secret.expose_secret());
            eprintln!(
                "decoy {} planted for firm {firm}: any use of this client id raises an alert; the secret is not kept",
                planted.tripwire_id
            );
        }
    }
    Ok(())
}

pub async fn trace(config: &Config, registry: &Registry, args: TraceArgs) -> CliResult {
    let id = args.id.trim();
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(CliError(format!(
            "{id:?} is not a record id (a UUID such as 0b6a4f9e-8d2c-4f1a-9e3b-2c7d5a1f6e80)"
        )));
    }
    let keyring = config.keyring()?;
    let pseudonyms = Pseudonyms::new(registry.clone(), keyring);
    let tenancy = Tenancy::new(registry.clone(), 1);
    let report = crate::security::trace::trace(registry, &tenancy, &pseudonyms, id).await?;
    for (firm, why) in &report.unreadable {
        eprintln!("warning: firm {firm} could not be searched: {why}");
    }
    if report.hits.is_empty() {
        return Err(CliError(format!(
            "{id} is no grant's id for any record{}",
            if report.unreadable.is_empty() {
                ""
            } else {
                " of the firms that could be searched"
            }
        )));
    }
    for hit in &report.hits {
        println!(
            "firm={} grant={} connector={} table={} record={}",
            hit.firm_id, hit.grant_id, hit.connector, hit.table, hit.record_id
        );
    }
    Ok(())
}
