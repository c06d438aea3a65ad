//! User routes: the caller's own record and password, and the superadmin's
//! user management. Removing a user takes its rules off their clients.

use super::auth::Via;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, SecretJson, SourceIp};
use super::session::{self, validate_display_name, validate_new_user_id};
use crate::authz;
use crate::passwords;
use crate::state::Shared;
use crate::store::users::{self, Actor, Role, UserRow};
use crate::store::{sessions, write_tx};
use crate::throttle::Key;
use crate::timefmt::rfc3339;
use axum::extract::{Path, State};
use axum::http::header::SET_COOKIE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use portunus_domain::{DomainError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Serialize)]
pub struct UserView {
    #[serde(flatten)]
    pub user: UserRow,
    pub created_at: String,
}

impl From<UserRow> for UserView {
    fn from(user: UserRow) -> Self {
        UserView {
            created_at: rfc3339(user.created_at),
            user,
        }
    }
}

pub async fn me(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Extension(via): Extension<Via>,
) -> ApiResult<Json<serde_json::Value>> {
    let row = state
        .store
        .call(move |c| users::get(c, &actor.user_id))
        .await?;
    let mut v = serde_json::to_value(UserView::from(row))
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    v["authenticated_by"] = json!(via.as_str());
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordBody {
    current_password: String,
    new_password: String,
}

/// Changes the caller's password after checking the current one. Ends
/// every session of the user; a cookie caller gets a fresh one.
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
    let mut resp = Json(json!({ "user_id": actor.user_id, "password_change_required": false }))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    user_id: String,
    display_name: String,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    temporary: Option<bool>,
}

/// Creates a user. Without a password a temporary one is generated and
/// answered this once; it must be changed at the first login.
pub async fn create(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    SecretJson(body): SecretJson<CreateBody>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    authz::require_superadmin(&actor)?;
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
    let mut v = serde_json::to_value(UserView::from(row))
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    if generated {
        v["temporary_password"] = json!(password);
    }
    Ok((StatusCode::CREATED, Json(v)))
}

pub async fn list(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
) -> ApiResult<Json<Vec<UserView>>> {
    authz::require_superadmin(&actor)?;
    let rows = state.store.call(|c| users::list(c)).await?;
    Ok(Json(rows.into_iter().map(UserView::from).collect()))
}

pub async fn get(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<Json<UserView>> {
    authz::may_manage_user(&actor, &id)?;
    let row = state.store.call(move |c| users::get(c, &id)).await?;
    Ok(Json(row.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    display_name: Option<String>,
    role: Option<Role>,
    disabled: Option<bool>,
}

/// Renames, changes the role of, or disables a user; never the last
/// active superadmin away.
pub async fn update(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> ApiResult<Json<UserView>> {
    authz::require_superadmin(&actor)?;
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

/// Removes a user with its grants, credentials, sessions and rules, in one
/// transaction; then takes the rules off their clients.
pub async fn remove(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    authz::require_superadmin(&actor)?;
    let uid = id.clone();
    let removed = state
        .store
        .call(move |c| write_tx(c, |tx| users::remove(tx, &uid)))
        .await?;
    super::rules::retract(&state, &removed).await;
    tracing::info!(user = %id, rules = removed.len(), by = %actor.user_id, "user removed");
    Ok(Json(json!({
        "user_id": id,
        "removed_rules": removed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    temporary: Option<bool>,
}

/// A superadmin sets a user's password and ends the user's sessions.
/// Without a password one is generated (always temporary) and answered
/// this once.
pub async fn reset_password(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    SecretJson(body): SecretJson<ResetBody>,
) -> ApiResult<Json<serde_json::Value>> {
    authz::require_superadmin(&actor)?;
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
    let mut v =
        json!({ "user_id": id, "password_change_required": temporary, "sessions_revoked": ended });
    if generated {
        v["temporary_password"] = json!(password);
    }
    Ok(Json(v))
}
