//! `quota set|get|list|delete|clear-usage`: monthly byte quotas per owner
//! and client.

use super::http::ApiClient;
use super::operator::{s, seg};
use super::output::{items, print_json, print_listing, Format};
use super::traffic::human_bytes;
use clap::Subcommand;
use portunus_domain::{DomainError, ErrorCode};
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Debug, Subcommand)]
pub enum QuotaCommand {
    /// Set (or replace) an owner's quota on a client.
    Set {
        client: String,
        owner: String,
        /// Bytes (in plus out) per period: a number, or one with a unit
        /// (`5GB`, `500MB`, `2GiB`).
        #[arg(long, value_parser = parse_bytes)]
        monthly_bytes: u64,
        /// Day of the month (1-28) a new period starts, 00:00 UTC.
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=28))]
        reset_day: Option<u8>,
        /// One period for the life of the quota, from now.
        #[arg(long, conflicts_with = "reset_day")]
        never_reset: bool,
        /// Last day (YYYY-MM-DD, UTC) traffic is allowed.
        #[arg(long)]
        until: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show an owner's quota on a client.
    Get {
        client: String,
        owner: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// List quotas (a user sees their own).
    List {
        #[arg(long)]
        client: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Remove an owner's quota on a client.
    Delete { client: String, owner: String },
    /// Count the current period again from zero (forwarding resumes if the
    /// quota was spent).
    ClearUsage {
        client: String,
        owner: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// `5GB` → 5_000_000_000; units are SI (kB, MB, GB, TB) or IEC (KiB ...).
pub fn parse_bytes(s: &str) -> Result<u64, DomainError> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "k" | "kB" | "KB" => 1_000,
        "M" | "MB" => 1_000_000,
        "G" | "GB" => 1_000_000_000,
        "T" | "TB" => 1_000_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => 0,
    };
    n.parse::<u64>()
        .ok()
        .filter(|_| factor > 0)
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| {
            DomainError::field(
                ErrorCode::InvalidQuota,
                "monthly_bytes",
                format!("{s:?} is not a byte count such as 5000000000 or 5GB"),
            )
        })
}

fn path(client: &str, owner: &str) -> String {
    format!("/v1/clients/{}/owners/{}/quota", seg(client), seg(owner))
}

fn print_quota(v: &Value, format: Format) {
    if format == Format::Json {
        print_json(v);
        return;
    }
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    println!("client: {}", s(v, "client"));
    println!("owner: {}", s(v, "owner"));
    println!("state: {}", s(v, "state"));
    println!(
        "used: {} of {} ({} left)",
        human_bytes(n("used_bytes")),
        human_bytes(n("monthly_bytes")),
        human_bytes(n("remaining_bytes"))
    );
    println!("period_start: {}", s(v, "period_start"));
    println!("next_reset: {}", s(v, "next_reset"));
    println!("until: {}", s(v, "until"));
}

impl QuotaCommand {
    pub async fn run(self, api: &ApiClient) -> anyhow::Result<()> {
        match self {
            QuotaCommand::Set {
                client,
                owner,
                monthly_bytes,
                reset_day,
                never_reset,
                until,
                format,
            } => {
                let body = json!({
                    "monthly_bytes": monthly_bytes,
                    "reset_day": reset_day,
                    "never_reset": never_reset,
                    "until": until,
                });
                let v: Value = api
                    .call(Method::PUT, &path(&client, &owner), Some(body))
                    .await?;
                print_quota(&v, format);
            }
            QuotaCommand::Get {
                client,
                owner,
                format,
            } => {
                let v: Value = api.call(Method::GET, &path(&client, &owner), None).await?;
                print_quota(&v, format);
            }
            QuotaCommand::List {
                client,
                owner,
                format,
            } => {
                let mut q = Vec::new();
                if let Some(c) = &client {
                    q.push(format!("client={}", seg(c)));
                }
                if let Some(o) = &owner {
                    q.push(format!("owner={}", seg(o)));
                }
                let url = if q.is_empty() {
                    "/v1/quotas".to_string()
                } else {
                    format!("/v1/quotas?{}", q.join("&"))
                };
                let v: Value = api.call(Method::GET, &url, None).await?;
                print_listing(
                    &v,
                    format,
                    items(&v),
                    &[
                        "CLIENT", "OWNER", "USED", "LIMIT", "STATE", "RESETS", "UNTIL",
                    ],
                    |q| {
                        let n = |k: &str| q[k].as_u64().unwrap_or(0);
                        let resets = match q["reset_day"].as_u64() {
                            Some(d) => format!("day {d}"),
                            None => "never".into(),
                        };
                        vec![
                            s(q, "client"),
                            s(q, "owner"),
                            human_bytes(n("used_bytes")),
                            human_bytes(n("monthly_bytes")),
                            s(q, "state"),
                            resets,
                            s(q, "until"),
                        ]
                    },
                );
            }
            QuotaCommand::Delete { client, owner } => {
                let _: Value = api
                    .call(Method::DELETE, &path(&client, &owner), None)
                    .await?;
                eprintln!("removed the quota of {owner} on {client}");
            }
            QuotaCommand::ClearUsage {
                client,
                owner,
                format,
            } => {
                let v: Value = api
                    .call(
                        Method::POST,
                        &format!("{}/clear-usage", path(&client, &owner)),
                        None,
                    )
                    .await?;
                print_quota(&v, format);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        let cases = [
            ("5000000", Some(5_000_000)),
            ("5MB", Some(5_000_000)),
            ("5M", Some(5_000_000)),
            ("2GiB", Some(2 << 30)),
            ("1TB", Some(1_000_000_000_000)),
            ("5 GB", Some(5_000_000_000)),
            ("5XB", None),
            ("GB", None),
            ("-5", None),
            ("99999999999999999999", None),
            ("20000000TB", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_bytes(s).ok(), want, "{s}");
        }
    }
}
