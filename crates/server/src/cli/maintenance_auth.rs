//! Access maintenance on the data dir, for when no server runs: password
//! recovery, the first-run setup token and audit pruning. Each takes the
//! data-dir lock first (exit 75 while a server holds it).

use super::offline::open_locked;
use crate::datadir::{self, DirLock};
use crate::serve::open_store_at;
use crate::store::{audit, credentials, sessions, users, write_tx};
use crate::{bootstrap, passwords};
use anyhow::Result;
use portunus_domain::{DomainError, ErrorCode};
use std::io::BufRead;
use std::path::Path;

pub fn onboarding_token(data_dir: &Path) -> Result<()> {
    let (_lock, store) = open_locked(data_dir)?;
    let token = store.blocking(bootstrap::rotate_setup_token)?;
    eprintln!(
        "Setup token, valid 30 minutes. `serve` replaces it when it starts, so use it with a server started since:"
    );
    println!("{token}");
    Ok(())
}

fn no_user(user_id: &str) -> DomainError {
    DomainError::new(
        ErrorCode::UserNotFound,
        format!("no user {user_id:?} in this store; reset-password never creates users"),
    )
}

/// The new password: from stdin's first line, generated, or typed twice.
/// Returns it and whether it was generated.
fn new_password(temporary: bool, password_stdin: bool) -> Result<(String, bool)> {
    if password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let pw = line.trim_end_matches(['\n', '\r']).to_string();
        return Ok((pw, false));
    }
    if temporary {
        return Ok((passwords::temporary(), true));
    }
    let first = rpassword::prompt_password("New password: ")?;
    let second = rpassword::prompt_password("Repeat the new password: ")?;
    if first != second {
        return Err(
            DomainError::new(ErrorCode::InvalidRequest, "the passwords do not match").into(),
        );
    }
    Ok((first, false))
}

pub fn reset_password(
    data_dir: &Path,
    user_id: &str,
    temporary: bool,
    password_stdin: bool,
    keep_api_tokens: bool,
) -> Result<()> {
    // Nothing is created for a data dir or store that does not exist.
    let location = crate::serve::store_location(data_dir)?;
    let on_file = matches!(location, crate::store::Location::File(_));
    if on_file && !datadir::db_path(data_dir).exists() {
        return Err(no_user(user_id).into());
    }
    // No data dir, no server holding it: nothing to lock, nothing created.
    let _lock = match data_dir.exists() {
        true => Some(DirLock::acquire(data_dir)?),
        false => None,
    };
    let store = open_store_at(data_dir, &location)?;
    if !store.blocking(|c| users::exists(c, user_id))? {
        return Err(no_user(user_id).into());
    }
    let (password, generated) = new_password(temporary, password_stdin)?;
    if !generated {
        passwords::check_policy("password", &password)?;
    }
    let phc = passwords::hash(&password)?;
    let (ended, revoked) = store.blocking(|c| {
        write_tx(c, |tx| {
            users::set_password(tx, user_id, &phc, temporary)?;
            let ended = sessions::delete_for_user(tx, user_id)?;
            let revoked = match keep_api_tokens {
                true => 0,
                false => credentials::revoke_all(tx, user_id)?,
            };
            Ok((ended, revoked))
        })
    })?;
    let tokens = match keep_api_tokens {
        true => "kept its API tokens".to_string(),
        false => format!("revoked {revoked} API token(s)"),
    };
    eprintln!("Password of {user_id} reset; ended {ended} Web session(s), {tokens}.");
    if generated {
        eprintln!("Temporary password, shown once; it must be changed at the next login:");
        println!("{password}");
    } else if temporary {
        eprintln!("The password is temporary: it must be changed at the next login.");
    }
    Ok(())
}

pub fn audit_prune(data_dir: &Path, before: &str, dry_run: bool) -> Result<()> {
    let before_ms = crate::timefmt::parse_rfc3339_ms("before", before)?;
    let (_lock, store) = open_locked(data_dir)?;
    let n = store.blocking(|c| write_tx(c, |tx| audit::prune(tx, before_ms, dry_run)))?;
    if dry_run {
        println!("would prune {n} audit row(s) before {before} (dry run)");
    } else {
        println!("pruned {n} audit row(s) before {before}");
    }
    Ok(())
}
