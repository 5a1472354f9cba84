//! The PostgreSQL side of [`Db`]: a small pool of tokio-postgres connections whose socket tasks
//! run on the store's own one-thread runtime, so the store stays plain blocking code callable
//! from any thread (a daemon's blocking pool or a test), like the SQLite side.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls, Statement};

use crate::db::{renumber, Db, DbError, Dialect, Param, Row, ToParam, Value};
use crate::StoreError;

/// How long a caller waits for a free connection before it is told the pool is exhausted.
const CHECKOUT_WAIT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct PgPool {
    runtime: Option<tokio::runtime::Runtime>,
    config: tokio_postgres::Config,
    /// `host:port/dbname`, never the password.
    shown: String,
    max: usize,
    slots: Mutex<Slots>,
    freed: Condvar,
}

struct Slots {
    idle: Vec<PgDb>,
    open: usize,
}

pub(crate) struct PgDb {
    client: Client,
    /// Prepared statements by the SQL as written (SQLite syntax), with their parameter order.
    statements: HashMap<String, (Statement, Vec<usize>)>,
}

impl PgPool {
    /// Connects once (so a wrong URL fails at start-up, naming the server) and keeps that
    /// connection.
    pub(crate) fn connect(url: &str, max: usize) -> Result<PgPool, StoreError> {
        let mut config: tokio_postgres::Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| StoreError::Open {
                    path: redact(url),
                    source: DbError::Postgres(e),
                })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("hark");
        }
        let shown = shown(&config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hark-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Open {
                path: shown.clone(),
                source: DbError::Pool(format!("runtime: {e}")),
            })?;
        let pool = PgPool {
            runtime: Some(runtime),
            config,
            shown,
            max: max.max(1),
            slots: Mutex::new(Slots {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        };
        let first = pool.open_connection().map_err(|e| StoreError::Open {
            path: pool.shown.clone(),
            source: e,
        })?;
        let mut slots = pool.slots();
        slots.open = 1;
        slots.idle.push(first);
        drop(slots);
        Ok(pool)
    }

    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open_connection(&self) -> Result<PgDb, DbError> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| DbError::Pool("the pool is shut down".to_owned()))?;
        let config = self.config.clone();
        let connecting = runtime.spawn(async move { config.connect(NoTls).await });
        let (client, connection) =
            block_on(connecting).map_err(|e| DbError::Pool(format!("connect task: {e}")))??;
        // The socket task ends when the client is dropped or the server goes away; the
        // client then reports `is_closed` and the pool drops it.
        runtime.spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "PostgreSQL connection ended");
            }
        });
        Ok(PgDb {
            client,
            statements: HashMap::new(),
        })
    }

    /// Runs `f` on a connection of the pool (a new one while fewer than `max` are open).
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut PgDb) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut db = self.checkout()?;
        let mut slot = Slot {
            pool: self,
            held: true,
        };
        let result = f(&mut db);
        slot.held = false;
        let mut slots = self.slots();
        if db.client.is_closed() {
            slots.open -= 1;
        } else {
            slots.idle.push(db);
        }
        drop(slots);
        self.freed.notify_one();
        result
    }

    fn checkout(&self) -> Result<PgDb, StoreError> {
        let deadline = Instant::now() + CHECKOUT_WAIT;
        let mut slots = self.slots();
        loop {
            while let Some(db) = slots.idle.pop() {
                if !db.client.is_closed() {
                    return Ok(db);
                }
                slots.open -= 1;
            }
            if slots.open < self.max {
                slots.open += 1;
                drop(slots);
                return self.open_connection().map_err(|source| {
                    self.slots().open -= 1;
                    self.freed.notify_one();
                    StoreError::Query {
                        what: "connect to PostgreSQL",
                        source,
                    }
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::Query {
                    what: "connect to PostgreSQL",
                    source: DbError::Pool(format!(
                        "all {} connections to {} stayed busy for {}s",
                        self.max,
                        self.shown,
                        CHECKOUT_WAIT.as_secs()
                    )),
                });
            }
            slots = self
                .freed
                .wait_timeout(slots, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// The slot of a checked-out connection: if `f` panics, the connection is dropped (closed)
/// and its slot freed; else the pool would shrink by one per panic until checkouts time out.
struct Slot<'a> {
    pool: &'a PgPool,
    held: bool,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if self.held {
            self.pool.slots().open -= 1;
            self.pool.freed.notify_one();
        }
    }
}

impl Drop for PgPool {
    fn drop(&mut self) {
        self.slots().idle.clear();
        // Allowed inside an async context too (a store dropped by a task).
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The URL without its password, for errors and logs.
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(unparsable PostgreSQL URL)".to_owned(),
    }
}

fn shown(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{host}:{port}/{}",
        config.get_dbname().unwrap_or("")
    )
}

/// Polls `fut` on this thread, parking between wake-ups: no runtime is entered, so this works
/// on any thread, inside a tokio worker too (where it blocks like the SQLite side does).
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// A [`Param`] bound as the type the server inferred for its placeholder.
#[derive(Debug)]
struct PgParam<'a>(Param<'a>);

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for PgParam<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self.0 {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                Type::BOOL => (v != 0).to_sql(ty, out),
                Type::FLOAT8 => (v as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => {
                    v.to_string().as_str().to_sql(ty, out)
                }
                _ => Err(format!("cannot bind integer {v} as {ty}").into()),
            },
            Param::Real(v) => match *ty {
                Type::FLOAT8 => v.to_sql(ty, out),
                Type::FLOAT4 => (v as f32).to_sql(ty, out),
                _ => Err(format!("cannot bind real {v} as {ty}").into()),
            },
            Param::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    s.to_sql(ty, out)
                }
                _ => Err(format!("cannot bind text as {ty}").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn failed(what: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::Query {
        what,
        source: DbError::Postgres(e),
    }
}

impl PgDb {
    fn prepared(
        &mut self,
        what: &'static str,
        sql: &str,
    ) -> Result<(Statement, Vec<usize>), StoreError> {
        if let Some(found) = self.statements.get(sql) {
            return Ok(found.clone());
        }
        let (text, order) = renumber(sql);
        let st = block_on(self.client.prepare(&text)).map_err(failed(what))?;
        self.statements
            .insert(sql.to_owned(), (st.clone(), order.clone()));
        Ok((st, order))
    }

    fn bound<'a>(
        what: &'static str,
        order: &[usize],
        params: &'a [&'a dyn ToParam],
    ) -> Result<Vec<PgParam<'a>>, StoreError> {
        order
            .iter()
            .map(|&i| {
                params
                    .get(i)
                    .map(|p| PgParam(p.to_param()))
                    .ok_or_else(|| StoreError::Query {
                        what,
                        source: DbError::Pool(format!("parameter ?{} was not given", i + 1)),
                    })
            })
            .collect()
    }
}

