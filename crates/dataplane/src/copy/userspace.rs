//! The portable pump: read into a buffer, write it out, reuse the buffer.
//! Under a bandwidth cap it waits out each chunk's charge before writing.

use super::throttle::{Charge, Throttle};
use super::{read_draining, retry_after, Pump};
use std::io;
use std::task::{ready, Context, Poll};
use tokio::net::TcpStream;

const BUFFER_SIZE: usize = 64 * 1024;

pub(crate) struct UserspacePump {
    buf: Box<[u8]>,
    /// `buf[start..end]` was read but not yet written.
    start: usize,
    end: usize,
    throttle: Option<Throttle>,
}

impl UserspacePump {
    pub(crate) fn new() -> Self {
        UserspacePump {
            buf: vec![0; BUFFER_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            throttle: None,
        }
    }

    /// A pump that charges every chunk it reads to `charge`.
    pub(crate) fn throttled(charge: Charge) -> Self {
        UserspacePump {
            throttle: Some(Throttle::new(charge)),
            ..UserspacePump::new()
        }
    }
}

impl Pump for UserspacePump {
    fn poll_move(
        &mut self,
        cx: &mut Context<'_>,
        src: &TcpStream,
        dst: &TcpStream,
    ) -> Poll<io::Result<usize>> {
        loop {
            if let Some(throttle) = &mut self.throttle {
                ready!(throttle.poll_unparked(cx));
            }
            if self.start < self.end {
                let written = dst.try_write(&self.buf[self.start..self.end]);
                match ready!(retry_after(written, cx, |cx| dst.poll_write_ready(cx)))? {
                    Some(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Some(n) => {
                        self.start += n;
                        return Poll::Ready(Ok(n));
                    }
                    None => continue,
                }
            }
            let read = read_draining(src, &mut self.buf);
            match ready!(retry_after(read, cx, |cx| src.poll_read_ready(cx)))? {
                Some(0) => return Poll::Ready(Ok(0)),
                Some(n) => {
                    self.start = 0;
                    self.end = n;
                    if let Some(throttle) = &mut self.throttle {
                        throttle.charge(n);
                    }
                }
                None => {}
            }
        }
    }
}
