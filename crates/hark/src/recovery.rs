//! Start-up recovery (SPEC §9): recordings left `in-progress` by a crash get their WAV header
//! repaired and become `completed` (or `absent` when empty), and the final status callback that
//! was due is queued once. Callbacks queued before the crash are still in the outbox.

use record_engine::{repair_wav_file, RepairOutcome};

use crate::call::Shared;
use crate::outbox::now_ms;
use crate::record::{method_of, status_params};

pub async fn recover(shared: &Shared) {
    let Some(left_open) = shared.db(|s| s.recordings_in_progress()).await else {
        return;
    };
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
        row.duration_secs = Some(((samples + 4000) / 8000) as u32);
        row.date_updated_ms = now_ms();
        let absent = samples == 0;
        if absent {
            row.status = "absent".into();
            row.error_code = Some(16102);
        } else {
            row.status = "completed".into();
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
        let Some(cb) = row.status_callback.clone() else {
            continue;
        };
        if (absent && cb.absent) || (!absent && cb.completed) {
            let url = format!(
                "{}/2010-04-01/Accounts/{}/Recordings/{}",
                shared.config.http_public_url, row.account_sid, row.sid
            );
            let params = status_params(&row, &row.status, &url);
            shared
                .outbox
                .enqueue(&row.sid, &cb.url, method_of(&cb.method), params)
                .await;
        }
    }
}
