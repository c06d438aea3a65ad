//! Batched datagram I/O through `quinn-udp`: one `recvmmsg` reads up to
//! `SLOTS` buffers, each of which may hold a GRO train of datagrams from
//! one sender; a train (received, or gathered by `train.rs`) goes out
//! again as one GSO `sendmsg`.
//!
//! Receive memory does not depend on the number of listeners or flows:
//! every read, whether on a listen socket or on a flow's upstream socket,
//! borrows the one buffer set of the worker thread it runs on, and hands
//! the datagrams on before it returns.

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use std::cell::{Cell, RefCell};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Buffers filled by one `recvmmsg`.
const SLOTS: usize = 16;
/// Room for the largest UDP payload, and for the largest GRO train.
const SLOT_LEN: usize = 64 * 1024;

struct RecvBuffers {
    /// `SLOTS * SLOT_LEN` zeroed bytes: the allocator maps them lazily, so
    /// only pages that datagrams touched count towards the resident set.
    bytes: Box<[u8]>,
    meta: [RecvMeta; SLOTS],
}

impl RecvBuffers {
    fn new() -> RecvBuffers {
        RecvBuffers {
            bytes: vec![0u8; SLOTS * SLOT_LEN].into_boxed_slice(),
            meta: [RecvMeta::default(); SLOTS],
        }
    }
}

thread_local! {
    static BUFFERS: RefCell<Option<RecvBuffers>> = const { RefCell::new(None) };
}

/// One received buffer: a single datagram, or a GRO train of datagrams of
/// `stride` bytes each (the last may be shorter), all from `source`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received<'a> {
    pub(crate) source: SocketAddr,
    /// The local address the datagrams were sent to, when the kernel said.
    pub(crate) local_ip: Option<IpAddr>,
    pub(crate) bytes: &'a [u8],
    pub(crate) stride: usize,
}

impl Received<'_> {
    pub(crate) fn datagrams(&self) -> u64 {
        datagram_count(self.bytes.len(), self.stride)
    }
}

/// After a read of `n` buffers: `WouldBlock` when it did not fill the
/// batch, so the queue was empty and Tokio may forget the readiness
/// rather than pay for one more `recvmmsg` to learn the same. A datagram
/// queued later raises a new edge-triggered event, so none is missed.
fn drained(n: usize) -> io::Result<usize> {
    if n < SLOTS {
        Err(io::ErrorKind::WouldBlock.into())
    } else {
        Ok(n)
    }
}

/// How many datagrams a buffer of `len` bytes cut every `stride` holds.
pub(crate) fn datagram_count(len: usize, stride: usize) -> u64 {
    if stride == 0 || len <= stride {
        1
    } else {
        len.div_ceil(stride) as u64
    }
}

/// A nonblocking UDP socket registered with Tokio, with quinn-udp's
/// per-socket state for batched I/O.
#[derive(Debug)]
pub(crate) struct Socket {
    io: UdpSocket,
    state: UdpSocketState,
}

impl Socket {
    /// Sets the socket up for batched I/O and registers it with the
    /// runtime. Must run inside a Tokio runtime.
    pub(crate) fn new(socket: std::net::UdpSocket) -> io::Result<Socket> {
        let state = UdpSocketState::new((&socket).into())?;
        undo_quic_options(&socket)?;
        Ok(Socket {
            io: UdpSocket::from_std(socket)?,
            state,
        })
    }

