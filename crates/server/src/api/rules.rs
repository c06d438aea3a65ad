//! Rule routes that write (reading one or many in `rule_reads.rs`, stats in
//! `rule_stats.rs`, switching off and naming in `rule_patch.rs`). A push is stored as pending, sent down the client's stream
//! and answered once the client reports the outcome (or the ack budget runs
//! out, leaving it pending).

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::push_key;
use super::rule_reads::load_visible;
use super::views::RuleView;
use crate::authz;
use crate::control::registry::Outcome;
use crate::state::Shared;
use crate::store::push_keys::{self, Seen};
use crate::store::rules::{self, Label, RuleRow, RuleState};
use crate::store::users::Actor;
use crate::store::{clients, grants, write_tx};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use portunus_domain::rule::RuleSpec;
use portunus_domain::{DomainError, ErrorCode};
use portunus_proto::pb::{self, server_message};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// The path parameter every rule route takes.
pub(super) const RULE_ID: &str = "A rule id";

pub const DEFAULT_ACK_TIMEOUT_MS: u64 = 2000;
const MAX_ACK_TIMEOUT_MS: u64 = 60_000;

#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AckQuery {
    /// How long to wait for the client's outcome, in milliseconds
    /// (default 2000; values above 60000 wait 60000).
    #[param(minimum = 0, maximum = 18_446_744_073_709_551_615_u64)]
    ack_timeout_ms: Option<u64>,
}

impl AckQuery {
    pub(super) fn budget(&self) -> Duration {
        Duration::from_millis(
            self.ack_timeout_ms
                .unwrap_or(DEFAULT_ACK_TIMEOUT_MS)
                .min(MAX_ACK_TIMEOUT_MS),
        )
    }
}

/// The body of `POST /v1/rules`: the client, then the rule's specification.
/// The command line serializes it; the server reads it with `parse_body`,
/// because serde cannot refuse unknown fields next to a flattened struct.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "client": "edge-01",
    "listen_port": 20080,
    "protocol": "tcp",
    "targets": [{ "host": "127.0.0.1", "port": 9, "priority": 1 }],
    "rate_limit": { "bandwidth_in_bps": 1000000, "concurrent_connections": 100 }
}))]
pub struct PushRuleBody {
    /// The client's name or id.
    #[schema(example = "edge-01")]
    pub client: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = super::schemas::rule_name_or_null)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = super::schemas::rule_note_or_null)]
    pub note: Option<String>,
    #[serde(flatten)]
    pub spec: RuleSpec,
}

/// Removes an optional string field; null means none.
fn take_text(
    obj: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<Option<String>, DomainError> {
    match obj.remove(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(DomainError::field(
            ErrorCode::InvalidRequest,
            key,
            "expected a string or null",
        )),
    }
}

/// A rule's name and note as given, validated; an empty note is none.
pub fn label_of(name: Option<String>, note: Option<String>) -> Result<Label, DomainError> {
    if let Some(n) = &name {
        portunus_domain::names::validate_rule_name(n)?;
    }
    let note = note.filter(|n| !n.is_empty());
    if let Some(n) = &note {
        portunus_domain::names::validate_rule_note(n)?;
    }
    Ok(Label { name, note })
}

/// Splits `{"client": …, "name", "note", <RuleSpec fields>}`; the spec
/// rejects unknown keys.
fn parse_body(mut body: serde_json::Value) -> Result<PushRuleBody, DomainError> {
    let obj = body.as_object_mut().ok_or_else(|| {
        DomainError::new(
            ErrorCode::InvalidRequest,
            "request body: expected a JSON object",
        )
    })?;
    let client = match obj.remove("client") {
        Some(serde_json::Value::String(s)) => s,
        _ => {
            return Err(DomainError::field(
                ErrorCode::InvalidRequest,
                "client",
                "a client name or id is required",
            ))
        }
    };
    let name = take_text(obj, "name")?;
    let note = take_text(obj, "note")?;
    let spec = serde_path_to_error::deserialize(super::strict::Strict(body))
        .map_err(|e| DomainError::new(ErrorCode::InvalidRequest, format!("request body: {e}")))?;
    Ok(PushRuleBody {
        client,
        name,
        note,
        spec,
    })
}

fn key_reused() -> DomainError {
    DomainError::new(
        ErrorCode::IdempotencyKeyReused,
        "Idempotency-Key: this key already named a different push; use a new key",
    )
}

/// Which error a failed activation becomes.
pub fn activation_error(client: &str, reason: &str, detail: &str) -> DomainError {
    let code = match reason {
        "port_in_use" => ErrorCode::PortInUse,
        _ => ErrorCode::ActivationFailed,
    };
    DomainError::new(
        code,
        format!("client {client:?} could not activate the rule: {reason}: {detail}"),
    )
}

/// Push a rule to a client and wait for its outcome.
///
/// The rule is stored as `pending`, sent down the client's stream, and
/// answered once the client reports it active (201, `active`) or failed
/// (409 `port_in_use` or `activation_failed`, and the rule is deleted).
/// When the ack budget runs out first it answers 201 with the rule still
/// `pending`. A push sent again with the same `Idempotency-Key` (by the
/// same user) answers 200 with the rule the first one stored, in its
/// current state, and pushes nothing.
#[utoipa::path(post, path = "/v1/rules", tag = "rules", operation_id = "pushRule",
    params(AckQuery,
        ("Idempotency-Key" = Option<String>, Header,
            description = "Makes a retry safe: 1-128 visible ASCII characters naming this push.")),
    request_body = PushRuleBody,
    responses(
        (status = 201, description = "The rule, `active` or still `pending`.", body = RuleView),
        (status = 200, description = "A retry: the rule its key stored.", body = RuleView)))]
