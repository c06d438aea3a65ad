//! The operator API as a published contract: an OpenAPI 3.1 document built
//! from the handlers' `#[utoipa::path]` annotations and their request and
//! response types, then completed with what every route of a kind shares
//! (security requirements, error responses, links), so none of that is
//! written once per handler and none of it can drift from the route table.
//!
//! `GET /v1/openapi.json` serves it; `portunus-server openapi` prints it.

mod errors;
#[cfg(test)]
mod tests;

use super::{audit, clients, credentials, grants, overview, owner_caps, rules, session};
use super::{quotas, rule_patch, rule_reads, rule_stats, settings, traffic, users};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use portunus_domain::routes::{Access, ROUTES};
use portunus_domain::{ErrorCode, ErrorEnvelope};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use utoipa::OpenApi;

const DESCRIPTION: &str = "The control plane's operator API: clients, rules, users, grants, \
credentials, owner caps, settings and the audit trail. Every failure answers \
`{\"error\":{\"code\",\"message\"}}` with a stable code; each error response below lists \
the codes that operation can produce. Authenticate with `Authorization: Bearer <token>`, \
or with the `portunus_session` cookie from `POST /v1/auth/login` plus `X-Portunus-CSRF: 1` \
on writes. See docs/api.md.";

#[derive(OpenApi)]
#[openapi(
    info(title = "Portunus operator API", description = DESCRIPTION,
        license(name = "Apache-2.0", identifier = "Apache-2.0")),
    paths(
        super::auth_status, serve, session::onboarding, session::login, session::logout,
        users::me, users::change_own_password,
        users::create, users::list, users::get, users::update, users::remove,
        users::reset_password,
        credentials::issue, credentials::list, credentials::revoke, credentials::rotate,
        grants::create, grants::list, grants::revoke,
        audit::list,
        clients::enroll, clients::list, clients::get, clients::set_address, clients::delete,
        clients::rename, clients::re_enroll, clients::revoke,
        rules::create, rule_reads::list, rule_reads::get, rules::update, rule_patch::patch, rules::delete, rule_stats::stats,
        rule_stats::stats_stream,
        super::metrics_mirror, overview::get,
        owner_caps::list_owners, owner_caps::get, owner_caps::put, owner_caps::delete,
        traffic::get,
        quotas::list, quotas::get, quotas::put, quotas::delete, quotas::clear_usage,
        settings::get_advertised_endpoint, settings::put_advertised_endpoint,
    ),
    components(schemas(ErrorEnvelope)),
    tags(
        (name = "auth", description = "Signing in and out, first-run onboarding, the caller's own record."),
        (name = "users", description = "User management (superadmin)."),
        (name = "credentials", description = "API tokens: yours, or anyone's for a superadmin."),
        (name = "grants", description = "What each user may push."),
        (name = "clients", description = "Edge clients and their one-time enrollments (superadmin)."),
        (name = "rules", description = "Forwarding rules: push, edit caps, switch off and on, name, remove, stats."),
        (name = "owner caps", description = "Per-owner rate-limit envelopes on a client (superadmin)."),
        (name = "traffic", description = "Traffic history per rule, client or owner, from the edges' reports."),
        (name = "quotas", description = "Monthly byte quotas per owner and client: when spent, the edge cuts the owner's traffic there."),
        (name = "settings", description = "The advertised endpoint clients dial (superadmin)."),
        (name = "overview", description = "The fleet at a glance, and the Prometheus mirror."),
        (name = "audit", description = "The audit trail (superadmin)."),
        (name = "meta", description = "This document."),
    )
)]
struct ApiDoc;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The document as a JSON value.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    unsigned_formats(&mut doc);
    flatten_all_of(&mut doc);
    doc["components"]["securitySchemes"] = security_schemes();
    let paths = doc["paths"].as_object_mut().expect("paths");
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            if let Some(op) = item.get_mut(method) {
                complete(&method.to_ascii_uppercase(), path, op);
            }
        }
    }
    doc
}

/// The document as served: compact, since indentation would double it.
static JSON: LazyLock<String> =
    LazyLock::new(|| serde_json::to_string(&document()).expect("the document serializes"));

/// The document as served.
pub fn json() -> &'static str {
    &JSON
}

