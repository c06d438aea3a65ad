//! `export`, `diff` and `apply`: the fleet as a file, converged through
//! the same `/v1` API as every other operator command (no second path to
//! the store).

mod file;
mod plan;
#[cfg(test)]
mod tests;

use super::http::ApiClient;
use super::operator::seg;
use file::{CapEntry, Entry, Fleet, GrantEntry, RuleEntry};
use plan::{Applier, Current, CurrentGrant, CurrentRule, Step};
use portunus_domain::rule::{Limits, RateLimit, RuleSpec};
use portunus_domain::{DomainError, ErrorCode};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Ends the process with `code` and nothing more to print: `diff` exits 1
/// when there are changes, like diff(1).
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Exit {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FileFormat {
    #[default]
    Toml,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Only this client's rules, owner caps and grants.
    #[arg(long)]
    client: Option<String>,
    /// Only this user's rules, owner caps and grants.
    #[arg(long)]
    owner: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    format: FileFormat,
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The fleet file (TOML, or JSON).
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Show the deletions `apply --prune` would make.
    #[arg(long)]
    prune: bool,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The fleet file (TOML, or JSON).
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Delete rules of the covered clients that the file does not list
    /// (and owner caps and grants, when the file lists any).
    #[arg(long)]
    prune: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// The rule view's fields that are not part of the spec. A fleet file does
/// not carry a rule's name, note or switch yet: `apply` leaves them as
/// they are on rules it keeps.
const VIEW_ONLY: &[&str] = &[
    "rule_id",
    "client",
    "client_id",
    "owner",
    "name",
    "note",
    "enabled",
    "state",
    "reason",
    "quota_exhausted",
    "created_at",
    "updated_at",
];

fn unexpected(what: &str, e: impl std::fmt::Display) -> DomainError {
    DomainError::new(
        ErrorCode::Internal,
        format!("unexpected {what} from the server: {e}"),
    )
}

fn current_rule(mut v: Value) -> Result<CurrentRule, DomainError> {
    let obj = v
        .as_object_mut()
        .ok_or_else(|| unexpected("rule", "not an object"))?;
    let text = |obj: &serde_json::Map<String, Value>, k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (rule_id, client, owner) = (
        text(obj, "rule_id"),
        text(obj, "client"),
        text(obj, "owner"),
    );
    for k in VIEW_ONLY {
        obj.remove(*k);
    }
    let spec: RuleSpec = serde_json::from_value(v).map_err(|e| unexpected("rule", e))?;
    Ok(CurrentRule {
        rule_id,
        client,
        owner,
        spec,
    })
}

async fn applier(api: &ApiClient) -> Result<Applier, DomainError> {
    let me: Value = api.call(Method::GET, "/v1/users/me", None).await?;
    Ok(Applier {
        user_id: me["user_id"].as_str().unwrap_or_default().to_string(),
        superadmin: me["role"] == "superadmin",
    })
}

/// What the applier sees, narrowed to `client` and `owner` when given.
async fn current(
    api: &ApiClient,
    me: &Applier,
    client: Option<&str>,
    owner: Option<&str>,
) -> Result<Current, DomainError> {
    let mut query = vec![];
    if let Some(c) = client {
        query.push(format!("client={}", seg(c)));
    }
    if let Some(o) = owner {
        query.push(format!("owner={}", seg(o)));
    }
    let rules: Vec<Value> = api
        .call(Method::GET, &format!("/v1/rules?{}", query.join("&")), None)
        .await?;
    let mut cur = Current {
        rules: rules
            .into_iter()
            .map(current_rule)
            .collect::<Result<_, _>>()?,
        ..Default::default()
    };
    let grants: Vec<Value> = api.call(Method::GET, "/v1/grants", None).await?;
    for g in grants {
        let entry = GrantEntry {
            user: g["user_id"].as_str().unwrap_or_default().into(),
            client: g["client"].as_str().unwrap_or_default().into(),
            listen_port_start: g["listen_port_start"].as_u64().unwrap_or(0) as u32,
            listen_port_end: g["listen_port_end"].as_u64().unwrap_or(0) as u32,
            protocols: serde_json::from_value(g["protocols"].clone())
                .map_err(|e| unexpected("grant", e))?,
        };
        let wanted = client.is_none_or(|c| entry.client == c || entry.client == "*")
            && owner.is_none_or(|o| entry.user == o);
        if wanted {
            cur.grants.push(CurrentGrant {
                grant_id: g["grant_id"].as_str().unwrap_or_default().into(),
                grant: entry,
            });
        }
    }
    if me.superadmin {
        let clients: Vec<Value> = api.call(Method::GET, "/v1/clients", None).await?;
        for c in clients {
            let name = c["name"].as_str().unwrap_or_default();
            if client.is_some_and(|want| want != name) {
                continue;
            }
            let path = format!("/v1/clients/{}/owners", seg(name));
            let owners: Vec<Value> = api.call(Method::GET, &path, None).await?;
            for o in owners {
                let who = o["owner"].as_str().unwrap_or_default();
                if o["rate_limit"].is_null() || owner.is_some_and(|want| want != who) {
                    continue;
                }
                let rate_limit: RateLimit = serde_json::from_value(o["rate_limit"].clone())
                    .map_err(|e| unexpected("owner cap", e))?;
                cur.caps.push(CapEntry {
                    client: name.into(),
                    owner: who.into(),
                    rate_limit,
                });
            }
        }
    }
    Ok(cur)
}

pub async fn export(api: &ApiClient, args: &ExportArgs) -> anyhow::Result<()> {
    let me = applier(api).await?;
    let cur = current(api, &me, args.client.as_deref(), args.owner.as_deref()).await?;
    let mut rules: Vec<RuleEntry> = cur
        .rules
        .into_iter()
        .map(|r| RuleEntry {
            client: r.client,
            owner: Some(r.owner),
            spec: r.spec,
        })
        .collect();
    rules.sort_by_key(|r| file::describe(&r.client, &r.spec));
    let mut clients: Vec<String> = rules.iter().map(|r| r.client.clone()).collect();
    clients.extend(args.client.clone());
    clients.sort();
    clients.dedup();
    let mut grants = cur.grants.into_iter().map(|g| g.grant).collect::<Vec<_>>();
    grants.sort();
    let entry = |item| Entry { line: None, item };
    let fleet = Fleet {
        clients,
        rules: rules.into_iter().map(entry).collect(),
        owner_caps: cur
            .caps
            .into_iter()
            .map(|item| Entry { line: None, item })
            .collect(),
        grants: grants
            .into_iter()
            .map(|item| Entry { line: None, item })
            .collect(),
    };
    match args.format {
        FileFormat::Toml => print!("{}", file::to_toml(&fleet)),
        FileFormat::Json => println!("{}", file::to_json(&fleet)),
    }
    Ok(())
}

fn read(path: &PathBuf) -> anyhow::Result<Fleet> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        DomainError::new(
            ErrorCode::InvalidRequest,
            format!("cannot read {name}: {e}"),
        )
    })?;
    Ok(file::parse(&name, &text, &Limits::default())?)
}

