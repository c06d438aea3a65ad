//! Reading rules: the list and one rule, each seen through the caller's
//! rights and marked where a quota has cut its owner off.

use super::error::ApiResult;
use super::extract::{ApiPath, ApiQuery};
use super::rules::RULE_ID;
use super::views::RuleView;
use crate::authz;
use crate::state::Shared;
use crate::store::clients;
use crate::store::rules::{self, RuleRow};
use crate::store::users::Actor;
use axum::extract::State;
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only the rules of this client (a name or id).
    client: Option<String>,
    /// Only the rules of this owner; a user sees only their own anyway.
    owner: Option<String>,
    /// Only the rules of this name (at most one per client).
    name: Option<String>,
}

/// List rules: every rule for a superadmin, a user's own otherwise.
#[utoipa::path(get, path = "/v1/rules", tag = "rules", operation_id = "listRules",
    params(ListQuery),
    responses((status = 200, description = "The rules, oldest first.", body = Vec<RuleView>)))]
pub async fn list(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<RuleView>>> {
    let owner = authz::visible_owner(&actor, q.owner.as_deref()).map(str::to_string);
    let (client, name) = (q.client, q.name);
    let superadmin = authz::require_superadmin(&actor).is_ok();
    let (rows, cut_off) = state
        .store
        .call(move |c| {
            let client_id = match client {
                Some(r) => match clients::find(c, &r)? {
                    Some(found) => Some(found.id),
                    // A user's filter on a client that does not exist
                    // answers like one they have no rules on.
                    None if !superadmin => return Ok((Vec::new(), Default::default())),
                    None => Some(clients::get(c, &r)?.id),
                },
                None => None,
            };
            let rows =
                rules::list_named(c, client_id.as_deref(), owner.as_deref(), name.as_deref())?;
            Ok((rows, crate::quota::cutoffs(c, crate::store::now())?))
        })
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| RuleView::from(r).with_quota(&cut_off))
            .collect(),
    ))
}

pub(super) async fn load_visible(state: &Shared, actor: &Actor, id: String) -> ApiResult<RuleRow> {
    let row = state.store.call(move |c| rules::get(c, &id)).await?;
    authz::may_touch_rule(actor, &row)?;
    Ok(row)
}

/// One rule.
#[utoipa::path(get, path = "/v1/rules/{id}", tag = "rules", operation_id = "getRule",
    params(("id" = String, Path, description = RULE_ID)),
    responses((status = 200, description = "The rule.", body = RuleView)))]
pub async fn get(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<RuleView>> {
    let row = load_visible(&state, &actor, id).await?;
    let cut_off = state
        .store
        .call(|c| crate::quota::cutoffs(c, crate::store::now()))
        .await?;
    Ok(Json(RuleView::from(row).with_quota(&cut_off)))
}
