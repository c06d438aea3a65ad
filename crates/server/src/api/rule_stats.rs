//! A rule's counters: the latest report once, or as server-sent events.

use super::error::ApiResult;
use super::extract::{ApiPath, ApiQuery};
use super::rule_reads::load_visible;
use super::rules::RULE_ID;
use super::views::StatsView;
use crate::state::Shared;
use crate::store::rules::{self, RuleRow};
use crate::store::users::Actor;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Json};
use serde::Deserialize;
use std::time::Duration;
use utoipa::IntoParams;

#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Add per-port counters (range rules).
    #[serde(default)]
    per_port: bool,
    /// Add per-target counters and health (multi-target rules).
    #[serde(default)]
    per_target: bool,
}

/// A rule's counters from its client's latest report.
#[utoipa::path(get, path = "/v1/rules/{id}/stats", tag = "rules", operation_id = "getRuleStats",
    params(("id" = String, Path, description = RULE_ID), StatsQuery),
    responses((status = 200, description = "The counters.", body = StatsView)))]
pub async fn stats(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<StatsView>> {
    let row = load_visible(&state, &actor, id).await?;
    let reported = state.stats.get(&row.id);
    let view = StatsView::new(
        &row,
        reported.as_ref().map(|r| (&r.stats, r.at)),
        q.per_port,
        q.per_target,
    );
    Ok(Json(view))
}

/// What a stats event is sent for: a new report or changed counters.
type ReportKey = Option<(i64, u64, u64, u64)>;

/// A rule's counters as server-sent events.
///
/// One `stats` event now and one per changed report, each carrying a
/// `StatsView` as its data; the stream ends when the rule is removed.
#[utoipa::path(get, path = "/v1/rules/{id}/stats/stream", tag = "rules", operation_id = "streamRuleStats",
    params(("id" = String, Path, description = RULE_ID), StatsQuery),
    responses((status = 200, description = "`event: stats` events whose data is a `StatsView`.",
        content_type = "text/event-stream", body = StatsView)))]
pub async fn stats_stream(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>>> {
    let row = load_visible(&state, &actor, id).await?;
    let start: (Shared, RuleRow, ReportKey, bool) = (state, row, None, true);
    let stream = futures::stream::unfold(start, move |(state, row, last, first)| async move {
        let mut first = first;
        loop {
            if !first {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let rid = row.id.clone();
            match state.store.call(move |c| rules::find(c, &rid)).await {
                Ok(Some(_)) => {}
                _ => return None,
            }
            let reported = state.stats.get(&row.id);
            let key = reported.as_ref().map(|r| {
                (
                    r.at,
                    r.stats.bytes_in,
                    r.stats.bytes_out,
                    r.stats.connections_total,
                )
            });
            if first || key != last {
                let view = StatsView::new(
                    &row,
                    reported.as_ref().map(|r| (&r.stats, r.at)),
                    q.per_port,
                    q.per_target,
                );
                let event = Event::default()
                    .event("stats")
                    .json_data(&view)
                    .unwrap_or_default();
                return Some((Ok(event), (state, row, key, false)));
            }
            first = false;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
