//! The console's traffic history and quotas in a real headless Chromium,
//! against the real server and a real connected edge: bytes moved through
//! a rule appear in the history bars of the dashboard, the rule's page and
//! its client's page; a spent quota marks the rule in the lists, and
//! clearing its usage from the client's page lifts the mark.

use portunus_e2e::browser::Browser;
use portunus_e2e::net::{echo_roundtrip, echo_server, loopback, payload, sha256};
use portunus_e2e::{fleet, poll_until, wait_for, Server, DEADLINE};
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "correct horse battery staple";

fn admin_password(server: &Server) {
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/v1/users/_superadmin/password", server.url()))
        .bearer_auth(server.token.as_deref().unwrap())
        .json(&json!({"password": ADMIN_PASSWORD, "temporary": false}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{r:?}");
}

/// How many bars of `panel` have a visible height.
fn drawn_bars(b: &Browser, panel: &str) -> u64 {
    b.js(&format!(
        "return [...document.querySelectorAll('{panel} rect.b0')]\
         .filter((r) => parseFloat(r.getAttribute('height')) > 0).length"
    ))
    .as_u64()
    .unwrap_or(0)
}

/// Waits for a bar in `panel`, then scrolls it into view for the
/// screenshot that follows.
fn wait_bars(b: &Browser, panel: &str) {
    let drawn = poll_until(DEADLINE, || (drawn_bars(b, panel) >= 1).then_some(()));
    assert!(drawn.is_some(), "{panel} drew no bar");
    b.js(&format!(
        "document.querySelector('{panel}').scrollIntoView(); return null"
    ));
}

#[test]
fn history_charts_and_the_quota_mark_follow_real_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    admin_password(&server);
    let (rule, port) = server.push_on_free_port("edge-01", &[&echo_server().to_string()]);
    let data = payload(300 * 1024, 9);
    assert_eq!(
        echo_roundtrip(loopback(port), &data).unwrap(),
        sha256(&data)
    );
    wait_for("the history to hold the bytes", DEADLINE, || {
        let h = server.api_get(&format!("/v1/traffic?rule={rule}"));
        (h["bytes_in"] == 300 * 1024).then_some(())
    });

    let b = Browser::start(&server.url());
    b.goto("/");
    b.fill("#f-user_id", "_superadmin");
    b.fill("#f-password", ADMIN_PASSWORD);
    b.click_button("Sign in");
    b.wait_text("h1", "Dashboard");
    b.wait_text("#history-fleet [data-total=in]", "300 KB");
    wait_bars(&b, "#history-fleet");
    b.screenshot("dashboard-history");

    b.goto(&format!("/#/rules/{rule}"));
    b.wait_text("#history-rule [data-total=in]", "300 KB");
    b.wait_text("#history-rule [data-total=out]", "300 KB");
    wait_bars(&b, "#history-rule");
    b.click_button("7 days");
    b.wait_text("#history-rule svg", "per 6h");
    wait_bars(&b, "#history-rule");
    b.screenshot("rule-history");

    // A quota of one byte is spent already: the lists mark the rule.
    server.cli_ok(&[
        "quota",
        "set",
        "edge-01",
        "_superadmin",
        "--monthly-bytes",
        "1",
    ]);
    b.goto("/#/rules");
    b.wait_text("main", "quota exhausted");
    let client_id = server.api_get("/v1/clients")[0]["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    b.goto(&format!("/#/clients/{client_id}"));
    b.wait_text("#history-client [data-total=in]", "300 KB");
    wait_bars(&b, "#history-client");
    b.wait_text("#quotas tr[data-owner=_superadmin]", "exhausted");
    b.wait_text("main", "quota exhausted");
    b.js("document.querySelector('#quotas').scrollIntoView(); return null");
    b.screenshot("client-quotas");

    // Clearing the usage from the page lifts the mark.
    b.click_button("Clear usage");
    b.click("dialog[open] button.confirm");
    b.wait_text("#quotas tr[data-owner=_superadmin]", "ok");
    wait_for("the mark gone", DEADLINE, || {
        let rules: Value = server.api_get("/v1/rules");
        (rules[0]["quota_exhausted"] == false).then_some(())
    });
    b.assert_clean();
}
