//! Start-up recovery (SPEC §9): recordings left `in-progress` by a crash get their WAV header
//! repaired and become `completed` (or `absent` when empty), and the final status callback that
//! was due is queued once. Callbacks queued before the crash are still in the outbox. Calls the
//! crash cut off are ended (SPEC §9: "a crash mid-call ends the call").

use std::collections::HashMap;

use record_engine::{repair_wav_file, RepairOutcome};

use crate::outbox::now_ms;
use crate::services::Services;
use call_core::params::status_params;
use store::{CallSid, CallStatus, RecordingStatus};

pub async fn recover(shared: &Services) {
    let mut call_ends: HashMap<CallSid, i64> = HashMap::new();
    let left_open = shared
        .db(|s| s.recordings_in_progress())
        .await
        .unwrap_or_default();
    for mut row in left_open {
        let path = shared.files.path_of(&row.media_file);
        let samples = match repair_wav_file(&path) {
            Ok(RepairOutcome::Intact { samples }) | Ok(RepairOutcome::Repaired { samples }) => {
                samples
            }
            Err(e) => {
                tracing::error!(recording = %row.sid, path = %path.display(), error = %e, "cannot repair a recording left open; marking it absent");
                0
            }
        };
        // 16 kHz for an Opus caller's recording: the header says.
        let rate = std::fs::File::open(&path)
            .ok()
            .and_then(|mut f| record_engine::wav::read_header(&mut f).ok())
            .map_or(8000, |h| u64::from(h.sample_rate));
        row.duration_secs = Some(((samples + rate / 2) / rate) as u32);
        let end = row.start_time_ms + (samples * 1000 / rate) as i64;
        let known = call_ends.entry(row.call_sid.clone()).or_insert(end);
        *known = (*known).max(end);
        row.date_updated_ms = now_ms();
        let absent = samples == 0;
        if absent {
            row.status = RecordingStatus::Absent;
            row.error_code = Some(16102);
        } else {
            row.status = RecordingStatus::Completed;
        }
        let updated = row.clone();
        if shared
            .db(move |s| s.update_recording(&updated))
            .await
            .is_none()
        {
            continue;
        }
        tracing::warn!(recording = %row.sid, samples, status = %row.status, "recovered a recording left open by a crash");
        if row.transcribe && !absent {
            // The call that asked for it is gone; its transcript is still due (in the
            // configured language: the verb's transcribeLanguage was not stored).
            queue_transcription(shared, &row).await;
        }
        let Some(cb) = row.status_callback.clone() else {
            continue;
        };
        if (absent && cb.absent) || (!absent && cb.completed) {
            let url = format!(
                "{}/2010-04-01/Accounts/{}/Recordings/{}",
                shared.config.http_public_url, row.account_sid, row.sid
            );
            let params = status_params(&row, row.status, &url);
            shared
                .outbox
                .enqueue(row.sid.as_str(), &cb.url, cb.method, params)
                .await;
        }
    }
    end_open_calls(shared, &call_ends).await;
}

async fn queue_transcription(shared: &Services, row: &store::RecordingRecord) {
    let now = now_ms();
    let job = store::TranscriptionRecord {
        sid: store::TranscriptionSid::new_random(),
        account_sid: row.account_sid.clone(),
        recording_sid: row.sid.clone(),
        call_sid: row.call_sid.clone(),
        status: store::TranscriptionStatus::Queued,
        text: None,
        language: Some(shared.config.transcription.language.clone()),
        engine: None,
        error: None,
        audio_secs: None,
        processing_secs: None,
        duration_secs: row.duration_secs,
        kind: store::TranscriptionRecord::FAST.into(),
        transcribe_callback: row.transcribe_callback.clone(),
        date_created_ms: now,
        date_updated_ms: now,
    };
    let sid = job.sid.clone();
    if shared
        .db(move |s| s.insert_transcription(&job))
        .await
        .is_some()
    {
        tracing::info!(recording = %row.sid, transcription = %sid, "transcription of a recovered recording queued");
    }
}

/// Ends the calls that were up when the daemon died: answered ones as `completed` at the last
/// moment we know they were alive (the end of their recorded audio, else their last update),
/// unanswered ones as `failed`.
async fn end_open_calls(shared: &Services, call_ends: &HashMap<CallSid, i64>) {
    let open = shared.db(|s| s.open_calls()).await.unwrap_or_default();
    for mut call in open {
        let last_alive = call_ends
            .get(&call.sid)
            .copied()
            .unwrap_or(call.date_updated_ms)
            .max(call.date_updated_ms);
        call.status = if call.start_time_ms.is_some() {
            CallStatus::Completed
        } else {
            CallStatus::Failed
        };
        call.end_time_ms = Some(last_alive);
        call.duration_secs = Some(
            call.start_time_ms
                .map(|start| ((last_alive - start).max(0) / 1000) as u32)
                .unwrap_or(0),
        );
        call.date_updated_ms = now_ms();
        tracing::warn!(call = %call.sid, status = %call.status, "ended a call left open by a crash");
        shared.db(move |s| s.update_call(&call)).await;
    }
}
