//! `scopegate audit verify|export|checkpoint|rekey`: the outbound log, and
//! with `export --trail` and in `verify`, the access trail.

use super::{CliError, CliResult};
use crate::access_trail;
use crate::config::Config;
use crate::keys::LogKeys;
use crate::outbound_export::Export;
use crate::outbound_log::{self, checkpoint, Checkpoints};
use crate::registry::Registry;
use clap::Subcommand;
use std::io::Write;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check every firm's keyed hash chain (or one firm's) and the access trail's
    /// chains, and with --checkpoints hold the outbound log to signed
    /// checkpoints; exits non-zero naming the first bad record or entry.
    Verify {
        #[arg(long)]
        firm: Option<String>,
        /// A checkpoint file (or a folder of them) written by `serve` or `audit checkpoint`.
        #[arg(long)]
        checkpoints: Option<PathBuf>,
    },
    /// Stream a firm's outbound records (or with --trail its access trail,
    /// or without --firm the operator's) as JSON lines; a send without a
    /// result carries "outcome": "unknown".
    Export {
        #[arg(long)]
        firm: Option<String>,
        /// Only records at or after this time (RFC 3339 or Unix ms; outbound records only).
        #[arg(long, value_parser = crate::clock::parse_time, conflicts_with = "trail")]
        since: Option<i64>,
        /// Export the access trail instead of the outbound log.
        #[arg(long)]
        trail: bool,
        /// Write to this file instead of standard output (`-`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Sign every firm's chain head now and append it to the checkpoint file.
    Checkpoint {
        /// Where to append (default: the configured checkpoint path); `-` prints it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Re-chain records written before the chain was keyed (`serve` does this at start).
    Rekey,
}

/// The log keys, or one line saying why the command needs the master key.
fn log_keys(config: &Config, what: &str) -> Result<LogKeys, CliError> {
    config.keyring().map(|k| k.log_keys()).map_err(|e| {
        CliError(format!(
            "{what} needs the master key (the chain is keyed): {e}"
        ))
    })
}

pub async fn run(config: &Config, registry: &Registry, command: AuditCommand) -> CliResult {
    match command {
        AuditCommand::Verify { firm, checkpoints } => {
            let started = std::time::Instant::now();
            let keys = log_keys(config, "audit verify")?;
            let checkpoints = match &checkpoints {
                Some(path) => Some(Checkpoints::load(path, &keys).map_err(CliError)?),
                None => None,
            };
            let report =
                outbound_log::verify_all(registry, &keys, firm.as_deref(), checkpoints.as_ref())
                    .await?;
            let trail = access_trail::verify_trails(registry, &keys, firm.as_deref()).await?;
            if let Some(fault) = report.faults.first() {
                for other in report.faults[1..]
                    .iter()
                    .map(|f| f.to_string())
                    .chain(trail.faults.iter().map(|f| f.to_string()))
                {
                    eprintln!("also: {other}");
                }
                return Err(CliError(format!("outbound log tampered: {fault}")));
            }
            if let Some(fault) = trail.faults.first() {
                for other in &trail.faults[1..] {
                    eprintln!("also: {other}");
                }
                return Err(CliError(format!("access trail tampered: {fault}")));
            }
            let against = match &checkpoints {
                Some(c) if c.incomplete > 0 => format!(
                    ", against {} signed checkpoints ({} cut-short last line ignored)",
                    c.lines, c.incomplete
                ),
                Some(c) => format!(", against {} signed checkpoints", c.lines),
                None => String::new(),
            };
            let purged = match report.purged.len() {
                0 => String::new(),
                n => format!(
                    "; {n} firm{} purged after termination (tombstones: {})",
                    if n == 1 { "" } else { "s" },
                    report
                        .purged
                        .iter()
                        .map(|t| format!("{} at record {}", t.firm_id, t.last_seq))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            println!(
                "ok: {} records in {} firm chains and {} access-trail entries in {} chains verified in {:.2} s{against}{purged}",
                report.records,
                report.firms,
                trail.entries,
                trail.chains,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        AuditCommand::Export {
            firm,
            since,
            trail,
            out,
        } => {
            let sink: Box<dyn Write> = match &out {
                Some(path) if path.as_os_str() != "-" => Box::new(
                    std::fs::File::create(path)
                        .map_err(|e| CliError(format!("cannot write {}: {e}", path.display())))?,
                ),
                _ => Box::new(std::io::stdout().lock()),
            };
            let mut sink = std::io::BufWriter::new(sink);
            if trail {
                access_trail::export(registry, firm.as_deref(), |entry| {
                    serde_json::to_writer(&mut sink, entry)?;
                    sink.write_all(b"\n")
                })
                .await?;
            } else {
                let firm = firm.ok_or_else(|| {
                    CliError("--firm is required (or --trail for the access trail)".into())
                })?;
                let mut export = Export::begin(registry, &firm, since).await?;
                while let Some(lines) = export.next_page().await? {
                    sink.write_all(&lines)?;
                }
            }
            sink.flush()?;
            Ok(())
        }
        AuditCommand::Checkpoint { out } => {
            let keys = log_keys(config, "audit checkpoint")?;
            let path = out.unwrap_or_else(|| config.checkpoint_path.clone());
            if path.as_os_str() == "-" {
                let heads = checkpoint::current_heads(registry).await?;
                let line = checkpoint::Checkpoint::new(heads, &keys).signed_line(&keys);
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "{line}")?;
                stdout.flush()?;
                return Ok(());
            }
            let cp = crate::app::write_checkpoint(registry, &keys, &path).await?;
            let records: i64 = cp.heads.iter().map(|h| h.seq).sum();
            println!(
                "checkpoint of {} firm chains ({records} records) appended to {}",
                cp.heads.len(),
                path.display()
            );
            Ok(())
        }
        AuditCommand::Rekey => {
            let keys = log_keys(config, "audit rekey")?;
            let report = outbound_log::rekey_unkeyed(registry, &keys).await?;
            if let Some(fault) = report.refused.first() {
                return Err(CliError(format!(
                    "re-keyed {} records of {} firms, but not firm {}: its chain does not verify ({fault})",
                    report.records, report.firms, fault.firm_id
                )));
            }
            println!(
                "re-keyed {} records of {} firms",
                report.records, report.firms
            );
            Ok(())
        }
    }
}
