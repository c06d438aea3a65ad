//! The two engines' migrations must build the same schema: same tables,
//! same columns (kind, nullability, default, key), same indexes and the
//! same foreign keys. Each engine is read back from its own catalog.

use crate::store::{db::Connection, Store, StoreResult};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    Column {
        table: String,
        name: String,
        kind: &'static str,
        not_null: bool,
        default: Option<String>,
        primary_key: bool,
    },
    Index {
        table: String,
        columns: Vec<String>,
        unique: bool,
        partial: bool,
    },
    ForeignKey {
        table: String,
        column: String,
        references: String,
        on_delete: String,
    },
}

fn kind(declared: &str) -> &'static str {
    match declared.to_ascii_lowercase().as_str() {
        "integer" | "bigint" => "integer",
        "text" => "text",
        "blob" | "bytea" => "bytes",
        "real" | "double precision" => "real",
        other => panic!("a column type the schemas should not use: {other}"),
    }
}

fn sqlite_schema(c: &Connection) -> StoreResult<BTreeSet<Item>> {
    let mut items = BTreeSet::new();
    let tables: Vec<String> = c.query_map(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        crate::store::db::params![],
        |r| r.get(0),
    )?;
    for t in &tables {
        for r in c.query(
            &format!("PRAGMA table_info({t})"),
            crate::store::db::params![],
        )? {
            let pk = r.get::<i64>(5)? > 0;
            items.insert(Item::Column {
                table: t.clone(),
                name: r.get(1)?,
                kind: kind(&r.get::<String>(2)?),
                not_null: r.get::<i64>(3)? != 0 || pk,
                default: r.get(4)?,
                primary_key: pk,
            });
        }
        for idx in c.query(
            &format!("PRAGMA index_list({t})"),
            crate::store::db::params![],
        )? {
            let name: String = idx.get(1)?;
            let origin: String = idx.get(3)?;
            if origin == "pk" {
                continue;
            }
            let columns = c.query_map(
                &format!("PRAGMA index_info({name})"),
                crate::store::db::params![],
                |r| r.get::<String>(2),
            )?;
            items.insert(Item::Index {
                table: t.clone(),
                columns,
                unique: idx.get::<i64>(2)? != 0,
                partial: idx.get::<i64>(4)? != 0,
            });
        }
        for fk in c.query(
            &format!("PRAGMA foreign_key_list({t})"),
            crate::store::db::params![],
        )? {
            items.insert(Item::ForeignKey {
                table: t.clone(),
                column: fk.get(3)?,
                references: format!("{}.{}", fk.get::<String>(2)?, fk.get::<String>(4)?),
                on_delete: fk.get::<String>(6)?.to_ascii_uppercase(),
            });
        }
    }
    Ok(items)
}

fn postgres_schema(c: &Connection) -> StoreResult<BTreeSet<Item>> {
    let mut items = BTreeSet::new();
    let columns = c.query(
        "SELECT CAST(c.table_name AS TEXT), CAST(c.column_name AS TEXT), CAST(c.data_type AS TEXT),
                CAST(c.is_nullable AS TEXT), CAST(c.column_default AS TEXT),
                EXISTS (SELECT 1 FROM information_schema.table_constraints tc
                        JOIN information_schema.key_column_usage k
                          ON k.constraint_name = tc.constraint_name AND k.table_name = tc.table_name
                        WHERE tc.table_schema = 'public' AND tc.constraint_type = 'PRIMARY KEY'
                          AND tc.table_name = c.table_name AND k.column_name = c.column_name)
         FROM information_schema.columns c
         WHERE c.table_schema = 'public' AND c.table_name <> 'portunus_schema'",
        crate::store::db::params![],
    )?;
    for r in columns {
        items.insert(Item::Column {
            table: r.get(0)?,
            name: r.get(1)?,
            kind: kind(&r.get::<String>(2)?),
            not_null: r.get::<String>(3)? == "NO",
            default: r.get(4)?,
            primary_key: r.get(5)?,
        });
    }
    let indexes = c.query(
        "SELECT CAST(t.relname AS TEXT), i.indisunique, i.indpred IS NOT NULL,
                (SELECT string_agg(CAST(a.attname AS TEXT), ',' ORDER BY k.ord)
                 FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum)
         FROM pg_index i
         JOIN pg_class t ON t.oid = i.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE n.nspname = 'public' AND NOT i.indisprimary AND t.relname <> 'portunus_schema'",
        crate::store::db::params![],
    )?;
    for r in indexes {
        items.insert(Item::Index {
            table: r.get(0)?,
            columns: r.get::<String>(3)?.split(',').map(String::from).collect(),
            unique: r.get(1)?,
            partial: r.get(2)?,
        });
    }
    let fks = c.query(
        "SELECT CAST(t.relname AS TEXT), CAST(a.attname AS TEXT), CAST(rt.relname AS TEXT),
                CAST(ra.attname AS TEXT), CAST(f.confdeltype AS TEXT)
         FROM pg_constraint f
         JOIN pg_class t ON t.oid = f.conrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = f.conkey[1]
         JOIN pg_class rt ON rt.oid = f.confrelid
         JOIN pg_attribute ra ON ra.attrelid = f.confrelid AND ra.attnum = f.confkey[1]
         WHERE f.contype = 'f' AND n.nspname = 'public'",
        crate::store::db::params![],
    )?;
    for r in fks {
        let on_delete = match r.get::<String>(4)?.as_str() {
            "c" => "CASCADE",
            "a" => "NO ACTION",
            "n" => "SET NULL",
            "r" => "RESTRICT",
            other => panic!("unexpected ON DELETE action {other}"),
        };
        items.insert(Item::ForeignKey {
            table: r.get(0)?,
            column: r.get(1)?,
            references: format!("{}.{}", r.get::<String>(2)?, r.get::<String>(3)?),
            on_delete: on_delete.into(),
        });
    }
    Ok(items)
}

#[test]
fn both_engines_migrate_to_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&dir.path().join("state.db")).unwrap();
    let postgres = Store::open_postgres(&crate::store::test_database_url()).unwrap();
    let a = sqlite.blocking(|c| sqlite_schema(c)).unwrap();
    let b = postgres.blocking(|c| postgres_schema(c)).unwrap();
    assert!(a.len() > 50, "the SQLite schema was not read: {a:?}");
    let only_sqlite: Vec<_> = a.difference(&b).collect();
    let only_postgres: Vec<_> = b.difference(&a).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "the schemas differ\nonly in SQLite: {only_sqlite:#?}\nonly in PostgreSQL: {only_postgres:#?}"
    );
    assert_eq!(
        sqlite.schema_version().unwrap(),
        postgres.schema_version().unwrap()
    );
}
