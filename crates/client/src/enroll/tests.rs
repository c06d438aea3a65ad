use super::*;
use crate::pin::CertPin;
use crate::testing::{spawn_control_server, RunningServer};
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use tonic::Status;

const CODE: &str = "one-time-CODE-123";

fn reply() -> Result<pb::RedeemResponse, Status> {
    Ok(pb::RedeemResponse {
        client_id: "01J8XCLIENT".into(),
        client_name: "edge-01".into(),
        server_endpoint: "proxy.example.com:7443".into(),
        token: "bearer-TOKEN-xyz".into(),
    })
}

fn uri_for(server: &RunningServer, pin: CertPin) -> String {
    format!(
        "portunus://{}/enroll?pin=sha256:{pin}&code={CODE}",
        server.endpoint
    )
}

fn no_env(_: &str) -> Option<OsString> {
    None
}

#[tokio::test]
async fn redeems_over_pinned_tls_and_writes_a_private_bundle() {
    let server = spawn_control_server(reply()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("new/client.bundle.json");

    let written = run(&uri_for(&server, server.pin), Some(out.clone()), no_env)
        .await
        .unwrap();
    assert_eq!(written, out);

    let redeemed = server.control.redeemed.lock().unwrap().clone();
    assert_eq!(redeemed.len(), 1);
    assert_eq!(redeemed[0].code, CODE);
    assert_eq!(redeemed[0].client_version, CLIENT_VERSION);

    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "version": 1,
            "client_id": "01J8XCLIENT",
            "client_name": "edge-01",
            "server_endpoint": "proxy.example.com:7443",
            "server_cert_sha256": server.pin.to_string(),
            "token": "bearer-TOKEN-xyz",
        })
    );
}

#[tokio::test]
async fn wrong_pin_aborts_before_the_code_is_sent() {
    let server = spawn_control_server(reply()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("client.bundle.json");
    let wrong = CertPin::of_der(b"not the server certificate");

    let err = run(&uri_for(&server, wrong), Some(out.clone()), no_env)
        .await
        .unwrap_err();
    assert!(matches!(err, EnrollError::PinMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("was not sent") && !msg.contains(CODE), "{msg}");
    assert!(server.control.redeemed.lock().unwrap().is_empty());
    assert!(!out.exists());
}

#[tokio::test]
async fn refused_code_writes_nothing_and_hides_the_code() {
    let server =
        spawn_control_server(Err(Status::not_found("unknown or expired enrollment code"))).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("client.bundle.json");

    let err = run(&uri_for(&server, server.pin), Some(out.clone()), no_env)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EnrollError::CodeRefused {
                code: Code::NotFound,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.to_string().contains(CODE));
    assert!(!out.exists());
}

#[tokio::test]
async fn default_output_is_under_xdg_config_home_and_empty_endpoint_falls_back() {
    let mut answer = reply().unwrap();
    answer.server_endpoint.clear();
    let server = spawn_control_server(Ok(answer)).await;
    let dir = tempfile::tempdir().unwrap();
    let env: HashMap<&str, OsString> =
        HashMap::from([("XDG_CONFIG_HOME", dir.path().as_os_str().to_owned())]);

    let written = run(&uri_for(&server, server.pin), None, |k| env.get(k).cloned())
        .await
        .unwrap();
    assert_eq!(written, dir.path().join("portunus/client.bundle.json"));
    let creds = crate::bundle::load(&written).unwrap();
    assert_eq!(creds.endpoint, server.endpoint);
}

#[tokio::test]
async fn unwritable_output_fails_before_redeeming() {
    let server = spawn_control_server(reply()).await;
    let dir = tempfile::tempdir().unwrap();
    let err = run(
        &uri_for(&server, server.pin),
        Some(dir.path().to_path_buf()),
        no_env,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, EnrollError::Bundle(_)), "{err}");
    assert!(server.control.redeemed.lock().unwrap().is_empty());
}
