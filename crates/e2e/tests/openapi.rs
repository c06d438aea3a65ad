//! The published contract, end to end: the served OpenAPI document is the
//! one `portunus-server openapi` prints offline, it needs no credentials,
//! and it documents every route of the table with the status a real call
//! answers.

use portunus_domain::routes::{Access, ROUTES};
use portunus_e2e::{exit_code, run_server_cli, stderr_text, Server};
use serde_json::Value;

#[test]
fn the_served_document_is_the_printed_one_and_covers_the_route_table() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bootstrapped(&dir.path().join("srv"));
    let http = reqwest::blocking::Client::new();
    let resp = http
        .get(format!("{}/v1/openapi.json", server.url()))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let served = resp.text().unwrap();

    // Offline: no server, and a data dir that does not exist stays so.
    let nowhere = dir.path().join("no-such-dir");
    let out = run_server_cli(&nowhere, None, None, &["openapi"]);
    assert_eq!(exit_code(&out), 0, "{}", stderr_text(&out));
    assert!(!nowhere.exists());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let doc: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(printed, doc);

    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for (method, path, access) in ROUTES {
        let op = &doc["paths"][path][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {path} is not documented");
        assert_eq!(
            op["security"].as_array().unwrap().is_empty(),
            *access == Access::Public,
            "{method} {path}"
        );
    }

    // A documented answer, for real: a protected route without credentials.
    let r = http
        .get(format!("{}/v1/rules", server.url()))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let documented = &doc["paths"]["/v1/rules"]["get"]["responses"]["401"];
    let codes = documented["content"]["application/json"]["schema"]["allOf"][1]["properties"]
        ["error"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap();
    let body: Value = r.json().unwrap();
    assert!(codes.contains(&body["error"]["code"]), "{body}");
}
