//! The `recordings` table and its list queries.

use crate::db::{params, Db, Dialect, Row, ToParam};
use crate::{
    into_page, to_u32, AccountSid, CallSid, HttpMethod, Page, RecordingFilter, RecordingRecord,
    RecordingSid, RecordingSource, StatusCallbackSpec, Store, StoreError,
};

const COLUMNS: &str = "sid, account_sid, call_sid, status, source, channels, date_created, date_updated, \
                       start_time, duration, error_code, media_file, transcribe, transcribe_callback, \
                       sc_url, sc_method, sc_in_progress, sc_completed, sc_absent, deleted_at, sample_rate";

const INSERT: &str = "INSERT INTO recordings (sid, account_sid, call_sid, status, source, channels, date_created, \
                      date_updated, start_time, duration, error_code, media_file, transcribe, transcribe_callback, \
                      sc_url, sc_method, sc_in_progress, sc_completed, sc_absent, deleted_at, sample_rate, node_id) \
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)";

fn from_row(r: &Row) -> Result<RecordingRecord, StoreError> {
    let channels: i64 = r.get(5)?;
    let sample_rate: i64 = r.get(20)?;
    let duration: Option<i64> = r.get(9)?;
    let error_code: Option<i64> = r.get(10)?;
    let sc_url: Option<String> = r.get(14)?;
    let status_callback = match sc_url {
        Some(url) => Some(StatusCallbackSpec {
            url,
            // Always written with the URL; POST is Twilio's default.
            method: r.get::<Option<HttpMethod>>(15)?.unwrap_or(HttpMethod::Post),
            in_progress: r.get::<Option<bool>>(16)?.unwrap_or(false),
            completed: r.get::<Option<bool>>(17)?.unwrap_or(false),
            absent: r.get::<Option<bool>>(18)?.unwrap_or(false),
        }),
        None => None,
    };
    Ok(RecordingRecord {
        sid: r.get(0)?,
        account_sid: r.get(1)?,
        call_sid: r.get(2)?,
        status: r.get(3)?,
        source: r.get(4)?,
        channels: to_u32("recordings.channels", channels)?,
        sample_rate: to_u32("recordings.sample_rate", sample_rate)?,
        date_created_ms: r.get(6)?,
        date_updated_ms: r.get(7)?,
        start_time_ms: r.get(8)?,
        duration_secs: duration
            .map(|d| to_u32("recordings.duration", d))
            .transpose()?,
        error_code: error_code
            .map(|c| to_u32("recordings.error_code", c))
            .transpose()?,
        media_file: r.get(11)?,
        transcribe: r.get(12)?,
        transcribe_callback: r.get(13)?,
        status_callback,
        deleted_at_ms: r.get(19)?,
    })
}

fn insert(db: &mut dyn Db, rec: &RecordingRecord, node: Option<&str>) -> Result<(), StoreError> {
    let sc = rec.status_callback.as_ref();
    db.execute(
        "insert recording",
        INSERT,
        params![
            rec.sid,
            rec.account_sid,
            rec.call_sid,
            rec.status,
            rec.source,
            rec.channels,
            rec.date_created_ms,
            rec.date_updated_ms,
            rec.start_time_ms,
            rec.duration_secs,
            rec.error_code,
            rec.media_file,
            rec.transcribe,
            rec.transcribe_callback,
            sc.map(|s| &s.url),
            sc.map(|s| &s.method),
            sc.map(|s| s.in_progress),
            sc.map(|s| s.completed),
            sc.map(|s| s.absent),
            rec.deleted_at_ms,
            rec.sample_rate,
            node,
        ],
    )?;
    Ok(())
}

