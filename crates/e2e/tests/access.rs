//! The identity and access contract of the operator HTTP API, against a
//! real server: onboarding, sessions, CSRF, throttling, users,
//! credentials, grants, ownership and the audit trail.

mod access_support;

use access_support::*;
use portunus_domain::routes::{Access, ROUTES};
use portunus_e2e::{wait_connected, wait_for, Client, Server, DEADLINE, SERVER_TOML};
use serde_json::{json, Value};

fn concrete(path: &str) -> String {
    path.replace("{id}", "x").replace("{cid}", "y")
}

#[test]
fn every_v1_route_without_credentials_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let api = Api::new(&server);
    for (method, path, access) in ROUTES {
        let r = api.call(method, &concrete(path), Auth::Anon, None);
        if *access == Access::Public {
            assert!(
                ![401, 404, 405, 503].contains(&r.status),
                "{method} {path}: {} {}",
                r.status,
                r.body
            );
        } else {
            assert_eq!(
                (r.status, r.code()),
                (503, "bootstrap_required"),
                "{method} {path}"
            );
        }
    }
    onboard(&server, &api);
    for (method, path, _) in ROUTES.iter().filter(|r| r.2 != Access::Public) {
        let r = api.call(method, &concrete(path), Auth::Anon, None);
        assert_eq!(
            (r.status, r.code()),
            (401, "unauthenticated"),
            "{method} {path}"
        );
        // A forged cookie is no better than none.
        let r = api.call(method, &concrete(path), Auth::Cookie("forged"), None);
        assert_eq!(r.status, 401, "{method} {path} with a forged cookie");
    }
}

/// A plain user gets the same 403 on every superadmin route whatever the
/// request carries: a malformed body or a parameter that is not UTF-8.
#[test]
fn superadmin_routes_refuse_a_plain_user_before_reading_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, api, admin) = onboarded(dir.path());
    let token = api.tenant(admin.bearer(), "alice", "alice-password-123");
    for (method, path, _) in ROUTES.iter().filter(|r| r.2 == Access::Superadmin) {
        let uri = concrete(path).replace("{owner}", "%FF");
        for body in ["{", "[]", "{\"user_id\": 7}"] {
            let rb = api
                .builder(method, &uri)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body.to_string());
            let r = api.send(rb);
            assert_eq!(
                (r.status, r.code()),
                (403, "forbidden"),
                "{method} {path} with {:?}",
                &body[..body.len().min(8)]
            );
        }
    }
}

#[test]
fn onboarding_opens_once_with_the_printed_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let api = Api::new(&server);
    let status = api.get("/v1/auth/status", Auth::Anon);
    assert_eq!(status.ok(200)["onboarding_required"], true);
    let token = setup_token(&server);
    assert_eq!(token.len(), 43);
    let body = |token: &str, user: &str, password: &str| json!({"setup_token": token, "user_id": user, "display_name": "Root", "password": password});
    api.post(
        "/v1/auth/onboarding",
        Auth::Anon,
        body("wrong", ADMIN, ADMIN_PASSWORD),
    )
    .expect(401, "setup_token_invalid");
    api.post(
        "/v1/auth/onboarding",
        Auth::Anon,
        body(&token, "_root", ADMIN_PASSWORD),
    )
    .expect(400, "invalid_user_id");
    api.post(
        "/v1/auth/onboarding",
        Auth::Anon,
        body(&token, ADMIN, "short"),
    )
    .expect(400, "password_too_weak");
    let r = api.post(
        "/v1/auth/onboarding",
        Auth::Anon,
        body(&token, ADMIN, ADMIN_PASSWORD),
    );
    assert_eq!(r.ok(201)["role"], "superadmin");
    assert!(r.set_cookie().is_none(), "onboarding sets no cookie");
    let status = api.get("/v1/auth/status", Auth::Anon);
    assert_eq!(status.ok(200)["onboarding_required"], false);
    // Closed from now on, with the same token or any other.
    api.post(
        "/v1/auth/onboarding",
        Auth::Anon,
        body(&token, "second", ADMIN_PASSWORD),
    )
    .expect(409, "superadmin_exists");
    let cookie = api.session(ADMIN, ADMIN_PASSWORD);
    let me = api.get("/v1/users/me", Auth::Cookie(&cookie));
    let me = me.ok(200);
    assert_eq!(
        (me["user_id"].as_str(), me["role"].as_str()),
        (Some(ADMIN), Some("superadmin"))
    );
    assert_eq!(me["authenticated_by"], "session");
    assert_eq!(me["password_change_required"], false);
}

