//! Fleet files against the real binaries: `export` from one server and
//! `apply` on another gives the same rules; `diff` is empty afterwards and
//! `apply` twice is a no-op; a changed cap is updated in place, a changed
//! target replaces the rule; `--prune` removes what the file dropped; an
//! invalid entry changes nothing; a tenant is refused outside their grant.

use portunus_e2e::net::{echo_ok, echo_server, free_port, loopback};
use portunus_e2e::{exit_code, fleet, stderr_text, wait_for, Server, DEADLINE};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `list-rules --format json` without what differs between servers.
fn rules(server: &Server) -> Vec<Value> {
    let text = server.cli_ok(&["list-rules", "--format", "json"]);
    let mut rows: Vec<Value> = serde_json::from_str(&text).unwrap();
    for r in &mut rows {
        let o = r.as_object_mut().unwrap();
        for k in ["rule_id", "client_id", "created_at", "updated_at"] {
            o.remove(k);
        }
    }
    rows.sort_by_key(|r| r.to_string());
    rows
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn rule_id(server: &Server, port: u16) -> String {
    let all: Vec<Value> =
        serde_json::from_str(&server.cli_ok(&["list-rules", "--format", "json"])).unwrap();
    all.iter()
        .find(|r| r["listen_port"] == port)
        .map(|r| r["rule_id"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no rule on {port}"))
}

/// An open echo connection through a rule, to see it survive an apply.
fn open(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn still_echoes(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4];
    s.write_all(b"ping").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"ping"
}

#[test]
fn export_apply_diff_update_replace_prune() {
    let dir = tempfile::tempdir().unwrap();
    let (a, mut a_client) = fleet(&dir.path().join("a"));
    let backend = echo_server();
    let (web, dns, range) = (free_port(), free_port(), free_port());
    let target = format!("127.0.0.1:{}", backend.port());
    a.cli_ok(&["push-rule", "edge-01", &web.to_string(), &target]);
    a.cli_ok(&[
        "push-rule",
        "edge-01",
        &dns.to_string(),
        "127.0.0.1:53",
        "--protocol",
        "udp",
        "--bandwidth-in-bps",
        "100000",
    ]);
    let targets = format!(
        r#"[{{"host":"127.0.0.1","port":{},"priority":1,"proxy_protocol":"v2"}},{{"host":"localhost","port":81,"priority":2}}]"#,
        backend.port()
    );
    a.cli_ok(&[
        "push-rule",
        "edge-01",
        &range.to_string(),
        "--targets-json",
        &targets,
        "--health-check-interval-secs",
        "30",
    ]);
    let exported = a.cli_ok(&["export"]);
    assert!(exported.contains("[[rule]]"), "{exported}");
    let file = write(dir.path(), "fleet.toml", &exported);
    // Same state: diff says so with exit 0.
    let d = a.cli(&["diff", "-f", &file]);
    assert_eq!(exit_code(&d), 0, "{}{}", out(&d), stderr_text(&d));
    assert!(out(&d).contains("no changes"));
    let json = a.cli_ok(&["export", "--format", "json"]);
    let json_file = write(dir.path(), "fleet.json", &json);
    assert_eq!(exit_code(&a.cli(&["diff", "-f", &json_file])), 0);

    // A second server with its own edge-01 gets the same rules. The first
    // edge goes away so the second can bind the same ports.
    let want = rules(&a);
    a_client.kill9();
    let (b, _b_client) = fleet(&dir.path().join("b"));
    let d = b.cli(&["diff", "-f", &file]);
    assert_eq!(exit_code(&d), 1, "changes pending: {}", out(&d));
    assert_eq!(out(&d).matches("+ create").count(), 3, "{}", out(&d));
    let applied = b.cli_ok(&["apply", "-f", &file]);
    assert!(applied.contains("applied 3 change(s)"), "{applied}");
    let mut got = rules(&b);
    for r in &mut got {
        assert_eq!(r["state"], "active", "{r}");
    }
    assert_eq!(got, want);
    assert_eq!(exit_code(&b.cli(&["diff", "-f", &file])), 0);
    assert!(b.cli_ok(&["apply", "-f", &file]).contains("no changes"));

    // Edits go through the JSON form of the same file.
    let mut doc: Value = serde_json::from_str(&json).unwrap();
    let at = |doc: &mut Value, port: u16| -> usize {
        doc["rule"]
            .as_array()
            .unwrap()
            .iter()
            .position(|r| r["listen_port"] == port)
            .unwrap()
    };
    let save = |name: &str, doc: &Value| write(dir.path(), name, &doc.to_string());
    let expect = |args: &[&str], code: i32| -> String {
        let o = b.cli(args);
        assert_eq!(
            exit_code(&o),
            code,
            "{args:?}: {}{}",
            out(&o),
            stderr_text(&o)
        );
        out(&o)
    };

    // A changed cap is an update in place: same id, the open connection
    // keeps flowing.
    let web_id = rule_id(&b, web);
    let mut conn = open(loopback(web));
    assert!(still_echoes(&mut conn));
    let i = at(&mut doc, web);
    doc["rule"][i]["rate_limit"] = json!({"concurrent_connections": 50});
    let capped = save("capped.json", &doc);
    assert!(expect(&["diff", "-f", &capped], 1).contains("in place"));
    let applied = expect(&["apply", "-f", &capped], 0);
    assert!(applied.contains("ok     ~ update"), "{applied}");
    assert_eq!(rule_id(&b, web), web_id, "updated in place");
    assert!(still_echoes(&mut conn), "the live connection survived");
    let now: Vec<Value> =
        serde_json::from_str(&b.cli_ok(&["list-rules", "--format", "json"])).unwrap();
    let rule = now.iter().find(|r| r["listen_port"] == web).unwrap();
    assert_eq!(rule["rate_limit"]["concurrent_connections"], 50);

    // A changed target replaces the rule (new id).
    let other = echo_server();
    doc["rule"][i]["targets"][0]["port"] = json!(other.port());
    let moved = save("moved.json", &doc);
    assert!(expect(&["diff", "-f", &moved], 1).contains("± replace"));
    expect(&["apply", "-f", &moved], 0);
    assert_ne!(rule_id(&b, web), web_id, "replaced");
    wait_for("the replaced rule to forward", DEADLINE, || {
        echo_ok(loopback(web)).then_some(())
    });

    // --prune removes a rule the file no longer lists; without it, kept.
    let j = at(&mut doc, dns);
    doc["rule"].as_array_mut().unwrap().remove(j);
    let pruned = save("pruned.json", &doc);
    let kept = expect(&["apply", "-f", &pruned], 0);
    assert!(kept.contains("--prune deletes them"), "{kept}");
    assert_eq!(rules(&b).len(), 3);
    assert!(expect(&["diff", "-f", &pruned, "--prune"], 1).contains("- delete"));
    let applied = expect(&["apply", "-f", &pruned, "--prune"], 0);
    assert!(applied.contains("ok     - delete"), "{applied}");
    assert_eq!(rules(&b).len(), 2);
    assert!(expect(&["apply", "-f", &pruned, "--prune"], 0).contains("no changes"));
}

#[test]
fn an_invalid_entry_changes_nothing_and_tenants_stay_in_their_grant() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _client) = fleet(dir.path());
    let backend = echo_server();
    let (good, bad) = (free_port(), free_port());
    let invalid = format!(
        "[[rule]]\nclient = \"edge-01\"\nlisten_port = {good}\ntargets = [{{ host = \"127.0.0.1\", port = {} }}]\n\n\
         [[rule]]\nclient = \"edge-01\"\nlisten_port = {bad}\ntargets = [{{ host = \"127.0.0.1\", port = 0 }}]\n",
        backend.port()
    );
    let file = write(dir.path(), "invalid.toml", &invalid);
    for cmd in ["apply", "diff"] {
        let o = server.cli(&[cmd, "-f", &file]);
        assert_eq!(exit_code(&o), 2, "{cmd}: {}", stderr_text(&o));
        let err = stderr_text(&o);
        assert!(
            err.contains("invalid.toml:6: rule[1]: targets[0].port"),
            "{err}"
        );
    }
    assert!(rules(&server).is_empty(), "nothing was applied");

    // A tenant: inside the grant it converges, outside it is refused per
    // entry with its code, and the exit code says the apply is incomplete.
    let admin = server.token.clone().unwrap();
    let http = reqwest::blocking::Client::new();
    let post = |path: &str, body: Value| {
        let r = http
            .post(format!("{}{path}", server.url()))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.text().unwrap());
        r.json::<Value>().unwrap()
    };
    post(
        "/v1/users",
        json!({"user_id": "alice", "display_name": "Alice", "password": "alice's passphrase", "temporary": false}),
    );
    post(
        "/v1/grants",
        json!({"user_id": "alice", "client": "edge-01", "listen_port_start": good,
               "listen_port_end": good, "protocols": "tcp"}),
    );
    let token = post("/v1/users/alice/credentials", json!({"label": "fleet"}))["token"]
        .as_str()
        .unwrap()
        .to_string();
    let tenant_file = write(
        dir.path(),
        "tenant.toml",
        &format!(
            "[[rule]]\nclient = \"edge-01\"\nlisten_port = {good}\ntargets = [{{ host = \"127.0.0.1\", port = {p} }}]\n\n\
             [[rule]]\nclient = \"edge-01\"\nlisten_port = {bad}\ntargets = [{{ host = \"127.0.0.1\", port = {p} }}]\n",
            p = backend.port()
        ),
    );
    let o = portunus_e2e::run_server_cli(
        &server.dir,
        Some(&server.url()),
        Some(&token),
        &["apply", "-f", &tenant_file],
    );
    assert_eq!(exit_code(&o), 9, "{}{}", out(&o), stderr_text(&o));
    let text = out(&o);
    assert!(
        text.contains(&format!("ok     + create   rule edge-01 tcp {good}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("failed + create   rule edge-01 tcp {bad}"))
            && text.contains("(port_outside_grant)"),
        "{text}"
    );
    assert!(stderr_text(&o).contains("apply_incomplete"));
    assert!(echo_ok(loopback(good)));
    // The tenant's export holds only their rule, no owner caps, no grants
    // of others, and no secret.
    let o =
        portunus_e2e::run_server_cli(&server.dir, Some(&server.url()), Some(&token), &["export"]);
    let exported = out(&o);
    assert_eq!(exported.matches("[[rule]]").count(), 1, "{exported}");
    assert!(!exported.contains("owner_cap") && !exported.contains(&token));
}
