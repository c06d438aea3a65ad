//! Why a rule could not be activated.

/// Why a rule could not be activated. `code()` is the stable reason sent
/// to the server (e.g. `port_in_use`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationReason {
    PortInUse,
    PermissionDenied,
    InvalidRule,
    Unsupported,
    BindFailed,
}

impl ActivationReason {
    pub fn code(self) -> &'static str {
        match self {
            ActivationReason::PortInUse => "port_in_use",
            ActivationReason::PermissionDenied => "permission_denied",
            ActivationReason::InvalidRule => "invalid_rule",
            ActivationReason::Unsupported => "unsupported",
            ActivationReason::BindFailed => "bind_failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", reason.code())]
pub struct ActivationError {
    pub reason: ActivationReason,
    /// Human detail naming the port and the OS error.
    pub detail: String,
}

impl ActivationError {
    pub(crate) fn new(reason: ActivationReason, detail: impl Into<String>) -> Self {
        ActivationError {
            reason,
            detail: detail.into(),
        }
    }
}