#[test]
fn onboarding_is_throttled_per_source() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let api = Api::new(&server);
    let token = setup_token(&server);
    let attempt = |t: &str| {
        api.post(
            "/v1/auth/onboarding",
            Auth::Anon,
            json!({"setup_token": t, "user_id": ADMIN, "display_name": "R", "password": ADMIN_PASSWORD}),
        )
    };
    let mut refused_after = None;
    for i in 0..100 {
        let r = attempt("guess");
        if r.status == 429 {
            refused_after = Some(i);
            assert_eq!(r.code(), "rate_limited");
            assert!(r.headers.get("retry-after").is_some());
            break;
        }
        r.expect(401, "setup_token_invalid");
    }
    assert_eq!(refused_after, Some(30), "30 failures per source per window");
    // The right token is refused too while the source is throttled.
    attempt(&token).expect(429, "rate_limited");
}

#[test]
fn login_sets_a_session_cookie_and_logout_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, api, admin) = onboarded(dir.path());
    let r = api.login(ADMIN, ADMIN_PASSWORD);
    r.ok(200);
    let cookie = r.set_cookie().unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "no Secure flag without an https public origin: {cookie}"
    );
    let session = r.session().unwrap();
    api.login(ADMIN, "wrong password!!")
        .expect(401, "unauthenticated");
    api.login("nobody", ADMIN_PASSWORD)
        .expect(401, "unauthenticated");
    api.get("/v1/users/me", Auth::Cookie(&session)).ok(200);
    let out = api.call("POST", "/v1/auth/logout", Auth::Cookie(&session), None);
    assert_eq!(out.status, 204);
    assert!(out.set_cookie().unwrap().contains("Max-Age=0"));
    api.get("/v1/users/me", Auth::Cookie(&session))
        .expect(401, "unauthenticated");
    // Other sessions and bearer tokens are untouched.
    api.get("/v1/users/me", Auth::Cookie(&admin.cookie)).ok(200);
    let me = api.get("/v1/users/me", admin.bearer());
    assert_eq!(me.ok(200)["authenticated_by"], "bearer");
    // Logging out with a bearer token is harmless.
    assert_eq!(
        api.call("POST", "/v1/auth/logout", admin.bearer(), None)
            .status,
        204
    );
    api.get("/v1/users/me", admin.bearer()).ok(200);
}

#[test]
fn cookie_writes_need_same_origin_csrf_header_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, api, admin) = onboarded(dir.path());
    let cookie = format!("portunus_session={}", admin.cookie);
    let body = |id: &str| json!({"user_id": id, "display_name": id}).to_string();
    let base = || {
        api.builder("POST", "/v1/users")
            .header("cookie", cookie.clone())
    };
    api.send(
        base()
            .header("x-portunus-csrf", "1")
            .header("content-type", "application/json")
            .body(body("a1")),
    )
    .expect(403, "csrf_origin_mismatch");
    api.send(
        base()
            .header("origin", "http://evil.example")
            .header("x-portunus-csrf", "1")
            .header("content-type", "application/json")
            .body(body("a2")),
    )
    .expect(403, "csrf_origin_mismatch");
    api.send(
        base()
            .header("origin", api.base.clone())
            .header("content-type", "application/json")
            .body(body("a3")),
    )
    .expect(403, "csrf_header_missing");
    api.send(
        base()
            .header("origin", api.base.clone())
            .header("x-portunus-csrf", "1")
            .header("content-type", "text/plain")
            .body(body("a4")),
    )
    .expect(403, "csrf_content_type");
    api.send(
        base()
            .header("origin", api.base.clone())
            .header("x-portunus-csrf", "1")
            .header("content-type", "application/json")
            .body(body("a5")),
    )
    .ok(201);
    // Reads need none of it; bearer writes skip it.
    api.send(
        api.builder("GET", "/v1/users")
            .header("cookie", cookie.clone()),
    )
    .ok(200);
    api.send(
        api.builder("POST", "/v1/users")
            .bearer_auth(&admin.token)
            .header("content-type", "application/json")
            .body(body("a6")),
    )
    .ok(201);
    // A refused write changed nothing.
    let users = api.get("/v1/users", admin.bearer());
    let ids: Vec<&str> = users
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a5", "a6", ADMIN]);
}