    #[cfg(test)]
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Waits until a read would not block: a datagram is queued, or an
    /// error is, which is how an ICMP error on a connected socket shows.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.io
            .ready(Interest::READABLE | Interest::ERROR)
            .await
            .map(drop)
    }

    /// Reads one batch without waiting and hands each buffer to `each`;
    /// returns how many buffers it read, or `WouldBlock` when none was
    /// queued. A pending socket error (an ICMP error on a connected
    /// socket) shows only as error readiness, and reading reports it.
    pub(crate) fn recv_batch(&self, mut each: impl FnMut(Received<'_>)) -> io::Result<usize> {
        let got = Cell::new(0);
        let mut read = || {
            let n = recv_once(&self.state, &self.io, &mut each)?;
            got.set(n);
            drained(n)
        };
        // `try_io` takes one interest at a time: with a combined one it
        // would see no readiness at all and never read.
        let result = match self.io.try_io(Interest::READABLE, &mut read) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && got.get() == 0 => {
                self.io.try_io(Interest::ERROR, &mut read)
            }
            other => other,
        };
        match result {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && got.get() > 0 => Ok(got.get()),
            other => other,
        }
    }

    /// How many datagrams one GSO send may carry on this socket (1 where
    /// the kernel has no GSO).
    pub(crate) fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Sends `bytes` (one datagram, or datagrams of `stride` bytes) to
    /// `to`, from `local_ip` when given. Never waits: a full socket buffer
    /// is `WouldBlock`, and the caller drops the datagrams as a router
    /// would. The write goes straight to the socket rather than through
    /// Tokio's readiness, which a socket registered a moment ago does not
    /// have yet.
    pub(crate) fn send(
        &self,
        to: SocketAddr,
        local_ip: Option<IpAddr>,
        bytes: &[u8],
        stride: usize,
    ) -> io::Result<()> {
        send_on(&self.state, &self.io, to, local_ip, bytes, stride)
    }
}

/// A flow's nonblocking socket to its target, unknown to the runtime: the
/// port's reply poller (`replies.rs`) watches it, so a flow costs no
/// runtime registration of its own. Reads and writes go straight to the
/// socket.
#[derive(Debug)]
pub(crate) struct FlowSocket {
    io: std::net::UdpSocket,
    state: UdpSocketState,
}

impl FlowSocket {
    /// Sets up a nonblocking socket for batched I/O.
    pub(crate) fn new(socket: std::net::UdpSocket) -> io::Result<FlowSocket> {
        let state = UdpSocketState::new((&socket).into())?;
        undo_quic_options(&socket)?;
        Ok(FlowSocket { io: socket, state })
    }

    /// Like `Socket::recv_batch`; `WouldBlock` also after a batch that
    /// did not fill the buffers, which means the queue is empty.
    pub(crate) fn recv_batch(&self, mut each: impl FnMut(Received<'_>)) -> io::Result<usize> {
        recv_once(&self.state, &self.io, &mut each).and_then(drained)
    }

    pub(crate) fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    #[cfg(test)]
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.io.local_addr().expect("a bound socket")
    }

    /// Like `Socket::send`.
    pub(crate) fn send(
        &self,
        to: SocketAddr,
        local_ip: Option<IpAddr>,
        bytes: &[u8],
        stride: usize,
    ) -> io::Result<()> {
        send_on(&self.state, &self.io, to, local_ip, bytes, stride)
    }
}

impl AsFd for FlowSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

