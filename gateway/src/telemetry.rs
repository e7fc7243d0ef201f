//! Logging: human-readable by default, JSON lines with `--log-format json`,
//! filtered by `RUST_LOG`, to stderr or (for `serve` with `--log-dir`) to
//! daily files ([`crate::service_logs`]). Handlers never log headers, bodies
//! or secrets. A log that cannot be written loses lines, never requests.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber writing to stderr (once; later calls are ignored).
pub fn init(format: LogFormat, default_level: &str) {
    init_with(format, default_level, std::io::stderr);
}

/// Installs the global subscriber writing through `writer` (once).
pub fn init_with<W>(format: LogFormat, default_level: &str, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // A line that cannot be written (the log's disk is full) is dropped: the
    // subscriber's fallback would report it with eprintln!, which panics when
    // stderr fails too, taking down the request that logged.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
