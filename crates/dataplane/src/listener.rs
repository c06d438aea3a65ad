//! Binding a rule's listen ports, all or none.

use crate::error::{ActivationError, ActivationReason};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use tokio::net::TcpListener;

const BACKLOG: i32 = 1024;

/// Binds every port of `ports` on all IPv4 addresses. If one port fails,
/// the sockets bound so far are closed before returning, so a failed rule
/// leaves nothing behind. Must run inside a Tokio runtime.
pub(crate) fn bind_tcp(ports: RangeInclusive<u16>) -> Result<Vec<TcpListener>, ActivationError> {
    let mut sockets = Vec::with_capacity(ports.len());
    for port in ports.clone() {
        let socket = bind_one(port).map_err(|e| classify_bind_error("tcp", port, &e))?;
        sockets.push(socket);
    }
    // Registering with the runtime only after every bind succeeded keeps
    // the failure path a plain close.
    sockets
        .into_iter()
        .zip(ports)
        .map(|(socket, port)| {
            TcpListener::from_std(socket.into()).map_err(|e| {
                ActivationError::new(
                    ActivationReason::BindFailed,
                    format!("tcp port {port}: {e}"),
                )
            })
        })
        .collect()
}

/// Binds every port of `ports` for UDP on all IPv4 addresses, all or none
/// like `bind_tcp`. The sockets are returned unregistered and blocking;
/// the UDP engine sets them up.
pub(crate) fn bind_udp(
    ports: RangeInclusive<u16>,
) -> Result<Vec<std::net::UdpSocket>, ActivationError> {
    ports
        .map(|port| {
            bind_one_udp(port)
                .map(std::net::UdpSocket::from)
                .map_err(|e| classify_bind_error("udp", port, &e))
        })
        .collect()
}

/// No `SO_REUSEADDR` here: for UDP it would let two sockets share the
/// port and hide a busy one.
fn bind_one_udp(port: u16) -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    Ok(socket)
}

/// A listening, nonblocking socket. `SO_REUSEADDR` lets a port be bound
/// again while old connections linger in TIME_WAIT, yet still fails when
/// another socket listens there; `SO_REUSEPORT` would hide that.
///
/// `TCP_NODELAY` is set here once because accepted sockets inherit it,
/// which saves a syscall on every connection (small writes such as TLS
/// handshakes must not wait for Nagle).
fn bind_one(port: u16) -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    socket.listen(BACKLOG)?;
    Ok(socket)
}

/// Maps a failed bind or listen to the reason reported to the server.
/// EADDRINUSE can come from `listen` too, when two sockets with
/// `SO_REUSEADDR` bound the same port.
pub(crate) fn classify_bind_error(protocol: &str, port: u16, error: &io::Error) -> ActivationError {
    let reason = match error.kind() {
        io::ErrorKind::AddrInUse => ActivationReason::PortInUse,
        io::ErrorKind::PermissionDenied => ActivationReason::PermissionDenied,
        _ => ActivationReason::BindFailed,
    };
    ActivationError::new(reason, format!("{protocol} port {port}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_bind_error_table() {
        let cases = [
            (libc::EADDRINUSE, ActivationReason::PortInUse),
            (libc::EACCES, ActivationReason::PermissionDenied),
            (libc::EPERM, ActivationReason::PermissionDenied),
            (libc::EADDRNOTAVAIL, ActivationReason::BindFailed),
            (libc::EMFILE, ActivationReason::BindFailed),
            (libc::ENOBUFS, ActivationReason::BindFailed),
        ];
        for (errno, want) in cases {
            let e = classify_bind_error("udp", 4242, &io::Error::from_raw_os_error(errno));
            assert_eq!(e.reason, want, "errno {errno}");
            assert!(e.detail.contains("udp port 4242"), "{}", e.detail);
        }
    }

    /// The data plane relies on accepted sockets inheriting TCP_NODELAY
    /// from their listener instead of setting it per connection.
    #[tokio::test]
    async fn accepted_connections_inherit_nodelay() {
        let listener = bind_tcp(0..=0).expect("bind").pop().expect("one listener");
        let port = listener.local_addr().expect("address").port();
        let (connected, accepted) = tokio::join!(
            tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)),
            listener.accept()
        );
        let _connected = connected.expect("connect");
        let (accepted, _) = accepted.expect("accept");
        assert!(accepted.nodelay().expect("TCP_NODELAY"));
    }
}
