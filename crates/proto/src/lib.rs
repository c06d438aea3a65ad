#![forbid(unsafe_code)]
//! The control-stream schema (`proto/portunus.proto`) and the conversions
//! between its messages and the domain's rule specification. Nothing else
//! converts between the two.

pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("portunus.v1");
}

mod convert;

pub use convert::{rate_limit_from_pb, rate_limit_to_pb, rule_from_pb, rule_to_pb, WireError};
