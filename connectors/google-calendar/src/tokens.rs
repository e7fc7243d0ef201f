//! Tokens for one connection. The refresh token is kept only sealed in the
//! connector's records (sealed by the core, bound to the firm's grant); the
//! access token lives in memory. Refreshes are single flight per connection
//! (racing refreshes cause `invalid_grant` storms), happen a minute before
//! expiry, and go through the audited sender like every other call to
//! Google: the `oauth2` crate builds the request and reads the answer, the
//! core sends it and logs it (the secrets replaced by placeholders).
//! `invalid_grant` means the user must connect again.

use crate::settings::GoogleSettings;
use crate::store::{Connection, SEAL_REFRESH};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, ClientId, ClientSecret, EndpointNotSet, EndpointSet, HttpClientError, HttpRequest,
    HttpResponse, RedirectUrl, RefreshToken, RevocationUrl, TokenResponse, TokenUrl,
};
use scopegate_contract::axum::http::Method;
use scopegate_contract::calls::{Call, CallBody};
use scopegate_contract::secrecy::{ExposeSecret, SecretString};
use scopegate_contract::{ConnectorError, FirmGrant};
use std::future::Future;
use std::pin::Pin;
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
    #[error("syncing was switched off")]
    Stopped,
}

fn url_err(what: &'static str) -> impl Fn(oauth2::url::ParseError) -> String {
    move |e| format!("the Google {what} URL is not a URL: {e}")
}

/// Builds the OAuth client from the settings; fails when Google is not configured.
pub fn oauth_client(settings: &GoogleSettings) -> Result<GoogleOAuthClient, String> {
    let id = settings.client_id.clone().ok_or(
        "Google Calendar is not configured: set --google-client-id and SCOPEGATE_GOOGLE_CLIENT_SECRET",
    )?;
    let secret = settings.client_secret.as_ref().ok_or(
        "Google Calendar is not configured: set SCOPEGATE_GOOGLE_CLIENT_SECRET or --google-client-secret-file",
    )?;
    Ok(BasicClient::new(ClientId::new(id))
        .set_client_secret(ClientSecret::new(secret.expose_secret().to_string()))
        .set_auth_uri(AuthUrl::new(settings.auth_url.clone()).map_err(url_err("authorize"))?)
        .set_token_uri(TokenUrl::new(settings.token_url.clone()).map_err(url_err("token"))?)
        .set_revocation_url(
            RevocationUrl::new(settings.revoke_url.clone()).map_err(url_err("revoke"))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(settings.redirect_url.clone()).map_err(url_err("redirect"))?,
        ))
}

/// How a token-endpoint call is named in the outbound log.
pub struct Logged {
    pub note: String,
    pub record_ids: Vec<String>,
    pub shown_as: &'static str,
    pub fields: &'static [&'static str],
    /// Allowed after a switch-off (a clean-up: revoking, or a token for deleting events).
    pub cleanup: bool,
}

type Exchange<'c> = Pin<
    Box<dyn Future<Output = Result<HttpResponse, HttpClientError<ConnectorError>>> + Send + 'c>,
>;

/// An HTTP client for `oauth2` that sends through the audited sender.
pub struct Audited {
    caps: scopegate_contract::Capabilities,
    grant: FirmGrant,
    timeout: Duration,
    logged: Logged,
}

/// The `oauth2` client of one token-endpoint exchange.
pub fn audited(
    caps: &scopegate_contract::Capabilities,
    settings: &GoogleSettings,
    grant: &FirmGrant,
    logged: Logged,
) -> Audited {
    Audited {
        caps: caps.clone(),
        grant: grant.clone(),
        timeout: settings.request_timeout,
        logged,
    }
}

