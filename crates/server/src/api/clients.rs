//! Client routes: enrollments, listing, address, name, revocation.

use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, OptionalJson};
use super::settings::RequestHost;
use super::views::ClientView;
use crate::enrollment;
use crate::state::Shared;
use crate::store::{clients, settings, write_tx};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use portunus_domain::names::{validate_bare_host, validate_client_name};
use serde::Deserialize;
use utoipa::ToSchema;

/// The path parameter every client route takes.
const CLIENT_ID: &str = "A client id or name";

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollBody {
    /// The client's name; an existing client of that name is re-enrolled.
    #[schema(schema_with = super::schemas::client_name)]
    name: String,
    /// The public host consumers of this client's ports reach: a host name
    /// or IP address, no port; null or empty for none.
    address: Option<String>,
    /// How long the enrollment may be redeemed; 600 when absent.
    #[schema(minimum = 1, maximum = 86400, example = 600)]
    ttl_secs: Option<i64>,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReEnrollBody {
    /// How long the enrollment may be redeemed; 600 when absent.
    #[schema(minimum = 1, maximum = 86400, example = 600)]
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

/// Create a one-time enrollment for a client.
///
/// A new enrollment for the same client supersedes its unredeemed ones.
/// The URI embeds the advertised endpoint resolved now.
#[utoipa::path(post, path = "/v1/client-enrollments", tag = "clients", operation_id = "enrollClient",
    request_body = EnrollBody,
    responses((status = 201, description = "The enrollment; its code is shown this once.", body = enrollment::Created)))]
pub async fn enroll(
    State(state): State<Shared>,
    RequestHost(host): RequestHost,
    ApiJson(body): ApiJson<EnrollBody>,
) -> ApiResult<(StatusCode, Json<enrollment::Created>)> {
    // Empty means none, as it does for `PUT /v1/clients/{id}`.
    let address = body.address.filter(|a| !a.is_empty());
    let created = create_enrollment(&state, body.name, address, body.ttl_secs, host).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Re-enroll an existing client.
///
/// The body is optional: an empty `POST` re-enrolls with the default TTL.
#[utoipa::path(post, path = "/v1/clients/{id}/enrollment", tag = "clients", operation_id = "reEnrollClient",
    params(("id" = String, Path, description = CLIENT_ID)),
    request_body(content = Option<ReEnrollBody>, description = "Optional; may be empty."),
    responses((status = 201, description = "The enrollment; its code is shown this once.", body = enrollment::Created)))]
pub async fn re_enroll(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
    RequestHost(host): RequestHost,
    OptionalJson(body): OptionalJson<ReEnrollBody>,
) -> ApiResult<(StatusCode, Json<enrollment::Created>)> {
    let ttl = body.and_then(|b| b.ttl_secs);
    let client = state.store.call(move |c| clients::get(c, &id)).await?;
    let created = create_enrollment(&state, client.name, None, ttl, host).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

fn view(state: &Shared, c: clients::ClientRow) -> ClientView {
    let session = state.registry.info(&c.id);
    ClientView::new(c, session)
}

/// List every provisioned client and whether it is connected.
#[utoipa::path(get, path = "/v1/clients", tag = "clients", operation_id = "listClients",
    responses((status = 200, description = "Every client.", body = Vec<ClientView>)))]
pub async fn list(State(state): State<Shared>) -> ApiResult<Json<Vec<ClientView>>> {
    let rows = state.store.call(|c| clients::list(c)).await?;
    Ok(Json(rows.into_iter().map(|c| view(&state, c)).collect()))
}

/// One client.
#[utoipa::path(get, path = "/v1/clients/{id}", tag = "clients", operation_id = "getClient",
    params(("id" = String, Path, description = CLIENT_ID)),
    responses((status = 200, description = "The client.", body = ClientView)))]
pub async fn get(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ClientView>> {
    let row = state.store.call(move |c| clients::get(c, &id)).await?;
    Ok(Json(view(&state, row)))
}

/// Revoke a client's credential; its stream drops at once.
///
/// Revoking a revoked client again is harmless.
#[utoipa::path(post, path = "/v1/clients/{id}/revoke", tag = "clients", operation_id = "revokeClient",
    params(("id" = String, Path, description = CLIENT_ID)),
    responses((status = 200, description = "The revoked client.", body = ClientView)))]
pub async fn revoke(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ClientView>> {
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

/// Delete a revoked client with its rules.
#[utoipa::path(delete, path = "/v1/clients/{id}", tag = "clients", operation_id = "deleteClient",
    params(("id" = String, Path, description = CLIENT_ID)),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    /// A bare host name or IP address; null or empty clears it.
    #[schema(example = "edge-01.example.com")]
    address: Option<String>,
}

/// Set or clear a client's public address.
#[utoipa::path(put, path = "/v1/clients/{id}", tag = "clients", operation_id = "setClientAddress",
    params(("id" = String, Path, description = CLIENT_ID)),
    request_body = AddressBody,
    responses((status = 200, description = "The client.", body = ClientView)))]
pub async fn set_address(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<AddressBody>,
) -> ApiResult<Json<ClientView>> {
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NameBody {
    #[schema(schema_with = super::schemas::client_name)]
    name: String,
}

/// Rename a client; its id, rules and credential stay.
#[utoipa::path(patch, path = "/v1/clients/{id}/name", tag = "clients", operation_id = "renameClient",
    params(("id" = String, Path, description = CLIENT_ID)),
    request_body = NameBody,
    responses((status = 200, description = "The client.", body = ClientView)))]
pub async fn rename(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NameBody>,
) -> ApiResult<Json<ClientView>> {
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
