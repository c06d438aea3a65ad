//! The bidirectional copy between a downstream peer and its target.
//!
//! One state machine owns half-close and teardown; how bytes physically
//! move is a per-direction [`Pump`]: copied while they are few and spliced
//! through a kernel pipe once they are many (`adaptive`), or always through
//! a userspace buffer. The copy layer knows nothing of rules or counters: it
//! reports every chunk that reached its destination to a callback.

#[cfg(target_os = "linux")]
pub(crate) mod adaptive;
#[cfg(target_os = "linux")]
pub(crate) mod splice;
pub(crate) mod throttle;
pub(crate) mod userspace;

use socket2::SockRef;
use std::fmt;
use std::future::poll_fn;
use std::io::{self, Read};
use std::net::Shutdown;
use std::task::{ready, Context, Poll};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::task::coop;

/// Which way bytes flow: `Inbound` from the downstream peer to the target,
/// `Outbound` back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Inbound,
    Outbound,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        })
    }
}

/// Moves bytes of one direction.
pub(crate) trait Pump {
    /// Moves some bytes from `src` to `dst`. `Ready(Ok(n))` with `n > 0`
    /// means `n` more bytes reached `dst`; `Ready(Ok(0))` means `src` ended
    /// and everything read from it was written, after which the pump is not
    /// called again. Registers `cx` for the readiness it waits on.
    fn poll_move(
        &mut self,
        cx: &mut Context<'_>,
        src: &TcpStream,
        dst: &TcpStream,
    ) -> Poll<io::Result<usize>>;
}

#[derive(Debug, thiserror::Error)]
#[error("{direction} copy: {source}")]
pub(crate) struct CopyError {
    pub(crate) direction: Direction,
    #[source]
    pub(crate) source: io::Error,
}

