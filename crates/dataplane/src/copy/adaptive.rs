//! The default pump where splice exists: small transfers (requests,
//! replies, handshakes) are copied through a per-thread scratch buffer,
//! and the first read that fills the buffer marks a bulk transfer, after
//! which the pump splices for the rest of the connection.
//!
//! For a few hundred bytes a read and a write cost less than two splices
//! through a pipe (the kernel copies small socket data into a page to
//! splice it anyway), and a short connection never takes a pipe. This is
//! what HAProxy's `splice-auto` does.

use super::splice::SplicePump;
use super::{read_draining, retry_after, Pump};
use std::cell::RefCell;
use std::io;
use std::task::{ready, Context, Poll};
use tokio::net::TcpStream;
use tracing::warn;

/// Bytes one read may take; a read that fills them means bulk.
pub(crate) const SCRATCH_SIZE: usize = 16 * 1024;

thread_local! {
    /// Holds bytes only between a read and the write right after it, never
    /// across an await; what the write leaves goes to the pump's `pending`.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
}

pub(crate) struct AdaptivePump {
    phase: Phase,
}

enum Phase {
    Copy {
        /// Read but not yet written: only when `dst` took part of a chunk.
        pending: Vec<u8>,
        /// The last read filled the scratch buffer.
        bulk: bool,
        /// False once a pipe could not be made; the copy then stays.
        may_splice: bool,
    },
    Splice(SplicePump),
}

/// One read from `src` and one write of what it got to `dst`.
enum Step {
    Eof,
    Moved { read: usize, written: usize },
}

impl AdaptivePump {
    pub(crate) fn new() -> Self {
        AdaptivePump {
            phase: Phase::Copy {
                pending: Vec::new(),
                bulk: false,
                may_splice: true,
            },
        }
    }

    /// Whether this pump moved on to splice.
    pub(crate) fn spliced(&self) -> bool {
        matches!(self.phase, Phase::Splice(_))
    }
}

impl Pump for AdaptivePump {
    fn poll_move(
        &mut self,
        cx: &mut Context<'_>,
        src: &TcpStream,
        dst: &TcpStream,
    ) -> Poll<io::Result<usize>> {
        loop {
            let (pending, bulk, may_splice) = match &mut self.phase {
                Phase::Splice(pump) => return pump.poll_move(cx, src, dst),
                Phase::Copy {
                    pending,
                    bulk,
                    may_splice,
                } => (pending, bulk, may_splice),
            };
            if !pending.is_empty() {
                let written = dst.try_write(pending);
                match ready!(retry_after(written, cx, |cx| dst.poll_write_ready(cx)))? {
                    Some(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Some(n) => {
                        pending.drain(..n);
                        return Poll::Ready(Ok(n));
                    }
                    None => continue,
                }
            }
            // Everything read so far is written, so the pipe starts empty
            // and the byte order holds.
            if *bulk && *may_splice {
                match SplicePump::new() {
                    Ok(pump) => {
                        self.phase = Phase::Splice(pump);
                        continue;
                    }
                    Err(e) => {
                        warn!(error = %e, "no pipe for splice, copying in userspace");
                        *may_splice = false;
                    }
                }
            }
            let step = SCRATCH.with_borrow_mut(|scratch| copy_once(scratch, src, dst, pending));
            match step {
                Ok(Step::Eof) => return Poll::Ready(Ok(0)),
                Ok(Step::Moved { read, written }) => {
                    *bulk = read == SCRATCH_SIZE;
                    if written > 0 {
                        return Poll::Ready(Ok(written));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(src.poll_read_ready(cx))?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Reads once into `scratch` and writes what came at once; the part `dst`
/// did not take is kept in `pending`. A `WouldBlock` error is the read's:
/// a refused write only leaves everything pending.
fn copy_once(
    scratch: &mut [u8],
    src: &TcpStream,
    dst: &TcpStream,
    pending: &mut Vec<u8>,
) -> io::Result<Step> {
    let read = read_draining(src, scratch)?;
    if read == 0 {
        return Ok(Step::Eof);
    }
    let written = match dst.try_write(&scratch[..read]) {
        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
        Ok(n) => n,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            0
        }
        Err(e) => return Err(e),
    };
    pending.extend_from_slice(&scratch[written..read]);
    Ok(Step::Moved { read, written })
}