#[test]
fn an_https_public_origin_sets_secure_and_is_the_csrf_origin() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("server.toml"),
        format!("{SERVER_TOML}operator_http_public_origin = \"https://ops.example.com\"\n"),
    )
    .unwrap();
    let server = Server::start(dir.path());
    let api = Api::new(&server);
    let token = setup_token(&server);
    api.post(
        "/v1/auth/onboarding",
        Auth::Anon,
        json!({"setup_token": token, "user_id": ADMIN, "display_name": "R", "password": ADMIN_PASSWORD}),
    )
    .ok(201);
    let r = api.login(ADMIN, ADMIN_PASSWORD);
    assert!(r.set_cookie().unwrap().contains("; Secure"));
    let session = r.session().unwrap();
    let post = |origin: &str| {
        api.send(
            api.builder("POST", "/v1/users")
                .header("cookie", format!("portunus_session={session}"))
                .header("origin", origin)
                .header("x-portunus-csrf", "1")
                .json(&json!({"user_id": "bob", "display_name": "Bob"})),
        )
    };
    // The Host the request was sent to no longer counts.
    post(&api.base).expect(403, "csrf_origin_mismatch");
    post("https://ops.example.com").ok(201);
}

#[test]
fn temporary_password_forces_a_change_before_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, api, admin) = onboarded(dir.path());
    let temp = api.add_user(admin.bearer(), "alice", "user");
    let r = api.login("alice", &temp);
    assert_eq!(r.ok(200)["password_change_required"], true);
    let s = r.session().unwrap();
    api.get("/v1/rules", Auth::Cookie(&s))
        .expect(403, "password_change_required");
    api.post(
        "/v1/users/alice/credentials",
        Auth::Cookie(&s),
        json!({"label": "x"}),
    )
    .expect(403, "password_change_required");
    let me = api.get("/v1/users/me", Auth::Cookie(&s));
    assert_eq!(me.ok(200)["password_change_required"], true);
    let change = |current: &str, new: &str| {
        api.post(
            "/v1/users/me/password",
            Auth::Cookie(&s),
            json!({"current_password": current, "new_password": new}),
        )
    };
    change("not the password", "alice new password 1").expect(403, "forbidden");
    change(&temp, "short").expect(400, "password_too_weak");
    change(&temp, &temp).expect(400, "password_too_weak");
    let done = change(&temp, "alice new password 1");
    done.ok(200);
    let fresh = done
        .session()
        .expect("a fresh session for the cookie caller");
    // Every older session ended with the change.
    api.get("/v1/users/me", Auth::Cookie(&s))
        .expect(401, "unauthenticated");
    api.get("/v1/rules", Auth::Cookie(&fresh)).ok(200);
    api.login("alice", &temp).expect(401, "unauthenticated");
    let again = api.login("alice", "alice new password 1");
    assert_eq!(again.ok(200)["password_change_required"], false);
}