/// One `recvmmsg` into this thread's buffers; each buffer read goes to
/// `each` before the next read can reuse it. Returns the buffers read.
fn recv_once(
    state: &UdpSocketState,
    socket: &impl AsFd,
    each: &mut impl FnMut(Received<'_>),
) -> io::Result<usize> {
    BUFFERS.with_borrow_mut(|buffers| {
        let buffers = buffers.get_or_insert_with(RecvBuffers::new);
        let mut chunks = buffers.bytes.chunks_exact_mut(SLOT_LEN);
        let mut slices: [IoSliceMut<'_>; SLOTS] =
            std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
        let meta = &mut buffers.meta;
        let n = state.recv(socket.into(), &mut slices, meta)?;
        for (slice, m) in slices.iter().zip(meta.iter()).take(n) {
            each(Received {
                source: m.addr,
                local_ip: m.dst_ip,
                bytes: &slice[..m.len.min(slice.len())],
                stride: if m.stride == 0 { m.len } else { m.stride },
            });
        }
        Ok(n)
    })
}

/// Sends one datagram or a train, as one GSO send when the socket can
/// carry that many segments and one send per datagram otherwise.
fn send_on(
    state: &UdpSocketState,
    socket: &impl AsFd,
    to: SocketAddr,
    local_ip: Option<IpAddr>,
    bytes: &[u8],
    stride: usize,
) -> io::Result<()> {
    let count = datagram_count(bytes.len(), stride);
    let transmit = |contents: &[u8], segment_size: Option<usize>| {
        let transmit = Transmit {
            destination: to,
            ecn: None,
            contents,
            segment_size,
            src_ip: local_ip,
        };
        state.try_send(socket.into(), &transmit)
    };
    if count == 1 || count <= state.max_gso_segments() as u64 {
        return transmit(bytes, (count > 1).then_some(stride));
    }
    for datagram in bytes.chunks(stride) {
        transmit(datagram, None)?;
    }
    Ok(())
}

/// quinn-udp forbids IP fragmentation, as QUIC wants. A port forwarder
/// must carry whatever the peers send, so the kernel's default (path MTU
/// discovery, fragmenting what does not fit) comes back. Receive
/// timestamps, which nothing here reads, are switched off again.
#[cfg(target_os = "linux")]
fn undo_quic_options(socket: &std::net::UdpSocket) -> io::Result<()> {
    use crate::sys::set_int_option;
    use std::os::fd::AsFd;
    let fd = socket.as_fd();
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 0)?;
    set_int_option(
        fd,
        libc::IPPROTO_IP,
        libc::IP_MTU_DISCOVER,
        libc::IP_PMTUDISC_WANT,
    )?;
    if socket.local_addr()?.is_ipv6() {
        set_int_option(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_WANT,
        )?;
        set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 0)?;
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn undo_quic_options(_socket: &std::net::UdpSocket) -> io::Result<()> {
    Ok(())
}

/// The address replies should leave from: the one the source wrote to,
/// unless it is not a unicast address the socket could send from.
pub(crate) fn reply_source(local_ip: Option<IpAddr>) -> Option<IpAddr> {
    local_ip.filter(|ip| {
        !ip.is_unspecified()
            && !ip.is_multicast()
            && !matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn datagram_count_table() {
        let cases = [
            (0, 0, 1),
            (10, 0, 1),
            (10, 10, 1),
            (10, 20, 1),
            (20, 10, 2),
            (21, 10, 3),
            (64 * 1200, 1200, 64),
        ];
        for (len, stride, want) in cases {
            assert_eq!(
                datagram_count(len, stride),
                want,
                "len={len} stride={stride}"
            );
        }
    }

    #[test]
    fn reply_source_table() {
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let cases = [
            (None, None),
            (Some(v4), Some(v4)),
            (Some(v6), Some(v6)),
            (Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), None),
            (Some(IpAddr::V4(Ipv4Addr::BROADCAST)), None),
            (Some(IpAddr::V4(Ipv4Addr::new(239, 1, 2, 3))), None),
            (Some("ff02::1".parse().unwrap()), None),
        ];
        for (given, want) in cases {
            assert_eq!(reply_source(given), want, "{given:?}");
        }
    }

    /// A GSO train through a real socket pair arrives as the datagrams it
    /// was cut into, whether or not the receiver coalesces them again.
    #[tokio::test]
    async fn a_gso_train_arrives_as_its_datagrams() {
        let bind = || {
            let s = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            s.set_nonblocking(true).unwrap();
            Socket::new(s).unwrap()
        };
        let (a, b) = (bind(), bind());
        let to = b.local_addr().unwrap();
        let train: Vec<u8> = (0..10 * 100).map(|i| (i / 100) as u8).collect();
        a.send(to, None, &train, 100).unwrap();
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while got.len() < 10 {
            tokio::time::timeout_at(deadline, b.readable())
                .await
                .expect("datagrams in time")
                .unwrap();
            let _ = b.recv_batch(|r| {
                for d in r.bytes.chunks(r.stride) {
                    got.push(d.to_vec());
                }
            });
        }
        let want: Vec<Vec<u8>> = (0..10).map(|i| vec![i as u8; 100]).collect();
        assert_eq!(got, want);
    }
}
