//! Test fixtures: a self-signed server certificate and a scripted in-process
//! `Control` server behind tokio-rustls, on an ephemeral loopback port.

use crate::pin::CertPin;
use portunus_domain::endpoint::Endpoint;
use portunus_proto::pb;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

pub struct SelfSigned {
    pub cert: CertificateDer<'static>,
    pub key: PrivatePkcs8KeyDer<'static>,
    pub pin: CertPin,
}

pub fn self_signed() -> SelfSigned {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = generated.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der());
    let pin = CertPin::of_der(&cert);
    SelfSigned { cert, key, pin }
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn server_config(id: &SelfSigned) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![id.cert.clone()],
            PrivateKeyDer::Pkcs8(id.key.clone_key()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

pub async fn loopback_listener() -> (TcpListener, Endpoint) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (
        listener,
        Endpoint::parse(&format!("127.0.0.1:{port}")).unwrap(),
    )
}

/// One accepted `Session` stream, as the test sees it.
pub struct Session {
    pub authorization: Option<String>,
    pub from_client: Streaming<pb::ClientMessage>,
    pub to_client: mpsc::Sender<Result<pb::ServerMessage, Status>>,
}

#[derive(Clone)]
pub struct FakeControl {
    pub redeem_reply: Arc<Mutex<Result<pb::RedeemResponse, Status>>>,
    pub redeemed: Arc<Mutex<Vec<pb::RedeemRequest>>>,
    /// When set, every `Session` call is refused with this status.
    pub refuse_sessions: Arc<Mutex<Option<Status>>>,
    pub session_attempts: Arc<AtomicUsize>,
    pub handshake_failures: Arc<AtomicUsize>,
    sessions: mpsc::UnboundedSender<Session>,
}

#[tonic::async_trait]
impl pb::control_server::Control for FakeControl {
    async fn redeem(
        &self,
        request: Request<pb::RedeemRequest>,
    ) -> Result<Response<pb::RedeemResponse>, Status> {
        self.redeemed.lock().unwrap().push(request.into_inner());
        self.redeem_reply.lock().unwrap().clone().map(Response::new)
    }

    type SessionStream = ReceiverStream<Result<pb::ServerMessage, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<pb::ClientMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        self.session_attempts.fetch_add(1, Ordering::SeqCst);
        if let Some(status) = self.refuse_sessions.lock().unwrap().clone() {
            return Err(status);
        }
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (to_client, rx) = mpsc::channel(64);
        let session = Session {
            authorization,
            from_client: request.into_inner(),
            to_client,
        };
        self.sessions
            .send(session)
            .map_err(|_| Status::unavailable("test over"))?;
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

pub struct RunningServer {
    pub endpoint: Endpoint,
    pub pin: CertPin,
    pub control: FakeControl,
    pub sessions: mpsc::UnboundedReceiver<Session>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn spawn_control_server(
    redeem_reply: Result<pb::RedeemResponse, Status>,
) -> RunningServer {
    let id = self_signed();
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(&id));
    let (listener, endpoint) = loopback_listener().await;
    let (sessions_tx, sessions) = mpsc::unbounded_channel();
    let control = FakeControl {
        redeem_reply: Arc::new(Mutex::new(redeem_reply)),
        redeemed: Arc::default(),
        refuse_sessions: Arc::default(),
        session_attempts: Arc::default(),
        handshake_failures: Arc::default(),
        sessions: sessions_tx,
    };
    let failures = control.handshake_failures.clone();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener)
        .then(move |tcp| {
            let acceptor = acceptor.clone();
            async move { acceptor.accept(tcp?).await }
        })
        // A failed handshake ends that connection, not the server.
        .filter(move |r| {
            if r.is_err() {
                failures.fetch_add(1, Ordering::SeqCst);
            }
            r.is_ok()
        });
    let service = pb::control_server::ControlServer::new(control.clone());
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await;
    });
    RunningServer {
        endpoint,
        pin: id.pin,
        control,
        sessions,
        task,
    }
}

/// Upper bound for anything a test waits on; generous for a loaded box.
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Polls `condition` until it holds, failing the test at the deadline.
pub async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut condition: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Echoes every byte back on every connection.
pub async fn echo_backend() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A port the kernel just handed out and released. Rules bind on all
/// addresses, so the probe does too.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn tcp_rule(listen_port: u16, target: std::net::SocketAddr) -> portunus_domain::rule::RuleSpec {
    portunus_domain::rule::RuleSpec::single(
        portunus_domain::rule::Protocol::Tcp,
        listen_port.into(),
        &target.ip().to_string(),
        target.port().into(),
    )
}

pub async fn connect(port: u16) -> std::io::Result<tokio::net::TcpStream> {
    tokio::net::TcpStream::connect(("127.0.0.1", port)).await
}

/// Writes `msg` and reads the same number of bytes back.
pub async fn round_trip(stream: &mut tokio::net::TcpStream, msg: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    within("echo round trip", async {
        stream.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        stream.read_exact(&mut back).await.unwrap();
        back
    })
    .await
}
