//! The one table that maps each stable error code to its HTTP status, its
//! command-line exit code and its meaning. Servers, CLIs and docs all read
//! this table.

use std::fmt;

macro_rules! codes {
    ($( $variant:ident = $code:literal, $http:literal, $exit:literal, $meaning:literal; )*) => {
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

            /// What the code means, in one sentence for operators.
            pub fn meaning(self) -> &'static str {
                match self { $( ErrorCode::$variant => $meaning, )* }
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
    InvalidRequest = "invalid_request", 400, 2, "The request is malformed: bad JSON, a missing or unknown field, a bad query string or path segment.";
    InvalidPort = "invalid_port", 400, 2, "A port is not in 1-65535.";
    RangeInvalid = "range_invalid", 400, 2, "A port range is reversed, or a target window runs past 65535.";
    ExceedsCap = "exceeds_cap", 400, 2, "A range rule is wider than `range_rule_max_ports`.";
    InvalidTarget = "invalid_target", 400, 2, "A target host is neither an IP address nor a DNS name.";
    InvalidPriority = "invalid_priority", 400, 2, "A target priority is not in 0-65535.";
    TargetCount = "target_count_invalid", 400, 2, "A rule needs 1-8 targets.";
    InvalidClientName = "invalid_client_name", 400, 2, "A client name is not 1-63 of `[A-Za-z0-9._-]` starting with a letter or digit.";
    InvalidRuleName = "invalid_rule_name", 400, 2, "A rule name is not 1-63 of `[A-Za-z0-9._-]` starting with a letter or digit.";
    InvalidRuleNote = "invalid_rule_note", 400, 2, "A rule note is longer than 1024 bytes or holds a control character.";
    InvalidUserId = "invalid_user_id", 400, 2, "A user id does not match `[a-z][a-z0-9_-]{0,31}`, or is reserved.";
    InvalidTtl = "invalid_ttl", 400, 2, "An enrollment TTL is not in 1-86400 seconds.";
    InvalidClientAddress = "invalid_client_address", 400, 2, "A client address is not a bare host name or IP address.";
    InvalidTime = "invalid_time", 400, 2, "A time is not RFC 3339.";
    InvalidProtocol = "invalid_protocol", 400, 2, "A protocol is not `tcp` or `udp`.";
    SniOnUnsupportedRule = "validation.sni_on_unsupported_rule", 400, 2, "SNI routing needs a single-port TCP rule.";
    SniPatternInvalid = "validation.sni_pattern_invalid", 400, 2, "An SNI pattern is not a lowercase host name or `*.` wildcard.";
    ProxyProtocolInvalid = "validation.proxy_protocol_invalid", 400, 2, "PROXY protocol is set on a UDP rule.";
    HealthCheckInvalid = "validation.health_check_interval_invalid", 400, 2, "A health-check interval is not in 1-3600 seconds.";
    RateLimitCapZero = "validation.rate_limit_cap_zero", 400, 2, "A rate-limit cap is zero; omit it for no cap.";
    RateLimitBurstOutOfRange = "validation.rate_limit_burst_out_of_range", 400, 2, "A burst is outside rate/100 to rate*60.";
    RateLimitBurstWithoutRate = "validation.rate_limit_burst_without_rate", 400, 2, "A burst is given without its rate.";
    SourceFilterInvalid = "validation.source_filter_invalid", 400, 2, "A source filter entry is not an IPv4 or IPv6 CIDR block with zero host bits, or a list holds more than 64.";
    ListenAddressInvalid = "validation.listen_address_invalid", 400, 2, "A listen address is not an IPv4 or IPv6 address, or is set on an SNI rule.";
    PasswordTooWeak = "password_too_weak", 400, 2, "A password is too short, only whitespace, or unchanged.";
    InvalidIdempotencyKey = "invalid_idempotency_key", 400, 2, "An `Idempotency-Key` header is not 1-128 visible ASCII characters.";
    InvalidTrafficStep = "invalid_traffic_step", 400, 2, "A traffic step is not one of 1m, 5m, 15m, 30m, 1h, 3h, 6h, 12h, 1d.";
    InvalidTrafficWindow = "invalid_traffic_window", 400, 2, "A traffic window ends before it starts, or needs more than 2000 buckets at its step.";
    InvalidQuota = "invalid_quota", 400, 2, "A quota's monthly bytes are 0 or too large, its reset day is not 1-28 or comes with never-reset, or its end date is not YYYY-MM-DD.";
    // Pre-flight validation done by the CLI before any request: exit 3.
    RateLimitNoCapsProvided = "validation.rate_limit_no_caps_provided", 400, 3, "A rate limit names no cap at all.";
    // Advertised endpoint: 422, exit 2.
    EndpointInvalid = "endpoint_invalid", 422, 2, "An advertised endpoint is not a bare `host:port`.";
    EndpointNotInCertSan = "endpoint_not_in_cert_san", 422, 2, "An advertised endpoint's host is not covered by the certificate's SAN.";
    IdempotencyKeyReused = "idempotency_key_reused", 422, 2, "An `Idempotency-Key` already named a different push.";
    // Authentication and authorisation.
    Unauthenticated = "unauthenticated", 401, 1, "No valid bearer token or session cookie, or a wrong user id or password.";
    SetupTokenInvalid = "setup_token_invalid", 401, 1, "The first-run setup token is wrong or expired.";
    Forbidden = "forbidden", 403, 1, "The caller's role may not do this, or the current password is wrong.";
    ClientNotGranted = "client_not_granted", 403, 1, "No grant of the user covers the client.";
    PortOutsideGrant = "port_outside_grant", 403, 1, "No grant of the user covers the listen ports.";
    ProtocolNotGranted = "protocol_not_granted", 403, 1, "No grant of the user allows the protocol on those ports.";
    NotOwner = "not_owner", 403, 1, "The rule belongs to another user.";
    PasswordChangeRequired = "password_change_required", 403, 1, "The session's password is temporary; change it first.";
    CsrfOriginMismatch = "csrf_origin_mismatch", 403, 1, "A cookie-authenticated write without a same-origin `Origin`.";
    CsrfHeaderMissing = "csrf_header_missing", 403, 1, "A cookie-authenticated write without `X-Portunus-CSRF: 1`.";
    CsrfContentType = "csrf_content_type", 403, 1, "A cookie-authenticated write whose body is not JSON.";
    // Missing things: 404. A missing user exits 8 (password recovery).
    NotFound = "not_found", 404, 1, "No such route, or no such thing (an owner envelope, for one).";
    ClientNotFound = "client_not_found", 404, 1, "No client has that id or name.";
    RuleNotFound = "rule_not_found", 404, 1, "No rule has that id.";
    UserNotFound = "user_not_found", 404, 8, "No user has that id.";
    QuotaNotFound = "quota_not_found", 404, 1, "The owner has no quota on that client.";
    // Conflicts with current state: 409.
    Conflict = "conflict", 409, 1, "The change conflicts with the current state.";
    AlreadyExists = "already_exists", 409, 1, "Something with that name or id exists already.";
    ClientNotConnected = "client_not_connected", 409, 5, "The rule's client has no live control stream.";
    ListenPortConflict = "listen_port_conflict", 409, 1, "Another rule on the client listens on those ports.";
    LegacyToSniUnsupported = "conflict.legacy_to_sni_unsupported", 409, 1, "A plain rule and an SNI rule cannot share a port.";
    ClientNotRevoked = "client_not_revoked", 409, 1, "Only a revoked client can be deleted.";
    LastSuperadmin = "last_superadmin", 409, 1, "The last active superadmin cannot be removed, demoted or disabled.";
    SuperadminExists = "superadmin_exists", 409, 1, "Onboarding or bootstrap is closed: a superadmin exists.";
    FailedPrecondition = "failed_precondition", 409, 1, "The thing is not in a state that allows this.";
    // The edge could not activate the rule: exit 6.
    PortInUse = "port_in_use", 409, 6, "The edge could not bind a listen port: it is in use.";
    ActivationFailed = "activation_failed", 409, 6, "The edge could not activate the rule.";
    // Requests the router refuses before any handler runs.
    MethodNotAllowed = "method_not_allowed", 405, 1, "The route exists but not with this method; `Allow` lists those it takes.";
    PayloadTooLarge = "payload_too_large", 413, 1, "The request body is larger than the API accepts.";
    UriTooLong = "uri_too_long", 414, 1, "The request's path and query are longer than the server reads.";
    HeadersTooLarge = "headers_too_large", 431, 1, "The request's headers are larger or more numerous than the server reads.";
    RateLimited = "rate_limited", 429, 1, "Too many failed attempts; retry after `Retry-After` seconds.";
    BootstrapRequired = "bootstrap_required", 503, 1, "No superadmin exists yet; complete onboarding first.";
    StoreBusy = "store_busy", 503, 1, "The store is busy; retry.";
    StoreUnavailable = "store_unavailable", 503, 69, "The database cannot be reached; the API answers again when it is back.";
    Internal = "internal", 500, 1, "An unexpected server failure.";
    // Local command-line failures, never sent over HTTP.
    TokenMissing = "token_missing", 400, 4, "`PORTUNUS_OPERATOR_TOKEN` is not set.";
    RuleNameAmbiguous = "rule_name_ambiguous", 409, 2, "Rules on several clients have that name; name the client.";
    ApplyIncomplete = "apply_incomplete", 409, 9, "Some changes of `apply` failed; the others were applied.";
    ServerUnreachable = "server_unreachable", 503, 7, "The operator API could not be reached.";
    StoreInUse = "store_in_use", 503, 75, "Another process holds the data dir.";
    SchemaTooNew = "schema_too_new", 500, 78, "The store was written by a newer version.";
    DatabaseUrlInvalid = "database_url_invalid", 400, 78, "The database URL is not a `postgres://` URL the server can use.";
    SqliteOnly = "sqlite_only", 409, 64, "The command works on a SQLite data dir; on PostgreSQL use `pg_dump` / `pg_restore`.";
    TargetNotEmpty = "target_not_empty", 409, 73, "`migrate-store` copies into an empty database only.";
}

impl ErrorCode {
    /// Failures of the command line itself, never sent over HTTP.
    pub const LOCAL: &'static [ErrorCode] = &[
        ErrorCode::TokenMissing,
        ErrorCode::RuleNameAmbiguous,
        ErrorCode::ApplyIncomplete,
        ErrorCode::ServerUnreachable,
        ErrorCode::StoreInUse,
        ErrorCode::SchemaTooNew,
    ];
}

