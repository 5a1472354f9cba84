//! The `transcriptions` table: REST resources (SPEC §6.4) and the persisted job queue.
//!
//! A job is its row: `queued` → `in-progress` → `completed` | `failed`. Rows left
//! `in-progress` by a crash are put back in the queue at start-up.

use crate::db::{params, Db, Dialect, Row, ToParam};
use crate::{
    into_page, to_u32, AccountSid, Page, RecordingSid, Store, StoreError, TranscriptionCounts,
    TranscriptionRecord, TranscriptionSid, TranscriptionStatus,
};

const COLUMNS: &str = "sid, account_sid, recording_sid, call_sid, status, text, language, engine, error, \
                       audio_secs, processing_secs, duration, type, transcribe_callback, date_created, date_updated";

fn from_row(r: &Row) -> Result<TranscriptionRecord, StoreError> {
    let duration: Option<i64> = r.get(11)?;
    Ok(TranscriptionRecord {
        sid: r.get(0)?,
        account_sid: r.get(1)?,
        recording_sid: r.get(2)?,
        call_sid: r.get(3)?,
        status: r.get(4)?,
        text: r.get(5)?,
        language: r.get(6)?,
        engine: r.get(7)?,
        error: r.get(8)?,
        audio_secs: r.get(9)?,
        processing_secs: r.get(10)?,
        duration_secs: duration
            .map(|d| to_u32("transcriptions.duration", d))
            .transpose()?,
        kind: r.get(12)?,
        transcribe_callback: r.get(13)?,
        date_created_ms: r.get(14)?,
        date_updated_ms: r.get(15)?,
    })
}

/// Runs a SELECT of [`COLUMNS`] and collects the rows.
fn select(
    db: &mut dyn Db,
    what: &'static str,
    sql: &str,
    args: &[&dyn ToParam],
) -> Result<Vec<TranscriptionRecord>, StoreError> {
    db.query_map(what, sql, args, from_row)
}

/// Updates every mutable field; immutable: sid, account, recording, call, type, date_created.
pub(crate) fn update(db: &mut dyn Db, t: &TranscriptionRecord) -> Result<(), StoreError> {
    let n = db.execute(
        "update transcription",
        "UPDATE transcriptions SET status = ?2, text = ?3, language = ?4, engine = ?5, error = ?6, \
         audio_secs = ?7, processing_secs = ?8, duration = ?9, transcribe_callback = ?10, \
         date_updated = ?11 WHERE sid = ?1",
        params![
            t.sid,
            t.status,
            t.text,
            t.language,
            t.engine,
            t.error,
            t.audio_secs,
            t.processing_secs,
            t.duration_secs,
            t.transcribe_callback,
            t.date_updated_ms,
        ],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound {
            what: "transcription",
            sid: t.sid.to_string(),
        });
    }
    Ok(())
}

/// One list shape; parameters: ?1 account, ?2 recording, ?3/?4 keyset, ?5 limit, ?6 offset.
fn list_sql(dialect: Dialect, by_recording: bool, keyset: bool) -> String {
    let mut sql = format!("SELECT {COLUMNS} FROM transcriptions WHERE ");
    if by_recording {
        // Stay on the recording index (few rows, already ordered).
        sql.push_str("recording_sid = ?2 AND ");
        sql.push_str(&dialect.no_index("account_sid"));
        sql.push_str(" = ?1");
    } else {
        sql.push_str("account_sid = ?1");
    }
    if keyset {
        sql.push_str(" AND (date_created, sid) < (?3, ?4)");
    }
    sql.push_str(" ORDER BY date_created DESC, sid DESC LIMIT ?5 OFFSET ?6");
    sql
}

impl Store {
    /// A new transcription (usually `queued`). Its recording must exist (foreign key).
    pub fn insert_transcription(&self, t: &TranscriptionRecord) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO transcriptions ({COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
        );
        self.with_db(|db| {
            db.execute(
                "insert transcription",
                &sql,
                params![
                    t.sid,
                    t.account_sid,
                    t.recording_sid,
                    t.call_sid,
                    t.status,
                    t.text,
                    t.language,
                    t.engine,
                    t.error,
                    t.audio_secs,
                    t.processing_secs,
                    t.duration_secs,
                    t.kind,
                    t.transcribe_callback,
                    t.date_created_ms,
                    t.date_updated_ms,
                ],
            )
        })?;
        Ok(())
    }