/// Builds the list query for one filter shape. Parameters are numbered the same in every
/// shape (?1 account, ?2 call, ?3 on/after, ?4 before, ?5/?6 keyset, ?7 status, ?8/?9 the
/// call's from/to, ?10 limit, ?11 offset) so one binding fits all; unused numbers are bound and
/// ignored (the last two are always used: SQLite counts parameters up to the highest).
fn list_sql(dialect: Dialect, filter: &RecordingFilter, keyset: bool) -> String {
    let mut sql = format!("SELECT {COLUMNS} FROM recordings WHERE ");
    if filter.call_sid.is_some() {
        // Keeps the planner on the call index (few rows, already ordered) instead of walking
        // the whole account.
        sql.push_str("call_sid = ?2 AND ");
        sql.push_str(&dialect.no_index("account_sid"));
        sql.push_str(" = ?1");
    } else {
        sql.push_str("account_sid = ?1");
    }
    if filter.created_on_or_after_ms.is_some() {
        sql.push_str(" AND date_created >= ?3");
    }
    if filter.created_before_ms.is_some() {
        sql.push_str(" AND date_created < ?4");
    }
    if !filter.include_soft_deleted {
        sql.push_str(" AND deleted_at IS NULL");
    }
    if filter.status.is_some() {
        sql.push_str(" AND status = ?7");
    }
    if filter.from.is_some() || filter.to.is_some() {
        sql.push_str(" AND call_sid IN (SELECT sid FROM calls WHERE account_sid = ?1");
        if filter.from.is_some() {
            sql.push_str(" AND from_addr = ?8");
        }
        if filter.to.is_some() {
            sql.push_str(" AND to_addr = ?9");
        }
        sql.push(')');
    }
    if keyset {
        sql.push_str(" AND (date_created, sid) < (?5, ?6)");
    }
    sql.push_str(" ORDER BY date_created DESC, sid DESC LIMIT ?10 OFFSET ?11");
    sql
}

impl Store {
    pub fn insert_recording(&self, rec: &RecordingRecord) -> Result<(), StoreError> {
        self.with_db(|db| insert(db, rec, self.node()))
    }

    /// Inserts all of `recs` in one transaction (all or nothing): imports and benchmarks.
    pub fn insert_recordings_bulk(&self, recs: &[RecordingRecord]) -> Result<(), StoreError> {
        self.tx("bulk insert recordings", |db| {
            recs.iter().try_for_each(|rec| insert(db, rec, self.node()))
        })
    }

