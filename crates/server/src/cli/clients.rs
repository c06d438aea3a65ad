//! Client commands over the operator API beside `enroll-client`, `revoke`
//! and `list-clients`: one client's record, a new enrollment for it, its
//! name, its public address, and deleting it once revoked.

use super::http::ApiClient;
use super::operator::{s, seg};
use super::output::{print_json, Format};
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Show one client and whether it is connected.
    GetClient {
        /// The client's name or id.
        client: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Print a new one-time `portunus-client enroll ...` command for an
    /// existing client (a new host, a lost bundle); it supersedes the
    /// client's unredeemed enrollments. Its rules stay.
    ReEnroll {
        client: String,
        #[arg(long)]
        ttl_secs: Option<i64>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Rename a client; its id, rules and credential stay.
    RenameClient {
        client: String,
        new_name: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Delete a revoked client with its rules.
    DeleteClient { client: String },
    /// Set the public host consumers of a client's ports reach, or clear it.
    SetClientAddress {
        client: String,
        /// A bare host name or IP address (no port).
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        address: Option<String>,
        #[arg(long)]
        clear: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

impl ClientCommand {
    pub async fn run(self, api: &ApiClient) -> anyhow::Result<()> {
        match self {
            ClientCommand::GetClient { client, format } => {
                let v: Value = api.call(Method::GET, &path(&client, ""), None).await?;
                print_client(&v, format);
            }
            ClientCommand::ReEnroll {
                client,
                ttl_secs,
                format,
            } => {
                let body = ttl_secs.map(|t| json!({ "ttl_secs": t }));
                let v: Value = api
                    .call(Method::POST, &path(&client, "/enrollment"), body)
                    .await?;
                if format == Format::Json {
                    print_json(&v);
                } else {
                    eprintln!(
                        "One-time enrollment, valid until {}. Run on the edge host:",
                        s(&v, "expires_at")
                    );
                    println!("{}", s(&v, "command"));
                }
            }
            ClientCommand::RenameClient {
                client,
                new_name,
                format,
            } => {
                let v: Value = api
                    .call(
                        Method::PATCH,
                        &path(&client, "/name"),
                        Some(json!({ "name": new_name })),
                    )
                    .await?;
                done(&v, format, &format!("renamed client {client} to"));
            }
            ClientCommand::DeleteClient { client } => {
                let _: Value = api.call(Method::DELETE, &path(&client, ""), None).await?;
                eprintln!("deleted client {client} with its rules");
            }
            ClientCommand::SetClientAddress {
                client,
                address,
                clear: _,
                format,
            } => {
                let v: Value = api
                    .call(
                        Method::PUT,
                        &path(&client, ""),
                        Some(json!({ "address": address })),
                    )
                    .await?;
                let what = match v["address"].as_str() {
                    Some(a) => format!("address {a} set on client"),
                    None => "address cleared on client".into(),
                };
                done(&v, format, &what);
            }
        }
        Ok(())
    }
}

fn path(client: &str, rest: &str) -> String {
    format!("/v1/clients/{}{rest}", seg(client))
}

fn done(v: &Value, format: Format, what: &str) {
    match format {
        Format::Json => print_json(v),
        Format::Text => eprintln!("{what} {}", s(v, "name")),
    }
}

fn print_client(v: &Value, format: Format) {
    if format == Format::Json {
        print_json(v);
        return;
    }
    for k in [
        "name",
        "client_id",
        "connected",
        "remote_addr",
        "connected_since",
        "address",
        "enrolled",
        "revoked",
        "created_at",
    ] {
        println!("{k}: {}", s(v, k));
    }
}
