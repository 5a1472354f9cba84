//! Durable metadata for Hark: calls, recordings, transcriptions and the outbox of status
//! callbacks, in one SQLite file (`{storage.dir}/hark.db`, one node) or a PostgreSQL database
//! that several nodes share (`storage.database_url`). Plain synchronous code: the daemon calls it
//! from blocking threads. Nothing about Hark lives only in memory.
//!
//! Times are stored as Unix milliseconds (UTC); formatting (RFC 2822) is the API layer's job.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;
use thiserror::Error;

use db::{params, Db};
use pg::PgPool;
use sqlite::SqliteDb;

mod calls;
mod cluster;
mod db;
mod domain;
mod outbox;
mod pg;
mod recordings;
mod schema;
mod schema_pg;
mod sqlite;
pub mod testing;
mod token_use;
mod transcript;
mod transcriptions;

pub use calls::CallFilter;
pub use cluster::{NodeRecord, UploadItem, UploadState};
pub use db::{DbError, Dialect};
pub use domain::{
    is_sid, AccountSid, ApiKeySid, ApplicationSid, CallSid, CallStatus, Direction, HttpMethod,
    ParseError, RecordingSid, RecordingSource, RecordingStatus, TranscriptionSid,
    TranscriptionStatus,
};
pub use outbox::{AttemptNext, Delivery, DeliveryAttempt};
pub use schema::SCHEMA_VERSION;

/// File name of the database inside `storage.dir`.
pub const DEFAULT_FILE_NAME: &str = "hark.db";

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open { path: String, source: DbError },
    #[error("database query {what}: {source}")]
    Query { what: &'static str, source: DbError },
    #[error("database migration to version {version}: {source}")]
    Migration { version: u32, source: DbError },
    #[error("stored value of {what} is invalid: {value}")]
    Corrupt { what: &'static str, value: String },
    /// The parent directory of the database could not be created.
    #[error("database directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Written by a newer Hark; we refuse rather than downgrade it.
    #[error("database {path} has schema version {found}, this build knows up to {supported}")]
    TooNew {
        path: String,
        found: u32,
        supported: u32,
    },
    /// An update named a row that does not exist.
    #[error("{what} {sid} not found")]
    NotFound { what: &'static str, sid: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub sid: CallSid,
    pub account_sid: AccountSid,
    pub from: String,
    pub to: String,
    /// `inbound` for calls into Hark.
    pub direction: Direction,
    pub status: CallStatus,
    pub date_created_ms: i64,
    pub date_updated_ms: i64,
    pub start_time_ms: Option<i64>,
    pub end_time_ms: Option<i64>,
    /// Seconds from answer to end; `None` until the call ends.
    pub duration_secs: Option<u32>,
    /// The call whose `<Dial>` placed this one (`outbound-dial`).
    pub parent_call_sid: Option<CallSid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRecord {
    pub sid: RecordingSid,
    pub account_sid: AccountSid,
    pub call_sid: CallSid,
    /// Hark writes `in-progress`, `completed`, `absent` and `deleted`.
    pub status: RecordingStatus,
    pub source: RecordingSource,
    pub channels: u32,
    /// Samples per second of the WAV: 8000, or 16000 for an Opus caller (wideband).
    pub sample_rate: u32,
    pub date_created_ms: i64,
    pub date_updated_ms: i64,
    pub start_time_ms: i64,
    /// `None` while in progress.
    pub duration_secs: Option<u32>,
    pub error_code: Option<u32>,
    /// File name of the WAV inside the storage directory.
    pub media_file: String,
    pub transcribe: bool,
    pub transcribe_callback: Option<String>,
    /// `recordingStatusCallback` subscription, if any.
    pub status_callback: Option<StatusCallbackSpec>,
    /// Set on DELETE; the row is kept (soft delete) for `IncludeSoftDeleted`.
    pub deleted_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCallbackSpec {
    pub url: String,
    pub method: HttpMethod,
    pub in_progress: bool,
    pub completed: bool,
    pub absent: bool,
}

/// A transcription (`TR…`) and, while not finished, the job that produces it (SPEC §3.7).
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptionRecord {
    pub sid: TranscriptionSid,
    pub account_sid: AccountSid,
    pub recording_sid: RecordingSid,
    pub call_sid: CallSid,
    pub status: TranscriptionStatus,
    /// `None` until completed.
    pub text: Option<String>,
    /// BCP-47, as asked for (`transcribeLanguage` or the configured default).
    pub language: Option<String>,
    /// Which engine produced (or is producing) it.
    pub engine: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Seconds of audio given to the engine, and seconds it took (real-time factor).
    pub audio_secs: Option<f64>,
    pub processing_secs: Option<f64>,
    /// Whole seconds of the recording (REST `duration`, a string there).
    pub duration_secs: Option<u32>,
    /// `fast` (REST `type`).
    pub kind: String,
    /// `transcribeCallback` URL, if any.
    pub transcribe_callback: Option<String>,
    pub date_created_ms: i64,
    pub date_updated_ms: i64,
}

impl TranscriptionRecord {
    /// The only `type` Hark produces.
    pub const FAST: &'static str = "fast";
}

/// Transcriptions by status, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranscriptionCounts {
    pub queued: u64,
    pub in_progress: u64,
    pub completed: u64,
    pub failed: u64,
}

/// One utterance of a transcription; times relative to the start of the recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// 1-based position in the transcription; unique per transcription.
    pub order: u32,
    pub start_sec: f64,
    pub duration_sec: f64,
    /// `caller` for the recorded party.
    pub speaker: String,
    pub text: String,
}

/// Something Hark itself said on a call (`<Say>` text).
#[derive(Debug, Clone, PartialEq)]
pub struct CallEvent {
    pub call_sid: CallSid,
    /// When it started playing, Unix ms.
    pub at_ms: i64,
    /// `system` for `<Say>`.
    pub speaker: String,
    pub text: String,
    pub duration_sec: f64,
}

/// One line of a call's transcript (SPEC §8); times relative to the call's answer time.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedUtterance {
    /// 1-based, in time order.
    pub order: u32,
    /// Not rounded; never negative.
    pub start_sec: f64,
    pub duration_sec: f64,
    pub speaker: String,
    pub text: String,
}

/// What a per-call transcript request resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct CallTranscript {
    pub call_sid: CallSid,
    pub account_sid: AccountSid,
    /// `None` while a transcription of the call is queued or running, or when none completed.
    pub utterances: Option<Vec<TimedUtterance>>,
}

