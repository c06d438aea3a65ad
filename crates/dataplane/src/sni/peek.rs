//! Reading a connection's ClientHello before routing it, bounded in size
//! and time. The bytes read are handed back so they can be replayed.

use super::client_hello::{parse_client_hello, ClientHello, HelloError};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// How long a client may take to send its whole ClientHello.
pub(crate) const PEEK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Peeked {
    Hello(ClientHello),
    /// The bytes cannot become a ClientHello (or passed the size bound).
    NotTls(HelloError),
    /// The client sent no complete hello in time.
    TimedOut,
    /// The client closed or reset before a complete hello.
    Closed,
}

/// Reads from `stream` until its bytes hold a complete ClientHello, can no
/// longer become one, reach `limit`, or `timeout` passes. Returns every
/// byte read, whatever the outcome.
pub(crate) async fn read_client_hello(
    stream: &mut TcpStream,
    limit: usize,
    timeout: Duration,
) -> (Vec<u8>, Peeked) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if !bytes.is_empty() {
            match parse_client_hello(&bytes) {
                Ok(hello) => return (bytes, Peeked::Hello(hello)),
                Err(HelloError::Incomplete) => {}
                Err(e) => return (bytes, Peeked::NotTls(e)),
            }
        }
        let room = limit.saturating_sub(bytes.len()).min(chunk.len());
        if room == 0 {
            return (bytes, Peeked::NotTls(HelloError::TooLarge));
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk[..room])).await {
            Err(_) => return (bytes, Peeked::TimedOut),
            Ok(Ok(0) | Err(_)) => return (bytes, Peeked::Closed),
            Ok(Ok(n)) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
}
