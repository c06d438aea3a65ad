//! `serve`: wires the store, TLS identity, control stream, operator API and
//! metrics together, and shuts them down in order on SIGTERM/SIGINT.

use crate::advertised::EndpointResolver;
use crate::config::{FileConfig, LogFormat};
use crate::control::{incoming, ControlService};
use crate::datadir::{self, DirLock};
use crate::state::{ServerState, Shared};
use crate::store::{users, Location, Store};
use crate::{api, bootstrap, logging, tls};
use anyhow::{Context, Result};
use portunus_proto::pb::control_server::ControlServer;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::Server;

#[derive(Debug, Clone, clap::Args, Default)]
pub struct ServeArgs {
    /// The host:port clients dial (tier-2 seed of the advertised endpoint).
    #[arg(long, env = "PORTUNUS_ADVERTISED_ENDPOINT")]
    pub advertised_endpoint: Option<String>,
    /// Overrides `control_listen` of server.toml.
    #[arg(long)]
    pub control_listen: Option<SocketAddr>,
    /// Overrides `operator_http_listen` of server.toml.
    #[arg(long)]
    pub operator_http_listen: Option<SocketAddr>,
    /// Overrides `metrics_listen` of server.toml.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Overrides `log_format` of server.toml.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Serve from a data dir on NFS, tmpfs or ramfs anyway (tests, containers).
    #[arg(long, env = "PORTUNUS_ALLOW_UNSAFE_DATA_DIR", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_unsafe_data_dir: bool,
}

/// `--database-url` (or `PORTUNUS_DATABASE_URL`), set once from the
/// command line before any command runs.
static DATABASE_URL_FLAG: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

pub fn set_database_url_flag(url: Option<String>) {
    let _ = DATABASE_URL_FLAG.set(url.filter(|u| !u.is_empty()));
}

/// Where the store of a data dir lives: the `--database-url` flag, else
/// `database_url` of server.toml, else `state.db` in the data dir.
pub fn store_location(data_dir: &Path) -> Result<Location> {
    // The flag wins, so server.toml is read only without it.
    let configured = match DATABASE_URL_FLAG.get() {
        Some(Some(_)) => None,
        _ => FileConfig::load(data_dir)?.database_url,
    };
    location_of(data_dir, configured)
}

/// Like [`store_location`], with server.toml's `database_url` already read.
fn location_of(data_dir: &Path, configured: Option<String>) -> Result<Location> {
    let url = DATABASE_URL_FLAG.get().cloned().flatten().or(configured);
    match url {
        None => Ok(Location::File(datadir::db_path(data_dir))),
        Some(url) if crate::store::postgres::is_postgres_url(&url) => Ok(Location::Url(url)),
        Some(url) => Err(portunus_domain::DomainError::new(
            portunus_domain::ErrorCode::DatabaseUrlInvalid,
            format!(
                "the database URL {} is not a postgres:// or postgresql:// URL",
                crate::store::postgres::redacted(&url)
            ),
        )
        .into()),
    }
}

/// Opens the store of a data dir, turning schema and format problems into
/// their exit codes.
pub fn open_store(data_dir: &Path) -> Result<Store> {
    open_store_at(data_dir, &store_location(data_dir)?)
}

/// Like [`open_store`], where the caller knows the location already.
pub fn open_store_at(data_dir: &Path, location: &Location) -> Result<Store> {
    Store::open_at(location).map_err(|e| match e {
        crate::store::StoreError::Corrupt(why) => {
            let dir = data_dir.display();
            anyhow::Error::new(portunus_domain::DomainError::new(
                portunus_domain::ErrorCode::FailedPrecondition,
                format!(
                    "{} cannot be read as a Portunus database ({why}). Restore a backup with \
                     `portunus-server --data-dir {dir} restore --in <backup> --force`, or start \
                     empty with `portunus-server --data-dir {dir} reset --confirm --force`; \
                     either moves the unreadable file aside",
                    location.describe()
                ),
            ))
        }
        crate::store::StoreError::Unavailable(why) => {
            anyhow::Error::new(portunus_domain::DomainError::new(
                portunus_domain::ErrorCode::StoreUnavailable,
                format!(
                    "cannot reach the database at {}: {why}",
                    location.describe()
                ),
            ))
        }
        e => anyhow::Error::new(portunus_domain::DomainError::from(e)),
    })
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind the {what} listener on {addr}"))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install the SIGTERM handler");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

