//! Durable metadata for Hark in one SQLite file (`{storage.dir}/hark.db`): calls, recordings,
//! transcriptions and the outbox of status callbacks. Plain synchronous code: the daemon calls it
//! from blocking threads. Nothing about Hark lives only in memory.
//!
//! Times are stored as Unix milliseconds (UTC); formatting (RFC 2822) is the API layer's job.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;
use thiserror::Error;

mod calls;
mod domain;
mod outbox;
mod recordings;
mod schema;
mod token_use;
mod transcript;
mod transcriptions;

pub use domain::{
    is_sid, AccountSid, ApiKeySid, ApplicationSid, CallSid, CallStatus, Direction, HttpMethod,
    ParseError, RecordingSid, RecordingSource, RecordingStatus, TranscriptionSid,
    TranscriptionStatus,
};
pub use schema::SCHEMA_VERSION;

/// File name of the database inside `storage.dir`.
pub const DEFAULT_FILE_NAME: &str = "hark.db";

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("database query {what}: {source}")]
    Query {
        what: &'static str,
        source: rusqlite::Error,
    },
    #[error("database migration to version {version}: {source}")]
    Migration {
        version: u32,
        source: rusqlite::Error,
    },
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
    // One connection is enough: WAL keeps readers of other processes unblocked, and our
    // statements are short. Cached statements live in the connection.
    conn: Mutex<Connection>,
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// 16 list-filter shapes × 2 paging styles plus the fixed statements.
const STATEMENT_CACHE: usize = 64;

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
            source,
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
            source,
        })?;
        Self::configure(conn, ":memory:")
    }

    fn configure(mut conn: Connection, path: &str) -> Result<Store, StoreError> {
        let err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
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
            conn: Mutex::new(conn),
        })
    }

    pub fn schema_version(&self) -> Result<u32, StoreError> {
        schema::user_version(&self.conn()).map_err(query("schema version"))
    }

    /// The connection; a panic in another thread while holding it does not make the store
    /// unusable (an open transaction was rolled back when its guard dropped).
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `sql` (a DELETE taking `?1` = `arg`, `?2` = batch size) until it deletes less than
    /// a batch; the connection is let go between batches. Returns the rows deleted.
    fn delete_in_batches(
        &self,
        sql: &str,
        arg: i64,
        what: &'static str,
    ) -> Result<usize, StoreError> {
        const BATCH: usize = 1000;
        let mut total = 0;
        loop {
            let n = {
                let conn = self.conn();
                let mut st = conn.prepare_cached(sql).map_err(query(what))?;
                st.execute(rusqlite::params![arg, BATCH as i64])
                    .map_err(query(what))?
            };
            total += n;
            if n < BATCH {
                return Ok(total);
            }
        }
    }
}

fn query(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
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

    /// A fresh store in its own temporary directory (kept alive by the returned guard).
    pub fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_in_dir(dir.path()).expect("open");
        (dir, store)
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
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/hark.db");
        let store = Store::open(&path).unwrap();
        assert!(path.is_file());
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(SCHEMA_VERSION, 5);
        let conn = store.conn();
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
        assert_eq!(
            tables,
            [
                "call_events",
                "calls",
                "outbox",
                "recordings",
                "token_use",
                "transcriptions",
                "utterances"
            ]
        );
    }

    #[test]
    fn reopen_keeps_version_and_data_without_rerunning_migrations() {
        let (dir, store) = store();
        store.insert_call(&call(ca(1), 1_000)).unwrap();
        drop(store);
        let again = Store::open_in_dir(dir.path()).unwrap();
        assert_eq!(again.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(
            again.get_call(&AC, &ca(1)).unwrap(),
            Some(call(ca(1), 1_000))
        );
        // Opening while another handle is live works too (WAL, busy timeout).
        let third = Store::open_in_dir(dir.path()).unwrap();
        assert_eq!(third.list_calls(&AC, None, 10, 0).unwrap().items.len(), 1);
    }

    #[test]
    fn newer_database_is_refused_and_not_modified() {
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
    fn failed_migration_rolls_back_completely() {
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
    fn non_database_file_is_an_open_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hark.db");
        std::fs::write(&path, vec![0x42u8; 4096]).unwrap();
        let err = Store::open(&path).err().expect("garbage must not open");
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        assert!(err.to_string().contains("hark.db"), "{err}");
    }

    #[test]
    fn everything_survives_a_store_that_is_never_closed() {
        let (dir, store) = store();
        store.insert_call(&call(ca(1), 1_000)).unwrap();
        store
            .insert_recording(&recording(re(1), ca(1), 1_000))
            .unwrap();
        let id = store.enqueue(&outbox_item("k1", re(1).as_str())).unwrap();
        // Leak it: no Drop, no checkpoint, the WAL is all there is.
        std::mem::forget(store);
        let again = Store::open_in_dir(dir.path()).unwrap();
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
        let store = Store::open_in_dir(Path::new(&dir)).unwrap();
        store.insert_call(&call(ca(1), 1_000)).unwrap();
        store
            .insert_recording(&recording(re(1), ca(1), 1_000))
            .unwrap();
        store.enqueue(&outbox_item("k1", re(1).as_str())).unwrap();
        std::process::abort();
    }

    #[test]
    fn everything_survives_a_process_abort() {
        let dir = tempfile::tempdir().unwrap();
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
        let store = Store::open_in_dir(dir.path()).unwrap();
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
        let s2 = store.clone();
        let joined = std::thread::spawn(move || {
            let _guard = s2.conn();
            panic!("poison the mutex");
        })
        .join();
        assert!(joined.is_err());
        assert!(store.conn.is_poisoned());
        store.insert_call(&call(ca(1), 1)).unwrap();
        assert_eq!(store.list_calls(&AC, None, 10, 0).unwrap().items.len(), 1);
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
