//! The zero-copy pump: `splice(2)` from the source socket into a pipe, then
//! from the pipe into the destination socket, so payload never enters
//! userspace.
//!
//! Pipes cost three syscalls to make and close, a noticeable share of a
//! short connection, so empty pipes of the default size go back to a small
//! process-wide pool when their pump ends. (Per-thread pools missed often:
//! a connection's task may start on one worker and end on another, so one
//! pool drained while the other overflowed.) A pipe grows to 1 MiB only once
//! its connection has shown it moves bulk data; grown pipes are closed
//! rather than pooled, so the pool never holds more than default-size
//! pipes.

use super::Pump;
use crate::sys;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Mutex, MutexGuard, PoisonError};
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
/// Empty pipes kept for the next connections: two per connection, enough
/// for a burst of short ones. An empty pipe holds at most one cached page.
const POOL_SIZE: usize = 128;

struct Pipe {
    read_end: OwnedFd,
    write_end: OwnedFd,
}

/// Empty default-size pipes waiting for the next connections.
struct PipePool {
    /// Held only for a push or a pop, never across a syscall.
    pipes: Mutex<Vec<Pipe>>,
    limit: usize,
}

static POOL: PipePool = PipePool::new(POOL_SIZE);

impl PipePool {
    const fn new(limit: usize) -> Self {
        PipePool {
            pipes: Mutex::new(Vec::new()),
            limit,
        }
    }

    fn pipes(&self) -> MutexGuard<'_, Vec<Pipe>> {
        // A panic while holding the lock cannot leave the Vec inconsistent.
        self.pipes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An empty default-size pipe, from the pool when it has one.
    fn take(&self) -> io::Result<Pipe> {
        let pooled = self.pipes().pop();
        if let Some(pipe) = pooled {
            return Ok(pipe);
        }
        let (read_end, write_end) = sys::pipe()?;
        Ok(Pipe {
            read_end,
            write_end,
        })
    }

    /// Keeps an empty default-size pipe; when the pool is full the pipe is
    /// closed, after the lock is released.
    fn give_back(&self, pipe: Pipe) {
        let mut pipes = self.pipes();
        if pipes.len() < self.limit {
            pipes.push(pipe);
            return;
        }
        drop(pipes);
        drop(pipe);
    }
}

pub(crate) struct SplicePump {
    pool: &'static PipePool,
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
        Self::from_pool(&POOL)
    }

    fn from_pool(pool: &'static PipePool) -> io::Result<Self> {
        Ok(SplicePump {
            pool,
            pipe: Some(pool.take()?),
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
                self.pool.give_back(pipe);
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
        // Its own pool: the process-wide one is shared with parallel tests.
        static POOL: PipePool = PipePool::new(4);
        let pump = || SplicePump::from_pool(&POOL).unwrap();
        let pool_len = || POOL.pipes().len();
        drop(pump());
        assert_eq!(pool_len(), 1, "an unused pump gives its pipe back");
        let reused = pump();
        assert_eq!(pool_len(), 0, "the pooled pipe is taken again");
        let mut busy = pump();
        busy.in_pipe = 10;
        drop(busy);
        let mut grown = pump();
        grown.grown = true;
        drop(grown);
        assert_eq!(pool_len(), 0, "a pipe with data or grown is closed");
        drop(reused);
        assert_eq!(pool_len(), 1);
        let many: Vec<_> = (0..POOL.limit + 5).map(|_| pump()).collect();
        drop(many);
        assert_eq!(pool_len(), POOL.limit, "the pool is bounded");
    }
}
