//! Utterances of transcriptions, what Hark said on a call, and the per-call transcript they
//! make together (SPEC §8).

use crate::db::{params, Db};
use crate::transcriptions::{exists, update};
use crate::{
    to_u32, AccountSid, CallEvent, CallSid, CallTranscript, Store, StoreError, TimedUtterance,
    TranscriptionRecord, TranscriptionSid, TranscriptionStatus, Utterance,
};

fn insert_utterances(
    db: &mut dyn Db,
    transcription_sid: &TranscriptionSid,
    utterances: &[Utterance],
) -> Result<(), StoreError> {
    if !exists(db, transcription_sid)? {
        return Err(StoreError::NotFound {
            what: "transcription",
            sid: transcription_sid.to_string(),
        });
    }
    db.execute(
        "replace utterances",
        "DELETE FROM utterances WHERE transcription_sid = ?1",
        params![transcription_sid],
    )?;
    for u in utterances {
        db.execute(
            "replace utterances",
            "INSERT INTO utterances (transcription_sid, ord, start_sec, duration_sec, speaker, text) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                transcription_sid,
                u.order,
                u.start_sec,
                u.duration_sec,
                u.speaker,
                u.text
            ],
        )?;
    }
    Ok(())
}

fn read_utterances(
    db: &mut dyn Db,
    transcription_sid: &TranscriptionSid,
) -> Result<Vec<Utterance>, StoreError> {
    db.query_map(
        "utterances",
        "SELECT ord, start_sec, duration_sec, speaker, text FROM utterances \
         WHERE transcription_sid = ?1 ORDER BY ord",
        params![transcription_sid],
        |r| {
            Ok(Utterance {
                order: to_u32("utterances.ord", r.get(0)?)?,
                start_sec: r.get(1)?,
                duration_sec: r.get(2)?,
                speaker: r.get(3)?,
                text: r.get(4)?,
            })
        },
    )
}

fn read_call_events(db: &mut dyn Db, call_sid: &CallSid) -> Result<Vec<CallEvent>, StoreError> {
    db.query_map(
        "call events",
        "SELECT call_sid, at_ms, speaker, text, duration_sec FROM call_events \
         WHERE call_sid = ?1 ORDER BY at_ms, id",
        params![call_sid],
        |r| {
            Ok(CallEvent {
                call_sid: r.get(0)?,
                at_ms: r.get(1)?,
                speaker: r.get(2)?,
                text: r.get(3)?,
                duration_sec: r.get(4)?,
            })
        },
    )
}

/// `(call_sid, account_sid, reference ms)` of a request id; the reference (answer time, else
/// creation) is `None` when the call row is missing (recordings may outlive it).
type Resolved = (CallSid, AccountSid, Option<i64>);

fn call_by(db: &mut dyn Db, sql: &str, id: &str) -> Result<Option<Resolved>, StoreError> {
    db.query_opt("resolve request id", sql, params![id])?
        .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .transpose()
}

/// A CallSid first, then a RecordingSid (not deleted), then a client-supplied request id (the
/// newest call carrying it), then a call known only by its recordings.
fn resolve(db: &mut dyn Db, id: &str) -> Result<Option<Resolved>, StoreError> {
    const CALL: &str =
        "SELECT sid, account_sid, COALESCE(start_time, date_created) FROM calls WHERE sid = ?1";
    // A typed NULL: PostgreSQL would otherwise return it as text.
    const NO_TIME: &str = "CAST(NULL AS BIGINT)";
    if let Some(found) = call_by(db, CALL, id)? {
        return Ok(Some(found));
    }
    let by_recording = call_by(
        db,
        &format!(
            "SELECT call_sid, account_sid, {NO_TIME} FROM recordings \
             WHERE sid = ?1 AND deleted_at IS NULL"
        ),
        id,
    )?;
    if let Some((call_sid, account_sid, _)) = by_recording {
        let reference = call_by(db, CALL, call_sid.as_str())?.and_then(|c| c.2);
        return Ok(Some((call_sid, account_sid, reference)));
    }
    if let Some(found) = call_by(
        db,
        "SELECT sid, account_sid, COALESCE(start_time, date_created) FROM calls \
         WHERE request_id = ?1 ORDER BY date_created DESC LIMIT 1",
        id,
    )? {
        return Ok(Some(found));
    }
    call_by(
        db,
        &format!(
            "SELECT call_sid, account_sid, {NO_TIME} FROM recordings \
             WHERE call_sid = ?1 AND deleted_at IS NULL LIMIT 1"
        ),
        id,
    )
}

