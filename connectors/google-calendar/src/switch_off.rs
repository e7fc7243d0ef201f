//! Switching the connector off. The gateway turns the grant off first, which
//! stops every sync at once (the core refuses each later call); the admin may
//! also have the events the gateway created deleted from the fee earners'
//! calendars (a clean-up, allowed while the grant is off, using each
//! connection's own token), and every fee earner's account disconnected (the
//! token revoked at Google and forgotten here), as a firm's termination does.

use crate::cleanup::{delete_created_events, wait_for_claim};
use crate::context::Ctx;
use crate::store;
use scopegate_contract::{ConnectorError, FirmGrant};

/// The switch-off option that disconnects every account.
pub const DISCONNECT_ACCOUNTS: &str = "disconnect_accounts";

/// What switching off did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SwitchOffReport {
    pub events_deleted: u64,
    /// Connections whose events could not be deleted, with the reason.
    pub failures: Vec<String>,
    /// One line for the person who switched it off.
    pub summary: String,
}

/// After the grant was switched off: deletes the created events and
/// disconnects every account, as asked.
pub async fn after_switch_off(
    ctx: &Ctx,
    grant: &FirmGrant,
    delete_events: bool,
    disconnect_accounts: bool,
) -> Result<SwitchOffReport, ConnectorError> {
    let mut report = SwitchOffReport {
        summary: "Syncing stopped.".into(),
        ..Default::default()
    };
    if disconnect_accounts {
        let mut disconnected = 0;
        for connection in store::connections(&ctx.caps, grant).await? {
            if connection.status == "disconnected" && connection.refresh_token_sealed.is_none() {
                continue;
            }
            let user = connection.firm_user_id.clone();
            match crate::consent::disconnect(ctx, grant, &user, delete_events).await {
                Ok(done) => {
                    report.events_deleted += done.events_deleted;
                    disconnected += 1;
                }
                Err(e) => report.failures.push(format!("user {user}: {e}")),
            }
        }
        report.summary = format!(
            "Syncing stopped; {disconnected} Google accounts disconnected; {} events deleted from the fee earners' calendars.",
            report.events_deleted
        );
        return Ok(report);
    }
    if !delete_events {
        return Ok(report);
    }
    for connection in store::connections(&ctx.caps, grant).await? {
        if connection.refresh_token_sealed.is_none() {
            continue;
        }
        let _claim = wait_for_claim(ctx, &connection.id).await;
        match delete_created_events(ctx, grant, &connection).await {
            Ok(n) => report.events_deleted += n,
            Err(e) => report
                .failures
                .push(format!("user {}: {e}", connection.firm_user_id)),
        }
    }
    report.summary = format!(
        "Syncing stopped; {} events deleted from the fee earners' calendars.",
        report.events_deleted
    );
    Ok(report)
}
