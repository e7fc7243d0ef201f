//! The firm's users, managed by its owners and admins. Only owners may make,
//! reset or disable owners; nobody disables themselves. A new or reset
//! password is generated here and returned once; it is hashed on the blocking
//! pool under the same bounded permits as login checks (503 while they are busy).

use super::{json_body, Session};
use crate::accounts::users::{
    check_new_user, email_pattern, name_pattern, NewUser, EMAIL_MAX_CHARS, NAME_MAX_CHARS,
};
use crate::accounts::{passwords, Role};
use crate::http::logins::PasswordError;
use crate::http::problem::Problem;
use crate::http::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/users", get(list).post(add))
        .route("/admin/v1/users/{id}/reset-password", post(reset_password))
        .route("/admin/v1/users/{id}/disable", post(disable))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    email: String,
    name: String,
    role: String,
    #[serde(default)]
    firm_user_id: Option<String>,
}

/// The add-user body as the OpenAPI document describes it: the rules
/// `check_new_user` and `Role::parse` apply, stated as patterns and bounds.
pub struct AddBodySchema;

impl utoipa::PartialSchema for AddBodySchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
        let string = || ObjectBuilder::new().schema_type(Type::String);
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "email",
                string()
                    .pattern(Some(email_pattern()))
                    .max_length(Some(EMAIL_MAX_CHARS)),
            )
            .property(
                "name",
                string()
                    .pattern(Some(name_pattern()))
                    .max_length(Some(NAME_MAX_CHARS)),
            )
            .property(
                "role",
                string().enum_values(Some(Role::ALL.iter().map(|r| r.as_str()))),
            )
            .property(
                "firm_user_id",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                    .description(Some("the person's user id in the practice system (needed for Google Calendar); empty or null for none; an id the practice system does not have is refused with 422")),
            )
            .required("email")
            .required("name")
            .required("role")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }
}

impl utoipa::ToSchema for AddBodySchema {}

/// A new password could not be hashed: 503 while every hashing permit is busy.
fn hashing_problem(e: PasswordError) -> Problem {
    match e {
        PasswordError::Busy => {
            Problem::unavailable(e.to_string()).with_header(header::RETRY_AFTER, "1")
        }
        PasswordError::Policy(detail) => Problem::unprocessable("password", detail),
        PasswordError::Failed(_) => Problem::internal(e),
    }
}

fn may_touch(session: &Session, role: Role) -> Result<(), Problem> {
    session.require_manager()?;
    if role == Role::Owner && session.user.role != Role::Owner {
        return Err(Problem::forbidden("only owners may manage owners"));
    }
    Ok(())
}

/// The firm's users.
#[utoipa::path(get, path = "/admin/v1/users", tag = "admin",
    responses((status = 200, description = "Users of the session's firm", body = Object), (status = 403, description = "Not an owner or admin")))]
pub async fn list(State(state): State<AppState>, session: Session) -> Result<Json<Value>, Problem> {
    session.require_manager()?;
    Ok(Json(
        json!({ "data": state.registry.users(session.firm()).await? }),
    ))
}

/// Adds a user to the session's firm with a generated password (shown once).
#[utoipa::path(post, path = "/admin/v1/users", tag = "admin",
    request_body(content = inline(AddBodySchema), content_type = "application/json"),
    responses((status = 201, description = "The user and their initial password (shown once)", body = Object),
              (status = 400, description = "The body is not JSON or not this shape"),
              (status = 403, description = "Not an owner or admin (only owners make owners)"),
              (status = 409, description = "Email already has an account in this firm"),
              (status = 415, description = "The body is not application/json"),
              (status = 422, description = "firm_user_id is not a user of the practice system"),
              (status = 503, description = "Password hashing is busy; see Retry-After")))]
pub async fn add(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let body: AddBody = json_body(&headers, &body)?;
    let role = Role::parse(&body.role).map_err(|e| Problem::unprocessable("role", e))?;
    may_touch(&session, role)?;
    let firm_user_id = body
        .firm_user_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(id) = firm_user_id {
        let db = state.tenancy.firm_db(&session).await?;
        let known = sqlx::query("SELECT id FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await
            .map_err(crate::registry::StoreError::from)?;
        if known.is_none() {
            return Err(Problem::unprocessable(
                "firm_user_id",
                format!("your practice system has no user {id:?}"),
            ));
        }
    }
    let new = NewUser {
        firm_id: session.firm(),
        email: &body.email,
        name: &body.name,
        role,
        firm_user_id,
        password: None,
    };
    check_new_user(&new)?;
    let password = passwords::generate();
    let hash = state
        .accounts
        .hash_password(&password)
        .await
        .map_err(hashing_problem)?;
    let user = state.registry.add_user_with_hash(new, Some(hash)).await?;
    let what = json!({ "user_id": user.id, "email": user.email, "role": user.role });
    super::trail::enter(
        &state,
        session.trail_entry(crate::access_trail::Kind::UserAdded, what),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user": user, "password": password })),
    ))
}

/// Sets a new generated password for a user of the session's firm (shown once) and ends their sessions.
#[utoipa::path(post, path = "/admin/v1/users/{id}/reset-password", tag = "admin",
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, description = "The new password (shown once)", body = Object), (status = 403, description = "Not allowed"), (status = 404, description = "No such user in this firm"),
              (status = 503, description = "Password hashing is busy; see Retry-After")))]
pub async fn reset_password(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    session.require_manager()?;
    let target = state.registry.user(session.firm(), &id).await?;
    may_touch(&session, target.role)?;
    let password = passwords::generate();
    let hash = state
        .accounts
        .hash_password(&password)
        .await
        .map_err(hashing_problem)?;
    state
        .registry
        .set_password_hash(session.firm(), &target.id, hash)
        .await?;
    let what = json!({ "user_id": target.id, "email": target.email });
    super::trail::enter(
        &state,
        session.trail_entry(crate::access_trail::Kind::PasswordReset, what),
    )
    .await?;
    Ok(Json(json!({ "user": target, "password": password })))
}

/// Disables a user of the session's firm and ends their sessions.
#[utoipa::path(post, path = "/admin/v1/users/{id}/disable", tag = "admin",
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, description = "The disabled user", body = Object), (status = 403, description = "Not allowed"), (status = 404, description = "No such active user in this firm"),
              (status = 409, description = "Your own account")))]
pub async fn disable(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    session.require_manager()?;
    let target = state.registry.user(session.firm(), &id).await?;
    may_touch(&session, target.role)?;
    if target.id == session.user.id {
        return Err(Problem::conflict("you cannot disable your own account"));
    }
    let user = state
        .registry
        .disable_user(session.firm(), &target.id)
        .await?;
    let what = json!({ "user_id": target.id, "email": target.email });
    super::trail::enter(
        &state,
        session.trail_entry(crate::access_trail::Kind::UserDisabled, what),
    )
    .await?;
    Ok(Json(json!({ "user": user })))
}
