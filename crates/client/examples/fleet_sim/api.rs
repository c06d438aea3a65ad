//! The operator API calls the simulator makes, as any `/v1` client would.

use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    pub fn new(addr: SocketAddr, token: String) -> Api {
        Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a plain HTTP client builds"),
            base: format!("http://{addr}"),
            token,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = req.bearer_auth(&self.token).send().await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{status}: {body}");
        }
        Ok(body)
    }

    /// A new client enrollment; its one-time URI.
    pub async fn enroll(&self, name: &str) -> anyhow::Result<String> {
        let body = self
            .send(
                self.http
                    .post(format!("{}/v1/client-enrollments", self.base))
                    .json(&json!({ "name": name })),
            )
            .await?;
        Ok(body["uri"].as_str().context("no uri")?.to_string())
    }

    /// Pushes a TCP rule and waits for the edge's outcome; the rule id and
    /// how long the call took.
    pub async fn push(&self, client: &str, port: u16) -> anyhow::Result<(String, Duration)> {
        let started = Instant::now();
        let body = self
            .send(
                self.http
                    .post(format!("{}/v1/rules", self.base))
                    .json(&json!({
                        "client": client,
                        "listen_port": port,
                        "targets": [{ "host": "127.0.0.1", "port": 9 }],
                    })),
            )
            .await?;
        let took = started.elapsed();
        if body["state"] != "active" {
            bail!("rule not active: {body}");
        }
        Ok((
            body["rule_id"].as_str().context("no rule_id")?.to_string(),
            took,
        ))
    }

    pub async fn remove(&self, rule_id: &str) -> anyhow::Result<()> {
        self.send(
            self.http
                .delete(format!("{}/v1/rules/{rule_id}", self.base)),
        )
        .await?;
        Ok(())
    }

    /// How many clients the server counts as connected.
    pub async fn connected(&self) -> anyhow::Result<usize> {
        let body = self
            .send(self.http.get(format!("{}/v1/clients", self.base)))
            .await?;
        Ok(body
            .as_array()
            .context("not a list")?
            .iter()
            .filter(|c| c["connected"] == true)
            .count())
    }
}