fn read(what: &'static str, row: &tokio_postgres::Row) -> Result<Row, StoreError> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let v = match *ty {
            Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int)),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(i)
                .map(|v| v.map(|v| Value::Int(v.into()))),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(i)
                .map(|v| v.map(|v| Value::Int(v.into()))),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(i)
                .map(|v| v.map(|v| Value::Int(v.into()))),
            Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map(|v| v.map(Value::Real)),
            Type::FLOAT4 => row
                .try_get::<_, Option<f32>>(i)
                .map(|v| v.map(|v| Value::Real(v.into()))),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => row
                .try_get::<_, Option<String>>(i)
                .map(|v| v.map(Value::Text)),
            _ => {
                return Err(StoreError::Corrupt {
                    what,
                    value: format!("column {} has type {ty}", column.name()),
                })
            }
        };
        values.push(v.map_err(failed(what))?.unwrap_or(Value::Null));
    }
    Ok(Row::new(what, values))
}

impl Db for PgDb {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(
        &mut self,
        what: &'static str,
        sql: &str,
        params: &[&dyn ToParam],
    ) -> Result<u64, StoreError> {
        let (st, order) = self.prepared(what, sql)?;
        let bound = Self::bound(what, &order, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as _).collect();
        block_on(self.client.execute(&st, &refs)).map_err(failed(what))
    }

    fn query(
        &mut self,
        what: &'static str,
        sql: &str,
        params: &[&dyn ToParam],
    ) -> Result<Vec<Row>, StoreError> {
        let (st, order) = self.prepared(what, sql)?;
        let bound = Self::bound(what, &order, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as _).collect();
        let rows = block_on(self.client.query(&st, &refs)).map_err(failed(what))?;
        rows.iter().map(|r| read(what, r)).collect()
    }

    fn batch(&mut self, what: &'static str, sql: &str) -> Result<(), StoreError> {
        block_on(self.client.batch_execute(sql)).map_err(failed(what))
    }
}
