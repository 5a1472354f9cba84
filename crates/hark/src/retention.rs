//! Retention (SPEC §9): recordings older than `storage.retention_days` are deleted the way
//! `DELETE …/Recordings/{Sid}.json` deletes them (media, MP3, transcripts; metadata marked
//! deleted), and the metadata of deleted recordings is purged after 40 days, as Twilio does.
//! Bots' recordings may also go when their call ends (`bot.recording_retention = "call"`).

use std::sync::Arc;
use std::time::Duration;

use crate::outbox::now_ms;
use crate::services::Services;

/// How often the sweep runs (also once at start).
const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// Twilio keeps a deleted recording's metadata (status `deleted`) this long.
pub const KEEP_DELETED_METADATA: Duration = Duration::from_secs(40 * 86_400);
/// Recordings deleted per batch; a sweep stops after `MAX_BATCHES` and resumes next time.
const BATCH: u32 = 200;
const MAX_BATCHES: usize = 500;
/// How long after its call ends a bot's recording is deleted with
/// `bot.recording_retention = "call"`.
pub const BOT_DISCARD_GRACE: Duration = Duration::from_secs(10);

/// Sweeps now and every [`SWEEP_EVERY`], until the process ends. Nodes sharing a database
/// take turns: the sweep runs where the `retention` lease is (kept by renewing it each pass;
/// another node takes it over when the holder stops).
pub async fn run(shared: Arc<Services>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    let lease_ms = 2 * SWEEP_EVERY.as_millis() as i64;
    loop {
        tick.tick().await;
        let ours = shared
            .db(move |s| s.claim_job("retention", now_ms(), lease_ms))
            .await
            .unwrap_or(false);
        if ours {
            sweep(&shared, now_ms()).await;
        }
    }
}

/// One pass at `now_ms`: returns (recordings deleted, deleted rows purged).
pub async fn sweep(shared: &Services, now_ms: i64) -> (usize, usize) {
    let mut deleted = 0;
    if let Some(keep) = shared.config.retention {
        let before = now_ms - keep.as_millis() as i64;
        for _ in 0..MAX_BATCHES {
            let Some(batch) = shared
                .db(move |s| s.recordings_created_before(before, BATCH))
                .await
            else {
                break;
            };
            let mut progressed = false;
            for rec in &batch {
                match shared.recording_deleter.delete(rec).await {
                    Ok(true) => {
                        deleted += 1;
                        progressed = true;
                    }
                    Ok(false) => progressed = true,
                    Err(e) => {
                        tracing::error!(recording = %rec.sid, error = %e.message, "retention: deleting failed")
                    }
                }
            }
            if batch.len() < BATCH as usize || !progressed {
                break;
            }
        }
    }
    let purge_before = now_ms - KEEP_DELETED_METADATA.as_millis() as i64;
    let purged = shared
        .db(move |s| s.purge_deleted_recordings(purge_before))
        .await
        .unwrap_or(0);
    if deleted > 0 || purged > 0 {
        tracing::info!(
            deleted,
            purged,
            "retention: recordings deleted, old deletions purged"
        );
    }
    (deleted, purged)
}

/// Deletes the bot recordings (`recordResponse`) of a call that ended, `grace` later.
/// After a bot call ends: with `bot.recording_retention = "call"`, its recordings go after a
/// grace period (the completion of an operation cut by the hangup, 8528, still hands the bot a
/// recordingLocation, and its notification may be on its way).
pub fn after_bot_call(shared: &Arc<Services>, call_sid: &store::CallSid) {
    if shared.config.bot_recording_retention == crate::config::BotRecordingRetention::Call {
        tokio::spawn(discard_bot_recordings_after(
            BOT_DISCARD_GRACE,
            shared.clone(),
            call_sid.clone(),
        ));
    }
}

pub async fn discard_bot_recordings_after(
    grace: Duration,
    shared: Arc<Services>,
    call_sid: store::CallSid,
) {
    tokio::time::sleep(grace).await;
    let sid = call_sid.clone();
    let Some(recs) = shared
        .db(move |s| s.recordings_of_call(&sid, store::RecordingSource::RecordResponse))
        .await
    else {
        return;
    };
    for rec in recs {
        match shared.recording_deleter.delete(&rec).await {
            Ok(_) => tracing::info!(recording = %rec.sid, "bot recording discarded with its call"),
            Err(e) => {
                tracing::error!(recording = %rec.sid, error = %e.message, "discarding a bot recording failed")
            }
        }
    }
}