impl<'c> oauth2::AsyncHttpClient<'c> for Audited {
    type Error = HttpClientError<ConnectorError>;
    type Future = Exchange<'c>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let header = |name: &str| {
                request
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let logged = &self.logged;
            let call = Call {
                method: Method::from_bytes(request.method().as_str().as_bytes())
                    .unwrap_or(Method::POST),
                url: request.uri().to_string(),
                bearer: None,
                body: CallBody::Credentials {
                    content_type: header("content-type")
                        .unwrap_or_else(|| "application/x-www-form-urlencoded".into()),
                    authorization: header("authorization"),
                    body: request.body().clone(),
                    fields: logged.fields.iter().map(|f| f.to_string()).collect(),
                    shown_as: logged.shown_as.to_string(),
                },
                record_ids: logged.record_ids.clone(),
                note: Some(logged.note.clone()),
                timeout: self.timeout,
                cleanup: logged.cleanup,
            };
            let answer = self
                .caps
                .sender()
                .call(&self.grant, call)
                .await
                .map_err(|e| HttpClientError::Other(e.to_string()))?;
            if answer.status == 0 {
                return Err(HttpClientError::Other(
                    "the token endpoint did not answer".into(),
                ));
            }
            let mut response = oauth2::http::Response::builder().status(answer.status);
            if let Some(content_type) = &answer.content_type {
                response = response.header("content-type", content_type);
            }
            response
                .body(answer.body)
                .map_err(|e| HttpClientError::Other(e.to_string()))
        })
    }
}

/// One connection's tokens.
pub struct TokenSource {
    pub connection_id: String,
    /// The sealed refresh token this source was opened from: when the
    /// connection's record holds another (a reconnect, perhaps through another
    /// instance), this source is stale and must not be used.
    pub sealed: String,
    refresh_token: SecretString,
    cached: std::sync::Mutex<Option<(SecretString, Instant)>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl TokenSource {
    /// Opens the sealed refresh token of a connection.
    pub fn open(
        caps: &scopegate_contract::Capabilities,
        grant: &FirmGrant,
        connection: &Connection,
    ) -> Result<Self, TokenError> {
        let sealed = connection
            .refresh_token_sealed
            .as_deref()
            .ok_or(TokenError::InvalidGrant)?;
        let plain = caps
            .records()
            .open(
                grant,
                &crate::store::connection_key(&connection.firm_user_id),
                SEAL_REFRESH,
                sealed,
            )
            .map_err(|e| TokenError::Setup(format!("cannot open the refresh token: {e}")))?;
        Ok(Self {
            connection_id: connection.id.clone(),
            sealed: sealed.to_string(),
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
    pub async fn access_token(
        &self,
        caps: &scopegate_contract::Capabilities,
        settings: &GoogleSettings,
        grant: &FirmGrant,
        cleanup: bool,
    ) -> Result<String, TokenError> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let _flight = self.refreshing.lock().await;
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        self.refresh(caps, settings, grant, cleanup).await
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

    async fn refresh(
        &self,
        caps: &scopegate_contract::Capabilities,
        settings: &GoogleSettings,
        grant: &FirmGrant,
        cleanup: bool,
    ) -> Result<String, TokenError> {
        let client = oauth_client(settings).map_err(TokenError::Setup)?;
        let http = audited(
            caps,
            settings,
            grant,
            Logged {
                note: format!(
                    "(refresh access token of connection {})",
                    self.connection_id
                ),
                record_ids: vec![self.connection_id.clone()],
                shown_as: "grant_type=refresh_token&refresh_token=<sealed>",
                fields: &["grant_type", "refresh_token"],
                cleanup,
            },
        );
        let result = client
            .exchange_refresh_token(&RefreshToken::new(
                self.refresh_token.expose_secret().to_string(),
            ))
            .request_async(&http)
            .await;
        match result {
            Ok(response) => {
                let token = response.access_token().secret().to_string();
                self.prime(&token, response.expires_in());
                Ok(token)
            }
            Err(oauth2::RequestTokenError::ServerResponse(e))
                if *e.error() == oauth2::basic::BasicErrorResponseType::InvalidGrant =>
            {
                Err(TokenError::InvalidGrant)
            }
            Err(oauth2::RequestTokenError::Request(HttpClientError::Other(e)))
                if e == ConnectorError::Stopped.to_string() =>
            {
                Err(TokenError::Stopped)
            }
            Err(e) => Err(TokenError::Transient(e.to_string())),
        }
    }

    /// Seeds the source with an access token (from the consent exchange).
    pub fn prime(&self, access_token: &str, expires_in: Option<Duration>) {
        let lifetime = expires_in
            .unwrap_or(Duration::from_secs(3600))
            .saturating_sub(Duration::from_secs(60));
        *self.cached.lock().expect("token cache") =
            Some((access_token.to_string().into(), Instant::now() + lifetime));
    }
}
