//! `owner-cap set|get|list|delete`: per-owner envelopes on a client.

use super::http::ApiClient;
use super::operator::{s, seg};
use super::output::{items, print_json, print_listing, Format};
use super::push::CapArgs;
use crate::api::owner_caps::validate_envelope;
use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub enum OwnerCapCommand {
    /// Set (or replace) an owner's envelope on a client.
    Set {
        client: String,
        owner: String,
        #[command(flatten)]
        caps: CapArgs,
    },
    /// Read an owner's envelope.
    Get {
        client: String,
        owner: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// List the owners on a client and their envelopes.
    List {
        client: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Remove an envelope.
    Delete { client: String, owner: String },
}

impl OwnerCapCommand {
    /// Pre-flight checks that need no server: an empty `set` exits 3.
    pub fn preflight(&self) -> anyhow::Result<()> {
        if let OwnerCapCommand::Set { caps, .. } = self {
            validate_envelope(&caps.to_rate_limit())?;
        }
        Ok(())
    }

    pub async fn run(self, api: &ApiClient) -> anyhow::Result<()> {
        let path = |client: &str, owner: &str| {
            format!(
                "/v1/clients/{}/owners/{}/rate-limit",
                seg(client),
                seg(owner)
            )
        };
        match self {
            OwnerCapCommand::Set {
                client,
                owner,
                caps,
            } => {
                let body = serde_json::to_value(caps.to_rate_limit())?;
                let v: Value = api
                    .call(Method::PUT, &path(&client, &owner), Some(body))
                    .await?;
                print_json(&v["rate_limit"]);
            }
            OwnerCapCommand::Get {
                client,
                owner,
                format,
            } => {
                let v: Value = api.call(Method::GET, &path(&client, &owner), None).await?;
                match format {
                    Format::Json => print_json(&v),
                    Format::Text => print_json(&v["rate_limit"]),
                }
            }
            OwnerCapCommand::List { client, format } => {
                let v: Value = api
                    .call(
                        Method::GET,
                        &format!("/v1/clients/{}/owners", seg(&client)),
                        None,
                    )
                    .await?;
                print_listing(
                    &v,
                    format,
                    items(&v),
                    &["OWNER", "RULES", "ENVELOPE"],
                    |o| {
                        let caps = match &o["rate_limit"] {
                            Value::Object(m) => m
                                .iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(","),
                            _ => "-".into(),
                        };
                        vec![s(o, "owner"), s(o, "rules"), caps]
                    },
                );
            }
            OwnerCapCommand::Delete { client, owner } => {
                let _: Value = api
                    .call(Method::DELETE, &path(&client, &owner), None)
                    .await?;
                eprintln!("removed the envelope of {owner} on {client}");
            }
        }
        Ok(())
    }
}