/// Marks the generated table in `docs/api.md`.
pub const TABLE_START: &str = "<!-- codes:start: generated from crates/domain/src/codes.rs -->";
pub const TABLE_END: &str = "<!-- codes:end -->";

/// The code table as Markdown, as `docs/api.md` holds it between
/// [`TABLE_START`] and [`TABLE_END`].
pub fn markdown_table() -> String {
    let mut out = String::from("| code | HTTP | exit | meaning |\n| --- | --- | --- | --- |\n");
    for code in ErrorCode::ALL {
        let http = if ErrorCode::LOCAL.contains(code) {
            "—".to_string()
        } else {
            code.http_status().to_string()
        };
        out.push_str(&format!(
            "| `{code}` | {http} | {} | {} |\n",
            code.exit_code(),
            code.meaning()
        ));
    }
    out
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

    /// `docs/api.md` holds the table this file generates; when a code
    /// changes, paste the printed text between the markers.
    #[test]
    fn docs_api_md_holds_the_code_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let start = doc.find(TABLE_START).expect("start marker") + TABLE_START.len();
        let end = doc.find(TABLE_END).expect("end marker");
        let want = markdown_table();
        assert!(
            doc[start..end].trim() == want.trim(),
            "docs/api.md is stale; put this between the markers:\n{TABLE_START}\n{want}{TABLE_END}"
        );
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
