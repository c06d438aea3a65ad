//! `completions <shell>` and `man [--out-dir DIR]`, the same for both
//! binaries: each passes its own `clap::Command`.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The two documentation subcommands, flattened into each binary's CLI.
#[derive(Debug, clap::Subcommand)]
pub enum DocsCommand {
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for; source the output from its startup file.
        shell: clap_complete::Shell,
    },
    /// Print the man page, or write every command's page with --out-dir.
    Man {
        /// Write one page per command (NAME.1, NAME-SUBCOMMAND.1, ...) into
        /// this directory instead of printing the main page.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

impl DocsCommand {
    /// Prints (or, for `man --out-dir`, writes) what was asked for.
    pub fn run(&self, cmd: clap::Command) -> std::io::Result<()> {
        let text = match self {
            DocsCommand::Completions { shell } => completion_script(*shell, cmd),
            DocsCommand::Man { out_dir } => man_pages(cmd, out_dir.as_deref())?,
        };
        // Generated into memory first: the generators panic on a write
        // error, and a closed pipe (`| head`) deserves a message instead.
        let mut out = std::io::stdout().lock();
        out.write_all(&text)?;
        out.flush()
    }
}

/// The completion script of `cmd` for `shell`.
pub fn completion_script(shell: clap_complete::Shell, mut cmd: clap::Command) -> Vec<u8> {
    let name = cmd.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, &name, &mut script);
    if shell == clap_complete::Shell::Bash {
        script = fix_bash_hyphenated_name(&name, script);
    }
    script
}

/// clap_complete's bash script tracks the command path in `$cmd` with the
/// binary's hyphens spelled `__` (`portunus__server__subcmd__audit`), but
/// labels its case arms with them spelled `__subcmd__`
/// (`portunus__subcmd__server__subcmd__audit`), so nothing after the first
/// word completes for a hyphenated name. Respelling the arms the way `$cmd`
/// is built repairs it, and is a no-op once the generator agrees with
/// itself.
fn fix_bash_hyphenated_name(name: &str, script: Vec<u8>) -> Vec<u8> {
    let Ok(text) = String::from_utf8(script.clone()) else {
        return script;
    };
    let wrong = format!("{}__subcmd__", name.replace('-', "__subcmd__"));
    let right = format!("{}__subcmd__", name.replace('-', "__"));
    text.replace(&wrong, &right).into_bytes()
}

/// The main man page of `cmd`; with `out_dir`, every command's page is
/// written there instead and nothing is returned.
pub fn man_pages(cmd: clap::Command, out_dir: Option<&Path>) -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    match out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(cmd, dir)?;
        }
        None => clap_mangen::Man::new(cmd).render(&mut page)?,
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &'static str) -> clap::Command {
        clap::Command::new(name)
            .subcommand(clap::Command::new("audit").subcommand(clap::Command::new("prune")))
    }

    #[test]
    fn bash_case_arms_match_the_path_variable_for_hyphenated_names() {
        for name in ["portunus-server", "a-b-c", "plain"] {
            let script =
                String::from_utf8(completion_script(clap_complete::Shell::Bash, sample(name)))
                    .unwrap();
            let escaped = name.replace('-', "__");
            let path = format!("{escaped}__subcmd__audit__subcmd__prune");
            assert!(script.contains(&format!("cmd=\"{path}\"")), "{name}");
            assert!(script.contains(&format!("        {path})")), "{name}");
            assert!(!script.contains("__subcmd__server__"), "{name}");
        }
    }
}
