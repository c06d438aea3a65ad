//! Traffic quotas per (client, owner): set, read, list, delete, clear the
//! current period's usage. Writes are superadmin-only; anyone may list the
//! quotas that bind them. Every write re-evaluates the quotas at once, so a
//! cleared usage or a raised quota lets traffic through again without a
//! push.

use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::authz;
use crate::quota::period::{self, Reset};
use crate::quota::standing;
use crate::state::Shared;
use crate::store::quotas::{self, QuotaRow};
use crate::store::users::Actor;
use crate::store::{self, clients, users, write_tx, StoreError};
use crate::timefmt::rfc3339;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use portunus_domain::{DomainError, ErrorCode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

const CLIENT_ID: &str = "A client id or name";
const OWNER: &str = "The owner's user id";

/// A quota as `PUT` takes it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaSpec {
    /// Bytes (in plus out) the owner's rules on the client may move per
    /// period.
    #[schema(minimum = 1, example = 5_000_000_000_u64)]
    pub monthly_bytes: u64,
    /// Day of the month (1-28) a new period starts, 00:00 UTC; default 1.
    #[schema(minimum = 1, maximum = 28)]
    pub reset_day: Option<u8>,
    /// One period for the life of the quota, from when it was set.
    #[serde(default)]
    pub never_reset: bool,
    /// Last day (`YYYY-MM-DD`, UTC) the quota allows traffic; after it the
    /// owner's rules on the client are cut off.
    #[schema(example = "2026-12-31")]
    pub until: Option<String>,
}

/// A quota and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaView {
    /// The client's name.
    pub client: String,
    pub client_id: String,
    pub owner: String,
    pub monthly_bytes: u64,
    /// Bytes moved in the current period (since a clear-usage, if later).
    pub used_bytes: u64,
    pub remaining_bytes: u64,
    /// Null when the quota never resets.
    pub reset_day: Option<u8>,
    pub never_reset: bool,
    /// The last day traffic is allowed; null without an end date.
    pub until: Option<String>,
    #[schema(format = DateTime)]
    pub period_start: String,
    /// When the next period starts; null when it never does.
    #[schema(format = DateTime)]
    pub next_reset: Option<String>,
    /// `ok`, `exhausted` (the period's bytes are used up) or `expired`
    /// (past `until`); the last two cut the owner's traffic off.
    #[schema(example = "ok")]
    pub state: String,
}

impl QuotaView {
    fn new(q: QuotaRow, client: String, now: i64) -> QuotaView {
        QuotaView {
            client,
            state: standing(&q, now).as_str().to_string(),
            remaining_bytes: q.monthly_bytes.saturating_sub(q.used_bytes),
            reset_day: match q.reset {
                Reset::Monthly(d) => Some(d),
                Reset::Never => None,
            },
            never_reset: q.reset == Reset::Never,
            until: q.ends_at.map(period::end_date),
            period_start: rfc3339(q.period_start),
            next_reset: period::next_reset(q.reset, q.period_start).map(rfc3339),
            client_id: q.client_id,
            owner: q.owner,
            monthly_bytes: q.monthly_bytes,
            used_bytes: q.used_bytes,
        }
    }
}

fn invalid(field: &str, problem: impl std::fmt::Display) -> DomainError {
    DomainError::field(ErrorCode::InvalidQuota, field, problem)
}

/// The checked parts of a spec: the reset and the end.
pub fn validate(spec: &QuotaSpec) -> Result<(Reset, Option<i64>), DomainError> {
    if spec.monthly_bytes == 0 || i64::try_from(spec.monthly_bytes).is_err() {
        return Err(invalid("monthly_bytes", "must be 1 to 9223372036854775807"));
    }
    let reset = match (spec.never_reset, spec.reset_day) {
        (true, Some(_)) => {
            return Err(invalid(
                "reset_day",
                "a quota that never resets has no reset day",
            ))
        }
        (true, None) => Reset::Never,
        (false, day) => {
            let day = day.unwrap_or(1);
            if !(1..=28).contains(&day) {
                return Err(invalid("reset_day", "must be 1-28 (every month has it)"));
            }
            Reset::Monthly(day)
        }
    };
    let ends_at = match &spec.until {
        None => None,
        Some(d) => Some(
            period::end_of_day(d)
                .ok_or_else(|| invalid("until", format!("{d:?} is not a date like 2026-12-31")))?,
        ),
    };
    Ok((reset, ends_at))
}

