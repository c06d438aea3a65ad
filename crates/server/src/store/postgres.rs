//! The PostgreSQL engine: a bounded pool of connections driven by a small
//! runtime of its own, so the store's closures keep running on blocking
//! threads and never on the server's async workers. Every wait has a bound:
//! connecting, taking a pooled connection and each statement; past it the
//! call fails as `store_unavailable` and the connection is dropped.

use super::db::{numbered_to_dollar, Row, Value};
use super::{migrations, StoreError, StoreResult};
use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use std::cell::Cell;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

/// How long a statement, a connect or a wait for a pooled connection may
/// take before the call fails.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per server. Writers queue on one lock anyway; readers share.
const POOL_SIZE: usize = 8;
/// The key of the advisory lock every write transaction holds.
const WRITE_LOCK_KEY: i64 = 0x706f_7274_756e_7573; // "portunus"

/// True for the URLs this engine serves.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// The URL with its password replaced, for logs and messages.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparsable database URL>".into();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .map(|kv| {
                    if kv.starts_with("password=") {
                        "password=***"
                    } else {
                        kv
                    }
                })
                .collect();
            format!("{path}?{}", kept.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// TLS the URL asks for: `sslmode=require` (or `verify-ca`,
/// `verify-full`) makes the connection TLS-only and verifies the server's
/// certificate against `sslrootcert` (a PEM file) or the system's roots.
/// Anything else, or no `sslmode`, connects without TLS.
struct TlsWanted {
    required: bool,
    root_cert: Option<String>,
}

/// Takes the TLS parameters out of the URL (tokio-postgres knows
/// `sslmode` but not `sslrootcert`, and verification is ours).
fn split_tls(url: &str) -> StoreResult<(String, TlsWanted)> {
    let mut tls = TlsWanted {
        required: false,
        root_cert: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), tls));
    };
    let mut kept = Vec::new();
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "sslmode" => match v {
                "require" | "verify-ca" | "verify-full" => tls.required = true,
                "disable" | "allow" | "prefer" => {}
                other => {
                    return Err(StoreError::Config(format!(
                        "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
                    )))
                }
            },
            "sslrootcert" => tls.root_cert = Some(v.to_owned()),
            _ => kept.push(kv),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, tls))
}

