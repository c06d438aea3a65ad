use super::*;
use crate::first_run::{plan, Start};
use std::collections::HashMap;

/// The daemon's search without a `--bundle` or an enrollment URI.
fn find(candidates: Vec<PathBuf>) -> Start {
    plan(None, candidates, false, |p| p.is_file())
}

fn sample() -> Bundle {
    Bundle {
        version: 1,
        client_id: "01J8XABCDEF".into(),
        client_name: "edge-01".into(),
        server_endpoint: "proxy.example.com:7443".into(),
        server_cert_sha256: CertPin::of_der(b"cert").to_string(),
        token: Token::new("tok-SECRET-value".into()),
    }
}

fn env_of(vars: &[(&str, &Path)]) -> impl Fn(&str) -> Option<OsString> {
    let map: HashMap<String, OsString> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_os_str().to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn write_creates_private_file_and_dirs_and_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a/b/client.bundle.json");
    write_atomic(&path, &sample()).unwrap();

    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(mode_of(&tmp.path().join("a")), 0o700);
    assert_eq!(mode_of(&tmp.path().join("a/b")), 0o700);
    let on_disk: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(on_disk["version"], 1);
    assert_eq!(on_disk["token"], "tok-SECRET-value");
    assert_eq!(on_disk.as_object().unwrap().len(), 6);

    let creds = load(&path).unwrap();
    assert_eq!(creds.client_id, "01J8XABCDEF");
    assert_eq!(creds.client_name, "edge-01");
    assert_eq!(creds.endpoint.to_string(), "proxy.example.com:7443");
    assert_eq!(creds.pin, CertPin::of_der(b"cert"));
    assert_eq!(creds.token.expose(), "tok-SECRET-value");
    assert!(!format!("{creds:?}").contains("SECRET"));

    let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "temporary file left behind");
}

#[test]
fn write_replaces_a_looser_existing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("client.bundle.json");
    fs::write(&path, "old").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    write_atomic(&path, &sample()).unwrap();
    assert_eq!(mode_of(&path), 0o600);
    assert!(load(&path).is_ok());
}

#[test]
fn a_directory_given_as_the_bundle_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let err = load(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("it is a directory"), "{err}");
    assert!(!err.contains("chmod"), "{err}");
}

#[test]
fn load_refuses_files_readable_by_others() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("client.bundle.json");
    write_atomic(&path, &sample()).unwrap();
    for mode in [0o640, 0o604, 0o660, 0o644] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let err = load(&path).unwrap_err();
        assert!(
            matches!(err, BundleError::TooOpen { .. }),
            "{mode:o}: {err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    assert!(load(&path).is_ok());
}

#[test]
fn load_rejects_invalid_content_without_echoing_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("client.bundle.json");
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (serde_json::json!({"version": 2}), "version 2"),
        (
            serde_json::json!({"server_endpoint": "https://x:1"}),
            "server_endpoint",
        ),
        (
            serde_json::json!({"server_cert_sha256": "ABC"}),
            "server_cert_sha256",
        ),
        (serde_json::json!({"token": ""}), "token is empty"),
        (serde_json::json!({"version": "tok-SECRET-value"}), "line"),
    ];
    for (patch, expected) in cases {
        let mut value = serde_json::to_value(sample()).unwrap();
        for (k, v) in patch.as_object().unwrap() {
            value[k] = v.clone();
        }
        fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains(expected), "{patch}: {err}");
        assert!(!err.contains("SECRET"), "{patch}: {err}");
    }
}

#[test]
fn search_order_follows_env_then_xdg_then_home_then_cwd() {
    let tmp = tempfile::tempdir().unwrap();
    let explicit = tmp.path().join("explicit.json");
    let xdg = tmp.path().join("xdg");
    let home = tmp.path().join("home");
    let env = env_of(&[
        ("PORTUNUS_CLIENT_BUNDLE", &explicit),
        ("XDG_CONFIG_HOME", &xdg),
        ("HOME", &home),
    ]);
    let paths = search_paths(&env);
    assert_eq!(
        paths,
        vec![
            explicit.clone(),
            xdg.join("portunus/client.bundle.json"),
            home.join(".config/portunus/client.bundle.json"),
            PathBuf::from("./client.bundle.json"),
        ]
    );

    // Nothing exists yet (the cwd candidate is relative and the test's cwd
    // is the crate directory, which holds no bundle): every path is listed.
    let msg = match find(paths[..3].to_vec()) {
        Start::Missing(tried) => BundleError::NotFound { tried }.to_string(),
        other => panic!("{other:?}"),
    };
    for p in &paths[..3] {
        assert!(msg.contains(&p.display().to_string()), "{msg}");
    }

    let home_file = home.join(".config/portunus/client.bundle.json");
    write_atomic(&home_file, &sample()).unwrap();
    assert_eq!(find(search_paths(&env)), Start::Use(home_file));

    let xdg_file = xdg.join("portunus/client.bundle.json");
    write_atomic(&xdg_file, &sample()).unwrap();
    assert_eq!(find(search_paths(&env)), Start::Use(xdg_file));

    write_atomic(&explicit, &sample()).unwrap();
    assert_eq!(find(search_paths(&env)), Start::Use(explicit));
}

#[test]
fn search_skips_unset_empty_and_relative_entries() {
    let home = Path::new("/home/edge");
    let env = env_of(&[
        ("PORTUNUS_CLIENT_BUNDLE", Path::new("")),
        ("XDG_CONFIG_HOME", Path::new("rel")),
        ("HOME", home),
    ]);
    assert_eq!(
        search_paths(&env),
        vec![
            home.join(".config/portunus/client.bundle.json"),
            PathBuf::from("./client.bundle.json")
        ]
    );
    assert_eq!(
        search_paths(env_of(&[])),
        vec![PathBuf::from("./client.bundle.json")]
    );
}

#[test]
fn default_out_path_prefers_xdg_then_home() {
    let xdg = Path::new("/x");
    let home = Path::new("/h");
    assert_eq!(
        default_path(env_of(&[("XDG_CONFIG_HOME", xdg), ("HOME", home)])),
        Some(PathBuf::from("/x/portunus/client.bundle.json"))
    );
    assert_eq!(
        default_path(env_of(&[("HOME", home)])),
        Some(PathBuf::from("/h/.config/portunus/client.bundle.json"))
    );
    assert_eq!(default_path(env_of(&[])), None);
}
