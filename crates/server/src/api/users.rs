//! User routes: the caller's own record and password, and the superadmin's
//! user management. Removing a user takes its rules off their clients.

use super::auth::Via;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, SecretJson, SourceIp};
use super::schemas;
use super::session::{self, validate_display_name, validate_new_user_id};
use crate::authz;
use crate::passwords;
use crate::state::Shared;
use crate::store::users::{self, Actor, Role, UserRow};
use crate::store::{sessions, write_tx};
use crate::throttle::Key;
use crate::timefmt::rfc3339;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use portunus_domain::{DomainError, ErrorCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The path parameter of the user routes.
const USER_ID: &str = "A user id";

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    #[serde(flatten)]
    pub user: UserRow,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthenticatedBy {
    Bearer,
    Session,
}

/// The caller's own record.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    #[serde(flatten)]
    pub user: UserView,
    pub authenticated_by: AuthenticatedBy,
}

/// A password change's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordChanged {
    pub user_id: String,
    pub password_change_required: bool,
}

/// A new user; a generated temporary password is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUser {
    #[serde(flatten)]
    pub user: UserView,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub temporary_password: Option<String>,
}

/// A removed user and the rules that went with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserRemoved {
    pub user_id: String,
    pub removed_rules: Vec<String>,
}

/// A password reset's outcome; a generated password is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordReset {
    pub user_id: String,
    pub password_change_required: bool,
    /// How many of the user's Web sessions ended.
    pub sessions_revoked: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub temporary_password: Option<String>,
}

impl From<UserRow> for UserView {
    fn from(user: UserRow) -> Self {
        UserView {
            created_at: rfc3339(user.created_at),
            user,
        }
    }
}

/// The caller's own record.
#[utoipa::path(get, path = "/v1/users/me", tag = "auth", operation_id = "getMe",
    responses((status = 200, description = "Who the caller is.", body = MeView)))]
