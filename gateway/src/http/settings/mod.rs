//! The settings page: one HTML document, one stylesheet and one script, all
//! embedded in the binary and served by the gateway (no CDN, no inline
//! script), calling the admin API. Also the hand-off from the firm's
//! practice-management app, which turns a signed assertion into a session.

mod handoff;
pub mod office;

use crate::http::AppState;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../../../assets/index.html");
const APP_JS: &str = include_str!("../../../assets/app.js");
const APP_CSS: &str = include_str!("../../../assets/app.css");
const LOGO: &str = include_str!("../../../assets/logo.svg");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/settings") }))
        .route(
            "/settings",
            get(|| async { asset(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/settings/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/settings/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/settings/logo.svg",
            get(|| async { asset(LOGO, "image/svg+xml") }),
        )
        .route("/settings/handoff", get(handoff::handoff))
        .merge(office::routes())
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
