//! Schema migrations, keyed by `PRAGMA user_version`. Migration `i` (0-based) takes the
//! database from version `i` to `i + 1`. Never edit a released migration: append a new one.

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

const V1: &str = "
CREATE TABLE calls (
    sid             TEXT PRIMARY KEY NOT NULL,
    account_sid     TEXT NOT NULL,
    from_addr       TEXT NOT NULL,
    to_addr         TEXT NOT NULL,
    direction       TEXT NOT NULL,
    status          TEXT NOT NULL,
    date_created    INTEGER NOT NULL,
    date_updated    INTEGER NOT NULL,
    start_time      INTEGER,
    end_time        INTEGER,
    duration        INTEGER
);
CREATE INDEX calls_by_account ON calls(account_sid, date_created DESC, sid DESC);

-- No foreign key to calls: a recording outlives its call's retention and may be created
-- before the call row is written.
CREATE TABLE recordings (
    sid                 TEXT PRIMARY KEY NOT NULL,
    account_sid         TEXT NOT NULL,
    call_sid            TEXT NOT NULL,
    status              TEXT NOT NULL,
    source              TEXT NOT NULL,
    channels            INTEGER NOT NULL,
    date_created        INTEGER NOT NULL,
    date_updated        INTEGER NOT NULL,
    start_time          INTEGER NOT NULL,
    duration            INTEGER,
    error_code          INTEGER,
    media_file          TEXT NOT NULL,
    transcribe          INTEGER NOT NULL,
    transcribe_callback TEXT,
    sc_url              TEXT,
    sc_method           TEXT,
    sc_in_progress      INTEGER,
    sc_completed        INTEGER,
    sc_absent           INTEGER,
    deleted_at          INTEGER
);
-- deleted_at rides along so the IncludeSoftDeleted test (and rows skipped by OFFSET) never
-- reads the table row.
CREATE INDEX recordings_by_account ON recordings(account_sid, date_created DESC, sid DESC, deleted_at);
-- Ordered so a CallSid-filtered list needs no sort.
CREATE INDEX recordings_by_call ON recordings(call_sid, date_created DESC, sid DESC, deleted_at);
-- Start-up crash recovery looks only at these few rows.
CREATE INDEX recordings_in_progress ON recordings(date_created) WHERE status = 'in-progress';

CREATE TABLE transcriptions (
    sid             TEXT PRIMARY KEY NOT NULL,
    account_sid     TEXT NOT NULL,
    recording_sid   TEXT NOT NULL REFERENCES recordings(sid) ON DELETE CASCADE,
    status          TEXT NOT NULL,
    text            TEXT,
    duration        INTEGER,
    date_created    INTEGER NOT NULL,
    date_updated    INTEGER NOT NULL,
    type            TEXT NOT NULL,
    language        TEXT
);
CREATE INDEX transcriptions_by_account ON transcriptions(account_sid, date_created DESC, sid DESC);
CREATE INDEX transcriptions_by_recording ON transcriptions(recording_sid);

-- AUTOINCREMENT: ids are never reused, so an id in a log always means one callback.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    group_key       TEXT NOT NULL,
    url             TEXT NOT NULL,
    method          TEXT NOT NULL,
    params          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed'))
);
CREATE INDEX outbox_heads ON outbox(state, group_key, id);
";

pub(crate) const MIGRATIONS: &[&str] = &[V1];

/// The schema version this code writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Fails with [`StoreError::TooNew`] for a database written by a newer build; returns the version.
pub(crate) fn check_not_newer(conn: &Connection, path: &str) -> Result<u32, StoreError> {
    let found = user_version(conn).map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(found)
}

/// Brings the database up to [`SCHEMA_VERSION`]; each step is its own transaction, so a crash
/// mid-migration leaves the previous version intact. Returns the version found before.
pub(crate) fn migrate(conn: &mut Connection, path: &str) -> Result<u32, StoreError> {
    let found = check_not_newer(conn, path)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as u32 + 1;
        let err = |source| StoreError::Migration { version, source };
        // IMMEDIATE: take the write lock before re-reading the version, so two processes
        // opening the same file cannot both run a step (or one older than the other).
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let now = user_version(&tx).map_err(err)?;
        if now > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found: now,
                supported: SCHEMA_VERSION,
            });
        }
        if now >= version {
            continue;
        }
        tx.execute_batch(sql).map_err(err)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(found)
}
