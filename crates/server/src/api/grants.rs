//! Grant routes. Grants are managed by superadmins; users may list their
//! own. Revoking a grant removes the rules no remaining grant covers, and
//! takes them off their clients.

use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::authz;
use crate::state::Shared;
use crate::store::grants::{self, GrantRow, NewGrant};
use crate::store::users::Actor;
use crate::store::{clients, users};
use crate::timefmt::rfc3339;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use portunus_domain::rule::Protocol;
use portunus_domain::{DomainError, ErrorCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The client every grant for `*` names.
pub const ANY_CLIENT: &str = "*";

/// What a user may push: a client (or all), a listen-port range and
/// protocols.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    pub grant_id: String,
    pub user_id: String,
    /// A client name, or `*` for every client.
    #[schema(example = "edge-01")]
    pub client: String,
    /// Null for `*`.
    pub client_id: Option<String>,
    #[schema(minimum = 1, maximum = 65535)]
    pub listen_port_start: u32,
    #[schema(minimum = 1, maximum = 65535)]
    pub listen_port_end: u32,
    #[schema(value_type = Vec<Protocol>)]
    pub protocols: Vec<&'static str>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A revoked grant and the rules no remaining grant covered.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantRevoked {
    pub grant_id: String,
    pub removed_rules: Vec<String>,
}

impl From<GrantRow> for GrantView {
    fn from(g: GrantRow) -> Self {
        GrantView {
            grant_id: g.id,
            user_id: g.user_id,
            client: g.client_name.unwrap_or_else(|| ANY_CLIENT.to_string()),
            client_id: g.client_id,
            listen_port_start: g.port_start,
            listen_port_end: g.port_end,
            protocols: g.protocols.iter().map(|p| p.as_str()).collect(),
            created_at: rfc3339(g.created_at),
        }
    }
}

/// `["tcp","udp"]` or `"tcp,udp"`.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Protocols {
    List(Vec<String>),
    Joined(String),
}

impl Protocols {
    fn parse(self) -> Result<Vec<Protocol>, DomainError> {
        let names: Vec<String> = match self {
            Protocols::List(v) => v,
            Protocols::Joined(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
        };
        let mut out = Vec::new();
        for n in names {
            let p = Protocol::parse(&n).map_err(|_| {
                DomainError::field(
                    ErrorCode::InvalidProtocol,
                    "protocols",
                    format!("{n:?} is not tcp or udp"),
                )
            })?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
        if out.is_empty() {
            return Err(DomainError::field(
                ErrorCode::InvalidProtocol,
                "protocols",
                "name at least one of tcp, udp",
            ));
        }
        out.sort_by_key(|p| p.as_str());
        Ok(out)
    }
}

/// What `Protocols::parse` accepts, in lowercase: a non-empty list, or the
/// same names joined by commas.
fn protocols_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
    let name = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["tcp", "udp"]))
    };
    OneOfBuilder::new()
        .item(ArrayBuilder::new().items(name()).min_items(Some(1)))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^(tcp|udp)(,(tcp|udp))*$")),
        )
        .description(Some("`[\"tcp\", \"udp\"]` or `\"tcp,udp\"`."))
        .examples([serde_json::json!(["tcp", "udp"])])
        .into()
}

/// Both ends in 1..=65535, start not after end.
pub fn validate_ports(start: u32, end: u32) -> Result<(), DomainError> {
    for (field, v) in [("listen_port_start", start), ("listen_port_end", end)] {
        if !(1..=65535).contains(&v) {
            return Err(DomainError::field(
                ErrorCode::InvalidPort,
                field,
                format!("{v} is not a port in 1-65535"),
            ));
        }
    }
    if start > end {
        return Err(DomainError::field(
            ErrorCode::RangeInvalid,
            "listen_port_end",
            format!("{end} is below listen_port_start {start}"),
        ));
    }
    Ok(())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGrantBody {
    #[schema(example = "alice")]
    user_id: String,
    /// A client name or id, or `*` for every client.
    #[schema(example = "edge-01")]
    client: String,
    #[schema(minimum = 1, maximum = 65535, example = 20000)]
    listen_port_start: u32,
    #[schema(minimum = 1, maximum = 65535, example = 20999)]
    listen_port_end: u32,
    #[schema(schema_with = protocols_schema)]
    protocols: Protocols,
}

/// Grant a user a client (or all), a listen-port range and protocols.
#[utoipa::path(post, path = "/v1/grants", tag = "grants", operation_id = "createGrant",
    request_body = CreateGrantBody,
    responses((status = 201, description = "The grant.", body = GrantView)))]
