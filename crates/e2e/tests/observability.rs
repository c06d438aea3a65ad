//! The Prometheus side of a running fleet: the series an operator's
//! dashboards and alerts read, scraped from a real server.

use portunus_e2e::net::{echo_server, free_port};
use portunus_e2e::*;

/// The value of the first sample line that starts with `series` (the name
/// with its labels, as exposed).
fn sample(text: &str, series: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')
            .map(str::to_string)
    })
}

#[test]
fn fleet_series_show_a_client_offline_with_its_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, mut client) = fleet(tmp.path());
    let port = free_port().to_string();
    let target = echo_server().to_string();
    server.cli_ok(&["push-rule", "edge-01", &port, &target]);

    let up = r#"portunus_client_up{client="edge-01"}"#;
    let active = r#"portunus_client_rules{client="edge-01",state="active"}"#;
    let text = server.metrics_text();
    assert_eq!(sample(&text, up).as_deref(), Some("1"), "{text}");
    assert_eq!(sample(&text, active).as_deref(), Some("1"), "{text}");

    client.kill9();
    wait_connected(&server, "edge-01", false);
    let text = server.metrics_text();
    assert_eq!(sample(&text, up).as_deref(), Some("0"), "{text}");
    assert_eq!(sample(&text, active).as_deref(), Some("1"), "{text}");

    server.cli_ok(&["revoke", "edge-01"]);
    let text = server.metrics_text();
    assert_eq!(sample(&text, up), None, "a revoked client has no series");
}
