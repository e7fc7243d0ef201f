//! `scopegate firm terminate` and `scopegate firm purge`: a firm stops being
//! a customer. Termination switches every grant off at once (a ledger entry
//! each; credentials and tokens revoked), lets each connector undo what it
//! holds at its third party (Google accounts disconnected, events deleted when
//! asked), and disables the firm's settings logins. Terminating a terminated
//! firm again runs what is left of that clean-up once more (a third party
//! that was down the first time), and changes nothing else. The purge, scheduled by
//! `serve` after the retention period or run here on request, deletes what
//! the registry holds of the firm and leaves a tombstone of its outbound log.

use super::grant::switch_off_work;
use super::{CliError, CliResult};
use crate::clock::rfc3339;
use crate::config::Config;
use crate::privacy::retention::{self, Purged};
use crate::registry::{Registry, StoreError};

/// The switch-off option every connector that offers it runs at termination.
const DISCONNECT: &str = "disconnect_accounts";

pub async fn terminate(
    config: &Config,
    registry: &Registry,
    firm: &str,
    actor: &str,
    options: &[String],
) -> CliResult {
    let registered = crate::connectors::registered();
    for name in options {
        if !registered
            .iter()
            .any(|c| c.switch_off_options().iter().any(|o| o.name == name))
        {
            return Err(CliError(format!(
                "no connector offers the switch-off option {name}"
            )));
        }
    }
    let keys = config
        .keyring()
        .map_err(|e| {
            CliError(format!(
                "terminate needs the master key (the access trail is keyed): {e}"
            ))
        })?
        .log_keys();
    let (at, again) = match retention::mark_terminated(registry, &keys, firm, actor).await {
        Ok(at) => (at, false),
        Err(StoreError::Conflict(_)) => match retention::terminated_at(registry, firm).await? {
            Some(at) => (at, true),
            None => {
                return Err(CliError(format!(
                    "firm {firm} changed meanwhile; run again"
                )))
            }
        },
        Err(e) => return Err(e.into()),
    };
    if again {
        println!(
            "firm {firm} was terminated at {}; running the connectors' clean-up again",
            rfc3339(at)
        );
    }
    let mut off = 0;
    let mut failures = Vec::new();
    for grant in registry.grants(Some(firm)).await? {
        if grant.enabled {
            registry
                .disable_grant(firm, &grant.connector, actor)
                .await?;
            off += 1;
        }
        // Even a grant switched off earlier may still hold accounts at its third party.
        let chosen: Vec<&'static str> = registered
            .iter()
            .find(|c| c.id() == grant.connector)
            .map(|c| c.switch_off_options())
            .unwrap_or_default()
            .iter()
            .filter(|o| o.name == DISCONNECT || options.iter().any(|n| n == o.name))
            .map(|o| o.name)
            .collect();
        if chosen.is_empty() {
            continue;
        }
        match switch_off_work(config, firm, &grant.connector, actor, &chosen).await {
            Ok(line) if !line.is_empty() => println!("{}: {line}", grant.connector),
            Ok(_) => {}
            Err(CliError(line)) => failures.push(format!("{}: {line}", grant.connector)),
        }
    }
    // Credentials of grants switched off earlier were revoked then; any left now go.
    for credential in registry.credentials(firm).await? {
        if credential.revoked_at.is_none() {
            registry
                .revoke_credential(firm, &credential.client_id)
                .await?;
        }
    }
    println!(
        "terminated firm {firm} at {}: {off} grants switched off, credentials and tokens revoked, settings logins disabled; its data is purged {} days after termination",
        rfc3339(at),
        config.retention_after_termination_days
    );
    match failures.first() {
        None => Ok(()),
        Some(first) => Err(CliError(format!(
            "the firm is terminated, but {} connector clean-up(s) failed; first: {first}",
            failures.len()
        ))),
    }
}

pub async fn purge(
    config: &Config,
    registry: &Registry,
    firm: &str,
    now: bool,
    actor: &str,
) -> CliResult {
    if !now {
        return Err(CliError(format!(
            "serve purges terminated firms {} days after termination; pass --now to purge firm {firm} at once",
            config.retention_after_termination_days
        )));
    }
    let keys = config
        .keyring()
        .map_err(|e| {
            CliError(format!(
                "purge needs the master key (the tombstone is keyed): {e}"
            ))
        })?
        .log_keys();
    match retention::purge_firm(registry, &keys, firm, true, actor).await? {
        Purged::Everything { tombstone } => println!(
            "purged firm {firm}: everything the registry held of it is deleted; its outbound log ended at record {} ({}), kept as a tombstone",
            tombstone.last_seq,
            &tombstone.last_hash[..16]
        ),
        Purged::Data { .. } => unreachable!("a purge on request takes the log too"),
    }
    Ok(())
}