fn not_found() -> StoreError {
    DomainError::new(
        ErrorCode::QuotaNotFound,
        "the owner has no quota on this client",
    )
    .into()
}

async fn apply(state: &Shared) {
    if let Err(e) = crate::quota::evaluate(state).await {
        tracing::warn!(error = %e, "quotas not evaluated after a change");
    }
}

#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QuotaListQuery {
    /// Only this client's quotas (id or name).
    client: Option<String>,
    /// Only this owner's quotas (a user always sees their own).
    owner: Option<String>,
}

/// The quotas: all of them for a superadmin, the caller's own otherwise.
#[utoipa::path(get, path = "/v1/quotas", tag = "quotas", operation_id = "listQuotas",
    params(QuotaListQuery),
    responses((status = 200, description = "The quotas, by client and owner.", body = Vec<QuotaView>)))]
pub async fn list(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<QuotaListQuery>,
) -> ApiResult<Json<Vec<QuotaView>>> {
    let owner = authz::visible_owner(&actor, q.owner.as_deref()).map(str::to_string);
    let superadmin = authz::require_superadmin(&actor).is_ok();
    let client = q.client;
    let (rows, names) = state
        .store
        .call(move |c| {
            let client_id = match client {
                Some(r) => match clients::find(c, &r)? {
                    Some(found) => Some(found.id),
                    None if !superadmin => return Ok((Vec::new(), HashMap::new())),
                    None => Some(clients::get(c, &r)?.id),
                },
                None => None,
            };
            let rows = quotas::list(c, client_id.as_deref(), owner.as_deref())?;
            let names: HashMap<String, String> = clients::list(c)?
                .into_iter()
                .map(|cl| (cl.id, cl.name))
                .collect();
            Ok((rows, names))
        })
        .await?;
    let now = store::now();
    Ok(Json(
        rows.into_iter()
            .map(|q| {
                let name = names.get(&q.client_id).cloned().unwrap_or_default();
                QuotaView::new(q, name, now)
            })
            .collect(),
    ))
}

/// An owner's quota on a client.
#[utoipa::path(get, path = "/v1/clients/{id}/owners/{owner}/quota", tag = "quotas", operation_id = "getQuota",
    params(("id" = String, Path, description = CLIENT_ID), ("owner" = String, Path, description = OWNER)),
    responses((status = 200, description = "The quota.", body = QuotaView)))]
pub async fn get(
    State(state): State<Shared>,
    ApiPath((id, owner)): ApiPath<(String, String)>,
) -> ApiResult<Json<QuotaView>> {
    let (client, row) = state
        .store
        .call(move |c| {
            let client = clients::get(c, &id)?;
            let row = quotas::get(c, &client.id, &owner)?.ok_or_else(not_found)?;
            Ok((client, row))
        })
        .await?;
    Ok(Json(QuotaView::new(row, client.name, store::now())))
}

/// Set an owner's quota on a client. A new monthly quota counts what the
/// owner's rules there moved since the current period began; changing a
/// quota keeps the usage unless its period moves.
#[utoipa::path(put, path = "/v1/clients/{id}/owners/{owner}/quota", tag = "quotas", operation_id = "setQuota",
    params(("id" = String, Path, description = CLIENT_ID), ("owner" = String, Path, description = OWNER)),
    request_body(content = QuotaSpec, description = "The allowance and its periods."),
    responses((status = 200, description = "The quota.", body = QuotaView)))]
