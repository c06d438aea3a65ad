//! The zero-copy pump: `splice(2)` from the source socket into a pipe, then
//! from the pipe into the destination socket, so payload never enters
//! userspace.

use super::{retry_after, Pump};
use crate::sys;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::task::{ready, Context, Poll};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tracing::debug;

/// A larger pipe means fewer syscalls per megabyte; the kernel only backs
/// the pages actually filled.
const WANTED_PIPE_SIZE: usize = 1024 * 1024;
/// What Linux gives a pipe when it refuses to grow it.
const DEFAULT_PIPE_SIZE: usize = 64 * 1024;

pub(crate) struct SplicePump {
    read_end: OwnedFd,
    write_end: OwnedFd,
    capacity: usize,
    /// Bytes spliced into the pipe and not yet out of it.
    in_pipe: usize,
}

impl SplicePump {
    /// Fails only when no pipe can be created (e.g. out of descriptors); a
    /// refused resize keeps the default pipe size.
    pub(crate) fn new() -> io::Result<Self> {
        let (read_end, write_end) = sys::pipe()?;
        let capacity = match sys::set_pipe_size(write_end.as_fd(), WANTED_PIPE_SIZE) {
            Ok(size) => size,
            Err(e) => {
                debug!(error = %e, "pipe kept its default size");
                DEFAULT_PIPE_SIZE
            }
        };
        Ok(SplicePump {
            read_end,
            write_end,
            capacity,
            in_pipe: 0,
        })
    }
}

impl Pump for SplicePump {
    fn poll_move(
        &mut self,
        cx: &mut Context<'_>,
        src: &TcpStream,
        dst: &TcpStream,
    ) -> Poll<io::Result<usize>> {
        loop {
            // The pipe is filled only when empty, so an EAGAIN while
            // filling is always the socket's, never a full pipe's.
            if self.in_pipe > 0 {
                let moved = dst.try_io(Interest::WRITABLE, || {
                    sys::splice(self.read_end.as_fd(), dst.as_fd(), self.in_pipe)
                });
                match ready!(retry_after(moved, cx, |cx| dst.poll_write_ready(cx)))? {
                    Some(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Some(n) => {
                        self.in_pipe -= n;
                        return Poll::Ready(Ok(n));
                    }
                    None => continue,
                }
            }
            let filled = src.try_io(Interest::READABLE, || {
                sys::splice(src.as_fd(), self.write_end.as_fd(), self.capacity)
            });
            match ready!(retry_after(filled, cx, |cx| src.poll_read_ready(cx)))? {
                Some(0) => return Poll::Ready(Ok(0)),
                Some(n) => self.in_pipe = n,
                None => {}
            }
        }
    }
}
