//! `migrate-store --to postgres://…`: copies the data dir's SQLite store
//! into an empty PostgreSQL database, then reads both back and compares
//! them row by row. It holds the data-dir lock, so no server writes the
//! file meanwhile; the copy is one transaction, so a failure leaves the
//! target as empty as it was.

use crate::datadir::{self, DirLock};
use crate::store::db::{params, Connection, Row, Value};
use crate::store::{postgres, write_tx, Store, StoreResult};
use anyhow::Result;
use portunus_domain::{DomainError, ErrorCode};
use std::path::Path;

/// A table, its columns, and the tables its foreign keys name.
struct Table {
    name: String,
    columns: Vec<String>,
    primary_key: Vec<String>,
    parents: Vec<String>,
}

/// Every table of the SQLite schema, parents before children.
fn tables(c: &Connection) -> StoreResult<Vec<Table>> {
    let names: Vec<String> = c.query_map(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        params![],
        |r| r.get(0),
    )?;
    let mut pending = Vec::new();
    for name in names {
        let info = c.query(&format!("PRAGMA table_info({name})"), params![])?;
        let columns = info
            .iter()
            .map(|r| r.get::<String>(1))
            .collect::<StoreResult<Vec<_>>>()?;
        let mut keyed: Vec<(i64, String)> = Vec::new();
        for r in &info {
            let pk: i64 = r.get(5)?;
            if pk > 0 {
                keyed.push((pk, r.get(1)?));
            }
        }
        keyed.sort();
        let mut primary_key: Vec<String> = keyed.into_iter().map(|(_, c)| c).collect();
        if primary_key.is_empty() {
            primary_key = columns.clone();
        }
        let parents = c.query_map(
            &format!("PRAGMA foreign_key_list({name})"),
            params![],
            |r| r.get::<String>(2),
        )?;
        pending.push(Table {
            name,
            columns,
            primary_key,
            parents,
        });
    }
    let mut ordered: Vec<Table> = Vec::new();
    while !pending.is_empty() {
        let ready = pending.iter().position(|t| {
            t.parents
                .iter()
                .all(|p| p == &t.name || ordered.iter().any(|o| &o.name == p))
        });
        match ready {
            Some(i) => ordered.push(pending.remove(i)),
            None => {
                return Err(crate::store::StoreError::Internal(
                    "the schema's foreign keys form a cycle".into(),
                ))
            }
        }
    }
    Ok(ordered)
}

fn select_all(t: &Table) -> String {
    format!(
        "SELECT {} FROM {} ORDER BY {}",
        t.columns.join(", "),
        t.name,
        t.primary_key.join(", ")
    )
}

fn insert(t: &Table) -> String {
    let marks: Vec<String> = (1..=t.columns.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        t.name,
        t.columns.join(", "),
        marks.join(", ")
    )
}

fn rows_of(c: &Connection, t: &Table) -> StoreResult<Vec<Vec<Value>>> {
    Ok(c.query(&select_all(t), params![])?
        .into_iter()
        .map(|r: Row| r.values().to_vec())
        .collect())
}

fn not_empty(why: String) -> anyhow::Error {
    DomainError::new(
        ErrorCode::TargetNotEmpty,
        format!(
            "{why}; migrate-store copies into an empty database only (create one with `createdb`)"
        ),
    )
    .into()
}

pub fn migrate_store(data_dir: &Path, to: &str) -> Result<()> {
    if !postgres::is_postgres_url(to) {
        return Err(DomainError::new(
            ErrorCode::DatabaseUrlInvalid,
            format!(
                "--to {} is not a postgres:// or postgresql:// URL",
                postgres::redacted(to)
            ),
        )
        .into());
    }
    let db = datadir::db_path(data_dir);
    if !db.exists() {
        anyhow::bail!(
            "there is no SQLite store at {}; nothing to migrate",
            db.display()
        );
    }
    super::require_sqlite(&db, "migrate it")?;
    let _lock = DirLock::acquire(data_dir)?;
    let source = Store::open(&db)?;
    let target = Store::open_postgres(to).map_err(|e| match e {
        crate::store::StoreError::Unavailable(why) => anyhow::Error::new(DomainError::new(
            ErrorCode::StoreUnavailable,
            format!(
                "cannot reach the database at {}: {why}",
                postgres::redacted(to)
            ),
        )),
        e => anyhow::Error::new(DomainError::from(e)),
    })?;
    let schema = source.blocking(|c| tables(c))?;

    for t in &schema {
        let name = t.name.clone();
        let n: i64 = target.blocking(move |c| {
            c.query_row(&format!("SELECT COUNT(*) FROM {name}"), params![], |r| {
                r.get(0)
            })
        })?;
        if n > 0 {
            return Err(not_empty(format!(
                "{} already holds {n} row(s) in {}",
                postgres::redacted(to),
                t.name
            )));
        }
    }

    let mut copied = Vec::new();
    let mut data = Vec::new();
    for t in &schema {
        data.push(source.blocking(|c| rows_of(c, t))?);
    }
    target.blocking(|c| {
        write_tx(c, |tx| {
            for (t, rows) in schema.iter().zip(&data) {
                let sql = insert(t);
                for row in rows {
                    tx.execute(&sql, row.clone())?;
                }
            }
            // An identity column continues after the ids it was given.
            tx.execute(
                "SELECT setval(pg_get_serial_sequence('audit', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM audit",
                params![],
            )?;
            Ok(())
        })
    })?;

    // Compared as sorted rows: the two engines may order text differently.
    let canonical = |rows: &[Vec<Value>]| {
        let mut v: Vec<String> = rows.iter().map(|r| format!("{r:?}")).collect();
        v.sort();
        v
    };
    for (t, rows) in schema.iter().zip(&data) {
        let back = canonical(&target.blocking(|c| rows_of(c, t))?);
        let sent = canonical(rows);
        if back != sent {
            let missing = sent.iter().filter(|r| !back.contains(r)).count();
            anyhow::bail!(
                "verification failed: table {} reads back {} row(s) for {} copied, {missing} of them not as copied; drop the target database and retry",
                t.name,
                back.len(),
                sent.len(),
            );
        }
        copied.push(format!("{} {}", t.name, rows.len()));
    }
    let total: usize = data.iter().map(Vec::len).sum();
    eprintln!(
        "Copied and verified {total} row(s) into {} ({}).",
        postgres::redacted(to),
        copied.join(", ")
    );
    eprintln!(
        "Serve from it with `database_url` in server.toml (or --database-url); {} stays as it was.",
        db.display()
    );
    Ok(())
}
