//! `traffic`: a rule's, client's or owner's history from `GET /v1/traffic`,
//! as a table with a small bar per bucket, or the API's JSON.

use super::http::ApiClient;
use super::operator::seg;
use super::output::{print_json, table, Format};
use super::rules::{resolve, RuleRef};
use crate::timefmt::rfc3339;
use portunus_domain::{DomainError, ErrorCode};
use reqwest::Method;
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct TrafficArgs {
    /// A rule's history (id or name).
    #[arg(long, conflicts_with = "owner")]
    pub rule: Option<String>,
    /// The history of a client's rules (name or id); with --rule, the
    /// client the rule name is on.
    #[arg(long)]
    pub client: Option<String>,
    /// The history of an owner's rules.
    #[arg(long)]
    pub owner: Option<String>,
    /// Start: a duration back from now (`90m`, `24h`, `7d`) or an RFC 3339
    /// time.
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// End: like --since; now when absent.
    #[arg(long)]
    pub until: Option<String>,
    /// Bucket width: 1m, 5m, 15m, 30m, 1h, 3h, 6h, 12h or 1d (default: the
    /// smallest that needs at most 300 buckets).
    #[arg(long)]
    pub step: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `24h` → seconds; None when `s` is not a duration.
fn duration_secs(s: &str) -> Option<i64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// A `--since`/`--until` value as the RFC 3339 time the API takes.
fn when(field: &str, s: &str, now: i64) -> Result<String, DomainError> {
    match duration_secs(s) {
        Some(back) => Ok(rfc3339(now - back)),
        None => crate::timefmt::parse_rfc3339_ms(field, s)
            .map(|_| s.to_string())
            .map_err(|_| {
                DomainError::field(
                    ErrorCode::InvalidTime,
                    field,
                    format!("{s:?} is neither a duration such as 24h nor an RFC 3339 time"),
                )
            }),
    }
}

/// Bytes in SI units, as operators read link speeds and bills.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

const BAR_WIDTH: u64 = 30;

/// A bar of up to `BAR_WIDTH` cells for `value` out of `max`; any traffic
/// at all shows at least one cell.
pub fn bar(value: u64, max: u64) -> String {
    if value == 0 || max == 0 {
        return String::new();
    }
    let cells = (u128::from(value) * u128::from(BAR_WIDTH)).div_ceil(u128::from(max));
    "█".repeat(usize::try_from(cells).unwrap_or(0))
}

pub async fn run(api: &ApiClient, args: TrafficArgs) -> anyhow::Result<()> {
    let now = crate::store::now();
    let mut q = vec![format!("since={}", seg(&when("since", &args.since, now)?))];
    if let Some(u) = &args.until {
        q.push(format!("until={}", seg(&when("until", u, now)?)));
    }
    if let Some(step) = &args.step {
        q.push(format!("step={}", seg(step)));
    }
    match &args.rule {
        Some(rule) => {
            let r = RuleRef {
                rule: rule.clone(),
                client: args.client.clone(),
            };
            let found = resolve(api, &r).await?;
            let id = found["rule_id"].as_str().unwrap_or_default();
            q.push(format!("rule={}", seg(id)));
        }
        None => {
            if let Some(c) = &args.client {
                q.push(format!("client={}", seg(c)));
            }
            if let Some(o) = &args.owner {
                q.push(format!("owner={}", seg(o)));
            }
        }
    }
    let v: Value = api
        .call(Method::GET, &format!("/v1/traffic?{}", q.join("&")), None)
        .await?;
    match args.format {
        Format::Json => print_json(&v),
        Format::Text => println!("{}", render(&v)),
    }
    Ok(())
}

/// The text form: one row per bucket, then the totals.
pub fn render(v: &Value) -> String {
    let n = |b: &Value, k: &str| b[k].as_u64().unwrap_or(0);
    let buckets = v["buckets"].as_array().cloned().unwrap_or_default();
    let max = buckets
        .iter()
        .map(|b| n(b, "bytes_in") + n(b, "bytes_out"))
        .max()
        .unwrap_or(0);
    let mut rows: Vec<Vec<String>> = buckets
        .iter()
        .map(|b| {
            vec![
                b["start"].as_str().unwrap_or_default().to_string(),
                human_bytes(n(b, "bytes_in")),
                human_bytes(n(b, "bytes_out")),
                n(b, "connections").to_string(),
                bar(n(b, "bytes_in") + n(b, "bytes_out"), max),
            ]
        })
        .collect();
    rows.push(vec![
        format!(
            "total ({} buckets of {})",
            buckets.len(),
            v["step"].as_str().unwrap_or("?")
        ),
        human_bytes(n(v, "bytes_in")),
        human_bytes(n(v, "bytes_out")),
        n(v, "connections").to_string(),
        String::new(),
    ]);
    table(&["START", "IN", "OUT", "CONN", ""], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        assert_eq!(duration_secs("24h"), Some(86_400));
        assert_eq!(duration_secs("90m"), Some(5400));
        assert_eq!(duration_secs("7d"), Some(604_800));
        assert_eq!(duration_secs("2w"), None);
        assert_eq!(duration_secs("h"), None);
        assert_eq!(when("since", "1h", 7200).unwrap(), "1970-01-01T01:00:00Z");
        assert_eq!(
            when("since", "2026-01-01T00:00:00Z", 0).unwrap(),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            when("since", "yesterday", 0).unwrap_err().code,
            ErrorCode::InvalidTime
        );
    }

    #[test]
    fn bytes_and_bars() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(5_000_000), "5.0 MB");
        assert_eq!(human_bytes(1_234_000_000_000), "1.2 TB");
        assert_eq!(bar(0, 10), "");
        assert_eq!(bar(1, 1_000_000).chars().count(), 1);
        assert_eq!(bar(10, 10).chars().count(), 30);
        assert_eq!(bar(5, 10).chars().count(), 15);
    }

    #[test]
    fn render_has_a_row_per_bucket_and_totals() {
        let v = serde_json::json!({
            "step": "1h", "bytes_in": 3000, "bytes_out": 0, "connections": 2,
            "buckets": [
                {"start": "2026-01-01T00:00:00Z", "bytes_in": 1000, "bytes_out": 0, "connections": 1},
                {"start": "2026-01-01T01:00:00Z", "bytes_in": 2000, "bytes_out": 0, "connections": 1},
            ]
        });
        let text = render(&v);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[2].ends_with(&"█".repeat(30)), "{text}");
        assert!(lines[3].starts_with("total (2 buckets of 1h)"), "{text}");
    }
}