/// Filters of `GET …/Recordings.json` (SPEC §6.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingFilter {
    pub call_sid: Option<CallSid>,
    /// `DateCreated=YYYY-MM-DD` (that UTC day), `DateCreated<` / `DateCreated>` bounds as
    /// Unix ms: created_ms >= after_ms, created_ms < before_ms.
    pub created_on_or_after_ms: Option<i64>,
    pub created_before_ms: Option<i64>,
    pub include_soft_deleted: bool,
    /// Hark's own filters (the console's): the recording's status, and the number the
    /// recorded call came from or went to.
    pub status: Option<RecordingStatus>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One page, newest first (`date_created` descending, then sid descending for ties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Whether another page follows.
    pub has_more: bool,
}

/// A queued webhook (status callback), delivered in order per `group_key` (the recording SID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    /// Sent as `I-Twilio-Idempotency-Token` so retries can be de-duplicated.
    pub idempotency_key: String,
    pub group_key: String,
    pub url: String,
    pub method: String,
    pub params: Vec<(String, String)>,
    pub attempts: u32,
    pub next_attempt_ms: i64,
}

pub struct Store {
    backend: Backend,
    /// The node this process is in a shared database ([`Store::with_node`]); `None` for a
    /// node alone (its rows carry no node).
    node: Option<String>,
    /// How long a claimed callback is this node's before another node may take it over.
    lease_ms: i64,
    /// The same for a transcription job (longer: the engine's time limit).
    job_lease_ms: i64,
}

/// Default [`Store::with_node`] lease: longer than any webhook delivery with its retries
/// within one attempt, and than a transcription's time limit.
pub const DEFAULT_LEASE_MS: i64 = 15 * 60 * 1000;

