//! Each connector's browser-facing side: its settings routes under
//! `/admin/v1/connectors/<id>/` (behind the settings session, CSRF checked,
//! the signed-in user handed over as a [`SettingsUser`]), its public routes
//! (e.g. an OAuth consent callback) and its settings-page script at
//! `/settings/connectors/<id>.js`. Connector errors become problem+json here.

use super::admin::Session;
use super::problem::Problem;
use super::vendor_auth::render_connector_errors;
use super::AppState;
use crate::capabilities::grant_for_session;
use crate::registry::StoreError;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use scopegate_contract::{Colleague, SettingsUser};

/// The settings and public routes of every registered connector, and the panel scripts.
pub fn routes(state: &AppState) -> (Router<AppState>, Router<AppState>) {
    let mut settings = Router::new().route("/settings/connectors/{script}", get(panel_script));
    let mut public = Router::new();
    for running in &state.connectors {
        let id = running.connector.id();
        if let Some(routes) = running.connector.settings_routes() {
            let routes = routes
                .route_layer(axum::middleware::from_fn_with_state(
                    (state.clone(), id),
                    settings_session,
                ))
                .layer(axum::middleware::map_response(render_connector_errors))
                .with_state(running.capabilities.clone());
            settings = settings.nest(&format!("/admin/v1/connectors/{id}"), routes);
        }
        if let Some(routes) = running.connector.public_routes() {
            public = public.merge(
                routes
                    .layer(axum::middleware::map_response(render_connector_errors))
                    .with_state(running.capabilities.clone()),
            );
        }
    }
    (settings, public)
}

/// Resolves the session and hands the connector its [`SettingsUser`].
async fn settings_session(
    State((state, connector)): State<(AppState, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let session = match Session::from_request_parts(&mut parts, &state).await {
        Ok(session) => session,
        Err(problem) => return problem.into_response(),
    };
    match settings_user(&state, &session, connector).await {
        Ok(user) => {
            parts.extensions.insert(user);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(problem) => problem.into_response(),
    }
}

async fn settings_user(
    state: &AppState,
    session: &Session,
    connector: &str,
) -> Result<SettingsUser, Problem> {
    let compiled = state
        .catalogue
        .require(connector)
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", e))?;
    let (grant, enabled) = match state.registry.grant(session.firm(), connector).await {
        Ok(g) => match grant_for_session(&g, &compiled, &session.user.id) {
            Ok(handle) => (Some(handle), g.enabled),
            Err(_) => (None, false),
        },
        Err(StoreError::NotFound(_)) => (None, false),
        Err(e) => return Err(e.into()),
    };
    let manages = session.user.role.manages();
    let colleagues = if manages {
        state
            .registry
            .users(session.firm())
            .await?
            .into_iter()
            .map(|u| Colleague {
                name: u.name,
                email: u.email,
                practice_user: u.firm_user_id,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(SettingsUser {
        grant,
        enabled,
        practice_user: session.user.firm_user_id.clone(),
        manages,
        colleagues,
        actor: session.actor(),
    })
}

/// A connector's settings-page script (`<id>.js`).
async fn panel_script(State(state): State<AppState>, Path(script): Path<String>) -> Response {
    let panel = script.strip_suffix(".js").and_then(|id| {
        state
            .connectors
            .iter()
            .find(|r| r.connector.id() == id)
            .and_then(|r| r.connector.settings_panel())
    });
    match panel {
        Some(panel) => {
            let mut response = panel.script.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => Problem::not_found("no such connector script").into_response(),
    }
}