/// Copies both ways until both directions have ended. When one direction
/// reads end of input, the write side of its destination is shut down and
/// the other direction goes on; an error in either direction ends the copy
/// at once, and the caller tears down both sockets by dropping them.
pub(crate) async fn copy_bidirectional<P: Pump>(
    downstream: &TcpStream,
    upstream: &TcpStream,
    inbound: &mut P,
    outbound: &mut P,
    mut on_bytes: impl FnMut(Direction, usize),
) -> Result<(), CopyError> {
    let mut inbound = Half::new(inbound, Direction::Inbound);
    let mut outbound = Half::new(outbound, Direction::Outbound);
    poll_fn(|cx| {
        let a = inbound.poll_run(cx, downstream, upstream, outbound.open, &mut on_bytes)?;
        let b = outbound.poll_run(cx, upstream, downstream, inbound.open, &mut on_bytes)?;
        if a.is_ready() && b.is_ready() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await
}

struct Half<'p, P> {
    pump: &'p mut P,
    direction: Direction,
    open: bool,
}

impl<'p, P: Pump> Half<'p, P> {
    fn new(pump: &'p mut P, direction: Direction) -> Self {
        Half {
            pump,
            direction,
            open: true,
        }
    }

    /// `other_open`: the opposite direction still runs. When it has ended,
    /// both sockets are about to be closed, which sends the FIN anyway, so
    /// the shutdown is skipped (a syscall saved on every connection).
    fn poll_run(
        &mut self,
        cx: &mut Context<'_>,
        src: &TcpStream,
        dst: &TcpStream,
        other_open: bool,
        on_bytes: &mut impl FnMut(Direction, usize),
    ) -> Poll<Result<(), CopyError>> {
        let direction = self.direction;
        let fail = |source| CopyError { direction, source };
        while self.open {
            // Readiness waits already yield, but a peer that always has
            // data would keep this loop busy; the task budget hands the
            // worker back to other connections now and then.
            let budget = ready!(coop::poll_proceed(cx));
            match ready!(self.pump.poll_move(cx, src, dst)) {
                Ok(0) => {
                    self.open = false;
                    if other_open {
                        SockRef::from(dst).shutdown(Shutdown::Write).map_err(fail)?;
                    }
                }
                Ok(n) => on_bytes(direction, n),
                Err(e) => return Poll::Ready(Err(fail(e))),
            }
            budget.made_progress();
        }
        Poll::Ready(Ok(()))
    }
}

/// The pumps of one connection, chosen before the first byte moves and
/// kept until it ends.
pub(crate) enum Pumps {
    #[cfg(target_os = "linux")]
    Adaptive(adaptive::AdaptivePump, adaptive::AdaptivePump),
    Userspace(userspace::UserspacePump, userspace::UserspacePump),
}

impl Pumps {
    /// Adaptive pumps (copy, then splice for bulk) when splice is wanted
    /// and built; otherwise the userspace copy, which needs nothing from
    /// the kernel.
    pub(crate) fn new(want_splice: bool) -> Pumps {
        #[cfg(target_os = "linux")]
        if want_splice {
            return Pumps::Adaptive(adaptive::AdaptivePump::new(), adaptive::AdaptivePump::new());
        }
        #[cfg(not(target_os = "linux"))]
        let _ = want_splice;
        Pumps::Userspace(
            userspace::UserspacePump::new(),
            userspace::UserspacePump::new(),
        )
    }

    /// The userspace copy, each direction charging its chunks to `charge`.
    pub(crate) fn throttled(inbound: throttle::Charge, outbound: throttle::Charge) -> Pumps {
        Pumps::Userspace(
            userspace::UserspacePump::throttled(inbound),
            userspace::UserspacePump::throttled(outbound),
        )
    }

    /// Whether a bulk transfer would move on to splice.
    pub(crate) fn may_splice(&self) -> bool {
        match self {
            #[cfg(target_os = "linux")]
            Pumps::Adaptive(..) => true,
            Pumps::Userspace(..) => false,
        }
    }

    /// Whether either direction moved on to splice.
    pub(crate) fn spliced(&self) -> bool {
        match self {
            #[cfg(target_os = "linux")]
            Pumps::Adaptive(inbound, outbound) => inbound.spliced() || outbound.spliced(),
            Pumps::Userspace(..) => false,
        }
    }

    pub(crate) async fn run(
        &mut self,
        downstream: &TcpStream,
        upstream: &TcpStream,
        on_bytes: impl FnMut(Direction, usize),
    ) -> Result<(), CopyError> {
        match self {
            #[cfg(target_os = "linux")]
            Pumps::Adaptive(inbound, outbound) => {
                copy_bidirectional(downstream, upstream, inbound, outbound, on_bytes).await
            }
            Pumps::Userspace(inbound, outbound) => {
                copy_bidirectional(downstream, upstream, inbound, outbound, on_bytes).await
            }
        }
    }
}

/// Reads once from `src` into `buf` without waiting, like
/// `TcpStream::try_read`. A read that leaves room in `buf` emptied the
/// socket's receive queue, so it also clears the socket's read readiness
/// (as Tokio's own `poll_read` does): the next attempt waits for the next
/// edge instead of spending a `recv` on EAGAIN, one syscall on every short
/// connection. The clear uses the readiness seen before the read, so an
/// edge raised by data arriving after the read is kept.
fn read_draining(src: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut short = 0;
    let result = src.try_io(Interest::READABLE, || {
        let n = (&*SockRef::from(src)).read(buf)?;
        if 0 < n && n < buf.len() {
            short = n;
            // Tells `try_io` to clear the readiness; the bytes are kept.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match result {
        Err(e) if short > 0 && e.kind() == io::ErrorKind::WouldBlock => Ok(short),
        other => other,
    }
}

/// Turns a nonblocking attempt into the next pump step: `Ok(None)` after
/// registering for readiness that has arrived meanwhile (try again),
/// `Pending` while waiting for it.
fn retry_after(
    result: io::Result<usize>,
    cx: &mut Context<'_>,
    wait: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<()>>,
) -> Poll<io::Result<Option<usize>>> {
    match result {
        Ok(n) => Poll::Ready(Ok(Some(n))),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            ready!(wait(cx))?;
            Poll::Ready(Ok(None))
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Poll::Ready(Ok(None)),
        Err(e) => Poll::Ready(Err(e)),
    }
}

#[cfg(test)]
mod tests;