enum Backend {
    // One connection is enough: WAL keeps readers of other processes unblocked, and our
    // statements are short. Cached statements live in the connection.
    Sqlite(Mutex<SqliteDb>),
    Postgres(Box<PgPool>),
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// 16 list-filter shapes × 2 paging styles plus the fixed statements.
const STATEMENT_CACHE: usize = 64;
/// Connections per node to a shared PostgreSQL: the daemon's blocking threads that touch the
/// store at once (webhooks, API, recorders) rarely exceed this; more would only queue in the
/// server.
pub const POSTGRES_POOL_SIZE: usize = 8;

impl Store {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: shown.clone(),
            source: source.into(),
        })?;
        Self::configure(conn, &shown)
    }

    /// Opens `{dir}/hark.db`, creating `dir` if needed.
    pub fn open_in_dir(dir: &Path) -> Result<Store, StoreError> {
        Self::open(&Self::path_in_dir(dir))
    }

    /// Where [`Store::open_in_dir`] keeps the database.
    pub fn path_in_dir(dir: &Path) -> PathBuf {
        dir.join(DEFAULT_FILE_NAME)
    }

    /// A private in-memory database (for other crates' tests); nothing survives the drop.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: ":memory:".to_owned(),
            source: source.into(),
        })?;
        Self::configure(conn, ":memory:")
    }

    /// Connects to a PostgreSQL database (`postgres://user:password@host:port/dbname`) shared
    /// by several nodes, creating or migrating its tables (one node at a time).
    pub fn connect_postgres(url: &str, pool_size: usize) -> Result<Store, StoreError> {
        let pool = PgPool::connect(url, pool_size)?;
        let shown = pool.shown().to_owned();
        pool.with(|db| schema_pg::migrate(db, &shown))?;
        Ok(Store {
            node: None,
            lease_ms: DEFAULT_LEASE_MS,
            job_lease_ms: DEFAULT_LEASE_MS,
            backend: Backend::Postgres(Box::new(pool)),
        })
    }

    /// `storage.database_url`: a `postgres://` or `postgresql://` URL, or empty for the SQLite
    /// file in `dir`.
    pub fn open_configured(database_url: &str, dir: &Path) -> Result<Store, StoreError> {
        let url = database_url.trim();
        if url.is_empty() {
            return Self::open_in_dir(dir);
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Self::open(Path::new(path));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Self::connect_postgres(url, POSTGRES_POOL_SIZE);
        }
        Err(StoreError::Open {
            path: pg::redact(url),
            source: DbError::Pool(
                "storage.database_url must start with postgres://, postgresql:// or sqlite://"
                    .to_owned(),
            ),
        })
    }

    fn configure(mut conn: Connection, path: &str) -> Result<Store, StoreError> {
        let err = |source: rusqlite::Error| StoreError::Open {
            path: path.to_owned(),
            source: source.into(),
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        // Before any pragma that writes to the file: leave a newer database untouched.
        schema::check_not_newer(&conn, path)?;
        // journal_mode answers with the mode in effect; an in-memory database stays `memory`.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(err)?;
        // NORMAL in WAL mode: a commit survives a process crash; only an OS crash or power
        // loss can lose the last transactions, never corrupt the file.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(err)?;
        // A big transaction grows the WAL; give the space back after the next checkpoint.
        let _limit: i64 = conn
            .query_row("PRAGMA journal_size_limit = 8388608", [], |r| r.get(0))
            .map_err(err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        schema::migrate(&mut conn, path)?;
        Ok(Store {
            node: None,
            lease_ms: DEFAULT_LEASE_MS,
            job_lease_ms: DEFAULT_LEASE_MS,
            backend: Backend::Sqlite(Mutex::new(SqliteDb { conn })),
        })
    }

    /// Which database this store is in.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    pub fn schema_version(&self) -> Result<u32, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => {
                schema::user_version(&sqlite(db).conn).map_err(|e| StoreError::Query {
                    what: "schema version",
                    source: e.into(),
                })
            }
            Backend::Postgres(pool) => pool.with(|db| schema_pg::version(db)),
        }
    }

    /// Runs `f` on a connection (SQLite's one, or one of the pool's).
    fn with_db<T>(
        &self,
        f: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => f(&mut *sqlite(db)),
            Backend::Postgres(pool) => pool.with(|db| f(db)),
        }
    }

    /// Runs `f` in one transaction: committed if it returns `Ok`, rolled back on an error or a
    /// panic. SQLite takes the write lock at once (no upgrade deadlocks between readers).
    fn tx<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction(what, "BEGIN IMMEDIATE", "BEGIN", f)
    }

    /// Runs `f`'s reads on one snapshot (PostgreSQL's default isolation would take a new one
    /// per statement); SQLite takes no write lock.
    fn read_tx<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction(
            what,
            "BEGIN DEFERRED",
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            f,
        )
    }

    fn transaction<T>(
        &self,
        what: &'static str,
        sqlite_begin: &str,
        postgres_begin: &str,
        f: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_db(|db| {
            let begin = match db.dialect() {
                Dialect::Sqlite => sqlite_begin,
                Dialect::Postgres => postgres_begin,
            };
            db.batch(what, begin)?;
            let mut guard = RollbackOnDrop {
                db,
                what,
                done: false,
            };
            let value = f(&mut *guard.db)?;
            guard.db.batch(what, "COMMIT")?;
            guard.done = true;
            Ok(value)
        })
    }

    /// Runs `sql` (a DELETE taking `?1` = `arg`, `?2` = batch size) until it deletes less than
    /// a batch; the connection is let go between batches. Returns the rows deleted.
    fn delete_in_batches(
        &self,
        sql: &str,
        arg: i64,
        what: &'static str,
    ) -> Result<usize, StoreError> {
        const BATCH: i64 = 1000;
        let mut total = 0;
        loop {
            let n = self.with_db(|db| db.execute(what, sql, params![arg, BATCH]))?;
            total += n as usize;
            if n < BATCH as u64 {
                return Ok(total);
            }
        }
    }
}