    /// Replaces the mutable fields (status, text, language, engine, error, audio/processing
    /// seconds, duration, callback, `date_updated`). Unknown sid (e.g. deleted through the API
    /// while running) → [`StoreError::NotFound`].
    pub fn update_transcription(&self, t: &TranscriptionRecord) -> Result<(), StoreError> {
        self.with_db(|db| update(db, t))
    }

    /// Claims a queued job: `queued` → `in-progress`. False if it is not queued (any more).
    pub fn start_transcription(
        &self,
        sid: &TranscriptionSid,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = self.with_db(|db| {
            db.execute(
                "start transcription",
                "UPDATE transcriptions SET status = 'in-progress', date_updated = ?2, \
                 lease_owner = ?3, lease_until = ?4 WHERE sid = ?1 AND status = 'queued'",
                params![
                    sid,
                    now_ms,
                    self.owner(),
                    now_ms.saturating_add(self.job_lease_ms())
                ],
            )
        })?;
        Ok(n == 1)
    }

    /// Up to `limit` queued jobs of every account, oldest first.
    pub fn next_queued_transcriptions(
        &self,
        limit: u32,
    ) -> Result<Vec<TranscriptionRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM transcriptions WHERE status = 'queued' \
             ORDER BY date_created, sid LIMIT ?1"
        );
        self.with_db(|db| select(db, "queued transcriptions", &sql, params![limit]))
    }

    /// Jobs left running (by a crash, at start-up), oldest first.
    pub fn transcriptions_in_progress(&self) -> Result<Vec<TranscriptionRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM transcriptions WHERE status = 'in-progress' \
             ORDER BY date_created, sid"
        );
        self.with_db(|db| select(db, "transcriptions in progress", &sql, params![]))
    }

    /// Puts the `in-progress` jobs this node left back in the queue (start-up: a restart
    /// resumes them), with those whose node's lease ran out; returns how many. Another live
    /// node's running jobs are left alone.
    pub fn requeue_transcriptions_in_progress(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.with_db(|db| {
            db.execute(
                "requeue transcriptions",
                "UPDATE transcriptions SET status = 'queued', date_updated = ?1, lease_owner = NULL, \
                 lease_until = 0 WHERE status = 'in-progress' \
                 AND (lease_owner IS NULL OR lease_owner = ?2 OR lease_until <= ?1)",
                params![now_ms, self.owner()],
            )
        })
    }

    /// Puts back in the queue the jobs whose node's lease ran out (a node died mid-job), for
    /// any node to take; returns how many.
    pub fn requeue_expired_transcriptions(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.with_db(|db| {
            db.execute(
                "requeue expired transcriptions",
                "UPDATE transcriptions SET status = 'queued', date_updated = ?1, lease_owner = NULL, \
                 lease_until = 0 WHERE status = 'in-progress' AND lease_until > 0 AND lease_until <= ?1",
                params![now_ms],
            )
        })
    }

    pub fn get_transcription(
        &self,
        account_sid: &AccountSid,
        sid: &TranscriptionSid,
    ) -> Result<Option<TranscriptionRecord>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM transcriptions WHERE sid = ?1 AND account_sid = ?2");
        Ok(self
            .with_db(|db| select(db, "get transcription", &sql, params![sid, account_sid]))?
            .pop())
    }

    /// Keyset paging, newest first (`date_created` then sid, descending), optionally only one
    /// recording's: the page after the item keyed `(date_created_ms, sid)`, or the first page.
    pub fn list_transcriptions(
        &self,
        account_sid: &AccountSid,
        recording_sid: Option<&RecordingSid>,
        page_size: u32,
        after: Option<(i64, &str)>,
    ) -> Result<Page<TranscriptionRecord>, StoreError> {
        self.list_tr(account_sid, recording_sid, page_size, 0, after)
    }

    /// Page number `page` (0-based, OFFSET) of the same list as [`Store::list_transcriptions`].
    pub fn list_transcriptions_page(
        &self,
        account_sid: &AccountSid,
        recording_sid: Option<&RecordingSid>,
        page_size: u32,
        page: u32,
    ) -> Result<Page<TranscriptionRecord>, StoreError> {
        let offset = i64::from(page) * i64::from(page_size);
        self.list_tr(account_sid, recording_sid, page_size, offset, None)
    }

    fn list_tr(
        &self,
        account_sid: &AccountSid,
        recording_sid: Option<&RecordingSid>,
        page_size: u32,
        offset: i64,
        after: Option<(i64, &str)>,
    ) -> Result<Page<TranscriptionRecord>, StoreError> {
        let items = self.with_db(|db| {
            let sql = list_sql(db.dialect(), recording_sid.is_some(), after.is_some());
            select(
                db,
                "list transcriptions",
                &sql,
                params![
                    account_sid,
                    recording_sid,
                    after.map(|a| a.0),
                    after.map(|a| a.1),
                    i64::from(page_size) + 1,
                    offset,
                ],
            )
        })?;
        Ok(into_page(items, page_size))
    }

    /// Deletes the transcription and its utterances (DELETE → 204); false if unknown.
    pub fn delete_transcription(
        &self,
        account_sid: &AccountSid,
        sid: &TranscriptionSid,
    ) -> Result<bool, StoreError> {
        let n = self.with_db(|db| {
            db.execute(
                "delete transcription",
                "DELETE FROM transcriptions WHERE sid = ?1 AND account_sid = ?2",
                params![sid, account_sid],
            )
        })?;
        Ok(n == 1)
    }

    /// Deletes every transcription of a recording (the recording was deleted: SPEC §9);
    /// returns how many.
    pub fn delete_transcriptions_of_recording(
        &self,
        account_sid: &AccountSid,
        recording_sid: &RecordingSid,
    ) -> Result<u64, StoreError> {
        self.with_db(|db| {
            db.execute(
                "delete transcriptions of recording",
                "DELETE FROM transcriptions WHERE recording_sid = ?1 AND account_sid = ?2",
                params![recording_sid, account_sid],
            )
        })
    }

    /// How many transcriptions are in each state (all accounts).
    pub fn transcription_counts(&self) -> Result<TranscriptionCounts, StoreError> {
        let rows = self.with_db(|db| {
            db.query_map(
                "count transcriptions",
                "SELECT status, COUNT(*) FROM transcriptions GROUP BY status",
                params![],
                |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)),
            )
        })?;
        let mut counts = TranscriptionCounts::default();
        for (status, n) in rows {
            let n = u64::try_from(n).unwrap_or(0);
            // A status this build does not know is not counted.
            match status.parse() {
                Ok(TranscriptionStatus::Queued) => counts.queued = n,
                Ok(TranscriptionStatus::InProgress) => counts.in_progress = n,
                Ok(TranscriptionStatus::Completed) => counts.completed = n,
                Ok(TranscriptionStatus::Failed) => counts.failed = n,
                Err(_) => {}
            }
        }
        Ok(counts)
    }
}