/// The same document indented, for `portunus-server openapi`.
pub fn pretty() -> String {
    let mut text = serde_json::to_string_pretty(&document()).expect("the document serializes");
    text.push('\n');
    text
}

/// This document: every operation of the API with its schemas, security
/// and error codes.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta", operation_id = "getOpenApi",
    responses((status = 200, description = "An OpenAPI 3.1 document.", body = Object)))]
pub async fn serve() -> Response {
    ([(CONTENT_TYPE, "application/json")], json()).into_response()
}

fn security_schemes() -> Value {
    json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: `Authorization: Bearer <token>`. Issue one with \
                `POST /v1/users/{id}/credentials` (or `bootstrap-superadmin` on a fresh store)."
        },
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": super::auth::SESSION_COOKIE,
            "description": "The Web session cookie `POST /v1/auth/login` sets. Writes need the \
                `csrf` header too, a same-origin `Origin`, and a JSON body if there is a body."
        },
        "csrf": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Portunus-CSRF",
            "description": "Must be `1` on every cookie-authenticated write."
        }
    })
}

/// Adds to one operation what its kind of route shares: who may call it,
/// every error it can answer with, and where its results lead.
fn complete(method: &str, path: &str, op: &mut Value) {
    let Some(&(_, _, access)) = ROUTES.iter().find(|r| r.0 == method && r.1 == path) else {
        // Not in the route table: the drift test names it.
        return;
    };
    let public = access == Access::Public;
    if access == Access::Superadmin {
        op["x-portunus-access"] = json!("superadmin");
    }
    op["security"] = if public {
        json!([])
    } else if method == "GET" {
        json!([{ "bearer": [] }, { "session": [] }])
    } else {
        json!([{ "bearer": [] }, { "session": [], "csrf": [] }])
    };
    let shape = errors::RouteShape {
        public,
        has_params: op["parameters"].as_array().is_some_and(|p| !p.is_empty()),
        has_body: op.get("requestBody").is_some(),
    };
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in errors::codes(method, path, &shape) {
        by_status.entry(code.http_status()).or_default().push(code);
    }
    for (status, codes) in by_status {
        op["responses"][status.to_string()] = error_response(status, &codes);
    }
    for response in op["responses"]
        .as_object_mut()
        .into_iter()
        .flat_map(|r| r.values_mut())
    {
        describe_events(response);
    }
    for (status, name, link) in links(method, path) {
        op["responses"][status]["links"][name] = link;
    }
}

/// One status's error response: the envelope, its `code` narrowed to the
/// codes this operation answers with at this status, each explained.
fn error_response(status: u16, codes: &[ErrorCode]) -> Value {
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let mut description = format!("{reason}. Codes:\n");
    let mut examples = Map::new();
    for code in codes {
        description.push_str(&format!("\n- `{code}`: {}", code.meaning()));
        examples.insert(
            code.as_str().to_string(),
            json!({
                "summary": code.meaning(),
                "value": { "error": { "code": code.as_str(), "message": code.meaning() } }
            }),
        );
    }
    let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    let mut response = json!({
        "description": description,
        "content": { "application/json": {
            "schema": { "allOf": [
                { "$ref": "#/components/schemas/ErrorEnvelope" },
                { "properties": { "error": { "properties": { "code": { "enum": names } } } } }
            ] },
            "examples": examples
        } }
    });
    if status == 429 {
        response["headers"] = json!({ "Retry-After": {
            "description": "Seconds until another attempt may succeed.",
            "required": true,
            "schema": { "type": "integer", "minimum": 1 }
        } });
    }
    response
}

/// An event stream's annotated body type is what each event's `data`
/// holds; the schema of a `text/event-stream` body describes one event.
fn describe_events(response: &mut Value) {
    let Some(media) = response.pointer_mut("/content/text~1event-stream") else {
        return;
    };
    let data = media["schema"].take();
    media["schema"] = json!({
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": { "type": "string", "example": "stats" },
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data
            }
        }
    });
}

