//! The integrations list and its switches. What each connector receives is
//! generated from its schemas (`Projection.fields[].description`), never
//! written by hand; when the firm consented to an older contract, the fields
//! the current one adds or drops are listed for re-consent. Each connector
//! also shows its minimisation choices, whether its grant is unused, and how
//! much it received lately (the chart itself: `admin::sharing`).

use super::{json_body, Session};
use crate::capabilities::{grant_for_lease, grant_for_session};
use crate::catalogue::Connector;
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::registry::grants::{contract_field_names, Grant};
use crate::registry::StoreError;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Days the sharing chart and its summary cover.
pub const SHARING_DAYS: i64 = 30;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/connectors", get(list))
        .route(
            "/admin/v1/connectors/{id}/choices",
            axum::routing::put(super::choices::set),
        )
        .route(
            "/admin/v1/connectors/{id}/sharing.svg",
            get(super::sharing::chart),
        )
        .route("/admin/v1/connectors/{id}/enable", post(enable))
        .route("/admin/v1/connectors/{id}/disable", post(disable))
}

/// The catalogue connector with this id, or 404.
pub fn connector(state: &AppState, id: &str) -> Result<Arc<Connector>, Problem> {
    state
        .catalogue
        .get(id)
        .ok_or_else(|| Problem::not_found(format!("no connector {id:?}")))
}

