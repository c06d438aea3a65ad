//! Parking for a bandwidth cap: after a chunk is read, its charge says how
//! long the pump waits before writing it and reading more, so the cap
//! slows the reader down (TCP flow control does the rest) instead of
//! closing anything.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// Charges `n` bytes read and answers how long to wait before moving on.
pub(crate) type Charge = Box<dyn FnMut(usize) -> Duration + Send>;

pub(crate) struct Throttle {
    charge: Charge,
    parked: Option<Pin<Box<Sleep>>>,
}

impl Throttle {
    pub(crate) fn new(charge: Charge) -> Self {
        Throttle {
            charge,
            parked: None,
        }
    }

    /// Charges a chunk just read; a debt parks the pump.
    pub(crate) fn charge(&mut self, n: usize) {
        let wait = (self.charge)(n);
        if !wait.is_zero() {
            self.parked = Some(Box::pin(tokio::time::sleep(wait)));
        }
    }

    /// Ready once the pump may move on.
    pub(crate) fn poll_unparked(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(sleep) = &mut self.parked {
            std::task::ready!(sleep.as_mut().poll(cx));
            self.parked = None;
        }
        Poll::Ready(())
    }
}
