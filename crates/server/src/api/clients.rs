//! Client routes: enrollments, listing, address, name, revocation.

use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use super::settings::RequestHost;
use super::views::ClientView;
use crate::authz::require_superadmin;
use crate::enrollment;
use crate::state::Shared;
use crate::store::users::Actor;
use crate::store::{clients, settings, write_tx};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use portunus_domain::names::{validate_bare_host, validate_client_name};
use portunus_domain::ErrorCode;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollBody {
    name: String,
    address: Option<String>,
    ttl_secs: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReEnrollBody {
    ttl_secs: Option<i64>,
}

async fn create_enrollment(
    state: &Shared,
    name: String,
    address: Option<String>,
    ttl: Option<i64>,
    host: Option<String>,
) -> ApiResult<enrollment::Created> {
    enrollment::validate_request(&name, address.as_deref(), ttl)?;
    let resolver = state.endpoints.clone();
    let pin = state.tls_pin.clone();
    let created = state
        .store
        .call(move |conn| {
            let over = settings::get(conn, settings::ADVERTISED_ENDPOINT)?;
            let endpoint = resolver.resolve_for_request(over.as_deref(), host.as_deref())?;
            enrollment::create(
                conn,
                &name,
                address.as_deref(),
                ttl,
                &endpoint.endpoint,
                &pin,
            )
        })
        .await?;
    Ok(created)
}

pub async fn enroll(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    RequestHost(host): RequestHost,
    ApiJson(body): ApiJson<EnrollBody>,
) -> ApiResult<(StatusCode, Json<enrollment::Created>)> {
    require_superadmin(&actor)?;
    let created = create_enrollment(&state, body.name, body.address, body.ttl_secs, host).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn re_enroll(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    RequestHost(host): RequestHost,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<enrollment::Created>)> {
    require_superadmin(&actor)?;
    // The body is optional: an empty POST re-enrolls with the default TTL.
    let ttl = if body.is_empty() {
        None
    } else {
        serde_json::from_slice::<ReEnrollBody>(&body)
            .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("request body: {e}")))?
            .ttl_secs
    };
    let client = state.store.call(move |c| clients::get(c, &id)).await?;
    let created = create_enrollment(&state, client.name, None, ttl, host).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

fn view(state: &Shared, c: clients::ClientRow) -> ClientView {
    let session = state.registry.info(&c.id);
    ClientView::new(c, session)
}

pub async fn list(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
) -> ApiResult<Json<Vec<ClientView>>> {
    require_superadmin(&actor)?;
    let rows = state.store.call(|c| clients::list(c)).await?;
    Ok(Json(rows.into_iter().map(|c| view(&state, c)).collect()))
}

pub async fn get(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<Json<ClientView>> {
    require_superadmin(&actor)?;
    let row = state.store.call(move |c| clients::get(c, &id)).await?;
    Ok(Json(view(&state, row)))
}

pub async fn revoke(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<Json<ClientView>> {
    require_superadmin(&actor)?;
    let row = state
        .store
        .call(move |c| {
            let client = clients::get(c, &id)?;
            write_tx(c, |tx| clients::revoke(tx, &client.id))?;
            clients::get(c, &client.id)
        })
        .await?;
    state.registry.kick(
        &row.id,
        tonic::Status::unauthenticated("client credential revoked"),
    );
    tracing::info!(client = %row.name, "client revoked");
    Ok(Json(view(&state, row)))
}

pub async fn delete(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require_superadmin(&actor)?;
    let removed_rules = state
        .store
        .call(move |c| {
            let client = clients::get(c, &id)?;
            let rules = crate::store::rules::list(c, Some(&client.id), None)?;
            write_tx(c, |tx| clients::delete(tx, &client.id))?;
            Ok(rules)
        })
        .await?;
    for r in removed_rules {
        state.stats.forget(&state.metrics, &r.id);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    address: Option<String>,
}

pub async fn set_address(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AddressBody>,
) -> ApiResult<Json<ClientView>> {
    require_superadmin(&actor)?;
    let address = body.address.filter(|a| !a.is_empty());
    if let Some(a) = &address {
        validate_bare_host("address", a)?;
    }
    let row = state
        .store
        .call(move |c| {
            let client = clients::get(c, &id)?;
            clients::set_address(c, &client.id, address.as_deref())?;
            clients::get(c, &client.id)
        })
        .await?;
    Ok(Json(view(&state, row)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameBody {
    name: String,
}

pub async fn rename(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NameBody>,
) -> ApiResult<Json<ClientView>> {
    require_superadmin(&actor)?;
    validate_client_name(&body.name)?;
    let row = state
        .store
        .call(move |c| {
            let client = clients::get(c, &id)?;
            write_tx(c, |tx| clients::rename(tx, &client.id, &body.name))?;
            clients::get(c, &client.id)
        })
        .await?;
    Ok(Json(view(&state, row)))
}
