//! HTTP surface: health, the OAuth token endpoints, the connector APIs and
//! the OpenAPI document, each in its own module.

pub mod admin;
pub mod client_ip;
pub mod connector_pages;
pub mod logins;
pub mod oauth;
pub mod openapi;
pub mod probes;
pub mod problem;
pub mod security_headers;
pub mod server;
pub mod settings;
pub mod shared_limits;
pub mod state;
pub mod throttle;
pub mod vendor_auth;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
pub use state::{App, AppState, RunningConnector};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// The whole router.
pub fn router(state: AppState) -> Router {
    let api = connector_routes(&state)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            throttle::limit_per_credential,
        ))
        .layer(state.api_limiters.ip_layer());
    let (connector_settings, connector_public) = connector_pages::routes(&state);
    let shared_per_ip =
        axum::middleware::from_fn_with_state(state.clone(), throttle::limit_shared_per_ip);
    let oauth = oauth::routes()
        .merge(connector_public)
        .layer(shared_per_ip.clone())
        .layer(state.api_limiters.ip_layer());
    let browser = security_headers::apply(
        settings::routes()
            .merge(admin::routes())
            .merge(connector_settings),
        state.accounts.tls,
    )
    .layer(shared_per_ip)
    .layer(state.api_limiters.ip_layer());
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi::serve))
        .merge(api)
        .merge(oauth)
        .merge(browser)
        .fallback(probes::unknown_path)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(256 * 1024))
        .layer(axum::middleware::map_response(problem::framework_errors))
        .layer(SetResponseHeaderLayer::if_not_present(
            axum::http::header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(axum::middleware::from_fn(crate::metrics::track_request))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                // Only method and path: query strings may hold cursors, never log headers (tokens).
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(state)
}

/// Every registered connector's vendor routes, each behind bearer-token
/// authentication for that connector's grants, with its errors as problem+json.
fn connector_routes(state: &AppState) -> Router<AppState> {
    let mut routes = Router::new();
    for running in &state.connectors {
        let Some(connector_routes) = running.connector.routes() else {
            continue;
        };
        let auth_state = (state.clone(), running.connector.id());
        routes = routes.merge(
            connector_routes
                .route_layer(axum::middleware::from_fn_with_state(
                    auth_state,
                    vendor_auth::authenticate,
                ))
                .layer(axum::middleware::map_response(
                    vendor_auth::render_connector_errors,
                ))
                .with_state(running.capabilities.clone()),
        );
    }
    routes
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "{\"status\": \"ok\"}", body = Object)))]
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the registry database answers.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses((status = 200, description = "{\"status\": \"ready\"}", body = Object),
              (status = 503, description = "The registry database is unreachable")))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.registry.ping().await {
        (StatusCode::OK, Json(json!({ "status": "ready" }))).into_response()
    } else {
        problem::Problem::unavailable("the registry database is unreachable").into_response()
    }
}
