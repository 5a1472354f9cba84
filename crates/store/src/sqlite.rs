//! The SQLite side of [`Db`]: one connection with its statement cache.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::Connection;

use crate::db::{Db, DbError, Dialect, Param, Row, ToParam, Value};
use crate::StoreError;

pub(crate) struct SqliteDb {
    pub(crate) conn: Connection,
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Param::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Param::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(v)),
            Param::Real(v) => ToSqlOutput::Borrowed(ValueRef::Real(v)),
            Param::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

fn failed(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::Query {
        what,
        source: DbError::Sqlite(e),
    }
}

fn bind<'a>(params: &'a [&'a dyn ToParam]) -> impl Iterator<Item = Param<'a>> + 'a {
    params.iter().map(|p| p.to_param())
}

impl Db for SqliteDb {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(
        &mut self,
        what: &'static str,
        sql: &str,
        params: &[&dyn ToParam],
    ) -> Result<u64, StoreError> {
        let mut st = self.conn.prepare_cached(sql).map_err(failed(what))?;
        let n = st
            .execute(rusqlite::params_from_iter(bind(params)))
            .map_err(failed(what))?;
        Ok(n as u64)
    }

    fn query(
        &mut self,
        what: &'static str,
        sql: &str,
        params: &[&dyn ToParam],
    ) -> Result<Vec<Row>, StoreError> {
        let mut st = self.conn.prepare_cached(sql).map_err(failed(what))?;
        let columns = st.column_count();
        let mut rows = st
            .query(rusqlite::params_from_iter(bind(params)))
            .map_err(failed(what))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(failed(what))? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match r.get_ref(i).map_err(failed(what))? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(v) => Value::Real(v),
                    ValueRef::Text(b) => match std::str::from_utf8(b) {
                        Ok(s) => Value::Text(s.to_owned()),
                        Err(_) => {
                            return Err(StoreError::Corrupt {
                                what,
                                value: format!("column {i} is not UTF-8"),
                            })
                        }
                    },
                    ValueRef::Blob(_) => {
                        return Err(StoreError::Corrupt {
                            what,
                            value: format!("column {i} is a blob"),
                        })
                    }
                });
            }
            out.push(Row::new(what, values));
        }
        Ok(out)
    }

    fn batch(&mut self, what: &'static str, sql: &str) -> Result<(), StoreError> {
        self.conn.execute_batch(sql).map_err(failed(what))
    }
}
