//! Durable metadata for Hark in one SQLite file (`{storage.dir}/hark.db`): calls, recordings,
//! transcriptions and the outbox of status callbacks. Plain synchronous code: the daemon calls it
//! from blocking threads. Nothing about Hark lives only in memory.
//!
//! Times are stored as Unix milliseconds (UTC); formatting (RFC 2822) is the API layer's job.

use std::path::Path;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("database query {what}: {source}")]
    Query { what: &'static str, source: rusqlite::Error },
    #[error("database migration to version {version}: {source}")]
    Migration { version: u32, source: rusqlite::Error },
    #[error("stored value of {what} is invalid: {value}")]
    Corrupt { what: &'static str, value: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub sid: String,
    pub account_sid: String,
    pub from: String,
    pub to: String,
    /// `inbound` for calls into Hark.
    pub direction: String,
    /// `ringing`, `in-progress`, `completed`, `busy`, `no-answer`, `failed`, `canceled`.
    pub status: String,
    pub date_created_ms: i64,
    pub date_updated_ms: i64,
    pub start_time_ms: Option<i64>,
    pub end_time_ms: Option<i64>,
    /// Seconds from answer to end; `None` until the call ends.
    pub duration_secs: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRecord {
    pub sid: String,
    pub account_sid: String,
    pub call_sid: String,
    /// `in-progress`, `processing`, `completed`, `absent`, `deleted`.
    pub status: String,
    pub source: String,
    pub channels: u32,
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
    /// `GET` or `POST`.
    pub method: String,
    pub in_progress: bool,
    pub completed: bool,
    pub absent: bool,
}

/// Filters of `GET …/Recordings.json` (SPEC §6.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingFilter {
    pub call_sid: Option<String>,
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
    // implementation-defined (a rusqlite Connection behind a Mutex, WAL mode)
}

impl Store {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        todo!()
    }
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        todo!()
    }

    pub fn insert_call(&self, call: &CallRecord) -> Result<(), StoreError> {
        todo!()
    }
    /// Status (and optionally start/end/duration) of a call; `date_updated` = `now_ms`.
    pub fn update_call(&self, call: &CallRecord) -> Result<(), StoreError> {
        todo!()
    }
    pub fn get_call(&self, account_sid: &str, sid: &str) -> Result<Option<CallRecord>, StoreError> {
        todo!()
    }
    /// Newest first; `page` is 0-based.
    pub fn list_calls(&self, account_sid: &str, page_size: u32, page: u32) -> Result<Page<CallRecord>, StoreError> {
        todo!()
    }

    pub fn insert_recording(&self, rec: &RecordingRecord) -> Result<(), StoreError> {
        todo!()
    }
    /// Replaces every mutable field of the recording with `rec`'s.
    pub fn update_recording(&self, rec: &RecordingRecord) -> Result<(), StoreError> {
        todo!()
    }
    /// Soft-deleted recordings are returned only with `include_deleted`.
    pub fn get_recording(&self, account_sid: &str, sid: &str, include_deleted: bool) -> Result<Option<RecordingRecord>, StoreError> {
        todo!()
    }
    pub fn list_recordings(&self, account_sid: &str, filter: &RecordingFilter, page_size: u32, page: u32) -> Result<Page<RecordingRecord>, StoreError> {
        todo!()
    }
    /// Recordings left `in-progress` (crash recovery at start-up).
    pub fn recordings_in_progress(&self) -> Result<Vec<RecordingRecord>, StoreError> {
        todo!()
    }
    /// Marks deleted (status `deleted`, `deleted_at`); returns false if unknown or already deleted.
    pub fn soft_delete_recording(&self, account_sid: &str, sid: &str, now_ms: i64) -> Result<bool, StoreError> {
        todo!()
    }

    /// Queues a callback; returns its id.
    pub fn enqueue(&self, item: &OutboxItem) -> Result<i64, StoreError> {
        todo!()
    }
    /// Items due at `now_ms`, oldest first, at most one per `group_key` (the head of each group,
    /// so a group is delivered in order), at most `limit`.
    pub fn due(&self, now_ms: i64, limit: u32) -> Result<Vec<OutboxItem>, StoreError> {
        todo!()
    }
    pub fn delivered(&self, id: i64) -> Result<(), StoreError> {
        todo!()
    }
    /// Another attempt later (`attempts` + 1).
    pub fn retry_at(&self, id: i64, next_attempt_ms: i64) -> Result<(), StoreError> {
        todo!()
    }
    /// Gives up on an item (kept with state `failed` for inspection); the group moves on.
    pub fn give_up(&self, id: i64) -> Result<(), StoreError> {
        todo!()
    }
    /// Items not yet delivered or given up.
    pub fn pending_count(&self) -> Result<u64, StoreError> {
        todo!()
    }
}
