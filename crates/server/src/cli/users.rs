//! Users, credentials, grants and the audit listing, over the operator
//! API. Secrets the server answers once (temporary passwords, tokens) go to
//! stdout alone, so scripts can capture them; everything else to stderr.

use super::access::RoleArg;
use super::http::ApiClient;
use super::operator::{s, seg};
use super::output::{items, print_json, print_listing, Format};
use reqwest::Method;
use serde_json::{json, Value};

pub async fn user_add(
    api: &ApiClient,
    id: &str,
    display_name: &str,
    role: RoleArg,
) -> anyhow::Result<()> {
    let body = json!({ "user_id": id, "display_name": display_name, "role": role.wire() });
    let v: Value = api.call(Method::POST, "/v1/users", Some(body)).await?;
    eprintln!(
        "Created user {} ({}). Temporary password, shown once; it must be changed at the first login:",
        s(&v, "user_id"),
        s(&v, "role")
    );
    println!("{}", s(&v, "temporary_password"));
    Ok(())
}

fn password_state(u: &Value) -> &'static str {
    match (
        u["password_set"].as_bool(),
        u["password_change_required"].as_bool(),
    ) {
        (Some(true), Some(true)) => "temporary",
        (Some(true), _) => "set",
        _ => "none",
    }
}

pub async fn user_list(api: &ApiClient, format: Format) -> anyhow::Result<()> {
    let v: Value = api.call(Method::GET, "/v1/users", None).await?;
    print_listing(
        &v,
        format,
        items(&v),
        &["ID", "NAME", "ROLE", "STATUS", "PASSWORD", "CREATED"],
        |u| {
            vec![
                s(u, "user_id"),
                s(u, "display_name"),
                s(u, "role"),
                if u["disabled"] == json!(true) {
                    "disabled".into()
                } else {
                    "active".into()
                },
                password_state(u).into(),
                s(u, "created_at"),
            ]
        },
    );
    Ok(())
}

pub async fn user_get(api: &ApiClient, id: &str, format: Format) -> anyhow::Result<()> {
    let v: Value = api
        .call(Method::GET, &format!("/v1/users/{}", seg(id)), None)
        .await?;
    if format == Format::Json {
        print_json(&v);
        return Ok(());
    }
    for k in ["user_id", "display_name", "role", "disabled", "created_at"] {
        println!("{k}: {}", s(&v, k));
    }
    println!("password: {}", password_state(&v));
    Ok(())
}

pub struct UserChange {
    pub display_name: Option<String>,
    pub role: Option<RoleArg>,
    pub disabled: Option<bool>,
}

pub async fn user_update(
    api: &ApiClient,
    id: &str,
    change: &UserChange,
    format: Format,
) -> anyhow::Result<()> {
    let mut body = serde_json::Map::new();
    if let Some(n) = &change.display_name {
        body.insert("display_name".into(), json!(n));
    }
    if let Some(r) = change.role {
        body.insert("role".into(), json!(r.wire()));
    }
    if let Some(d) = change.disabled {
        body.insert("disabled".into(), json!(d));
    }
    if body.is_empty() {
        return Err(portunus_domain::DomainError::new(
            portunus_domain::ErrorCode::InvalidRequest,
            "nothing to change: give --display-name, --role, --disable or --enable",
        )
        .into());
    }
    let v: Value = api
        .call(
            Method::PATCH,
            &format!("/v1/users/{}", seg(id)),
            Some(Value::Object(body)),
        )
        .await?;
    if format == Format::Json {
        print_json(&v);
    } else {
        let status = if v["disabled"] == json!(true) {
            "disabled"
        } else {
            "active"
        };
        eprintln!(
            "updated user {}: {} ({}, {status})",
            s(&v, "user_id"),
            s(&v, "display_name"),
            s(&v, "role")
        );
    }
    Ok(())
}

pub async fn user_remove(api: &ApiClient, id: &str) -> anyhow::Result<()> {
    let v: Value = api
        .call(Method::DELETE, &format!("/v1/users/{}", seg(id)), None)
        .await?;
    let n = items(&v["removed_rules"]).len();
    eprintln!("removed user {id} with its grants, credentials and {n} rule(s)");
    Ok(())
}

pub async fn credential_issue(api: &ApiClient, user: &str, label: &str) -> anyhow::Result<()> {
    let v: Value = api
        .call(
            Method::POST,
            &format!("/v1/users/{}/credentials", seg(user)),
            Some(json!({ "label": label })),
        )
        .await?;
    eprintln!(
        "Issued credential {} ({}) for {user}. This token is shown once; store it now:",
        s(&v, "credential_id"),
        s(&v, "label")
    );
    println!("{}", s(&v, "token"));
    Ok(())
}

