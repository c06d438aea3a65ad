//! Helpers shared by the access tests: a small HTTP client that speaks
//! bearer or cookie (with the browser's CSRF headers), onboarding from the
//! setup token the server prints, and secret bookkeeping.

#![allow(dead_code)] // Each test crate uses a different subset.

use portunus_e2e::{wait_for, Server, DEADLINE};
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

pub const ADMIN: &str = "root";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts the status and error code, showing the body when they differ.
    pub fn expect(&self, status: u16, code: &str) -> &Resp {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "body: {}",
            self.body
        );
        self
    }

    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        &self.body
    }

    /// The `portunus_session` value a `Set-Cookie` header sets, if any.
    pub fn session(&self) -> Option<String> {
        self.set_cookie()
            .and_then(|c| c.split(';').next().map(str::to_string))
            .and_then(|kv| kv.strip_prefix("portunus_session=").map(str::to_string))
            .filter(|v| !v.is_empty())
    }

    pub fn set_cookie(&self) -> Option<String> {
        self.headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

#[derive(Clone, Copy)]
pub enum Auth<'a> {
    Anon,
    Bearer(&'a str),
    /// A browser session: cookie writes carry a same-origin `Origin`,
    /// `X-Portunus-CSRF: 1` and a JSON body.
    Cookie(&'a str),
}

pub struct Api {
    pub base: String,
    http: Client,
}

impl Api {
    pub fn new(server: &Server) -> Api {
        Api {
            base: server.url(),
            http: Client::new(),
        }
    }

    pub fn builder(&self, method: &str, path: &str) -> RequestBuilder {
        self.http.request(
            method.parse().expect("method"),
            format!("{}{path}", self.base),
        )
    }

    pub fn send(&self, rb: RequestBuilder) -> Resp {
        let resp = rb.send().expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            body,
            headers,
        }
    }

    pub fn call(&self, method: &str, path: &str, auth: Auth, body: Option<Value>) -> Resp {
        let mut rb = self.builder(method, path);
        match auth {
            Auth::Anon => {}
            Auth::Bearer(t) => rb = rb.bearer_auth(t),
            Auth::Cookie(c) => {
                rb = rb
                    .header("cookie", format!("portunus_session={c}"))
                    .header("origin", self.base.clone())
                    .header("x-portunus-csrf", "1");
            }
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(rb)
    }

    pub fn get(&self, path: &str, auth: Auth) -> Resp {
        self.call("GET", path, auth, None)
    }

    pub fn post(&self, path: &str, auth: Auth, body: Value) -> Resp {
        self.call("POST", path, auth, Some(body))
    }

    pub fn login(&self, user: &str, password: &str) -> Resp {
        self.post(
            "/v1/auth/login",
            Auth::Anon,
            json!({"user_id": user, "password": password}),
        )
    }

    /// Logs in and returns the session cookie value.
    pub fn session(&self, user: &str, password: &str) -> String {
        let r = self.login(user, password);
        r.ok(200);
        r.session().expect("a session cookie")
    }

    /// Issues a credential for `user` and returns its token.
    pub fn issue(&self, auth: Auth, user: &str, label: &str) -> (String, String) {
        let r = self.post(
            &format!("/v1/users/{user}/credentials"),
            auth,
            json!({ "label": label }),
        );
        let v = r.ok(201);
        (
            v["credential_id"].as_str().unwrap().to_string(),
            v["token"].as_str().unwrap().to_string(),
        )
    }

    /// Creates a user and returns its temporary password.
    pub fn add_user(&self, auth: Auth, id: &str, role: &str) -> String {
        let r = self.post(
            "/v1/users",
            auth,
            json!({"user_id": id, "display_name": format!("User {id}"), "role": role}),
        );
        r.ok(201)["temporary_password"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Creates a user with a permanent password and a bearer token.
    pub fn tenant(&self, admin: Auth, id: &str, password: &str) -> String {
        self.post(
            "/v1/users",
            admin,
            json!({"user_id": id, "display_name": id, "password": password, "temporary": false}),
        )
        .ok(201);
        self.issue(admin, id, "automation").1
    }

    pub fn audit(&self, auth: Auth, query: &str) -> Value {
        let r = self.get(&format!("/v1/audit{query}"), auth);
        r.ok(200).clone()
    }
}

/// The setup token `serve` printed on stderr.
pub fn setup_token(server: &Server) -> String {
    server.setup_token()
}

/// The first superadmin, through Web onboarding.
pub struct Admin {
    pub cookie: String,
    pub token: String,
    pub setup_token: String,
}

impl Admin {
    pub fn bearer(&self) -> Auth<'_> {
        Auth::Bearer(&self.token)
    }
}

/// Onboards `root` with the printed setup token, logs in and issues an API
/// token for the command line.
pub fn onboard(server: &Server, api: &Api) -> Admin {
    let setup_token = setup_token(server);
    api.post(
        "/v1/auth/onboarding",
        Auth::Anon,
        json!({
            "setup_token": setup_token,
            "user_id": ADMIN,
            "display_name": "Root",
            "password": ADMIN_PASSWORD,
        }),
    )
    .ok(201);
    let cookie = api.session(ADMIN, ADMIN_PASSWORD);
    let (_, token) = api.issue(Auth::Cookie(&cookie), ADMIN, "cli");
    Admin {
        cookie,
        token,
        setup_token,
    }
}

/// A fresh server onboarded through the Web flow.
pub fn onboarded(dir: &std::path::Path) -> (Server, Api, Admin) {
    let mut server = Server::start(dir);
    let api = Api::new(&server);
    let admin = onboard(&server, &api);
    server.token = Some(admin.token.clone());
    (server, api, admin)
}

/// Waits until the audit trail holds a row matching `pred`.
pub fn wait_audit(api: &Api, auth: Auth, pred: impl Fn(&Value) -> bool) -> Value {
    wait_for("an audit row", DEADLINE, || {
        let page = api.audit(auth, "?limit=1000");
        page["entries"]
            .as_array()?
            .iter()
            .find(|e| pred(e))
            .cloned()
    })
}
