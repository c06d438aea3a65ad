//! Binding a rule's listen ports, all or none.
//!
//! Without a listen address a port is one dual-stack socket, `[::]` with
//! `IPV6_V6ONLY` off, so a rule answers on every address family of the
//! edge with one socket per port and IPv4 peers show as IPv4-mapped IPv6
//! addresses. On a host without IPv6 the socket falls back to IPv4. A
//! listen address binds that address only; `::` then means IPv6 alone and
//! `0.0.0.0` IPv4 alone.

use crate::error::{ActivationError, ActivationReason};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use tokio::net::TcpListener;

const BACKLOG: i32 = 1024;
/// Bytes of receive buffer a UDP listen socket asks for.
const UDP_LISTEN_RCVBUF: usize = 2 << 20;

/// A new socket bound to `port` of `address`, or of every address.
fn bound(ty: Type, protocol: Protocol, address: Option<IpAddr>, port: u16) -> io::Result<Socket> {
    let (socket, ip) = match address {
        Some(ip) => {
            let socket = Socket::new(Domain::for_address((ip, port).into()), ty, Some(protocol))?;
            if ip.is_ipv6() {
                socket.set_only_v6(true)?;
            }
            (socket, ip)
        }
        None => match Socket::new(Domain::IPV6, ty, Some(protocol)) {
            Ok(socket) => {
                socket.set_only_v6(false)?;
                (socket, IpAddr::V6(Ipv6Addr::UNSPECIFIED))
            }
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => (
                Socket::new(Domain::IPV4, ty, Some(protocol))?,
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ),
            Err(e) => return Err(e),
        },
    };
    if ty == Type::STREAM {
        socket.set_reuse_address(true)?;
        socket.set_tcp_nodelay(true)?;
        socket.set_nonblocking(true)?;
    } else {
        // A burst of new sources queues on the listen socket while their
        // flows are created; the default buffer (about 200 KiB, under
        // 300 small datagrams once kernel overhead is counted) drops the
        // rest. The kernel caps the request at net.core.rmem_max, so this
        // is best effort and never an activation failure.
        let _ = socket.set_recv_buffer_size(UDP_LISTEN_RCVBUF);
    }
    socket.bind(&SocketAddr::new(ip, port).into())?;
    Ok(socket)
}

/// Binds every port of `ports` on `address` (every address when `None`).
/// If one port fails, the sockets bound so far are closed before
/// returning, so a failed rule leaves nothing behind. Must run inside a
/// Tokio runtime.
pub(crate) fn bind_tcp(
    ports: RangeInclusive<u16>,
    address: Option<IpAddr>,
) -> Result<Vec<TcpListener>, ActivationError> {
    let mut sockets = Vec::with_capacity(ports.len());
    for port in ports.clone() {
        let socket = bind_one(address, port).map_err(|e| classify_bind_error("tcp", port, &e))?;
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

/// Binds every port of `ports` for UDP on `address` (every address when
/// `None`), all or none like `bind_tcp`. The sockets are returned
/// unregistered and blocking; the UDP engine sets them up.
pub(crate) fn bind_udp(
    ports: RangeInclusive<u16>,
    address: Option<IpAddr>,
) -> Result<Vec<std::net::UdpSocket>, ActivationError> {
    ports
        .map(|port| {
            bind_one_udp(address, port)
                .map(std::net::UdpSocket::from)
                .map_err(|e| classify_bind_error("udp", port, &e))
        })
        .collect()
}

/// No `SO_REUSEADDR` here: for UDP it would let two sockets share the
/// port and hide a busy one.
fn bind_one_udp(address: Option<IpAddr>, port: u16) -> io::Result<Socket> {
    bound(Type::DGRAM, Protocol::UDP, address, port)
}

/// A listening, nonblocking socket. `SO_REUSEADDR` lets a port be bound
/// again while old connections linger in TIME_WAIT, yet still fails when
/// another socket listens there; `SO_REUSEPORT` would hide that.
///
/// `TCP_NODELAY` is set here once because accepted sockets inherit it,
/// which saves a syscall on every connection (small writes such as TLS
/// handshakes must not wait for Nagle).
fn bind_one(address: Option<IpAddr>, port: u16) -> io::Result<Socket> {
    let socket = bound(Type::STREAM, Protocol::TCP, address, port)?;
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
        let listener = bind_tcp(0..=0, None)
            .expect("bind")
            .pop()
            .expect("one listener");
        let port = listener.local_addr().expect("address").port();
        let (connected, accepted) = tokio::join!(
            tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)),
            listener.accept()
        );
        let _connected = connected.expect("connect");
        let (accepted, _) = accepted.expect("accept");
        assert!(accepted.nodelay().expect("TCP_NODELAY"));
    }

    /// One socket per port answers both families unless an address is
    /// given, which narrows it to that address.
    #[tokio::test]
    async fn a_port_listens_on_both_families_unless_an_address_is_given() {
        let listener = bind_tcp(0..=0, None).expect("bind").pop().expect("one");
        let port = listener.local_addr().expect("address").port();
        for ip in [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ] {
            let (connected, accepted) = tokio::join!(
                tokio::net::TcpStream::connect((ip, port)),
                listener.accept()
            );
            connected.unwrap_or_else(|e| panic!("connect over {ip}: {e}"));
            let (_, peer) = accepted.expect("accept");
            assert_eq!(peer.ip().to_canonical(), ip);
        }
        let v6 = bind_tcp(0..=0, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)))
            .expect("bind ::1")
            .pop()
            .expect("one");
        let port = v6.local_addr().expect("address").port();
        assert!(tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .is_err());
        let udp = bind_udp(0..=0, None).expect("bind udp").pop().expect("one");
        assert!(udp.local_addr().expect("address").is_ipv6());
    }
}
