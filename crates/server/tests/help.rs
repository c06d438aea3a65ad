//! Its presence makes Cargo build the `portunus-server` binary for the
//! process-level tests in crates/e2e.

#[test]
fn help_lists_the_documented_subcommands() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portunus-server"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for cmd in [
        "serve",
        "gen-token",
        "bootstrap-superadmin",
        "enroll-client",
        "revoke",
        "list-clients",
        "push-rule",
        "remove-rule",
        "list-rules",
        "rule-stats",
        "get-rule",
        "update-rule",
        "disable-rule",
        "enable-rule",
        "get-client",
        "re-enroll",
        "rename-client",
        "delete-client",
        "set-client-address",
        "user-update",
        "onboarding-token",
        "user-add",
        "user-list",
        "user-get",
        "user-remove",
        "reset-password",
        "credential-issue",
        "credential-list",
        "credential-revoke",
        "credential-rotate",
        "grant-add",
        "grant-list",
        "grant-revoke",
        "audit",
    ] {
        assert!(help.contains(cmd), "{cmd} missing from --help");
    }
}