    /// Replaces every mutable field of the recording with `rec`'s.
    ///
    /// Immutable: sid, account_sid, call_sid, date_created. Unknown sid →
    /// [`StoreError::NotFound`].
    pub fn update_recording(&self, rec: &RecordingRecord) -> Result<(), StoreError> {
        let sc = rec.status_callback.as_ref();
        let n = self.with_db(|db| {
            db.execute(
                "update recording",
                "UPDATE recordings SET status = ?2, source = ?3, channels = ?4, date_updated = ?5, \
                 start_time = ?6, duration = ?7, error_code = ?8, media_file = ?9, transcribe = ?10, \
                 transcribe_callback = ?11, sc_url = ?12, sc_method = ?13, sc_in_progress = ?14, \
                 sc_completed = ?15, sc_absent = ?16, deleted_at = ?17, sample_rate = ?18 WHERE sid = ?1",
                params![
                    rec.sid,
                    rec.status,
                    rec.source,
                    rec.channels,
                    rec.date_updated_ms,
                    rec.start_time_ms,
                    rec.duration_secs,
                    rec.error_code,
                    rec.media_file,
                    rec.transcribe,
                    rec.transcribe_callback,
                    sc.map(|s| &s.url),
                    sc.map(|s| &s.method),
                    sc.map(|s| s.in_progress),
                    sc.map(|s| s.completed),
                    sc.map(|s| s.absent),
                    rec.deleted_at_ms,
                    rec.sample_rate,
                ],
            )
        })?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "recording",
                sid: rec.sid.to_string(),
            });
        }
        Ok(())
    }

    /// Soft-deleted recordings are returned only with `include_deleted`.
    pub fn get_recording(
        &self,
        account_sid: &AccountSid,
        sid: &RecordingSid,
        include_deleted: bool,
    ) -> Result<Option<RecordingRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM recordings WHERE sid = ?1 AND account_sid = ?2");
        let found = self.with_db(|db| {
            db.query_opt("get recording", &sql, params![sid, account_sid])?
                .as_ref()
                .map(from_row)
                .transpose()
        })?;
        Ok(found.filter(|r| include_deleted || r.deleted_at_ms.is_none()))
    }

    /// The call's newest recording still being written (`in-progress` or `paused`) that the
    /// API can pause, resume or stop — not a `<Record>` verb's or a bot's capture, which end
    /// with their verb or operation: Twilio's `Twilio.CURRENT`.
    pub fn current_recording(
        &self,
        account_sid: &AccountSid,
        call_sid: &CallSid,
    ) -> Result<Option<RecordingRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM recordings WHERE call_sid = ?1 AND account_sid = ?2 \
             AND status IN ('in-progress', 'paused') AND deleted_at IS NULL \
             AND source NOT IN ('RecordVerb', 'RecordResponse') \
             ORDER BY date_created DESC, sid DESC LIMIT 1"
        );
        self.with_db(|db| {
            db.query_opt("current recording", &sql, params![call_sid, account_sid])?
                .as_ref()
                .map(from_row)
                .transpose()
        })
    }

    /// Newest first (`date_created` descending, then sid descending); `page` is 0-based.
    /// Cost grows with `page` (OFFSET); prefer [`Store::list_recordings_after`] for deep pages.
    pub fn list_recordings(
        &self,
        account_sid: &AccountSid,
        filter: &RecordingFilter,
        page_size: u32,
        page: u32,
    ) -> Result<Page<RecordingRecord>, StoreError> {
        let offset = i64::from(page) * i64::from(page_size);
        self.list(account_sid, filter, page_size, offset, None)
    }

    /// Keyset paging: the page after the item keyed `(date_created_ms, sid)` (the last item of
    /// the previous page), or the first page for `None`. Same order and filters as
    /// [`Store::list_recordings`], but constant cost at any depth, and stable while rows are
    /// added — the key is what a `PageToken` should carry.
    pub fn list_recordings_after(
        &self,
        account_sid: &AccountSid,
        filter: &RecordingFilter,
        page_size: u32,
        after: Option<(i64, &str)>,
    ) -> Result<Page<RecordingRecord>, StoreError> {
        self.list(account_sid, filter, page_size, 0, after)
    }

    fn list(
        &self,
        account_sid: &AccountSid,
        filter: &RecordingFilter,
        page_size: u32,
        offset: i64,
        after: Option<(i64, &str)>,
    ) -> Result<Page<RecordingRecord>, StoreError> {
        // Keep one upper bound: with both, SQLite ranges on `date_created < before` and
        // filters the rest, so a deep keyset page would scan everything above the key.
        let mut before = filter.created_before_ms;
        let mut after = after;
        if let (Some(b), Some((key_ms, _))) = (before, after) {
            if key_ms < b {
                before = None; // (date_created, sid) < key already implies date_created < b
            } else {
                after = None; // date_created < b <= key_ms already implies the key bound
            }
        }
        let filter = &RecordingFilter {
            created_before_ms: before,
            ..filter.clone()
        };
        let items = self.with_db(|db| {
            let sql = list_sql(db.dialect(), filter, after.is_some());
            db.query_map(
                "list recordings",
                &sql,
                params![
                    account_sid,
                    filter.call_sid,
                    filter.created_on_or_after_ms,
                    filter.created_before_ms,
                    after.map(|a| a.0),
                    after.map(|a| a.1),
                    filter.status,
                    filter.from,
                    filter.to,
                    i64::from(page_size) + 1,
                    offset,
                ],
                from_row,
            )
        })?;
        Ok(into_page(items, page_size))
    }

    /// Recordings left `in-progress` (crash recovery at start-up).
    /// In a cluster, only this node's (and rows of no node, from before there was one): the
    /// other nodes' recordings are being written right now.
    pub fn recordings_in_progress(&self) -> Result<Vec<RecordingRecord>, StoreError> {
        self.select_recordings(
            &format!(
                "SELECT {COLUMNS} FROM recordings WHERE status = 'in-progress' \
                 AND (CAST(?1 AS TEXT) IS NULL OR node_id IS NULL OR node_id = ?1) \
                 ORDER BY date_created, sid"
            ),
            params![self.node()],
            "recordings in progress",
        )
    }

    /// A recording by SID in any account: the daemon's own bookkeeping, not the API.
    pub fn recording_by_sid(
        &self,
        sid: &RecordingSid,
    ) -> Result<Option<RecordingRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM recordings WHERE sid = ?1");
        self.with_db(|db| {
            db.query_opt("get recording", &sql, params![sid])?
                .as_ref()
                .map(from_row)
                .transpose()
        })
    }

    /// Finished (not in-progress), visible recordings created before `before_ms`, oldest
    /// first, at most `limit`: what a retention period has expired on.
    pub fn recordings_created_before(
        &self,
        before_ms: i64,
        limit: u32,
    ) -> Result<Vec<RecordingRecord>, StoreError> {
        self.select_recordings(
            &format!(
                "SELECT {COLUMNS} FROM recordings WHERE date_created < ?1 AND deleted_at IS NULL \
                 AND status <> 'in-progress' ORDER BY date_created, sid LIMIT ?2"
            ),
            params![before_ms, limit],
            "recordings past retention",
        )
    }

    /// A call's visible recordings made by `source` (e.g. `RecordResponse`), oldest first.
    pub fn recordings_of_call(
        &self,
        call_sid: &CallSid,
        source: RecordingSource,
    ) -> Result<Vec<RecordingRecord>, StoreError> {
        self.select_recordings(
            &format!(
                "SELECT {COLUMNS} FROM recordings WHERE call_sid = ?1 AND source = ?2 \
                 AND deleted_at IS NULL ORDER BY date_created, sid"
            ),
            params![call_sid, source],
            "recordings of call",
        )
    }

    fn select_recordings(
        &self,
        sql: &str,
        args: &[&dyn ToParam],
        what: &'static str,
    ) -> Result<Vec<RecordingRecord>, StoreError> {
        self.with_db(|db| db.query_map(what, sql, args, from_row))
    }

    /// Removes the metadata of recordings deleted before `before_ms` for good (Twilio keeps a
    /// deleted recording's metadata 40 days); returns how many rows went.
    pub fn purge_deleted_recordings(&self, before_ms: i64) -> Result<usize, StoreError> {
        let n = self.with_db(|db| {
            db.execute(
                "purge deleted recordings",
                "DELETE FROM recordings WHERE deleted_at IS NOT NULL AND deleted_at < ?1",
                params![before_ms],
            )
        })?;
        Ok(n as usize)
    }

    /// Marks deleted (status `deleted`, `deleted_at`); returns false if unknown or already deleted.
    pub fn soft_delete_recording(
        &self,
        account_sid: &AccountSid,
        sid: &RecordingSid,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = self.with_db(|db| {
            db.execute(
                "soft delete recording",
                "UPDATE recordings SET status = 'deleted', deleted_at = ?3, date_updated = ?3 \
                 WHERE sid = ?1 AND account_sid = ?2 AND deleted_at IS NULL",
                params![sid, account_sid, now_ms],
            )
        })?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::{list_sql, COLUMNS};
    use crate::testutil::*;
    use crate::Dialect;
    use crate::{
        HttpMethod, Page, RecordingFilter, RecordingRecord, RecordingSid, RecordingSource,
        RecordingStatus, StatusCallbackSpec, StoreError,
    };

    const DAY: i64 = 86_400_000;
    /// 2024-03-01T00:00:00Z
    const MAR1: i64 = 1_709_251_200_000;

    fn sids(p: &Page<RecordingRecord>) -> Vec<RecordingSid> {
        p.items.iter().map(|r| r.sid.clone()).collect()
    }

    fn full() -> RecordingRecord {
        let mut r = recording(re(1), ca(1), MAR1);
        r.status = RecordingStatus::Completed;
        r.channels = 1;
        r.sample_rate = 16_000;
        r.duration_secs = Some(42);
        r.error_code = Some(0);
        r.transcribe = true;
        r.transcribe_callback = Some("https://example.com/tr".into());
        r.status_callback = Some(StatusCallbackSpec {
            url: "https://example.com/rsc".into(),
            method: HttpMethod::Get,
            in_progress: false,
            completed: true,
            absent: true,
        });
        r
    }

    #[test]
    fn recording_round_trips_every_field() {
        let (_d, store) = store();
        store.insert_recording(&full()).unwrap();
        assert_eq!(
            store.get_recording(&AC, &re(1), false).unwrap(),
            Some(full())
        );
        assert_eq!(store.get_recording(&AC2, &re(1), true).unwrap(), None);
        assert_eq!(store.get_recording(&AC, &re(2), true).unwrap(), None);
    }

    #[test]
    fn update_recording_replaces_mutable_fields_only() {
        let (_d, store) = store();
        store.insert_recording(&full()).unwrap();
        let mut r = recording(re(1), ca(1), MAR1);
        r.call_sid = ca(2); // immutable
        r.date_created_ms = 7; // immutable
        r.status = RecordingStatus::Absent;
        r.date_updated_ms = MAR1 + 5_000;
        r.duration_secs = Some(0);
        r.error_code = Some(16102);
        r.status_callback = None;
        store.update_recording(&r).unwrap();
        let got = store.get_recording(&AC, &re(1), false).unwrap().unwrap();
        let mut want = r.clone();
        want.call_sid = ca(1);
        want.date_created_ms = MAR1;
        assert_eq!(got, want);

        let err = store
            .update_recording(&recording(re(9), ca(1), 0))
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::NotFound {
                    what: "recording",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn page_size_one_walks_three_items_newest_first_ties_by_sid() {
        let (_d, store) = store();
        store
            .insert_recording(&recording(re(0xa), ca(1), 1_000))
            .unwrap();
        store
            .insert_recording(&recording(re(0xc), ca(1), 2_000))
            .unwrap();
        store
            .insert_recording(&recording(re(0xb), ca(1), 2_000))
            .unwrap();
        let f = RecordingFilter::default();
        let pages: Vec<_> = (0..4)
            .map(|n| store.list_recordings(&AC, &f, 1, n).unwrap())
            .collect();
        assert_eq!(sids(&pages[0]), [re(0xc)]);
        assert_eq!(sids(&pages[1]), [re(0xb)]);
        assert_eq!(sids(&pages[2]), [re(0xa)]);
        assert!(pages[3].items.is_empty());
        assert_eq!(
            pages.iter().map(|p| p.has_more).collect::<Vec<_>>(),
            [true, true, false, false]
        );
    }

    #[test]
    fn keyset_pages_match_offset_pages() {
        let (_d, store) = store();
        for (sid, t) in [
            (re(0xa), 1_000),
            (re(0xc), 2_000),
            (re(0xb), 2_000),
            (re(0xd), 500),
            (re(0xe), 2_000),
        ] {
            store.insert_recording(&recording(sid, ca(1), t)).unwrap();
        }
        let f = RecordingFilter::default();
        let mut after: Option<(i64, RecordingSid)> = None;
        let mut walked = Vec::new();
        let mut more = Vec::new();
        loop {
            let p = store
                .list_recordings_after(&AC, &f, 2, after.as_ref().map(|(t, s)| (*t, s.as_str())))
                .unwrap();
            walked.extend(p.items.iter().map(|r| r.sid.clone()));
            more.push(p.has_more);
            let Some(last) = p.items.last() else { break };
            after = Some((last.date_created_ms, last.sid.clone()));
            if !p.has_more {
                break;
            }
        }
        assert_eq!(walked, [re(0xe), re(0xc), re(0xb), re(0xa), re(0xd)]);
        assert_eq!(more, [true, true, false]);
        let by_offset: Vec<RecordingSid> = (0..3)
            .flat_map(|n| store.list_recordings(&AC, &f, 2, n).unwrap().items)
            .map(|r| r.sid)
            .collect();
        assert_eq!(walked, by_offset);
    }

    #[test]
    fn call_sid_filter_lists_only_that_call() {
        let (_d, store) = store();
        store
            .insert_recording(&recording(re(1), ca(1), 1_000))
            .unwrap();
        store
            .insert_recording(&recording(re(2), ca(2), 2_000))
            .unwrap();
        store
            .insert_recording(&recording(re(3), ca(1), 3_000))
            .unwrap();
        let mut foreign = recording(re(4), ca(1), 4_000);
        foreign.account_sid = AC2.clone();
        store.insert_recording(&foreign).unwrap();
        let f = RecordingFilter {
            call_sid: Some(ca(1)),
            ..Default::default()
        };
        assert_eq!(
            sids(&store.list_recordings(&AC, &f, 50, 0).unwrap()),
            [re(3), re(1)]
        );
        assert_eq!(
            sids(
                &store
                    .list_recordings_after(&AC, &f, 50, Some((3_000, re(3).as_str())))
                    .unwrap()
            ),
            [re(1)]
        );
        assert_eq!(
            sids(&store.list_recordings(&AC2, &f, 50, 0).unwrap()),
            [re(4)]
        );
    }

    #[test]
    fn date_created_bounds_include_start_and_exclude_end() {
        let (_d, store) = store();
        for (sid, t) in [
            (re(1), MAR1 - 1),
            (re(2), MAR1),
            (re(3), MAR1 + DAY - 1),
            (re(4), MAR1 + DAY),
        ] {
            store.insert_recording(&recording(sid, ca(1), t)).unwrap();
        }
        let list = |f: RecordingFilter| {
            store
                .list_recordings(&AC, &f, 50, 0)
                .unwrap()
                .items
                .into_iter()
                .map(|r| r.sid)
                .collect::<Vec<_>>()
        };
        // DateCreated=2024-03-01
        let day = RecordingFilter {
            created_on_or_after_ms: Some(MAR1),
            created_before_ms: Some(MAR1 + DAY),
            ..Default::default()
        };
        assert_eq!(list(day), [re(3), re(2)]);
        // DateCreated<2024-03-01
        assert_eq!(
            list(RecordingFilter {
                created_before_ms: Some(MAR1),
                ..Default::default()
            }),
            [re(1)]
        );
        // DateCreated>2024-03-01 (the API passes the start of the next day for `>`)
        let after = RecordingFilter {
            created_on_or_after_ms: Some(MAR1 + DAY),
            ..Default::default()
        };
        assert_eq!(list(after), [re(4)]);
    }

    #[test]
    fn keyset_with_created_before_honours_whichever_bound_is_tighter() {
        let (_d, store) = store();
        for (sid, t) in [(re(1), 100), (re(2), 200), (re(3), 300), (re(4), 400)] {
            store.insert_recording(&recording(sid, ca(1), t)).unwrap();
        }
        let before = |ms| RecordingFilter {
            created_before_ms: Some(ms),
            ..Default::default()
        };
        let list = |f: &RecordingFilter, key: (i64, RecordingSid)| {
            store
                .list_recordings_after(&AC, f, 50, Some((key.0, key.1.as_str())))
                .unwrap()
                .items
                .into_iter()
                .map(|r| r.sid)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            list(&before(400), (300, re(3))),
            [re(2), re(1)],
            "key is tighter"
        );
        assert_eq!(
            list(&before(300), (400, re(4))),
            [re(2), re(1)],
            "before is tighter"
        );
        assert_eq!(list(&before(300), (300, re(3))), [re(2), re(1)], "equal");
        assert_eq!(
            list(&before(301), (300, re(4))),
            [re(3), re(2), re(1)],
            "tie on time, sid decides"
        );
    }

    #[test]
    fn soft_delete_hides_unless_asked_and_happens_once() {
        let (_d, store) = store();
        store.insert_recording(&full()).unwrap();
        store
            .insert_recording(&recording(re(2), ca(1), MAR1 + 1))
            .unwrap();
        assert!(
            !store
                .soft_delete_recording(&AC2, &re(1), MAR1 + 10)
                .unwrap(),
            "other account"
        );
        assert!(
            !store.soft_delete_recording(&AC, &re(9), MAR1 + 10).unwrap(),
            "unknown"
        );
        assert!(store.soft_delete_recording(&AC, &re(1), MAR1 + 10).unwrap());
        assert!(
            !store.soft_delete_recording(&AC, &re(1), MAR1 + 20).unwrap(),
            "second delete"
        );

        assert_eq!(store.get_recording(&AC, &re(1), false).unwrap(), None);
        let got = store.get_recording(&AC, &re(1), true).unwrap().unwrap();
        assert_eq!(got.status, RecordingStatus::Deleted);
        assert_eq!(got.deleted_at_ms, Some(MAR1 + 10));
        assert_eq!(got.date_updated_ms, MAR1 + 10);

        let hidden = RecordingFilter::default();
        assert_eq!(
            sids(&store.list_recordings(&AC, &hidden, 50, 0).unwrap()),
            [re(2)]
        );
        let shown = RecordingFilter {
            include_soft_deleted: true,
            ..Default::default()
        };
        assert_eq!(
            sids(&store.list_recordings(&AC, &shown, 50, 0).unwrap()),
            [re(2), re(1)]
        );
        // A hidden row does not make a phantom next page.
        let p = store.list_recordings(&AC, &hidden, 1, 0).unwrap();
        assert!(!p.has_more);
    }

    #[test]
    fn in_progress_recordings_of_all_accounts_oldest_first() {
        let (_d, store) = store();
        let mut done = recording(re(1), ca(1), 1);
        done.status = RecordingStatus::Completed;
        store.insert_recording(&done).unwrap();
        store.insert_recording(&recording(re(3), ca(2), 3)).unwrap();
        let mut other = recording(re(2), ca(3), 2);
        other.account_sid = AC2.clone();
        store.insert_recording(&other).unwrap();
        let got: Vec<_> = store
            .recordings_in_progress()
            .unwrap()
            .into_iter()
            .map(|r| r.sid)
            .collect();
        assert_eq!(got, [re(2), re(3)]);
    }

    #[test]
    fn bulk_insert_is_all_or_nothing() {
        let (_d, store) = store();
        let batch = [
            recording(re(1), ca(1), 1),
            recording(re(2), ca(1), 2),
            recording(re(1), ca(1), 3),
        ];
        assert!(store.insert_recordings_bulk(&batch).is_err());
        assert!(store
            .list_recordings(&AC, &RecordingFilter::default(), 50, 0)
            .unwrap()
            .items
            .is_empty());
        store.insert_recordings_bulk(&batch[..2]).unwrap();
        assert_eq!(
            sids(
                &store
                    .list_recordings(&AC, &RecordingFilter::default(), 50, 0)
                    .unwrap()
            ),
            [re(2), re(1)]
        );
    }

    #[test]
    fn out_of_range_stored_integer_is_reported_as_corrupt() {
        let (_d, store) = store();
        store.insert_recording(&recording(re(1), ca(1), 1)).unwrap();
        store.exec_raw("UPDATE recordings SET channels = -1");
        let err = store.get_recording(&AC, &re(1), false).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { what: "recordings.channels", ref value } if value == "-1")
        );
    }

    #[test]
    fn status_and_number_filters_pick_recordings_by_their_own_status_and_their_calls_numbers() {
        let (_d, store) = store();
        let mut c1 = call(ca(1), 1_000);
        c1.from = "+15550000001".into();
        let mut c2 = call(ca(2), 2_000);
        c2.from = "+15550000002".into();
        c2.to = "sip:other@hark".into();
        store.insert_call(&c1).unwrap();
        store.insert_call(&c2).unwrap();
        let mut r1 = recording(re(1), ca(1), 1_100);
        r1.status = RecordingStatus::Completed;
        let mut r2 = recording(re(2), ca(1), 1_200);
        r2.status = RecordingStatus::Absent;
        let mut r3 = recording(re(3), ca(2), 2_100);
        r3.status = RecordingStatus::Completed;
        for r in [&r1, &r2, &r3] {
            store.insert_recording(r).unwrap();
        }
        let list = |f: RecordingFilter| sids(&store.list_recordings(&AC, &f, 50, 0).unwrap());
        let completed = RecordingFilter {
            status: Some(RecordingStatus::Completed),
            ..Default::default()
        };
        assert_eq!(list(completed.clone()), [re(3), re(1)]);
        let from1 = RecordingFilter {
            from: Some("+15550000001".into()),
            ..Default::default()
        };
        assert_eq!(list(from1.clone()), [re(2), re(1)]);
        assert_eq!(
            list(RecordingFilter {
                status: Some(RecordingStatus::Completed),
                ..from1
            }),
            [re(1)]
        );
        assert_eq!(
            list(RecordingFilter {
                to: Some("sip:other@hark".into()),
                ..Default::default()
            }),
            [re(3)]
        );
        assert!(list(RecordingFilter {
            from: Some("+19999".into()),
            ..Default::default()
        })
        .is_empty());
        // Keyset paging keeps the filters.
        let page = store
            .list_recordings_after(&AC, &completed, 1, Some((2_100, re(3).as_str())))
            .unwrap();
        assert_eq!(sids(&page), [re(1)]);
        assert!(!page.has_more);
    }

    #[test]
    fn current_recording_is_the_newest_unfinished_one_the_api_can_control() {
        let (_d, store) = store();
        let mut api = recording(re(1), ca(1), 1_000);
        api.status = RecordingStatus::InProgress;
        api.source = RecordingSource::StartCallRecordingApi;
        let mut verb = recording(re(2), ca(1), 2_000);
        verb.status = RecordingStatus::InProgress;
        verb.source = RecordingSource::RecordVerb;
        store.insert_recording(&api).unwrap();
        store.insert_recording(&verb).unwrap();
        // The newer `<Record>` capture is not it.
        let current = store.current_recording(&AC, &ca(1)).unwrap().unwrap();
        assert_eq!(current.sid, re(1));
        api.status = RecordingStatus::Completed;
        store.update_recording(&api).unwrap();
        assert_eq!(store.current_recording(&AC, &ca(1)).unwrap(), None);
    }

    /// Every filter shape must be served by an index in list order: no sort of the account.
    #[test]
    fn every_list_shape_uses_an_index_without_sorting() {
        let Some((_d, store)) = sqlite_only() else {
            return;
        };
        let conn = &store.sqlite_conn().conn;
        for bits in 0..32u32 {
            let f = RecordingFilter {
                call_sid: (bits & 1 != 0).then(|| ca(1)),
                created_on_or_after_ms: (bits & 2 != 0).then_some(1),
                created_before_ms: (bits & 4 != 0).then_some(2),
                include_soft_deleted: bits & 8 != 0,
                ..Default::default()
            };
            let keyset = bits & 16 != 0;
            if keyset && f.created_before_ms.is_some() {
                continue; // `list` never asks for both upper bounds
            }
            let sql = format!(
                "EXPLAIN QUERY PLAN {}",
                list_sql(Dialect::Sqlite, &f, keyset)
            );
            let plan: Vec<String> = conn
                .prepare(&sql)
                .unwrap()
                .query_map(
                    rusqlite::params![
                        "AC",
                        ca(1).as_str(),
                        1,
                        2,
                        3,
                        "RE",
                        "completed",
                        "a",
                        "b",
                        51,
                        0
                    ],
                    |r| r.get::<_, String>(3),
                )
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join(" | ");
            let index = if f.call_sid.is_some() {
                "recordings_by_call"
            } else {
                "recordings_by_account"
            };
            assert!(plan.contains(index), "{f:?}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{f:?}: {plan}");
            if keyset {
                assert!(
                    plan.contains("(date_created,sid)<(?,?)"),
                    "keyset seeks, not filters: {plan}"
                );
            }
        }
    }

    #[test]
    fn retention_queries_pick_old_finished_visible_recordings_and_purge_old_deletions() {
        use RecordingSource::*;
        use RecordingStatus::*;
        let (_d, store) = store();
        let (old, old_bot, old_live, new) = (re(1), re(2), re(3), re(4));
        let mut recs = Vec::new();
        for (sid, call, created, status, source) in [
            (&old, ca(1), MAR1, Completed, RecordVerb),
            (&old_bot, ca(1), MAR1 + 1, Absent, RecordResponse),
            (&old_live, ca(1), MAR1 + 2, InProgress, RecordResponse),
            (&new, ca(2), MAR1 + DAY, Completed, RecordResponse),
        ] {
            let mut r = recording(sid.clone(), call, created);
            r.status = status;
            r.source = source;
            store.insert_recording(&r).unwrap();
            recs.push(r);
        }
        let sids = |v: Vec<RecordingRecord>| v.into_iter().map(|r| r.sid).collect::<Vec<_>>();
        assert_eq!(
            sids(store.recordings_created_before(MAR1 + DAY, 10).unwrap()),
            [old.clone(), old_bot.clone()],
            "in-progress and newer ones stay"
        );
        assert_eq!(
            sids(store.recordings_created_before(MAR1 + DAY, 1).unwrap()),
            std::slice::from_ref(&old)
        );
        assert_eq!(
            sids(
                store
                    .recordings_of_call(&ca(1), RecordingSource::RecordResponse)
                    .unwrap()
            ),
            [old_bot.clone(), old_live.clone()]
        );
        assert!(store.soft_delete_recording(&AC, &old, MAR1 + 5).unwrap());
        assert!(store
            .soft_delete_recording(&AC, &old_bot, MAR1 + 50)
            .unwrap());
        assert_eq!(
            sids(
                store
                    .recordings_of_call(&ca(1), RecordingSource::RecordResponse)
                    .unwrap()
            ),
            [old_live],
            "deleted ones are not the call's any more"
        );
        assert!(store
            .recordings_created_before(MAR1 + DAY, 10)
            .unwrap()
            .is_empty());
        assert_eq!(store.purge_deleted_recordings(MAR1 + 10).unwrap(), 1);
        assert_eq!(store.get_recording(&AC, &old, true).unwrap(), None);
        assert!(store.get_recording(&AC, &old_bot, true).unwrap().is_some());
        assert!(store.get_recording(&AC, &new, false).unwrap().is_some());
    }

    #[test]
    fn retention_queries_use_their_indexes_and_purge_in_batches() {
        let (_d, store) = store();
        // The plans are SQLite's; the batches are checked on every backend.
        if store.dialect() == Dialect::Sqlite {
            let conn = &store.sqlite_conn().conn;
            let plan = |sql: &str| -> String {
                conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .unwrap()
                    .query_map(rusqlite::params![1, 2], |r| r.get::<_, String>(3))
                    .unwrap()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap()
                    .join(" | ")
            };
            let aged = plan(&format!(
                "SELECT {COLUMNS} FROM recordings WHERE date_created < ?1 AND deleted_at IS NULL \
                 AND status <> 'in-progress' ORDER BY date_created LIMIT ?2"
            ));
            assert!(aged.contains("recordings_by_age"), "{aged}");
            assert!(!aged.contains("TEMP B-TREE"), "{aged}");
            let purge = plan(
                "SELECT rowid FROM recordings WHERE deleted_at IS NOT NULL AND deleted_at < ?1 \
                 LIMIT ?2",
            );
            assert!(purge.contains("recordings_deleted"), "{purge}");
        }

        let recs: Vec<RecordingRecord> = (0..2500)
            .map(|i| {
                let mut r = recording(re(i as u128), ca(1), MAR1 + i);
                r.status = RecordingStatus::Deleted;
                r.deleted_at_ms = Some(MAR1 + i);
                r
            })
            .collect();
        store.insert_recordings_bulk(&recs).unwrap();
        assert_eq!(store.purge_deleted_recordings(MAR1 + 2400).unwrap(), 2400);
        assert_eq!(store.purge_deleted_recordings(MAR1 + 2400).unwrap(), 0);
        assert!(store.get_recording(&AC, &re(2400), true).unwrap().is_some());
        assert!(store.get_recording(&AC, &re(2399), true).unwrap().is_none());
    }
}
