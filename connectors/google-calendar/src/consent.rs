//! Per-user consent. `start` (called by the settings page for the signed-in
//! fee earner, or by the operator's `connect` command) parks the PKCE
//! verifier with the core under a single-use `state` and returns Google's
//! authorize URL; the callback (no session needed: the core hands back the
//! grant the `state` was parked for) exchanges the code and keeps the refresh
//! token sealed. `disconnect` stops syncing, optionally deletes the created
//! events, revokes the token at Google and forgets it here.

use crate::context::Ctx;
use crate::store::{self, Connection, SEAL_REFRESH};
use crate::tokens::{audited, oauth_client, Logged, TokenSource};
use crate::SCOPE;
use oauth2::url::Url;
use oauth2::{
    AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, Scope, TokenResponse,
};
use scopegate_contract::axum::http::Method;
use scopegate_contract::calls::{Call, CallBody};
use scopegate_contract::secrecy::ExposeSecret;
use scopegate_contract::{ConnectorError, FirmGrant};
use serde_json::json;
use std::time::Duration;

/// How long an authorize link stays usable.
pub const CONSENT_TTL: Duration = Duration::from_secs(10 * 60);

/// Prefix of a `state` started from the settings page: its callback must come
/// from the browser that started it (see `routes.rs`).
pub const BROWSER_STATE_PREFIX: &str = "b.";

fn unavailable(detail: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Unavailable(detail.to_string())
}

/// Refuses unless the firm's grant is on for the current contract.
pub async fn require_active(ctx: &Ctx, grant: &FirmGrant) -> Result<(), ConnectorError> {
    if ctx.caps.leases().is_active(grant).await? {
        Ok(())
    } else {
        Err(ConnectorError::Refused(format!(
            "Google Calendar is switched off for firm {}; a firm admin must switch it on first",
            grant.firm_id()
        )))
    }
}

/// Starts consent for fee earner `user` (`users.id` in the firm's database):
/// Google's authorize URL and the `state` it carries. From the settings page
/// (`browser`), the state is bound to the browser by a cookie.
pub async fn start(
    ctx: &Ctx,
    grant: &FirmGrant,
    user: &str,
    browser: bool,
) -> Result<(Url, String), ConnectorError> {
    let client = oauth_client(&ctx.settings).map_err(unavailable)?;
    require_active(ctx, grant).await?;
    if user.is_empty() || user.len() > 200 {
        return Err(ConnectorError::bad_request(
            Some("user"),
            "a practice user id is 1 to 200 characters",
        ));
    }
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let payload = json!({ "user": user, "verifier": verifier.secret() });
    let state = ctx
        .caps
        .records()
        .park(
            grant,
            if browser { BROWSER_STATE_PREFIX } else { "" },
            payload.to_string().as_bytes(),
            CONSENT_TTL,
        )
        .await?;
    let (url, _) = client
        .authorize_url(|| CsrfToken::new(state.clone()))
        .add_scope(Scope::new(SCOPE.into()))
        .set_pkce_challenge(challenge)
        .add_extra_param("access_type", "offline")
        .add_extra_param("prompt", "consent")
        .add_extra_param("include_granted_scopes", "false")
        .url();
    Ok((url, state))
}

/// One practice user, one Google connection: a settings account may not
/// replace a connection another settings account holds (it could otherwise
/// send a partner's diary to its own Google account). The holder disconnects
/// first; the operator, acting for the firm, may replace it.
async fn refuse_taking_over(
    ctx: &Ctx,
    grant: &FirmGrant,
    user: &str,
) -> Result<(), ConnectorError> {
    let me = store::principal_label(grant);
    let Some(held) = store::connection_for_user(&ctx.caps, grant, user).await? else {
        return Ok(());
    };
    match held.connected_by.as_deref() {
        Some(by)
            if held.refresh_token_sealed.is_some()
                && by != me
                && by.starts_with("session:")
                && me.starts_with("session:") =>
        {
            Err(ConnectorError::Conflict(format!(
                "practice user {user}'s Google Calendar is connected by another settings account; it must be disconnected there (or by an admin) before another account connects it"
            )))
        }
        _ => Ok(()),
    }
}

/// A consent link that is unknown, used or expired.
pub fn unknown_state() -> ConnectorError {
    ConnectorError::bad_request(
        Some("state"),
        "this Google consent link is unknown, already used or expired; start again from settings",
    )
}

/// Forgets a parked consent (Google said the user declined).
pub async fn forget(ctx: &Ctx, state: &str) -> Result<(), ConnectorError> {
    ctx.caps.records().take(state).await?;
    Ok(())
}