fn tls_connector(tls: &TlsWanted) -> StoreResult<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    match &tls.root_cert {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| StoreError::Config(format!("cannot read sslrootcert {path}: {e}")))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert =
                    cert.map_err(|e| StoreError::Config(format!("sslrootcert {path}: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| StoreError::Config(format!("sslrootcert {path}: {e}")))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err(StoreError::Config(
            "sslmode=require but no trusted root certificate was found; name one with sslrootcert="
                .into(),
        ));
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::Config(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Maps a driver error to the store's kinds: a lost or refused connection
/// is `Unavailable`, a serialisation conflict `Busy`.
fn driver_error(e: tokio_postgres::Error) -> StoreError {
    let text = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(&e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    };
    if let Some(state) = e.code() {
        if *state == SqlState::T_R_SERIALIZATION_FAILURE
            || *state == SqlState::T_R_DEADLOCK_DETECTED
        {
            return StoreError::Busy;
        }
        let class = &state.code()[..2];
        if class == "08"
            || class == "53"
            || class == "57"
            || *state == SqlState::READ_ONLY_SQL_TRANSACTION
        {
            return StoreError::Unavailable(text);
        }
        return StoreError::Internal(text);
    }
    // No SQLSTATE: an I/O error, a closed connection, a failed connect.
    StoreError::Unavailable(text)
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => driver_error(e),
        other => StoreError::Unavailable(other.to_string()),
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => Err(format!("cannot bind an integer as {ty}").into()),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                _ => Err(format!("cannot bind a real as {ty}").into()),
            },
            Value::Text(s) => s.as_str().to_sql(ty, out),
            Value::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn read_row(row: &tokio_postgres::Row) -> StoreResult<Row> {
    let mut values = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let bad = |e: tokio_postgres::Error| StoreError::Internal(format!("column {i}: {e}"));
        let v = match *col.type_() {
            Type::INT8 => row
                .try_get::<_, Option<i64>>(i)
                .map_err(bad)?
                .map(Value::Int),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(i)
                .map_err(bad)?
                .map(|v| Value::Int(v.into())),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(i)
                .map_err(bad)?
                .map(|v| Value::Int(v.into())),
            Type::OID => row
                .try_get::<_, Option<u32>>(i)
                .map_err(bad)?
                .map(|v| Value::Int(v.into())),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(i)
                .map_err(bad)?
                .map(|v| Value::Int(v.into())),
            Type::FLOAT8 => row
                .try_get::<_, Option<f64>>(i)
                .map_err(bad)?
                .map(Value::Real),
            Type::FLOAT4 => row
                .try_get::<_, Option<f32>>(i)
                .map_err(bad)?
                .map(|v| Value::Real(v.into())),
            Type::BYTEA => row
                .try_get::<_, Option<Vec<u8>>>(i)
                .map_err(bad)?
                .map(Value::Blob),
            Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR | Type::UNKNOWN => row
                .try_get::<_, Option<String>>(i)
                .map_err(bad)?
                .map(Value::Text),
            ref other => {
                return Err(StoreError::Internal(format!(
                    "column {i} has type {other}, which the store does not read"
                )))
            }
        };
        values.push(v.unwrap_or(Value::Null));
    }
    Ok(Row::new(values))
}

/// The engine: its runtime and pool.
pub struct PgEngine {
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
}

impl Drop for PgEngine {
    fn drop(&mut self) {
        // Dropping a runtime blocks; the store may go away on an async
        // worker, where that is not allowed.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl PgEngine {
    /// Connects (checking the URL and the database answer) and migrates.
    pub fn open(url: &str) -> StoreResult<PgEngine> {
        let (url, tls) = split_tls(url)?;
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Config(format!("the database URL is not valid: {e}")))?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_user_timeout(STATEMENT_TIMEOUT)
            .keepalives_idle(Duration::from_secs(30))
            .application_name("portunus-server")
            // Notices (an existing table on a second start) are not news.
            .options("-c client_min_messages=warning");
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = if tls.required {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            Manager::from_config(config, tls_connector(&tls)?, manager_config)
        } else {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            Manager::from_config(config, tokio_postgres::NoTls, manager_config)
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("portunus-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot start the database runtime: {e}")))?;
        let engine = PgEngine {
            runtime: Some(runtime),
            pool,
        };
        let session = engine.session()?;
        migrations::postgres::migrate(&session)?;
        drop(session);
        Ok(engine)
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the engine")
            .handle()
    }

    /// A pooled connection for one closure.
    pub fn session(&self) -> StoreResult<Session> {
        let handle = self.handle().clone();
        let obj = handle.block_on(self.pool.get()).map_err(pool_error)?;
        Ok(Session {
            obj: Some(obj),
            handle,
            in_tx: Cell::new(false),
            broken: Cell::new(false),
        })
    }
}

/// One pooled connection, held for one closure. A connection left inside
/// a transaction (a panic) or past a timeout is closed, not pooled again.
pub struct Session {
    obj: Option<Object>,
    handle: tokio::runtime::Handle,
    in_tx: Cell<bool>,
    broken: Cell<bool>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.in_tx.get() || self.broken.get() {
            if let Some(obj) = self.obj.take() {
                drop(Object::take(obj));
            }
        }
    }
}

impl Session {
    fn client(&self) -> &Object {
        self.obj.as_ref().expect("a session holds its connection")
    }

    fn block<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> StoreResult<T> {
        match self
            .handle
            .block_on(async { tokio::time::timeout(STATEMENT_TIMEOUT, fut).await })
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let e = driver_error(e);
                if matches!(e, StoreError::Unavailable(_)) {
                    self.broken.set(true);
                }
                Err(e)
            }
            Err(_) => {
                self.broken.set(true);
                Err(StoreError::Unavailable(format!(
                    "the database did not answer within {} s",
                    STATEMENT_TIMEOUT.as_secs()
                )))
            }
        }
    }

    pub(super) fn execute(&self, sql: &str, values: Vec<Value>) -> StoreResult<usize> {
        let sql = numbered_to_dollar(sql);
        let client = self.client();
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        self.block(async {
            let stmt = client.prepare_cached(&sql).await?;
            client.execute(&stmt, &params).await
        })
        .map(|n| n as usize)
    }

    pub(super) fn query(&self, sql: &str, values: Vec<Value>) -> StoreResult<Vec<Row>> {
        let sql = numbered_to_dollar(sql);
        let client = self.client();
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        let rows = self.block(async {
            let stmt = client.prepare_cached(&sql).await?;
            client.query(&stmt, &params).await
        })?;
        rows.iter().map(read_row).collect()
    }

    pub(super) fn batch(&self, sql: &str) -> StoreResult<()> {
        let client = self.client();
        self.block(client.batch_execute(sql))
    }

    pub(super) fn begin_write(&self) -> StoreResult<()> {
        self.batch("BEGIN")?;
        self.in_tx.set(true);
        let client = self.client();
        self.block(client.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK_KEY]))?;
        Ok(())
    }

    pub(super) fn end(&self, verb: &str) -> StoreResult<()> {
        self.batch(verb)?;
        self.in_tx.set(false);
        Ok(())
    }
}

