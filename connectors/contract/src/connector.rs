//! The shape of a connector, as the gateway's registration list holds it.

use crate::capabilities::{BoxFuture, Capabilities};
use crate::manifest::{ConnectorContract, ContractError};

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

    /// Choices offered when a firm admin switches this connector off.
    fn switch_off_options(&self) -> &'static [SwitchOffOption] {
        &[]
    }

    /// OAuth scopes described for the OpenAPI document: (scope, description).
    fn scope_descriptions(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// Work the gateway runs while it serves (e.g. pushing changes out); it
    /// should end soon after [`Capabilities::stopped`] resolves.
    fn background(&self, _caps: Capabilities) -> Option<BoxFuture<'static, ()>> {
        None
    }
}
