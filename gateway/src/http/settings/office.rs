//! The privacy office's tabs on the settings page (disclosures and breach
//! scope, security events, the audit trail, ...): built into the gateway,
//! each with its own script under `gateway/assets/office/`, served at
//! `/settings/office/<id>.js` and loaded by `app.js` the way a connector's
//! tab is, so each tab stays one small file. Every tab is for the roles that
//! manage the firm (owners and admins); the admin API behind it checks again.

use crate::http::problem::Problem;
use crate::http::AppState;
use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

/// One built-in tab: its id (also its script's name), title and intro line.
pub struct OfficeTab {
    pub id: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    pub script: &'static str,
}

/// The office's tabs, in the order the page shows them (after the connectors' tabs).
pub const OFFICE_TABS: &[OfficeTab] = &[
    OfficeTab {
        id: "privacy",
        title: "Privacy office",
        intro: "Who received what about a client or matter (POPIA s23), and whose data left through a channel in a window (POPIA s22).",
        script: include_str!("../../../assets/office/privacy.js"),
    },
    OfficeTab {
        id: "security",
        title: "Security",
        intro: "Tripwires that fired: a decoy credential used, a vendor token probing outside its grant, a record id no grant of this firm was shown.",
        script: include_str!("../../../assets/office/security.js"),
    },
    OfficeTab {
        id: "trail",
        title: "Audit trail",
        intro: "Who logged in, handed off, changed users, credentials or integrations, and which vendor tokens were issued: when, from where and what.",
        script: include_str!("../../../assets/office/trail.js"),
    },
];

pub fn routes() -> Router<AppState> {
    Router::new().route("/settings/office/{script}", get(script))
}

/// The tabs as `/admin/v1/me` lists them, for a user who manages the firm.
pub fn panels() -> Vec<Value> {
    OFFICE_TABS
        .iter()
        .map(|t| {
            json!({
                "id": t.id,
                "title": t.title,
                "intro": t.intro,
                "available": true,
                "script": format!("/settings/office/{}.js", t.id),
                "base": "/admin/v1",
            })
        })
        .collect()
}

async fn script(Path(script): Path<String>) -> Response {
    let tab = script
        .strip_suffix(".js")
        .and_then(|id| OFFICE_TABS.iter().find(|t| t.id == id));
    match tab {
        Some(tab) => {
            let mut response = tab.script.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => Problem::not_found("no such settings script").into_response(),
    }
}
