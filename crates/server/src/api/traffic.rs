//! `GET /v1/traffic`: a rule's, client's or owner's traffic history, one
//! entry per bucket, scoped like the rules list (a user sees only their
//! own rules' traffic).

use super::error::ApiResult;
use super::extract::ApiQuery;
use super::rule_reads::load_visible;
use crate::authz;
use crate::state::Shared;
use crate::store::traffic::{self, Filter};
use crate::store::users::Actor;
use crate::store::{self, clients};
use crate::timefmt::{parse_rfc3339_ms, rfc3339};
use crate::traffic::query::{parse_step, step_name, Window};
use crate::traffic::Counters;
use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

const DEFAULT_SPAN: i64 = 86_400;

#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrafficQuery {
    /// A rule id: that rule's history.
    rule: Option<String>,
    /// A client id or name: the history of the rules on it.
    client: Option<String>,
    /// A user id: the history of that owner's rules (a user always sees
    /// their own).
    owner: Option<String>,
    /// Start, RFC 3339 (default: 24 hours before `until`).
    #[param(format = DateTime)]
    since: Option<String>,
    /// End, RFC 3339 (default: now).
    #[param(format = DateTime)]
    until: Option<String>,
    /// Bucket width (default: the smallest that needs at most 300 buckets).
    #[param(pattern = "^(1m|5m|15m|30m|1h|3h|6h|12h|1d)$")]
    step: Option<String>,
}

/// One bucket: what the rules in scope moved in `[start, start + step)`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrafficBucket {
    #[schema(format = DateTime)]
    pub start: String,
    /// Bytes from downstream peers towards the targets.
    pub bytes_in: u64,
    /// Bytes from the targets back to the peers.
    pub bytes_out: u64,
    /// New TCP connections, or new UDP flows.
    pub connections: u64,
}

/// A traffic history: every bucket of the window, zeros included.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrafficView {
    /// The first bucket's start.
    #[schema(format = DateTime)]
    pub since: String,
    /// The last bucket's end.
    #[schema(format = DateTime)]
    pub until: String,
    #[schema(example = "5m")]
    pub step: String,
    pub step_secs: u64,
    /// Sums over every bucket.
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connections: u64,
    pub buckets: Vec<TrafficBucket>,
}

fn seconds(field: &str, s: &Option<String>) -> Result<Option<i64>, portunus_domain::DomainError> {
    s.as_deref()
        .map(|s| parse_rfc3339_ms(field, s).map(|ms| ms.div_euclid(1000)))
        .transpose()
}

/// Traffic history of a rule, a client or an owner.
#[utoipa::path(get, path = "/v1/traffic", tag = "traffic", operation_id = "getTraffic",
    params(TrafficQuery),
    responses((status = 200, description = "Bytes and connections per bucket.", body = TrafficView)))]
pub async fn get(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<TrafficQuery>,
) -> ApiResult<Json<TrafficView>> {
    let until = seconds("until", &q.until)?.unwrap_or_else(store::now);
    let since = seconds("since", &q.since)?.unwrap_or(until - DEFAULT_SPAN);
    let step = q.step.as_deref().map(parse_step).transpose()?;
    let window = Window::new(since, until, step)?;
    let rule_id = match q.rule {
        Some(id) => Some(load_visible(&state, &actor, id).await?.id),
        None => None,
    };
    let owner = authz::visible_owner(&actor, q.owner.as_deref()).map(str::to_string);
    let superadmin = authz::require_superadmin(&actor).is_ok();
    let client = q.client;
    let rows = state
        .store
        .call(move |c| {
            let client_id = match client {
                Some(r) => match clients::find(c, &r)? {
                    Some(found) => Some(found.id),
                    // A user's filter on a client that does not exist
                    // answers like one they have no traffic on.
                    None if !superadmin => return Ok(Vec::new()),
                    None => Some(clients::get(c, &r)?.id),
                },
                None => None,
            };
            let filter = Filter {
                rule_id,
                client_id,
                owner,
            };
            traffic::sums(c, window.grain(), &filter, window.start, window.end())
        })
        .await?;
    let mut total = Counters::default();
    let buckets = window
        .dense(&rows)
        .into_iter()
        .map(|(start, c)| {
            total.add(&c);
            TrafficBucket {
                start: rfc3339(start),
                bytes_in: c.bytes_in,
                bytes_out: c.bytes_out,
                connections: c.connections,
            }
        })
        .collect();
    Ok(Json(TrafficView {
        since: rfc3339(window.start),
        until: rfc3339(window.end()),
        step: step_name(window.step).to_string(),
        step_secs: window.step.unsigned_abs(),
        bytes_in: total.bytes_in,
        bytes_out: total.bytes_out,
        connections: total.connections,
        buckets,
    }))
}
