//! `scopegate disclosures` and `scopegate breach-scope`: the privacy office's
//! reports for one firm, printed as JSON (breach scope also as CSV).

use super::{CliError, CliResult};
use crate::privacy::{self, Channel, Subject};
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
#[command(group(clap::ArgGroup::new("channel").required(true).args(["grant", "client_id"])))]
pub struct BreachScopeArgs {
    #[arg(long)]
    firm: String,
    /// A grant id (see `scopegate grant list`).
    #[arg(long)]
    grant: Option<String>,
    /// A vendor credential's client id.
    #[arg(long)]
    client_id: Option<String>,
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

pub async fn disclosures(registry: &Registry, args: DisclosuresArgs) -> CliResult {
    let firm = registry.firm(&args.firm).await?;
    let subject = match (args.client, args.matter) {
        (Some(client), _) => Subject::Client(client),
        (None, Some(matter)) => Subject::Matter(matter),
        (None, None) => unreachable!("clap requires one"),
    };
    let db = Tenancy::new(registry.clone(), 1).firm_db(&firm).await?;
    let report = privacy::disclosures(registry, &db, &firm.id, subject).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

pub async fn breach_scope(registry: &Registry, args: BreachScopeArgs) -> CliResult {
    let firm = registry.firm(&args.firm).await?;
    let channel = match (args.grant, args.client_id) {
        (Some(grant), _) => Channel::Grant(grant),
        (None, Some(client_id)) => Channel::Credential(client_id),
        (None, None) => unreachable!("clap requires one"),
    };
    let until = args.until.unwrap_or_else(crate::clock::now_ms);
    if until <= args.since {
        return Err(CliError("--until must be after --since".into()));
    }
    let db = Tenancy::new(registry.clone(), 1).firm_db(&firm).await?;
    let scope = privacy::breach_scope(registry, &db, &firm.id, channel, args.since, until).await?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&scope)?),
        Format::Csv => print!("{}", scope.to_csv()),
    }
    Ok(())
}
