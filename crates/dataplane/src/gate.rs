//! Quota gates: one per owner on this edge. A closed gate refuses the
//! owner's new TCP connections and new UDP flows and ends the ones that are
//! open; opening it lets new ones in again, with nothing to re-bind (the
//! rules' listeners stay up the whole time).

use std::future::Future;
use tokio::sync::watch;

#[derive(Debug)]
pub struct Gate {
    closed: watch::Sender<bool>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            closed: watch::Sender::new(false),
        }
    }
}

impl Gate {
    /// Closes or opens the gate; returns whether that changed anything.
    pub fn set_closed(&self, closed: bool) -> bool {
        self.closed.send_if_modified(|c| {
            let changed = *c != closed;
            *c = closed;
            changed
        })
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves once the gate is closed (at once if it is now). Takes the
    /// watch before the caller's work starts, so a close that lands between
    /// the admission check and the first poll is not missed.
    pub(crate) fn closing(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.closed.subscribe();
        async move {
            if rx.wait_for(|closed| *closed).await.is_err() {
                // The gate is gone with its engine: it never closes.
                std::future::pending::<()>().await;
            }
        }
    }

    /// A receiver that sees every later open and close.
    pub(crate) fn watch(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn closing_resolves_on_close_and_at_once_when_closed() {
        let gate = Gate::default();
        let pending = gate.closing();
        assert!(!gate.is_closed());
        assert!(gate.set_closed(true));
        assert!(!gate.set_closed(true), "closing twice changes nothing");
        tokio::time::timeout(Duration::from_secs(5), pending)
            .await
            .expect("the close is seen");
        tokio::time::timeout(Duration::from_secs(5), gate.closing())
            .await
            .expect("a closed gate resolves at once");
        assert!(gate.set_closed(false));
        assert!(!gate.is_closed());
    }
}
