use super::*;

#[test]
fn unknown_key_is_named() {
    let err = FileConfig::parse("control_listen = \"127.0.0.1:1\"\nbogus_key = 1\n").unwrap_err();
    assert!(err.to_string().contains("bogus_key"), "{err}");
}

#[test]
fn defaults_and_ranges() {
    let dir = Path::new("/d");
    let c = FileConfig::default().resolve(dir).unwrap();
    assert_eq!(c.control_listen.to_string(), "0.0.0.0:7443");
    assert_eq!(c.operator_http_listen.to_string(), "127.0.0.1:7080");
    assert_eq!(c.tls_key_path, dir.join("server.key"));
    assert_eq!(c.udp_flow_idle_secs, 60);
    assert_eq!(
        (c.sessions.idle_secs, c.sessions.max_secs),
        (8 * 3600, 7 * 86400)
    );
    let short = FileConfig::parse("session_max_lifetime_secs = 600")
        .unwrap()
        .resolve(dir);
    assert!(short.is_err(), "a lifetime shorter than the idle timeout");
    let bad = FileConfig::parse("udp_flow_idle_secs = 10")
        .unwrap()
        .resolve(dir);
    assert!(bad.is_err());
    let bad = FileConfig::parse("udp_max_flows_per_rule = 0")
        .unwrap()
        .resolve(dir);
    assert!(bad.is_err());
    assert!(c.audit_retention.is_unlimited());
    for bad in ["audit_retention_days = 0", "audit_max_rows = 0"] {
        let refused = FileConfig::parse(bad).unwrap().resolve(dir);
        assert!(refused.is_err(), "{bad}");
    }
    let kept = FileConfig::parse("audit_retention_days = 90\naudit_max_rows = 1000000")
        .unwrap()
        .resolve(dir)
        .unwrap();
    assert_eq!(kept.audit_retention.max_age_days, Some(90));
    assert_eq!(kept.audit_retention.max_rows, Some(1_000_000));
}

#[test]
fn traffic_retention_defaults_and_bounds() {
    let dir = Path::new("/data");
    let c = FileConfig::default().resolve(dir).unwrap();
    assert_eq!(
        (
            c.traffic_retention.minute_days,
            c.traffic_retention.hour_days
        ),
        (7, 90)
    );
    for bad in [
        "traffic_minute_retention_days = 0",
        "traffic_minute_retention_days = 91",
        "traffic_hour_retention_days = 0",
        "traffic_hour_retention_days = 3661",
    ] {
        let refused = FileConfig::parse(bad).unwrap().resolve(dir);
        assert!(refused.is_err(), "{bad}");
    }
    let kept =
        FileConfig::parse("traffic_minute_retention_days = 2\ntraffic_hour_retention_days = 400")
            .unwrap()
            .resolve(dir)
            .unwrap();
    assert_eq!(
        (
            kept.traffic_retention.minute_days,
            kept.traffic_retention.hour_days
        ),
        (2, 400)
    );
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |var| pairs.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
}

/// A value each key accepts, as its variable spells it.
fn example(key: &str) -> &'static str {
    match key {
        "control_listen" | "operator_http_listen" | "metrics_listen" => "127.0.0.1:9",
        "operator_http_public_origin" => "https://portunus.example.com",
        "tls_cert_path" | "tls_key_path" => "/etc/portunus/tls.pem",
        "operator_token" => "12345",
        "log_format" => "compact",
        "advertised_endpoint" => "edge.example.com:7443",
        "udp_flow_idle_secs" => "45",
        _ => "3600",
    }
}

#[test]
fn the_key_table_lists_exactly_the_fields_of_server_toml() {
    let fields = serde_json::to_value(FileConfig::default()).unwrap();
    let fields: Vec<&str> = fields
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut listed: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
    listed.sort();
    let mut fields = fields;
    fields.sort();
    assert_eq!(listed, fields);
}

#[test]
fn every_key_is_set_by_its_variable_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for key in KEYS {
        let value = example(key.name);
        let var = env_var(key.name);
        let loaded = FileConfig::load_with(dir.path(), env_of(&[(&var, value)])).unwrap();
        let json = serde_json::to_value(&loaded).unwrap();
        let got = match &json[key.name] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(got, value, "{var}");
    }
    // The variable beats the file; an empty variable is no variable.
    std::fs::write(
        dir.path().join("server.toml"),
        "control_listen = \"127.0.0.1:1\"\nudp_flow_idle_secs = 90\n",
    )
    .unwrap();
    let env = env_of(&[
        ("PORTUNUS_CONTROL_LISTEN", "127.0.0.1:2"),
        ("PORTUNUS_UDP_FLOW_IDLE_SECS", ""),
    ]);
    let c = FileConfig::load_with(dir.path(), env).unwrap();
    assert_eq!(c.control_listen.unwrap().port(), 2);
    assert_eq!(c.udp_flow_idle_secs, Some(90));
}

#[test]
fn a_bad_variable_is_named_and_unknown_file_keys_still_fail() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("PORTUNUS_UDP_FLOW_IDLE_SECS", "soon"),
        ("PORTUNUS_CONTROL_LISTEN", "nowhere"),
        ("PORTUNUS_LOG_FORMAT", "xml"),
    ] {
        let err = FileConfig::load_with(dir.path(), env_of(&[(var, value)])).unwrap_err();
        assert!(format!("{err:#}").contains(var), "{err:#}");
    }
    std::fs::write(dir.path().join("server.toml"), "bogus_key = 1\n").unwrap();
    let err = FileConfig::load_with(dir.path(), env_of(&[])).unwrap_err();
    assert!(format!("{err:#}").contains("bogus_key"), "{err:#}");
}

/// The README shows the table rendered from `KEYS`, between two markers.
/// `UPDATE_DOCS=1 cargo test` rewrites it there.
#[test]
fn the_readme_shows_the_key_table() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = (
        "<!-- server.toml keys: start -->\n",
        "<!-- server.toml keys: end -->",
    );
    let from = readme.find(start).expect("start marker") + start.len();
    let to = readme.find(end).expect("end marker");
    let table = markdown_table();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(
            &path,
            format!("{}{table}{}", &readme[..from], &readme[to..]),
        )
        .unwrap();
        return;
    }
    assert_eq!(
        readme[from..to],
        table,
        "the README's table is stale; run UPDATE_DOCS=1 cargo test -p portunus-server config"
    );
}