/// Links from an operation's answer to the operations that take what it
/// created, for clients and stateful fuzzers.
fn links(method: &str, path: &str) -> Vec<(&'static str, String, Value)> {
    let to = |op: &str, params: Value| json!({ "operationId": op, "parameters": params });
    let by = |field: &str| format!("$response.body#/{field}");
    let each = |ops: &[&str], params: Value| -> Vec<(&'static str, String, Value)> {
        ops.iter()
            .map(|op| ("201", (*op).to_string(), to(op, params.clone())))
            .collect()
    };
    match (method, path) {
        ("POST", "/v1/client-enrollments") => each(
            &[
                "getClient",
                "setClientAddress",
                "renameClient",
                "reEnrollClient",
                "listOwners",
                "setOwnerCap",
                "getOwnerCap",
                "removeOwnerCap",
                "setQuota",
                "getQuota",
                "removeQuota",
                "clearQuotaUsage",
                "revokeClient",
                "deleteClient",
            ],
            json!({ "id": by("client_id") }),
        ),
        ("POST", "/v1/rules") => each(
            &[
                "getRule",
                "getRuleStats",
                "streamRuleStats",
                "updateRuleCaps",
                "removeRule",
            ],
            json!({ "id": by("rule_id") }),
        ),
        ("POST", "/v1/users") => each(
            &[
                "getUser",
                "updateUser",
                "resetUserPassword",
                "issueCredential",
                "listCredentials",
                "removeUser",
            ],
            json!({ "id": by("user_id") }),
        ),
        ("POST", "/v1/users/{id}/credentials") => each(
            &["rotateCredential", "revokeCredential"],
            json!({ "id": "$request.path.id", "cid": by("credential_id") }),
        ),
        ("POST", "/v1/grants") => each(&["revokeGrant"], json!({ "id": by("grant_id") })),
        _ => Vec::new(),
    }
}

/// Spells unsigned integer formats the usual way (`uint64`); utoipa writes
/// `u-int64`. The formats say the width (a `u64` field takes values past
/// `int64`), and the schemas carry the bounds.
fn unsigned_formats(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(f)) = o.get_mut("format") {
                if let Some(bits) = f.strip_prefix("u-int") {
                    *f = format!("uint{bits}");
                }
            }
            o.values_mut().for_each(unsigned_formats);
        }
        Value::Array(a) => a.iter_mut().for_each(unsigned_formats),
        _ => {}
    }
}

/// Replaces every component that is an `allOf` of objects (what serde's
/// `flatten` becomes) with one object holding all their properties, so a
/// validator sees the fields the JSON really has side by side. The merged
/// object refuses unknown fields when any part does.
fn flatten_all_of(doc: &mut Value) {
    let Some(schemas) = doc["components"]["schemas"].as_object().cloned() else {
        return;
    };
    let mut schemas = schemas;
    loop {
        let merged: Vec<(String, Value)> = schemas
            .iter()
            .filter_map(|(name, s)| Some((name.clone(), merge_all_of(s, &schemas)?)))
            .collect();
        if merged.is_empty() {
            break;
        }
        for (name, s) in merged {
            schemas.insert(name, s);
        }
    }
    doc["components"]["schemas"] = Value::Object(schemas);
}

/// The single object an `allOf` of objects stands for; `None` when `schema`
/// is no such `allOf`, or one of its parts is still an unmerged `allOf`.
fn merge_all_of(schema: &Value, schemas: &Map<String, Value>) -> Option<Value> {
    let parts = schema.get("allOf")?.as_array()?;
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    let mut closed = false;
    for part in parts {
        let part = match part.get("$ref").and_then(Value::as_str) {
            Some(r) => schemas.get(r.strip_prefix("#/components/schemas/")?)?,
            None => part,
        };
        if part.get("allOf").is_some() || part.get("type") != Some(&json!("object")) {
            return None;
        }
        if let Some(p) = part.get("properties").and_then(Value::as_object) {
            properties.extend(p.clone());
        }
        if let Some(r) = part.get("required").and_then(Value::as_array) {
            required.extend(r.iter().cloned());
        }
        closed |= part.get("additionalProperties") == Some(&json!(false));
    }
    let mut out = json!({ "type": "object", "properties": properties });
    if !required.is_empty() {
        out["required"] = Value::Array(required);
    }
    if closed {
        out["additionalProperties"] = json!(false);
    }
    for key in ["description", "example", "examples"] {
        if let Some(v) = schema.get(key) {
            out[key] = v.clone();
        }
    }
    Some(out)
}
