//! Authorisation: every "may this actor do that" decision, as pure
//! functions over the actor and the things it touches. Handlers load what
//! a decision needs and call one of these; nothing else decides access.

use crate::store::grants::GrantRow;
use crate::store::rules::RuleRow;
use crate::store::users::{Actor, Role};
use portunus_domain::rule::RuleSpec;
use portunus_domain::{DomainError, ErrorCode};

pub fn require_superadmin(actor: &Actor) -> Result<(), DomainError> {
    match actor.role {
        Role::Superadmin => Ok(()),
        Role::User => Err(DomainError::new(
            ErrorCode::Forbidden,
            "this operation needs a superadmin",
        )),
    }
}

/// A user's own record and credentials are theirs to manage; anyone
/// else's need a superadmin.
pub fn may_manage_user(actor: &Actor, user_id: &str) -> Result<(), DomainError> {
    if actor.user_id == user_id {
        Ok(())
    } else {
        require_superadmin(actor)
    }
}

/// Refuses a change that takes away an active superadmin when it is the
/// only one left.
pub fn may_lose_superadmin(active_superadmins: u64) -> Result<(), DomainError> {
    if active_superadmins > 1 {
        Ok(())
    } else {
        Err(DomainError::new(
            ErrorCode::LastSuperadmin,
            "this is the last active superadmin; add another superadmin first",
        ))
    }
}

/// Whether one grant covers a rule on `client_id`: the client (or `*`),
/// the whole listen range and the protocol. Otherwise the error names the
/// first requirement no grant of the user meets, in that order.
pub fn covered(grants: &[GrantRow], client_id: &str, spec: &RuleSpec) -> Result<(), ErrorCode> {
    let start = spec.listen_port;
    let end = spec.listen_port_end.unwrap_or(start);
    let for_client: Vec<&GrantRow> = grants
        .iter()
        .filter(|g| g.client_id.as_deref().is_none_or(|c| c == client_id))
        .collect();
    if for_client.is_empty() {
        return Err(ErrorCode::ClientNotGranted);
    }
    let for_ports: Vec<&&GrantRow> = for_client
        .iter()
        .filter(|g| g.port_start <= start && end <= g.port_end)
        .collect();
    if for_ports.is_empty() {
        return Err(ErrorCode::PortOutsideGrant);
    }
    if for_ports
        .iter()
        .any(|g| g.protocols.contains(&spec.protocol))
    {
        Ok(())
    } else {
        Err(ErrorCode::ProtocolNotGranted)
    }
}

/// Superadmins may push anywhere. Users need one grant covering the client,
/// the whole listen range and the protocol.
pub fn may_push(
    actor: &Actor,
    client: (&str, &str),
    spec: &RuleSpec,
    grants: &[GrantRow],
) -> Result<(), DomainError> {
    if actor.role == Role::Superadmin {
        return Ok(());
    }
    let (client_id, client_name) = client;
    let listen = match spec.listen_port_end {
        Some(end) => format!("{}-{end}", spec.listen_port),
        None => spec.listen_port.to_string(),
    };
    covered(grants, client_id, spec).map_err(|code| {
        let why = match code {
            ErrorCode::ClientNotGranted => format!("no grant covers client {client_name:?}"),
            ErrorCode::PortOutsideGrant => {
                format!("no grant on client {client_name:?} covers listen ports {listen}")
            }
            _ => format!(
                "no grant on client {client_name:?} for ports {listen} allows {}",
                spec.protocol.as_str()
            ),
        };
        DomainError::new(code, format!("{}: {why}", actor.user_id))
    })
}

/// Non-superadmins see and touch only the rules they own.
pub fn may_touch_rule(actor: &Actor, rule: &RuleRow) -> Result<(), DomainError> {
    if actor.role == Role::Superadmin || rule.owner == actor.user_id {
        Ok(())
    } else {
        Err(DomainError::new(
            ErrorCode::NotOwner,
            format!("rule {} belongs to another user", rule.id),
        ))
    }
}

