//! Per-owner rate-limit envelopes on a client (superadmin only). A change
//! is stored, then pushed to the client if it is connected; a client that
//! is not receives every envelope when it connects.

use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use crate::authz::require_superadmin;
use crate::state::Shared;
use crate::store::users::Actor;
use crate::store::{clients, owner_caps, users, write_tx};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use portunus_domain::rule::RateLimit;
use portunus_domain::{DomainError, ErrorCode};
use portunus_proto::pb::{self, server_message};
use serde_json::{json, Value};

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

pub async fn list_owners(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    require_superadmin(&actor)?;
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
    let rows: Vec<Value> = names
        .into_iter()
        .map(|owner| {
            let rules = owners
                .iter()
                .find(|(o, _)| o == owner)
                .map_or(0, |(_, n)| *n);
            let limit = envelopes.iter().find(|(o, _)| o == owner).map(|(_, l)| l);
            json!({ "client": client.name, "owner": owner, "rules": rules, "rate_limit": limit })
        })
        .collect();
    Ok(Json(Value::Array(rows)))
}

pub async fn get(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path((id, owner)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    require_superadmin(&actor)?;
    let (client, limit) = state
        .store
        .call(move |c| {
            let client = clients::get(c, &id)?;
            let limit = owner_caps::get(c, &client.id, &owner)?;
            Ok((client, limit.map(|l| (owner, l))))
        })
        .await?;
    match limit {
        Some((owner, l)) => Ok(Json(
            json!({ "client": client.name, "owner": owner, "rate_limit": l }),
        )),
        None => Err(ApiError::new(
            ErrorCode::NotFound,
            "no envelope for this owner on this client",
        )),
    }
}

pub async fn put(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path((id, owner)): Path<(String, String)>,
    ApiJson(limit): ApiJson<RateLimit>,
) -> ApiResult<Json<Value>> {
    require_superadmin(&actor)?;
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
    Ok(Json(
        json!({ "client": client.name, "owner": owner, "rate_limit": limit }),
    ))
}

pub async fn delete(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path((id, owner)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_superadmin(&actor)?;
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
