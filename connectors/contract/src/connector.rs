//! The shape of a connector, as the gateway's registration list holds it.

use crate::capabilities::{BoxFuture, Capabilities};
use crate::manifest::{ConnectorContract, ContractError};
use crate::settings::SettingSpec;
use crate::{ConnectorError, FirmGrant};
use serde_json::Value;

/// A connector's data contract as built into its crate: the manifest and the
/// schema files of `schemas/<id>/`.
#[derive(Debug, Clone, Copy)]
pub struct BuiltInContract {
    pub manifest: &'static str,
    /// (file name, text) of every schema the manifest names.
    pub files: &'static [(&'static str, &'static str)],
}

impl BuiltInContract {
    pub fn load(&self) -> Result<ConnectorContract, ContractError> {
        ConnectorContract::load(self.manifest, |name| {
            self.files
                .iter()
                .find(|(file, _)| *file == name)
                .map(|(_, text)| text.to_string())
        })
    }
}

/// A choice a firm admin makes when switching a connector off (a checkbox on
/// the settings page; a boolean member of the disable request's body).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct SwitchOffOption {
    /// The body member, e.g. `delete_events`.
    pub name: &'static str,
    /// What the settings page shows next to the checkbox.
    pub label: &'static str,
}

/// A connector's tab on the settings page: a script the page loads (same
/// origin, so within the page's CSP) that registers a renderer with
/// `window.scopegate.panel(id, {render(root, api), outcome(code)})`.
#[derive(Debug, Clone, Copy)]
pub struct SettingsPanel {
    pub title: &'static str,
    /// One sentence under the tab's heading.
    pub intro: &'static str,
    pub script: &'static str,
}

/// An account at the third party that received a grant's data (e.g. the
/// Google account a fee earner connected), for the privacy office's reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecipientAccount {
    /// How the third party names the account (e.g. its address).
    pub account: String,
    /// The practice user whose records went to it, when only theirs did.
    pub practice_user: Option<String>,
    /// When it started receiving, Unix ms.
    pub from: i64,
    /// When it stopped (exclusive); `None` while it still receives.
    pub until: Option<i64>,
}

/// One third-party integration. It sees firm data only through the
/// [`Capabilities`] the gateway hands it.
pub trait Connector: Send + Sync + 'static {
    /// Stable id: the folder under `schemas/` and the grant's connector.
    fn id(&self) -> &'static str;

    /// The data contract a firm admin consents to.
    fn contract(&self) -> BuiltInContract;

    /// Vendor-facing routes. The gateway puts them behind bearer-token
    /// authentication for this connector's grants, its rate limits and its
    /// problem renderer; handlers return [`crate::LoggedBody`].
    fn routes(&self) -> Option<axum::Router<Capabilities>> {
        None
    }

    /// The OpenAPI paths of [`Connector::routes`].
    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        None
    }

    /// OpenAPI component name -> schema name, for the schemas its paths reference.
    fn openapi_components(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// The purposes it seals secrets for with [`crate::GrantRecords::seal`].
    /// Values sealed since purposes are kept in clear re-seal without this;
    /// `scopegate keys rotate` tries these on older (`v1`) values, which do not name theirs.
    fn sealed_purposes(&self) -> &'static [&'static str] {
        &[]
    }

    /// Choices offered when a firm admin switches this connector off.
    fn switch_off_options(&self) -> &'static [SwitchOffOption] {
        &[]
    }

    /// OAuth scopes described for the OpenAPI document: (scope, description).
    fn scope_descriptions(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// Routes for the signed-in settings user, mounted under
    /// `/admin/v1/connectors/<id>/` behind the session (CSRF checked); their
    /// handlers take a [`crate::SettingsUser`].
    fn settings_routes(&self) -> Option<axum::Router<Capabilities>> {
        None
    }

    /// Browser-facing routes without a session (e.g. an OAuth consent
    /// callback), mounted at the paths they name.
    fn public_routes(&self) -> Option<axum::Router<Capabilities>> {
        None
    }

    /// The connector's tab on the settings page.
    fn settings_panel(&self) -> Option<SettingsPanel> {
        None
    }

    /// The operator settings it reads, with their flags and environment variables.
    fn settings(&self) -> &'static [SettingSpec] {
        &[]
    }

    /// Whether the operator configured what it needs (shown on the settings page).
    fn available(&self, _caps: &Capabilities) -> bool {
        true
    }

    /// Work of its own when a firm switches it off (the grant is already off):
    /// `chosen` holds the [`SwitchOffOption`] names the admin ticked. The
    /// report is shown to the admin.
    fn switch_off<'a>(
        &'a self,
        _caps: &'a Capabilities,
        _grant: FirmGrant,
        _chosen: &'a [&'static str],
    ) -> Option<BoxFuture<'a, Result<Value, ConnectorError>>> {
        None
    }

    /// `scopegate connector <id> --firm F <args>`: operator commands for one
    /// firm's grant; returns what to print.
    fn operator_command<'a>(
        &'a self,
        _caps: &'a Capabilities,
        _grant: FirmGrant,
        _args: &'a [String],
    ) -> Option<BoxFuture<'a, Result<String, ConnectorError>>> {
        None
    }

    /// The accounts at the third party that received the grant's data, when
    /// the connector delivers to accounts of its own choosing (vendor
    /// credentials are known to the gateway already).
    fn recipient_accounts<'a>(
        &'a self,
        _caps: &'a Capabilities,
        _grant: FirmGrant,
    ) -> Option<BoxFuture<'a, Result<Vec<RecipientAccount>, ConnectorError>>> {
        None
    }

    /// Work the gateway runs while it serves (e.g. pushing changes out); it
    /// should end soon after [`Capabilities::stopped`] resolves.
    fn background(&self, _caps: Capabilities) -> Option<BoxFuture<'static, ()>> {
        None
    }
}
