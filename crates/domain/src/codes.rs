//! The one table that maps each stable error code to its HTTP status and its
//! command-line exit code. Servers, CLIs and docs all read this table.

use std::fmt;

macro_rules! codes {
    ($( $variant:ident = $code:literal, $http:literal, $exit:literal; )*) => {
        /// A stable, machine-readable error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $( $variant, )* }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The wire spelling, e.g. `client_not_connected`.
            pub fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            /// The HTTP status the operator API answers with.
            pub fn http_status(self) -> u16 {
                match self { $( ErrorCode::$variant => $http, )* }
            }

            /// The exit code of a command that fails with this code.
            pub fn exit_code(self) -> i32 {
                match self { $( ErrorCode::$variant => $exit, )* }
            }

            /// Parses the wire spelling; unknown codes yield `None`.
            pub fn parse(s: &str) -> Option<ErrorCode> {
                match s { $( $code => Some(ErrorCode::$variant), )* _ => None }
            }
        }
    };
}

codes! {
    // Request shape and field validation: 400, exit 2.
    InvalidRequest = "invalid_request", 400, 2;
    InvalidPort = "invalid_port", 400, 2;
    RangeInvalid = "range_invalid", 400, 2;
    ExceedsCap = "exceeds_cap", 400, 2;
    InvalidTarget = "invalid_target", 400, 2;
    InvalidPriority = "invalid_priority", 400, 2;
    TargetCount = "target_count_invalid", 400, 2;
    InvalidClientName = "invalid_client_name", 400, 2;
    InvalidUserId = "invalid_user_id", 400, 2;
    InvalidTtl = "invalid_ttl", 400, 2;
    InvalidClientAddress = "invalid_client_address", 400, 2;
    InvalidTime = "invalid_time", 400, 2;
    InvalidProtocol = "invalid_protocol", 400, 2;
    SniOnUnsupportedRule = "validation.sni_on_unsupported_rule", 400, 2;
    SniPatternInvalid = "validation.sni_pattern_invalid", 400, 2;
    ProxyProtocolInvalid = "validation.proxy_protocol_invalid", 400, 2;
    HealthCheckInvalid = "validation.health_check_interval_invalid", 400, 2;
    RateLimitCapZero = "validation.rate_limit_cap_zero", 400, 2;
    RateLimitBurstOutOfRange = "validation.rate_limit_burst_out_of_range", 400, 2;
    RateLimitBurstWithoutRate = "validation.rate_limit_burst_without_rate", 400, 2;
    PasswordTooWeak = "password_too_weak", 400, 2;
    // Pre-flight validation done by the CLI before any request: exit 3.
    RateLimitNoCapsProvided = "validation.rate_limit_no_caps_provided", 400, 3;
    // Advertised endpoint: 422, exit 2.
    EndpointInvalid = "endpoint_invalid", 422, 2;
    EndpointNotInCertSan = "endpoint_not_in_cert_san", 422, 2;
    // Authentication and authorisation.
    Unauthenticated = "unauthenticated", 401, 1;
    SetupTokenInvalid = "setup_token_invalid", 401, 1;
    Forbidden = "forbidden", 403, 1;
    ClientNotGranted = "client_not_granted", 403, 1;
    PortOutsideGrant = "port_outside_grant", 403, 1;
    ProtocolNotGranted = "protocol_not_granted", 403, 1;
    NotOwner = "not_owner", 403, 1;
    PasswordChangeRequired = "password_change_required", 403, 1;
    CsrfOriginMismatch = "csrf_origin_mismatch", 403, 1;
    CsrfHeaderMissing = "csrf_header_missing", 403, 1;
    CsrfContentType = "csrf_content_type", 403, 1;
    // Missing things: 404. A missing user exits 8 (password recovery).
    NotFound = "not_found", 404, 1;
    ClientNotFound = "client_not_found", 404, 1;
    RuleNotFound = "rule_not_found", 404, 1;
    UserNotFound = "user_not_found", 404, 8;
    // Conflicts with current state: 409.
    Conflict = "conflict", 409, 1;
    AlreadyExists = "already_exists", 409, 1;
    ClientNotConnected = "client_not_connected", 409, 5;
    ListenPortConflict = "listen_port_conflict", 409, 1;
    LegacyToSniUnsupported = "conflict.legacy_to_sni_unsupported", 409, 1;
    ClientNotRevoked = "client_not_revoked", 409, 1;
    LastSuperadmin = "last_superadmin", 409, 1;
    SuperadminExists = "superadmin_exists", 409, 1;
    FailedPrecondition = "failed_precondition", 409, 1;
    // The edge could not activate the rule: exit 6.
    PortInUse = "port_in_use", 409, 6;
    ActivationFailed = "activation_failed", 409, 6;
    // Throttling and availability.
    RateLimited = "rate_limited", 429, 1;
    BootstrapRequired = "bootstrap_required", 503, 1;
    StoreBusy = "store_busy", 503, 1;
    Internal = "internal", 500, 1;
    // Local command-line failures, never sent over HTTP.
    TokenMissing = "token_missing", 400, 4;
    ApplyIncomplete = "apply_incomplete", 409, 9;
    ServerUnreachable = "server_unreachable", 503, 7;
    StoreInUse = "store_in_use", 503, 75;
    SchemaTooNew = "schema_too_new", 500, 78;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
        }
        assert_eq!(ErrorCode::parse("nope"), None);
    }

    #[test]
    fn documented_exit_codes() {
        let cases = [
            (ErrorCode::InvalidPort, 2),
            (ErrorCode::RateLimitNoCapsProvided, 3),
            (ErrorCode::TokenMissing, 4),
            (ErrorCode::PortInUse, 6),
            (ErrorCode::ActivationFailed, 6),
            (ErrorCode::UserNotFound, 8),
            (ErrorCode::StoreInUse, 75),
            (ErrorCode::SchemaTooNew, 78),
            (ErrorCode::Unauthenticated, 1),
        ];
        for (code, exit) in cases {
            assert_eq!(code.exit_code(), exit, "{code}");
        }
    }

    #[test]
    fn documented_http_statuses() {
        let cases = [
            (ErrorCode::EndpointInvalid, 422),
            (ErrorCode::EndpointNotInCertSan, 422),
            (ErrorCode::Unauthenticated, 401),
            (ErrorCode::ClientNotGranted, 403),
            (ErrorCode::LegacyToSniUnsupported, 409),
            (ErrorCode::RateLimited, 429),
            (ErrorCode::BootstrapRequired, 503),
            (ErrorCode::InvalidClientAddress, 400),
        ];
        for (code, status) in cases {
            assert_eq!(code.http_status(), status, "{code}");
        }
    }
}