#[test]
fn login_is_throttled_per_user_and_per_source() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api, admin) = onboarded(dir.path());
    for u in ["alice", "bob"] {
        api.post(
            "/v1/users",
            admin.bearer(),
            json!({"user_id": u, "display_name": u, "password": format!("{u} password 123"), "temporary": false}),
        )
        .ok(201);
    }
    for _ in 0..10 {
        api.login("alice", "wrong password 0")
            .expect(401, "unauthenticated");
    }
    let r = api.login("alice", "alice password 123");
    r.expect(429, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    // Another user from the same source still gets in.
    api.login("bob", "bob password 123").ok(200);
    // Failures across many user ids trip the per-source limit (30).
    for i in 0..20 {
        api.login(&format!("ghost{i}"), "wrong password 0")
            .expect(401, "unauthenticated");
    }
    api.login("bob", "bob password 123")
        .expect(429, "rate_limited");
    // Password changes count against the same limits.
    api.post(
        "/v1/users/me/password",
        admin.bearer(),
        json!({"current_password": ADMIN_PASSWORD, "new_password": "another admin password"}),
    )
    .expect(429, "rate_limited");
    let metrics = server.metrics_text();
    for want in [
        "portunus_auth_failures_total{reason=\"invalid_password\"} 30",
        "portunus_auth_failures_total{reason=\"rate_limited\"}",
    ] {
        assert!(metrics.contains(want), "{want} in\n{metrics}");
    }
}

#[test]
fn users_routes_and_the_last_superadmin() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, api, admin) = onboarded(dir.path());
    let a = admin.bearer();
    let created = api.post(
        "/v1/users",
        a,
        json!({"user_id": "alice", "display_name": "Alice"}),
    );
    let v = created.ok(201);
    assert_eq!(
        (v["role"].as_str(), v["password_change_required"].as_bool()),
        (Some("user"), Some(true))
    );
    assert_eq!(v["temporary_password"].as_str().unwrap().len(), 20);
    for (id, code) in [
        ("_legacy", "invalid_user_id"),
        ("Alice", "invalid_user_id"),
        ("me", "invalid_user_id"),
    ] {
        api.post("/v1/users", a, json!({"user_id": id, "display_name": "x"}))
            .expect(400, code);
    }
    api.post(
        "/v1/users",
        a,
        json!({"user_id": "alice", "display_name": "x"}),
    )
    .expect(409, "already_exists");
    api.post(
        "/v1/users",
        a,
        json!({"user_id": "weak", "display_name": "x", "password": "123"}),
    )
    .expect(400, "password_too_weak");
    api.get("/v1/users/ghost", a).expect(404, "user_not_found");
    let users = api.get("/v1/users", a);
    assert_eq!(users.ok(200).as_array().unwrap().len(), 2);

    let alice = api.tenant(a, "carol", "carol password 1");
    let c = Auth::Bearer(&alice);
    api.get("/v1/users", c).expect(403, "forbidden");
    api.get("/v1/users/carol", c).ok(200);
    api.get("/v1/users/alice", c).expect(403, "forbidden");
    api.post("/v1/users", c, json!({"user_id": "x", "display_name": "x"}))
        .expect(403, "forbidden");
    api.call("DELETE", "/v1/users/alice", c, None)
        .expect(403, "forbidden");
    api.post("/v1/users/alice/password", c, json!({}))
        .expect(403, "forbidden");

    // The last active superadmin stays.
    api.call("DELETE", &format!("/v1/users/{ADMIN}"), a, None)
        .expect(409, "last_superadmin");
    api.call(
        "PATCH",
        &format!("/v1/users/{ADMIN}"),
        a,
        Some(json!({"role": "user"})),
    )
    .expect(409, "last_superadmin");
    api.call(
        "PATCH",
        &format!("/v1/users/{ADMIN}"),
        a,
        Some(json!({"disabled": true})),
    )
    .expect(409, "last_superadmin");
    let promoted = api.call(
        "PATCH",
        "/v1/users/alice",
        a,
        Some(json!({"role": "superadmin", "display_name": "Alice A."})),
    );
    assert_eq!(promoted.ok(200)["role"], "superadmin");
    api.call("PATCH", "/v1/users/alice", a, Some(json!({"role": "user"})))
        .ok(200);

    // An admin reset ends the user's sessions; a generated password is
    // temporary and shown once.
    let s = api.session("carol", "carol password 1");
    let reset = api.post("/v1/users/carol/password", a, json!({}));
    let temp = reset.ok(200)["temporary_password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(reset.body["sessions_revoked"], 1);
    api.get("/v1/users/me", Auth::Cookie(&s))
        .expect(401, "unauthenticated");
    assert_eq!(
        api.login("carol", &temp).ok(200)["password_change_required"],
        true
    );
    api.post(
        "/v1/users/carol/password",
        a,
        json!({"password": "carol permanent 1", "temporary": false}),
    )
    .ok(200);
    assert_eq!(
        api.login("carol", "carol permanent 1").ok(200)["password_change_required"],
        false
    );
    api.post("/v1/users/ghost/password", a, json!({}))
        .expect(404, "user_not_found");
    // A credential survives an admin reset (only sessions end).
    api.get("/v1/users/me", c).ok(200);

    let removed = api.call("DELETE", "/v1/users/carol", a, None);
    assert_eq!(removed.ok(200)["removed_rules"], json!([]));
    api.get("/v1/users/me", c).expect(401, "unauthenticated");
    api.call("DELETE", "/v1/users/carol", a, None)
        .expect(404, "user_not_found");
}

