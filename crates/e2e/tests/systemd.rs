//! The systemd units in deploy/systemd, checked by systemd's own tools.

use portunus_e2e::bin;
use portunus_e2e::tools::*;
use std::process::Command;

fn unit_text(name: &str) -> String {
    repo_file(&format!("deploy/systemd/{name}.service"))
}

/// The units as shipped, with one change: ExecStart names the binary this
/// build produced, because `verify` checks that the program exists. Their
/// `Documentation=man:` pages are the ones the binaries generate, found
/// through MANPATH, because `verify` runs `man` on them too.
#[test]
fn units_pass_systemd_analyze_verify_and_the_exposure_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    install_man_pages(&tmp.path().join("man"));
    for name in BINARIES {
        let shipped = unit_text(name);
        let exec = format!("ExecStart=/usr/local/bin/{name}");
        assert_eq!(shipped.matches(&exec).count(), 1, "{name}: {exec}");
        let built = format!("ExecStart={}", bin(name).display());
        let unit = tmp.path().join(format!("{name}.service"));
        std::fs::write(&unit, shipped.replace(&exec, &built)).unwrap();

        let out = run_tool(
            Command::new("systemd-analyze")
                .arg("verify")
                .arg(&unit)
                .env("MANPATH", tmp.path().join("man")),
            "systemd",
        );
        let complaints = String::from_utf8_lossy(&out.stderr);
        // verify exits 0 on ignored bad lines too; any message is a defect.
        assert!(
            out.status.success() && complaints.trim().is_empty(),
            "systemd-analyze verify {name}: {}\n{complaints}",
            out.status
        );

        // 2.0 on systemd's 0-10 exposure scale ("OK"); the threshold is in
        // tenths. Dropping a hardening line pushes a unit over it.
        let out = run_tool(
            Command::new("systemd-analyze")
                .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
                .arg(&unit),
            "systemd",
        );
        assert!(
            out.status.success(),
            "{name} is exposed beyond 2.0:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

fn directives(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn units_keep_the_promised_user_state_and_capabilities() {
    let common = [
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("Restart", "on-failure"),
    ];
    let own = [
        (
            "portunus-server",
            [
                ("User", "portunus"),
                ("StateDirectory", "portunus"),
                ("CapabilityBoundingSet", ""),
                ("AmbientCapabilities", ""),
                ("LimitNOFILE", "65536"),
            ],
        ),
        (
            "portunus-client",
            [
                ("User", "portunus-client"),
                ("StateDirectory", "portunus-client"),
                ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
                ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
                ("LimitNOFILE", "1048576"),
            ],
        ),
    ];
    for (name, wanted) in own {
        let found = directives(&unit_text(name));
        for (key, value) in common.iter().chain(wanted.iter()) {
            let values: Vec<&str> = found
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(values, [*value], "{name}: {key}");
        }
        // Neither binary re-reads anything on SIGHUP, which would end it.
        assert!(!found.iter().any(|(k, _)| k == "ExecReload"), "{name}");
    }
}