pub async fn me(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Extension(via): Extension<Via>,
) -> ApiResult<Json<MeView>> {
    let row = state
        .store
        .call(move |c| users::get(c, &actor.user_id))
        .await?;
    let authenticated_by = match via {
        Via::Bearer => AuthenticatedBy::Bearer,
        Via::Session { .. } => AuthenticatedBy::Session,
    };
    Ok(Json(MeView {
        user: row.into(),
        authenticated_by,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordBody {
    current_password: String,
    #[schema(schema_with = schemas::password)]
    new_password: String,
}

/// Change the caller's password.
///
/// Checks the current one first (failures are throttled like logins),
/// then ends every session of the user; a cookie caller gets a fresh one.
#[utoipa::path(post, path = "/v1/users/me/password", tag = "auth", operation_id = "changeOwnPassword",
    request_body = ChangePasswordBody,
    responses((status = 200, description = "Changed.", body = PasswordChanged)))]
pub async fn change_own_password(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Extension(via): Extension<Via>,
    SourceIp(ip): SourceIp,
    SecretJson(body): SecretJson<ChangePasswordBody>,
) -> Response {
    let keys = [Key::Source(ip), Key::user(&actor.user_id)];
    if let Some(resp) = session::throttled(&state, &keys) {
        return resp;
    }
    let uid = actor.user_id.clone();
    let record = match state
        .store
        .call(move |c| users::login_record(c, &uid))
        .await
    {
        Ok(Some(r)) => r,
        Ok(None) => return ApiError::from(users::not_found(&actor.user_id)).into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some(phc) = record.password_hash else {
        return ApiError::new(
            ErrorCode::FailedPrecondition,
            "this user has no password; a superadmin sets one with POST /v1/users/{id}/password",
        )
        .into_response();
    };
    if !passwords::verify_async(body.current_password.clone(), Some(phc)).await {
        return session::failed(
            &state,
            &keys,
            "invalid_password",
            ApiError::new(
                ErrorCode::Forbidden,
                "current_password: does not match the current password",
            ),
        )
        .into_response();
    }
    state.throttle.succeeded(&keys[1]);
    if let Err(e) = passwords::check_policy("new_password", &body.new_password) {
        return ApiError::from(e).into_response();
    }
    if body.new_password == body.current_password {
        return ApiError::new(
            ErrorCode::PasswordTooWeak,
            "new_password: must differ from the current password",
        )
        .into_response();
    }
    let phc = match passwords::hash_async(body.new_password).await {
        Ok(p) => p,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let uid = actor.user_id.clone();
    if let Err(e) = state
        .store
        .write(move |tx| {
            users::set_password(tx, &uid, &phc, false)?;
            sessions::delete_for_user(tx, &uid)
        })
        .await
    {
        return ApiError::from(e).into_response();
    }
    let mut resp = Json(PasswordChanged {
        user_id: actor.user_id.clone(),
        password_change_required: false,
    })
    .into_response();
    if matches!(via, Via::Session { .. }) {
        match session::start_session(&state, actor.user_id.clone()).await {
            Ok(id) => {
                resp.headers_mut()
                    .insert(SET_COOKIE, session::cookie(&state, Some(&id)));
            }
            Err(e) => return e.into_response(),
        }
    }
    resp
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    #[schema(schema_with = schemas::user_id)]
    user_id: String,
    #[schema(schema_with = schemas::display_name)]
    display_name: String,
    /// `user` when absent.
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    #[schema(schema_with = schemas::password_or_null)]
    password: Option<String>,
    /// Whether the given password must be changed at first sign-in
    /// (default true).
    #[serde(default)]
    temporary: Option<bool>,
}

/// Create a user.
///
/// Without a password a temporary one is generated and answered this
/// once; it must be changed at the first sign-in.
#[utoipa::path(post, path = "/v1/users", tag = "users", operation_id = "createUser",
    request_body = CreateUserBody,
    responses((status = 201, description = "The user.", body = CreatedUser)))]
pub async fn create(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    SecretJson(body): SecretJson<CreateUserBody>,
) -> ApiResult<(StatusCode, Json<CreatedUser>)> {
    validate_new_user_id(&body.user_id)?;
    validate_display_name(&body.display_name)?;
    let (password, temporary, generated) = match body.password {
        Some(p) => {
            passwords::check_policy("password", &p)?;
            (p, body.temporary.unwrap_or(true), false)
        }
        None => (passwords::temporary(), true, true),
    };
    let phc = passwords::hash_async(password.clone()).await?;
    let role = body.role.unwrap_or(Role::User);
    let (uid, name) = (body.user_id.clone(), body.display_name);
    let row = state
        .store
        .call(move |c| {
            write_tx(c, |tx| {
                users::create(tx, &uid, &name, role)?;
                users::set_password(tx, &uid, &phc, temporary)?;
                users::get(tx, &uid)
            })
        })
        .await?;
    tracing::info!(user = %row.user_id, role = row.role.as_str(), by = %actor.user_id, "user created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user: row.into(),
            temporary_password: generated.then_some(password),
        }),
    ))
}

/// List every user.
#[utoipa::path(get, path = "/v1/users", tag = "users", operation_id = "listUsers",
    responses((status = 200, description = "Every user, by id.", body = Vec<UserView>)))]
pub async fn list(State(state): State<Shared>) -> ApiResult<Json<Vec<UserView>>> {
    let rows = state.store.call(|c| users::list(c)).await?;
    Ok(Json(rows.into_iter().map(UserView::from).collect()))
}

/// One user: the caller themself, or anyone for a superadmin.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", operation_id = "getUser",
    params(("id" = String, Path, description = USER_ID)),
    responses((status = 200, description = "The user.", body = UserView)))]