#[test]
fn credentials_issue_list_rotate_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, api, admin) = onboarded(dir.path());
    let a = admin.bearer();
    api.tenant(a, "alice", "alice password 1");
    api.tenant(a, "bob", "bob password 12");
    let (cid, token) = api.issue(a, "alice", "deploy");
    assert_eq!(token.len(), 43);
    // The token carries alice's rights and no more.
    let t = Auth::Bearer(&token);
    assert_eq!(api.get("/v1/users/me", t).ok(200)["user_id"], "alice");
    api.get("/v1/rules", t).ok(200);
    api.get("/v1/clients", t).expect(403, "forbidden");
    let list = api.get("/v1/users/alice/credentials", a);
    let list = list.ok(200).as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert!(list
        .iter()
        .all(|c| c.get("token").is_none() && c.get("token_hash").is_none()));
    assert!(list
        .iter()
        .any(|c| c["credential_id"] == cid.as_str() && c["label"] == "deploy"));
    // Users manage their own credentials, not others'.
    let (own, _) = api.issue(t, "alice", "laptop");
    api.get("/v1/users/bob/credentials", t)
        .expect(403, "forbidden");
    api.post("/v1/users/bob/credentials", t, json!({"label": "x"}))
        .expect(403, "forbidden");
    api.post("/v1/users/alice/credentials", t, json!({"label": ""}))
        .expect(400, "invalid_request");
    api.post("/v1/users/ghost/credentials", a, json!({"label": "x"}))
        .expect(404, "user_not_found");

    let rotated = api.post(
        &format!("/v1/users/alice/credentials/{cid}/rotate"),
        a,
        json!({}),
    );
    let v = rotated.ok(200);
    assert_eq!(
        (v["credential_id"].as_str(), v["label"].as_str()),
        (Some(cid.as_str()), Some("deploy"))
    );
    let new_token = v["token"].as_str().unwrap().to_string();
    api.get("/v1/users/me", t).expect(401, "unauthenticated");
    api.get("/v1/users/me", Auth::Bearer(&new_token)).ok(200);
    api.post(
        &format!("/v1/users/bob/credentials/{cid}/rotate"),
        a,
        json!({}),
    )
    .expect(404, "not_found");

    let revoked = api.call(
        "DELETE",
        &format!("/v1/users/alice/credentials/{cid}"),
        Auth::Bearer(&new_token),
        None,
    );
    assert_eq!(revoked.ok(200)["revoked"], true);
    api.get("/v1/users/me", Auth::Bearer(&new_token))
        .expect(401, "unauthenticated");
    api.post(
        &format!("/v1/users/alice/credentials/{cid}/rotate"),
        a,
        json!({}),
    )
    .expect(409, "conflict");
    api.call("DELETE", "/v1/users/alice/credentials/01NOPE", a, None)
        .expect(404, "not_found");
    let list = api.get("/v1/users/alice/credentials", a);
    let live: Vec<_> = list
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["revoked"] == false)
        .map(|c| c["credential_id"].as_str().unwrap().to_string())
        .collect();
    assert!(live.contains(&own));
}