pub async fn credential_list(api: &ApiClient, user: &str, format: Format) -> anyhow::Result<()> {
    let v: Value = api
        .call(
            Method::GET,
            &format!("/v1/users/{}/credentials", seg(user)),
            None,
        )
        .await?;
    print_listing(
        &v,
        format,
        items(&v),
        &["ID", "LABEL", "STATUS", "CREATED", "ROTATED"],
        |c| {
            vec![
                s(c, "credential_id"),
                s(c, "label"),
                if c["revoked"] == json!(true) {
                    "revoked".into()
                } else {
                    "active".into()
                },
                s(c, "created_at"),
                s(c, "rotated_at"),
            ]
        },
    );
    Ok(())
}

pub async fn credential_revoke(api: &ApiClient, user: &str, id: &str) -> anyhow::Result<()> {
    let _: Value = api
        .call(
            Method::DELETE,
            &format!("/v1/users/{}/credentials/{}", seg(user), seg(id)),
            None,
        )
        .await?;
    eprintln!("revoked credential {id} of {user}");
    Ok(())
}

pub async fn credential_rotate(api: &ApiClient, user: &str, id: &str) -> anyhow::Result<()> {
    let v: Value = api
        .call(
            Method::POST,
            &format!("/v1/users/{}/credentials/{}/rotate", seg(user), seg(id)),
            None,
        )
        .await?;
    eprintln!(
        "Rotated credential {}; the old token no longer works. The new one is shown once:",
        s(&v, "credential_id")
    );
    println!("{}", s(&v, "token"));
    Ok(())
}

pub struct NewGrant {
    pub user_id: String,
    pub client: String,
    pub listen_port_start: u32,
    pub listen_port_end: u32,
    pub protocols: String,
}

pub async fn grant_add(api: &ApiClient, g: &NewGrant) -> anyhow::Result<()> {
    let body = json!({
        "user_id": g.user_id,
        "client": g.client,
        "listen_port_start": g.listen_port_start,
        "listen_port_end": g.listen_port_end,
        "protocols": g.protocols,
    });
    let v: Value = api.call(Method::POST, "/v1/grants", Some(body)).await?;
    println!("{}", s(&v, "grant_id"));
    Ok(())
}

pub async fn grant_list(api: &ApiClient, user: Option<&str>, format: Format) -> anyhow::Result<()> {
    let path = match user {
        Some(u) => format!("/v1/grants?user_id={}", seg(u)),
        None => "/v1/grants".to_string(),
    };
    let v: Value = api.call(Method::GET, &path, None).await?;
    print_listing(
        &v,
        format,
        items(&v),
        &["ID", "USER", "CLIENT", "PORTS", "PROTOCOLS", "CREATED"],
        |g| {
            let ports = if g["listen_port_start"] == g["listen_port_end"] {
                s(g, "listen_port_start")
            } else {
                format!("{}-{}", s(g, "listen_port_start"), s(g, "listen_port_end"))
            };
            let protocols: Vec<&str> = items(&g["protocols"])
                .iter()
                .filter_map(Value::as_str)
                .collect();
            vec![
                s(g, "grant_id"),
                s(g, "user_id"),
                s(g, "client"),
                ports,
                protocols.join(","),
                s(g, "created_at"),
            ]
        },
    );
    Ok(())
}

pub async fn grant_revoke(api: &ApiClient, id: &str) -> anyhow::Result<()> {
    let v: Value = api
        .call(Method::DELETE, &format!("/v1/grants/{}", seg(id)), None)
        .await?;
    let n = items(&v["removed_rules"]).len();
    eprintln!("revoked grant {id}; removed {n} rule(s) no other grant covers");
    Ok(())
}

pub struct AuditFilter {
    pub limit: Option<u32>,
    pub outcome: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub cursor: Option<String>,
}

pub async fn audit_list(api: &ApiClient, f: &AuditFilter, format: Format) -> anyhow::Result<()> {
    let mut q = Vec::new();
    if let Some(l) = f.limit {
        q.push(format!("limit={l}"));
    }
    for (k, v) in [
        ("outcome", &f.outcome),
        ("since", &f.since),
        ("until", &f.until),
        ("cursor", &f.cursor),
    ] {
        if let Some(v) = v {
            q.push(format!("{k}={}", seg(v)));
        }
    }
    let path = if q.is_empty() {
        "/v1/audit".to_string()
    } else {
        format!("/v1/audit?{}", q.join("&"))
    };
    let v: Value = api.call(Method::GET, &path, None).await?;
    print_listing(
        &v,
        format,
        items(&v["entries"]),
        &["AT", "ACTOR", "METHOD", "PATH", "OUTCOME", "REASON"],
        |e| {
            vec![
                s(e, "at"),
                s(e, "actor"),
                s(e, "method"),
                s(e, "path"),
                s(e, "outcome"),
                s(e, "reason"),
            ]
        },
    );
    if let (Format::Text, Some(next)) = (format, v["next_cursor"].as_str()) {
        eprintln!("more: --cursor {next}");
    }
    Ok(())
}