/// The firm's grant of a connector, if it ever switched it on.
async fn grant_of(state: &AppState, firm: &str, id: &str) -> Result<Option<Grant>, Problem> {
    match state.registry.grant(firm, id).await {
        Ok(g) => Ok(Some(g)),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One connector as the integrations page shows it.
pub async fn describe(state: &AppState, firm: &str, c: &Connector) -> Result<Value, Problem> {
    let stored = state.registry.stored_choices(firm, c.id()).await?;
    let chosen = c.contract.effective_choices(&stored);
    // What it receives under the firm's choices.
    let receives: Vec<Value> = c
        .projections_for(&chosen)
        .values()
        .filter(|p| p.source_table.is_some())
        .map(|p| {
            json!({
                "schema": p.name,
                "title": p.title,
                "description": p.document.get("description").cloned().unwrap_or(Value::Null),
                "fields": p.fields.iter().map(|f| json!({"name": f.name, "description": f.description})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let running = state.connectors.iter().find(|r| r.connector.id() == c.id());
    let grant = grant_of(state, firm, c.id()).await?;
    let needs_reconsent = grant
        .as_ref()
        .is_some_and(|g| g.schema_hash != c.schema_hash);
    let changes = match &grant {
        Some(g) if needs_reconsent => Some(changes_since(state, g, c).await?),
        _ => None,
    };
    let choices: Vec<Value> = c
        .contract
        .manifest
        .choices
        .iter()
        .map(|(name, choice)| {
            json!({
                "name": name,
                "label": choice.label,
                "default": choice.default,
                "chosen": chosen.get(name),
                "options": choice.options.iter().map(|(o, spec)| json!({"name": o, "label": spec.label})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let now = crate::clock::now_ms();
    let unused = match &grant {
        Some(g) => crate::privacy::unused_since(
            &state.registry,
            g,
            state.config.unused_grant_days,
            now,
        )
        .await?
        .map(|u| json!({ "days": u.days, "since": u.idle_since, "threshold_days": state.config.unused_grant_days })),
        None => None,
    };
    let per_day = crate::outbound_log::usage::records_per_day(
        &state.registry,
        firm,
        c.id(),
        SHARING_DAYS,
        now,
    )
    .await?;
    let total: i64 = per_day.iter().map(|(_, n)| n).sum();
    let peak = per_day
        .iter()
        .filter(|(_, n)| *n > 0)
        .max_by_key(|(day, n)| (*n, -day))
        .map(|(day, n)| json!({ "day": day, "records": n }));
    Ok(json!({
        "id": c.id(),
        "name": c.contract.manifest.name,
        "description": c.contract.manifest.description,
        "contract_version": c.contract.manifest.contract_version,
        "scopes": c.contract.manifest.scopes,
        "credentials": running.is_some_and(|r| r.vendor_api),
        "switch_off_options": running.map(|r| r.connector.switch_off_options()).unwrap_or_default(),
        "receives": receives,
        "enabled": grant.as_ref().is_some_and(|g| g.enabled),
        "consented": grant.as_ref().map(|g| json!({
            "grant_id": g.id,
            "contract_version": g.contract_version,
            "schema_hash": g.schema_hash,
            "at": g.updated_at,
        })),
        "needs_reconsent": needs_reconsent,
        "changes": changes,
        "choices": choices,
        "unused": unused,
        "sharing": { "days": SHARING_DAYS, "total": total, "peak": peak },
    }))
}

/// Per schema: fields the current contract adds and drops compared with the consented one.
async fn changes_since(state: &AppState, grant: &Grant, c: &Connector) -> Result<Value, Problem> {
    let Some(old) = state.registry.contract_fields(&grant.schema_hash).await? else {
        return Ok(json!({ "known": false }));
    };
    let new = contract_field_names(&c.contract);
    let mut schemas = Vec::new();
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        let before: BTreeSet<&String> = old.get(name).into_iter().flatten().collect();
        let after: BTreeSet<&String> = new.get(name).into_iter().flatten().collect();
        let added: Vec<&&String> = after.difference(&before).collect();
        let removed: Vec<&&String> = before.difference(&after).collect();
        if !added.is_empty() || !removed.is_empty() || !old.contains_key(name) {
            let title = c.projections.get(name.as_str()).map(|p| p.title.clone());
            schemas
                .push(json!({"schema": name, "title": title, "added": added, "removed": removed}));
        }
    }
    Ok(json!({ "known": true, "from_version": grant.contract_version, "schemas": schemas }))
}

/// Every connector: what it receives, whether it is on, and the consent state.
#[utoipa::path(get, path = "/admin/v1/connectors", tag = "admin",
    responses((status = 200, description = "Connectors with their fields (from their schemas), switch and consent state, and the re-consent diff", body = Object)))]
pub async fn list(State(state): State<AppState>, session: Session) -> Result<Json<Value>, Problem> {
    let mut out = Vec::new();
    for c in state.catalogue.all() {
        out.push(describe(&state, session.firm(), c).await?);
    }
    Ok(Json(json!({ "data": out })))
}

/// Switches a connector on for the session's firm (or re-consents to its current contract).
#[utoipa::path(post, path = "/admin/v1/connectors/{id}/enable", tag = "admin",
    params(("id" = String, Path, description = "connector id")),
    responses((status = 200, description = "The connector, now on", body = Object), (status = 403, description = "Not an owner or admin"),
              (status = 404, description = "No such connector"), (status = 409, description = "Already on")))]
pub async fn enable(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    session.require_manager()?;
    let c = connector(&state, &id)?;
    state
        .registry
        .enable_grant(session.firm(), &c.contract, &session.actor())
        .await?;
    let what = json!({ "connector": c.id(), "enabled": true, "contract_version": c.contract.manifest.contract_version });
    super::trail::enter(
        &state,
        session.trail_entry(crate::access_trail::Kind::GrantSwitched, what),
    )
    .await?;
    Ok(Json(describe(&state, session.firm(), &c).await?))
}

/// The switch-off choices in a disable request's body: each member must be
/// one the connector offers (`switch_off_options`), with a boolean value.
fn switch_off_choices(
    state: &AppState,
    c: &Connector,
    body: serde_json::Map<String, Value>,
) -> Result<BTreeSet<String>, Problem> {
    let offered: Vec<&str> = state
        .connectors
        .iter()
        .find(|r| r.connector.id() == c.id())
        .map(|r| {
            r.connector
                .switch_off_options()
                .iter()
                .map(|o| o.name)
                .collect()
        })
        .unwrap_or_default();
    let mut chosen = BTreeSet::new();
    for (name, value) in body {
        if !offered.contains(&name.as_str()) {
            return Err(Problem::bad_request(format!(
                "{} offers no switch-off choice {name:?}{}",
                c.id(),
                if offered.is_empty() {
                    String::new()
                } else {
                    format!("; it offers {}", offered.join(", "))
                }
            ))
            .with("field", name));
        }
        match value {
            Value::Bool(true) => {
                chosen.insert(name);
            }
            Value::Bool(false) => {}
            _ => {
                return Err(Problem::unprocessable(&name, "must be true or false"));
            }
        }
    }
    Ok(chosen)
}

/// The disable body as the OpenAPI document describes it: booleans named by
/// switch-off choices. Which names a connector takes is its own list; the
/// document narrows the names to those the registered connectors offer
/// (`http::openapi`).
pub struct SwitchOffChoices;

impl utoipa::PartialSchema for SwitchOffChoices {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::RefOr(
                ObjectBuilder::new().schema_type(Type::Boolean).into(),
            )))
            .into()
    }
}

impl utoipa::ToSchema for SwitchOffChoices {}

/// Switches a connector off: its credentials and tokens are revoked at once.
/// The body may carry the connector's `switch_off_options` as booleans (e.g.
/// `{"delete_events": true}`); what they did is reported under `switch_off`.
#[utoipa::path(post, path = "/admin/v1/connectors/{id}/disable", tag = "admin",
    params(("id" = String, Path, description = "connector id")),
    request_body(content = inline(Option<SwitchOffChoices>), description = "optional; the connector's switch_off_options (GET /admin/v1/connectors) as booleans, e.g. {\"delete_events\": true}", content_type = "application/json"),
    responses((status = 200, description = "The connector, now off; when it did work of its own also `switch_off`: {summary, failures, ...}", body = Object),
              (status = 400, description = "The body is not a JSON object, or names a choice this connector does not offer"),
              (status = 415, description = "A body that is not application/json"),
              (status = 403, description = "Not an owner or admin"),
              (status = 404, description = "No such connector"), (status = 409, description = "Not on")))]
pub async fn disable(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    session.require_manager()?;
    let c = connector(&state, &id)?;
    let body: serde_json::Map<String, Value> = if body.is_empty() {
        Default::default()
    } else {
        json_body(&headers, &body)?
    };
    let choices = switch_off_choices(&state, &c, body)?;
    let by = SwitchedBy::Session {
        actor: &session.actor(),
        user_id: &session.user.id,
    };
    let grant = switch_grant_off(&state, session.firm(), &c, &by).await?;
    let what = json!({ "connector": c.id(), "enabled": false, "options": choices });
    super::trail::enter(
        &state,
        session.trail_entry(crate::access_trail::Kind::GrantSwitched, what),
    )
    .await?;
    let work = switch_off_work(&state, &c, &grant, &by, &choices).await?;
    let mut out = describe(&state, session.firm(), &c).await?;
    if let Some(report) = work {
        out["switch_off"] = report;
    }
    Ok(Json(out))
}

/// Who switches a grant off.
pub enum SwitchedBy<'a> {
    /// A settings user (the ledger names `actor`).
    Session { actor: &'a str, user_id: &'a str },
    /// The gateway itself (ledger actor `scopegate`), for `reason`.
    Gateway { reason: &'a str },
}

/// Switches a firm's connector off, then runs the connector's own
/// switch-off work with the `chosen` switch-off options: the one path of an
/// admin's switch-off and the gateway's own (unused grants). Returns the
/// connector's report, if it did work of its own.
pub async fn switch_off(
    state: &AppState,
    firm: &str,
    c: &Connector,
    by: SwitchedBy<'_>,
    chosen: &BTreeSet<String>,
) -> Result<Option<Value>, Problem> {
    let grant = switch_grant_off(state, firm, c, &by).await?;
    switch_off_work(state, c, &grant, &by, chosen).await
}

/// The first half of [`switch_off`]: the grant off, its credentials and
/// tokens revoked, the ledger entry written.
pub async fn switch_grant_off(
    state: &AppState,
    firm: &str,
    c: &Connector,
    by: &SwitchedBy<'_>,
) -> Result<Grant, Problem> {
    let (actor, reason) = match by {
        SwitchedBy::Session { actor, .. } => (*actor, None),
        SwitchedBy::Gateway { reason } => ("scopegate", Some(*reason)),
    };
    Ok(state
        .registry
        .disable_grant_because(firm, c.id(), actor, reason)
        .await?)
}

/// The second half of [`switch_off`]: the connector's own work (e.g.
/// deleting what it created), now that the grant is off.
pub async fn switch_off_work(
    state: &AppState,
    c: &Connector,
    grant: &Grant,
    by: &SwitchedBy<'_>,
    chosen: &BTreeSet<String>,
) -> Result<Option<Value>, Problem> {
    // Work of the connector's own (e.g. deleting what it created), now that the grant is off.
    let Some(running) = state.connectors.iter().find(|r| r.connector.id() == c.id()) else {
        return Ok(None);
    };
    let handle = match by {
        SwitchedBy::Session { user_id, .. } => grant_for_session(grant, c, user_id),
        SwitchedBy::Gateway { .. } => grant_for_lease(grant, c, "scopegate"),
    };
    let Ok(handle) = handle else {
        return Ok(None);
    };
    let options: Vec<&'static str> = running
        .connector
        .switch_off_options()
        .iter()
        .map(|o| o.name)
        .filter(|name| chosen.contains(*name))
        .collect();
    let Some(work) = running
        .connector
        .switch_off(&running.capabilities, handle, &options)
    else {
        return Ok(None);
    };
    let report = work.await.map_err(Problem::from)?;
    Ok(Some(report))
}
