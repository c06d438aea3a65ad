//! Credential routes: a user's API bearer tokens. Issue and rotate answer
//! the token this once; only its hash is kept. Users manage their own;
//! superadmins anyone's.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath};
use crate::authz;
use crate::secrets::{hash_token, new_token};
use crate::state::Shared;
use crate::store::credentials::{self, CredentialRow};
use crate::store::users::Actor;
use crate::timefmt::rfc3339;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use portunus_domain::{DomainError, ErrorCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

const USER_ID: &str = "The credential's user id";
const CREDENTIAL_ID: &str = "A credential id";

/// An API credential, without its token.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialView {
    pub credential_id: String,
    pub user_id: String,
    pub label: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub rotated_at: Option<String>,
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    pub revoked: bool,
}

impl From<CredentialRow> for CredentialView {
    fn from(c: CredentialRow) -> Self {
        CredentialView {
            revoked: c.revoked_at.is_some(),
            credential_id: c.id,
            user_id: c.user_id,
            label: c.label,
            created_at: rfc3339(c.created_at),
            rotated_at: c.rotated_at.map(rfc3339),
            revoked_at: c.revoked_at.map(rfc3339),
        }
    }
}

/// The one answer that carries a token.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedView {
    pub credential_id: String,
    #[schema(example = "ci deploy")]
    pub label: String,
    /// The bearer token, shown this once; only its hash is kept.
    pub token: String,
}

fn validate_label(label: &str) -> Result<(), DomainError> {
    let n = label.chars().count();
    if (1..=64).contains(&n) && !label.chars().any(char::is_control) && !label.trim().is_empty() {
        Ok(())
    } else {
        Err(DomainError::field(
            ErrorCode::InvalidRequest,
            "label",
            "must be 1-64 characters without control characters",
        ))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    #[schema(schema_with = super::schemas::label)]
    label: String,
}

/// Issue an API token for a user (yourself, or anyone for a superadmin).
#[utoipa::path(post, path = "/v1/users/{id}/credentials", tag = "credentials", operation_id = "issueCredential",
    params(("id" = String, Path, description = USER_ID)),
    request_body = IssueBody,
    responses((status = 201, description = "The credential and its token, shown this once.", body = IssuedView)))]
pub async fn issue(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(body): ApiJson<IssueBody>,
) -> ApiResult<(StatusCode, Json<IssuedView>)> {
    authz::may_manage_user(&actor, &user_id)?;
    validate_label(&body.label)?;
    let token = new_token();
    let hash = hash_token(&token);
    let row = state
        .store
        .write(move |tx| credentials::issue(tx, &user_id, &body.label, &hash))
        .await?;
    tracing::info!(user = %row.user_id, credential = %row.id, by = %actor.user_id, "credential issued");
    Ok((
        StatusCode::CREATED,
        Json(IssuedView {
            credential_id: row.id,
            label: row.label,
            token,
        }),
    ))
}

/// A user's credentials, revoked ones included, without tokens.
#[utoipa::path(get, path = "/v1/users/{id}/credentials", tag = "credentials", operation_id = "listCredentials",
    params(("id" = String, Path, description = USER_ID)),
    responses((status = 200, description = "The credentials, oldest first.", body = Vec<CredentialView>)))]
pub async fn list(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiPath(user_id): ApiPath<String>,
) -> ApiResult<Json<Vec<CredentialView>>> {
    authz::may_manage_user(&actor, &user_id)?;
    let rows = state
        .store
        .call(move |c| credentials::list(c, &user_id))
        .await?;
    Ok(Json(rows.into_iter().map(CredentialView::from).collect()))
}

/// Revoke a credential; its token answers 401 from now on.
#[utoipa::path(delete, path = "/v1/users/{id}/credentials/{cid}", tag = "credentials", operation_id = "revokeCredential",
    params(("id" = String, Path, description = USER_ID), ("cid" = String, Path, description = CREDENTIAL_ID)),
    responses((status = 200, description = "The revoked credential.", body = CredentialView)))]
pub async fn revoke(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiPath((user_id, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<CredentialView>> {
    authz::may_manage_user(&actor, &user_id)?;
    let row = state
        .store
        .write(move |tx| credentials::revoke(tx, &user_id, &id))
        .await?;
    tracing::info!(user = %row.user_id, credential = %row.id, by = %actor.user_id, "credential revoked");
    Ok(Json(row.into()))
}

/// Replace a credential's token.
///
/// One statement: the old token is refused from the moment this answers.
#[utoipa::path(post, path = "/v1/users/{id}/credentials/{cid}/rotate", tag = "credentials", operation_id = "rotateCredential",
    params(("id" = String, Path, description = USER_ID), ("cid" = String, Path, description = CREDENTIAL_ID)),
    responses((status = 200, description = "The new token, shown this once.", body = IssuedView)))]
pub async fn rotate(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiPath((user_id, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<IssuedView>> {
    authz::may_manage_user(&actor, &user_id)?;
    let token = new_token();
    let hash = hash_token(&token);
    let row = state
        .store
        .write(move |tx| credentials::rotate(tx, &user_id, &id, &hash))
        .await
        .map_err(ApiError::from)?;
    tracing::info!(user = %row.user_id, credential = %row.id, by = %actor.user_id, "credential rotated");
    Ok(Json(IssuedView {
        credential_id: row.id,
        label: row.label,
        token,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels() {
        assert!(super::validate_label("ci deploy").is_ok());
        for bad in ["", " ", "a\tb", &"x".repeat(65)] {
            assert!(super::validate_label(bad).is_err(), "{bad:?}");
        }
    }
}
