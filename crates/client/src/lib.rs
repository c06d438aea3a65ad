#![forbid(unsafe_code)]
//! The Portunus edge as a library: the `portunus-client` binary is a thin
//! `main` over it, and the fleet simulator (`examples/fleet_sim`) speaks the
//! control protocol with the same TLS pinning, wire messages and backoff.
//!
//! Start reading at `daemon.rs` (the process) and `control.rs` (the
//! stream); `reconcile.rs` owns what runs, `tls.rs` whom we trust.

pub mod backoff;
pub mod bundle;
pub mod cli;
pub mod control;
pub mod daemon;
pub mod enroll;
pub mod enroll_uri;
pub mod first_run;
pub mod logging;
pub mod pin;
pub mod reconcile;
pub mod tls;
pub mod wire;

#[cfg(test)]
mod testing;
