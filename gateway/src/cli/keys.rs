//! `scopegate keys`: generate a key, list the key file's keys with what each
//! seals, re-seal every stored secret under the current key while gateways
//! run (`rotate`), and retire a key nothing is sealed with any more (`retire`
//! prints the new key file: the key replaced by what verifies the outbound
//! log it chained and signed).

use super::{CliError, CliResult};
use crate::config::Config;
use crate::keys::{is_key_id, retire_in_text, Keyring};
use crate::registry::Registry;
use crate::reseal::{self, Census, V1Purposes};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Print a new random key (base64): a master key (put it first in the key file to rotate) or a backup key.
    Generate,
    /// The key file's keys (the current one first) and how many stored secrets each seals.
    List,
    /// Re-seal every stored secret under the current key (the first in the key file), while gateways run.
    Rotate {
        /// Rows re-sealed per transaction.
        #[arg(long, default_value_t = reseal::BATCH)]
        batch: usize,
    },
    /// Print the key file with KEY_ID retired (it then only verifies the outbound log);
    /// refused while any stored secret is still sealed with it.
    Retire {
        /// The key's id, as `keys list` shows it.
        key_id: String,
    },
}

pub async fn run(config: &Config, command: KeysCommand) -> CliResult {
    let keyring = config.keyring()?;
    let registry = Registry::connect_and_migrate(&config.database_url).await?;
    let result = match command {
        KeysCommand::Generate => unreachable!("needs no registry"),
        KeysCommand::List => list(&registry, &keyring).await,
        KeysCommand::Rotate { batch } => rotate(&registry, &keyring, batch).await,
        KeysCommand::Retire { key_id } => retire(config, &registry, &key_id).await,
    };
    registry.close().await;
    result
}

fn sealed(census: &Census, key_id: &str) -> String {
    let n = census.of(key_id);
    format!(
        "seals {} ({} in connector records, {} in parked consents{})",
        n.total(),
        n.records,
        n.parked,
        match n.v1 {
            0 => String::new(),
            v1 => format!("; {v1} in the older v1 form"),
        }
    )
}

async fn list(registry: &Registry, keyring: &Keyring) -> CliResult {
    let census = reseal::census(registry).await?;
    for (i, id) in keyring.key_ids().into_iter().enumerate() {
        let role = if i == 0 { "current" } else { "older  " };
        println!("{id}  {role}  {}", sealed(&census, id));
    }
    for id in keyring.retired_ids() {
        println!("{id}  retired  verifies the outbound log only");
    }
    for id in census.by_key.keys() {
        if !keyring.holds(id) {
            println!("{id}  not held  {}", sealed(&census, id));
        }
    }
    Ok(())
}

/// The purposes each registered connector declares, for `v1` values.
fn v1_purposes() -> V1Purposes {
    crate::connectors::registered()
        .iter()
        .map(|c| {
            (
                c.id().to_string(),
                c.sealed_purposes().iter().map(|p| p.to_string()).collect(),
            )
        })
        .collect()
}

async fn rotate(registry: &Registry, keyring: &Keyring, batch: usize) -> CliResult {
    let report = reseal::rotate(
        registry,
        keyring,
        &v1_purposes(),
        batch,
        super::trail::operator().trim_start_matches("operator:"),
        super::trail::FROM_CLI,
    )
    .await?;
    println!(
        "re-sealed {} values under key {} in {:.2} s: {} in {} connector records, {} in parked consents ({} batches, {} records read, {} rows read again after a concurrent write, {} expired parked consents removed)",
        report.values_resealed + report.parked_resealed,
        keyring.primary_id(),
        report.elapsed.as_secs_f64(),
        report.values_resealed,
        report.records_updated,
        report.parked_resealed,
        report.batches,
        report.records_scanned,
        report.conflicts,
        report.parked_expired,
    );
    if report.unopened > 0 {
        return Err(CliError(format!(
            "{} stored values did not open and were left as they are (first: {})",
            report.unopened,
            report
                .unopened_described
                .first()
                .map(String::as_str)
                .unwrap_or("?")
        )));
    }
    if report.left > 0 {
        return Err(CliError(format!(
            "{} values are still sealed under an older key (written meanwhile by an instance whose key file does not have the new key first?): run `scopegate keys rotate` again",
            report.left
        )));
    }
    println!(
        "nothing stored is sealed under another key: `scopegate keys retire <id>` retires an older one"
    );
    Ok(())
}

async fn retire(config: &Config, registry: &Registry, key_id: &str) -> CliResult {
    if !is_key_id(key_id) {
        return Err(CliError(format!(
            "{key_id:?} is not a key id (8 hex characters, as `scopegate keys list` shows them)"
        )));
    }
    let text = config.master_key_text()?;
    // Refuses the current key and one the file does not hold before counting.
    let retired = retire_in_text(&text, key_id)?;
    let still = reseal::census(registry).await?.of(key_id);
    if still.total() > 0 {
        return Err(CliError(format!(
            "key {key_id} still seals {} stored values ({} in connector records, {} in parked consents): run `scopegate keys rotate` first",
            still.total(),
            still.records,
            still.parked
        )));
    }
    print!("{retired}");
    eprintln!("key {key_id} seals nothing: write the text above as the key file (the key is replaced by what verifies the outbound log it chained and signed)");
    Ok(())
}
