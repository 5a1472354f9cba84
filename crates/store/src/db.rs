//! One SQL interface over the two databases Hark keeps its metadata in: SQLite (one node, the
//! default) and PostgreSQL (several nodes sharing one database). Queries are written once, in
//! SQLite's syntax with numbered parameters (`?1`); for PostgreSQL they are renumbered (`$1`,
//! in order of first use, unused numbers dropped) and the few dialect differences are asked of
//! [`Dialect`]. Values cross as [`Param`] (bound) and [`Value`] (read): integers, reals, text and
//! null are all Hark stores (booleans are integers 0/1 in both databases).

use std::fmt;

use crate::StoreError;

/// Which database a connection speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `column` in a WHERE term that must not pick the index (SQLite's unary `+`; PostgreSQL
    /// has no such hint and plans this case well).
    pub(crate) fn no_index(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => format!("+{column}"),
            Dialect::Postgres => column.to_owned(),
        }
    }

    /// Appended to a SELECT that claims rows for this node: other nodes skip them rather than
    /// wait (SQLite has one writer at a time, so a claim there is already exclusive).
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// A parameter as bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Param<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
}

/// A column as read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Real(v) => write!(f, "{v}"),
            Value::Text(v) => write!(f, "{v:?}"),
        }
    }
}

pub(crate) trait ToParam {
    fn to_param(&self) -> Param<'_>;
}

/// Converts a column; the error says what the value was not.
pub(crate) trait FromValue: Sized {
    fn from_value(v: &Value) -> Result<Self, String>;
}

/// `params![a, b]` for [`Db`] calls.
macro_rules! params {
    () => { &[] as &[&dyn $crate::db::ToParam] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::db::ToParam),+] as &[&dyn $crate::db::ToParam] };
}
pub(crate) use params;

impl ToParam for i64 {
    fn to_param(&self) -> Param<'_> {
        Param::Int(*self)
    }
}
impl ToParam for u32 {
    fn to_param(&self) -> Param<'_> {
        Param::Int(i64::from(*self))
    }
}
impl ToParam for bool {
    fn to_param(&self) -> Param<'_> {
        Param::Int(i64::from(*self))
    }
}
impl ToParam for f64 {
    fn to_param(&self) -> Param<'_> {
        Param::Real(*self)
    }
}
impl ToParam for str {
    fn to_param(&self) -> Param<'_> {
        Param::Text(self)
    }
}
impl ToParam for String {
    fn to_param(&self) -> Param<'_> {
        Param::Text(self)
    }
}
impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self) -> Param<'_> {
        (**self).to_param()
    }
}
impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self) -> Param<'_> {
        match self {
            Some(v) => v.to_param(),
            None => Param::Null,
        }
    }
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(*i),
            other => Err(format!("{other} is not an integer")),
        }
    }
}
impl FromValue for bool {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Int(0) => Ok(false),
            Value::Int(1) => Ok(true),
            other => Err(format!("{other} is not 0 or 1")),
        }
    }
}
impl FromValue for f64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Real(r) => Ok(*r),
            // SQLite hands back a REAL column holding a whole number as an integer.
            Value::Int(i) => Ok(*i as f64),
            other => Err(format!("{other} is not a number")),
        }
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            other => Err(format!("{other} is not text")),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    what: &'static str,
    values: Vec<Value>,
}

impl Row {
    pub(crate) fn new(what: &'static str, values: Vec<Value>) -> Self {
        Self { what, values }
    }

    /// Column `i` as `T`; a missing or mistyped column is [`StoreError::Corrupt`] naming the
    /// query.
    pub(crate) fn get<T: FromValue>(&self, i: usize) -> Result<T, StoreError> {
        let v = self.values.get(i).ok_or_else(|| StoreError::Corrupt {
            what: self.what,
            value: format!("no column {i}"),
        })?;
        T::from_value(v).map_err(|value| StoreError::Corrupt {
            what: self.what,
            value: format!("column {i}: {value}"),
        })
    }
}

/// What went wrong inside the database driver.
#[derive(Debug)]
pub enum DbError {
    Sqlite(rusqlite::Error),
    Postgres(tokio_postgres::Error),
    /// The PostgreSQL pool could not start (its runtime) or lost a connection's task.
    Pool(String),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Sqlite(e) => write!(f, "{e}"),
            // The driver's Display hides the server's message behind "db error".
            DbError::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.code().code(), db.message()),
                None => write!(f, "{e}"),
            },
            DbError::Pool(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DbError::Sqlite(e) => Some(e),
            DbError::Postgres(e) => Some(e),
            DbError::Pool(_) => None,
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(e)
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::Postgres(e)
    }
}

