//! The consent ledger: every switch of every connector of the firm, with who and when.

use super::Session;
use crate::http::problem::Problem;
use crate::http::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/v1/consent-ledger", get(list))
}

/// The firm's consent ledger, newest first.
#[utoipa::path(get, path = "/admin/v1/consent-ledger", tag = "admin",
    responses((status = 200, description = "Ledger entries, newest first", body = Object), (status = 403, description = "Not an owner, admin or bookkeeper")))]
pub async fn list(State(state): State<AppState>, session: Session) -> Result<Json<Value>, Problem> {
    session.require_auditor()?;
    let mut entries = state.registry.consent_ledger(session.firm()).await?;
    entries.reverse();
    Ok(Json(json!({ "data": entries })))
}