/// The SQLite connection; a panic in another thread while holding it does not make the store
/// unusable (its open transaction was rolled back by [`RollbackOnDrop`]).
fn sqlite(db: &Mutex<SqliteDb>) -> MutexGuard<'_, SqliteDb> {
    db.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct RollbackOnDrop<'a, 'b> {
    db: &'a mut (dyn Db + 'b),
    what: &'static str,
    done: bool,
}

impl Drop for RollbackOnDrop<'_, '_> {
    fn drop(&mut self) {
        if !self.done {
            // Nothing to do if it fails: the connection's next BEGIN would report it.
            let _ = self.db.batch(self.what, "ROLLBACK");
        }
    }
}

/// Reads an integer column that must fit in `u32`.
fn to_u32(what: &'static str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt {
        what,
        value: v.to_string(),
    })
}

/// `page_size + 1` rows were asked for; the extra one only tells whether more follow.
fn into_page<T>(mut items: Vec<T>, page_size: u32) -> Page<T> {
    let has_more = items.len() > page_size as usize;
    items.truncate(page_size as usize);
    Page { items, has_more }
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::sync::LazyLock;

    use super::*;

    pub static AC: LazyLock<AccountSid> = LazyLock::new(|| AccountSid::from_bits(1));
    pub static AC2: LazyLock<AccountSid> = LazyLock::new(|| AccountSid::from_bits(2));

    /// Test SIDs by number: `ca(1)` is `CA000…001`; the number orders them as the text does.
    pub fn ca(n: u128) -> CallSid {
        CallSid::from_bits(n)
    }

    pub fn re(n: u128) -> RecordingSid {
        RecordingSid::from_bits(n)
    }

    pub fn tr(n: u128) -> TranscriptionSid {
        TranscriptionSid::from_bits(n)
    }

    /// `HARK_TEST_STORE=postgres`: the suite runs against PostgreSQL (a private server for
    /// this test process, one schema per test) instead of SQLite files.
    pub fn on_postgres() -> bool {
        std::env::var("HARK_TEST_STORE").is_ok_and(|v| v == "postgres")
    }

    fn postgres() -> &'static crate::testing::PostgresServer {
        static SERVER: std::sync::OnceLock<crate::testing::PostgresServer> =
            std::sync::OnceLock::new();
        SERVER.get_or_init(|| {
            crate::testing::PostgresServer::start().expect("start the test PostgreSQL")
        })
    }

    /// A fresh, empty store (kept alive by the returned guard): a SQLite file in its own
    /// temporary directory, or a new schema in the test PostgreSQL (see [`on_postgres`]).
    pub fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = if on_postgres() {
            let url = fresh_postgres_url();
            // Kept with the directory, so `reopen` finds the same database.
            std::fs::write(dir.path().join(POSTGRES_URL_FILE), &url).expect("write URL");
            Store::connect_postgres(&url, 4).expect("connect")
        } else {
            Store::open_in_dir(dir.path()).expect("open")
        };
        (dir, store)
    }

    const POSTGRES_URL_FILE: &str = "postgres-url";

    /// A URL of a new, empty schema in the test PostgreSQL.
    pub fn fresh_postgres_url() -> String {
        postgres().fresh_schema_url().expect("test schema")
    }

    /// Opens (again) the store that [`store`] made in `dir`: the SQLite file, or a new
    /// connection to the same PostgreSQL schema.
    pub fn reopen(dir: &Path) -> Store {
        match std::fs::read_to_string(dir.join(POSTGRES_URL_FILE)) {
            Ok(url) => Store::connect_postgres(&url, 4).expect("reconnect"),
            Err(_) => Store::open_in_dir(dir).expect("reopen"),
        }
    }

    /// A SQLite store, for tests of SQLite itself (query plans, files, pragmas); `None` in a
    /// PostgreSQL run, where those tests have nothing to check.
    pub fn sqlite_only() -> Option<(tempfile::TempDir, Store)> {
        if on_postgres() {
            return None;
        }
        Some(store())
    }

    impl Store {
        /// Raw SQL on the store's database (damaging rows on purpose).
        pub(crate) fn exec_raw(&self, sql: &str) {
            self.with_db(|db| db.batch("raw test SQL", sql))
                .expect("raw test SQL");
        }

        /// The SQLite connection; panics on PostgreSQL.
        pub(crate) fn sqlite_conn(&self) -> MutexGuard<'_, SqliteDb> {
            match &self.backend {
                Backend::Sqlite(db) => sqlite(db),
                Backend::Postgres(_) => panic!("not a SQLite store"),
            }
        }
    }

    pub fn call(sid: CallSid, created: i64) -> CallRecord {
        CallRecord {
            sid,
            account_sid: AC.clone(),
            from: "sip:alice@example.com".to_owned(),
            to: "sip:+15550100@hark".to_owned(),
            direction: Direction::Inbound,
            status: CallStatus::Ringing,
            date_created_ms: created,
            date_updated_ms: created,
            start_time_ms: None,
            end_time_ms: None,
            duration_secs: None,
            parent_call_sid: None,
        }
    }

    pub fn outbox_item(key: &str, group: &str) -> OutboxItem {
        OutboxItem {
            id: 0,
            idempotency_key: key.to_owned(),
            group_key: group.to_owned(),
            url: "https://example.com/cb".to_owned(),
            method: "POST".to_owned(),
            params: vec![
                ("RecordingSid".to_owned(), group.to_owned()),
                ("K".to_owned(), key.to_owned()),
            ],
            attempts: 0,
            next_attempt_ms: 0,
        }
    }

    /// A queued transcription of `recording_sid` (of call `ca(1)`).
    pub fn transcription(
        sid: TranscriptionSid,
        recording_sid: RecordingSid,
        created: i64,
    ) -> TranscriptionRecord {
        TranscriptionRecord {
            sid,
            account_sid: AC.clone(),
            recording_sid,
            call_sid: ca(1),
            status: TranscriptionStatus::Queued,
            text: None,
            language: None,
            engine: None,
            error: None,
            audio_secs: None,
            processing_secs: None,
            duration_secs: None,
            kind: TranscriptionRecord::FAST.to_owned(),
            transcribe_callback: None,
            date_created_ms: created,
            date_updated_ms: created,
        }
    }

    pub fn utterance(order: u32, start_sec: f64, text: &str) -> Utterance {
        Utterance {
            order,
            start_sec,
            duration_sec: 1.5,
            speaker: "caller".to_owned(),
            text: text.to_owned(),
        }
    }

    pub fn recording(sid: RecordingSid, call_sid: CallSid, created: i64) -> RecordingRecord {
        RecordingRecord {
            media_file: format!("{sid}.wav"),
            sid,
            account_sid: AC.clone(),
            call_sid,
            status: RecordingStatus::InProgress,
            source: RecordingSource::RecordVerb,
            channels: 1,
            sample_rate: 8000,
            date_created_ms: created,
            date_updated_ms: created,
            start_time_ms: created,
            duration_secs: None,
            error_code: None,
            transcribe: false,
            transcribe_callback: None,
            status_callback: None,
            deleted_at_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn open_creates_missing_dirs_and_migrates_empty_file_to_latest() {
        if on_postgres() {
            return; // SQLite's file and pragmas; see `postgres_connect_creates_every_table`
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/hark.db");
        let store = Store::open(&path).unwrap();
        assert!(path.is_file());
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(SCHEMA_VERSION, 7);
        let conn = &store.sqlite_conn().conn;
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 1, "synchronous=NORMAL");
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        let mut tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        tables.sort();
        assert_eq!(tables, TABLES);
    }

    const TABLES: [&str; 10] = [
        "call_events",
        "calls",
        "leases",
        "nodes",
        "outbox",
        "recordings",
        "token_use",
        "transcriptions",
        "uploads",
        "utterances",
    ];

    /// The tables of the store's PostgreSQL schema.
    fn postgres_tables(db: &mut dyn Db) -> Result<Vec<String>, StoreError> {
        db.query_map(
            "tables",
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema() ORDER BY table_name",
            params![],
            |r| r.get(0),
        )
    }

    #[test]
    fn postgres_connect_creates_every_table_at_the_latest_version() {
        if !on_postgres() {
            return;
        }
        let (_d, store) = store();
        assert_eq!(store.dialect(), Dialect::Postgres);
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let mut want = TABLES.to_vec();
        want.push("hark_schema");
        want.sort();
        assert_eq!(store.with_db(postgres_tables).unwrap(), want);
    }

    #[test]
    fn reopen_keeps_version_and_data_without_rerunning_migrations() {
        let (dir, store) = store();
        store.insert_call(&call(ca(1), 1_000)).unwrap();
        drop(store);
        let again = reopen(dir.path());
        assert_eq!(again.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(
            again.get_call(&AC, &ca(1)).unwrap(),
            Some(call(ca(1), 1_000))
        );
        // Opening while another handle is live works too (WAL and busy timeout on SQLite,
        // another node on PostgreSQL).
        let third = reopen(dir.path());
        assert_eq!(third.list_calls(&AC, None, 10, 0).unwrap().items.len(), 1);
    }

    #[test]
    fn postgres_nodes_connecting_at_once_migrate_once() {
        if !on_postgres() {
            return;
        }
        let url = fresh_postgres_url();
        let nodes: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || Store::connect_postgres(&url, 2))
            })
            .collect();
        let stores: Vec<Store> = nodes
            .into_iter()
            .map(|n| n.join().unwrap().unwrap())
            .collect();
        stores[0].insert_call(&call(ca(1), 1_000)).unwrap();
        for s in &stores {
            assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
            assert!(s.get_call(&AC, &ca(1)).unwrap().is_some());
        }
        let versions: i64 = stores[1]
            .with_db(|db| {
                db.query_one("versions", "SELECT COUNT(*) FROM hark_schema", params![])?
                    .get(0)
            })
            .unwrap();
        assert_eq!(versions, 1);
    }

    #[test]
    fn newer_database_is_refused_and_not_modified() {
        if on_postgres() {
            return; // SQLite's file; see `newer_postgres_database_is_refused_and_not_modified`
        }
        let dir = tempfile::tempdir().unwrap();
        let path = Store::path_in_dir(dir.path());
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        match Store::open(&path) {
            Err(StoreError::TooNew {
                found, supported, ..
            }) => {
                assert_eq!(found, SCHEMA_VERSION + 1);
                assert_eq!(supported, SCHEMA_VERSION);
            }
            other => panic!("expected TooNew, got {:?}", other.map(|_| ())),
        }
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete", "journal mode untouched");
        assert_eq!(schema::user_version(&conn).unwrap(), SCHEMA_VERSION + 1);
        let tables: i64 = conn
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[test]
    fn newer_postgres_database_is_refused_and_not_modified() {
        if !on_postgres() {
            return;
        }
        let url = fresh_postgres_url();
        let admin = PgPool::connect(&url, 1).unwrap();
        admin
            .with(|db| {
                db.batch(
                    "newer",
                    &format!(
                        "CREATE TABLE hark_schema (version BIGINT NOT NULL); \
                         INSERT INTO hark_schema VALUES ({})",
                        SCHEMA_VERSION + 1
                    ),
                )
            })
            .unwrap();
        match Store::connect_postgres(&url, 1) {
            Err(StoreError::TooNew {
                found, supported, ..
            }) => {
                assert_eq!(found, SCHEMA_VERSION + 1);
                assert_eq!(supported, SCHEMA_VERSION);
            }
            other => panic!("expected TooNew, got {:?}", other.map(|_| ())),
        }
        assert_eq!(
            admin.with(|db| schema_pg::version(db)).unwrap(),
            SCHEMA_VERSION + 1
        );
        assert_eq!(
            admin.with(|db| postgres_tables(db)).unwrap(),
            ["hark_schema"]
        );
    }

    #[test]
    fn failed_migration_rolls_back_completely() {
        if on_postgres() {
            return; // SQLite's file; see `failed_postgres_migration_rolls_back_completely`
        }
        let dir = tempfile::tempdir().unwrap();
        let path = Store::path_in_dir(dir.path());
        {
            // A stray table makes step 1 fail halfway (after `calls` was created).
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE outbox (x INTEGER)")
                .unwrap();
        }
        let err = Store::open(&path).err().expect("migration must fail");
        assert!(
            matches!(err, StoreError::Migration { version: 1, .. }),
            "{err:?}"
        );
        let conn = Connection::open(&path).unwrap();
        assert_eq!(schema::user_version(&conn).unwrap(), 0);
        let calls: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'calls'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(calls, 0, "nothing of the failed step is left");
    }

    #[test]
    fn failed_postgres_migration_rolls_back_completely() {
        if !on_postgres() {
            return;
        }
        let url = fresh_postgres_url();
        let admin = PgPool::connect(&url, 1).unwrap();
        // A stray table makes the step fail halfway (after `calls` was created).
        admin
            .with(|db| db.batch("stray", "CREATE TABLE outbox (x BIGINT)"))
            .unwrap();
        let err = Store::connect_postgres(&url, 1)
            .err()
            .expect("migration must fail");
        assert!(
            matches!(err, StoreError::Migration { version: 5, .. }),
            "{err:?}"
        );
        assert_eq!(
            admin.with(|db| postgres_tables(db)).unwrap(),
            ["outbox"],
            "nothing of the failed step is left, not even a version"
        );
    }

    #[test]
    fn non_database_file_is_an_open_error_naming_the_path() {
        if on_postgres() {
            return; // SQLite's file
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hark.db");
        std::fs::write(&path, vec![0x42u8; 4096]).unwrap();
        let err = Store::open(&path).err().expect("garbage must not open");
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        assert!(err.to_string().contains("hark.db"), "{err}");
    }

    #[test]
    fn unreachable_postgres_is_an_open_error_naming_the_server_not_the_password() {
        // Port 1: nothing listens there.
        let err = Store::open_configured(
            "postgres://hark:s3cret@127.0.0.1:1/hark?connect_timeout=2",
            Path::new("/nonexistent"),
        )
        .err()
        .expect("nothing listens on port 1");
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        let shown = err.to_string();
        assert!(shown.contains("127.0.0.1:1/hark"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn everything_survives_a_store_that_is_never_closed() {
        let (dir, store) = store();
        store.insert_call(&call(ca(1), 1_000)).unwrap();
        store
            .insert_recording(&recording(re(1), ca(1), 1_000))
            .unwrap();
        let id = store.enqueue(&outbox_item("k1", re(1).as_str())).unwrap();
        // Leak it: no Drop, no checkpoint, the WAL is all there is (on PostgreSQL: its
        // connections are never closed).
        std::mem::forget(store);
        let again = reopen(dir.path());
        assert_eq!(
            again.get_call(&AC, &ca(1)).unwrap(),
            Some(call(ca(1), 1_000))
        );
        assert_eq!(
            again.get_recording(&AC, &re(1), false).unwrap(),
            Some(recording(re(1), ca(1), 1_000))
        );
        assert_eq!(
            again
                .due(i64::MAX, 10)
                .unwrap()
                .iter()
                .map(|i| i.id)
                .collect::<Vec<_>>(),
            [id]
        );
    }

    const CRASH_DIR_ENV: &str = "HARK_STORE_CRASH_DIR";

    /// The child half of `everything_survives_a_process_abort`; does nothing when run by hand.
    #[test]
    #[ignore]
    fn crash_child() {
        let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
            return;
        };
        // The parent's PostgreSQL schema, or the SQLite file (created here).
        let store = reopen(Path::new(&dir));
        store.insert_call(&call(ca(1), 1_000)).unwrap();
        store
            .insert_recording(&recording(re(1), ca(1), 1_000))
            .unwrap();
        store.enqueue(&outbox_item("k1", re(1).as_str())).unwrap();
        std::process::abort();
    }

    #[test]
    fn everything_survives_a_process_abort() {
        let dir = if on_postgres() {
            // The child writes into this schema of the parent's server.
            store().0
        } else {
            tempfile::tempdir().unwrap()
        };
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::crash_child",
                "--ignored",
                "--test-threads=1",
            ])
            .env(CRASH_DIR_ENV, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "child must have aborted");
        let store = reopen(dir.path());
        assert_eq!(
            store.get_call(&AC, &ca(1)).unwrap(),
            Some(call(ca(1), 1_000))
        );
        assert_eq!(
            store.get_recording(&AC, &re(1), false).unwrap(),
            Some(recording(re(1), ca(1), 1_000))
        );
        assert_eq!(store.pending_count().unwrap(), 1);
    }

    #[test]
    fn store_stays_usable_after_a_panic_while_locked() {
        let (_dir, store) = store();
        let store = std::sync::Arc::new(store);
        // More panics than the test pool has connections: none may be lost for good.
        for _ in 0..5 {
            let s2 = store.clone();
            let joined = std::thread::spawn(move || {
                s2.with_db(|_db| -> Result<(), StoreError> { panic!("poison the lock") })
            })
            .join();
            assert!(joined.is_err());
        }
        if let Backend::Sqlite(db) = &store.backend {
            assert!(db.is_poisoned());
        }
        store.insert_call(&call(ca(1), 1)).unwrap();
        assert_eq!(store.list_calls(&AC, None, 10, 0).unwrap().items.len(), 1);
    }

    #[test]
    fn a_panic_inside_a_transaction_rolls_it_back() {
        let (_dir, store) = store();
        let store = std::sync::Arc::new(store);
        let s2 = store.clone();
        let joined = std::thread::spawn(move || {
            s2.tx("panicking", |db| -> Result<(), StoreError> {
                db.execute(
                    "insert call",
                    "INSERT INTO calls (sid, account_sid, from_addr, to_addr, direction, status, \
                     date_created, date_updated) VALUES (?1, ?2, 'a', 'b', 'inbound', 'ringing', 1, 1)",
                    params![ca(1), *AC],
                )?;
                panic!("halfway");
            })
        })
        .join();
        assert!(joined.is_err());
        assert_eq!(store.get_call(&AC, &ca(1)).unwrap(), None);
        store.insert_call(&call(ca(1), 1)).unwrap();
        assert!(store.get_call(&AC, &ca(1)).unwrap().is_some());
    }

    #[test]
    fn in_memory_store_is_migrated() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        store.insert_call(&call(ca(1), 1)).unwrap();
        assert!(store.get_call(&AC, &ca(1)).unwrap().is_some());
    }

    #[test]
    fn store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Store>();
    }
}
