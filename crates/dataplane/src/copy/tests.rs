use super::*;
use crate::tests::support::{closed_by_peer, pattern, within};
use std::net::Ipv4Addr;
use std::time::Duration;
use tokio::net::TcpListener;

/// Both ends of one loopback connection.
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (connected, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (connected.expect("connect"), accepted.expect("accept").0)
}

/// A reset from the downstream peer ends the copy with an inbound error,
/// although the outbound direction is idle, and the target sees the close.
async fn reset_tears_down_both(want_splice: bool) {
    let (client, downstream) = pair().await;
    let (upstream, mut backend) = pair().await;
    let mut pumps = Pumps::new(want_splice);
    assert_eq!(pumps.may_splice(), want_splice && cfg!(target_os = "linux"));
    let copying = tokio::spawn(async move {
        let result = pumps.run(&downstream, &upstream, |_, _| {}).await;
        result.map_err(|e| e.direction)
    });
    SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER");
    drop(client);
    let result = within("copy teardown", copying).await.expect("copy task");
    assert_eq!(result, Err(Direction::Inbound));
    assert!(within("target sees the close", closed_by_peer(&mut backend)).await);
}

#[tokio::test]
async fn reset_tears_down_both_sides_with_splice() {
    reset_tears_down_both(true).await;
}

#[tokio::test]
async fn reset_tears_down_both_sides_in_userspace() {
    reset_tears_down_both(false).await;
}

/// Sends `request` from the client and `reply` from the backend through
/// a pair of adaptive pumps, the backend reading in `read_chunk` pieces;
/// checks both arrive unchanged and answers whether the copy moved on to
/// splice.
#[cfg(target_os = "linux")]
async fn adaptive_exchange(request: Vec<u8>, reply: Vec<u8>, read_chunk: usize) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client, downstream) = pair().await;
    let (upstream, mut backend) = pair().await;
    let copying = tokio::spawn(async move {
        let mut pumps = Pumps::new(true);
        let result = pumps.run(&downstream, &upstream, |_, _| {}).await;
        result.map(|()| pumps.spliced()).map_err(|e| e.to_string())
    });
    let want_request = request.clone();
    let serving = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = vec![0u8; read_chunk];
        loop {
            let n = backend.read(&mut buf).await.expect("backend read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == want_request, "the request arrived changed");
        backend.write_all(&reply).await.expect("backend write");
    });
    let (mut reader, mut writer) = client.split();
    let sending = async {
        writer.write_all(&request).await.expect("client write");
        writer.shutdown().await.expect("client half-close");
    };
    let mut answer = Vec::new();
    let receiving = reader.read_to_end(&mut answer);
    let ((), received) = within("exchange", async { tokio::join!(sending, receiving) }).await;
    received.expect("client read");
    within("backend", serving).await.expect("backend task");
    let spliced = within("copy", copying)
        .await
        .expect("copy task")
        .expect("copy");
    spliced
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn adaptive_copy_keeps_a_short_exchange_out_of_splice() {
    let request = pattern(300, 1);
    let reply = pattern(2_000, 2);
    let spliced = adaptive_exchange(request, reply, 64 * 1024).await;
    assert!(!spliced, "a short exchange was spliced");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn adaptive_copy_moves_bulk_to_splice() {
    let request = pattern(4 * 1024 * 1024, 3);
    let reply = pattern(100, 4);
    let spliced = adaptive_exchange(request, reply, 1024).await;
    assert!(spliced, "bulk was never spliced");
}

/// The first bulk chunk meets a full way to the backend, so it is only
/// partly written when the pump decides to splice: the rest must go out
/// before any spliced byte, or bytes would be lost or reordered.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn adaptive_copy_flushes_a_backed_up_chunk_before_splicing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client, downstream) = pair().await;
    let (upstream, mut backend) = pair().await;
    SockRef::from(&upstream)
        .set_send_buffer_size(8192)
        .expect("SO_SNDBUF");
    SockRef::from(&backend)
        .set_recv_buffer_size(8192)
        .expect("SO_RCVBUF");
    // Fill the way to the backend, which does not read yet.
    let mut want = Vec::new();
    let filler = [0xA5u8; 1024];
    within("filling", upstream.writable())
        .await
        .expect("writable");
    loop {
        match upstream.try_write(&filler) {
            Ok(n) => want.extend_from_slice(&filler[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling: {e}"),
        }
    }
    // The whole payload waits in the downstream socket, so the pump's
    // first read fills its buffer.
    let payload = pattern(64 * 1024, 6);
    client.write_all(&payload).await.expect("client write");
    client.shutdown().await.expect("client half-close");
    want.extend_from_slice(&payload);
    let copying = tokio::spawn(async move {
        let mut pumps = Pumps::new(true);
        let result = pumps.run(&downstream, &upstream, |_, _| {}).await;
        result.map(|()| pumps.spliced()).map_err(|e| e.to_string())
    });
    let mut got = Vec::new();
    within("backend read", backend.read_to_end(&mut got))
        .await
        .expect("backend read");
    assert_eq!(got.len(), want.len());
    assert!(got == want, "bytes were reordered across the switch");
    backend.shutdown().await.expect("backend half-close");
    let spliced = within("copy", copying)
        .await
        .expect("copy task")
        .expect("copy");
    assert!(spliced, "the bulk payload was never spliced");
}

/// A short read clears the socket's readiness, so the next attempt waits
/// instead of reading; bytes and the end of input that come later still
/// wake it.
#[tokio::test]
async fn a_short_read_waits_for_the_next_edge_without_losing_it() {
    use tokio::io::AsyncWriteExt;
    let (mut writer, reader) = pair().await;
    let mut buf = [0u8; 64];
    writer.write_all(b"first").await.expect("write");
    within("first bytes", reader.readable())
        .await
        .expect("readable");
    assert_eq!(read_draining(&reader, &mut buf).expect("read"), 5);
    let again = read_draining(&reader, &mut buf).expect_err("nothing is left");
    assert_eq!(again.kind(), io::ErrorKind::WouldBlock);
    writer.write_all(b"second").await.expect("write");
    within("second bytes", reader.readable())
        .await
        .expect("readable");
    assert_eq!(read_draining(&reader, &mut buf).expect("read"), 6);
    assert_eq!(&buf[..6], b"second");
    writer.shutdown().await.expect("shutdown");
    within("end of input", reader.readable())
        .await
        .expect("readable");
    assert_eq!(read_draining(&reader, &mut buf).expect("read"), 0);
}

/// A read that fills the buffer may have left bytes behind, so readiness
/// stays and the next read takes them without a wait.
#[tokio::test]
async fn a_full_read_keeps_the_readiness() {
    use tokio::io::AsyncWriteExt;
    let (mut writer, reader) = pair().await;
    writer.write_all(&[7u8; 12]).await.expect("write");
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        within("bytes", reader.readable()).await.expect("readable");
        got = read_draining(&reader, &mut buf).expect("read");
    }
    assert_eq!(read_draining(&reader, &mut buf).expect("the rest"), 4);
}
