//! Start-up recovery (SPEC §9): recordings left `in-progress` by a crash get their WAV header
//! repaired and become `completed` (or `absent` when empty); final status callbacks that were due
//! and never delivered are sent, once.

use record_engine::{repair_wav_file, RepairOutcome};

use crate::record::{method_of, status_params};
use crate::storage::RecordingStore;
use crate::webhook::Webhooks;

pub async fn recover(store: &RecordingStore, webhooks: &Webhooks, public_url: &str) {
    let store_for_scan = store.clone();
    let Ok(metas) = tokio::task::spawn_blocking(move || store_for_scan.all_meta()).await else {
        return;
    };
    for mut meta in metas {
        if meta.status == "in-progress" {
            let path = store.wav_path(&meta.sid);
            let samples = match repair_wav_file(&path) {
                Ok(RepairOutcome::Intact { samples }) | Ok(RepairOutcome::Repaired { samples }) => {
                    samples
                }
                Err(e) => {
                    tracing::error!(recording = %meta.sid, path = %path.display(), error = %e, "cannot repair recording");
                    continue;
                }
            };
            let duration = ((samples + 4000) / 8000) as u32;
            meta.duration = Some(duration);
            if samples == 0 {
                meta.status = "absent".into();
                meta.error_code = Some(16102);
            } else {
                meta.status = "completed".into();
            }
            let due = meta.status_callback.as_ref().is_some_and(|cb| {
                if samples == 0 {
                    cb.absent
                } else {
                    cb.completed
                }
            });
            meta.final_callback_done = !due;
            if let Err(e) = store.write_meta(&meta) {
                tracing::error!(recording = %meta.sid, error = %e, "cannot write recovered sidecar");
                continue;
            }
            tracing::warn!(recording = %meta.sid, samples, status = %meta.status, "recovered a recording left open by a crash");
        }
        if meta.final_callback_done {
            continue;
        }
        let Some(cb) = meta.status_callback.clone() else {
            continue;
        };
        let url = format!(
            "{public_url}/2010-04-01/Accounts/{}/Recordings/{}",
            meta.account_sid, meta.sid
        );
        let params = status_params(&meta, &meta.status, &url);
        let store = store.clone();
        let mut done_meta = meta.clone();
        webhooks.spawn_callback(
            cb.url.clone(),
            method_of(&cb.method),
            params,
            move |delivered| {
                if delivered {
                    done_meta.final_callback_done = true;
                    let _ = store.write_meta(&done_meta);
                }
            },
        );
    }
}
