//! Which Google account a fee earner connected. Right after consent the
//! connector asks the Calendar API for the primary calendar (Calendars: get),
//! whose id is the account's address; the connection keeps each account with
//! the time it held it ([`crate::store::AccountSpell`]). The privacy office
//! reads them back through [`recipient_accounts`]: the account a diary went to
//! in a disclosure report, and what went to one account in a breach scope.
//! Asking is best effort: an account Google does not name is kept as unknown,
//! and consent goes on.

use crate::context::Ctx;
use crate::store;
use scopegate_contract::axum::http::Method;
use scopegate_contract::calls::Call;
use scopegate_contract::{ConnectorError, FirmGrant, RecipientAccount};

/// The longest address kept (RFC 5321's limit on a path).
const MAX_ACCOUNT_LEN: usize = 254;

/// The address of the account `access_token` belongs to, or `None` when the
/// Calendar API does not answer with one.
pub async fn who_is(
    ctx: &Ctx,
    grant: &FirmGrant,
    access_token: &str,
    user: &str,
) -> Option<String> {
    let mut call = Call::new(
        Method::GET,
        format!("{}calendars/primary", ctx.settings.api_base),
    );
    call.bearer = Some(access_token.to_string());
    call.note = Some(format!("(which Google account user {user} connected)"));
    call.timeout = ctx.settings.request_timeout;
    let answer = match ctx.caps.sender().call(grant, call).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(error = %e, "could not ask Google which account was connected");
            return None;
        }
    };
    if answer.status != 200 {
        tracing::warn!(
            status = answer.status,
            "Google did not say which account was connected"
        );
        return None;
    }
    let body: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
    body["id"]
        .as_str()
        .filter(|id| plausible(id))
        .map(str::to_string)
}

/// An address worth keeping: bounded, printable, with one `@` inside.
fn plausible(id: &str) -> bool {
    id.len() <= MAX_ACCOUNT_LEN
        && !id.chars().any(|c| c.is_control() || c.is_whitespace())
        && id.split('@').count() == 2
        && !id.starts_with('@')
        && !id.ends_with('@')
}

/// Every Google account the grant's connections delivered to, with the fee
/// earner and when.
pub async fn recipient_accounts(
    ctx: &Ctx,
    grant: &FirmGrant,
) -> Result<Vec<RecipientAccount>, ConnectorError> {
    let mut out = Vec::new();
    for connection in store::connections(&ctx.caps, grant).await? {
        for spell in &connection.accounts {
            if let Some(account) = &spell.account {
                out.push(RecipientAccount {
                    account: account.clone(),
                    practice_user: Some(connection.firm_user_id.clone()),
                    from: spell.from,
                    until: spell.until,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::plausible;

    #[test]
    fn only_plausible_addresses_are_kept() {
        assert!(plausible("partner@harbour.example"));
        for bad in ["", "no-at", "@x", "x@", "a@b@c", "a b@c", "a\n@c"] {
            assert!(!plausible(bad), "{bad:?}");
        }
        assert!(!plausible(&format!("{}@x.example", "a".repeat(250))));
    }
}