pub async fn put(
    State(state): State<Shared>,
    ApiPath((id, owner)): ApiPath<(String, String)>,
    ApiJson(spec): ApiJson<QuotaSpec>,
) -> ApiResult<Json<QuotaView>> {
    let (reset, ends_at) = validate(&spec)?;
    let now = store::now();
    let (client, row) = state
        .store
        .call(move |c| {
            write_tx(c, |tx| {
                let client = clients::get(tx, &id)?;
                if !users::exists(tx, &owner)? {
                    return Err(DomainError::new(
                        ErrorCode::UserNotFound,
                        format!("no user {owner:?}"),
                    )
                    .into());
                }
                let before = quotas::get(tx, &client.id, &owner)?;
                let period_start = match (reset, &before) {
                    (Reset::Never, Some(b)) if b.reset == Reset::Never => b.period_start,
                    _ => period::period_start(reset, now, now),
                };
                let used_bytes = match &before {
                    Some(b) if b.period_start == period_start => b.used_bytes,
                    _ if reset == Reset::Never => 0,
                    _ => store::traffic::bytes_since(tx, &client.id, &owner, period_start)?,
                };
                let row = QuotaRow {
                    client_id: client.id.clone(),
                    owner,
                    monthly_bytes: spec.monthly_bytes,
                    reset,
                    ends_at,
                    period_start,
                    used_bytes,
                    updated_at: now,
                };
                quotas::put(tx, &row)?;
                Ok((client, row))
            })
        })
        .await?;
    apply(&state).await;
    Ok(Json(QuotaView::new(row, client.name, now)))
}

/// Remove an owner's quota on a client: their traffic there is no longer
/// counted against anything.
#[utoipa::path(delete, path = "/v1/clients/{id}/owners/{owner}/quota", tag = "quotas", operation_id = "removeQuota",
    params(("id" = String, Path, description = CLIENT_ID), ("owner" = String, Path, description = OWNER)),
    responses((status = 204, description = "Removed.")))]
pub async fn delete(
    State(state): State<Shared>,
    ApiPath((id, owner)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .store
        .call(move |c| {
            write_tx(c, |tx| {
                let client = clients::get(tx, &id)?;
                if quotas::delete(tx, &client.id, &owner)? {
                    Ok(())
                } else {
                    Err(not_found())
                }
            })
        })
        .await?;
    apply(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Start counting the current period again from zero.
#[utoipa::path(post, path = "/v1/clients/{id}/owners/{owner}/quota/clear-usage", tag = "quotas", operation_id = "clearQuotaUsage",
    params(("id" = String, Path, description = CLIENT_ID), ("owner" = String, Path, description = OWNER)),
    responses((status = 200, description = "The quota, its usage at zero.", body = QuotaView)))]
pub async fn clear_usage(
    State(state): State<Shared>,
    ApiPath((id, owner)): ApiPath<(String, String)>,
) -> ApiResult<Json<QuotaView>> {
    let now = store::now();
    let (client, row) = state
        .store
        .call(move |c| {
            write_tx(c, |tx| {
                let client = clients::get(tx, &id)?;
                if !quotas::clear_usage(tx, &client.id, &owner, now)? {
                    return Err(not_found());
                }
                let row = quotas::get(tx, &client.id, &owner)?.ok_or_else(not_found)?;
                Ok((client, row))
            })
        })
        .await?;
    apply(&state).await;
    Ok(Json(QuotaView::new(row, client.name, now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(bytes: u64, day: Option<u8>, never: bool, until: Option<&str>) -> QuotaSpec {
        QuotaSpec {
            monthly_bytes: bytes,
            reset_day: day,
            never_reset: never,
            until: until.map(str::to_string),
        }
    }

    #[test]
    fn validation_table() {
        let ok = |s: QuotaSpec| validate(&s).unwrap();
        assert_eq!(ok(spec(1, None, false, None)), (Reset::Monthly(1), None));
        assert_eq!(ok(spec(5, Some(28), false, None)).0, Reset::Monthly(28));
        assert_eq!(ok(spec(5, None, true, None)).0, Reset::Never);
        assert!(ok(spec(5, None, false, Some("2028-02-29"))).1.is_some());
        for bad in [
            spec(0, None, false, None),
            spec(u64::MAX, None, false, None),
            spec(5, Some(0), false, None),
            spec(5, Some(29), false, None),
            spec(5, Some(3), true, None),
            spec(5, None, false, Some("2027-02-29")),
            spec(5, None, false, Some("next week")),
        ] {
            assert_eq!(
                validate(&bad).unwrap_err().code,
                ErrorCode::InvalidQuota,
                "{bad:?}"
            );
        }
    }
}
