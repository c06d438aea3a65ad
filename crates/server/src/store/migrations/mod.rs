//! Versioned schema migrations, one list per engine. Both lists have the
//! same steps under the same numbers, so a version means one schema
//! whichever engine holds it; `schema_compare` (a test) checks the two
//! resulting schemas agree table by table, column by column.

pub mod postgres;
pub mod sqlite;

#[cfg(test)]
mod schema_compare;

/// The schema version this binary writes.
pub const LATEST_VERSION: i64 = 7;
