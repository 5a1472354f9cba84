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

/// Transcription jobs, utterances, what Hark said on a call, client request ids, token quotas.
const V2: &str = "
-- Jobs are the transcription rows themselves; call_sid is copied from the recording so a
-- call's transcripts need no join (backfilled for rows written by v1).
ALTER TABLE transcriptions ADD COLUMN call_sid TEXT NOT NULL DEFAULT '';
ALTER TABLE transcriptions ADD COLUMN engine TEXT;
ALTER TABLE transcriptions ADD COLUMN error TEXT;
ALTER TABLE transcriptions ADD COLUMN audio_secs REAL;
ALTER TABLE transcriptions ADD COLUMN processing_secs REAL;
ALTER TABLE transcriptions ADD COLUMN transcribe_callback TEXT;
UPDATE transcriptions SET call_sid = COALESCE(
    (SELECT r.call_sid FROM recordings r WHERE r.sid = transcriptions.recording_sid), '');
-- Replaced by an index in list order (no sort for Recordings/{RE}/Transcriptions.json).
DROP INDEX transcriptions_by_recording;
CREATE INDEX transcriptions_by_recording ON transcriptions(recording_sid, date_created DESC, sid DESC);
-- The worker's queue, start-up recovery and the counts by status for metrics.
CREATE INDEX transcriptions_by_status ON transcriptions(status, date_created, sid);

CREATE TABLE utterances (
    transcription_sid TEXT NOT NULL REFERENCES transcriptions(sid) ON DELETE CASCADE,
    ord               INTEGER NOT NULL,
    start_sec         REAL NOT NULL,
    duration_sec      REAL NOT NULL,
    speaker           TEXT NOT NULL,
    text              TEXT NOT NULL,
    PRIMARY KEY (transcription_sid, ord)
) WITHOUT ROWID;

-- What Hark itself said on a call (<Say> text); no foreign key, like recordings.
CREATE TABLE call_events (
    id           INTEGER PRIMARY KEY,
    call_sid     TEXT NOT NULL,
    at_ms        INTEGER NOT NULL,
    speaker      TEXT NOT NULL,
    text         TEXT NOT NULL,
    duration_sec REAL NOT NULL
);
CREATE INDEX call_events_by_call ON call_events(call_sid, at_ms, id);

ALTER TABLE calls ADD COLUMN request_id TEXT;
CREATE INDEX calls_by_request_id ON calls(request_id, date_created DESC) WHERE request_id IS NOT NULL;

-- Requests per token and calendar month (UTC), so a restart does not reset a monthly quota.
CREATE TABLE token_use (
    token_id TEXT NOT NULL,
    month    TEXT NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (token_id, month)
) WITHOUT ROWID;
";

/// Retention: recordings past `storage.retention_days`, and deleted ones whose metadata is
/// purged after 40 days, found without scanning the table.
const V3: &str = "
CREATE INDEX recordings_by_age ON recordings(date_created) WHERE deleted_at IS NULL;
CREATE INDEX recordings_deleted ON recordings(deleted_at) WHERE deleted_at IS NOT NULL;
";

/// Issue 12: Opus callers are recorded at 16 kHz; rows from before are all 8 kHz.
const V4: &str = "
ALTER TABLE recordings ADD COLUMN sample_rate INTEGER NOT NULL DEFAULT 8000;
";

/// Issue 13: a `<Dial>`'s legs are child calls of the call that dialled them.
const V5: &str = "
ALTER TABLE calls ADD COLUMN parent_call_sid TEXT;
CREATE INDEX calls_by_parent ON calls(parent_call_sid) WHERE parent_call_sid IS NOT NULL;
";