#[test]
fn grants_decide_who_may_push_where() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api, admin) = onboarded(dir.path());
    let a = admin.bearer();
    server.cli_ok(&["enroll-client", "edge-01"]);
    server.cli_ok(&["enroll-client", "edge-02"]);
    let alice = api.tenant(a, "alice", "alice password 1");
    let t = Auth::Bearer(&alice);
    let grant = |body: serde_json::Value| api.post("/v1/grants", a, body);
    let g = grant(
        json!({"user_id": "alice", "client": "edge-01", "listen_port_start": 8000, "listen_port_end": 8100, "protocols": ["tcp"]}),
    );
    let g = g.ok(201).clone();
    assert_eq!(
        (g["client"].as_str(), g["protocols"].clone()),
        (Some("edge-01"), json!(["tcp"]))
    );
    let push = |client: &str, port: u32, end: Option<u32>, protocol: &str| {
        let mut body = json!({"client": client, "listen_port": port, "protocol": protocol,
            "targets": [{"host": "127.0.0.1", "port": 9, "priority": 1}]});
        if let Some(e) = end {
            body["listen_port_end"] = json!(e);
            body["targets"][0]["port"] = json!(9000);
        }
        api.post("/v1/rules", t, body)
    };
    push("edge-02", 8000, None, "tcp").expect(403, "client_not_granted");
    // A missing client answers exactly like an ungranted one, naming only
    // what the user gave; a rule filter on either is an empty list.
    let ungranted = push("edge-02", 8000, None, "tcp");
    let missing = push("ghost", 8000, None, "tcp");
    missing.expect(403, "client_not_granted");
    assert_eq!(
        missing.body["error"]["message"],
        ungranted.body["error"]["message"]
            .as_str()
            .unwrap()
            .replace("edge-02", "ghost")
    );
    for client in ["edge-02", "ghost"] {
        let r = api.get(&format!("/v1/rules?client={client}"), t);
        assert_eq!(r.ok(200), &json!([]), "{client}");
    }
    api.get("/v1/rules?client=ghost", a)
        .expect(404, "client_not_found");
    let star = grant(
        json!({"user_id": "alice", "client": "*", "listen_port_start": 9000, "listen_port_end": 9000, "protocols": "tcp,udp"}),
    );
    assert_eq!(star.ok(201)["client"], "*");
    for (body, status, code) in [
        (
            json!({"user_id": "alice", "client": "edge-01", "listen_port_start": 0, "listen_port_end": 1, "protocols": "tcp"}),
            400,
            "invalid_port",
        ),
        (
            json!({"user_id": "alice", "client": "edge-01", "listen_port_start": 10, "listen_port_end": 9, "protocols": "tcp"}),
            400,
            "range_invalid",
        ),
        (
            json!({"user_id": "alice", "client": "edge-01", "listen_port_start": 1, "listen_port_end": 9, "protocols": "sctp"}),
            400,
            "invalid_protocol",
        ),
        (
            json!({"user_id": "alice", "client": "ghost", "listen_port_start": 1, "listen_port_end": 9, "protocols": "tcp"}),
            404,
            "client_not_found",
        ),
        (
            json!({"user_id": "ghost", "client": "*", "listen_port_start": 1, "listen_port_end": 9, "protocols": "tcp"}),
            404,
            "user_not_found",
        ),
    ] {
        grant(body).expect(status, code);
    }
    api.post(
        "/v1/grants",
        t,
        json!({"user_id": "alice", "client": "*", "listen_port_start": 1, "listen_port_end": 65535, "protocols": "tcp"}),
    )
    .expect(403, "forbidden");
    let mine = api.get("/v1/grants?user_id=root", t);
    assert_eq!(
        mine.ok(200).as_array().unwrap().len(),
        2,
        "a user sees only its own grants, whatever it asks for"
    );
    api.call(
        "DELETE",
        &format!("/v1/grants/{}", g["grant_id"].as_str().unwrap()),
        t,
        None,
    )
    .expect(403, "forbidden");

    push("edge-01", 7999, None, "tcp").expect(403, "port_outside_grant");
    push("edge-01", 8090, Some(8101), "tcp").expect(403, "port_outside_grant");
    push("edge-01", 8000, None, "udp").expect(403, "protocol_not_granted");
    push("edge-02", 9000, None, "udp").expect(409, "client_not_connected");
    push("edge-01", 8000, Some(8100), "tcp").expect(409, "client_not_connected");
    // Superadmins need no grant.
    api.post(
        "/v1/rules",
        a,
        json!({"client": "edge-02", "listen_port": 1, "targets": [{"host": "127.0.0.1", "port": 9, "priority": 1}]}),
    )
    .expect(409, "client_not_connected");

    let revoked = api.call(
        "DELETE",
        &format!("/v1/grants/{}", g["grant_id"].as_str().unwrap()),
        a,
        None,
    );
    assert_eq!(revoked.ok(200)["removed_rules"], json!([]));
    // Only the `*` grant is left, and it covers port 9000 alone.
    push("edge-01", 8000, None, "tcp").expect(403, "port_outside_grant");
    api.call(
        "DELETE",
        &format!("/v1/grants/{}", g["grant_id"].as_str().unwrap()),
        a,
        None,
    )
    .expect(404, "not_found");
}

