//! Where grant handles come from: the only calls of `scopegate_mint::mint::grant`.
//! A token, a settings session or a background lease is resolved first; the
//! handle then names the firm that resolution found.

use crate::catalogue::Connector;
use crate::registry::credentials::TokenGrant;
use crate::registry::grants::Grant;
use scopegate_contract::{FirmGrant, Principal};
use scopegate_mint::mint;

/// The firm consented to an earlier data contract than the connector's current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleConsent {
    pub connector: String,
    pub current_version: String,
}

/// The handle of a live access token's grant, if the firm consented to the current contract.
pub fn grant_for_token(
    token: &TokenGrant,
    connector: &Connector,
) -> Result<FirmGrant, StaleConsent> {
    fresh(connector, &token.schema_hash)?;
    let grant = mint::grant(
        &token.grant_id,
        &token.firm_id,
        &token.connector,
        &token.schema_hash,
        token.scopes.clone(),
        Principal::Credential(token.credential_id.clone()),
    );
    Ok(mint::resolved_under(grant, token.resolved_under))
}

/// The handle of a firm's grant for one of its signed-in settings users.
pub fn grant_for_session(
    grant: &Grant,
    connector: &Connector,
    user_id: &str,
) -> Result<FirmGrant, StaleConsent> {
    for_grant(grant, connector, Principal::Session(user_id.to_string()))
}

/// The handle background work of the gateway holds for an active grant.
pub fn grant_for_lease(
    grant: &Grant,
    connector: &Connector,
    lease: &str,
) -> Result<FirmGrant, StaleConsent> {
    for_grant(grant, connector, Principal::Lease(lease.to_string()))
}

/// The handle the operator acts through on the command line, for the firm
/// named there (the operator holds the registry; this names who acted).
pub fn grant_for_operator(
    grant: &Grant,
    connector: &Connector,
    actor: &str,
) -> Result<FirmGrant, StaleConsent> {
    for_grant(grant, connector, Principal::Operator(actor.to_string()))
}

/// The handle of a parked consent taken back (see `records.rs`): the grant
/// it was parked for, for the principal that parked it.
pub(super) fn grant_for_parked(
    grant: &Grant,
    connector: &Connector,
    principal: Principal,
) -> Result<FirmGrant, StaleConsent> {
    for_grant(grant, connector, principal)
}

/// A grant acted on by the gateway itself or a settings user: every scope of its connector.
fn for_grant(
    grant: &Grant,
    connector: &Connector,
    principal: Principal,
) -> Result<FirmGrant, StaleConsent> {
    fresh(connector, &grant.schema_hash)?;
    Ok(mint::grant(
        &grant.id,
        &grant.firm_id,
        &grant.connector,
        &grant.schema_hash,
        connector.contract.manifest.scopes.clone(),
        principal,
    ))
}

fn fresh(connector: &Connector, consented: &str) -> Result<(), StaleConsent> {
    if connector.schema_hash == consented {
        Ok(())
    } else {
        Err(StaleConsent {
            connector: connector.id().to_string(),
            current_version: connector.contract.manifest.contract_version.clone(),
        })
    }
}