/// The owner filter a listing must apply for this actor.
pub fn visible_owner<'a>(actor: &'a Actor, requested: Option<&'a str>) -> Option<&'a str> {
    match actor.role {
        Role::Superadmin => requested,
        Role::User => Some(&actor.user_id),
    }
}

/// The user filter a grant listing must apply for this actor.
pub fn visible_grants<'a>(actor: &'a Actor, requested: Option<&'a str>) -> Option<&'a str> {
    visible_owner(actor, requested)
}

/// What a session whose password is temporary may still do: look at
/// itself, change the password, log out.
pub fn allowed_with_temporary_password(method: &str, path: &str) -> bool {
    matches!(
        (method, path),
        ("GET", "/v1/users/me") | ("POST", "/v1/users/me/password") | ("POST", "/v1/auth/logout")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use portunus_domain::rule::Protocol;

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: "alice".into(),
            role,
        }
    }

    fn grant(client: Option<&str>, ports: (u32, u32), protocols: &[Protocol]) -> GrantRow {
        GrantRow {
            id: "g".into(),
            user_id: "alice".into(),
            client_id: client.map(str::to_string),
            client_name: client.map(str::to_string),
            port_start: ports.0,
            port_end: ports.1,
            protocols: protocols.to_vec(),
            created_at: 0,
        }
    }

    fn spec(start: u32, end: Option<u32>, protocol: Protocol) -> RuleSpec {
        RuleSpec {
            listen_port_end: end,
            ..RuleSpec::single(protocol, start, "127.0.0.1", 9)
        }
    }

    #[test]
    fn listing_filter() {
        assert_eq!(visible_owner(&actor(Role::Superadmin), None), None);
        assert_eq!(
            visible_owner(&actor(Role::Superadmin), Some("bob")),
            Some("bob")
        );
        assert_eq!(
            visible_owner(&actor(Role::User), Some("bob")),
            Some("alice")
        );
        assert_eq!(visible_grants(&actor(Role::User), None), Some("alice"));
        assert!(require_superadmin(&actor(Role::User)).is_err());
        assert!(require_superadmin(&actor(Role::Superadmin)).is_ok());
    }

    #[test]
    fn grant_coverage_table() {
        use ErrorCode::*;
        use Protocol::*;
        let tcp_edge = grant(Some("edge"), (8000, 8100), &[Tcp]);
        let udp_edge_low = grant(Some("edge"), (100, 200), &[Udp]);
        let any_both = grant(None, (9000, 9000), &[Tcp, Udp]);
        type Case<'a> = (&'a [GrantRow], &'a str, RuleSpec, Result<(), ErrorCode>);
        let cases: &[Case] = &[
            (&[], "edge", spec(8000, None, Tcp), Err(ClientNotGranted)),
            (
                std::slice::from_ref(&tcp_edge),
                "other",
                spec(8000, None, Tcp),
                Err(ClientNotGranted),
            ),
            (
                std::slice::from_ref(&tcp_edge),
                "edge",
                spec(8000, None, Tcp),
                Ok(()),
            ),
            (
                std::slice::from_ref(&tcp_edge),
                "edge",
                spec(8100, None, Tcp),
                Ok(()),
            ),
            (
                std::slice::from_ref(&tcp_edge),
                "edge",
                spec(8000, Some(8100), Tcp),
                Ok(()),
            ),
            (
                std::slice::from_ref(&tcp_edge),
                "edge",
                spec(7999, None, Tcp),
                Err(PortOutsideGrant),
            ),
            // The whole range must be inside one grant.
            (
                std::slice::from_ref(&tcp_edge),
                "edge",
                spec(8050, Some(8101), Tcp),
                Err(PortOutsideGrant),
            ),
            (
                std::slice::from_ref(&tcp_edge),
                "edge",
                spec(8000, None, Udp),
                Err(ProtocolNotGranted),
            ),
            // Ports from one grant and protocol from another do not add up.
            (
                &[tcp_edge.clone(), udp_edge_low.clone()],
                "edge",
                spec(8000, None, Udp),
                Err(ProtocolNotGranted),
            ),
            (
                &[tcp_edge.clone(), udp_edge_low.clone()],
                "edge",
                spec(150, None, Udp),
                Ok(()),
            ),
            (
                &[tcp_edge.clone(), udp_edge_low.clone()],
                "edge",
                spec(150, None, Tcp),
                Err(ProtocolNotGranted),
            ),
            // `*` covers every client.
            (
                std::slice::from_ref(&any_both),
                "edge",
                spec(9000, None, Udp),
                Ok(()),
            ),
            (
                std::slice::from_ref(&any_both),
                "x",
                spec(9000, None, Tcp),
                Ok(()),
            ),
            (
                std::slice::from_ref(&any_both),
                "x",
                spec(9000, Some(9001), Tcp),
                Err(PortOutsideGrant),
            ),
            // Two adjacent grants do not cover a range spanning both.
            (
                &[
                    grant(Some("edge"), (1, 10), &[Tcp]),
                    grant(Some("edge"), (11, 20), &[Tcp]),
                ],
                "edge",
                spec(5, Some(15), Tcp),
                Err(PortOutsideGrant),
            ),
        ];
        for (i, (grants, client, spec, want)) in cases.iter().enumerate() {
            assert_eq!(covered(grants, client, spec), *want, "case {i}");
            let user = may_push(&actor(Role::User), (client, client), spec, grants);
            assert_eq!(user.map_err(|e| e.code), *want, "case {i} (user)");
            assert!(
                may_push(&actor(Role::Superadmin), (client, client), spec, grants).is_ok(),
                "case {i} (superadmin)"
            );
        }
    }

    #[test]
    fn ownership_and_self_management() {
        let rule = |owner: &str| RuleRow {
            id: "r".into(),
            client_id: "c".into(),
            client_name: "edge".into(),
            owner: owner.into(),
            spec: spec(1, None, Protocol::Tcp),
            state: crate::store::rules::RuleState::Active,
            reason: None,
            created_at: 0,
            updated_at: 0,
            enabled: true,
            label: Default::default(),
        };
        let cases = [
            (Role::User, "alice", Ok(())),
            (Role::User, "bob", Err(ErrorCode::NotOwner)),
            (Role::Superadmin, "bob", Ok(())),
        ];
        for (role, owner, want) in cases {
            assert_eq!(
                may_touch_rule(&actor(role), &rule(owner)).map_err(|e| e.code),
                want,
                "{role:?} {owner}"
            );
        }
        let cases = [
            (Role::User, "alice", Ok(())),
            (Role::User, "bob", Err(ErrorCode::Forbidden)),
            (Role::Superadmin, "bob", Ok(())),
        ];
        for (role, target, want) in cases {
            assert_eq!(
                may_manage_user(&actor(role), target).map_err(|e| e.code),
                want,
                "{role:?} {target}"
            );
        }
    }

    #[test]
    fn last_superadmin_and_temporary_passwords() {
        assert_eq!(
            may_lose_superadmin(0).unwrap_err().code,
            ErrorCode::LastSuperadmin
        );
        assert_eq!(
            may_lose_superadmin(1).unwrap_err().code,
            ErrorCode::LastSuperadmin
        );
        assert!(may_lose_superadmin(2).is_ok());
        let cases = [
            ("GET", "/v1/users/me", true),
            ("POST", "/v1/users/me/password", true),
            ("POST", "/v1/auth/logout", true),
            ("GET", "/v1/users/me/password", false),
            ("POST", "/v1/users/me", false),
            ("GET", "/v1/rules", false),
            ("DELETE", "/v1/users/me", false),
        ];
        for (m, p, want) in cases {
            assert_eq!(allowed_with_temporary_password(m, p), want, "{m} {p}");
        }
    }
}
