//! The control port's thread of its own.
//!
//! Every edge holds a stream that reports every few seconds. On the shared
//! multi-threaded runtime each of those small wakeups also woke a second
//! worker to steal work, and parking and waking were about a quarter of an
//! idle fleet's server CPU. So the whole control port (accept, TLS, HTTP/2, sessions)
//! runs on a current-thread runtime on a thread of its own, and the operator
//! API, console and metrics keep the shared runtime: neither waits behind
//! the other, and a reconnect storm's handshakes do not queue an
//! operator's requests.
//!
//! Everything the two sides share is runtime-agnostic (the state behind an
//! `Arc`, Tokio channels, the store's blocking calls), so nothing else
//! knows which thread a session runs on. Sockets are registered with the
//! runtime that first polls them, which is why the listener crosses over
//! as a std socket and the server future is built on the thread.

use std::future::Future;
use std::io;
use tokio::sync::oneshot;

/// Starts `serve()` on a new thread named `portunus-control` with a
/// current-thread runtime that may run `blocking_threads` store calls at
/// once. The receiver resolves when the future has finished (or the thread
/// has died with it).
pub fn spawn<F, Fut>(blocking_threads: usize, serve: F) -> io::Result<oneshot::Receiver<()>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(blocking_threads)
        .build()?;
    let (done, finished) = oneshot::channel();
    std::thread::Builder::new()
        .name("portunus-control".into())
        .spawn(move || {
            runtime.block_on(serve());
            // Dropping the runtime here would wait for store calls still
            // running on its blocking pool; the process is ending anyway.
            runtime.shutdown_background();
            let _ = done.send(());
        })?;
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The future runs on the named thread, with a runtime of its own that
    /// spawns and times, and the caller learns when it ends.
    #[tokio::test]
    async fn serves_on_a_thread_and_runtime_of_its_own() {
        let caller = std::thread::current().id();
        let (tx, rx) = oneshot::channel();
        let finished = spawn(2, move || async move {
            let inner = tokio::spawn(async { std::thread::current().name().map(str::to_string) });
            let name = tokio::time::timeout(std::time::Duration::from_secs(20), inner)
                .await
                .expect("the runtime has timers")
                .expect("task");
            let flavor = tokio::runtime::Handle::current().runtime_flavor();
            let _ = tx.send((name, std::thread::current().id(), flavor));
        })
        .expect("thread");
        let (name, id, flavor) = rx.await.expect("the future ran");
        assert_eq!(name.as_deref(), Some("portunus-control"));
        assert_ne!(id, caller);
        assert_eq!(flavor, tokio::runtime::RuntimeFlavor::CurrentThread);
        finished.await.expect("the end is reported");
    }
}