pub async fn create(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<AckQuery>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<RuleView>)> {
    let key = push_key::from_headers(&headers)?;
    let PushRuleBody {
        client: client_ref,
        name,
        note,
        mut spec,
    } = parse_body(body)?;
    spec.normalize();
    spec.validate(&state.limits())?;
    // A retry must repeat the label too.
    let hash = push_key::request_hash(&format!("{client_ref}\n{name:?}\n{note:?}"), &spec);
    let label = label_of(name, note)?;
    let user = actor.clone();
    let given = client_ref.clone();
    let (owner, k, h) = (actor.user_id.clone(), key.clone(), hash.clone());
    let (client, grants, seen) = state
        .store
        .call(move |c| {
            let seen = match &k {
                Some(k) => push_keys::lookup(c, &owner, k, &h)?,
                None => Seen::New,
            };
            Ok((
                clients::find(c, &client_ref)?,
                grants::for_actor(c, &user)?,
                seen,
            ))
        })
        .await?;
    // A replay is answered before anything that may have changed since the
    // first attempt (the client's connection above all) is looked at.
    match seen {
        Seen::Replay(row) => return Ok((StatusCode::OK, Json((*row).into()))),
        Seen::Mismatch => return Err(key_reused().into()),
        Seen::New => {}
    }
    // Authorisation before existence: a user learns nothing about clients
    // outside their grants, not even whether one exists, and the answer
    // names only what they gave.
    let client = match client {
        Some(client) => {
            authz::may_push(&actor, (&client.id, &given), &spec, &grants)?;
            client
        }
        None => {
            authz::may_push(&actor, ("", &given), &spec, &[])?;
            return Err(clients::not_found(&given).into());
        }
    };
    if state.registry.info(&client.id).is_none() {
        return Err(ApiError::new(
            ErrorCode::ClientNotConnected,
            format!("client {:?} is not connected", client.name),
        ));
    }
    let (cid, cname) = (client.id.clone(), client.name.clone());
    let stored = state
        .store
        .call(move |c| {
            write_tx(c, |tx| {
                // Checked again inside the transaction, so a grant revoked
                // since the check above cannot let the rule in, and a
                // concurrent retry with the same key cannot store twice.
                let grants = grants::for_actor(tx, &actor)?;
                authz::may_push(&actor, (&cid, &cname), &spec, &grants)?;
                if let Some(k) = &key {
                    match push_keys::lookup(tx, &actor.user_id, k, &hash)? {
                        Seen::New => {}
                        Seen::Replay(row) => return Ok(Err(*row)),
                        Seen::Mismatch => return Err(key_reused().into()),
                    }
                }
                let row = rules::insert(tx, &cid, &actor.user_id, &spec, &label)?;
                if let Some(k) = &key {
                    push_keys::record(tx, &actor.user_id, k, &hash, &row.id)?;
                }
                Ok(Ok(row))
            })
        })
        .await?;
    // `Err`: a concurrent retry stored it first.
    let row = match stored {
        Ok(row) => row,
        Err(earlier) => return Ok((StatusCode::OK, Json(earlier.into()))),
    };
    let waiter = state.registry.expect_outcome(&row.id);
    let push = pb::ServerMessage {
        kind: Some(server_message::Kind::Push(portunus_proto::rule_to_pb(
            &row.id, &row.owner, &row.spec,
        ))),
    };
    if !state.registry.send(&client.id, push).await {
        state.registry.forget_outcome(&row.id);
        delete_row(&state, &row.id).await;
        return Err(ApiError::new(
            ErrorCode::ClientNotConnected,
            format!("client {:?} disconnected", client.name),
        ));
    }
    match tokio::time::timeout(q.budget(), waiter).await {
        Ok(Ok(Outcome::Activated)) => {
            let mut row = row;
            row.state = RuleState::Active;
            Ok((StatusCode::CREATED, Json(row.into())))
        }
        Ok(Ok(Outcome::Failed { reason, detail })) => {
            // A rule that never came up is not kept: the operator fixes the
            // cause and pushes again, without a failed leftover.
            delete_row(&state, &row.id).await;
            send_remove(&state, &client.id, &row.id).await;
            Err(activation_error(&client.name, &reason, &detail).into())
        }
        Ok(Ok(Outcome::Removed)) | Ok(Err(_)) | Err(_) => {
            state.registry.forget_outcome(&row.id);
            tracing::warn!(rule = %row.id, client = %client.name, "no activation outcome within the ack budget; rule left pending");
            Ok((StatusCode::CREATED, Json(row.into())))
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "rate_limit": { "bandwidth_in_bps": 500000, "bandwidth_in_burst": 1000000 } }))]
pub struct RateLimitBody {
    /// The new caps; null or absent removes every cap.
    rate_limit: Option<portunus_domain::rule::RateLimit>,
}

