//! `scopegate connector <ID> --firm F [--actor A] <ARGS>...`: a connector's
//! own operator commands, acting through the operator's handle on that firm's
//! grant (the firm named here, never inside the connector), with the
//! connector's capabilities over the registry and no listening gateway.

use super::{CliError, CliResult};
use crate::config::Config;
use crate::connector_host::ConnectorHost;
use clap::Args;

#[derive(Args)]
pub struct ConnectorArgs {
    /// The connector's id (its folder under `schemas/`).
    connector: String,
    /// The firm whose grant the command acts on.
    #[arg(long)]
    firm: String,
    /// Who is acting (named in the outbound log).
    #[arg(long, default_value = "operator")]
    actor: String,
    /// The connector's command and its arguments (`help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    args: Vec<String>,
}

pub async fn run(config: Config, args: ConnectorArgs) -> CliResult {
    crate::telemetry::init(config.log_format, "warn");
    let keyring = config
        .keyring()
        .map_err(|e| CliError(format!("cannot use the master key: {e}")))?;
    let host = ConnectorHost::open(&config, keyring, crate::connectors::registered()).await?;
    let result = run_in(&host, &args).await;
    host.close().await;
    println!("{}", result?);
    Ok(())
}

async fn run_in(host: &ConnectorHost, args: &ConnectorArgs) -> Result<String, CliError> {
    let running = host.connector(&args.connector).map_err(CliError)?;
    let grant = host
        .operator_grant(&args.firm, &args.connector, &args.actor)
        .await
        .map_err(|e| CliError(e.to_string()))?;
    running
        .connector
        .operator_command(&running.capabilities, grant, &args.args)
        .ok_or_else(|| CliError(format!("{} has no operator commands", args.connector)))?
        .await
        .map_err(|e| CliError(e.to_string()))
}
