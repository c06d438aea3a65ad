//! The console's rules, users, audit and dashboard screens in a real
//! headless Chromium, against the real server and a real connected edge:
//! rules pushed from the form carry real traffic that the live chart and
//! counters show without a reload; caps are edited in place; removal closes
//! the listener; a tenant stays inside their grant and sees only their own
//! rules; the audit trail shows the denial and downloads as NDJSON.

use portunus_e2e::browser::Browser;
use portunus_e2e::net::{consecutive, echo_roundtrip, echo_server, free_port, loopback, payload};
use portunus_e2e::{fleet, poll_until, wait_for, Server, DEADLINE};
use serde_json::{json, Value};
use std::net::TcpStream;
use std::time::Duration;

const ADMIN_PASSWORD: &str = "correct horse battery staple";

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

/// Gives the bootstrapped `_superadmin` a password for the browser.
fn admin_password(server: &Server) {
    let r = http()
        .post(format!("{}/v1/users/_superadmin/password", server.url()))
        .bearer_auth(server.token.as_deref().unwrap())
        .json(&json!({"password": ADMIN_PASSWORD, "temporary": false}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{r:?}");
}

fn sign_in(b: &Browser, user: &str, password: &str) {
    b.goto("/");
    b.fill("#f-user_id", user);
    b.fill("#f-password", password);
    b.click_button("Sign in");
    b.wait_for("nav.main");
}

fn api(server: &Server, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = http()
        .request(method.parse().unwrap(), format!("{}{path}", server.url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

/// Fills the push form (already open) and submits it.
fn push(b: &Browser, listen: &str, host: &str, port: u16) {
    b.fill("#rule-client", "edge-01");
    b.fill("#rule-listen", listen);
    b.fill("#t0-host", host);
    b.fill("#t0-port", &port.to_string());
    b.click_button("Push rule");
}

fn refused(port: u16) -> bool {
    TcpStream::connect_timeout(&loopback(port), Duration::from_secs(1)).is_err()
}

#[test]
fn push_watch_traffic_edit_caps_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    admin_password(&server);
    let backend = echo_server();
    let b = Browser::start(&server.url());
    sign_in(&b, "_superadmin", ADMIN_PASSWORD);
    b.wait_text("h1", "Dashboard");
    b.wait_text("#ov-connected", "1");

    // A TCP rule from the form, to a loopback echo backend.
    b.click("nav.main a[href='#/rules']");
    b.wait_text("h1", "Rules");
    b.click_button("Push rule");
    b.screenshot("push-rule");
    let listen = free_port();
    push(&b, &listen.to_string(), "127.0.0.1", backend.port());
    b.wait_text("h1", &format!("Rule TCP {listen} on edge-01"));
    b.wait_text("#rule-state", "active");
    b.wait_text("#stats-mode", "live");

    // Real traffic through the edge; the counters and the chart move
    // without a reload.
    let data = payload(256 * 1024, 7);
    let want = portunus_e2e::net::sha256(&data);
    for _ in 0..3 {
        assert_eq!(echo_roundtrip(loopback(listen), &data).unwrap(), want);
    }
    b.wait_text("#stat-bytes-in", "KB");
    b.wait_text("#stat-connections", "3");
    let drawn = poll_until(DEADLINE, || {
        let n = b.js(
            "const p = document.querySelector('#chart-throughput polyline.s0');\
             return p ? p.getAttribute('points').trim().split(' ').filter(Boolean).length : 0",
        );
        (n.as_u64().unwrap_or(0) >= 1).then_some(())
    });
    assert!(drawn.is_some(), "the throughput chart drew no line");
    b.wait_text("#chart-throughput figcaption", "/s");
    b.wait_text("#per-target", "healthy");
    b.screenshot("rule");

    // Caps: a bad burst is refused next to its field; a good cap applies.
    b.fill("#cap-bandwidth_in_bps", "1000000");
    b.fill("#cap-bandwidth_in_burst", "1");
    b.click_button("Save caps");
    b.wait_text(
        "#cap-bandwidth_in_burst-err",
        "validation.rate_limit_burst_out_of_range",
    );
    b.fill("#cap-bandwidth_in_burst", "");
    b.click_button("Save caps");
    b.wait_text("#rule-caps", "bandwidth_in_bps=1000000");
    let token = server.token.clone().unwrap();
    let rules = api(&server, "GET", "/v1/rules", &token, Value::Null).1;
    let rule = &rules[0];
    assert_eq!(rule["rate_limit"]["bandwidth_in_bps"], 1_000_000);
    assert_eq!(
        echo_roundtrip(loopback(listen), b"still forwarding").unwrap(),
        portunus_e2e::net::sha256(b"still forwarding")
    );

    // A range rule: per-port table, and the target window in the form.
    b.js("location.hash = '#/rules'; return null");
    b.click_button("Push rule");
    let probe = consecutive("0.0.0.0", 3);
    let first = probe[0].local_addr().unwrap().port();
    drop(probe);
    b.fill("#t0-port", "40000");
    b.fill("#rule-listen", &format!("{first}-{}", first + 2));
    b.fill("#t0-host", "127.0.0.1");
    b.wait_text("#target-window", "127.0.0.1:40000-40002");
    // SNI is offered for a single TCP port only; a filled one stays
    // visible, and the server's refusal lands next to it.
    b.fill("#rule-listen", &first.to_string());
    b.fill("#rule-sni", "app.example.com");
    b.fill("#rule-listen", &format!("{first}-{}", first + 2));
    b.fill("#rule-client", "edge-01");
    b.click_button("Push rule");
    b.wait_text("#rule-sni-err", "validation.sni_on_unsupported_rule");
    b.fill("#rule-sni", "");
    b.click_button("Push rule");
    b.wait_text("h1", &format!("Rule TCP {first}-{} on edge-01", first + 2));
    b.wait_text("#rule-state", "active");
    for port in first..=first + 2 {
        b.wait_for(&format!("#per-port tr[data-port='{port}']"));
    }
    b.screenshot("rule-range");

    // The rules list, filtered.
    b.js("location.hash = '#/rules'; return null");
    b.wait_for(&format!(
        "tr[data-rule='{}']",
        rule["rule_id"].as_str().unwrap()
    ));
    b.fill("#flt-q", &format!("{first}-"));
    wait_for("the filter to leave one row", DEADLINE, || {
        let n = b.js("return document.querySelectorAll('table.rules tbody tr').length");
        (n == 1).then_some(())
    });
    b.screenshot("rules");

    // Remove with confirmation: the dialog says connections drain, and the
    // edge closes the listener.
    b.goto(&format!("/#/rules/{}", rule["rule_id"].as_str().unwrap()));
    b.wait_text("#rule-state", "active");
    b.click_button("Remove rule");
    b.wait_text("dialog[open]", "drain");
    b.click("dialog[open] button.confirm");
    b.wait_text("h1", "Rules");
    wait_for("the listener to close", DEADLINE, || {
        refused(listen).then_some(())
    });
    b.assert_clean();
}

#[test]
fn tenant_inside_their_grant_audit_users_and_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    admin_password(&server);
    let token = server.token.clone().unwrap();
    let backend = echo_server();
    let (status, _) = api(
        &server,
        "POST",
        "/v1/users",
        &token,
        json!({"user_id": "alice", "display_name": "Alice", "password": "alice's passphrase", "temporary": false}),
    );
    assert_eq!(status, 201);
    let granted = consecutive("0.0.0.0", 2);
    let (inside, other) = (
        granted[0].local_addr().unwrap().port(),
        granted[1].local_addr().unwrap().port(),
    );
    drop(granted);
    let (status, _) = api(
        &server,
        "POST",
        "/v1/grants",
        &token,
        json!({"user_id": "alice", "client": "edge-01", "listen_port_start": inside,
               "listen_port_end": inside, "protocols": ["tcp"]}),
    );
    assert_eq!(status, 201);
    // The superadmin's own rule, which alice must never see.
    let (status, admins) = api(
        &server,
        "POST",
        "/v1/rules",
        &token,
        json!({"client": "edge-01", "listen_port": other, "protocol": "tcp",
               "targets": [{"host": "127.0.0.1", "port": backend.port()}]}),
    );
    assert_eq!(status, 201, "{admins}");

    let b = Browser::start(&server.url());
    sign_in(&b, "alice", "alice's passphrase");
    b.wait_text("h1", "My rules at a glance");
    b.screenshot("dashboard-tenant");
    b.click("nav.main a[href='#/rules']");
    b.wait_text("table.rules tbody", "No rules yet");
    b.click_button("Push rule");
    // Outside the grant: refused, the message next to the listen field.
    push(
        &b,
        &inside.saturating_sub(1).max(1).to_string(),
        "127.0.0.1",
        backend.port(),
    );
    b.wait_text("#rule-listen-err", "port_outside_grant");
    b.fill("#rule-listen", &inside.to_string());
    b.click_button("Push rule");
    b.wait_text("#rule-state", "active");
    assert!(portunus_e2e::net::echo_ok(loopback(inside)));
    b.js("location.hash = '#/rules'; return null");
    b.wait_text("table.rules tbody", &inside.to_string());
    let rows = b.js("return document.querySelectorAll('table.rules tbody tr').length");
    assert_eq!(rows, 1, "alice sees only her own rule");
    assert!(!b
        .text_of("table.rules")
        .unwrap()
        .contains(&other.to_string()));
    b.click_button("Sign out");

    // The superadmin: the denial is in the audit trail, and downloads.
    sign_in(&b, "_superadmin", ADMIN_PASSWORD);
    b.wait_text("h1", "Dashboard");
    b.wait_text("#ov-active", "2");
    b.screenshot("dashboard");
    b.click("nav.main a[href='#/audit']");
    b.wait_text("h1", "Audit");
    b.fill("#audit-actor", "alice");
    b.select("#audit-outcome", "deny");
    b.click_button("Apply filters");
    b.wait_text("table.audit tbody", "port_outside_grant");
    b.wait_text("table.audit tbody", "POST /v1/rules");
    b.screenshot("audit");
    b.click_button("Download NDJSON");
    b.wait_text("#audit-note", "Downloaded");
    let file = wait_for("the NDJSON download", DEADLINE, || {
        std::fs::read_dir(b.downloads())
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "ndjson"))
    });
    let text = std::fs::read_to_string(file).unwrap();
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(!rows.is_empty());
    assert!(rows
        .iter()
        .all(|r| r["actor"] == "alice" && r["outcome"] == "deny"));
    assert!(rows.iter().any(|r| r["reason"] == "port_outside_grant"));

    // Users: alice's page previews what removing her takes along.
    b.click("nav.main a[href='#/users']");
    b.wait_for("tr[data-user='alice']");
    b.click("tr[data-user='alice'] a");
    b.wait_text("h1", "User alice");
    b.wait_text("table.grants", &inside.to_string());
    b.select("#cap-client", "edge-01");
    b.fill("#env-bandwidth_out_bps", "5000000");
    b.click_button("Set envelope");
    b.wait_text("table.envelopes", "bandwidth_out_bps=5000000");
    b.screenshot("user");
    b.click_button("Remove user");
    b.wait_text("#remove-preview", "1 rule");
    b.wait_text("#remove-preview", "1 grant");
    b.click("dialog[open] button.confirm");
    b.wait_text("h1", "Users");
    wait_for("alice's listener to close", DEADLINE, || {
        refused(inside).then_some(())
    });
    b.assert_clean();
}
