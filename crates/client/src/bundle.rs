//! The credential bundle written by `enroll` and read by the daemon: where
//! it lives, how it is written (atomically, mode 0600) and how it is loaded
//! (refused when group or others can read it).

use crate::pin::CertPin;
use portunus_domain::endpoint::Endpoint;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const BUNDLE_VERSION: u32 = 1;
const FILE_NAME: &str = "client.bundle.json";

/// The bearer credential. It has no `Display` and a redacted `Debug`, so
/// it cannot reach a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    pub fn new(token: String) -> Token {
        Token(token)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The on-disk form, field for field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    pub version: u32,
    pub client_id: String,
    pub client_name: String,
    pub server_endpoint: String,
    pub server_cert_sha256: String,
    pub token: Token,
}

/// A bundle whose fields have been checked and parsed.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub client_id: String,
    pub client_name: String,
    pub endpoint: Endpoint,
    pub pin: CertPin,
    pub token: Token,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("no credential bundle found; tried: {}", list(.tried))]
    NotFound { tried: Vec<PathBuf> },
    #[error("cannot read bundle {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "bundle {} has mode {mode:04o}, readable by group or others; it holds a bearer token, run `chmod 600 {}`",
        .path.display(), .path.display()
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("bundle {} is not valid JSON ({why})", .path.display())]
    Syntax { path: PathBuf, why: String },
    #[error("bundle {} is invalid: {why}", .path.display())]
    Invalid { path: PathBuf, why: String },
    #[error("cannot write bundle {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
}

fn list(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

impl Bundle {
    pub fn into_credentials(self, path: &Path) -> Result<Credentials, BundleError> {
        let invalid = |why: String| BundleError::Invalid {
            path: path.to_path_buf(),
            why,
        };
        if self.version != BUNDLE_VERSION {
            return Err(invalid(format!(
                "version {} is not supported (this client reads version {BUNDLE_VERSION})",
                self.version
            )));
        }
        let endpoint = Endpoint::parse(&self.server_endpoint)
            .map_err(|e| invalid(format!("server_endpoint: {}", e.message)))?;
        let pin = CertPin::parse_hex(&self.server_cert_sha256)
            .map_err(|e| invalid(format!("server_cert_sha256: {e}")))?;
        if self.token.expose().is_empty() {
            return Err(invalid("token is empty".to_string()));
        }
        Ok(Credentials {
            client_id: self.client_id,
            client_name: self.client_name,
            endpoint,
            pin,
            token: self.token,
        })
    }
}

/// Where the daemon looks for a bundle, in order. `env` is the environment
/// lookup, injected so tests need not mutate the process environment.
pub fn search_paths(env: impl Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(explicit) = env("PORTUNUS_CLIENT_BUNDLE").filter(|v| !v.is_empty()) {
        paths.push(PathBuf::from(explicit));
    }
    paths.extend(
        config_dirs(&env)
            .into_iter()
            .map(|d| d.join("portunus").join(FILE_NAME)),
    );
    paths.push(Path::new(".").join(FILE_NAME));
    paths
}

/// Where `enroll` writes when no `--out` is given: the first config
/// directory that the environment names.
pub fn default_path(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    config_dirs(&env)
        .into_iter()
        .next()
        .map(|d| d.join("portunus").join(FILE_NAME))
}

/// `$XDG_CONFIG_HOME`, then `$HOME/.config`. A relative `XDG_CONFIG_HOME`
/// is ignored, as the XDG base-directory specification requires.
fn config_dirs(env: &impl Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(xdg) = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        dirs.push(xdg);
    }
    if let Some(home) = env("HOME").filter(|v| !v.is_empty()) {
        dirs.push(PathBuf::from(home).join(".config"));
    }
    dirs
}

pub fn load(path: &Path) -> Result<Credentials, BundleError> {
    let read_err = |source| BundleError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(read_err)?;
    // The mode is taken from the open file, so it is the mode of what is read.
    let meta = file.metadata().map_err(read_err)?;
    if meta.is_dir() {
        return Err(read_err(io::Error::other(
            "it is a directory; give the path of the bundle file (client.bundle.json)",
        )));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(BundleError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    let bundle: Bundle = serde_json::from_reader(io::BufReader::new(file)).map_err(|e| {
        // serde_json can quote offending values; only the position is kept
        // so that a malformed file never echoes its token.
        BundleError::Syntax {
            path: path.to_path_buf(),
            why: format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ),
        }
    })?;
    bundle.into_credentials(path)
}

/// Checks that the bundle can be written, so that `enroll` fails before it
/// spends its one-time code rather than after.
pub fn preflight(path: &Path) -> Result<(), BundleError> {
    let write_err = |source| BundleError::Write {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        return Err(write_err(io::Error::other("it is a directory")));
    }
    let dir = create_parent(path).map_err(write_err)?;
    let probe = temp_path(&dir, path);
    create_private(&probe).map_err(write_err)?;
    fs::remove_file(&probe).map_err(write_err)
}

/// Writes the bundle so that a reader sees either the old file or the
/// complete new one, and never a moment where the token is world-readable.
pub fn write_atomic(path: &Path, bundle: &Bundle) -> Result<(), BundleError> {
    let write_err = |source| BundleError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = create_parent(path).map_err(write_err)?;
    let mut json = serde_json::to_vec_pretty(bundle).map_err(|e| write_err(e.into()))?;
    json.push(b'\n');
    let tmp = temp_path(&dir, path);
    let result = (|| {
        let mut file = create_private(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        // Persist the rename itself; a failure here leaves a complete file.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(write_err)
}

/// Creates missing parent directories as 0700; existing ones are left as
/// they are.
fn create_parent(path: &Path) -> io::Result<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    Ok(dir)
}

/// A fresh name next to `path`, so that the final rename stays on one
/// file system.
fn temp_path(dir: &Path, path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(
        ".{name}.{}.{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ))
}

fn create_private(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests;
