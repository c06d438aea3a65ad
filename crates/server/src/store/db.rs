//! The connection every query runs on, whatever the engine. Queries are
//! written once, with SQLite's numbered parameters (`?1`, `?2`); the
//! PostgreSQL engine renumbers them to `$1`, `$2`. Values cross as five
//! kinds (null, integer, real, text, bytes): booleans are stored as 0/1
//! integers in both engines, so a row reads the same from either.

use super::{postgres, StoreError, StoreResult};

/// One SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A Rust value that binds as a parameter.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_to_value!(i64, i32, u8, u16, u32, u64, usize);

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}
impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}
impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}
impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}

/// A column value read back into Rust.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Result<Self, String>;
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: &Value) -> Result<Self, String> {
                match v {
                    Value::Int(i) => <$t>::try_from(*i)
                        .map_err(|_| format!("{i} is out of range for {}", stringify!($t))),
                    other => Err(format!("expected an integer, found {other:?}")),
                }
            }
        }
    )*};
}
int_from_value!(i64, i32, u8, u16, u32, u64, usize);

impl FromValue for bool {
    fn from_value(v: &Value) -> Result<Self, String> {
        i64::from_value(v).map(|i| i != 0)
    }
}
impl FromValue for f64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Real(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}
impl FromValue for Value {
    fn from_value(v: &Value) -> Result<Self, String> {
        Ok(v.clone())
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One result row.
#[derive(Debug, Clone)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    pub(super) fn new(values: Vec<Value>) -> Row {
        Row { values }
    }

    pub fn get<T: FromValue>(&self, idx: usize) -> StoreResult<T> {
        let v = self
            .values
            .get(idx)
            .ok_or_else(|| StoreError::Internal(format!("no column {idx} in the row")))?;
        T::from_value(v).map_err(|e| StoreError::Internal(format!("column {idx}: {e}")))
    }

    pub fn values(&self) -> &[Value] {
        &self.values
    }
}

/// Parameters of one statement.
pub trait Params {
    fn into_values(self) -> Vec<Value>;
}

impl Params for &[&dyn ToValue] {
    fn into_values(self) -> Vec<Value> {
        self.iter().map(|p| p.to_value()).collect()
    }
}
impl<T: ToValue, const N: usize> Params for [T; N] {
    fn into_values(self) -> Vec<Value> {
        self.iter().map(|p| p.to_value()).collect()
    }
}
impl Params for Vec<Value> {
    fn into_values(self) -> Vec<Value> {
        self
    }
}

/// `params![a, b]`: a parameter list of mixed types.
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::store::db::ToValue]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::store::db::ToValue),+] as &[&dyn $crate::store::db::ToValue]
    };
}
pub(crate) use params;

pub(super) enum Session<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a postgres::Session),
}

/// A connection, for one closure run by the store. Inside
/// [`super::write_tx`] it is a transaction.
pub struct Connection<'a> {
    session: Session<'a>,
}

/// What a write transaction's closure receives: the same connection, inside
/// `BEGIN`/`COMMIT`.
pub type Transaction<'a> = Connection<'a>;

impl<'a> Connection<'a> {
    pub(super) fn new(session: Session<'a>) -> Connection<'a> {
        Connection { session }
    }

    /// Runs one statement; returns the number of rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> StoreResult<usize> {
        let values = params.into_values();
        match &self.session {
            Session::Sqlite(c) => super::sqlite::execute(c, sql, values),
            Session::Postgres(s) => s.execute(sql, values),
        }
    }

    /// Every row of a query.
    pub fn query<P: Params>(&self, sql: &str, params: P) -> StoreResult<Vec<Row>> {
        let values = params.into_values();
        match &self.session {
            Session::Sqlite(c) => super::sqlite::query(c, sql, values),
            Session::Postgres(s) => s.query(sql, values),
        }
    }

    /// The first row, mapped; [`StoreError::NoRows`] when there is none
    /// (see [`OptionalExtension::optional`]).
    pub fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> StoreResult<T>
    where
        P: Params,
        F: FnOnce(&Row) -> StoreResult<T>,
    {
        let rows = self.query(sql, params)?;
        f(rows.first().ok_or(StoreError::NoRows)?)
    }

