use super::*;
use crate::store::Store;

fn seeded(dir: &Path) -> PathBuf {
    let db = dir.join("state.db");
    let store = Store::open(&db).unwrap();
    store
        .blocking(|c| {
            crate::bootstrap::bootstrap_superadmin(c, "Admin")?;
            Ok(())
        })
        .unwrap();
    db
}

#[test]
fn schema_guard_names_both_versions() {
    assert!(require_known_schema(LATEST_VERSION).is_ok());
    let err = require_known_schema(LATEST_VERSION + 7).unwrap_err();
    assert_eq!(err.code, ErrorCode::SchemaTooNew);
    assert!(err.message.contains(&(LATEST_VERSION + 7).to_string()));
    assert!(err.message.contains(&format!("({LATEST_VERSION})")));
}

#[test]
fn header_check_refuses_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"not a database at all").unwrap();
    let err = require_sqlite(&junk, "touch it").unwrap_err();
    let d = err.downcast_ref::<DomainError>().unwrap();
    assert_eq!(d.code, ErrorCode::FailedPrecondition);
    assert!(require_sqlite(&seeded(dir.path()), "touch it").is_ok());
}

#[test]
fn copy_sees_committed_wal_content_and_checks_out() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded(dir.path());
    // The live store keeps its WAL; the copy must still see every row.
    let live = Store::open(&db).unwrap();
    live.blocking(|c| {
        crate::store::write_tx(c, |tx| {
            crate::store::clients::ensure(tx, "edge-1", None)?;
            Ok(())
        })
    })
    .unwrap();
    assert!(with_suffix(&db, "-wal").exists());
    let src = open_read_only(&db).unwrap();
    let copy = dir.path().join("copy.db");
    let mut dst = Connection::open(&copy).unwrap();
    copy_database(&src, &mut dst).unwrap();
    integrity_check(&dst).unwrap();
    let n: i64 = dst
        .query_row(
            "SELECT count(*) FROM clients WHERE name = 'edge-1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(user_version(&dst).unwrap(), LATEST_VERSION);
}

#[test]
fn integrity_check_reports_damage() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded(dir.path());
    // Fold the WAL in, then scribble over page 2, the root of the first
    // table: its b-tree header is always in use, whatever the schema adds.
    Connection::open(&db)
        .unwrap()
        .pragma_update(None, "journal_mode", "DELETE")
        .unwrap();
    let mut bytes = std::fs::read(&db).unwrap();
    let page = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    for b in &mut bytes[page..2 * page] {
        *b = 0xa5;
    }
    std::fs::write(&db, bytes).unwrap();
    let conn = Connection::open(&db).unwrap();
    assert!(integrity_check(&conn).is_err());
}

#[test]
fn staged_names_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db.partial");
    std::fs::write(with_suffix(&path, "-journal"), b"stale").unwrap();
    let staged = Staged::new(path.clone()).unwrap();
    assert!(!with_suffix(&path, "-journal").exists());
    std::fs::write(staged.path(), b"half written").unwrap();
    drop(staged);
    assert!(!path.exists());
}
