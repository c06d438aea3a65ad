#![deny(unsafe_code)]
//! The Portunus forwarding engine. It turns a validated `RuleSpec` into
//! bound listeners and forwarded traffic, and reports counters.
//!
//! **Architecture invariant:** this crate knows nothing about gRPC, SQLite
//! or the control plane. It takes domain rule specs and gives back handles
//! and plain counter snapshots.
//!
//! Start reading at [`Engine::start_rule`] (`engine.rs`): it checks the
//! spec, binds every port (`listener.rs`) and spawns one accept loop per
//! port (`tcp.rs`). Each accepted connection dials a target (`target.rs`,
//! names resolved by `resolve.rs`) and then runs the one bidirectional copy
//! state machine (`copy.rs`) with either the splice or the userspace pump.
//! Counters live in `stats.rs`; the running rule and its shutdown in
//! `handle.rs`.
//!
//! **Architecture invariant:** all `unsafe` code sits in `sys.rs`, a few
//! thin syscall wrappers; every other module is safe Rust.

mod capability;
mod copy;
mod engine;
mod error;
mod handle;
mod listener;
mod resolve;
mod stats;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod sys;
mod target;
mod tcp;

#[cfg(test)]
mod tests;

pub use engine::{CopyMode, Engine, EngineConfig};
pub use error::{ActivationError, ActivationReason};
pub use handle::RuleHandle;
pub use stats::{PortStats, RuleStats, TargetStats};
