use super::*;
use crate::testing::{loopback_listener, provider, self_signed, server_config, SelfSigned};
use rustls::pki_types::PrivateKeyDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// What the server side of one connection observed.
#[derive(Debug)]
enum Seen {
    HandshakeFailed,
    Data(Vec<u8>),
}

/// Accepts one connection and reports whether the TLS handshake finished
/// and, if it did, every application byte the client sent before closing.
async fn one_shot_server(config: Arc<rustls::ServerConfig>) -> (Endpoint, oneshot::Receiver<Seen>) {
    let (listener, endpoint) = loopback_listener().await;
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let seen = match tokio_rustls::TlsAcceptor::from(config).accept(tcp).await {
            Err(_) => Seen::HandshakeFailed,
            Ok(mut tls) => {
                let mut data = Vec::new();
                let _ = tls.read_to_end(&mut data).await;
                Seen::Data(data)
            }
        };
        let _ = tx.send(seen);
    });
    (endpoint, rx)
}

#[tokio::test]
async fn correct_pin_completes_the_handshake_with_h2() {
    let id = self_signed();
    let (endpoint, seen) = one_shot_server(server_config(&id)).await;

    let mut tls = dial(&endpoint, client_config(id.pin))
        .await
        .expect("handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls.write_all(b"hello").await.unwrap();
    tls.shutdown().await.unwrap();
    drop(tls);

    match seen.await.unwrap() {
        Seen::Data(d) => assert_eq!(d, b"hello"),
        other => panic!("server saw {other:?}"),
    }
}

#[tokio::test]
async fn wrong_pin_fails_in_the_handshake_before_any_byte() {
    let id = self_signed();
    let (endpoint, seen) = one_shot_server(server_config(&id)).await;
    let wrong = CertPin::of_der(b"some other certificate");

    let err = dial(&endpoint, client_config(wrong))
        .await
        .expect_err("pin mismatch must fail");
    let msg = pin_mismatch(&err).expect("a pin mismatch").to_string();
    assert!(
        msg.contains(&format!("does not match the pinned sha256:{wrong}")),
        "{msg}"
    );
    assert!(msg.contains(&id.pin.to_string()), "{msg}");

    match seen.await.unwrap() {
        Seen::HandshakeFailed => {}
        Seen::Data(d) => panic!("server completed a handshake and read {} bytes", d.len()),
    }
}

#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A server that replays the pinned certificate but lacks its key must be
/// refused: the pin alone is public, the handshake signature is the proof.
#[tokio::test]
async fn pinned_certificate_without_its_key_is_refused() {
    let genuine = self_signed();
    let impostor: SelfSigned = self_signed();
    let key = provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(impostor.key.clone_key()))
        .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(CertifiedKey::new(
            vec![genuine.cert.clone()],
            key,
        )))));
    config.alpn_protocols = vec![b"h2".to_vec()];
    let (endpoint, seen) = one_shot_server(Arc::new(config)).await;

    let err = dial(&endpoint, client_config(genuine.pin))
        .await
        .expect_err("forged key must fail");
    assert!(
        pin_mismatch(&err).is_none(),
        "the pin matched; the signature must be what failed: {err}"
    );
    assert!(matches!(seen.await.unwrap(), Seen::HandshakeFailed));
}

#[tokio::test]
async fn dial_to_a_closed_port_fails_without_hanging() {
    let (listener, endpoint) = loopback_listener().await;
    drop(listener);
    let err = dial(&endpoint, client_config(CertPin::of_der(b"x")))
        .await
        .unwrap_err();
    assert!(pin_mismatch(&err).is_none());
}
