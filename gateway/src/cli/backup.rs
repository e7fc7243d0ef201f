//! `scopegate backup` and `scopegate restore`: encrypted online backups of the
//! registry and every firm database, kept for a number of generations, and
//! their restore into an empty data directory or PostgreSQL database.

use super::{CliError, CliResult};
use crate::backup::{self, BackupKey, RestoreTarget};
use crate::config::Config;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct BackupArgs {
    /// Folder for the encrypted backups (created if missing; older ones beyond the generations kept are deleted).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup file to restore.
    #[arg(long)]
    pub from: PathBuf,
    /// A PostgreSQL server where firm databases that were PostgreSQL are created
    /// anew (default: the server of --database-url when that is PostgreSQL).
    #[arg(long)]
    pub firm_postgres_url: Option<String>,
}

/// The backup key: `SCOPEGATE_BACKUP_KEY` or the key file; never a master key.
fn backup_key(config: &Config) -> Result<BackupKey, CliError> {
    let key = match std::env::var("SCOPEGATE_BACKUP_KEY") {
        Ok(text) => BackupKey::parse(&text).map_err(|e| CliError(format!("SCOPEGATE_BACKUP_KEY: {e}")))?,
        Err(_) => match &config.backup_key_file {
            Some(path) => BackupKey::from_file(path).map_err(CliError)?,
            None => return Err(CliError(
                "no backup key: set SCOPEGATE_BACKUP_KEY or --backup-key-file (create one with `scopegate keys generate`, and keep it apart from the master key)".into(),
            )),
        },
    };
    if let Ok(keyring) = config.keyring() {
        if keyring.holds(key.id()) {
            return Err(CliError(
                "the backup key is a master key: generate a separate one with `scopegate keys generate`".into(),
            ));
        }
    }
    Ok(key)
}

pub async fn run_backup(config: &Config, args: BackupArgs) -> CliResult {
    let key = backup_key(config)?;
    let started = std::time::Instant::now();
    let report = backup::backup(
        &config.database_url,
        &args.out,
        &key,
        config.backup_generations,
    )
    .await?;
    println!(
        "backup {} written: registry and {} firm databases, {} bytes encrypted ({} bytes of data) in {:.2} s",
        report.file.display(),
        report.manifest.firms.len(),
        report.bytes,
        report.manifest.plain_bytes,
        started.elapsed().as_secs_f64()
    );
    for old in &report.deleted {
        println!("deleted old backup {}", old.display());
    }
    Ok(())
}

pub async fn run_restore(config: &Config, args: RestoreArgs) -> CliResult {
    let key = backup_key(config)?;
    let started = std::time::Instant::now();
    let postgres = config.database_url.starts_with("postgres");
    let target = RestoreTarget {
        data_dir: config.data_dir.clone(),
        registry_postgres_url: postgres.then(|| config.database_url.clone()),
        firm_postgres_url: args.firm_postgres_url,
    };
    let report = backup::restore(&args.from, &key, &target).await?;
    // Bring the restored registry to this version's schema.
    crate::registry::Registry::connect_and_migrate(&report.registry_url)
        .await?
        .close()
        .await;
    println!(
        "restored registry ({}) and {} firm databases from {} in {:.2} s; check it with `scopegate audit verify`, and start a new checkpoint file",
        crate::registry::redact_url(&report.registry_url),
        report.firms.len(),
        args.from.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