/// Change a rule's caps, nothing else.
///
/// The client applies them to new connections without restarting the
/// rule. An unconnected client gets them with its full rule set when it
/// reconnects; the answer then says `pending`. A disabled rule keeps them
/// for when it is enabled.
#[utoipa::path(put, path = "/v1/rules/{id}", tag = "rules", operation_id = "updateRuleCaps",
    params(("id" = String, Path, description = RULE_ID), AckQuery),
    request_body = RateLimitBody,
    responses((status = 200, description = "The rule with its new caps.", body = RuleView)))]
pub async fn update(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<AckQuery>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RateLimitBody>,
) -> ApiResult<Json<RuleView>> {
    let row = load_visible(&state, &actor, id).await?;
    let mut spec = row.spec.clone();
    spec.rate_limit = body.rate_limit;
    spec.normalize();
    spec.validate(&state.limits())?;
    let (rid, new_spec) = (row.id.clone(), spec.clone());
    state
        .store
        .call(move |c| write_tx(c, |tx| rules::set_spec(tx, &rid, &new_spec)))
        .await?;
    if !row.enabled {
        // Kept for when it is switched on; a push now would start it.
        return Ok(Json(RuleRow { spec, ..row }.into()));
    }
    let mut row = RuleRow {
        spec,
        state: RuleState::Pending,
        reason: None,
        ..row
    };
    let waiter = state.registry.expect_outcome(&row.id);
    let push = pb::ServerMessage {
        kind: Some(server_message::Kind::Push(portunus_proto::rule_to_pb(
            &row.id, &row.owner, &row.spec,
        ))),
    };
    if !state.registry.send(&row.client_id, push).await {
        // Stored; the client picks it up with the full set on reconnect.
        state.registry.forget_outcome(&row.id);
        return Ok(Json(row.into()));
    }
    match tokio::time::timeout(q.budget(), waiter).await {
        Ok(Ok(Outcome::Activated)) => row.state = RuleState::Active,
        Ok(Ok(Outcome::Failed { reason, .. })) => {
            row.state = RuleState::Failed;
            row.reason = Some(reason);
        }
        _ => state.registry.forget_outcome(&row.id),
    }
    Ok(Json(row.into()))
}

pub(super) async fn delete_row(state: &Shared, id: &str) {
    let rid = id.to_string();
    if let Err(e) = state
        .store
        .call(move |c| write_tx(c, |tx| rules::delete(tx, &rid)))
        .await
    {
        tracing::warn!(error = %e, rule = %id, "cannot delete rule");
    }
    state.stats.forget(&state.metrics, id);
}

/// Takes rules that are already gone from the store off their clients:
/// forgets their stats and tells each connected client to drop them. A
/// client that is offline drops them when it reconnects and reconciles.
pub async fn retract(state: &Shared, removed: &[RuleRow]) {
    for row in removed {
        state.stats.forget(&state.metrics, &row.id);
        send_remove(state, &row.client_id, &row.id).await;
    }
}

pub(super) async fn send_remove(state: &Shared, client_id: &str, rule_id: &str) -> bool {
    let msg = pb::ServerMessage {
        kind: Some(server_message::Kind::Remove(pb::RemoveRule {
            rule_id: rule_id.to_string(),
        })),
    };
    state.registry.send(client_id, msg).await
}

/// What removing a rule answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleRemoved {
    pub rule_id: String,
    /// Always true: the rule is gone from the store.
    pub removed: bool,
    /// Whether the client confirmed it drained the rule within the ack
    /// budget; an offline client drops it when it reconnects.
    pub client_acknowledged: bool,
}

/// Remove a rule: delete it, then tell its client to drain it.
#[utoipa::path(delete, path = "/v1/rules/{id}", tag = "rules", operation_id = "removeRule",
    params(("id" = String, Path, description = RULE_ID), AckQuery),
    responses((status = 200, description = "Removed.", body = RuleRemoved)))]
pub async fn delete(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<AckQuery>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<RuleRemoved>> {
    let row = load_visible(&state, &actor, id).await?;
    // Deleted first so a reconnect in between cannot re-send it; then the
    // client is told, and its answer awaited within the ack budget.
    delete_row(&state, &row.id).await;
    let waiter = state.registry.expect_outcome(&row.id);
    let drained = if send_remove(&state, &row.client_id, &row.id).await {
        matches!(
            tokio::time::timeout(q.budget(), waiter).await,
            Ok(Ok(Outcome::Removed))
        )
    } else {
        false
    };
    state.registry.forget_outcome(&row.id);
    Ok(Json(RuleRemoved {
        rule_id: row.id,
        removed: true,
        client_acknowledged: drained,
    }))
}
