//! Per-user consent. `start` (called by the settings page for the logged-in
//! fee earner, or by `scopegate google connect`) returns Google's authorize
//! URL with PKCE (S256) and a single-use CSRF `state`; the callback
//! (`/oauth/google/callback`, no session needed: `state` names the pending
//! consent) exchanges the code and keeps the refresh token sealed.
//! `disconnect` stops syncing, optionally deletes the created events, revokes
//! the token at Google and forgets it here.

use super::store::{self, Connection, Pending, SEAL_REFRESH, SEAL_VERIFIER};
use super::tokens::{oauth_client, status_capturing, TokenSource};
use super::GoogleContext;
use super::{CONNECTOR, SCOPE};
use crate::clock::now_ms;
use crate::outbound_log::{Direction, NewSend};
use crate::registry::grants::Grant;
use crate::registry::StoreError;
use oauth2::url::Url;
use oauth2::{
    AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, Scope, TokenResponse,
};
use scopegate_contract::ConnectorError;
use secrecy::ExposeSecret;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long an authorize link stays usable.
pub const CONSENT_TTL_MS: i64 = 10 * 60 * 1000;

fn bad_gateway(detail: impl Into<String>) -> ConnectorError {
    ConnectorError::Upstream(detail.into())
}

fn internal(cause: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Internal(cause.to_string())
}

fn unavailable(detail: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Unavailable(detail.to_string())
}

