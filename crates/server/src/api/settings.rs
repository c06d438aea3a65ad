//! Operator settings: the advertised-endpoint override, and the request
//! host HTTP enrollments derive an endpoint from.

use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use crate::advertised::Report;
use crate::state::Shared;
use crate::store::settings::{self, ADVERTISED_ENDPOINT};
use crate::store::users::Actor;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::{Extension, Json};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

/// The host the operator reached this server by: the `Host` header, or
/// the URI authority of an HTTP/2 request. `None` when absent or not text.
pub struct RequestHost(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestHost {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let authority = || parts.uri.authority().map(|a| a.as_str().to_string());
        Ok(RequestHost(header.or_else(authority)))
    }
}

/// The advertised endpoint clients dial: the override, the effective
/// value and where it comes from.
#[utoipa::path(get, path = "/v1/settings/advertised-endpoint", tag = "settings", operation_id = "getAdvertisedEndpoint",
    responses((status = 200, description = "The endpoint report.", body = Report)))]
pub async fn get_advertised_endpoint(State(state): State<Shared>) -> ApiResult<Json<Report>> {
    let stored = state
        .store
        .call(|c| settings::get(c, ADVERTISED_ENDPOINT))
        .await?;
    Ok(Json(state.endpoints.report(stored)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvertisedEndpointBody {
    /// A bare `host:port` the certificate's SAN covers; null or empty
    /// clears the override. Required, so `{}` is a bad request rather than
    /// a silent clear.
    #[serde(deserialize_with = "required_nullable")]
    #[schema(required = true, example = "proxy.example.com:7443")]
    advertised_endpoint: Option<String>,
}

fn required_nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

/// Set or clear the advertised-endpoint override.
///
/// Checks the grammar first, then SAN coverage; `null` or `""` clears it.
/// Answers like the GET.
#[utoipa::path(put, path = "/v1/settings/advertised-endpoint", tag = "settings", operation_id = "setAdvertisedEndpoint",
    request_body = AdvertisedEndpointBody,
    responses((status = 200, description = "The endpoint report.", body = Report)))]
pub async fn put_advertised_endpoint(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiJson(body): ApiJson<AdvertisedEndpointBody>,
) -> ApiResult<Json<Report>> {
    let value = body.advertised_endpoint.filter(|v| !v.is_empty());
    if let Some(v) = &value {
        state.endpoints.check_override(v)?;
    }
    let stored = state
        .store
        .write(move |tx| {
            settings::set(tx, ADVERTISED_ENDPOINT, value.as_deref())?;
            settings::get(tx, ADVERTISED_ENDPOINT)
        })
        .await?;
    tracing::info!(
        actor = %actor.user_id,
        value = stored.as_deref().unwrap_or("(cleared)"),
        "advertised endpoint override changed"
    );
    Ok(Json(state.endpoints.report(stored)))
}