impl DbError {
    /// A unique or primary key already held the value (SQLSTATE 23505 / SQLITE_CONSTRAINT).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            }
            DbError::Postgres(e) => {
                e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
            }
            _ => false,
        }
    }
}

/// A connection, SQLite's or one taken from the PostgreSQL pool.
pub(crate) trait Db {
    fn dialect(&self) -> Dialect;
    /// Runs one statement; returns the rows it changed.
    fn execute(
        &mut self,
        what: &'static str,
        sql: &str,
        params: &[&dyn ToParam],
    ) -> Result<u64, StoreError>;
    fn query(
        &mut self,
        what: &'static str,
        sql: &str,
        params: &[&dyn ToParam],
    ) -> Result<Vec<Row>, StoreError>;
    /// Several statements without parameters (schema, BEGIN/COMMIT).
    fn batch(&mut self, what: &'static str, sql: &str) -> Result<(), StoreError>;
}

impl dyn Db + '_ {
    /// At most one row (the first).
    pub(crate) fn query_opt(
        &mut self,
        what: &'static str,
        sql: &str,
        params: &[&dyn ToParam],
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.query(what, sql, params)?.into_iter().next())
    }

    /// Exactly one row.
    pub(crate) fn query_one(
        &mut self,
        what: &'static str,
        sql: &str,
        params: &[&dyn ToParam],
    ) -> Result<Row, StoreError> {
        self.query_opt(what, sql, params)?
            .ok_or_else(|| StoreError::Corrupt {
                what,
                value: "no row".to_owned(),
            })
    }

    /// Every row through `f`.
    pub(crate) fn query_map<T>(
        &mut self,
        what: &'static str,
        sql: &str,
        params: &[&dyn ToParam],
        f: impl FnMut(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.query(what, sql, params)?.iter().map(f).collect()
    }
}

/// `?N` parameters renumbered `$1…` in order of first use; `order[k]` is the index into the
/// caller's parameters of `$k+1`. Text in single quotes is left alone.
pub(crate) fn renumber(sql: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut order: Vec<usize> = Vec::new();
    let mut chars = sql.char_indices().peekable();
    let mut quoted = false;
    while let Some((_, c)) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
            out.push(c);
            continue;
        }
        if c != '?' || quoted {
            out.push(c);
            continue;
        }
        let mut n: usize = 0;
        let mut digits = 0;
        while let Some(&(_, d)) = chars.peek() {
            let Some(v) = d.to_digit(10) else { break };
            n = n * 10 + v as usize;
            digits += 1;
            chars.next();
        }
        if digits == 0 || n == 0 {
            // Not a numbered parameter: leave it for the server to reject.
            out.push('?');
            continue;
        }
        let k = match order.iter().position(|&i| i == n - 1) {
            Some(k) => k,
            None => {
                order.push(n - 1);
                order.len() - 1
            }
        };
        out.push('$');
        out.push_str(&(k + 1).to_string());
    }
    (out, order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renumber_orders_by_first_use_and_drops_unused_numbers() {
        let (sql, order) =
            renumber("SELECT a FROM t WHERE x = ?2 AND (?4 IS NULL OR y = ?4) LIMIT ?7 OFFSET ?8");
        assert_eq!(
            sql,
            "SELECT a FROM t WHERE x = $1 AND ($2 IS NULL OR y = $2) LIMIT $3 OFFSET $4"
        );
        assert_eq!(order, vec![1, 3, 6, 7]);
    }

    #[test]
    fn renumber_leaves_quoted_text_and_bare_question_marks() {
        let (sql, order) = renumber("SELECT '?1', ?12 FROM t WHERE s = 'it''s ?3' OR ? = ?1");
        assert_eq!(sql, "SELECT '?1', $1 FROM t WHERE s = 'it''s ?3' OR ? = $2");
        assert_eq!(order, vec![11, 0]);
    }

    #[test]
    fn values_convert_or_say_what_they_are_not() {
        assert_eq!(Option::<i64>::from_value(&Value::Null), Ok(None));
        assert_eq!(f64::from_value(&Value::Int(3)), Ok(3.0));
        assert_eq!(bool::from_value(&Value::Int(1)), Ok(true));
        assert_eq!(
            bool::from_value(&Value::Int(2)),
            Err("2 is not 0 or 1".to_owned())
        );
        assert_eq!(
            i64::from_value(&Value::Text("x".into())),
            Err("\"x\" is not an integer".to_owned())
        );
        let row = Row::new("test row", vec![Value::Int(1)]);
        assert!(matches!(
            row.get::<String>(0),
            Err(StoreError::Corrupt {
                what: "test row",
                ..
            })
        ));
        assert!(matches!(row.get::<i64>(3), Err(StoreError::Corrupt { .. })));
    }
}
