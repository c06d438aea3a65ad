//! TLS SNI routing: several rules share one listening TCP port and each
//! connection goes to the rule whose pattern matches the server name of
//! its ClientHello (`route.rs`). The hello is read with a size and time
//! bound (`peek.rs`), parsed without trusting any length
//! (`client_hello.rs`) and replayed unchanged to the chosen target. The
//! shared port, the rules seated at it and its accept loop live in
//! `port.rs`.

mod client_hello;
mod peek;
mod port;
mod route;
#[cfg(test)]
pub(crate) mod tests;

pub use client_hello::{parse_client_hello, ClientHello, HelloError, MAX_HELLO_BYTES};
#[cfg(test)]
pub(crate) use port::MAX_WAITING_HELLOS;
pub(crate) use port::{SniMembership, SniPorts};
