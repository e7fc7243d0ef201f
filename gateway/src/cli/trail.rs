//! The command line's part of the access trail: who the operator is, and
//! entering an operator's act in a firm's chain or the operator chain (the
//! chain is keyed, so this needs the master key; a command run without it
//! says on stderr that its act was not entered).

use super::CliResult;
use crate::access_trail::{self, Kind, NewEntry};
use crate::config::Config;
use crate::registry::Registry;

/// Where operator entries say they came from.
pub const FROM_CLI: &str = "cli";

/// The operator running this command: `operator:<login name>`.
pub fn operator() -> String {
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "cli".into());
    format!("operator:{name}")
}

/// `operator:<actor>` for a command that names its actor.
pub fn named_operator(actor: &str) -> String {
    format!("operator:{actor}")
}

/// Enters an act of the operator in `firm_id`'s chain.
pub async fn enter_firm(
    config: &Config,
    registry: &Registry,
    firm_id: &str,
    kind: Kind,
    actor: &str,
    what: serde_json::Value,
) -> CliResult {
    let entry = NewEntry::firm(firm_id, kind, actor, FROM_CLI, what);
    match config.keyring() {
        Ok(keyring) => {
            access_trail::record(registry, &keyring.log_keys(), entry).await?;
        }
        Err(_) => eprintln!(
            "note: not entered in the access trail ({}; it is keyed): configure the master key",
            kind.as_str()
        ),
    }
    Ok(())
}
