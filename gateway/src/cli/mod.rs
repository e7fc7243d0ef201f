//! The command line (clap). Each subcommand lives in its own module; every
//! failure ends as one clear line on stderr and a non-zero exit.

mod audit;
mod backup;
mod connector;
mod credential;
mod firm;
mod grant;
mod keys;
mod privacy;
mod serve;
mod termination;
mod trail;
mod tripwire;
mod user;

use crate::config::{Config, ConfigArgs};
use crate::registry::Registry;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "scopegate",
    version,
    about = "Opt-in, minimal, logged sharing of law-firm data with third parties"
)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (needs a master key).
    Serve,
    /// Create or update the registry schema.
    Migrate,
    /// Register firms and their own databases.
    #[command(subcommand)]
    Firm(firm::FirmCommand),
    /// Switch connectors on and off for a firm (the consent ledger).
    #[command(subcommand)]
    Grant(grant::GrantCommand),
    /// Issue, list and revoke per-grant credentials.
    #[command(subcommand)]
    Credential(credential::CredentialCommand),
    /// Verify and export the outbound log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Settings logins of a firm's people.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Master keys: generate, list, rotate (re-seal every stored secret), retire.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// A connector's own operator commands for one firm:
    /// `connector <ID> --firm F <COMMAND>` (`... help` lists them).
    Connector(connector::ConnectorArgs),
    /// Encrypted online backup of the registry and every firm database (keeps the newest generations).
    Backup(backup::BackupArgs),
    /// Restore a backup into an empty data directory (or empty PostgreSQL database).
    Restore(backup::RestoreArgs),
    /// Which third parties received data about a client or matter (POPIA s23), as JSON.
    Disclosures(privacy::DisclosuresArgs),
    /// Whose data left through a grant or credential in a window (POPIA s22): JSON or CSV.
    BreachScope(privacy::BreachScopeArgs),
    /// Start a throwaway gateway with two demo firms and print what to try.
    Demo(crate::connectors::demo::DemoArgs),
    /// Decoy credentials (tripwires).
    #[command(subcommand)]
    Tripwire(tripwire::TripwireCommand),
    /// Name the firm, grant and record a leaked pseudonymous record id came from.
    Trace(tripwire::TraceArgs),
}

/// A failed command: the line to print.
pub struct CliError(pub String);

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
}

pub type CliResult = Result<(), CliError>;

pub fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let connectors = crate::connectors::registered();
    let parsed = crate::config::with_connector_flags(Cli::command(), &connectors)
        .try_get_matches()
        .and_then(|matches| {
            let mut cli = Cli::from_arg_matches(&matches)?;
            cli.config
                .connector_settings
                .extend(crate::config::connector_flag_values(&matches, &connectors));
            Ok(cli)
        });
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            eprintln!(
                "{}",
                text.lines()
                    .next()
                    .unwrap_or("invalid arguments; see --help")
            );
            return ExitCode::from(2);
        }
    };
    let mut config = match Config::resolve(&cli.config) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    config.connector_secrets = crate::config::connector_secrets(&connectors);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError(line)) => fail(&line),
    }
}

fn fail(line: &str) -> ExitCode {
    eprintln!("error: {}", line.lines().next().unwrap_or(line));
    ExitCode::FAILURE
}

async fn run(command: Command, config: Config) -> CliResult {
    match command {
        Command::Serve => serve::run(config).await,
        Command::Demo(args) => crate::connectors::demo::run(config, args)
            .await
            .map_err(CliError),
        Command::Connector(args) => connector::run(config, args).await,
        Command::Backup(args) => {
            crate::telemetry::init(config.log_format, "warn");
            backup::run_backup(&config, args).await
        }
        Command::Restore(args) => {
            crate::telemetry::init(config.log_format, "warn");
            backup::run_restore(&config, args).await
        }
        Command::Keys(keys::KeysCommand::Generate) => {
            println!("{}", crate::keys::generate_key());
            Ok(())
        }
        Command::Keys(cmd) => {
            crate::telemetry::init(config.log_format, "warn");
            keys::run(&config, cmd).await
        }
        Command::Migrate => {
            crate::telemetry::init(config.log_format, "warn");
            Registry::connect_and_migrate(&config.database_url).await?;
            println!(
                "registry at {} is up to date",
                crate::registry::redact_url(&config.database_url)
            );
            Ok(())
        }
        other => {
            crate::telemetry::init(config.log_format, "warn");
            let registry = Registry::connect_and_migrate(&config.database_url).await?;
            let result = match other {
                Command::Firm(cmd) => firm::run(&config, &registry, cmd).await,
                Command::Grant(cmd) => grant::run(&config, &registry, cmd).await,
                Command::Credential(cmd) => credential::run(&config, &registry, cmd).await,
                Command::Audit(cmd) => audit::run(&config, &registry, cmd).await,
                Command::User(cmd) => user::run(&config, &registry, cmd).await,
                Command::Disclosures(args) => privacy::disclosures(&config, &registry, args).await,
                Command::BreachScope(args) => privacy::breach_scope(&config, &registry, args).await,
                Command::Tripwire(cmd) => tripwire::run(&config, &registry, cmd).await,
                Command::Trace(args) => tripwire::trace(&config, &registry, args).await,
                _ => unreachable!("handled above"),
            };
            registry.close().await;
            result
        }
    }
}

/// The connector catalogue the configuration asks for.
pub(crate) fn catalogue(config: &Config) -> Result<crate::catalogue::Catalogue, CliError> {
    match &config.schemas_dir {
        Some(dir) => Ok(crate::connectors::catalogue_from(Some(dir))?),
        None => Ok(crate::connectors::catalogue()),
    }
}
