use super::*;
use crate::testing::*;
use portunus_dataplane::Engine;
use portunus_proto::pb::client_message::Kind as ClientKind;
use portunus_proto::pb::rule_outcome::Kind as OutcomeKind;
use std::sync::atomic::Ordering;

const TOKEN: &str = "tok-SECRET-1";

fn config(server: &RunningServer, pin: CertPin, stats_interval: Duration) -> ControlConfig {
    ControlConfig {
        endpoint: server.endpoint.clone(),
        pin,
        client_id: "client-1".into(),
        client_version: "9.9.9-test".into(),
        hostname: "edge-test".into(),
        backoff: Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(20),
        },
        stats_interval,
    }
}

/// The client's control loop in a task; aborted (and its rules with it)
/// when the test ends.
struct Client(tokio::task::JoinHandle<()>);

impl Drop for Client {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn spawn_client(cfg: ControlConfig) -> Client {
    let mut control = Control::new(cfg, &Token::new(TOKEN.into())).unwrap();
    let mut rec = Reconciler::new(
        Engine::new(EngineConfig::default()),
        Duration::from_secs(30),
    );
    Client(tokio::spawn(
        async move { match control.run(&mut rec).await {} },
    ))
}

async fn next_session(server: &mut RunningServer) -> Session {
    within("a control session", server.sessions.recv())
        .await
        .expect("server gone")
}

async fn next_message(session: &mut Session) -> ClientKind {
    let message = within("a client message", session.from_client.message()).await;
    message
        .expect("stream error")
        .expect("stream ended")
        .kind
        .expect("empty message")
}

async fn next_outcome(session: &mut Session) -> pb::RuleOutcome {
    loop {
        if let ClientKind::Outcome(o) = next_message(session).await {
            return o;
        }
    }
}

/// The first stats report that satisfies `want`.
async fn stats_until(
    session: &mut Session,
    want: impl Fn(&pb::StatsReport) -> bool,
) -> pb::StatsReport {
    loop {
        if let ClientKind::Stats(report) = next_message(session).await {
            if want(&report) {
                return report;
            }
        }
    }
}

async fn send(session: &Session, kind: Kind) {
    session
        .to_client
        .send(Ok(pb::ServerMessage { kind: Some(kind) }))
        .await
        .expect("client stream gone");
}

fn welcome() -> Kind {
    Kind::Welcome(pb::Welcome {
        server_version: "test".into(),
        client_id: "client-1".into(),
        client_name: "edge-01".into(),
        udp_flow_idle_secs: 45,
        udp_max_flows_per_rule: 16,
        wire_version: portunus_proto::WIRE_VERSION,
    })
}

fn wire_rule(id: &str, port: u16, backend: std::net::SocketAddr) -> pb::Rule {
    portunus_proto::rule_to_pb(id, "alice", &tcp_rule(port, backend))
}

fn assert_outcome(o: &pb::RuleOutcome, id: &str, kind: OutcomeKind) {
    assert_eq!((o.rule_id.as_str(), o.kind), (id, kind as i32), "{o:?}");
}

/// Opens a session, checks its hello, welcomes the client and activates
/// `r1` on a fresh port. Returns the session and the port.
async fn session_with_rule(
    server: &mut RunningServer,
    backend: std::net::SocketAddr,
) -> (Session, u16) {
    let mut session = next_session(server).await;
    assert_eq!(
        session.authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    match next_message(&mut session).await {
        ClientKind::Hello(hello) => {
            assert_eq!(
                (
                    hello.client_version.as_str(),
                    hello.hostname.as_str(),
                    hello.wire_version
                ),
                ("9.9.9-test", "edge-test", portunus_proto::WIRE_VERSION)
            )
        }
        other => panic!("first message was {other:?}"),
    }
    send(&session, welcome()).await;
    let port = free_port();
    send(
        &session,
        Kind::RuleSet(pb::RuleSet {
            rules: vec![wire_rule("r1", port, backend)],
        }),
    )
    .await;
    assert_outcome(
        &next_outcome(&mut session).await,
        "r1",
        OutcomeKind::Activated,
    );
    (session, port)
}

#[tokio::test]
async fn session_says_hello_with_the_bearer_answers_every_message_and_reports_stats() {
    let mut server = spawn_control_server(Err(Status::unimplemented("no redeem here"))).await;
    let backend = echo_backend().await;
    let _client = spawn_client(config(&server, server.pin, Duration::from_millis(50)));
    let (mut session, port) = session_with_rule(&mut server, backend).await;

    let mut conn = connect(port).await.unwrap();
    assert_eq!(round_trip(&mut conn, b"hello").await, b"hello");
    let report = stats_until(&mut session, |r| {
        r.rules.iter().any(|s| s.rule_id == "r1" && s.bytes_in >= 5)
    })
    .await;
    let r1 = report.rules.iter().find(|s| s.rule_id == "r1").unwrap();
    assert_eq!(
        (r1.connections_total, r1.ports.len(), r1.targets.len()),
        (1, 1, 1)
    );
    assert_eq!(r1.ports[0].port, u32::from(port));
    assert_eq!(r1.targets[0].port, u32::from(backend.port()));

    // A rule the client cannot decode fails; a good push activates.
    let mut broken = wire_rule("r2", free_port(), backend);
    broken.protocol = 99;
    send(&session, Kind::Push(broken)).await;
    let failed = next_outcome(&mut session).await;
    assert_outcome(&failed, "r2", OutcomeKind::Failed);
    assert_eq!(failed.reason, "invalid_rule");
    let port3 = free_port();
    send(&session, Kind::Push(wire_rule("r3", port3, backend))).await;
    assert_outcome(
        &next_outcome(&mut session).await,
        "r3",
        OutcomeKind::Activated,
    );

    send(
        &session,
        Kind::Remove(pb::RemoveRule {
            rule_id: "r1".into(),
        }),
    )
    .await;
    assert_outcome(
        &next_outcome(&mut session).await,
        "r1",
        OutcomeKind::Removed,
    );
    eventually("r1's listener to close", || async {
        connect(port).await.is_err()
    })
    .await;
    assert_eq!(round_trip(&mut conn, b"draining").await, b"draining");

    send(
        &session,
        Kind::OwnerRateLimit(pb::OwnerRateLimit {
            owner: "alice".into(),
            rate_limit: None,
        }),
    )
    .await;
    stats_until(&mut session, |r| {
        r.rules.iter().map(|s| s.rule_id.as_str()).eq(["r3"])
    })
    .await;
}

#[tokio::test]
async fn losing_the_stream_keeps_rules_forwarding_and_the_next_full_set_leaves_them_alone() {
    let mut server = spawn_control_server(Err(Status::unimplemented("no redeem here"))).await;
    let backend = echo_backend().await;
    let _client = spawn_client(config(&server, server.pin, Duration::from_millis(50)));
    let (session, port) = session_with_rule(&mut server, backend).await;
    let mut conn = connect(port).await.unwrap();
    assert_eq!(round_trip(&mut conn, b"before").await, b"before");

    drop(session);
    let mut second = next_session(&mut server).await;
    assert!(matches!(
        next_message(&mut second).await,
        ClientKind::Hello(_)
    ));
    assert_eq!(round_trip(&mut conn, b"while away").await, b"while away");

    send(&second, welcome()).await;
    send(
        &second,
        Kind::RuleSet(pb::RuleSet {
            rules: vec![wire_rule("r1", port, backend)],
        }),
    )
    .await;
    assert_outcome(
        &next_outcome(&mut second).await,
        "r1",
        OutcomeKind::Activated,
    );
    assert_eq!(round_trip(&mut conn, b"after").await, b"after");
    let report = stats_until(&mut second, |r| !r.rules.is_empty()).await;
    assert_eq!(
        report.rules[0].connections_total, 1,
        "the unchanged rule was restarted"
    );
}

#[tokio::test]
async fn revoked_credential_keeps_rules_running_and_keeps_retrying() {
    let mut server = spawn_control_server(Err(Status::unimplemented("no redeem here"))).await;
    let backend = echo_backend().await;
    let _client = spawn_client(config(&server, server.pin, Duration::from_secs(3600)));
    let (session, port) = session_with_rule(&mut server, backend).await;

    *server.control.refuse_sessions.lock().unwrap() =
        Some(Status::unauthenticated("client revoked"));
    let attempts = server.control.session_attempts.load(Ordering::SeqCst);
    drop(session);
    let counter = server.control.session_attempts.clone();
    eventually("three refused attempts", || {
        let counter = counter.clone();
        async move { counter.load(Ordering::SeqCst) >= attempts + 3 }
    })
    .await;
    let mut conn = connect(port).await.unwrap();
    assert_eq!(
        round_trip(&mut conn, b"still forwarding").await,
        b"still forwarding"
    );

    *server.control.refuse_sessions.lock().unwrap() = None;
    let mut back = next_session(&mut server).await;
    assert!(matches!(
        next_message(&mut back).await,
        ClientKind::Hello(_)
    ));
}

#[tokio::test]
async fn pin_mismatch_is_retried_and_never_opens_a_session() {
    let mut server = spawn_control_server(Err(Status::unimplemented("no redeem here"))).await;
    let wrong = CertPin::of_der(b"not the server certificate");
    let _client = spawn_client(config(&server, wrong, Duration::from_secs(3600)));

    let failures = server.control.handshake_failures.clone();
    eventually("repeated handshake failures", || {
        let failures = failures.clone();
        async move { failures.load(Ordering::SeqCst) >= 3 }
    })
    .await;
    assert_eq!(server.control.session_attempts.load(Ordering::SeqCst), 0);
    assert!(server.sessions.try_recv().is_err());
}

#[test]
fn welcome_tunables_map_to_engine_config_and_zero_keeps_defaults() {
    let w = pb::Welcome {
        udp_flow_idle_secs: 45,
        udp_max_flows_per_rule: 16,
        ..Default::default()
    };
    assert_eq!(
        engine_config(&w),
        EngineConfig {
            udp_flow_idle: Duration::from_secs(45),
            udp_max_flows_per_rule: 16
        }
    );
    assert_eq!(
        engine_config(&pb::Welcome::default()),
        EngineConfig::default()
    );
}
