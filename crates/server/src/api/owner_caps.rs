//! Per-owner rate-limit envelopes on a client (superadmin only). A change
//! is stored, then pushed to the client if it is connected; a client that
//! is not receives every envelope when it connects.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath};
use crate::state::Shared;
use crate::store::{clients, owner_caps, users, write_tx};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use portunus_domain::rule::RateLimit;
use portunus_domain::{DomainError, ErrorCode};
use portunus_proto::pb::{self, server_message};
use serde::Serialize;
use utoipa::ToSchema;

const CLIENT_ID: &str = "A client id or name";
const OWNER: &str = "The owner's user id";

/// An owner with rules or an envelope on a client.
#[derive(Debug, Serialize, ToSchema)]
pub struct OwnerView {
    /// The client's name.
    pub client: String,
    pub owner: String,
    /// How many of the owner's rules live on the client.
    pub rules: u64,
    /// The owner's envelope on this client; null when none.
    pub rate_limit: Option<RateLimit>,
}

/// An owner's envelope on a client: caps on the sum of the owner's rules.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvelopeView {
    pub client: String,
    pub owner: String,
    pub rate_limit: RateLimit,
}

/// The message that tells a client an owner's envelope (None: removed).
pub fn envelope_message(owner: &str, limit: Option<&RateLimit>) -> pb::ServerMessage {
    pb::ServerMessage {
        kind: Some(server_message::Kind::OwnerRateLimit(pb::OwnerRateLimit {
            owner: owner.to_string(),
            rate_limit: limit.map(portunus_proto::rate_limit_to_pb),
        })),
    }
}

/// An envelope must cap something, and each cap must be valid.
pub fn validate_envelope(limit: &RateLimit) -> Result<(), DomainError> {
    if limit.is_empty() {
        return Err(DomainError::new(
            ErrorCode::RateLimitNoCapsProvided,
            "rate_limit: an owner envelope needs at least one cap",
        ));
    }
    limit.validate()
}

/// The owners with rules or an envelope on a client.
#[utoipa::path(get, path = "/v1/clients/{id}/owners", tag = "owner caps", operation_id = "listOwners",
    params(("id" = String, Path, description = CLIENT_ID)),
    responses((status = 200, description = "The owners, by user id.", body = Vec<OwnerView>)))]
pub async fn list_owners(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<OwnerView>>> {
    let (client, owners, envelopes) = state
        .store
        .call(move |c| {
            let client = clients::get(c, &id)?;
            let owners = owner_caps::owners_with_rules(c, &client.id)?;
            let envelopes = owner_caps::list(c, &client.id)?;
            Ok((client, owners, envelopes))
        })
        .await?;
    let mut names: Vec<&String> = owners
        .iter()
        .map(|(o, _)| o)
        .chain(envelopes.iter().map(|(o, _)| o))
        .collect();
    names.sort();
    names.dedup();
    let rows = names
        .into_iter()
        .map(|owner| OwnerView {
            client: client.name.clone(),
            owner: owner.clone(),
            rules: owners
                .iter()
                .find(|(o, _)| o == owner)
                .map_or(0, |(_, n)| *n),
            rate_limit: envelopes.iter().find(|(o, _)| o == owner).map(|(_, l)| *l),
        })
        .collect();
    Ok(Json(rows))
}

/// An owner's envelope on a client.
#[utoipa::path(get, path = "/v1/clients/{id}/owners/{owner}/rate-limit", tag = "owner caps", operation_id = "getOwnerCap",
    params(("id" = String, Path, description = CLIENT_ID), ("owner" = String, Path, description = OWNER)),
    responses((status = 200, description = "The envelope.", body = EnvelopeView)))]
pub async fn get(
    State(state): State<Shared>,
    ApiPath((id, owner)): ApiPath<(String, String)>,
) -> ApiResult<Json<EnvelopeView>> {
    let (client, limit) = state
        .store
        .call(move |c| {
            let client = clients::get(c, &id)?;
            let limit = owner_caps::get(c, &client.id, &owner)?;
            Ok((client, limit.map(|l| (owner, l))))
        })
        .await?;
    match limit {
        Some((owner, rate_limit)) => Ok(Json(EnvelopeView {
            client: client.name,
            owner,
            rate_limit,
        })),
        None => Err(ApiError::new(
            ErrorCode::NotFound,
            "no envelope for this owner on this client",
        )),
    }
}

/// Set an owner's envelope on a client and push it if the client is
/// connected.
#[utoipa::path(put, path = "/v1/clients/{id}/owners/{owner}/rate-limit", tag = "owner caps", operation_id = "setOwnerCap",
    params(("id" = String, Path, description = CLIENT_ID), ("owner" = String, Path, description = OWNER)),
    request_body(content = RateLimit, description = "At least one cap."),
    responses((status = 200, description = "The envelope.", body = EnvelopeView)))]
pub async fn put(
    State(state): State<Shared>,
    ApiPath((id, owner)): ApiPath<(String, String)>,
    ApiJson(limit): ApiJson<RateLimit>,
) -> ApiResult<Json<EnvelopeView>> {
    validate_envelope(&limit)?;
    let o = owner.clone();
    let client = state
        .store
        .call(move |c| {
            write_tx(c, |tx| {
                let client = clients::get(tx, &id)?;
                if !users::exists(tx, &o)? {
                    return Err(DomainError::new(
                        ErrorCode::UserNotFound,
                        format!("no user {o:?}"),
                    )
                    .into());
                }
                owner_caps::set(tx, &client.id, &o, &limit)?;
                Ok(client)
            })
        })
        .await?;
    state
        .registry
        .send(&client.id, envelope_message(&owner, Some(&limit)))
        .await;
    Ok(Json(EnvelopeView {
        client: client.name,
        owner,
        rate_limit: limit,
    }))
}

/// Remove an owner's envelope on a client.
#[utoipa::path(delete, path = "/v1/clients/{id}/owners/{owner}/rate-limit", tag = "owner caps", operation_id = "removeOwnerCap",
    params(("id" = String, Path, description = CLIENT_ID), ("owner" = String, Path, description = OWNER)),
    responses((status = 204, description = "Removed.")))]
pub async fn delete(
    State(state): State<Shared>,
    ApiPath((id, owner)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let o = owner.clone();
    let (client, existed) = state
        .store
        .call(move |c| {
            write_tx(c, |tx| {
                let client = clients::get(tx, &id)?;
                let existed = owner_caps::delete(tx, &client.id, &o)?;
                Ok((client, existed))
            })
        })
        .await?;
    if !existed {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "no envelope for this owner on this client",
        ));
    }
    state
        .registry
        .send(&client.id, envelope_message(&owner, None))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_need_a_valid_cap() {
        let code = |l: RateLimit| validate_envelope(&l).err().map(|e| e.code);
        assert_eq!(
            code(RateLimit::default()),
            Some(ErrorCode::RateLimitNoCapsProvided)
        );
        assert_eq!(
            code(RateLimit {
                bandwidth_in_bps: Some(0),
                ..Default::default()
            }),
            Some(ErrorCode::RateLimitCapZero)
        );
        assert_eq!(
            code(RateLimit {
                concurrent_connections: Some(10),
                ..Default::default()
            }),
            None
        );
    }
}
