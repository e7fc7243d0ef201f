//! The accounts at third parties that received a firm's data, as each
//! connector reports them for its grant (e.g. the Google accounts fee earners
//! connected), in the shape the privacy office's reports take: the disclosure
//! report names them, and a breach scope can be asked for one of them.

use crate::capabilities::StaleConsent;
use crate::catalogue::{Catalogue, Connector as CompiledConnector};
use crate::connector_host::RunningConnector;
use crate::privacy::AccountSpell;
use crate::registry::grants::Grant;
use crate::registry::{Registry, StoreError};
use scopegate_contract::{ConnectorError, FirmGrant};

/// Every (account, spell) of `firm`'s grants; `mint` makes the handle each
/// connector reads through (a session's or the operator's). A grant whose
/// consent is stale is left out: its connector may not act for it.
pub async fn account_spells(
    connectors: &[RunningConnector],
    registry: &Registry,
    catalogue: &Catalogue,
    firm: &str,
    mint: impl Fn(&Grant, &CompiledConnector) -> Result<FirmGrant, StaleConsent>,
) -> Result<Vec<(String, AccountSpell)>, ConnectorError> {
    let mut spells = Vec::new();
    for running in connectors {
        let id = running.connector.id();
        let grant = match registry.grant(firm, id).await {
            Ok(grant) => grant,
            Err(StoreError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let Ok(compiled) = catalogue.require(id) else {
            continue;
        };
        let Ok(handle) = mint(&grant, &compiled) else {
            tracing::warn!(
                firm,
                connector = id,
                "accounts of a grant with stale consent not listed"
            );
            continue;
        };
        let Some(work) = running
            .connector
            .recipient_accounts(&running.capabilities, handle)
        else {
            continue;
        };
        for account in work.await? {
            spells.push((
                account.account,
                AccountSpell {
                    grant_id: grant.id.clone(),
                    connector: id.to_string(),
                    practice_user: account.practice_user,
                    from: account.from,
                    until: account.until,
                },
            ));
        }
    }
    Ok(spells)
}

/// The spells of one account, by its exact name.
pub fn spells_of(spells: &[(String, AccountSpell)], account: &str) -> Vec<AccountSpell> {
    spells
        .iter()
        .filter(|(a, _)| a == account)
        .map(|(_, s)| s.clone())
        .collect()
}