/// `(transcription sid, status, recording start ms)` of every transcription of the call's
/// visible recordings.
fn call_transcriptions(
    db: &mut dyn Db,
    call_sid: &CallSid,
) -> Result<Vec<(TranscriptionSid, TranscriptionStatus, i64)>, StoreError> {
    db.query_map(
        "call transcriptions",
        "SELECT t.sid, t.status, r.start_time FROM recordings r \
         JOIN transcriptions t ON t.recording_sid = r.sid \
         WHERE r.call_sid = ?1 AND r.deleted_at IS NULL ORDER BY r.start_time, t.sid",
        params![call_sid],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// The caller's utterances and Hark's own, merged by absolute start time, relative to
/// `reference` (or the first of them), numbered from 1. Ties: Hark's line first.
fn merge(
    caller: Vec<(i64, Utterance)>,
    events: Vec<CallEvent>,
    reference: Option<i64>,
) -> Vec<TimedUtterance> {
    // (absolute start ms, rank, line): rank orders ties and keeps each source's own order.
    let mut lines: Vec<(f64, u8, TimedUtterance)> = Vec::with_capacity(caller.len() + events.len());
    for e in events {
        lines.push((
            e.at_ms as f64,
            0,
            TimedUtterance {
                order: 0,
                start_sec: 0.0,
                duration_sec: e.duration_sec,
                speaker: e.speaker,
                text: e.text,
            },
        ));
    }
    for (rec_start_ms, u) in caller {
        lines.push((
            rec_start_ms as f64 + u.start_sec * 1000.0,
            1,
            TimedUtterance {
                order: 0,
                start_sec: 0.0,
                duration_sec: u.duration_sec,
                speaker: u.speaker,
                text: u.text,
            },
        ));
    }
    // Stable: equal keys keep insertion order (events by time, utterances by recording, ord).
    lines.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let origin = reference
        .map(|r| r as f64)
        .or_else(|| lines.first().map(|l| l.0))
        .unwrap_or(0.0);
    lines
        .into_iter()
        .zip(1u32..)
        .map(|((at, _, mut line), order)| {
            line.order = order;
            line.start_sec = ((at - origin) / 1000.0).max(0.0);
            line
        })
        .collect()
}

impl Store {
    /// Replaces the utterances of a transcription, in one transaction. `order` must be unique
    /// within the slice. Unknown transcription → [`StoreError::NotFound`].
    pub fn replace_utterances(
        &self,
        transcription_sid: &TranscriptionSid,
        utterances: &[Utterance],
    ) -> Result<(), StoreError> {
        self.tx("replace utterances", |db| {
            insert_utterances(db, transcription_sid, utterances)
        })
    }

    /// Stores the finished transcription and its utterances together, so a `completed` row is
    /// never seen without its utterances.
    pub fn finish_transcription(
        &self,
        t: &TranscriptionRecord,
        utterances: &[Utterance],
    ) -> Result<(), StoreError> {
        self.tx("finish transcription", |db| {
            update(db, t)?;
            insert_utterances(db, &t.sid, utterances)
        })
    }

    /// The utterances of a transcription in order (empty if it has none or is unknown).
    pub fn utterances(
        &self,
        transcription_sid: &TranscriptionSid,
    ) -> Result<Vec<Utterance>, StoreError> {
        self.with_db(|db| read_utterances(db, transcription_sid))
    }

    /// Records something Hark said on a call (`<Say>`, speaker `system`).
    pub fn insert_call_event(&self, event: &CallEvent) -> Result<(), StoreError> {
        self.with_db(|db| {
            db.execute(
                "insert call event",
                "INSERT INTO call_events (call_sid, at_ms, speaker, text, duration_sec) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    event.call_sid,
                    event.at_ms,
                    event.speaker,
                    event.text,
                    event.duration_sec
                ],
            )
        })?;
        Ok(())
    }

    /// What Hark said on a call, by time.
    pub fn call_events(&self, call_sid: &CallSid) -> Result<Vec<CallEvent>, StoreError> {
        self.with_db(|db| read_call_events(db, call_sid))
    }

    /// The transcript of the call that `request_id` names (a CallSid, a RecordingSid or a
    /// client-supplied `X-Request-Id`), or `None` if it names none. Its `utterances` are `None`
    /// until every transcription of the call has finished and at least one completed.
    /// Failed transcriptions contribute nothing.
    pub fn call_transcript_of(
        &self,
        request_id: &str,
    ) -> Result<Option<CallTranscript>, StoreError> {
        // One read transaction: a consistent snapshot across the queries.
        self.read_tx("call transcript", |db| {
            let Some((call_sid, account_sid, reference)) = resolve(db, request_id)? else {
                return Ok(None);
            };
            let jobs = call_transcriptions(db, &call_sid)?;
            let pending = jobs.iter().any(|(_, s, _)| {
                matches!(
                    s,
                    TranscriptionStatus::Queued | TranscriptionStatus::InProgress
                )
            });
            let completed: Vec<_> = jobs
                .into_iter()
                .filter(|(_, s, _)| *s == TranscriptionStatus::Completed)
                .collect();
            if pending || completed.is_empty() {
                return Ok(Some(CallTranscript {
                    call_sid,
                    account_sid,
                    utterances: None,
                }));
            }
            let mut caller = Vec::new();
            for (sid, _, rec_start_ms) in &completed {
                for u in read_utterances(db, sid)? {
                    caller.push((*rec_start_ms, u));
                }
            }
            let events = read_call_events(db, &call_sid)?;
            // Without a call row, the first recording's start is the origin.
            let reference = reference.or_else(|| completed.iter().map(|c| c.2).min());
            let utterances = merge(caller, events, reference);
            Ok(Some(CallTranscript {
                call_sid,
                account_sid,
                utterances: Some(utterances),
            }))
        })
    }

    /// [`Store::call_transcript_of`]'s utterances: `None` if the id is unknown or the
    /// transcript is not ready.
    pub fn call_transcript(
        &self,
        request_id: &str,
    ) -> Result<Option<Vec<TimedUtterance>>, StoreError> {
        Ok(self
            .call_transcript_of(request_id)?
            .and_then(|t| t.utterances))
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use crate::{
        CallEvent, CallSid, RecordingSid, StoreError, TimedUtterance, TranscriptionSid,
        TranscriptionStatus, Utterance,
    };

    const T0: i64 = 1_700_000_000_000;

    fn say(call_sid: CallSid, at_ms: i64, text: &str, duration_sec: f64) -> CallEvent {
        CallEvent {
            call_sid,
            at_ms,
            speaker: "system".into(),
            text: text.into(),
            duration_sec,
        }
    }

    fn completed(
        store: &crate::Store,
        sid: TranscriptionSid,
        re: RecordingSid,
        utterances: &[Utterance],
    ) {
        let mut t = transcription(sid, re, T0);
        store.insert_transcription(&t).unwrap();
        t.status = TranscriptionStatus::Completed;
        t.text = Some(
            utterances
                .iter()
                .map(|u| u.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        );
        store.finish_transcription(&t, utterances).unwrap();
    }

    fn line(
        order: u32,
        start_sec: f64,
        duration_sec: f64,
        speaker: &str,
        text: &str,
    ) -> TimedUtterance {
        TimedUtterance {
            order,
            start_sec,
            duration_sec,
            speaker: speaker.into(),
            text: text.into(),
        }
    }

    /// CA1 answered at T0+500 with two recordings, two `<Say>`s, request id `req-1`.
    fn two_recordings() -> (tempfile::TempDir, crate::Store) {
        let (d, store) = store();
        let mut c = call(ca(1), T0);
        c.start_time_ms = Some(T0 + 500);
        store
            .insert_call_with_request_id(&c, Some("req-1"))
            .unwrap();
        let mut re1 = recording(re(1), ca(1), T0 + 2_000);
        re1.start_time_ms = T0 + 2_000;
        let mut re2 = recording(re(2), ca(1), T0 + 10_000);
        re2.start_time_ms = T0 + 10_000;
        store.insert_recording(&re1).unwrap();
        store.insert_recording(&re2).unwrap();
        store
            .insert_call_event(&say(ca(1), T0 + 9_000, "Thanks", 0.8))
            .unwrap();
        store
            .insert_call_event(&say(ca(1), T0 + 600, "Welcome", 1.4))
            .unwrap();
        (d, store)
    }

    #[test]
    fn call_transcript_merges_caller_and_system_by_time_relative_to_answer() {
        let (_d, store) = two_recordings();
        completed(
            &store,
            tr(1),
            re(1),
            &[
                utterance(1, 0.4, "hello"),
                utterance(2, 3.0, "my number is"),
            ],
        );
        completed(&store, tr(2), re(2), &[utterance(1, 0.25, "bye")]);
        let want = vec![
            line(1, 0.1, 1.4, "system", "Welcome"),
            line(2, 1.9, 1.5, "caller", "hello"),
            line(3, 4.5, 1.5, "caller", "my number is"),
            line(4, 8.5, 0.8, "system", "Thanks"),
            line(5, 9.75, 1.5, "caller", "bye"),
        ];
        for id in [ca(1).as_str(), re(1).as_str(), re(2).as_str(), "req-1"] {
            assert_eq!(
                store.call_transcript(id).unwrap(),
                Some(want.clone()),
                "{id}"
            );
        }
        let of = store.call_transcript_of("req-1").unwrap().unwrap();
        assert_eq!((of.call_sid, of.account_sid), (ca(1), AC.clone()));
        assert_eq!(store.call_transcript(ca(9).as_str()).unwrap(), None);
        assert_eq!(store.call_transcript_of("nope").unwrap(), None);
    }

    #[test]
    fn call_transcript_is_not_ready_while_any_transcription_is_pending_or_none_completed() {
        let (_d, store) = two_recordings();
        store
            .insert_transcription(&transcription(tr(1), re(1), T0))
            .unwrap();
        // Known call, nothing finished: resolved but not ready.
        let of = store.call_transcript_of(ca(1).as_str()).unwrap().unwrap();
        assert_eq!(of.utterances, None);
        assert_eq!(store.call_transcript(ca(1).as_str()).unwrap(), None);
        assert!(store.start_transcription(&tr(1), T0 + 1).unwrap());
        assert_eq!(
            store.call_transcript(ca(1).as_str()).unwrap(),
            None,
            "in progress"
        );

        let mut failed = transcription(tr(1), re(1), T0);
        failed.status = TranscriptionStatus::Failed;
        store.update_transcription(&failed).unwrap();
        assert_eq!(
            store.call_transcript(ca(1).as_str()).unwrap(),
            None,
            "only failed"
        );

        completed(&store, tr(2), re(2), &[utterance(1, 0.0, "bye")]);
        let got = store.call_transcript(ca(1).as_str()).unwrap().unwrap();
        assert_eq!(
            got.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            ["Welcome", "Thanks", "bye"],
            "failed transcriptions add nothing"
        );
        assert_eq!(got[2].start_sec, 9.5);

        store
            .insert_transcription(&transcription(tr(3), re(2), T0 + 1))
            .unwrap();
        assert_eq!(
            store.call_transcript(ca(1).as_str()).unwrap(),
            None,
            "re-queued"
        );
    }

    #[test]
    fn deleted_recording_is_no_request_id_and_adds_nothing() {
        let (_d, store) = two_recordings();
        completed(&store, tr(1), re(1), &[utterance(1, 0.4, "hello")]);
        completed(&store, tr(2), re(2), &[utterance(1, 0.25, "bye")]);
        assert!(store
            .soft_delete_recording(&AC, &re(2), T0 + 20_000)
            .unwrap());
        assert_eq!(store.call_transcript(re(2).as_str()).unwrap(), None);
        let got = store.call_transcript(ca(1).as_str()).unwrap().unwrap();
        assert_eq!(
            got.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            ["Welcome", "hello", "Thanks"]
        );
    }

    #[test]
    fn without_a_call_row_times_start_at_the_first_recording() {
        let (_d, store) = store();
        let mut rec = recording(re(5), ca(5), T0);
        rec.start_time_ms = T0 + 3_000;
        store.insert_recording(&rec).unwrap();
        completed(&store, tr(5), re(5), &[utterance(1, 1.2, "only me")]);
        let want = Some(vec![line(1, 1.2, 1.5, "caller", "only me")]);
        assert_eq!(store.call_transcript(ca(5).as_str()).unwrap(), want);
        assert_eq!(store.call_transcript(re(5).as_str()).unwrap(), want);
    }

    #[test]
    fn speech_before_the_reference_is_clamped_to_zero_and_ties_put_hark_first() {
        let (_d, store) = store();
        let mut c = call(ca(1), T0);
        c.start_time_ms = Some(T0 + 1_000);
        store.insert_call(&c).unwrap();
        let mut rec = recording(re(1), ca(1), T0);
        rec.start_time_ms = T0; // early media, before the answer
        store.insert_recording(&rec).unwrap();
        store
            .insert_call_event(&say(ca(1), T0 + 2_000, "beep", 0.5))
            .unwrap();
        completed(
            &store,
            tr(1),
            re(1),
            &[utterance(1, 0.0, "early"), utterance(2, 2.0, "same time")],
        );
        let got = store.call_transcript(ca(1).as_str()).unwrap().unwrap();
        assert_eq!(
            got,
            vec![
                line(1, 0.0, 1.5, "caller", "early"),
                line(2, 1.0, 0.5, "system", "beep"),
                line(3, 1.0, 1.5, "caller", "same time"),
            ]
        );
    }

    #[test]
    fn replace_utterances_replaces_all_and_is_all_or_nothing() {
        let (_d, store) = store();
        store.insert_recording(&recording(re(1), ca(1), 1)).unwrap();
        store
            .insert_transcription(&transcription(tr(1), re(1), 1))
            .unwrap();
        let first = [utterance(1, 0.0, "a"), utterance(2, 1.0, "b")];
        store.replace_utterances(&tr(1), &first).unwrap();
        assert_eq!(store.utterances(&tr(1)).unwrap(), first);
        // Duplicate order: refused, the previous utterances stay.
        let bad = [utterance(1, 0.0, "x"), utterance(1, 1.0, "y")];
        assert!(store.replace_utterances(&tr(1), &bad).is_err());
        assert_eq!(store.utterances(&tr(1)).unwrap(), first);
        let second = [utterance(1, 0.5, "c")];
        store.replace_utterances(&tr(1), &second).unwrap();
        assert_eq!(store.utterances(&tr(1)).unwrap(), second);
        let err = store.replace_utterances(&tr(9), &second).unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound { what: "transcription", ref sid } if sid == tr(9).as_str()),
            "{err:?}"
        );
    }

    #[test]
    fn finish_transcription_of_a_deleted_job_stores_nothing() {
        let (_d, store) = store();
        store.insert_recording(&recording(re(1), ca(1), 1)).unwrap();
        let mut t = transcription(tr(1), re(1), 1);
        t.status = TranscriptionStatus::Completed;
        let err = store
            .finish_transcription(&t, &[utterance(1, 0.0, "a")])
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
        assert!(store.utterances(&tr(1)).unwrap().is_empty());
    }

    #[test]
    fn call_events_come_back_in_time_order_per_call() {
        let (_d, store) = store();
        store
            .insert_call_event(&say(ca(1), 20, "second", 1.0))
            .unwrap();
        store
            .insert_call_event(&say(ca(1), 10, "first", 2.0))
            .unwrap();
        store
            .insert_call_event(&say(ca(2), 5, "other", 1.0))
            .unwrap();
        assert_eq!(
            store.call_events(&ca(1)).unwrap(),
            [say(ca(1), 10, "first", 2.0), say(ca(1), 20, "second", 1.0)]
        );
        assert!(store.call_events(&ca(3)).unwrap().is_empty());
    }
}