/// Issue 15: several nodes share one database. Rows of calls and recordings name the node that
/// runs them (start-up recovery touches only its own); finished recordings queue their upload
/// to the object storage (only the node whose disk holds the file can do it); callbacks and
/// transcription jobs are leased to one node at a time and taken over when a lease runs out;
/// nodes announce where their API is, for live call control forwarded to a call's node.
pub(crate) const V6: &str = "
ALTER TABLE calls ADD COLUMN node_id TEXT;
ALTER TABLE recordings ADD COLUMN node_id TEXT;
CREATE TABLE uploads (
    key             TEXT PRIMARY KEY NOT NULL,
    node_id         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'lost')),
    attempts        INTEGER NOT NULL,
    queued_ms       INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    done_ms         INTEGER,
    last_error      TEXT
);
CREATE INDEX uploads_due ON uploads(node_id, next_attempt_ms) WHERE state = 'pending';
ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
ALTER TABLE outbox ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE transcriptions ADD COLUMN lease_owner TEXT;
ALTER TABLE transcriptions ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
CREATE TABLE nodes (
    node_id      TEXT PRIMARY KEY NOT NULL,
    api_url      TEXT NOT NULL,
    started_ms   INTEGER NOT NULL,
    heartbeat_ms INTEGER NOT NULL,
    draining     INTEGER NOT NULL DEFAULT 0
);
-- Work one node at a time does for all (retention): whoever holds the lease.
CREATE TABLE leases (
    name     TEXT PRIMARY KEY NOT NULL,
    owner    TEXT NOT NULL,
    until_ms INTEGER NOT NULL
);
";

/// Version 7's statements that read the same in both dialects (`schema_pg.rs` uses them too):
/// the first attempt's time for rows from before, and indexes for the console's list filters
/// (calls by number and status, recordings by status, deliveries by state).
macro_rules! v7_common {
    () => {
        "
UPDATE outbox SET created_ms = next_attempt_ms;
CREATE INDEX outbox_by_state ON outbox(state, id);
CREATE INDEX calls_by_from ON calls(account_sid, from_addr, date_created DESC, sid DESC);
CREATE INDEX calls_by_to ON calls(account_sid, to_addr, date_created DESC, sid DESC);
CREATE INDEX calls_by_status ON calls(account_sid, status, date_created DESC, sid DESC);
CREATE INDEX recordings_by_status ON recordings(account_sid, status, date_created DESC, sid DESC);
"
    };
}
pub(crate) use v7_common;

/// Issue 16 (the console): what each callback attempt got, and the list filters' indexes.
pub(crate) const V7: &str = concat!(
    "
ALTER TABLE outbox ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN last_attempt_ms INTEGER;
ALTER TABLE outbox ADD COLUMN last_status INTEGER;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
ALTER TABLE outbox ADD COLUMN last_duration_ms INTEGER;
",
    v7_common!()
);

pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7];

