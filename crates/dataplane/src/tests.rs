//! Engine tests over real loopback sockets. Ports come from the kernel
//! (port 0) and waits poll a condition until a deadline.

mod binding;
mod filters;
mod forwarding;
mod lifecycle;
mod quota_gates;
mod sni_routing;
pub(crate) mod support;
mod targets;