/// Completes consent from Google's redirect: exchanges the code, stores the sealed refresh token.
pub async fn finish(
    ctx: &Ctx,
    state: &str,
    code: &str,
) -> Result<(FirmGrant, Connection), ConnectorError> {
    let parked = ctx
        .caps
        .records()
        .take(state)
        .await?
        .ok_or_else(unknown_state)?;
    let grant = parked.grant;
    let payload: serde_json::Value =
        serde_json::from_slice(&parked.payload).map_err(|_| unknown_state())?;
    let user = payload["user"]
        .as_str()
        .ok_or_else(unknown_state)?
        .to_string();
    let verifier = payload["verifier"]
        .as_str()
        .ok_or_else(unknown_state)?
        .to_string();
    require_active(ctx, &grant).await?;
    refuse_taking_over(ctx, &grant, &user).await?;
    let client = oauth_client(&ctx.settings).map_err(unavailable)?;
    let http = audited(
        &ctx.caps,
        &ctx.settings,
        &grant,
        Logged {
            note: format!("(authorization code exchange for user {user})"),
            record_ids: vec![user.clone()],
            shown_as: "grant_type=authorization_code&code=<code>&code_verifier=<verifier>",
            fields: &["grant_type", "code", "code_verifier", "redirect_uri"],
            cleanup: false,
        },
    );
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&http)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "Google refused the authorization code");
            ConnectorError::Upstream("Google refused to complete the consent (the code may have expired); start again from settings".into())
        })?;
    let refresh = response.refresh_token().ok_or_else(|| {
        ConnectorError::Upstream("Google did not return a refresh token; remove scopegate's access in your Google account and connect again".into())
    })?;
    let sealed = ctx.caps.records().seal(
        &grant,
        &store::connection_key(&user),
        SEAL_REFRESH,
        refresh.secret().as_bytes(),
    )?;
    let account =
        crate::account::who_is(ctx, &grant, response.access_token().secret(), &user).await;
    let connection =
        store::upsert_connection(&ctx.caps, &grant, &user, &sealed, account.as_deref()).await?;
    ctx.runtime.forget(&connection.id);
    if let Ok(source) = TokenSource::open(&ctx.caps, &grant, &connection) {
        source.prime(response.access_token().secret(), response.expires_in());
        ctx.runtime.keep_token_source(source);
    }
    ctx.runtime.wake.notify_waiters();
    Ok((grant, connection))
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

/// Every connection of a firm's grant.
pub async fn connection_statuses(
    ctx: &Ctx,
    grant: &FirmGrant,
) -> Result<Vec<ConnectionStatus>, ConnectorError> {
    let mut all = store::connections(&ctx.caps, grant).await?;
    all.sort_by(|a, b| a.firm_user_id.cmp(&b.firm_user_id));
    Ok(all
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
    ctx: &Ctx,
    grant: &FirmGrant,
    user: &str,
    delete_events: bool,
) -> Result<DisconnectReport, ConnectorError> {
    let connection = store::connection_for_user(&ctx.caps, grant, user)
        .await?
        .filter(|c| c.status != "disconnected" || c.refresh_token_sealed.is_some())
        .ok_or_else(|| {
            ConnectorError::NotFound(format!(
                "user {user} of firm {} has no Google Calendar connection",
                grant.firm_id()
            ))
        })?;
    store::set_status(&ctx.caps, grant, user, "disconnected", None, false).await?;
    let _claim = crate::cleanup::wait_for_claim(ctx, &connection.id).await;
    let mut events_deleted = 0;
    if delete_events && connection.refresh_token_sealed.is_some() {
        events_deleted = crate::cleanup::delete_created_events(ctx, grant, &connection)
            .await
            .map_err(|e| {
                ConnectorError::Upstream(format!("could not delete the events at Google: {e}"))
            })?;
    }
    let revoked_at_google = match connection.refresh_token_sealed.as_ref() {
        Some(_) => revoke(ctx, grant, &connection).await,
        None => false,
    };
    store::set_status(&ctx.caps, grant, user, "disconnected", None, true).await?;
    ctx.runtime.forget(&connection.id);
    Ok(DisconnectReport {
        events_deleted,
        revoked_at_google,
    })
}

/// Revokes the refresh token at Google (logged); true when Google confirmed.
/// A plain form POST as Google documents it: the `oauth2` crate refuses a
/// non-HTTPS revocation URL, which would rule out the local emulator.
async fn revoke(ctx: &Ctx, grant: &FirmGrant, connection: &Connection) -> bool {
    let Ok(source) = crate::sync::token_source(ctx, grant, connection) else {
        return false;
    };
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", source.refresh_token().expose_secret())
        .finish();
    let mut call = Call::new(Method::POST, ctx.settings.revoke_url.clone());
    call.body = CallBody::Credentials {
        content_type: "application/x-www-form-urlencoded".into(),
        authorization: None,
        body: body.into_bytes(),
        fields: vec!["token".into()],
        shown_as: "token=<refresh token>".into(),
    };
    call.record_ids = vec![connection.id.clone()];
    call.note = Some(format!(
        "(revoke the token of connection {})",
        connection.id
    ));
    call.timeout = Duration::from_secs(30);
    call.cleanup = true;
    matches!(ctx.caps.sender().call(grant, call).await, Ok(answer) if answer.status == 200)
}
