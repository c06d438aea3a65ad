//! `GET /v1/audit`: the audit trail, newest first, for superadmins.

use super::error::{ApiError, ApiResult};
use super::extract::ApiQuery;
use crate::state::Shared;
use crate::store::audit::{self, Entry, Outcome};
use crate::timefmt::{parse_rfc3339_ms, rfc3339_ms};
use axum::extract::State;
use axum::Json;
use portunus_domain::{DomainError, ErrorCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Rows per page, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    outcome: Option<Outcome>,
    /// Only rows at or after this RFC 3339 time.
    #[param(format = DateTime)]
    since: Option<String>,
    /// Only rows before this RFC 3339 time.
    #[param(format = DateTime)]
    until: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[1-9][0-9]{0,17}$")]
    cursor: Option<String>,
    /// Only rows of this user id; empty means everyone.
    actor: Option<String>,
}

impl AuditQuery {
    pub fn to_store(&self) -> Result<audit::Query, DomainError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(DomainError::field(
                ErrorCode::InvalidRequest,
                "limit",
                format!("must be 1-{MAX_LIMIT}"),
            ));
        }
        let before_id = match &self.cursor {
            None => None,
            Some(c) => Some(c.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
                DomainError::field(
                    ErrorCode::InvalidRequest,
                    "cursor",
                    "not a cursor from a previous page",
                )
            })?),
        };
        Ok(audit::Query {
            limit,
            outcome: self.outcome,
            since_ms: self
                .since
                .as_deref()
                .map(|s| parse_rfc3339_ms("since", s))
                .transpose()?,
            until_ms: self
                .until
                .as_deref()
                .map(|s| parse_rfc3339_ms("until", s))
                .transpose()?,
            before_id,
            actor: self.actor.clone().filter(|a| !a.is_empty()),
        })
    }
}

/// One audited request.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    pub id: i64,
    #[schema(format = DateTime)]
    pub at: String,
    /// The user id, when the request identified one.
    pub actor: Option<String>,
    #[schema(example = "POST")]
    pub method: String,
    /// The request path, without its query string.
    #[schema(example = "/v1/rules")]
    pub path: String,
    #[schema(value_type = Outcome)]
    pub outcome: String,
    /// `ok`, or the stable error code of a denial.
    #[schema(example = "client_not_granted")]
    pub reason: String,
}

impl From<Entry> for EntryView {
    fn from(e: Entry) -> Self {
        EntryView {
            id: e.id,
            at: rfc3339_ms(e.at_ms),
            actor: e.actor,
            method: e.method,
            path: e.path,
            outcome: e.outcome,
            reason: e.reason,
        }
    }
}

/// One page of the trail, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page {
    pub entries: Vec<EntryView>,
    /// Pass as `cursor` for the next (older) page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// The audit trail, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", operation_id = "listAudit",
    params(AuditQuery),
    responses((status = 200, description = "A page.", body = Page)))]
pub async fn list(
    State(state): State<Shared>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page>> {
    let query = q.to_store().map_err(ApiError::from)?;
    let (rows, next) = state.store.call(move |c| audit::query(c, &query)).await?;
    Ok(Json(Page {
        entries: rows.into_iter().map(EntryView::from).collect(),
        next_cursor: next.map(|n| n.to_string()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let q = AuditQuery {
            since: Some("2024-05-01T00:00:00Z".into()),
            until: Some("2024-05-01T00:00:01.5+00:00".into()),
            cursor: Some("42".into()),
            ..Default::default()
        };
        let s = q.to_store().unwrap();
        assert_eq!(s.limit, DEFAULT_LIMIT);
        assert_eq!(s.since_ms, Some(1_714_521_600_000));
        assert_eq!(s.until_ms, Some(1_714_521_601_500));
        assert_eq!(s.before_id, Some(42));
        let bad_time = AuditQuery {
            since: Some("yesterday".into()),
            ..Default::default()
        };
        let e = bad_time.to_store().unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTime);
        assert!(e.message.starts_with("since"));
        for (limit, cursor) in [
            (Some(0), None),
            (Some(1001), None),
            (None, Some("x")),
            (None, Some("-1")),
        ] {
            let q = AuditQuery {
                limit,
                cursor: cursor.map(str::to_string),
                ..Default::default()
            };
            assert_eq!(q.to_store().unwrap_err().code, ErrorCode::InvalidRequest);
        }
    }
}
