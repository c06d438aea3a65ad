//! Which stable codes each route can answer with. The document turns this
//! table into one error response per status, so a client generated from
//! it knows every failure a call can end in.

use portunus_domain::ErrorCode::{self, *};

/// Codes a route's own logic answers with. Those every route of its kind
/// shares (authentication, CSRF, store failures, malformed input) are
/// added by [`codes`].
pub const ROUTE_CODES: &[(&str, &str, &[ErrorCode])] = &[
    ("GET", "/v1/auth/status", &[]),
    ("GET", "/v1/openapi.json", &[]),
    (
        "POST",
        "/v1/auth/onboarding",
        &[
            RateLimited,
            SuperadminExists,
            SetupTokenInvalid,
            InvalidUserId,
            PasswordTooWeak,
            AlreadyExists,
        ],
    ),
    ("POST", "/v1/auth/login", &[RateLimited, Unauthenticated]),
    ("POST", "/v1/auth/logout", &[]),
    ("GET", "/v1/users/me", &[UserNotFound]),
    (
        "POST",
        "/v1/users/me/password",
        &[
            RateLimited,
            Forbidden,
            PasswordTooWeak,
            FailedPrecondition,
            UserNotFound,
        ],
    ),
    (
        "POST",
        "/v1/users",
        &[Forbidden, InvalidUserId, PasswordTooWeak, AlreadyExists],
    ),
    ("GET", "/v1/users", &[Forbidden]),
    ("GET", "/v1/users/{id}", &[Forbidden, UserNotFound]),
    (
        "PATCH",
        "/v1/users/{id}",
        &[Forbidden, UserNotFound, LastSuperadmin],
    ),
    (
        "DELETE",
        "/v1/users/{id}",
        &[Forbidden, UserNotFound, LastSuperadmin],
    ),
    (
        "POST",
        "/v1/users/{id}/password",
        &[Forbidden, PasswordTooWeak, UserNotFound],
    ),
    (
        "POST",
        "/v1/users/{id}/credentials",
        &[Forbidden, UserNotFound],
    ),
    (
        "GET",
        "/v1/users/{id}/credentials",
        &[Forbidden, UserNotFound],
    ),
    (
        "DELETE",
        "/v1/users/{id}/credentials/{cid}",
        &[Forbidden, NotFound],
    ),
    (
        "POST",
        "/v1/users/{id}/credentials/{cid}/rotate",
        &[Forbidden, NotFound, Conflict],
    ),
    (
        "POST",
        "/v1/grants",
        &[
            Forbidden,
            InvalidPort,
            RangeInvalid,
            InvalidProtocol,
            UserNotFound,
            ClientNotFound,
        ],
    ),
    ("GET", "/v1/grants", &[]),
    ("DELETE", "/v1/grants/{id}", &[Forbidden, NotFound]),
    ("GET", "/v1/audit", &[Forbidden, InvalidTime]),
    (
        "POST",
        "/v1/client-enrollments",
        &[
            Forbidden,
            InvalidClientName,
            InvalidClientAddress,
            InvalidTtl,
            EndpointInvalid,
            EndpointNotInCertSan,
        ],
    ),
    ("GET", "/v1/clients", &[Forbidden]),
    ("GET", "/v1/clients/{id}", &[Forbidden, ClientNotFound]),
    (
        "PUT",
        "/v1/clients/{id}",
        &[Forbidden, InvalidClientAddress, ClientNotFound],
    ),
    (
        "DELETE",
        "/v1/clients/{id}",
        &[Forbidden, ClientNotFound, ClientNotRevoked],
    ),
    (
        "PATCH",
        "/v1/clients/{id}/name",
        &[Forbidden, InvalidClientName, ClientNotFound, AlreadyExists],
    ),
    (
        "POST",
        "/v1/clients/{id}/enrollment",
        &[
            Forbidden,
            ClientNotFound,
            InvalidTtl,
            EndpointInvalid,
            EndpointNotInCertSan,
        ],
    ),
    (
        "POST",
        "/v1/clients/{id}/revoke",
        &[Forbidden, ClientNotFound],
    ),
    (
        "POST",
        "/v1/rules",
        &[
            InvalidPort,
            RangeInvalid,
            ExceedsCap,
            TargetCount,
            InvalidTarget,
            InvalidPriority,
            ProxyProtocolInvalid,
            SniOnUnsupportedRule,
            SniPatternInvalid,
            HealthCheckInvalid,
            RateLimitCapZero,
            RateLimitBurstOutOfRange,
            RateLimitBurstWithoutRate,
            InvalidRuleName,
            InvalidRuleNote,
            AlreadyExists,
            SourceFilterInvalid,
            ListenAddressInvalid,
            ClientNotGranted,
            PortOutsideGrant,
            ProtocolNotGranted,
            ClientNotFound,
            ClientNotConnected,
            ListenPortConflict,
            LegacyToSniUnsupported,
            PortInUse,
            ActivationFailed,
            InvalidIdempotencyKey,
            IdempotencyKeyReused,
        ],
    ),
    ("GET", "/v1/rules", &[ClientNotFound]),
    ("GET", "/v1/rules/{id}", &[NotOwner, RuleNotFound]),
    (
        "PUT",
        "/v1/rules/{id}",
        &[
            ExceedsCap,
            RateLimitCapZero,
            RateLimitBurstOutOfRange,
            RateLimitBurstWithoutRate,
            NotOwner,
            RuleNotFound,
        ],
    ),
    (
        "PATCH",
        "/v1/rules/{id}",
        &[
            InvalidRuleName,
            InvalidRuleNote,
            NotOwner,
            RuleNotFound,
            AlreadyExists,
            PortInUse,
            ActivationFailed,
        ],
    ),
    ("DELETE", "/v1/rules/{id}", &[NotOwner, RuleNotFound]),
    ("GET", "/v1/rules/{id}/stats", &[NotOwner, RuleNotFound]),
    (
        "GET",
        "/v1/rules/{id}/stats/stream",
        &[NotOwner, RuleNotFound],
    ),
    ("GET", "/v1/metrics", &[Forbidden]),
    ("GET", "/v1/overview", &[]),
    (
        "GET",
        "/v1/clients/{id}/owners",
        &[Forbidden, ClientNotFound],
    ),
    (
        "GET",
        "/v1/clients/{id}/owners/{owner}/rate-limit",
        &[Forbidden, ClientNotFound, NotFound],
    ),
    (
        "PUT",
        "/v1/clients/{id}/owners/{owner}/rate-limit",
        &[
            Forbidden,
            RateLimitNoCapsProvided,
            RateLimitCapZero,
            RateLimitBurstOutOfRange,
            RateLimitBurstWithoutRate,
            ClientNotFound,
            UserNotFound,
        ],
    ),
    (
        "DELETE",
        "/v1/clients/{id}/owners/{owner}/rate-limit",
        &[Forbidden, ClientNotFound, NotFound],
    ),
    (
        "GET",
        "/v1/traffic",
        &[
            InvalidTime,
            InvalidTrafficStep,
            InvalidTrafficWindow,
            NotOwner,
            RuleNotFound,
            ClientNotFound,
        ],
    ),
    ("GET", "/v1/quotas", &[ClientNotFound]),
    (
        "GET",
        "/v1/clients/{id}/owners/{owner}/quota",
        &[Forbidden, ClientNotFound, QuotaNotFound],
    ),
    (
        "PUT",
        "/v1/clients/{id}/owners/{owner}/quota",
        &[Forbidden, InvalidQuota, ClientNotFound, UserNotFound],
    ),
    (
        "DELETE",
        "/v1/clients/{id}/owners/{owner}/quota",
        &[Forbidden, ClientNotFound, QuotaNotFound],
    ),
    (
        "POST",
        "/v1/clients/{id}/owners/{owner}/quota/clear-usage",
        &[Forbidden, ClientNotFound, QuotaNotFound],
    ),
    ("GET", "/v1/settings/advertised-endpoint", &[Forbidden]),
    (
        "PUT",
        "/v1/settings/advertised-endpoint",
        &[Forbidden, EndpointInvalid, EndpointNotInCertSan],
    ),
];

