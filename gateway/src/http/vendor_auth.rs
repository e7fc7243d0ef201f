//! Bearer-token authentication for connector routes (RFC 6750). The token
//! resolves to its grant; the core mints the grant handle the connector's
//! handler receives. The firm, the grant and the scopes come from the token,
//! never from the request. A token of another connector is refused here, as
//! lacking scope, before the connector's handler runs. Such a refusal, and
//! a handler's refusal for lack of scope, is a probe (see [`probes`]).

use super::probes;
use super::problem::Problem;
use crate::capabilities::grant_for_token;
use crate::http::AppState;
use axum::extract::{Request, State};
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use scopegate_contract::ConnectorError;

fn invalid_token(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", detail).with_header(
        WWW_AUTHENTICATE,
        &format!(
            "Bearer realm=\"scopegate\", error=\"invalid_token\", error_description=\"{detail}\""
        ),
    )
}

/// A 403 `insufficient_scope` for `scope`.
pub fn insufficient_scope(scope: &str) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "Forbidden",
        format!("this token lacks scope {scope}"),
    )
    .with_header(
        WWW_AUTHENTICATE,
        &format!("Bearer realm=\"scopegate\", error=\"insufficient_scope\", scope=\"{scope}\""),
    )
}

/// Resolves the bearer token for a route of connector `connector_id`.
pub async fn authenticate(
    State((state, connector_id)): State<(AppState, &'static str)>,
    mut request: Request,
    next: Next,
) -> Response {
    let bearer = super::throttle::bearer_token(request.headers()).map(str::to_string);
    let probe = format!("{} {}", request.method(), request.uri().path());
    let source_ip = probes::caller(&state, &request);
    match resolve(&state, connector_id, bearer.as_deref()).await {
        Ok(grant) => {
            request.extensions_mut().insert(grant.clone());
            let response = next.run(request).await;
            if let Some(ConnectorError::InsufficientScope(scope)) =
                response.extensions().get::<ConnectorError>()
            {
                probes::raise(
                    &state,
                    (grant.firm_id(), grant.grant_id(), grant.connector()),
                    source_ip,
                    format!("a token without scope {scope} asked for {probe}"),
                );
            }
            response
        }
        Err(Refused::OtherConnector(grant, problem)) => {
            probes::raise(
                &state,
                (grant.firm_id(), grant.grant_id(), grant.connector()),
                source_ip,
                format!(
                    "a {} token asked for {probe}, a route of {connector_id}",
                    grant.connector()
                ),
            );
            problem.into_response()
        }
        Err(Refused::Plain(problem)) => problem.into_response(),
    }
}

/// Why a request was refused before its handler: a token of another
/// connector (a probe, with the grant it belongs to) or anything else.
enum Refused {
    OtherConnector(Box<scopegate_contract::FirmGrant>, Problem),
    Plain(Problem),
}

impl From<Problem> for Refused {
    fn from(problem: Problem) -> Self {
        Refused::Plain(problem)
    }
}

async fn resolve(
    state: &AppState,
    connector_id: &str,
    bearer: Option<&str>,
) -> Result<scopegate_contract::FirmGrant, Refused> {
    let token = bearer.ok_or_else(|| invalid_token("a bearer token is required"))?;
    let token = state
        .registry
        .resolve_token(token)
        .await
        .map_err(Problem::from)?
        .ok_or_else(|| invalid_token("the access token is invalid, expired or revoked"))?;
    let connector = state
        .catalogue
        .get(&token.connector)
        .ok_or_else(|| Problem::internal("token of an unknown connector"))?;
    let grant = grant_for_token(&token, &connector).map_err(|stale| {
        Problem::forbidden(format!(
            "the firm consented to an earlier data contract of {}; nothing is shared until a firm admin re-consents to version {}",
            stale.connector, stale.current_version
        ))
    })?;
    if grant.connector() != connector_id {
        let scope = request_scope_hint(state, connector_id);
        return Err(Refused::OtherConnector(
            Box::new(grant),
            insufficient_scope(&scope),
        ));
    }
    Ok(grant)
}

/// The scopes of the route's connector, named in a refusal of another connector's token.
fn request_scope_hint(state: &AppState, connector_id: &str) -> String {
    state
        .catalogue
        .get(connector_id)
        .map(|c| c.contract.manifest.scopes.join(" "))
        .unwrap_or_default()
}

/// Renders a connector's error (attached to its response) as problem+json.
pub async fn render_connector_errors(response: Response) -> Response {
    match response.extensions().get::<ConnectorError>().cloned() {
        Some(error) => Problem::from(error).into_response(),
        None => response,
    }
}

impl From<ConnectorError> for Problem {
    fn from(e: ConnectorError) -> Self {
        match e {
            ConnectorError::BadRequest { field, detail } => {
                let problem = Problem::bad_request(detail);
                match field {
                    Some(f) => problem.with("field", f),
                    None => problem,
                }
            }
            ConnectorError::Invalid { field, detail } if field.is_empty() => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request", detail)
            }
            ConnectorError::Invalid { field, detail } => Problem::unprocessable(&field, detail),
            ConnectorError::InsufficientScope(scope) => insufficient_scope(&scope),
            ConnectorError::Stopped => {
                Problem::forbidden("this connector is switched off for the firm")
            }
            ConnectorError::NotFound(detail) => Problem::not_found(detail),
            ConnectorError::Conflict(detail) => Problem::conflict(detail),
            ConnectorError::Refused(detail) => Problem::forbidden(detail),
            ConnectorError::Upstream(detail) => {
                Problem::new(StatusCode::BAD_GATEWAY, "Bad gateway", detail)
            }
            ConnectorError::Unavailable(detail) => Problem::unavailable(detail),
            ConnectorError::Internal(cause) => Problem::internal(cause),
        }
    }
}
