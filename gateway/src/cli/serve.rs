//! `scopegate serve`: the gateway, until SIGTERM or Ctrl-C.

use super::{CliError, CliResult};
use crate::app::{shutdown_signal, Application};
use crate::config::Config;

pub async fn run(config: Config) -> CliResult {
    let pruning = match &config.log_dir {
        Some(dir) => {
            let writer = crate::service_logs::daily_writer(dir).map_err(CliError)?;
            crate::telemetry::init_with(config.log_format, "info", writer);
            Some(tokio::spawn(crate::service_logs::prune_periodically(
                dir.clone(),
                config.log_retention_days,
            )))
        }
        None => {
            crate::telemetry::init(config.log_format, "info");
            None
        }
    };
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
    let result = app.run_until(shutdown_signal()).await;
    if let Some(task) = pruning {
        task.abort();
    }
    result?;
    Ok(())
}
