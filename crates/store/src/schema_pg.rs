//! The PostgreSQL schema: the same tables, columns and indexes as SQLite's migrations reach
//! (`schema.rs`), in PostgreSQL's types. Integers are BIGINT (booleans too, 0/1, as in SQLite),
//! so a value reads back the same from either database. SIDs are `COLLATE "C"`: lists sort and
//! page (keyset) by sid in byte order, as SQLite does, whatever the database's default locale. The version lives in `hark_schema`;
//! nodes starting together migrate one at a time under an advisory lock.

use crate::db::{params, Db};
use crate::{StoreError, SCHEMA_VERSION};

/// Every table as of SQLite's version 5: a new PostgreSQL database starts here.
const V5: &str = r#"
CREATE TABLE calls (
    sid             TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    account_sid     TEXT NOT NULL,
    from_addr       TEXT NOT NULL,
    to_addr         TEXT NOT NULL,
    direction       TEXT NOT NULL,
    status          TEXT NOT NULL,
    date_created    BIGINT NOT NULL,
    date_updated    BIGINT NOT NULL,
    start_time      BIGINT,
    end_time        BIGINT,
    duration        BIGINT,
    request_id      TEXT,
    parent_call_sid TEXT
);
CREATE INDEX calls_by_account ON calls(account_sid, date_created DESC, sid DESC);
CREATE INDEX calls_by_request_id ON calls(request_id, date_created DESC) WHERE request_id IS NOT NULL;
CREATE INDEX calls_by_parent ON calls(parent_call_sid) WHERE parent_call_sid IS NOT NULL;

CREATE TABLE recordings (
    sid                 TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    account_sid         TEXT NOT NULL,
    call_sid            TEXT NOT NULL,
    status              TEXT NOT NULL,
    source              TEXT NOT NULL,
    channels            BIGINT NOT NULL,
    date_created        BIGINT NOT NULL,
    date_updated        BIGINT NOT NULL,
    start_time          BIGINT NOT NULL,
    duration            BIGINT,
    error_code          BIGINT,
    media_file          TEXT NOT NULL,
    transcribe          BIGINT NOT NULL,
    transcribe_callback TEXT,
    sc_url              TEXT,
    sc_method           TEXT,
    sc_in_progress      BIGINT,
    sc_completed        BIGINT,
    sc_absent           BIGINT,
    deleted_at          BIGINT,
    sample_rate         BIGINT NOT NULL DEFAULT 8000
);
CREATE INDEX recordings_by_account ON recordings(account_sid, date_created DESC, sid DESC, deleted_at);
CREATE INDEX recordings_by_call ON recordings(call_sid, date_created DESC, sid DESC, deleted_at);
CREATE INDEX recordings_in_progress ON recordings(date_created) WHERE status = 'in-progress';
CREATE INDEX recordings_by_age ON recordings(date_created) WHERE deleted_at IS NULL;
CREATE INDEX recordings_deleted ON recordings(deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE transcriptions (
    sid                 TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    account_sid         TEXT NOT NULL,
    recording_sid       TEXT COLLATE "C" NOT NULL REFERENCES recordings(sid) ON DELETE CASCADE,
    status              TEXT NOT NULL,
    text                TEXT,
    duration            BIGINT,
    date_created        BIGINT NOT NULL,
    date_updated        BIGINT NOT NULL,
    type                TEXT NOT NULL,
    language            TEXT,
    call_sid            TEXT NOT NULL DEFAULT '',
    engine              TEXT,
    error               TEXT,
    audio_secs          DOUBLE PRECISION,
    processing_secs     DOUBLE PRECISION,
    transcribe_callback TEXT
);
CREATE INDEX transcriptions_by_account ON transcriptions(account_sid, date_created DESC, sid DESC);
CREATE INDEX transcriptions_by_recording ON transcriptions(recording_sid, date_created DESC, sid DESC);
CREATE INDEX transcriptions_by_status ON transcriptions(status, date_created, sid);

CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    group_key       TEXT NOT NULL,
    url             TEXT NOT NULL,
    method          TEXT NOT NULL,
    params          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed'))
);
CREATE INDEX outbox_heads ON outbox(state, group_key, id);

CREATE TABLE utterances (
    transcription_sid TEXT COLLATE "C" NOT NULL REFERENCES transcriptions(sid) ON DELETE CASCADE,
    ord               BIGINT NOT NULL,
    start_sec         DOUBLE PRECISION NOT NULL,
    duration_sec      DOUBLE PRECISION NOT NULL,
    speaker           TEXT NOT NULL,
    text              TEXT NOT NULL,
    PRIMARY KEY (transcription_sid, ord)
);

