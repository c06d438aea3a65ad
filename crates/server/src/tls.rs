//! The server's TLS identity: generated on first serve, loaded thereafter,
//! and pinned by clients through the SHA-256 of the leaf certificate.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub struct TlsMaterial {
    pub cert_pem: String,
    pub key_pem: String,
    /// DER of the leaf certificate, the thing clients pin.
    pub leaf_der: Vec<u8>,
}

impl TlsMaterial {
    /// Lowercase hex SHA-256 of the leaf DER.
    pub fn pin(&self) -> String {
        hex::encode(Sha256::digest(&self.leaf_der))
    }
}

fn local_hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_ascii_lowercase();
    portunus_domain::names::is_dns_name(&name).then_some(name)
}

/// Creates a self-signed certificate (SAN: hostname, localhost, 127.0.0.1)
/// and its key when both are missing and `may_generate` (the default
/// paths). The key is written 0600. A new identity makes every enrolled
/// client fail its pin, so a configured path that is missing, or a key
/// without its certificate, is an error instead.
pub fn ensure_generated(cert_path: &Path, key_path: &Path, may_generate: bool) -> Result<bool> {
    if cert_path.exists() {
        return Ok(false);
    }
    if !may_generate {
        bail!(
            "the TLS certificate {} (tls_cert_path in server.toml) does not exist; \
             restore it, or remove tls_cert_path and tls_key_path to use a generated one",
            cert_path.display()
        );
    }
    if key_path.exists() {
        bail!(
            "the TLS certificate {} is missing but its key {} exists; restore the certificate \
             (a new identity would make every enrolled client fail its pin), or move the key \
             away to generate both",
            cert_path.display(),
            key_path.display()
        );
    }
    let mut names: Vec<String> = local_hostname().into_iter().collect();
    if !names.iter().any(|n| n == "localhost") {
        names.push("localhost".into());
    }
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse()?));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "portunus-server");
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    write_new(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_new(cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(true)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Loads the certificate and key, refusing a key readable by anyone but
/// its owner.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<TlsMaterial> {
    let meta = std::fs::metadata(key_path)
        .with_context(|| format!("cannot read TLS key {}", key_path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "TLS key {} has mode {mode:04o}; it must not be readable by group or others (chmod 600)",
            key_path.display()
        );
    }
    let cert_pem = std::fs::read_to_string(cert_path)
        .with_context(|| format!("cannot read TLS certificate {}", cert_path.display()))?;
    let key_pem = std::fs::read_to_string(key_path)
        .with_context(|| format!("cannot read TLS key {}", key_path.display()))?;
    let leaf_der = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .next()
        .context("no certificate in the TLS certificate file")?
        .context("malformed TLS certificate")?
        .to_vec();
    Ok(TlsMaterial {
        cert_pem,
        key_pem,
        leaf_der,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_refuses_loose_key() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("server.crt"), dir.path().join("server.key"));
        assert!(ensure_generated(&c, &k, true).unwrap());
        assert!(!ensure_generated(&c, &k, true).unwrap());
        let mode = std::fs::metadata(&k).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let m = load(&c, &k).unwrap();
        assert_eq!(m.pin().len(), 64);
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = load(&c, &k).err().unwrap().to_string();
        assert!(err.contains("0640"), "{err}");
    }

    #[test]
    fn a_missing_certificate_is_generated_only_where_that_is_safe() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("server.crt"), dir.path().join("server.key"));
        let err = ensure_generated(&c, &k, false).unwrap_err().to_string();
        assert!(
            err.contains("tls_cert_path") && err.contains("server.crt"),
            "{err}"
        );
        assert!(!c.exists() && !k.exists(), "nothing was minted");
        assert!(ensure_generated(&c, &k, true).unwrap());
        std::fs::remove_file(&c).unwrap();
        let err = ensure_generated(&c, &k, true).unwrap_err().to_string();
        assert!(
            err.contains("certificate") && err.contains("its key"),
            "{err}"
        );
        assert!(!err.contains("File exists"), "{err}");
    }
}