#[cfg(test)]
/// Creates an empty database with a unique name in the cluster `admin_url`
/// reaches, and returns its URL. For tests: each gets a database of its own.
pub fn create_database(admin_url: &str) -> StoreResult<String> {
    let name = format!("portunus_test_{}", portunus_domain::new_id().to_lowercase());
    let create = || -> StoreResult<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
                .await
                .map_err(driver_error)?;
            tokio::spawn(conn);
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .map_err(driver_error)
        })
    };
    // A thread of its own: the caller may be on a runtime already.
    std::thread::scope(|s| s.spawn(create).join()).expect("create the database")?;
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let server = match base.rfind('/') {
        Some(i) if i > base.find("://").map_or(0, |s| s + 2) => &base[..i],
        _ => base,
    };
    Ok(format!("{server}/{name}{query}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{clients, rules, users, write_tx, Store};
    use portunus_domain::rule::{Protocol, RuleSpec};
    use portunus_domain::{DomainError, ErrorCode};

    /// Two servers on one database push the same port at the same instant,
    /// many times: the write lock lets exactly one of each pair through.
    #[test]
    fn two_servers_on_one_database_never_both_take_a_port() {
        let url = crate::store::test_database_url();
        let a = Store::open_postgres(&url).unwrap();
        let b = Store::open_postgres(&url).unwrap();
        let client = a
            .blocking(|c| {
                write_tx(c, |tx| {
                    users::create(tx, "_superadmin", "Admin", users::Role::Superadmin)
                })?;
                write_tx(c, |tx| clients::ensure(tx, "edge", None))
            })
            .unwrap();
        for port in 9000..9040u32 {
            let barrier = std::sync::Barrier::new(2);
            let push = |store: &Store| {
                barrier.wait();
                store.blocking(|c| {
                    write_tx(c, |tx| {
                        let spec = RuleSpec::single(Protocol::Tcp, port, "127.0.0.1", 9);
                        rules::insert(tx, &client.id, "_superadmin", &spec, &Default::default())
                    })
                })
            };
            let (push, a, b) = (&push, &a, &b);
            let outcomes: Vec<_> = std::thread::scope(|s| {
                let ta = s.spawn(move || push(a));
                let tb = s.spawn(move || push(b));
                vec![ta.join().unwrap(), tb.join().unwrap()]
            });
            let won = outcomes.iter().filter(|o| o.is_ok()).count();
            assert_eq!(won, 1, "port {port}: {outcomes:?}");
            for lost in outcomes.into_iter().filter_map(Result::err) {
                assert_eq!(DomainError::from(lost).code, ErrorCode::ListenPortConflict);
            }
        }
        let stored = a
            .blocking(|c| rules::list(c, Some(&client.id), None))
            .unwrap();
        assert_eq!(stored.len(), 40);
    }

    #[test]
    fn passwords_never_leave_the_url() {
        assert_eq!(
            redacted("postgres://portunus:s3cret@db.example:5432/portunus?sslmode=require"),
            "postgres://portunus:***@db.example:5432/portunus?sslmode=require"
        );
        assert_eq!(
            redacted("postgresql://u@h/d?password=s3cret&x=1"),
            "postgresql://u@h/d?password=***&x=1"
        );
        assert_eq!(redacted("postgres://h:5432"), "postgres://h:5432");
        assert!(!redacted("postgres://a:b@c@d/e").contains('b'));
    }

    #[test]
    fn tls_parameters_are_ours() {
        let (url, tls) =
            split_tls("postgres://u@h/d?sslmode=require&sslrootcert=/ca.pem&connect_timeout=3")
                .unwrap();
        assert_eq!(url, "postgres://u@h/d?connect_timeout=3");
        assert!(tls.required);
        assert_eq!(tls.root_cert.as_deref(), Some("/ca.pem"));
        let (url, tls) = split_tls("postgres://u@h/d").unwrap();
        assert_eq!(url, "postgres://u@h/d");
        assert!(!tls.required);
        assert!(split_tls("postgres://u@h/d?sslmode=sometimes").is_err());
    }
}
