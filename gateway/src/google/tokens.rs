//! Tokens for one connection. The refresh token is kept only sealed in the
//! registry (AEAD with the key id in the ciphertext, so keys rotate); the
//! access token lives in memory. Refreshes are single flight per connection
//! (racing refreshes cause `invalid_grant` storms), happen a minute before
//! expiry, and are logged like every other call to Google. `invalid_grant`
//! means the user must connect again.

use super::store::SEAL_REFRESH;
use super::GoogleContext;
use super::CONNECTOR;
use crate::config::GoogleConfig;
use crate::outbound_log::{Direction, NewSend};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RedirectUrl, RefreshToken,
    RevocationUrl, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `oauth2` client with authorize, revocation and token endpoints set.
pub type GoogleOAuthClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointSet, EndpointSet>;

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("Google refused the refresh token (invalid_grant): the user must connect again")]
    InvalidGrant,
    #[error("the token endpoint could not be used: {0}")]
    Transient(String),
    #[error("{0}")]
    Setup(String),
}

fn url_err(what: &'static str) -> impl Fn(oauth2::url::ParseError) -> String {
    move |e| format!("the Google {what} URL is not a URL: {e}")
}

/// Builds the OAuth client from configuration; fails when Google is not configured.
pub fn oauth_client(config: &GoogleConfig) -> Result<GoogleOAuthClient, String> {
    let id = config.client_id.clone().ok_or(
        "Google Calendar is not configured: set --google-client-id and SCOPEGATE_GOOGLE_CLIENT_SECRET",
    )?;
    let secret = config.client_secret.as_ref().ok_or(
        "Google Calendar is not configured: set SCOPEGATE_GOOGLE_CLIENT_SECRET or --google-client-secret-file",
    )?;
    Ok(BasicClient::new(ClientId::new(id))
        .set_client_secret(ClientSecret::new(secret.expose_secret().to_string()))
        .set_auth_uri(AuthUrl::new(config.auth_url.clone()).map_err(url_err("authorize"))?)
        .set_token_uri(TokenUrl::new(config.token_url.clone()).map_err(url_err("token"))?)
        .set_revocation_url(
            RevocationUrl::new(config.revoke_url.clone()).map_err(url_err("revoke"))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(config.redirect_url.clone()).map_err(url_err("redirect"))?,
        ))
}

type BoxedResponse = Pin<
    Box<
        dyn Future<Output = Result<oauth2::HttpResponse, oauth2::HttpClientError<reqwest::Error>>>
            + Send,
    >,
>;

/// An HTTP client for `oauth2` that notes the status code Google answered with.
pub fn status_capturing(
    http: &reqwest::Client,
    seen: &Arc<AtomicU16>,
) -> impl Fn(oauth2::HttpRequest) -> BoxedResponse {
    let http = http.clone();
    let seen = seen.clone();
    move |request| {
        let http = http.clone();
        let seen = seen.clone();
        Box::pin(async move {
            let response = oauth2::AsyncHttpClient::call(&http, request).await?;
            seen.store(response.status().as_u16(), Ordering::SeqCst);
            Ok(response)
        })
    }
}

