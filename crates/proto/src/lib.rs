#![forbid(unsafe_code)]
//! The control-stream schema (`proto/portunus.proto`) and the conversions
//! between its messages and the domain's rule specification. Nothing else
//! converts between the two.

pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("portunus.v1");
}

pub mod codec;
mod convert;

/// The wire version this build speaks (`Hello.wire_version`,
/// `Welcome.wire_version`). Raise it when a peer must understand a new
/// field to work fully; never reuse a number.
pub const WIRE_VERSION: u32 = 3;

/// The first wire version whose clients enforce traffic quotas
/// (`QuotaGates`) and stamp their stats reports (`run_id`, `seq`,
/// `instance`).
pub const QUOTA_WIRE_VERSION: u32 = 3;

pub use convert::{rate_limit_from_pb, rate_limit_to_pb, rule_from_pb, rule_to_pb, WireError};
