//! The zero-copy pump: `splice(2)` from the source socket into a pipe, then
//! from the pipe into the destination socket, so payload never enters
//! userspace.
//!
//! Pipes cost four syscalls to make and close, a noticeable share of a
//! short connection, so empty pipes of the default size go back to a small
//! per-thread pool when their pump ends. A pipe grows to 1 MiB only once
//! its connection has shown it moves bulk data; grown pipes are closed
//! rather than pooled, so the pool never holds more than default-size
//! pipes.

use super::Pump;
use crate::sys;
use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::task::{Context, Poll};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tracing::debug;

/// A larger pipe means fewer syscalls per megabyte; the kernel only backs
/// the pages actually filled.
const WANTED_PIPE_SIZE: usize = 1024 * 1024;
/// What Linux gives a new pipe.
const DEFAULT_PIPE_SIZE: usize = 64 * 1024;
/// Bytes a pump moves before its pipe grows: past this, the connection is
/// a bulk transfer rather than a request and a reply.
const GROW_AFTER: u64 = 2 * DEFAULT_PIPE_SIZE as u64;
/// Empty pipes kept per thread for the next connections.
const POOL_SIZE: usize = 64;

struct Pipe {
    read_end: OwnedFd,
    write_end: OwnedFd,
}

thread_local! {
    static POOL: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

impl Pipe {
    /// An empty default-size pipe, from the pool when it has one.
    fn take() -> io::Result<Pipe> {
        if let Ok(Some(pipe)) = POOL.try_with(|p| p.borrow_mut().pop()) {
            return Ok(pipe);
        }
        let (read_end, write_end) = sys::pipe()?;
        Ok(Pipe {
            read_end,
            write_end,
        })
    }

    /// Returns an empty default-size pipe to this thread's pool; when the
    /// pool is full (or the thread is ending) the pipe is closed.
    fn give_back(self) {
        let _ = POOL.try_with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < POOL_SIZE {
                pool.push(self);
            }
        });
    }
}

pub(crate) struct SplicePump {
    pipe: Option<Pipe>,
    capacity: usize,
    /// Bytes spliced into the pipe and not yet out of it.
    in_pipe: usize,
    /// Bytes this pump has delivered, until the pipe grows.
    moved: u64,
    grown: bool,
    /// The source ended; what is left in the pipe still goes out.
    src_eof: bool,
}

impl SplicePump {
    /// Fails only when no pipe can be made (e.g. out of descriptors).
    pub(crate) fn new() -> io::Result<Self> {
        Ok(SplicePump {
            pipe: Some(Pipe::take()?),
            capacity: DEFAULT_PIPE_SIZE,
            in_pipe: 0,
            moved: 0,
            grown: false,
            src_eof: false,
        })
    }

    /// Grows the pipe once; a refused resize keeps the default size.
    fn grow(&mut self, pipe_write_end: &OwnedFd) {
        self.grown = true;
        match sys::set_pipe_size(pipe_write_end.as_fd(), WANTED_PIPE_SIZE) {
            Ok(size) => self.capacity = size,
            Err(e) => debug!(error = %e, "pipe kept its default size"),
        }
    }
}

impl Drop for SplicePump {
    fn drop(&mut self) {
        // Only a pipe known to be empty and of the default size may serve
        // another connection; anything else is closed.
        if let Some(pipe) = self.pipe.take() {
            if self.in_pipe == 0 && !self.grown {
                pipe.give_back();
            }
        }
    }
}

impl Pump for SplicePump {
    fn poll_move(
        &mut self,
        cx: &mut Context<'_>,
        src: &TcpStream,
        dst: &TcpStream,
    ) -> Poll<io::Result<usize>> {
        let Some(pipe) = self.pipe.take() else {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        };
        let result = self.poll_move_through(cx, &pipe, src, dst);
        self.pipe = Some(pipe);
        result
    }
}

impl SplicePump {
    /// Drains the pipe into `dst` and refills it from `src` in the same
    /// pass, so the source keeps flowing while the destination catches up.
    ///
    /// A refill refused with bytes still in the pipe may mean a full pipe
    /// rather than an empty socket; waiting for `dst` covers that case,
    /// since bytes in the pipe always mean a drain (and another refill)
    /// comes next. With an empty pipe, a refused refill is the socket's.
    fn poll_move_through(
        &mut self,
        cx: &mut Context<'_>,
        pipe: &Pipe,
        src: &TcpStream,
        dst: &TcpStream,
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut progressed = false;
            let mut wrote = 0;
            if self.in_pipe > 0 {
                let moved = dst.try_io(Interest::WRITABLE, || {
                    sys::splice(pipe.read_end.as_fd(), dst.as_fd(), self.in_pipe)
                });
                match moved {
                    Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Ok(n) => {
                        self.in_pipe -= n;
                        wrote = n;
                        if !self.grown {
                            self.moved += n as u64;
                            if self.moved >= GROW_AFTER {
                                self.grow(&pipe.write_end);
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progressed = true,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            let room = !self.src_eof && self.in_pipe <= self.capacity / 2;
            if room {
                let filled = src.try_io(Interest::READABLE, || {
                    sys::splice(
                        src.as_fd(),
                        pipe.write_end.as_fd(),
                        self.capacity - self.in_pipe,
                    )
                });
                match filled {
                    Ok(0) => {
                        self.src_eof = true;
                        progressed = true;
                    }
                    Ok(n) => {
                        self.in_pipe += n;
                        progressed = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progressed = true,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            if wrote > 0 {
                return Poll::Ready(Ok(wrote));
            }
            if self.src_eof && self.in_pipe == 0 {
                return Poll::Ready(Ok(0));
            }
            if progressed {
                continue;
            }
            // Both waits register before the pump sleeps.
            let mut ready = false;
            if self.in_pipe > 0 {
                if let Poll::Ready(r) = dst.poll_write_ready(cx) {
                    r?;
                    ready = true;
                }
            }
            if room {
                if let Poll::Ready(r) = src.poll_read_ready(cx) {
                    r?;
                    ready = true;
                }
            }
            if !ready {
                return Poll::Pending;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_default_pipes_are_reused_and_others_closed() {
        POOL.with(|p| p.borrow_mut().clear());
        let pool_len = || POOL.with(|p| p.borrow().len());
        drop(SplicePump::new().unwrap());
        assert_eq!(pool_len(), 1, "an unused pump gives its pipe back");
        let reused = SplicePump::new().unwrap();
        assert_eq!(pool_len(), 0, "the pooled pipe is taken again");
        let mut busy = SplicePump::new().unwrap();
        busy.in_pipe = 10;
        drop(busy);
        let mut grown = SplicePump::new().unwrap();
        grown.grown = true;
        drop(grown);
        assert_eq!(pool_len(), 0, "a pipe with data or grown is closed");
        drop(reused);
        assert_eq!(pool_len(), 1);
        for _ in 0..POOL_SIZE + 5 {
            drop(SplicePump::new().unwrap());
        }
        let many: Vec<_> = (0..POOL_SIZE + 5)
            .map(|_| SplicePump::new().unwrap())
            .collect();
        drop(many);
        assert_eq!(pool_len(), POOL_SIZE, "the pool is bounded");
        POOL.with(|p| p.borrow_mut().clear());
    }
}
