//! Which flows of a port have replies waiting. Every flow's upstream
//! socket is registered with one epoll instance of the port's own, and
//! only that instance is registered with the runtime, so a flow costs an
//! entry in the kernel's interest list and a slot here, not a runtime
//! registration and a future of its own (together more than half of a
//! flow's memory).
//!
//! Flows are registered edge-triggered: a flow reported ready is read
//! until its queue is empty, or, past `READS_PER_TURN` batches, handed
//! back through `again` so one busy flow cannot hold the port.

use super::io::FlowSocket;
use super::table::FlowId;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;
use tokio::io::unix::AsyncFd;

/// Events taken from the kernel per look; more wait for the next one.
const EVENTS: usize = 256;
/// Batches read from one flow before the port turns to its other work.
pub(crate) const READS_PER_TURN: usize = 8;

pub(crate) struct Replies {
    poll: AsyncFd<Poll>,
    events: Events,
    /// The flow behind each token.
    flows: Slab<(SocketAddr, FlowId)>,
    /// Flows that still had replies queued when their turn ended.
    again: Vec<(SocketAddr, FlowId)>,
    /// The flows to read in the current turn.
    ready: Vec<(SocketAddr, FlowId)>,
}

impl Replies {
    /// Must run inside a Tokio runtime.
    pub(crate) fn new() -> io::Result<Replies> {
        Ok(Replies {
            poll: crate::sys::async_poll()?,
            events: Events::with_capacity(EVENTS),
            flows: Slab::new(),
            again: Vec::new(),
            ready: Vec::new(),
        })
    }

    /// Watches `socket` for the replies of flow `id` of `source`; the
    /// returned token is given back to `remove`.
    pub(crate) fn add(
        &mut self,
        socket: &FlowSocket,
        source: SocketAddr,
        id: FlowId,
    ) -> io::Result<usize> {
        let entry = self.flows.vacant_entry();
        let token = entry.key();
        let fd = socket.as_fd().as_raw_fd();
        self.poll.get_ref().registry().register(
            &mut SourceFd(&fd),
            Token(token),
            Interest::READABLE,
        )?;
        entry.insert((source, id));
        Ok(token)
    }

    /// Stops watching a flow's socket. A failed deregistration is of no
    /// consequence: closing the socket removes it from the interest list.
    pub(crate) fn remove(&mut self, token: usize, socket: &FlowSocket) {
        if self.flows.try_remove(token).is_some() {
            let fd = socket.as_fd().as_raw_fd();
            let _ = self
                .poll
                .get_ref()
                .registry()
                .deregister(&mut SourceFd(&fd));
        }
    }

    /// Waits until some flows have replies to read, and returns them. The
    /// list may name a flow that has left since; the caller checks, then
    /// hands the list back to `recycle`.
    pub(crate) async fn ready(&mut self) -> io::Result<Vec<(SocketAddr, FlowId)>> {
        self.ready.clear();
        self.ready.append(&mut self.again);
        loop {
            if !self.ready.is_empty() {
                // Flows handed back keep their turn without a look at the
                // kernel; new events wait for the next turn.
                return Ok(std::mem::take(&mut self.ready));
            }
            let mut guard = self.poll.readable_mut().await?;
            // A zero timeout: the runtime said the instance is readable.
            match guard
                .get_inner_mut()
                .poll(&mut self.events, Some(Duration::ZERO))
            {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            // Fewer events than room means the kernel's ready list is now
            // empty, and anything added to it raises a new edge; Tokio
            // keeps readiness that arrived after this look. Otherwise the
            // readiness stays, and the next turn takes what did not fit.
            let full = self.events.iter().count() >= self.events.capacity();
            if !full {
                guard.clear_ready();
            }
            let flows = &self.flows;
            self.ready.extend(
                self.events
                    .iter()
                    .filter_map(|event| flows.get(event.token().0).copied()),
            );
        }
    }

    /// Gives flow `id` of `source` another turn: it still had replies
    /// queued when its turn ended.
    pub(crate) fn again(&mut self, source: SocketAddr, id: FlowId) {
        self.again.push((source, id));
    }

    /// Takes back a list `ready` returned, so its allocation serves again.
    pub(crate) fn recycle(&mut self, mut list: Vec<(SocketAddr, FlowId)>) {
        list.clear();
        self.ready = list;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, UdpSocket};

    const WAIT: Duration = Duration::from_secs(10);

    fn source(n: u16) -> SocketAddr {
        (Ipv4Addr::new(192, 0, 2, 1), n).into()
    }

    /// A flow socket connected to `peer`.
    fn flow_to(peer: SocketAddr) -> FlowSocket {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket.set_nonblocking(true).unwrap();
        socket.connect(peer).unwrap();
        FlowSocket::new(socket).unwrap()
    }

    async fn next(replies: &mut Replies) -> Vec<(SocketAddr, FlowId)> {
        let flows = tokio::time::timeout(WAIT, replies.ready())
            .await
            .expect("a flow reported in time")
            .expect("poller works");
        let got = flows.clone();
        replies.recycle(flows);
        got
    }

    fn drain(socket: &FlowSocket) -> (usize, Option<io::Error>) {
        let mut datagrams = 0;
        loop {
            match socket.recv_batch(|_| datagrams += 1) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (datagrams, None),
                Err(e) => return (datagrams, Some(e)),
            }
        }
    }

    #[tokio::test]
    async fn names_the_flows_with_replies_until_they_are_removed() {
        let target = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let at = target.local_addr().unwrap();
        let (a, b) = (flow_to(at), flow_to(at));
        let mut replies = Replies::new().unwrap();
        let token_a = replies.add(&a, source(1), 7).unwrap();
        let token_b = replies.add(&b, source(2), 8).unwrap();
        assert_eq!(replies.flows.len(), 2);

        target.send_to(b"to a", a.local_addr()).unwrap();
        assert_eq!(next(&mut replies).await, vec![(source(1), 7)]);
        assert_eq!(drain(&a).0, 1);

        // Drained, the flow is reported again for its next reply only.
        target.send_to(b"to b", b.local_addr()).unwrap();
        assert_eq!(next(&mut replies).await, vec![(source(2), 8)]);
        assert_eq!(drain(&b).0, 1);

        replies.again(source(1), 7);
        assert_eq!(
            next(&mut replies).await,
            vec![(source(1), 7)],
            "handed back"
        );

        replies.remove(token_b, &b);
        assert_eq!(replies.flows.len(), 1);
        target.send_to(b"to b", b.local_addr()).unwrap();
        target.send_to(b"to a", a.local_addr()).unwrap();
        assert_eq!(
            next(&mut replies).await,
            vec![(source(1), 7)],
            "b is no longer watched"
        );
        replies.remove(token_a, &a);
        assert_eq!(replies.flows.len(), 0);
    }

    /// An ICMP error on a connected socket is error readiness only; the
    /// poller reports the flow, and reading it gives the error.
    #[tokio::test]
    async fn reports_a_flow_whose_target_refused() {
        let closed = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let gone = closed.local_addr().unwrap();
        drop(closed);
        let flow = flow_to(gone);
        let mut replies = Replies::new().unwrap();
        replies.add(&flow, source(3), 1).unwrap();
        flow.send(gone, None, b"anyone?", 7).unwrap();
        assert_eq!(next(&mut replies).await, vec![(source(3), 1)]);
        let (datagrams, error) = drain(&flow);
        assert_eq!(datagrams, 0);
        let error = error.expect("the refusal");
        assert_eq!(error.raw_os_error(), Some(libc::ECONNREFUSED), "{error}");
    }
}
