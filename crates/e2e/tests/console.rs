//! The operator console in a real headless Chromium, against the real
//! server and a real enrolled `portunus-client`: first run with the printed
//! setup token, enrollment from the console, live client state, revocation,
//! the connect-address settings, roles, the forced password change, API
//! tokens, the API reference and an ended session. Pages must load without console errors and
//! without a request leaving the server's origin.

use portunus_e2e::browser::Browser;
use portunus_e2e::{client_cmd, Client, Server};
use serde_json::{json, Value};

const ADMIN: &str = "root";
const ADMIN_PASSWORD: &str = "correct horse battery staple";

fn onboard(b: &Browser, token: &str, password: &str) {
    b.fill("#f-setup_token", token);
    b.fill("#f-user_id", ADMIN);
    b.fill("#f-display_name", "Root Admin");
    b.fill("#f-password", password);
    b.fill("#f-confirm", password);
    b.click_button("Create superadmin");
}

#[test]
fn first_run_enroll_watch_revoke_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("srv"));
    let token = server.setup_token();
    let url = format!("{}/", server.url());
    assert!(
        server
            .log
            .lines()
            .iter()
            .any(|l| l.contains("Open the console at") && l.contains(&url)),
        "the banner names the console URL {url}:\n{}",
        server.log.text()
    );

    let b = Browser::start(&server.url());
    b.goto("/");
    b.wait_text("h1", "Set up Portunus");
    b.screenshot("onboarding");
    // The server's codes appear next to the field they concern.
    onboard(&b, "not-the-token", ADMIN_PASSWORD);
    b.wait_text("#f-setup_token-err", "setup_token_invalid");
    onboard(&b, &token, "short");
    b.wait_text("#f-password-err", "password_too_weak");
    onboard(&b, &token, ADMIN_PASSWORD);
    b.wait_text("h1", "Dashboard");
    b.wait_text("nav.main", "Settings");
    b.wait_text("#build", "commit");
    b.click("nav.main a[href='#/clients']");
    b.wait_text("h1", "Clients");

    // Enroll from the console and run the command it shows.
    b.click_button("Enroll client");
    b.fill("#enroll-name", "edge-01");
    b.click_button("Create enrollment");
    let command = b.wait_text("#enroll-command", "portunus-client enroll '");
    b.wait_text(".countdown", ":");
    b.screenshot("enroll");
    let uri = command.split('\'').nth(1).unwrap();
    let bundle = dir.path().join("edge").join("client.bundle.json");
    std::fs::create_dir_all(bundle.parent().unwrap()).unwrap();
    let out = client_cmd(bundle.parent().unwrap())
        .args(["enroll", uri, "--out"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let _client = Client::start(&bundle);
    // The list turns "connected" by itself, without a reload.
    let row = "tr[data-client='edge-01']";
    b.wait_text(&format!("{row} .badge"), "connected");
    b.wait_text(row, "127.0.0.1:");
    b.click_button("Done");
    b.screenshot("clients");

    // A 360 px wide screen: nothing wider than the viewport.
    b.set_window(360, 740);
    let overflow = b.js("return document.documentElement.scrollWidth");
    assert!(
        overflow.as_u64().unwrap() <= 360,
        "page is {overflow} px wide"
    );
    b.screenshot("clients-360px");
    b.set_window(1280, 900);

    // Revoke from the client page: the stream drops at once.
    b.click(&format!("{row} a"));
    b.wait_text("h1", "Client edge-01");
    b.screenshot("client");
    b.click_button("Revoke");
    b.wait_text("dialog[open]", "drops at once");
    b.click("dialog[open] button.confirm");
    b.wait_text(".facts .badge", "revoked");
    b.wait_text("#client-remote", "—");

    // Settings → Client connect address, with the 422s inline.
    b.goto("/#/settings");
    b.wait_text("#connect-h", "Client connect address");
    b.wait_text("#endpoint-source", "loopback");
    b.wait_text("#endpoint-derive", "127.0.0.1");
    let field = "#f-advertised_endpoint";
    b.fill(field, "https://edge.example.com/x");
    b.click_button("Save");
    b.wait_text(&format!("{field}-err"), "endpoint_invalid");
    b.fill(field, "not-covered.example.com:7443");
    b.click_button("Save");
    b.wait_text(&format!("{field}-err"), "endpoint_not_in_cert_san");
    b.fill(field, "localhost:7443");
    b.click_button("Save");
    b.wait_text("#endpoint-effective", "localhost:7443");
    b.wait_text("#endpoint-source", "override");
    b.screenshot("settings");
    // A fresh load reads the saved override back from the server.
    b.goto("/#/settings");
    b.wait_text("#endpoint-effective", "localhost:7443");
    b.click_button("Clear override");
    b.wait_text("#endpoint-source", "loopback");
    b.assert_clean();
}

#[test]
fn roles_forced_password_change_tokens_and_ended_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bootstrapped(dir.path());
    let http = reqwest::blocking::Client::new();
    let admin = server.token.clone().unwrap();
    let created: Value = http
        .post(format!("{}/v1/users", server.url()))
        .bearer_auth(&admin)
        .json(&json!({"user_id": "alice", "display_name": "Alice"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let temporary = created["temporary_password"].as_str().unwrap().to_string();

    let b = Browser::start(&server.url());
    b.goto("/");
    b.wait_text("h1", "Sign in");
    b.screenshot("sign-in");
    // By keyboard alone: type, Tab to the password, Enter submits.
    b.click("#f-user_id");
    b.keys(&format!("alice\u{E004}{temporary}\u{E007}"));
    b.wait_text("h1", "Choose a new password");
    let mine = "a passphrase of alice's own";
    b.fill("#pw-current", &temporary);
    b.fill("#pw-new", mine);
    b.fill("#pw-confirm", mine);
    b.click_button("Save and continue");
    b.wait_text("h1", "My rules at a glance");

    // A plain user is offered no superadmin screen, and reaching one says so.
    let nav = b.wait_text("nav.main", "My account");
    for admin_only in ["Clients", "Users", "Audit", "Settings"] {
        assert!(!nav.contains(admin_only), "{admin_only} in {nav}");
    }
    for page in ["clients", "users", "audit", "settings"] {
        b.js(&format!("location.hash = '#/{page}'; return null"));
        b.wait_text(".notice.error", "Not allowed");
        b.wait_text(".notice.error", "(forbidden)");
    }

    // The API reference is for everyone: the published document, rendered,
    // with each operation's auth and error codes.
    assert!(nav.contains("API"), "{nav}");
    b.js("location.hash = '#/api'; return null");
    b.wait_text("section[data-tag='rules']", "/v1/rules/{id}/stats");
    b.click("details[data-op='pushRule'] > summary");
    let push = b.wait_text("details[data-op='pushRule']", "client_not_connected");
    for text in ["X-Portunus-CSRF: 1", "listen_port", "201", "port_in_use"] {
        assert!(push.contains(text), "{text} in {push}");
    }
    b.js("document.querySelector(\"details[data-op='pushRule']\").scrollIntoView(); return null");
    b.screenshot("api");
    b.fill("#f-api-filter", "owners");
    // The owner caps' four and the quotas' four.
    b.wait_text("main", "8 operations");

    // An API token, shown once, works as a bearer until revoked.
    b.js("location.hash = '#/account'; return null");
    b.fill("#token-label", "laptop");
    b.click_button("Issue token");
    let token = b.wait_text(".once pre", "");
    let token = token.trim().to_string();
    assert_eq!(token.len(), 43, "{token:?}");
    let me = |t: &str| {
        http.get(format!("{}/v1/users/me", server.url()))
            .bearer_auth(t)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(me(&token), 200);
    b.wait_text("tbody", "laptop");
    b.screenshot("account");
    b.click_button("Revoke");
    b.click("dialog[open] button.confirm");
    b.wait_text("tbody", "revoked");
    assert_eq!(me(&token), 401);

    // Sign out, then back in with the new password.
    b.click_button("Sign out");
    b.wait_text(".notice", "signed out");
    b.fill("#f-user_id", "alice");
    b.fill("#f-password", mine);
    b.click_button("Sign in");
    // Signed in again where the session left off.
    b.wait_text("h1", "My account");

    // A superadmin resets alice's password: her session ends, and the next
    // request says so instead of failing silently.
    let reset = http
        .post(format!("{}/v1/users/alice/password", server.url()))
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .unwrap();
    assert!(reset.status().is_success(), "{reset:?}");
    b.js("location.hash = '#/clients'; return null");
    b.wait_text(".notice", "session expired");
    b.wait_text("h1", "Sign in");
    b.assert_clean();
}

#[test]
fn console_answers_carry_security_headers_and_the_api_stays_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bootstrapped(dir.path());
    let http = reqwest::blocking::Client::new();
    let shell = http.get(format!("{}/", server.url())).send().unwrap();
    let h = shell.headers().clone();
    let html = shell.text().unwrap();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["cache-control"], "no-cache");
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    assert!(script.starts_with("/assets/") && script.ends_with("/js/main.js"));
    let js = http
        .get(format!("{}{script}", server.url()))
        .send()
        .unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(
        js.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    // Unknown /v1 paths still answer the API's JSON envelope.
    let r = http
        .get(format!("{}/v1/nope", server.url()))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().unwrap();
    assert_eq!(v["error"]["code"], "not_found");
}
