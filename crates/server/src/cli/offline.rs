//! Commands that open the store directly. Each takes the data-dir lock
//! first, so none runs beside a server of the same data dir (exit 75),
//! whichever engine holds the store.

use crate::datadir::{self, DirLock};
use crate::serve::open_store;
use anyhow::{Context, Result};
use std::path::Path;

/// Locks the data dir (creating it) and opens its store.
pub fn open_locked(data_dir: &Path) -> Result<(DirLock, crate::store::Store)> {
    datadir::ensure_dir(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let lock = DirLock::acquire(data_dir)?;
    let store = open_store(data_dir)?;
    Ok((lock, store))
}

pub fn bootstrap_superadmin(data_dir: &Path, name: &str) -> Result<()> {
    let (_lock, store) = open_locked(data_dir)?;
    let token = store.blocking(|c| crate::bootstrap::bootstrap_superadmin(c, name))?;
    eprintln!("Created superadmin _superadmin. This token is shown once; store it now:");
    println!("{token}");
    Ok(())
}

/// Creates an enrollment directly on the store, for when no server runs.
/// The endpoint comes from the stored override, the seed in server.toml or
/// the environment, else loopback on the configured control port; there is
/// no request `Host` to derive from. Explicit values are checked against
/// the SANs of the certificate on disk, as the server would.
pub fn enroll_client(
    data_dir: &Path,
    lock: DirLock,
    name: &str,
    address: Option<&str>,
    ttl_secs: Option<i64>,
) -> Result<crate::enrollment::Created> {
    let _lock = lock;
    let config = crate::config::FileConfig::load(data_dir)?.resolve(data_dir)?;
    crate::tls::ensure_generated(
        &config.tls_cert_path,
        &config.tls_key_path,
        !config.tls_configured,
    )?;
    let material = crate::tls::load(&config.tls_cert_path, &config.tls_key_path)?;
    let store = open_store(data_dir)?;
    let resolver = crate::advertised::EndpointResolver::new(
        config.advertised_endpoint.clone(),
        crate::san::SanSet::of_served(&material.leaf_der),
        config.control_listen.port(),
    );
    let pin = material.pin();
    crate::enrollment::validate_request(name, address, ttl_secs)?;
    let created = store.blocking(|conn| {
        let over = crate::store::settings::get(conn, crate::store::settings::ADVERTISED_ENDPOINT)?;
        let endpoint = resolver.resolve(over.as_deref())?;
        if endpoint.source == crate::advertised::Source::Loopback && config.control_listen.port() == 0 {
            // An ephemeral control port is only known to a running server.
            return Err(portunus_domain::DomainError::new(
                portunus_domain::ErrorCode::EndpointInvalid,
                "control_listen uses port 0, so no server-less enrollment can name the port clients dial; \
                 enroll while the server runs, or set advertised_endpoint",
            )
            .into());
        }
        crate::enrollment::create(conn, name, address, ttl_secs, &endpoint.endpoint, &pin)
    })?;
    Ok(created)
}
