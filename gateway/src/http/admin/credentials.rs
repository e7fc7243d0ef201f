//! A connector's vendor credentials: list, issue, rotate (issue new, revoke
//! old) and revoke. A secret is returned once, when issued, and never again.

use super::connectors::connector;
use super::Session;
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::registry::credentials::CredentialInfo;
use axum::extract::{Path, State};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/v1/connectors/{id}/credentials",
            get(list).post(issue),
        )
        .route(
            "/admin/v1/connectors/{id}/credentials/{client_id}/rotate",
            post(rotate),
        )
        .route(
            "/admin/v1/connectors/{id}/credentials/{client_id}",
            delete(revoke),
        )
}

async fn of_connector(
    state: &AppState,
    firm: &str,
    connector: &str,
) -> Result<Vec<CredentialInfo>, Problem> {
    Ok(state
        .registry
        .credentials(firm)
        .await?
        .into_iter()
        .filter(|c| c.connector == connector)
        .collect())
}

/// The active credential `client_id` of this firm's connector, or 404.
async fn active(
    state: &AppState,
    firm: &str,
    connector: &str,
    client_id: &str,
) -> Result<CredentialInfo, Problem> {
    of_connector(state, firm, connector)
        .await?
        .into_iter()
        .find(|c| c.client_id == client_id && c.revoked_at.is_none())
        .ok_or_else(|| {
            Problem::not_found(format!("no active credential {client_id} for {connector}"))
        })
}

/// The firm's credentials for a connector (never their secrets).
#[utoipa::path(get, path = "/admin/v1/connectors/{id}/credentials", tag = "admin",
    params(("id" = String, Path, description = "connector id")),
    responses((status = 200, description = "Credentials, newest first", body = Object), (status = 403, description = "Not an owner or admin"), (status = 404, description = "No such connector")))]
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    session.require_manager()?;
    let c = connector(&state, &id)?;
    Ok(Json(
        json!({ "data": of_connector(&state, session.firm(), c.id()).await? }),
    ))
}

fn issued(client_id: &str, secret: &str) -> Value {
    json!({ "client_id": client_id, "client_secret": secret, "note": "the secret is shown once and stored only as a hash" })
}

/// Issues a credential for the firm's enabled connector; the secret is in this response only.
#[utoipa::path(post, path = "/admin/v1/connectors/{id}/credentials", tag = "admin",
    params(("id" = String, Path, description = "connector id")),
    responses((status = 201, description = "client_id and client_secret (shown once)", body = Object), (status = 403, description = "Not an owner or admin"),
              (status = 404, description = "No such connector or never enabled"), (status = 409, description = "The connector is off")))]
pub async fn issue(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<(axum::http::StatusCode, Json<Value>), Problem> {
    session.require_manager()?;
    let c = connector(&state, &id)?;
    let cred = state
        .registry
        .issue_credential(session.firm(), c.id())
        .await?;
    tracing::info!(firm = %session.firm(), client_id = %cred.client_id, "credential issued in settings");
    let what = json!({ "connector": c.id(), "client_id": cred.client_id });
    super::trail::enter(
        &state,
        session.trail_entry(crate::access_trail::Kind::CredentialIssued, what),
    )
    .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(issued(&cred.client_id, cred.client_secret.expose_secret())),
    ))
}

/// Issues a new credential and revokes the old one (and its tokens).
#[utoipa::path(post, path = "/admin/v1/connectors/{id}/credentials/{client_id}/rotate", tag = "admin",
    params(("id" = String, Path, description = "connector id"), ("client_id" = String, Path, description = "the credential to replace")),
    responses((status = 201, description = "The new client_id and client_secret (shown once)", body = Object), (status = 403, description = "Not an owner or admin"),
              (status = 404, description = "No such active credential of this firm")))]
pub async fn rotate(
    State(state): State<AppState>,
    session: Session,
    Path((id, client_id)): Path<(String, String)>,
) -> Result<(axum::http::StatusCode, Json<Value>), Problem> {
    session.require_manager()?;
    let c = connector(&state, &id)?;
    active(&state, session.firm(), c.id(), &client_id).await?;
    let cred = state
        .registry
        .rotate_credential(session.firm(), c.id(), &client_id)
        .await?;
    let what = json!({ "connector": c.id(), "client_id": cred.client_id, "replaces": client_id });
    super::trail::enter(
        &state,
        session.trail_entry(crate::access_trail::Kind::CredentialRotated, what),
    )
    .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(issued(&cred.client_id, cred.client_secret.expose_secret())),
    ))
}

/// Revokes a credential and every token issued with it.
#[utoipa::path(delete, path = "/admin/v1/connectors/{id}/credentials/{client_id}", tag = "admin",
    params(("id" = String, Path, description = "connector id"), ("client_id" = String, Path, description = "the credential")),
    responses((status = 204, description = "Revoked"), (status = 403, description = "Not an owner or admin"),
              (status = 404, description = "No such active credential of this firm")))]
pub async fn revoke(
    State(state): State<AppState>,
    session: Session,
    Path((id, client_id)): Path<(String, String)>,
) -> Result<axum::http::StatusCode, Problem> {
    session.require_manager()?;
    let c = connector(&state, &id)?;
    active(&state, session.firm(), c.id(), &client_id).await?;
    state
        .registry
        .revoke_credential(session.firm(), &client_id)
        .await?;
    let what = json!({ "connector": c.id(), "client_id": client_id });
    super::trail::enter(
        &state,
        session.trail_entry(crate::access_trail::Kind::CredentialRevoked, what),
    )
    .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