/// One connection's tokens.
pub struct TokenSource {
    pub connection_id: String,
    /// The sealed refresh token this source was opened from: when the
    /// connection's row holds another (a reconnect, perhaps through another
    /// instance), this source is stale and must not be used.
    pub sealed: String,
    pub firm_id: String,
    pub grant_id: String,
    refresh_token: SecretString,
    cached: std::sync::Mutex<Option<(SecretString, Instant)>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl TokenSource {
    /// Opens the sealed refresh token of a connection.
    pub fn open(
        ctx: &GoogleContext,
        connection: &super::store::Connection,
    ) -> Result<Self, TokenError> {
        let sealed = connection
            .refresh_token_sealed
            .as_deref()
            .ok_or(TokenError::InvalidGrant)?;
        let plain = ctx
            .keyring
            .open(SEAL_REFRESH, sealed)
            .map_err(|e| TokenError::Setup(format!("cannot open the refresh token: {e}")))?;
        Ok(Self {
            connection_id: connection.id.clone(),
            sealed: sealed.to_string(),
            firm_id: connection.firm_id.clone(),
            grant_id: connection.grant_id.clone(),
            refresh_token: String::from_utf8_lossy(&plain).to_string().into(),
            cached: std::sync::Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// The plain refresh token (for revocation only).
    pub fn refresh_token(&self) -> &SecretString {
        &self.refresh_token
    }

    fn fresh(&self) -> Option<String> {
        self.cached
            .lock()
            .expect("token cache")
            .as_ref()
            .filter(|(_, until)| *until > Instant::now())
            .map(|(t, _)| t.expose_secret().to_string())
    }

    /// A valid access token, refreshing (once, for all waiters) when needed.
    pub async fn access_token(&self, ctx: &GoogleContext) -> Result<String, TokenError> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let _flight = self.refreshing.lock().await;
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let token = self.refresh(ctx).await?;
        Ok(token)
    }

    /// Forgets `token` if it is the cached one (Google answered 401 to it).
    pub fn invalidate(&self, token: &str) {
        let mut cached = self.cached.lock().expect("token cache");
        if cached
            .as_ref()
            .is_some_and(|(t, _)| t.expose_secret() == token)
        {
            *cached = None;
        }
    }

    async fn refresh(&self, ctx: &GoogleContext) -> Result<String, TokenError> {
        let client = oauth_client(&ctx.config).map_err(TokenError::Setup)?;
        let receipt = ctx
            .log
            .record_send(NewSend {
                firm_id: self.firm_id.clone(),
                grant_id: self.grant_id.clone(),
                connector: CONNECTOR.into(),
                direction: Direction::Outbound,
                method: "POST".into(),
                target: format!(
                    "{} (refresh access token of connection {})",
                    ctx.config.token_url, self.connection_id
                ),
                fields: vec!["grant_type".into(), "refresh_token".into()],
                record_ids: vec![self.connection_id.clone()],
                payload: b"grant_type=refresh_token&refresh_token=<sealed>".to_vec(),
            })
            .await
            .map_err(|e| TokenError::Transient(e.to_string()))?;
        let seen = Arc::new(AtomicU16::new(0));
        let http = status_capturing(&ctx.runtime.oauth_http, &seen);
        let result = client
            .exchange_refresh_token(&RefreshToken::new(
                self.refresh_token.expose_secret().to_string(),
            ))
            .request_async(&http)
            .await;
        ctx.log
            .record_result(&receipt, seen.load(Ordering::SeqCst))
            .await
            .map_err(|e| TokenError::Transient(e.to_string()))?;
        match result {
            Ok(response) => {
                let lifetime = response
                    .expires_in()
                    .unwrap_or(Duration::from_secs(3600))
                    .saturating_sub(Duration::from_secs(60));
                let token = response.access_token().secret().to_string();
                *self.cached.lock().expect("token cache") =
                    Some((token.clone().into(), Instant::now() + lifetime));
                Ok(token)
            }
            Err(oauth2::RequestTokenError::ServerResponse(e))
                if *e.error() == oauth2::basic::BasicErrorResponseType::InvalidGrant =>
            {
                Err(TokenError::InvalidGrant)
            }
            Err(e) => Err(TokenError::Transient(e.to_string())),
        }
    }
}

/// Seeds a token source with the access token from the consent exchange.
impl TokenSource {
    pub fn prime(&self, access_token: &str, expires_in: Option<Duration>) {
        let lifetime = expires_in
            .unwrap_or(Duration::from_secs(3600))
            .saturating_sub(Duration::from_secs(60));
        *self.cached.lock().expect("token cache") =
            Some((access_token.to_string().into(), Instant::now() + lifetime));
    }
}

/// Hands the Calendar hub the access token the `oauth2` crate obtained.
#[derive(Clone)]
pub struct HubToken(pub Arc<str>);

impl google_calendar3::common::GetToken for HubToken {
    fn get_token<'a>(
        &'a self,
        _scopes: &'a [&str],
    ) -> Pin<
        Box<
            dyn Future<Output = Result<Option<String>, Box<dyn std::error::Error + Send + Sync>>>
                + Send
                + 'a,
        >,
    > {
        Box::pin(async move { Ok(Some(self.0.to_string())) })
    }
}