CREATE TABLE call_events (
    id           BIGSERIAL PRIMARY KEY,
    call_sid     TEXT NOT NULL,
    at_ms        BIGINT NOT NULL,
    speaker      TEXT NOT NULL,
    text         TEXT NOT NULL,
    duration_sec DOUBLE PRECISION NOT NULL
);
CREATE INDEX call_events_by_call ON call_events(call_sid, at_ms, id);

CREATE TABLE token_use (
    token_id TEXT NOT NULL,
    month    TEXT NOT NULL,
    count    BIGINT NOT NULL,
    PRIMARY KEY (token_id, month)
);
"#;

/// `(version reached, DDL)`; a new database runs all of them.
/// SQLite's version 6 (`schema.rs`), in PostgreSQL's types.
const V6: &str = r#"
ALTER TABLE calls ADD COLUMN node_id TEXT;
ALTER TABLE recordings ADD COLUMN node_id TEXT;
CREATE TABLE uploads (
    key             TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    node_id         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'lost')),
    attempts        BIGINT NOT NULL,
    queued_ms       BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    done_ms         BIGINT,
    last_error      TEXT
);
CREATE INDEX uploads_due ON uploads(node_id, next_attempt_ms) WHERE state = 'pending';
ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
ALTER TABLE outbox ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE transcriptions ADD COLUMN lease_owner TEXT;
ALTER TABLE transcriptions ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
CREATE TABLE nodes (
    node_id      TEXT PRIMARY KEY NOT NULL,
    api_url      TEXT NOT NULL,
    started_ms   BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL,
    draining     BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE leases (
    name     TEXT PRIMARY KEY NOT NULL,
    owner    TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
"#;

/// SQLite's version 7 (`schema.rs`), in PostgreSQL's types.
const V7: &str = concat!(
    "
ALTER TABLE outbox ADD COLUMN created_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN last_attempt_ms BIGINT;
ALTER TABLE outbox ADD COLUMN last_status BIGINT;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
ALTER TABLE outbox ADD COLUMN last_duration_ms BIGINT;
",
    crate::schema::v7_common!()
);

const MIGRATIONS: &[(u32, &str)] = &[(5, V5), (6, V6), (7, V7)];

/// Any fixed number: serializes migrations across nodes.
const MIGRATION_LOCK: i64 = 0x4841_524b; // "HARK"

pub(crate) fn version(db: &mut dyn Db) -> Result<u32, StoreError> {
    let row = db.query_opt(
        "schema version",
        "SELECT version FROM hark_schema",
        params![],
    )?;
    let v: i64 = match row {
        Some(r) => r.get(0)?,
        None => 0,
    };
    u32::try_from(v).map_err(|_| StoreError::Corrupt {
        what: "hark_schema.version",
        value: v.to_string(),
    })
}

pub(crate) fn migrate(db: &mut dyn Db, shown: &str) -> Result<u32, StoreError> {
    let err = |version: u32| {
        move |e: StoreError| match e {
            StoreError::Query { source, .. } => StoreError::Migration { version, source },
            other => other,
        }
    };
    db.batch("migration lock", "BEGIN")?;
    let result = (|| {
        db.query(
            "migration lock",
            "SELECT 1 FROM pg_advisory_xact_lock(?1)",
            params![MIGRATION_LOCK],
        )?;
        // Under the lock: concurrent CREATE ... IF NOT EXISTS can still collide in PostgreSQL.
        db.batch(
            "schema table",
            "CREATE TABLE IF NOT EXISTS hark_schema (version BIGINT NOT NULL)",
        )?;
        let found = version(db)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: shown.to_owned(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for &(version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
            db.batch("migration", sql).map_err(err(version))?;
        }
        let last = MIGRATIONS.last().map_or(found, |(v, _)| (*v).max(found));
        if last != found {
            db.execute("schema version", "DELETE FROM hark_schema", params![])?;
            db.execute(
                "schema version",
                "INSERT INTO hark_schema (version) VALUES (?1)",
                params![i64::from(last)],
            )?;
        }
        Ok(found)
    })();
    match result {
        Ok(found) => {
            db.batch("migration", "COMMIT")?;
            Ok(found)
        }
        Err(e) => {
            let _ = db.batch("migration", "ROLLBACK");
            Err(e)
        }
    }
}