pub async fn get(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<UserView>> {
    authz::may_manage_user(&actor, &id)?;
    let row = state.store.call(move |c| users::get(c, &id)).await?;
    Ok(Json(row.into()))
}

/// The fields to change; absent or null ones stay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    #[schema(schema_with = schemas::display_name_or_null)]
    display_name: Option<String>,
    role: Option<Role>,
    /// A disabled user cannot sign in or use tokens; disabling ends the
    /// user's sessions.
    disabled: Option<bool>,
}

/// Rename a user, change its role, or disable it.
///
/// Never takes the last active superadmin away.
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", operation_id = "updateUser",
    params(("id" = String, Path, description = USER_ID)),
    request_body = UpdateUserBody,
    responses((status = 200, description = "The user.", body = UserView)))]
pub async fn update(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateUserBody>,
) -> ApiResult<Json<UserView>> {
    if let Some(n) = &body.display_name {
        validate_display_name(n)?;
    }
    let row = state
        .store
        .call(move |c| {
            write_tx(c, |tx| {
                let row = users::update(
                    tx,
                    &id,
                    body.display_name.as_deref(),
                    body.role,
                    body.disabled,
                )?;
                if row.disabled {
                    sessions::delete_for_user(tx, &id)?;
                }
                Ok(row)
            })
        })
        .await?;
    Ok(Json(row.into()))
}

/// Remove a user with its grants, credentials, sessions and rules.
///
/// One transaction; then the rules are taken off their clients.
#[utoipa::path(delete, path = "/v1/users/{id}", tag = "users", operation_id = "removeUser",
    params(("id" = String, Path, description = USER_ID)),
    responses((status = 200, description = "Removed.", body = UserRemoved)))]
pub async fn remove(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<UserRemoved>> {
    let uid = id.clone();
    let removed = state
        .store
        .call(move |c| write_tx(c, |tx| users::remove(tx, &uid)))
        .await?;
    super::rules::retract(&state, &removed).await;
    tracing::info!(user = %id, rules = removed.len(), by = %actor.user_id, "user removed");
    Ok(Json(UserRemoved {
        user_id: id,
        removed_rules: removed.into_iter().map(|r| r.id).collect(),
    }))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    #[serde(default)]
    #[schema(schema_with = schemas::password_or_null)]
    password: Option<String>,
    /// Whether the given password must be changed at the next sign-in
    /// (default true; a generated one always must).
    #[serde(default)]
    temporary: Option<bool>,
}

/// Set a user's password and end the user's sessions.
///
/// Without a password one is generated (always temporary) and answered
/// this once.
#[utoipa::path(post, path = "/v1/users/{id}/password", tag = "users", operation_id = "resetUserPassword",
    params(("id" = String, Path, description = USER_ID)),
    request_body = ResetBody,
    responses((status = 200, description = "Set.", body = PasswordReset)))]
pub async fn reset_password(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
    SecretJson(body): SecretJson<ResetBody>,
) -> ApiResult<Json<PasswordReset>> {
    let (password, temporary, generated) = match body.password {
        Some(p) => {
            passwords::check_policy("password", &p)?;
            (p, body.temporary.unwrap_or(true), false)
        }
        None => {
            if body.temporary == Some(false) {
                return Err(DomainError::field(
                    ErrorCode::InvalidRequest,
                    "temporary",
                    "a generated password is always temporary; send a password to set a permanent one",
                )
                .into());
            }
            (passwords::temporary(), true, true)
        }
    };
    let phc = passwords::hash_async(password.clone()).await?;
    let uid = id.clone();
    let ended = state
        .store
        .call(move |c| {
            write_tx(c, |tx| {
                users::set_password(tx, &uid, &phc, temporary)?;
                sessions::delete_for_user(tx, &uid)
            })
        })
        .await?;
    tracing::info!(user = %id, sessions_ended = ended, by = %actor.user_id, "password reset");
    Ok(Json(PasswordReset {
        user_id: id,
        password_change_required: temporary,
        sessions_revoked: ended as u64,
        temporary_password: generated.then_some(password),
    }))
}