pub async fn run(data_dir: &Path, args: ServeArgs) -> Result<()> {
    datadir::ensure_dir(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let _lock = DirLock::acquire(data_dir)?;
    let mut file = FileConfig::load(data_dir)?;
    let location = location_of(data_dir, file.database_url.take())?;
    file.control_listen = args.control_listen.or(file.control_listen);
    file.operator_http_listen = args.operator_http_listen.or(file.operator_http_listen);
    file.metrics_listen = args.metrics_listen.or(file.metrics_listen);
    file.log_format = args.log_format.or(file.log_format);
    file.advertised_endpoint = args.advertised_endpoint.or(file.advertised_endpoint);
    let config = file.resolve(data_dir)?;
    logging::init(config.log_format, "info");
    // Every client stream and API connection is a descriptor.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::info!(nofile = n, "descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the descriptor limit"),
    }
    use crate::maintenance::fscheck;
    if let fscheck::Verdict::Allowed(reason) = fscheck::check(data_dir, args.allow_unsafe_data_dir)?
    {
        tracing::warn!(data_dir = %data_dir.display(), "the data dir is on {reason}; serving anyway as allowed");
    }

    if tls::ensure_generated(
        &config.tls_cert_path,
        &config.tls_key_path,
        !config.tls_configured,
    )? {
        tracing::info!(cert = %config.tls_cert_path.display(), "generated a self-signed server certificate");
    }
    let material = tls::load(&config.tls_cert_path, &config.tls_key_path)?;
    let store = open_store_at(data_dir, &location)?;
    tracing::info!(store = %location.describe(), "store open");
    if let Some(token) = config.operator_token.clone() {
        if store.blocking(|c| bootstrap::legacy_operator_token(c, &token))? {
            tracing::info!("operator_token minted the reserved _legacy superadmin");
        }
    }
    let bootstrapped = store.blocking(|c| users::has_active_superadmin(c))?;
    let setup_token = match bootstrapped {
        true => None,
        false => Some(store.blocking(bootstrap::rotate_setup_token)?),
    };

    let control = bind(config.control_listen, "control").await?;
    let http = bind(config.operator_http_listen, "operator HTTP").await?;
    let metrics = bind(config.metrics_listen, "metrics").await?;
    let control_addr = control.local_addr()?;
    let http_addr = http.local_addr()?;
    let metrics_addr = metrics.local_addr()?;

    let resolver = EndpointResolver::new(
        config.advertised_endpoint.clone(),
        crate::san::SanSet::of_served(&material.leaf_der),
        control_addr.port(),
    );
    let stored = store.blocking(|c| {
        crate::store::settings::get(c, crate::store::settings::ADVERTISED_ENDPOINT)
    })?;
    resolver.log_startup(stored.as_deref());
    let drain = Duration::from_secs(config.shutdown_drain_timeout_secs);
    let state: Shared = Arc::new(ServerState::new(
        store,
        config,
        material.pin(),
        resolver,
        bootstrapped,
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let acceptor = incoming::acceptor(&material.cert_pem, &material.key_pem)?;
    let grpc = {
        let (control, state, stop) = (control.into_std()?, state.clone(), stopped());
        crate::control::thread::spawn(crate::store::BLOCKING_THREADS, move || async move {
            let control = match TcpListener::from_std(control) {
                Ok(listener) => listener,
                Err(e) => return tracing::error!(error = %e, "cannot serve the control port"),
            };
            let served = Server::builder()
                .http2_keepalive_interval(Some(Duration::from_secs(15)))
                .http2_keepalive_timeout(Some(Duration::from_secs(10)))
                .add_service(ControlServer::new(ControlService::new(state)))
                .serve_with_incoming_shutdown(
                    incoming::tls_streams(control, acceptor, incoming::Limits::default()),
                    stop,
                )
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the control port stopped serving");
            }
        })
        .context("cannot start the control port's thread")?
    };
    let http_srv = tokio::spawn(crate::http_listener::serve(
        http,
        api::router(state.clone()).merge(portunus_console::router()),
        crate::http_listener::Limits::default(),
        stopped(),
    ));
    let retention = tokio::spawn(crate::retention::run(state.clone(), stopped()));
    let traffic = tokio::spawn(crate::traffic::run(state.clone()));
    let metrics_srv = tokio::spawn(
        axum::serve(metrics, api::metrics_router(state.clone()))
            .with_graceful_shutdown(stopped())
            .into_future(),
    );
    // Before "listening", so whoever waits for that line has the token.
    if let Some(token) = setup_token {
        bootstrap::announce_setup_token(&token, http_addr);
    }
    tracing::info!(
        control = %control_addr,
        operator_http = %http_addr,
        metrics = %metrics_addr,
        pin = %state.tls_pin,
        "listening"
    );

    shutdown_signal().await;
    tracing::info!("shutting down");
    state
        .registry
        .kick_all(tonic::Status::unavailable("server shutting down"));
    let _ = stop_tx.send(true);
    let all = async {
        let _ = grpc.await;
        let _ = http_srv.await;
        let _ = metrics_srv.await;
        let _ = retention.await;
    };
    if tokio::time::timeout(drain, all).await.is_err() {
        tracing::warn!("drain timeout reached; exiting with requests in flight");
    }
    // The streams are closed: fold what they reported last, so the history
    // needs nothing from the edges' next reports.
    traffic.abort();
    match tokio::time::timeout(Duration::from_secs(2), crate::traffic::fold_queued(&state)).await {
        Ok(Err(e)) => tracing::warn!(error = %e, "last traffic reports not folded"),
        Err(_) => tracing::warn!("last traffic reports not folded in time"),
        Ok(Ok(_)) => {}
    }
    if tokio::time::timeout(Duration::from_secs(2), state.audit.flush())
        .await
        .is_err()
    {
        tracing::warn!("audit rows still queued at exit were not stored");
    }
    Ok(())
}