    /// Every row, mapped.
    pub fn query_map<T, P, F>(&self, sql: &str, params: P, f: F) -> StoreResult<Vec<T>>
    where
        P: Params,
        F: FnMut(&Row) -> StoreResult<T>,
    {
        self.query(sql, params)?.iter().map(f).collect()
    }

    /// A statement to run later; kept for the shape of the queries that
    /// build their SQL first.
    pub fn prepare(&self, sql: &str) -> StoreResult<Statement<'_, 'a>> {
        Ok(Statement {
            conn: self,
            sql: sql.to_owned(),
        })
    }

    /// Opens a write transaction: `BEGIN IMMEDIATE` on SQLite; on
    /// PostgreSQL `BEGIN` then one database-wide advisory lock, so writers
    /// run one at a time across every server on the database, as on SQLite.
    pub(super) fn begin_write(&self) -> StoreResult<()> {
        match &self.session {
            Session::Sqlite(c) => {
                if !c.is_autocommit() {
                    // A closure that panicked left its transaction open.
                    let _ = c.execute_batch("ROLLBACK");
                }
                Ok(c.execute_batch("BEGIN IMMEDIATE")?)
            }
            Session::Postgres(s) => s.begin_write(),
        }
    }

    pub(super) fn commit(&self) -> StoreResult<()> {
        match &self.session {
            Session::Sqlite(c) => Ok(c.execute_batch("COMMIT")?),
            Session::Postgres(s) => s.end("COMMIT"),
        }
    }

    pub(super) fn rollback(&self) {
        match &self.session {
            Session::Sqlite(c) => {
                let _ = c.execute_batch("ROLLBACK");
            }
            Session::Postgres(s) => {
                let _ = s.end("ROLLBACK");
            }
        }
    }
}

/// See [`Connection::prepare`].
pub struct Statement<'c, 'a> {
    conn: &'c Connection<'a>,
    sql: String,
}

impl Statement<'_, '_> {
    pub fn query_map<T, P, F>(
        &mut self,
        params: P,
        f: F,
    ) -> StoreResult<std::vec::IntoIter<StoreResult<T>>>
    where
        P: Params,
        F: FnMut(&Row) -> StoreResult<T>,
    {
        let rows = self.conn.query(&self.sql, params)?;
        Ok(rows.iter().map(f).collect::<Vec<_>>().into_iter())
    }
}

/// `.optional()` on a single-row query: no row is `None`, not an error.
pub trait OptionalExtension<T> {
    fn optional(self) -> StoreResult<Option<T>>;
}

impl<T> OptionalExtension<T> for StoreResult<T> {
    fn optional(self) -> StoreResult<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// SQLite's `?N` parameters as PostgreSQL's `$N`, leaving quoted text and
/// identifiers alone.
pub fn numbered_to_dollar(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' && chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                out.push('$');
            }
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renumbers_parameters_outside_quotes() {
        assert_eq!(
            numbered_to_dollar("SELECT '?1', \"a?2\" FROM t WHERE a = ?1 AND b = ?12 OR c = ?"),
            "SELECT '?1', \"a?2\" FROM t WHERE a = $1 AND b = $12 OR c = ?"
        );
        assert_eq!(
            numbered_to_dollar("x = 'it''s ?3' AND y = ?3"),
            "x = 'it''s ?3' AND y = $3"
        );
    }

    #[test]
    fn values_convert_both_ways() {
        assert_eq!(true.to_value(), Value::Int(1));
        assert_eq!(Some("a").to_value(), Value::Text("a".into()));
        assert_eq!(None::<i64>.to_value(), Value::Null);
        assert_eq!(u16::from_value(&Value::Int(80)), Ok(80));
        assert!(u16::from_value(&Value::Int(70000)).is_err());
        assert_eq!(Option::<String>::from_value(&Value::Null), Ok(None));
        assert!(bool::from_value(&Value::Int(1)).unwrap());
        assert!(String::from_value(&Value::Int(1)).is_err());
    }
}
