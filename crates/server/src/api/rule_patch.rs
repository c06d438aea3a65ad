//! `PATCH /v1/rules/{id}`: switch a rule off or on, and name or annotate
//! it. A switched-off rule stays in the store with its id, name, caps and
//! last counters; only its client forgets it.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::rule_reads::load_visible;
use super::rules::{activation_error, label_of, send_remove, AckQuery, RULE_ID};
use super::views::RuleView;
use crate::control::registry::Outcome;
use crate::state::Shared;
use crate::store::rules::{self, RuleRow};
use crate::store::users::Actor;
use crate::store::write_tx;
use axum::extract::State;
use axum::{Extension, Json};
use portunus_proto::pb::{self, server_message};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

/// The fields to change; absent ones stay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "enabled": false, "note": "off until the backend moves" }))]
pub struct PatchRuleBody {
    /// False takes the rule off its client (its connections drain as on a
    /// removal); true sends it again, bound all or nothing as on a push.
    enabled: Option<bool>,
    /// A new name; null removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = super::schemas::rule_name_or_null)]
    name: Option<Option<String>>,
    /// A new note; null or empty removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = super::schemas::rule_note_or_null)]
    note: Option<Option<String>>,
}

/// Tells a field given as null (`Some(None)`) from one left out (`None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Switch a rule off or on, or change its name or note.
///
/// Disabling takes the rule off its client, which drains it like a
/// removal; the rule keeps its id, name, caps, counters and listen ports
/// (no other rule on the client may take them). Enabling sends it again
/// and answers like a push: `active`, `pending` when the client did not
/// answer within the ack budget (or is offline: it gets the rule when it
/// reconnects), or `409 port_in_use` / `activation_failed`, in which case
/// the rule is disabled again. A name or note never reaches the client.
#[utoipa::path(patch, path = "/v1/rules/{id}", tag = "rules", operation_id = "patchRule",
    params(("id" = String, Path, description = RULE_ID), AckQuery),
    request_body = PatchRuleBody,
    responses((status = 200, description = "The rule.", body = RuleView)))]
pub async fn patch(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<AckQuery>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PatchRuleBody>,
) -> ApiResult<Json<RuleView>> {
    let row = load_visible(&state, &actor, id).await?;
    if body.name.is_some() || body.note.is_some() {
        let name = body.name.unwrap_or_else(|| row.label.name.clone());
        let note = body.note.unwrap_or_else(|| row.label.note.clone());
        let label = label_of(name, note)?;
        let rid = row.id.clone();
        state
            .store
            .call(move |c| write_tx(c, |tx| rules::set_label(tx, &rid, &label)))
            .await?;
    }
    let row = match body.enabled {
        Some(false) if row.enabled => disable(&state, row, &q).await?,
        Some(true) if !row.enabled => enable(&state, row, &q).await?,
        _ => reload(&state, &row.id).await?,
    };
    Ok(Json(row.into()))
}

async fn reload(state: &Shared, id: &str) -> ApiResult<RuleRow> {
    let id = id.to_string();
    Ok(state.store.call(move |c| rules::get(c, &id)).await?)
}

async fn set_enabled(state: &Shared, id: &str, enabled: bool) -> ApiResult<()> {
    let rid = id.to_string();
    state
        .store
        .call(move |c| write_tx(c, |tx| rules::set_enabled(tx, &rid, enabled)))
        .await?;
    Ok(())
}

/// Stored first, so a reconnect in between does not send the rule again;
/// then the client is told and its drain awaited within the ack budget.
async fn disable(state: &Shared, row: RuleRow, q: &AckQuery) -> ApiResult<RuleRow> {
    set_enabled(state, &row.id, false).await?;
    let waiter = state.registry.expect_outcome(&row.id);
    if send_remove(state, &row.client_id, &row.id).await {
        let _ = tokio::time::timeout(q.budget(), waiter).await;
    }
    state.registry.forget_outcome(&row.id);
    reload(state, &row.id).await
}

async fn enable(state: &Shared, row: RuleRow, q: &AckQuery) -> ApiResult<RuleRow> {
    set_enabled(state, &row.id, true).await?;
    state.stats.carry_over(&row.id);
    let waiter = state.registry.expect_outcome(&row.id);
    let push = pb::ServerMessage {
        kind: Some(server_message::Kind::Push(portunus_proto::rule_to_pb(
            &row.id, &row.owner, &row.spec,
        ))),
    };
    if !state.registry.send(&row.client_id, push).await {
        // Stored as enabled; the client gets it with its full set when it
        // reconnects.
        state.registry.forget_outcome(&row.id);
        return reload(state, &row.id).await;
    }
    match tokio::time::timeout(q.budget(), waiter).await {
        Ok(Ok(Outcome::Failed { reason, detail })) => {
            // All or nothing, as on a push: a rule that cannot bind goes
            // back to how the operator left it.
            set_enabled(state, &row.id, false).await?;
            send_remove(state, &row.client_id, &row.id).await;
            let err: ApiError = activation_error(&row.client_name, &reason, &detail).into();
            Err(err)
        }
        Ok(Ok(Outcome::Activated)) => reload(state, &row.id).await,
        _ => {
            state.registry.forget_outcome(&row.id);
            tracing::warn!(rule = %row.id, client = %row.client_name, "no activation outcome within the ack budget; rule left pending");
            reload(state, &row.id).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_null_and_given_fields_differ() {
        let b: PatchRuleBody = serde_json::from_str(r#"{"name": null}"#).unwrap();
        assert_eq!((b.name, b.note, b.enabled), (Some(None), None, None));
        let b: PatchRuleBody = serde_json::from_str(r#"{"note": "x", "enabled": true}"#).unwrap();
        assert_eq!(
            (b.name, b.note, b.enabled),
            (None, Some(Some("x".into())), Some(true))
        );
        assert!(serde_json::from_str::<PatchRuleBody>(r#"{"state": "x"}"#).is_err());
    }
}