/// Whether a transcription sid exists in any account (used inside transactions).
pub(crate) fn exists(db: &mut dyn Db, sid: &TranscriptionSid) -> Result<bool, StoreError> {
    Ok(db
        .query_opt(
            "find transcription",
            "SELECT 1 FROM transcriptions WHERE sid = ?1",
            params![sid],
        )?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::list_sql;
    use crate::db::params;
    use crate::testutil::*;
    use crate::{
        Dialect, Page, StoreError, TranscriptionCounts, TranscriptionRecord, TranscriptionSid,
        TranscriptionStatus,
    };

    fn sids(p: &Page<TranscriptionRecord>) -> Vec<TranscriptionSid> {
        p.items.iter().map(|t| t.sid.clone()).collect()
    }

    fn with_recordings(store: &crate::Store) {
        store.insert_recording(&recording(re(1), ca(1), 1)).unwrap();
        store.insert_recording(&recording(re(2), ca(1), 2)).unwrap();
    }

    #[test]
    fn transcription_round_trips_every_field_and_is_scoped_to_its_account() {
        let (_d, store) = store();
        with_recordings(&store);
        let mut t = transcription(tr(1), re(1), 1_000);
        t.status = TranscriptionStatus::Completed;
        t.text = Some("hello there".into());
        t.language = Some("en-US".into());
        t.engine = Some("pocketsphinx".into());
        t.error = Some("none".into());
        t.audio_secs = Some(4.25);
        t.processing_secs = Some(0.5);
        t.duration_secs = Some(4);
        t.transcribe_callback = Some("https://example.com/tr".into());
        store.insert_transcription(&t).unwrap();
        assert_eq!(store.get_transcription(&AC, &tr(1)).unwrap(), Some(t));
        assert_eq!(store.get_transcription(&AC2, &tr(1)).unwrap(), None);
        assert_eq!(store.get_transcription(&AC, &tr(2)).unwrap(), None);
    }

    #[test]
    fn transcription_of_unknown_recording_is_refused() {
        let (_d, store) = store();
        let err = store
            .insert_transcription(&transcription(tr(1), re(9), 1))
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Query {
                    what: "insert transcription",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn job_life_cycle_claim_once_update_and_not_found_after_delete() {
        let (_d, store) = store();
        with_recordings(&store);
        store
            .insert_transcription(&transcription(tr(1), re(1), 10))
            .unwrap();
        assert!(store.start_transcription(&tr(1), 20).unwrap());
        assert!(
            !store.start_transcription(&tr(1), 21).unwrap(),
            "claimed once"
        );
        let got = store.get_transcription(&AC, &tr(1)).unwrap().unwrap();
        assert_eq!(
            (got.status.as_str(), got.date_updated_ms),
            ("in-progress", 20)
        );

        let mut done = got.clone();
        done.status = TranscriptionStatus::Failed;
        done.error = Some("engine timeout after 30 s".into());
        done.date_updated_ms = 30;
        done.call_sid = ca(9); // immutable: ignored
        store.update_transcription(&done).unwrap();
        let got = store.get_transcription(&AC, &tr(1)).unwrap().unwrap();
        assert_eq!(got.status, "failed");
        assert_eq!(got.error.as_deref(), Some("engine timeout after 30 s"));
        assert_eq!(got.call_sid, ca(1));

        assert!(store.delete_transcription(&AC, &tr(1)).unwrap());
        assert!(!store.delete_transcription(&AC, &tr(1)).unwrap());
        let err = store.update_transcription(&done).unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound { what: "transcription", ref sid } if sid == tr(1).as_str()),
            "{err:?}"
        );
    }

    #[test]
    fn queue_is_oldest_first_across_accounts_and_in_progress_jobs_are_requeued() {
        let (_d, store) = store();
        with_recordings(&store);
        let mut other = recording(re(3), ca(3), 3);
        other.account_sid = AC2.clone();
        store.insert_recording(&other).unwrap();
        store
            .insert_transcription(&transcription(tr(0xc), re(1), 300))
            .unwrap();
        store
            .insert_transcription(&transcription(tr(0xa), re(2), 100))
            .unwrap();
        let mut foreign = transcription(tr(0xb), re(3), 200);
        foreign.account_sid = AC2.clone();
        store.insert_transcription(&foreign).unwrap();
        let mut done = transcription(tr(0), re(1), 50);
        done.status = TranscriptionStatus::Completed;
        store.insert_transcription(&done).unwrap();

        let queued = |n| {
            store
                .next_queued_transcriptions(n)
                .unwrap()
                .into_iter()
                .map(|t| t.sid)
                .collect::<Vec<_>>()
        };
        assert_eq!(queued(10), [tr(0xa), tr(0xb), tr(0xc)]);
        assert_eq!(queued(1), [tr(0xa)]);
        assert!(store.start_transcription(&tr(0xa), 400).unwrap());
        assert!(store.start_transcription(&tr(0xc), 400).unwrap());
        assert_eq!(queued(10), [tr(0xb)]);
        let running: Vec<_> = store
            .transcriptions_in_progress()
            .unwrap()
            .into_iter()
            .map(|t| t.sid)
            .collect();
        assert_eq!(running, [tr(0xa), tr(0xc)]);
        assert_eq!(
            store.transcription_counts().unwrap(),
            TranscriptionCounts {
                queued: 1,
                in_progress: 2,
                completed: 1,
                failed: 0
            }
        );
        // A restart: the running jobs go back to the queue, in their original order.
        assert_eq!(store.requeue_transcriptions_in_progress(500).unwrap(), 2);
        assert_eq!(queued(10), [tr(0xa), tr(0xb), tr(0xc)]);
        assert!(store.transcriptions_in_progress().unwrap().is_empty());
    }

    #[test]
    fn list_pages_newest_first_by_keyset_and_offset_and_by_recording() {
        let (_d, store) = store();
        with_recordings(&store);
        for (sid, re, t) in [
            (tr(0xa), re(1), 1_000),
            (tr(0xc), re(2), 2_000),
            (tr(0xb), re(1), 2_000),
            (tr(0xd), re(2), 500),
        ] {
            store
                .insert_transcription(&transcription(sid, re, t))
                .unwrap();
        }
        let mut foreign = transcription(tr(0xe), re(1), 3_000);
        foreign.account_sid = AC2.clone();
        store.insert_transcription(&foreign).unwrap();

        let p0 = store.list_transcriptions(&AC, None, 2, None).unwrap();
        assert_eq!(sids(&p0), [tr(0xc), tr(0xb)]);
        assert!(p0.has_more);
        let p1 = store
            .list_transcriptions(&AC, None, 2, Some((2_000, tr(0xb).as_str())))
            .unwrap();
        assert_eq!(sids(&p1), [tr(0xa), tr(0xd)]);
        assert!(!p1.has_more, "exactly page_size left: no next page");
        let o1 = store.list_transcriptions_page(&AC, None, 2, 1).unwrap();
        assert_eq!(sids(&o1), [tr(0xa), tr(0xd)]);
        assert!(store
            .list_transcriptions_page(&AC, None, 2, 2)
            .unwrap()
            .items
            .is_empty());

        let re1 = store
            .list_transcriptions(&AC, Some(&re(1)), 50, None)
            .unwrap();
        assert_eq!(sids(&re1), [tr(0xb), tr(0xa)]);
        let re1_after = store
            .list_transcriptions(&AC, Some(&re(1)), 50, Some((2_000, tr(0xb).as_str())))
            .unwrap();
        assert_eq!(sids(&re1_after), [tr(0xa)]);
        assert_eq!(
            sids(
                &store
                    .list_transcriptions(&AC2, Some(&re(1)), 50, None)
                    .unwrap()
            ),
            [tr(0xe)]
        );
    }

    #[test]
    fn deleting_a_recordings_transcriptions_takes_their_utterances() {
        let (_d, store) = store();
        with_recordings(&store);
        store
            .insert_transcription(&transcription(tr(1), re(1), 1))
            .unwrap();
        store
            .insert_transcription(&transcription(tr(2), re(2), 2))
            .unwrap();
        store
            .replace_utterances(&tr(1), &[utterance(1, 0.0, "hi")])
            .unwrap();
        assert_eq!(
            store
                .delete_transcriptions_of_recording(&AC2, &re(1))
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .delete_transcriptions_of_recording(&AC, &re(1))
                .unwrap(),
            1
        );
        assert_eq!(store.get_transcription(&AC, &tr(1)).unwrap(), None);
        assert!(store.utterances(&tr(1)).unwrap().is_empty());
        let left: i64 = store
            .with_db(|db| {
                db.query_one(
                    "count utterances",
                    "SELECT COUNT(*) FROM utterances",
                    params![],
                )?
                .get(0)
            })
            .unwrap();
        assert_eq!(left, 0);
        assert!(store.get_transcription(&AC, &tr(2)).unwrap().is_some());
    }

    #[test]
    fn every_list_shape_and_the_queue_use_an_index_without_sorting() {
        let Some((_d, store)) = sqlite_only() else {
            return;
        };
        let conn = &store.sqlite_conn().conn;
        let plan = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> String {
            conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(args, |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
                .join(" | ")
        };
        for (by_rec, keyset) in [(false, false), (false, true), (true, false), (true, true)] {
            let p = plan(
                &list_sql(Dialect::Sqlite, by_rec, keyset),
                rusqlite::params!["AC", "RE", 1, "TR", 51, 0],
            );
            let index = if by_rec {
                "transcriptions_by_recording"
            } else {
                "transcriptions_by_account"
            };
            assert!(p.contains(index), "{by_rec} {keyset}: {p}");
            assert!(!p.contains("TEMP B-TREE"), "{p}");
        }
        let q = plan(
            &format!(
                "SELECT {} FROM transcriptions WHERE status = 'queued' ORDER BY date_created, sid LIMIT ?1",
                super::COLUMNS
            ),
            rusqlite::params![5],
        );
        assert!(q.contains("transcriptions_by_status"), "{q}");
        assert!(!q.contains("TEMP B-TREE"), "{q}");
    }
}
