use super::*;
use crate::tests::support::{closed_by_peer, within};
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
    let pumps = Pumps::new(want_splice);
    assert_eq!(pumps.is_splice(), want_splice && cfg!(target_os = "linux"));
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
