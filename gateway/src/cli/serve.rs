//! `scopegate serve`: the gateway, until SIGTERM or Ctrl-C.

use super::{CliError, CliResult};
use crate::app::{shutdown_signal, Application};
use crate::config::Config;

pub async fn run(config: Config) -> CliResult {
    crate::telemetry::init(config.log_format, "info");
    let keyring = config
        .keyring()
        .map_err(|e| CliError(format!("refusing to start: {e}")))?;
    let app = Application::build(config, keyring, crate::connectors::registered()).await?;
    tracing::info!(address = %app.local_addr(), "scopegate listening");
    println!("scopegate listening on http://{}", app.local_addr());
    if let Some(metrics) = app.metrics_addr() {
        tracing::info!(address = %metrics, "metrics served at /metrics");
        println!("metrics at http://{metrics}/metrics");
    }
    app.run_until(shutdown_signal()).await?;
    Ok(())
}
