//! `scopegate disclosures` and `scopegate breach-scope`: the privacy office's
//! reports for one firm, printed as JSON (breach scope also as CSV).

use super::{CliError, CliResult};
use crate::capabilities::grant_for_operator;
use crate::config::Config;
use crate::connector_host::ConnectorHost;
use crate::privacy::{self, AccountSpell, Channel, Subject};
use crate::recipient_accounts::{account_spells, spells_of};
use crate::registry::Registry;
use crate::tenancy::Tenancy;
use clap::{Args, ValueEnum};

/// Which third parties received data about a client or a matter (POPIA s23).
#[derive(Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["client", "matter"])))]
pub struct DisclosuresArgs {
    #[arg(long)]
    firm: String,
    /// The client's id in the firm's database.
    #[arg(long)]
    client: Option<String>,
    /// A matter's id in the firm's database.
    #[arg(long)]
    matter: Option<String>,
}

/// Whose data left through one channel in a window (POPIA s22).
#[derive(Args)]
#[command(group(clap::ArgGroup::new("channel").required(true).args(["grant", "client_id", "google_user"])))]
pub struct BreachScopeArgs {
    #[arg(long)]
    firm: String,
    /// A grant id (see `scopegate grant list`).
    #[arg(long)]
    grant: Option<String>,
    /// A vendor credential's client id.
    #[arg(long)]
    client_id: Option<String>,
    /// A Google account a fee earner connected (its address); needs the master key.
    #[arg(long)]
    google_user: Option<String>,
    /// Start of the window (RFC 3339 or Unix ms), inclusive.
    #[arg(long, value_parser = crate::clock::parse_time)]
    since: i64,
    /// End of the window (RFC 3339 or Unix ms), exclusive; default now.
    #[arg(long, value_parser = crate::clock::parse_time)]
    until: Option<i64>,
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Csv,
}

/// The (account, spell) pairs the firm's connectors report, read through the
/// operator's handle; without a master key there are none, and stderr says so.
async fn spells(
    config: &Config,
    registry: &Registry,
    firm: &str,
    required: bool,
) -> Result<Vec<(String, AccountSpell)>, CliError> {
    let keyring = match config.keyring() {
        Ok(keyring) => keyring,
        Err(e) if required => return Err(CliError(format!("cannot use the master key: {e}"))),
        Err(_) => {
            eprintln!("note: no master key configured, so accounts at third parties (such as fee earners' Google accounts) are not listed");
            return Ok(Vec::new());
        }
    };
    let host = ConnectorHost::open(config, keyring, crate::connectors::registered()).await?;
    let spells = account_spells(&host.connectors, registry, &host.catalogue, firm, |g, c| {
        grant_for_operator(g, c, "privacy-office")
    })
    .await;
    host.close().await;
    spells.map_err(|e| CliError(e.to_string()))
}

pub async fn disclosures(config: &Config, registry: &Registry, args: DisclosuresArgs) -> CliResult {
    let firm = registry.firm(&args.firm).await?;
    let subject = match (args.client, args.matter) {
        (Some(client), _) => Subject::Client(client),
        (None, Some(matter)) => Subject::Matter(matter),
        (None, None) => unreachable!("clap requires one"),
    };
    let db = Tenancy::new(registry.clone(), 1).firm_db(&firm).await?;
    let spells = spells(config, registry, &firm.id, false).await?;
    let report = privacy::disclosures(registry, &db, &firm.id, subject, &spells).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

pub async fn breach_scope(
    config: &Config,
    registry: &Registry,
    args: BreachScopeArgs,
) -> CliResult {
    let firm = registry.firm(&args.firm).await?;
    let until = args.until.unwrap_or_else(crate::clock::now_ms);
    if until <= args.since {
        return Err(CliError("--until must be after --since".into()));
    }
    let db = Tenancy::new(registry.clone(), 1).firm_db(&firm).await?;
    let scope = match (args.grant, args.client_id, args.google_user) {
        (Some(grant), _, _) => {
            let channel = Channel::Grant(grant);
            privacy::breach_scope(registry, &db, &firm.id, channel, args.since, until).await?
        }
        (None, Some(client_id), _) => {
            let channel = Channel::Credential(client_id);
            privacy::breach_scope(registry, &db, &firm.id, channel, args.since, until).await?
        }
        (None, None, Some(account)) => {
            let all = spells(config, registry, &firm.id, true).await?;
            let spells = spells_of(&all, &account);
            privacy::breach_scope_of_account(
                registry, &db, &firm.id, &account, &spells, args.since, until,
            )
            .await?
        }
        (None, None, None) => unreachable!("clap requires one"),
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&scope)?),
        Format::Csv => print!("{}", scope.to_csv()),
    }
    Ok(())
}
