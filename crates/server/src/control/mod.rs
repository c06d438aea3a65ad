//! The control-stream service clients dial over TLS.

pub mod incoming;
pub mod registry;
mod service;
mod session_view;
pub mod thread;

pub use service::ControlService;

#[cfg(test)]
mod tests;
