//! The operator HTTP API's route table: a contract shared by the server
//! (whose router and authentication layer follow it) and the process-level
//! tests (which walk it).

/// Who may call a route at all. Finer decisions (whose user, which client's
/// rules) are made in the handler once it has loaded what they concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed.
    Public,
    /// Any signed-in actor.
    Signed,
    /// Superadmins only: anyone else gets 403 `forbidden` before the
    /// request's body or parameters are read, so a refusal never depends on
    /// what was sent.
    Superadmin,
}

/// Every `/v1` route as `(method, path, access)`. Non-public routes answer
/// 401 without credentials (503 before the first superadmin exists). The
/// server's router test holds the router to this list, and the
/// process-level access tests walk it.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/v1/auth/status", Access::Public),
    ("GET", "/v1/openapi.json", Access::Public),
    ("POST", "/v1/auth/onboarding", Access::Public),
    ("POST", "/v1/auth/login", Access::Public),
    ("POST", "/v1/auth/logout", Access::Signed),
    ("GET", "/v1/users/me", Access::Signed),
    ("POST", "/v1/users/me/password", Access::Signed),
    ("POST", "/v1/users", Access::Superadmin),
    ("GET", "/v1/users", Access::Superadmin),
    ("GET", "/v1/users/{id}", Access::Signed),
    ("PATCH", "/v1/users/{id}", Access::Superadmin),
    ("DELETE", "/v1/users/{id}", Access::Superadmin),
    ("POST", "/v1/users/{id}/password", Access::Superadmin),
    ("POST", "/v1/users/{id}/credentials", Access::Signed),
    ("GET", "/v1/users/{id}/credentials", Access::Signed),
    ("DELETE", "/v1/users/{id}/credentials/{cid}", Access::Signed),
    (
        "POST",
        "/v1/users/{id}/credentials/{cid}/rotate",
        Access::Signed,
    ),
    ("POST", "/v1/grants", Access::Superadmin),
    ("GET", "/v1/grants", Access::Signed),
    ("DELETE", "/v1/grants/{id}", Access::Superadmin),
    ("GET", "/v1/audit", Access::Superadmin),
    ("POST", "/v1/client-enrollments", Access::Superadmin),
    ("GET", "/v1/clients", Access::Superadmin),
    ("GET", "/v1/clients/{id}", Access::Superadmin),
    ("PUT", "/v1/clients/{id}", Access::Superadmin),
    ("DELETE", "/v1/clients/{id}", Access::Superadmin),
    ("PATCH", "/v1/clients/{id}/name", Access::Superadmin),
    ("POST", "/v1/clients/{id}/enrollment", Access::Superadmin),
    ("POST", "/v1/clients/{id}/revoke", Access::Superadmin),
    ("POST", "/v1/rules", Access::Signed),
    ("GET", "/v1/rules", Access::Signed),
    ("GET", "/v1/rules/{id}", Access::Signed),
    ("PUT", "/v1/rules/{id}", Access::Signed),
    ("PATCH", "/v1/rules/{id}", Access::Signed),
    ("DELETE", "/v1/rules/{id}", Access::Signed),
    ("GET", "/v1/rules/{id}/stats", Access::Signed),
    ("GET", "/v1/rules/{id}/stats/stream", Access::Signed),
    ("GET", "/v1/metrics", Access::Superadmin),
    ("GET", "/v1/overview", Access::Signed),
    ("GET", "/v1/clients/{id}/owners", Access::Superadmin),
    (
        "GET",
        "/v1/clients/{id}/owners/{owner}/rate-limit",
        Access::Superadmin,
    ),
    (
        "PUT",
        "/v1/clients/{id}/owners/{owner}/rate-limit",
        Access::Superadmin,
    ),
    (
        "DELETE",
        "/v1/clients/{id}/owners/{owner}/rate-limit",
        Access::Superadmin,
    ),
    ("GET", "/v1/traffic", Access::Signed),
    ("GET", "/v1/quotas", Access::Signed),
    (
        "GET",
        "/v1/clients/{id}/owners/{owner}/quota",
        Access::Superadmin,
    ),
    (
        "PUT",
        "/v1/clients/{id}/owners/{owner}/quota",
        Access::Superadmin,
    ),
    (
        "DELETE",
        "/v1/clients/{id}/owners/{owner}/quota",
        Access::Superadmin,
    ),
    (
        "POST",
        "/v1/clients/{id}/owners/{owner}/quota/clear-usage",
        Access::Superadmin,
    ),
    (
        "GET",
        "/v1/settings/advertised-endpoint",
        Access::Superadmin,
    ),
    (
        "PUT",
        "/v1/settings/advertised-endpoint",
        Access::Superadmin,
    ),
];

/// The access rule of a routed `(method, path template)`.
pub fn access(method: &str, path: &str) -> Option<Access> {
    ROUTES
        .iter()
        .find(|r| r.0 == method && r.1 == path)
        .map(|r| r.2)
}
