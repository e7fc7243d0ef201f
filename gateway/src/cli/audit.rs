//! `scopegate audit verify|export`.

use super::{CliError, CliResult};
use crate::outbound_log;
use crate::registry::Registry;
use clap::Subcommand;
use std::io::Write;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check every firm's hash chain (or one firm's); exits non-zero naming the first bad record.
    Verify {
        #[arg(long)]
        firm: Option<String>,
    },
    /// Stream a firm's outbound records as JSON lines.
    Export {
        #[arg(long)]
        firm: String,
        /// Only records at or after this time (RFC 3339 or Unix ms).
        #[arg(long, value_parser = crate::clock::parse_time)]
        since: Option<i64>,
    },
}

pub async fn run(registry: &Registry, command: AuditCommand) -> CliResult {
    match command {
        AuditCommand::Verify { firm } => {
            let started = std::time::Instant::now();
            let report = outbound_log::verify_all(registry, firm.as_deref()).await?;
            if let Some(fault) = report.faults.first() {
                for other in &report.faults[1..] {
                    eprintln!("also: {other}");
                }
                return Err(CliError(format!("outbound log tampered: {fault}")));
            }
            println!(
                "ok: {} records in {} firm chains verified in {:.2} s",
                report.records,
                report.firms,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        AuditCommand::Export { firm, since } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            outbound_log::export(registry, &firm, since, |record| {
                serde_json::to_writer(&mut out, record)?;
                out.write_all(b"\n")
            })
            .await?;
            out.flush()?;
            Ok(())
        }
    }
}
