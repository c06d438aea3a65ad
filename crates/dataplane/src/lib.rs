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
//! names resolved by `resolve.rs`, the best healthy one first by
//! `health.rs`), writes a PROXY header when the target wants one
//! (`proxy_protocol.rs`) and then runs the one bidirectional copy state
//! machine (`copy.rs`) with either the splice or the userspace pump. Rules
//! routed by TLS SNI share one listening socket per port (`sni.rs`).
//! UDP rules run one task per listen port with a flow table and batched
//! I/O (`udp.rs`). Counters live in `stats.rs`; the running rule and its
//! shutdown in `handle.rs`.
//!
//! **Architecture invariant:** all `unsafe` code sits in `sys.rs`, a few
//! thin syscall wrappers; every other module is safe Rust.

mod capability;
mod copy;
mod engine;
mod error;
mod gate;
mod handle;
mod health;
pub mod limit;
mod listener;
mod proxy_protocol;
mod resolve;
pub mod sni;
mod stats;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod sys;
mod target;
mod tcp;
mod udp;

#[cfg(test)]
mod tests;

pub use engine::{CopyMode, Engine, EngineConfig};
pub use error::{ActivationError, ActivationReason};
pub use handle::RuleHandle;
pub use stats::{PortStats, RuleStats, TargetStats};
pub use udp::{flows_for_descriptors, FlowBudget};