async fn planned(api: &ApiClient, path: &PathBuf, prune: bool) -> anyhow::Result<plan::Plan> {
    // The whole file is checked before the server is asked anything.
    let fleet = read(path)?;
    let me = applier(api).await?;
    let cur = current(api, &me, None, None).await?;
    Ok(plan::plan(&fleet, &cur, &me, prune))
}

pub async fn diff(api: &ApiClient, args: &DiffArgs) -> anyhow::Result<()> {
    let p = planned(api, &args.file, args.prune).await?;
    print!("{}", plan::render(&p, args.prune));
    if p.is_empty() {
        Ok(())
    } else {
        Err(Exit(1).into())
    }
}

fn rule_body(e: &RuleEntry) -> Value {
    let mut body = serde_json::to_value(&e.spec).unwrap_or(Value::Null);
    body["client"] = json!(e.client);
    body
}

async fn run_step(api: &ApiClient, step: &Step) -> Result<(), DomainError> {
    let cap_path = |c: &CapEntry| {
        format!(
            "/v1/clients/{}/owners/{}/rate-limit",
            seg(&c.client),
            seg(&c.owner)
        )
    };
    match step {
        Step::CreateRule(e) => {
            api.call::<Value>(Method::POST, "/v1/rules", Some(rule_body(e)))
                .await?;
        }
        Step::UpdateRule { rule_id, entry, .. } => {
            let body = json!({ "rate_limit": entry.spec.rate_limit });
            let path = format!("/v1/rules/{}", seg(rule_id));
            api.call::<Value>(Method::PUT, &path, Some(body)).await?;
        }
        Step::ReplaceRule { rule_id, entry, .. } => {
            let path = format!("/v1/rules/{}", seg(rule_id));
            api.call::<Value>(Method::DELETE, &path, None).await?;
            api.call::<Value>(Method::POST, "/v1/rules", Some(rule_body(entry)))
                .await?;
        }
        Step::DeleteRule(r) => {
            let path = format!("/v1/rules/{}", seg(&r.rule_id));
            api.call::<Value>(Method::DELETE, &path, None).await?;
        }
        Step::SetCap { entry, .. } => {
            let body = serde_json::to_value(entry.rate_limit).unwrap_or(Value::Null);
            api.call::<Value>(Method::PUT, &cap_path(entry), Some(body))
                .await?;
        }
        Step::DeleteCap(c) => {
            api.call::<Value>(Method::DELETE, &cap_path(c), None)
                .await?;
        }
        Step::CreateGrant(g) => {
            let body = json!({
                "user_id": g.user, "client": g.client, "listen_port_start": g.listen_port_start,
                "listen_port_end": g.listen_port_end, "protocols": g.protocols,
            });
            api.call::<Value>(Method::POST, "/v1/grants", Some(body))
                .await?;
        }
        Step::DeleteGrant(g) => {
            let path = format!("/v1/grants/{}", seg(&g.grant_id));
            api.call::<Value>(Method::DELETE, &path, None).await?;
        }
        Step::Refuse { code, message, .. } => {
            return Err(DomainError::new(*code, message.clone()));
        }
    }
    Ok(())
}

pub async fn apply(api: &ApiClient, args: &ApplyArgs) -> anyhow::Result<()> {
    let p = planned(api, &args.file, args.prune).await?;
    if args.dry_run || p.is_empty() {
        print!("{}", plan::render(&p, args.prune));
        return Ok(());
    }
    let mut failed = 0;
    for step in &p.steps {
        let line = plan::render(
            &plan::Plan {
                steps: vec![step.clone()],
                unlisted: 0,
            },
            true,
        );
        let head = match step {
            Step::Refuse { what, .. } => format!("! refuse   {what}"),
            _ => line.lines().next().unwrap_or_default().to_string(),
        };
        match run_step(api, step).await {
            Ok(()) => println!("ok     {head}"),
            Err(e) => {
                failed += 1;
                println!("failed {head}: {} ({})", e.message, e.code);
            }
        }
    }
    if failed > 0 {
        return Err(DomainError::new(
            ErrorCode::ApplyIncomplete,
            format!(
                "{failed} of {} changes failed; the others were applied",
                p.steps.len()
            ),
        )
        .into());
    }
    println!("applied {} change(s)", p.steps.len());
    Ok(())
}
