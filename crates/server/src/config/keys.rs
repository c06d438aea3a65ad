//! The one table of `server.toml` keys: the environment variable of each,
//! its default and its meaning. `serve --help` (and so its man page) and
//! the README's configuration table are rendered from it, and tests hold
//! it to `FileConfig`'s fields.

/// One `server.toml` key.
pub struct Key {
    pub name: &'static str,
    /// The default, as the README shows it.
    pub default: &'static str,
    pub meaning: &'static str,
}

pub const KEYS: &[Key] = &[
    Key {
        name: "database_url",
        default: "none (SQLite `state.db` in the data dir)",
        meaning: "PostgreSQL 15+ store, `postgres://user:password@host:port/db`; `?sslmode=require` (with `sslrootcert=PATH`, else the system's roots) for TLS. Also `--database-url`",
    },
    Key {
        name: "control_listen",
        default: "`0.0.0.0:7443`",
        meaning: "gRPC listener (TLS) that clients dial",
    },
    Key {
        name: "operator_http_listen",
        default: "`127.0.0.1:7080`",
        meaning: "operator API and console; operator commands dial it too",
    },
    Key {
        name: "metrics_listen",
        default: "`127.0.0.1:7081`",
        meaning: "Prometheus `GET /metrics`, without authentication",
    },
    Key {
        name: "operator_http_public_origin",
        default: "none",
        meaning: "origin browsers use (`https://portunus.example.com`): CSRF checks and the cookie's `Secure` flag",
    },
    Key {
        name: "tls_cert_path",
        default: "`server.crt` in the data dir",
        meaning: "server certificate, generated on first serve when missing",
    },
    Key {
        name: "tls_key_path",
        default: "`server.key` in the data dir",
        meaning: "its key; refused unless mode 0600",
    },
    Key {
        name: "operator_token",
        default: "none",
        meaning: "legacy: on a store without superadmin, mints `_legacy` keyed to this token (its variable is the one the CLI sends as its token)",
    },
    Key {
        name: "shutdown_drain_timeout_secs",
        default: "30",
        meaning: "how long shutdown waits for requests and streams",
    },
    Key {
        name: "log_format",
        default: "`json`",
        meaning: "`json` or `compact` log lines on stderr",
    },
    Key {
        name: "range_rule_max_ports",
        default: "1024",
        meaning: "widest port range one rule may bind (1..=65535)",
    },
    Key {
        name: "udp_flow_idle_secs",
        default: "60",
        meaning: "idle UDP flows are reaped after this (30..=300)",
    },
    Key {
        name: "udp_max_flows_per_rule",
        default: "1024",
        meaning: "live UDP flows per rule; more are dropped and counted (1..=65535)",
    },
    Key {
        name: "advertised_endpoint",
        default: "none",
        meaning: "`host:port` clients dial (docs/advertised-endpoint.md)",
    },
    Key {
        name: "session_idle_timeout_secs",
        default: "28800 (8 h)",
        meaning: "a Web session unused this long ends (60..=2592000)",
    },
    Key {
        name: "session_max_lifetime_secs",
        default: "604800 (7 days)",
        meaning: "a Web session ends this long after sign-in (idle timeout..=31536000)",
    },
    Key {
        name: "audit_retention_days",
        default: "none (keep)",
        meaning: "audit rows older than this many days are deleted, hourly (1..=36500)",
    },
    Key {
        name: "audit_max_rows",
        default: "none (no cap)",
        meaning: "the oldest audit rows beyond this many are deleted, hourly (at least 1)",
    },
    Key {
        name: "traffic_minute_retention_days",
        default: "7",
        meaning: "1-minute traffic buckets older than this many days are deleted, hourly (1..=90)",
    },
    Key {
        name: "traffic_hour_retention_days",
        default: "90",
        meaning: "1-hour traffic buckets older than this many days are deleted, hourly (1..=3660)",
    },
];

/// `control_listen` → `PORTUNUS_CONTROL_LISTEN`.
pub fn env_var(key: &str) -> String {
    format!("PORTUNUS_{}", key.to_ascii_uppercase())
}

/// The TOML value a variable stands for. Variables are text; a key whose
/// type is a number or a boolean takes the text spelled as in TOML. The
/// type is whatever `FileConfig` accepts for the key, so the table needs
/// no type column to drift.
pub fn env_value(key: &str, raw: &str) -> anyhow::Result<toml::Value> {
    let accepts = |value: &toml::Value| {
        let mut table = toml::Table::new();
        table.insert(key.to_string(), value.clone());
        toml::Value::Table(table).try_into::<super::FileConfig>()
    };
    let text = toml::Value::String(raw.to_string());
    let refused = match accepts(&text) {
        Ok(_) => return Ok(text),
        Err(e) => e,
    };
    let spelled = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    match spelled {
        Some(value) if accepts(&value).is_ok() => Ok(value),
        _ => Err(refused.into()),
    }
}

/// The settings section of `serve --help`: markdown's backticks dropped.
pub fn help_text() -> String {
    let mut out = String::from(
        "Settings: each server.toml key, its environment variable (which beats the file; \
         a flag above beats both) and its default.\n",
    );
    for key in KEYS {
        out.push_str(&format!(
            "\n  {} ({}) [default: {}]\n          {}\n",
            key.name,
            env_var(key.name),
            key.default,
            key.meaning
        ));
    }
    out.replace('`', "")
}

/// The README's configuration table.
#[cfg(test)]
pub fn markdown_table() -> String {
    let mut out =
        String::from("| key | environment | default | meaning |\n| --- | --- | --- | --- |\n");
    for key in KEYS {
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            key.name,
            env_var(key.name),
            key.default,
            key.meaning
        ));
    }
    out
}
