//! The operator HTTP API's route table: a contract shared by the server
//! (whose router a test holds to it) and the process-level tests (which
//! walk it without credentials).

/// Every `/v1` route as `(method, path, public)`. Public routes need no
/// credentials; every other one answers 401 without them (503 before the
/// first superadmin exists). The server's router test holds the router to
/// this list, and the process-level access tests walk it.
pub const ROUTES: &[(&str, &str, bool)] = &[
    ("GET", "/v1/auth/status", true),
    ("GET", "/v1/openapi.json", true),
    ("POST", "/v1/auth/onboarding", true),
    ("POST", "/v1/auth/login", true),
    ("POST", "/v1/auth/logout", false),
    ("GET", "/v1/users/me", false),
    ("POST", "/v1/users/me/password", false),
    ("POST", "/v1/users", false),
    ("GET", "/v1/users", false),
    ("GET", "/v1/users/{id}", false),
    ("PATCH", "/v1/users/{id}", false),
    ("DELETE", "/v1/users/{id}", false),
    ("POST", "/v1/users/{id}/password", false),
    ("POST", "/v1/users/{id}/credentials", false),
    ("GET", "/v1/users/{id}/credentials", false),
    ("DELETE", "/v1/users/{id}/credentials/{cid}", false),
    ("POST", "/v1/users/{id}/credentials/{cid}/rotate", false),
    ("POST", "/v1/grants", false),
    ("GET", "/v1/grants", false),
    ("DELETE", "/v1/grants/{id}", false),
    ("GET", "/v1/audit", false),
    ("POST", "/v1/client-enrollments", false),
    ("GET", "/v1/clients", false),
    ("GET", "/v1/clients/{id}", false),
    ("PUT", "/v1/clients/{id}", false),
    ("DELETE", "/v1/clients/{id}", false),
    ("PATCH", "/v1/clients/{id}/name", false),
    ("POST", "/v1/clients/{id}/enrollment", false),
    ("POST", "/v1/clients/{id}/revoke", false),
    ("POST", "/v1/rules", false),
    ("GET", "/v1/rules", false),
    ("GET", "/v1/rules/{id}", false),
    ("PUT", "/v1/rules/{id}", false),
    ("PATCH", "/v1/rules/{id}", false),
    ("DELETE", "/v1/rules/{id}", false),
    ("GET", "/v1/rules/{id}/stats", false),
    ("GET", "/v1/rules/{id}/stats/stream", false),
    ("GET", "/v1/metrics", false),
    ("GET", "/v1/overview", false),
    ("GET", "/v1/clients/{id}/owners", false),
    ("GET", "/v1/clients/{id}/owners/{owner}/rate-limit", false),
    ("PUT", "/v1/clients/{id}/owners/{owner}/rate-limit", false),
    (
        "DELETE",
        "/v1/clients/{id}/owners/{owner}/rate-limit",
        false,
    ),
    ("GET", "/v1/settings/advertised-endpoint", false),
    ("PUT", "/v1/settings/advertised-endpoint", false),
];
