//! A firm's minimisation choices for a connector (the options its manifest
//! offers, e.g. the matter number instead of the matter name as a calendar
//! event's title). Changing one while the connector is on is a consent event:
//! the registry writes a `choose` ledger entry naming who, with the hash of
//! schema and choices together; the access trail gets a
//! `minimisation_changed` entry.

use super::connectors::{connector, describe};
use super::{json_body, Session};
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::registry::choices::ChoiceChange;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use scopegate_contract::choices::Chosen;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The body as the OpenAPI document describes it: choice name -> option name.
/// The document lists the choices and options the registered connectors
/// offer ([`offered_choices`], filled in by `openapi::document`).
pub struct ChoicesBody;

impl utoipa::PartialSchema for ChoicesBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }
}

impl utoipa::ToSchema for ChoicesBody {}

/// Every choice name the given contracts offer, with the options any offers for it.
pub fn offered_choices<'a>(
    contracts: impl IntoIterator<Item = &'a scopegate_contract::ConnectorContract>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut offered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for contract in contracts {
        for (name, choice) in &contract.manifest.choices {
            offered
                .entry(name.clone())
                .or_default()
                .extend(choice.options.keys().cloned());
        }
    }
    offered
}

/// The choices the gateway's running connectors offer.
fn offered_here(state: &AppState) -> BTreeMap<String, BTreeSet<String>> {
    let compiled: Vec<_> = state
        .connectors
        .iter()
        .filter_map(|r| state.catalogue.get(r.connector.id()))
        .collect();
    offered_choices(compiled.iter().map(|c| &c.contract))
}

/// Sets some of the firm's minimisation choices for a connector.
#[utoipa::path(put, path = "/admin/v1/connectors/{id}/choices", tag = "admin",
    params(("id" = String, Path, description = "connector id")),
    request_body(content = inline(ChoicesBody), description = "choice name -> option name, from the connector's `choices` (GET /admin/v1/connectors), e.g. {\"event_title\": \"matter_number\"}; choices left out keep theirs", content_type = "application/json"),
    responses((status = 200, description = "The connector with its choices; when it is on and a choice changed, the consent ledger has a `choose` entry", body = Object),
              (status = 400, description = "The body is not a JSON object, or names a choice this connector does not offer"),
              (status = 415, description = "A body that is not application/json"),
              (status = 403, description = "Not an owner or admin"),
              (status = 404, description = "No such connector, or a choice only another connector offers"),
              (status = 422, description = "An option the choice does not offer")))]
pub async fn set(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    session.require_manager()?;
    let c = connector(&state, &id)?;
    let body: serde_json::Map<String, Value> = json_body(&headers, &body)?;
    let mut asked = Chosen::new();
    for (name, value) in body {
        let Some(choice) = c.contract.manifest.choices.get(&name) else {
            if offered_here(&state).contains_key(&name) {
                return Err(Problem::not_found(format!(
                    "{} offers no choice {name}",
                    c.id()
                )));
            }
            let detail = c
                .contract
                .check_choices(&[(name.clone(), String::new())].into())
                .err()
                .map(|(_, d)| d)
                .unwrap_or_default();
            return Err(Problem::bad_request(detail).with("field", name));
        };
        match value {
            Value::String(option) if choice.options.contains_key(&option) => {
                asked.insert(name, option);
            }
            _ => {
                let options: Vec<&str> = choice.options.keys().map(String::as_str).collect();
                return Err(Problem::unprocessable(
                    &name,
                    format!("{name} must be one of {}", options.join(", ")),
                ));
            }
        }
    }
    let change = state
        .registry
        .set_choices(session.firm(), &c.contract, &asked, &session.actor())
        .await?;
    choice_changed(&state, &session, c.id(), &change).await?;
    Ok(Json(describe(&state, session.firm(), &c).await?))
}

/// Where a changed minimisation choice is noted besides the consent ledger:
/// the firm's access trail ("minimisation choice changed": who, before, after).
async fn choice_changed(
    state: &AppState,
    session: &Session,
    connector: &str,
    change: &ChoiceChange,
) -> Result<(), Problem> {
    if change.before == change.after {
        return Ok(());
    }
    let what = serde_json::json!({
        "connector": connector,
        "before": change.before,
        "after": change.after,
        "consent_recorded": change.consent_recorded,
    });
    super::trail::enter(
        state,
        session.trail_entry(crate::access_trail::Kind::MinimisationChanged, what),
    )
    .await
}