/// The schema version this code writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Fails with [`StoreError::TooNew`] for a database written by a newer build; returns the version.
pub(crate) fn check_not_newer(conn: &Connection, path: &str) -> Result<u32, StoreError> {
    let found = user_version(conn).map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source: source.into(),
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
        let err = |source: rusqlite::Error| StoreError::Migration {
            version,
            source: source.into(),
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use crate::{Store, TranscriptionRecord};

    /// A database exactly as a v1 build left it, with a row in every table.
    fn v1_database(path: &std::path::Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let (ac, ca, re, tr) = (&*AC, ca(1), re(1), tr(1));
        conn.execute_batch(&format!(
            "INSERT INTO calls VALUES ('{ca}', '{ac}', 'sip:alice@example.com', \
                 'sip:+15550100@hark', 'inbound', 'completed', 1000, 9000, 1500, 9000, 7);
             INSERT INTO recordings (sid, account_sid, call_sid, status, source, channels, date_created, \
                 date_updated, start_time, duration, media_file, transcribe) VALUES \
                 ('{re}', '{ac}', '{ca}', 'completed', 'RecordVerb', 1, 2000, \
                  8000, 2000, 6, '{re}.wav', 1);
             INSERT INTO transcriptions VALUES ('{tr}', '{ac}', '{re}', \
                 'completed', 'hello world', 6, 8000, 8500, 'fast', 'en-US');
             INSERT INTO outbox (idempotency_key, group_key, url, method, params, attempts, \
                 next_attempt_ms, state) VALUES ('k1', '{re}', 'https://example.com/cb', 'POST', '[]', 0, 0, 'pending');",
        ))
        .unwrap();
    }

    #[test]
    fn v1_database_with_rows_migrates_to_the_latest_keeping_every_row() {
        if on_postgres() {
            return; // SQLite's own migrations
        }
        let dir = tempfile::tempdir().unwrap();
        let path = Store::path_in_dir(dir.path());
        v1_database(&path);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), crate::SCHEMA_VERSION);

        let mut want_call = call(ca(1), 1_000);
        want_call.status = crate::CallStatus::Completed;
        want_call.date_updated_ms = 9_000;
        want_call.start_time_ms = Some(1_500);
        want_call.end_time_ms = Some(9_000);
        want_call.duration_secs = Some(7);
        assert_eq!(store.get_call(&AC, &ca(1)).unwrap(), Some(want_call));
        assert_eq!(store.find_call_by_request_id(ca(1).as_str()).unwrap(), None);
        let rec = store.get_recording(&AC, &re(1), false).unwrap().unwrap();
        assert_eq!((rec.duration_secs, rec.transcribe), (Some(6), true));
        assert_eq!(rec.sample_rate, 8000, "rows from before Opus are 8 kHz");
        assert_eq!(store.pending_count().unwrap(), 1);

        let t = store.get_transcription(&AC, &tr(1)).unwrap().unwrap();
        assert_eq!(
            t,
            TranscriptionRecord {
                sid: tr(1),
                account_sid: AC.clone(),
                recording_sid: re(1),
                call_sid: ca(1), // backfilled from the recording
                status: crate::TranscriptionStatus::Completed,
                text: Some("hello world".into()),
                language: Some("en-US".into()),
                engine: None,
                error: None,
                audio_secs: None,
                processing_secs: None,
                duration_secs: Some(6),
                kind: "fast".into(),
                transcribe_callback: None,
                date_created_ms: 8_000,
                date_updated_ms: 8_500,
            }
        );
        // The new tables work on the migrated file.
        store
            .replace_utterances(&tr(1), &[utterance(1, 0.5, "hello world")])
            .unwrap();
        store.set_call_request_id(&ca(1), "req-1").unwrap();
        let lines = store.call_transcript("req-1").unwrap().unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].start_sec, 1.0); // 2000 + 500 - 1500 ms
        assert_eq!(store.record_token_use("t", "2024-03").unwrap(), 1);
        drop(store);
        // Reopening runs no migration again (v2 would fail on the existing columns).
        let again = Store::open(&path).unwrap();
        assert_eq!(again.schema_version().unwrap(), crate::SCHEMA_VERSION);
        assert_eq!(again.utterances(&tr(1)).unwrap().len(), 1);
    }

    #[test]
    fn failed_v2_step_leaves_the_v1_database_intact() {
        if on_postgres() {
            return; // SQLite's own migrations
        }
        let dir = tempfile::tempdir().unwrap();
        let path = Store::path_in_dir(dir.path());
        v1_database(&path);
        {
            // A stray table makes v2 fail after its ALTERs ran.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE utterances (x INTEGER)")
                .unwrap();
        }
        let err = Store::open(&path).err().expect("migration must fail");
        assert!(
            matches!(err, StoreError::Migration { version: 2, .. }),
            "{err:?}"
        );
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 1);
        let cols: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('transcriptions') WHERE name = 'engine'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(cols, 0, "the ALTERs were rolled back");
        let text: String = conn
            .query_row(
                "SELECT text FROM transcriptions WHERE sid = ?1",
                [tr(1).as_str()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(text, "hello world");
    }
}
