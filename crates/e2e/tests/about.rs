//! What the binaries say about themselves: the version stamp, shell
//! completions and man pages, each checked by the tool that consumes it.

use portunus_e2e::bin;
use portunus_e2e::tools::*;
use std::process::Command;

/// Loads the binary's bash completion into a real bash and asks it to
/// complete `words`, the way bash does at a prompt: the function the
/// script registered with `complete -F`, called with COMP_WORDS and
/// COMP_CWORD set and the current and previous words as arguments.
fn bash_complete(name: &str, words: &[&str]) -> Vec<String> {
    const SCRIPT: &str = r#"
        source <("$BIN" completions bash) || exit 10
        spec=$(complete -p "$NAME") || exit 11
        fn=$(printf '%s\n' "$spec" | sed -E 's/.* -F ([^ ]+) .*/\1/')
        read -r -a COMP_WORDS <<< "$WORDS"
        [[ "$WORDS" == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        COMP_LINE="$WORDS"
        COMP_POINT=${#COMP_LINE}
        prev=""
        (( COMP_CWORD > 0 )) && prev="${COMP_WORDS[COMP_CWORD-1]}"
        "$fn" "$NAME" "${COMP_WORDS[COMP_CWORD]}" "$prev" || exit 12
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let out = run_tool(
        Command::new("bash")
            .args(["--noprofile", "--norc", "-c", SCRIPT])
            .env("BIN", bin(name))
            .env("NAME", name)
            .env("WORDS", words.join(" ")),
        "bash",
    );
    success_stdout(&out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_flags_of_both_binaries() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "portunus-server",
            &["portunus-server", "enr"],
            &["enroll-client"],
        ),
        (
            "portunus-server",
            &["portunus-server", "audit", "pr"],
            &["prune"],
        ),
        (
            "portunus-server",
            &["portunus-server", "push-rule", "--proto"],
            &["--protocol"],
        ),
        (
            "portunus-server",
            &["portunus-server", "completions", "fi"],
            &["fish"],
        ),
        ("portunus-client", &["portunus-client", "enr"], &["enroll"]),
        (
            "portunus-client",
            &["portunus-client", "--thr"],
            &["--threads"],
        ),
    ];
    for (name, words, want) in cases {
        assert_eq!(bash_complete(name, words), *want, "{words:?}");
    }
    // A bare Tab after the command offers every subcommand.
    let all = bash_complete("portunus-server", &["portunus-server", ""]);
    for sub in ["serve", "push-rule", "completions", "man", "audit"] {
        assert!(all.iter().any(|w| w == sub), "{sub} in {all:?}");
    }
}

#[test]
fn zsh_and_fish_scripts_name_every_subcommand() {
    for (name, subs) in [
        (
            "portunus-server",
            &["serve", "enroll-client", "push-rule"][..],
        ),
        ("portunus-client", &["enroll", "completions", "man"][..]),
    ] {
        let zsh = success_stdout(
            &Command::new(bin(name))
                .args(["completions", "zsh"])
                .output()
                .unwrap(),
        );
        assert!(zsh.starts_with(&format!("#compdef {name}")), "{zsh:.80}");
        let fish = success_stdout(
            &Command::new(bin(name))
                .args(["completions", "fish"])
                .output()
                .unwrap(),
        );
        for sub in subs {
            assert!(zsh.contains(&format!("'{sub}:")), "zsh {name} {sub}");
            assert!(fish.contains(&format!("-a \"{sub}\"")), "fish {name} {sub}");
        }
    }
}

#[test]
fn man_pages_come_from_the_command_definitions() {
    let page = success_stdout(
        &Command::new(bin("portunus-server"))
            .arg("man")
            .output()
            .unwrap(),
    );
    assert!(page.contains(".TH portunus-server 1"), "{page:.200}");
    assert!(page.contains(version_line("portunus-server").as_str()));
    let tmp = tempfile::tempdir().unwrap();
    install_man_pages(tmp.path());
    for page in [
        "portunus-server.1",
        "portunus-server-serve.1",
        "portunus-server-push-rule.1",
        "portunus-server-audit-prune.1",
        "portunus-client.1",
        "portunus-client-enroll.1",
    ] {
        let text = std::fs::read_to_string(tmp.path().join("man1").join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".SH SYNOPSIS"), "{page}");
    }
    let push =
        std::fs::read_to_string(tmp.path().join("man1/portunus-server-push-rule.1")).unwrap();
    assert!(
        push.contains("\\-\\-targets\\-json"),
        "flags are documented"
    );
    // serve's page lists every server.toml key with its variable.
    let serve = std::fs::read_to_string(tmp.path().join("man1/portunus-server-serve.1")).unwrap();
    for var in [
        "PORTUNUS_CONTROL_LISTEN",
        "PORTUNUS_SESSION_MAX_LIFETIME_SECS",
    ] {
        assert!(serve.contains(var), "{var} in the serve page");
    }
}

/// What `--version` prints after the binary's name.
fn version_line(name: &str) -> String {
    let text = success_stdout(&Command::new(bin(name)).arg("--version").output().unwrap());
    text.trim()
        .strip_prefix(&format!("{name} "))
        .unwrap_or_else(|| panic!("{text:?}"))
        .to_string()
}

#[test]
fn version_names_release_commit_and_build_date() {
    let server = version_line("portunus-server");
    assert_eq!(server, version_line("portunus-client"), "one build");
    let (release, rest) = server.split_once(" (commit ").expect(&server);
    let (commit, date) = rest
        .strip_suffix(')')
        .and_then(|r| r.split_once(", built "))
        .expect(&server);
    assert_eq!(release, env!("CARGO_PKG_VERSION"));
    let ymd: Vec<&str> = date.split('-').collect();
    assert!(
        ymd.len() == 3 && ymd.iter().all(|p| p.parse::<u32>().is_ok()),
        "{date}"
    );
    let head = Command::new("git")
        .args(["rev-parse", "--short=10", "HEAD"])
        .current_dir(repo_root())
        .output();
    match head {
        Ok(out) if out.status.success() => assert_eq!(
            commit,
            String::from_utf8_lossy(&out.stdout).trim(),
            "the binaries are of another commit: rebuild them (cargo build --workspace)"
        ),
        _ => assert_eq!(commit, "unknown"),
    }
}