pub async fn create(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiJson(body): ApiJson<CreateGrantBody>,
) -> ApiResult<(StatusCode, Json<GrantView>)> {
    validate_ports(body.listen_port_start, body.listen_port_end)?;
    let protocols = body.protocols.parse()?;
    let row = state
        .store
        .write(move |tx| {
            users::get(tx, &body.user_id)?;
            let client_id = match body.client.as_str() {
                ANY_CLIENT => None,
                r => Some(clients::get(tx, r)?.id),
            };
            grants::insert(
                tx,
                &NewGrant {
                    user_id: &body.user_id,
                    client_id: client_id.as_deref(),
                    port_start: body.listen_port_start,
                    port_end: body.listen_port_end,
                    protocols: &protocols,
                },
            )
        })
        .await?;
    tracing::info!(grant = %row.id, user = %row.user_id, by = %actor.user_id, "grant added");
    Ok((StatusCode::CREATED, Json(row.into())))
}

#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this user's grants; a user sees only their own anyway.
    user_id: Option<String>,
}

/// List grants: every grant for a superadmin, a user's own otherwise.
#[utoipa::path(get, path = "/v1/grants", tag = "grants", operation_id = "listGrants",
    params(ListQuery),
    responses((status = 200, description = "The grants, oldest first.", body = Vec<GrantView>)))]
pub async fn list(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<GrantView>>> {
    let user = authz::visible_grants(&actor, q.user_id.as_deref()).map(str::to_string);
    let rows = state
        .store
        .call(move |c| grants::list(c, user.as_deref()))
        .await?;
    Ok(Json(rows.into_iter().map(GrantView::from).collect()))
}

/// Revoke a grant and remove the rules no remaining grant covers.
#[utoipa::path(delete, path = "/v1/grants/{id}", tag = "grants", operation_id = "revokeGrant",
    params(("id" = String, Path, description = "A grant id")),
    responses((status = 200, description = "Revoked.", body = GrantRevoked)))]
pub async fn revoke(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<GrantRevoked>> {
    let (grant, removed) = state.store.write(move |tx| grants::revoke(tx, &id)).await?;
    super::rules::retract(&state, &removed).await;
    tracing::info!(grant = %grant.id, user = %grant.user_id, rules = removed.len(), by = %actor.user_id, "grant revoked");
    Ok(Json(GrantRevoked {
        grant_id: grant.id,
        removed_rules: removed.into_iter().map(|r| r.id).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_protocols() {
        assert!(validate_ports(1, 65535).is_ok());
        assert!(validate_ports(80, 80).is_ok());
        assert_eq!(
            validate_ports(0, 1).unwrap_err().code,
            ErrorCode::InvalidPort
        );
        assert_eq!(
            validate_ports(1, 65536).unwrap_err().code,
            ErrorCode::InvalidPort
        );
        assert_eq!(
            validate_ports(10, 9).unwrap_err().code,
            ErrorCode::RangeInvalid
        );
        let p = Protocols::Joined("udp, tcp,udp".into()).parse().unwrap();
        assert_eq!(p, vec![Protocol::Tcp, Protocol::Udp]);
        let p = Protocols::List(vec!["TCP".into()]).parse().unwrap();
        assert_eq!(p, vec![Protocol::Tcp]);
        for bad in [
            Protocols::Joined("".into()),
            Protocols::List(vec![]),
            Protocols::Joined("sctp".into()),
        ] {
            assert_eq!(bad.parse().unwrap_err().code, ErrorCode::InvalidProtocol);
        }
    }
}
