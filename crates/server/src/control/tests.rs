//! The control service in process, over plain HTTP/2 on loopback: TLS is
//! the transport's business and is covered by the process-level tests.

use super::service::MIN_CLIENT_WIRE_VERSION;
use super::ControlService;
use crate::secrets::hash_token;
use crate::store::clients;
use portunus_proto::pb::{self, client_message, control_client::ControlClient};
use portunus_proto::pb::{control_server::ControlServer, server_message};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::Request;

/// Log lines of the current thread, which on a current-thread runtime is
/// every task of the test, the service's included.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    async fn wait_for(&self, needle: &str) -> String {
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if self.text().contains(needle) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(found.is_ok(), "{needle:?} never logged:\n{}", self.text());
        self.text()
    }
}

/// Opens a session as `token` whose first message is a hello of `wire`,
/// and returns the stream once the welcome arrived.
async fn session(
    addr: std::net::SocketAddr,
    token: &str,
    wire: u32,
) -> (pb::Welcome, mpsc::Sender<pb::ClientMessage>) {
    let mut client = ControlClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(4);
    let hello = pb::Hello {
        client_version: format!("test-build-wire-{wire}"),
        hostname: "edge-host".into(),
        wire_version: wire,
    };
    tx.send(pb::ClientMessage {
        kind: Some(client_message::Kind::Hello(hello)),
    })
    .await
    .unwrap();
    let mut request = Request::new(ReceiverStream::new(rx));
    let bearer = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", bearer);
    let mut inbound = client.session(request).await.unwrap().into_inner();
    match inbound.message().await.unwrap().and_then(|m| m.kind) {
        Some(server_message::Kind::Welcome(w)) => (w, tx),
        other => panic!("first message was {other:?}"),
    }
}

#[tokio::test]
async fn the_welcome_carries_the_versions_and_an_old_client_is_served_with_a_warning() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (_dir, state) = crate::state::test_state();
    state
        .store
        .blocking(|c| {
            for name in ["edge-old", "edge-new"] {
                let row = clients::ensure(c, name, None)?;
                clients::set_token(c, &row.id, &hash_token(&format!("tok-{name}")))?;
            }
            Ok(())
        })
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ControlServer::new(ControlService::new(state)))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let (welcome, _old) = session(addr, "tok-edge-old", MIN_CLIENT_WIRE_VERSION - 1).await;
    assert_eq!(welcome.server_version, portunus_about::LONG);
    assert_eq!(welcome.wire_version, portunus_proto::WIRE_VERSION);
    let text = logs.wait_for("older than the wire this server needs").await;
    assert!(
        text.contains("edge-old") && text.contains("test-build-wire-0"),
        "{text}"
    );

    let (_, _new) = session(addr, "tok-edge-new", portunus_proto::WIRE_VERSION).await;
    let text = logs.wait_for("client hello").await;
    let warned: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("older than the wire"))
        .collect();
    assert_eq!(
        warned.len(),
        1,
        "only the old client is warned about:\n{text}"
    );
    assert!(!warned[0].contains("edge-new"), "{text}");
}

/// A client that connects while an owner's quota on it is spent is told so
/// before it gets its rules, so no rule of that owner forwards even for a
/// moment; the list is complete, so an owner not named is let through.
#[tokio::test]
async fn the_opening_tells_the_quota_gates_before_the_rules() {
    use crate::quota::period::Reset;
    use crate::store::{quotas, users};
    let (_dir, state) = crate::state::test_state();
    state
        .store
        .blocking(|c| {
            users::create(c, "alice", "Alice", users::Role::User)?;
            users::create(c, "bob", "Bob", users::Role::User)?;
            let row = clients::ensure(c, "edge", None)?;
            clients::set_token(c, &row.id, &hash_token("tok-edge"))?;
            for (owner, used) in [("alice", 100), ("bob", 99)] {
                quotas::put(
                    c,
                    &quotas::QuotaRow {
                        client_id: row.id.clone(),
                        owner: owner.into(),
                        monthly_bytes: 100,
                        reset: Reset::Never,
                        ends_at: None,
                        period_start: 0,
                        used_bytes: used,
                        updated_at: 0,
                    },
                )?;
            }
            Ok(())
        })
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ControlServer::new(ControlService::new(state)))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let mut client = ControlClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let (_tx, rx) = mpsc::channel::<pb::ClientMessage>(4);
    let mut request = Request::new(ReceiverStream::new(rx));
    request
        .metadata_mut()
        .insert("authorization", "Bearer tok-edge".parse().unwrap());
    let mut inbound = client.session(request).await.unwrap().into_inner();
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        kinds.push(
            inbound
                .message()
                .await
                .unwrap()
                .and_then(|m| m.kind)
                .unwrap(),
        );
    }
    assert!(
        matches!(kinds[0], server_message::Kind::Welcome(_)),
        "{kinds:?}"
    );
    match &kinds[1] {
        server_message::Kind::QuotaGates(g) => assert_eq!(g.exhausted_owners, ["alice"]),
        other => panic!("expected the quota gates, got {other:?}"),
    }
    assert!(
        matches!(kinds[2], server_message::Kind::RuleSet(_)),
        "{kinds:?}"
    );
}