#[test]
fn rules_of_others_are_not_owner_and_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api, admin) = onboarded(&dir.path().join("srv"));
    let bundle = dir.path().join("edge").join("client.bundle.json");
    std::fs::create_dir_all(bundle.parent().unwrap()).unwrap();
    server.enroll("edge-01", &bundle);
    let _client = Client::start(&bundle);
    wait_connected(&server, "edge-01", true);
    let a = admin.bearer();
    let alice = api.tenant(a, "alice", "alice password 1");
    let t = Auth::Bearer(&alice);
    api.post(
        "/v1/grants",
        a,
        json!({"user_id": "alice", "client": "edge-01", "listen_port_start": 1024, "listen_port_end": 65535, "protocols": "tcp"}),
    )
    .ok(201);
    let push = |auth: Auth| {
        wait_for("a pushed rule", DEADLINE, || {
            let port = portunus_e2e::net::free_port();
            let r = api.post(
                "/v1/rules",
                auth,
                json!({"client": "edge-01", "listen_port": port, "targets": [{"host": "127.0.0.1", "port": 9, "priority": 1}]}),
            );
            (r.status == 201).then(|| r.body["rule_id"].as_str().unwrap().to_string())
        })
    };
    let theirs = push(a);
    let mine = push(t);
    let listed = api.get("/v1/rules", t);
    let ids: Vec<&str> = listed
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.as_str()]);
    let listed = api.get("/v1/rules?owner=root", t);
    assert_eq!(
        listed.ok(200).as_array().unwrap().len(),
        1,
        "owner filter is forced to self"
    );
    api.get(&format!("/v1/rules/{theirs}"), t)
        .expect(403, "not_owner");
    api.get(&format!("/v1/rules/{theirs}/stats"), t)
        .expect(403, "not_owner");
    api.call("DELETE", &format!("/v1/rules/{theirs}"), t, None)
        .expect(403, "not_owner");
    let r = api.get(&format!("/v1/rules/{mine}"), a);
    assert_eq!(r.ok(200)["owner"], "alice");
    api.call("DELETE", &format!("/v1/rules/{mine}"), t, None)
        .ok(200);
}

