//! Authorisation: every "may this actor do that" decision, as pure
//! functions over the actor and the things it touches.

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

/// Superadmins may push anywhere. Users need a grant covering the client,
/// the whole listen range and the protocol.
pub fn may_push(actor: &Actor, client_name: &str, _spec: &RuleSpec) -> Result<(), DomainError> {
    match actor.role {
        Role::Superadmin => Ok(()),
        Role::User => Err(DomainError::new(
            ErrorCode::ClientNotGranted,
            format!(
                "no grant lets {} push rules to client {client_name:?}",
                actor.user_id
            ),
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: "alice".into(),
            role,
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
        assert!(require_superadmin(&actor(Role::User)).is_err());
        assert!(require_superadmin(&actor(Role::Superadmin)).is_ok());
    }
}