/// What the document knows of a route besides its table row.
pub struct RouteShape {
    pub public: bool,
    pub has_params: bool,
    pub has_body: bool,
}

/// Every code `method path` can answer with, in table order: its own, then
/// those of its kind.
pub fn codes(method: &str, path: &str, shape: &RouteShape) -> Vec<ErrorCode> {
    let own = ROUTE_CODES
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map_or(&[][..], |r| r.2);
    // The operator listener refuses an oversized request head on any route.
    let mut out = vec![UriTooLong, HeadersTooLarge];
    if shape.has_params || shape.has_body {
        out.push(InvalidRequest);
    }
    if shape.has_body {
        out.push(PayloadTooLarge);
    }
    if !shape.public {
        out.push(Unauthenticated);
        if method != "GET" {
            out.extend([CsrfOriginMismatch, CsrfHeaderMissing, CsrfContentType]);
        }
        if !crate::authz::allowed_with_temporary_password(method, path) {
            out.push(PasswordChangeRequired);
        }
        out.push(BootstrapRequired);
    }
    out.extend_from_slice(own);
    // Only the document itself is served without touching the store.
    if path != "/v1/openapi.json" {
        out.extend([StoreBusy, Internal]);
    }
    let mut seen = Vec::new();
    out.retain(|c| {
        let new = !seen.contains(c);
        seen.push(*c);
        new
    });
    out
}