#[test]
fn audit_rows_record_allowed_and_denied_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api, admin) = onboarded(dir.path());
    let a = admin.bearer();
    let alice = api.tenant(a, "alice", "alice password 1");
    api.get("/v1/clients", Auth::Bearer(&alice))
        .expect(403, "forbidden");
    api.get("/v1/clients?secret=never-recorded", Auth::Anon)
        .expect(401, "unauthenticated");
    let denied = wait_audit(&api, a, |e| {
        e["actor"] == "alice" && e["path"] == "/v1/clients" && e["outcome"] == "deny"
    });
    assert_eq!(
        (denied["method"].as_str(), denied["reason"].as_str()),
        (Some("GET"), Some("forbidden"))
    );
    let anon = wait_audit(&api, a, |e| e["reason"] == "unauthenticated");
    assert_eq!(anon["actor"], serde_json::Value::Null);
    assert_eq!(anon["path"], "/v1/clients", "no query string in the row");
    let onboarding = wait_audit(&api, a, |e| e["path"] == "/v1/auth/onboarding");
    assert_eq!(
        (
            onboarding["outcome"].as_str(),
            onboarding["reason"].as_str(),
            onboarding["actor"].as_str()
        ),
        (Some("allow"), Some("ok"), Some(ADMIN))
    );
    let page = api.audit(a, "?outcome=deny&limit=1000");
    assert!(page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["outcome"] == "deny"));

    // Sign-in and sign-out are recorded; successful reads are not (they
    // are counted in metrics).
    let cookie = api.session(ADMIN, ADMIN_PASSWORD);
    api.post("/v1/auth/logout", Auth::Cookie(&cookie), json!({}))
        .ok(204);
    let logout = wait_audit(&api, a, |e| e["path"] == "/v1/auth/logout");
    assert_eq!(
        (logout["actor"].as_str(), logout["outcome"].as_str()),
        (Some(ADMIN), Some("allow"))
    );
    wait_audit(&api, a, |e| e["path"] == "/v1/auth/login");
    let reads = api.audit(a, "?limit=1000");
    let reads: Vec<&Value> = reads["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["method"] == "GET" && e["outcome"] == "allow")
        .collect();
    assert!(reads.is_empty(), "successful reads audited: {reads:?}");

    // Cursor paging walks every row once, newest first.
    let all = api.audit(a, "?limit=1000");
    let total: Vec<i64> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let mut walked = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = api.audit(a, &format!("?limit=2{cursor}"));
        let ids: Vec<i64> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect();
        walked.extend(ids.iter().copied().filter(|id| *id <= total[0]));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(walked, total);

    let past = api.audit(a, "?until=2000-01-01T00:00:00Z");
    assert_eq!(past["entries"], json!([]));
    let recent = api.audit(a, "?since=2000-01-01T00:00:00Z&limit=1");
    assert_eq!(recent["entries"].as_array().unwrap().len(), 1);
    api.get("/v1/audit?since=yesterday", a)
        .expect(400, "invalid_time");
    api.get("/v1/audit?limit=0", a)
        .expect(400, "invalid_request");
    api.get("/v1/audit", Auth::Bearer(&alice))
        .expect(403, "forbidden");
    let metrics = server.metrics_text();
    for want in [
        "portunus_operator_requests_total{outcome=\"deny\",reason=\"forbidden\"}",
        "portunus_operator_requests_total{outcome=\"allow\",reason=\"ok\"}",
        "portunus_auth_failures_total{reason=\"missing_credentials\"} 1",
        "portunus_audit_dropped_total 0",
    ] {
        assert!(metrics.contains(want), "{want} in\n{metrics}");
    }
}
