//! The settings page's side of a connector: the signed-in user a settings
//! route acts for, and the operator's settings a connector declares (with
//! their own flags and environment variables).

use crate::{ConnectorError, FirmGrant};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// A colleague of the signed-in user (listed to owners and admins).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Colleague {
    pub name: String,
    pub email: String,
    /// Their user id in the practice system, when linked.
    pub practice_user: Option<String>,
}

/// Who a settings route acts for: resolved by the gateway from the session
/// (CSRF checked for every unsafe method). The firm is the session's.
#[derive(Debug, Clone)]
pub struct SettingsUser {
    /// The firm's grant of this connector, whether switched on or off (`None`
    /// when never switched on, or consented to an earlier contract).
    pub grant: Option<FirmGrant>,
    /// The grant is on, for the current contract.
    pub enabled: bool,
    /// The signed-in user's id in the practice system (`users.id` of the firm database).
    pub practice_user: Option<String>,
    /// An owner or admin.
    pub manages: bool,
    /// The firm's settings users (only for owners and admins).
    pub colleagues: Vec<Colleague>,
    /// The login, as the ledger names it.
    pub actor: String,
}

impl<S: Send + Sync> FromRequestParts<S> for SettingsUser {
    type Rejection = ConnectorError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ConnectorError> {
        parts
            .extensions
            .get::<SettingsUser>()
            .cloned()
            .ok_or_else(|| {
                ConnectorError::Internal("a settings route was reached without a session".into())
            })
    }
}

/// An operator setting a connector reads: `[connector.<id>] key` in the
/// TOML file, `--connector-setting <id>.<key>=...`, and, when given, its own
/// flag and environment variable.
#[derive(Debug, Clone, Copy)]
pub struct SettingSpec {
    pub key: &'static str,
    /// Long flag without dashes, e.g. `google-client-id`.
    pub flag: Option<&'static str>,
    pub env: Option<&'static str>,
    pub help: &'static str,
    /// Read only from `env` and never shown (`Capabilities::secret`).
    pub secret: bool,
}