/// The firm's enabled grant for the current contract, or why there is none.
async fn usable_grant(ctx: &GoogleContext, firm_id: &str) -> Result<Grant, ConnectorError> {
    let connector = ctx.catalogue.require(CONNECTOR).map_err(internal)?;
    let grant = match ctx.registry.grant(firm_id, CONNECTOR).await {
        Ok(g) => g,
        Err(StoreError::NotFound(_)) => {
            return Err(ConnectorError::Refused(format!(
                "Google Calendar is not switched on for firm {firm_id}; a firm admin must enable it first"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if !grant.enabled {
        return Err(ConnectorError::Refused(format!(
            "Google Calendar is switched off for firm {firm_id}"
        )));
    }
    if grant.schema_hash != connector.schema_hash {
        return Err(ConnectorError::Refused(
            "the Google Calendar data contract changed since the firm consented; a firm admin must switch it on again".into(),
        ));
    }
    Ok(grant)
}

fn state_hash(state: &str) -> String {
    crate::secrets::sha256_hex(state)
}

/// Prefix of a `state` started from the settings page: its callback must come
/// from the browser that started it (see [`start_in_browser`]).
pub const BROWSER_STATE_PREFIX: &str = "b.";

/// Starts consent for fee earner `firm_user_id` (`users.id` in the firm's database).
pub async fn start(
    ctx: &GoogleContext,
    firm_id: &str,
    firm_user_id: &str,
) -> Result<Url, ConnectorError> {
    Ok(start_with(ctx, firm_id, firm_user_id, false).await?.0)
}

/// Starts consent from the settings page: returns the authorize URL and the
/// `state`, which the page's browser keeps in a cookie; the callback refuses
/// a `state` with [`BROWSER_STATE_PREFIX`] arriving without that cookie.
pub async fn start_in_browser(
    ctx: &GoogleContext,
    firm_id: &str,
    firm_user_id: &str,
) -> Result<(Url, String), ConnectorError> {
    start_with(ctx, firm_id, firm_user_id, true).await
}

async fn start_with(
    ctx: &GoogleContext,
    firm_id: &str,
    firm_user_id: &str,
    browser: bool,
) -> Result<(Url, String), ConnectorError> {
    let client = oauth_client(&ctx.config).map_err(unavailable)?;
    let grant = usable_grant(ctx, firm_id).await?;
    let db = ctx.tenancy.firm_db(&grant).await?;
    if !super::reader::user_exists(&db, firm_user_id).await? {
        return Err(ConnectorError::NotFound(format!(
            "firm {firm_id} has no user {firm_user_id}"
        )));
    }
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(|| {
            let random = CsrfToken::new_random();
            if browser {
                CsrfToken::new(format!("{BROWSER_STATE_PREFIX}{}", random.secret()))
            } else {
                random
            }
        })
        .add_scope(Scope::new(SCOPE.into()))
        .set_pkce_challenge(challenge)
        .add_extra_param("access_type", "offline")
        .add_extra_param("prompt", "consent")
        .add_extra_param("include_granted_scopes", "false")
        .url();
    store::insert_pending(
        &ctx.registry,
        &state_hash(state.secret()),
        &Pending {
            firm_id: firm_id.to_string(),
            grant_id: grant.id,
            firm_user_id: firm_user_id.to_string(),
            verifier_sealed: ctx
                .keyring
                .seal(SEAL_VERIFIER, verifier.secret().as_bytes()),
            expires_at: now_ms() + CONSENT_TTL_MS,
        },
    )
    .await?;
    Ok((url, state.secret().clone()))
}

/// Completes consent from Google's redirect: exchanges the code, stores the sealed refresh token.
pub async fn finish(
    ctx: &GoogleContext,
    state: &str,
    code: &str,
) -> Result<Connection, ConnectorError> {
    let unknown = || {
        ConnectorError::bad_request(
            Some("state"),
            "this Google consent link is unknown, already used or expired; start again from settings",
        )
    };
    let pending = store::take_pending(&ctx.registry, &state_hash(state))
        .await?
        .ok_or_else(unknown)?;
    if pending.expires_at < now_ms() {
        return Err(unknown());
    }
    let grant = usable_grant(ctx, &pending.firm_id).await?;
    if grant.id != pending.grant_id {
        return Err(unknown());
    }
    let client = oauth_client(&ctx.config).map_err(unavailable)?;
    let verifier = ctx
        .keyring
        .open(SEAL_VERIFIER, &pending.verifier_sealed)
        .map_err(internal)?;
    let receipt = ctx
        .log
        .record_send(NewSend {
            firm_id: pending.firm_id.clone(),
            grant_id: grant.id.clone(),
            connector: CONNECTOR.into(),
            direction: Direction::Outbound,
            method: "POST".into(),
            target: format!(
                "{} (authorization code exchange for user {})",
                ctx.config.token_url, pending.firm_user_id
            ),
            fields: vec![
                "grant_type".into(),
                "code".into(),
                "code_verifier".into(),
                "redirect_uri".into(),
            ],
            record_ids: vec![pending.firm_user_id.clone()],
            payload: b"grant_type=authorization_code&code=<code>&code_verifier=<verifier>".to_vec(),
        })
        .await?;
    let seen = Arc::new(AtomicU16::new(0));
    let http = status_capturing(&ctx.runtime.oauth_http, &seen);
    let result = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(
            String::from_utf8_lossy(&verifier).to_string(),
        ))
        .request_async(&http)
        .await;
    ctx.log
        .record_result(&receipt, seen.load(Ordering::SeqCst))
        .await?;
    let response = result.map_err(|e| {
        tracing::warn!(error = %e, "Google refused the authorization code");
        bad_gateway("Google refused to complete the consent (the code may have expired); start again from settings")
    })?;
    let refresh = response.refresh_token().ok_or_else(|| {
        bad_gateway("Google did not return a refresh token; remove scopegate's access in your Google account and connect again")
    })?;
    let sealed = ctx.keyring.seal(SEAL_REFRESH, refresh.secret().as_bytes());
    let connection =
        store::upsert_connection(&ctx.registry, &pending, &sealed, ctx.keyring.primary_id())
            .await?;
    ctx.runtime.forget(&connection.id);
    if let Ok(source) = TokenSource::open(ctx, &connection) {
        source.prime(response.access_token().secret(), response.expires_in());
        ctx.runtime.keep_token_source(source);
    }
    ctx.runtime.wake.notify_waiters();
    Ok(connection)
}

/// A connection as settings shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionStatus {
    pub firm_user_id: String,
    pub status: String,
    pub connected_at: i64,
    pub last_sync_at: Option<i64>,
    pub last_error: Option<String>,
    pub events_count: i64,
    pub retry_due_at: Option<i64>,
}

/// Every connection of a firm.
pub async fn connection_statuses(
    ctx: &GoogleContext,
    firm_id: &str,
) -> Result<Vec<ConnectionStatus>, ConnectorError> {
    ctx.registry.firm(firm_id).await?;
    Ok(store::connections(&ctx.registry, firm_id)
        .await?
        .into_iter()
        .map(|c| ConnectionStatus {
            firm_user_id: c.firm_user_id,
            status: c.status,
            connected_at: c.connected_at,
            last_sync_at: c.last_sync_at,
            last_error: c.last_error,
            events_count: c.events_count,
            retry_due_at: c.job_due_at.filter(|_| c.job_attempts > 0),
        })
        .collect())
}

/// What a disconnect did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DisconnectReport {
    pub events_deleted: u64,
    /// False when Google could not be told (the token is forgotten here anyway).
    pub revoked_at_google: bool,
}

/// Disconnects a fee earner: syncing stops at once; the created events are
/// deleted when asked; the token is revoked at Google and deleted here.
pub async fn disconnect(
    ctx: &GoogleContext,
    firm_id: &str,
    firm_user_id: &str,
    delete_events: bool,
) -> Result<DisconnectReport, ConnectorError> {
    let connection = store::connection_for_user(&ctx.registry, firm_id, firm_user_id)
        .await?
        .filter(|c| c.status != "disconnected" || c.refresh_token_sealed.is_some())
        .ok_or_else(|| {
            ConnectorError::NotFound(format!(
                "user {firm_user_id} of firm {firm_id} has no Google Calendar connection"
            ))
        })?;
    store::set_status(&ctx.registry, &connection.id, "disconnected", None, false).await?;
    let _claim = super::switch_off::wait_for_claim(ctx, &connection.id).await;
    let mut events_deleted = 0;
    if delete_events && connection.refresh_token_sealed.is_some() {
        events_deleted = super::switch_off::delete_created_events(ctx, &connection)
            .await
            .map_err(|e| bad_gateway(format!("could not delete the events at Google: {e}")))?;
    }
    let revoked_at_google = match connection.refresh_token_sealed.as_ref() {
        Some(_) => revoke(ctx, &connection).await,
        None => false,
    };
    store::set_status(&ctx.registry, &connection.id, "disconnected", None, true).await?;
    ctx.runtime.forget(&connection.id);
    Ok(DisconnectReport {
        events_deleted,
        revoked_at_google,
    })
}

/// Revokes the refresh token at Google (logged); true when Google confirmed.
/// A plain form POST as Google documents it: the `oauth2` crate refuses a
/// non-HTTPS revocation URL, which would rule out the local emulator.
async fn revoke(ctx: &GoogleContext, connection: &Connection) -> bool {
    let source = match super::sync::token_source(ctx, connection) {
        Ok(s) => s,
        Err(_) => return false,
    };
    let Ok(receipt) = ctx
        .log
        .record_send(NewSend {
            firm_id: connection.firm_id.clone(),
            grant_id: connection.grant_id.clone(),
            connector: CONNECTOR.into(),
            direction: Direction::Outbound,
            method: "POST".into(),
            target: format!(
                "{} (revoke the token of connection {})",
                ctx.config.revoke_url, connection.id
            ),
            fields: vec!["token".into()],
            record_ids: vec![connection.id.clone()],
            payload: b"token=<refresh token>".to_vec(),
        })
        .await
    else {
        return false;
    };
    let response = ctx
        .runtime
        .oauth_http
        .post(&ctx.config.revoke_url)
        .form(&[("token", source.refresh_token().expose_secret())])
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    let status = response.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
    let _ = ctx.log.record_result(&receipt, status).await;
    status == 200
}
