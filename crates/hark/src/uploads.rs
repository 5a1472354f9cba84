//! `storage.backend = "s3"`: finished recordings go to the bucket. A recording is written to
//! `{storage.dir}` while the call runs (crash-safe, as with the local backend); when it ends its
//! upload is queued in the database, tried at once (before the `<Record>` action request, so
//! `RecordingUrl` works then, from any node), and the local file is removed only after the
//! bucket's copy was checked. A failed upload stays queued and is retried with backoff, forever:
//! audio is never dropped for want of a bucket. Uploads belong to the node whose disk holds the
//! file; a node that restarts picks its queue up again, and [`Uploader::sweep`] queues any
//! finished recording left on its disk (a crash between the end of a call and the queueing).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use media_store::{ObjectStorage, StorageError};
use tokio::sync::{watch, Notify};

use crate::outbox::now_ms;
use crate::services::Services;

/// The longest wait between two attempts at one upload.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often the queue is looked at when nothing wakes the worker.
const POLL: Duration = Duration::from_secs(5);
const BATCH: u32 = 16;

pub struct Uploader {
    storage: ObjectStorage,
    node: String,
    wake: Notify,
}

/// Seconds to wait after `attempts` failures: 1, 2, 4, … up to [`MAX_BACKOFF`].
pub(crate) fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(16)).min(MAX_BACKOFF)
}

impl Uploader {
    pub fn new(storage: ObjectStorage, node: String) -> Self {
        Self {
            storage,
            node,
            wake: Notify::new(),
        }
    }

    pub fn storage(&self) -> &ObjectStorage {
        &self.storage
    }

    /// A recording's WAV (`media_file`) is complete on disk: queue its upload and try it now.
    /// Returns whether the bucket holds it.
    pub async fn finished(&self, services: &Services, media_file: &str) -> bool {
        let (key, node) = (media_file.to_owned(), self.node.clone());
        let queued = services
            .db(move |s| s.queue_upload(&key, &node, now_ms()))
            .await
            .is_some();
        if !queued {
            // Without the queue row a failure here would be forgotten; the start-up sweep
            // still finds the file, so try anyway.
            tracing::warn!(
                key = media_file,
                "upload not queued in the database; uploading anyway"
            );
        }
        self.attempt(services, media_file, 0).await
    }

    async fn attempt(&self, services: &Services, key: &str, attempts: u32) -> bool {
        let path = services.files.path_of(key);
        let started = std::time::Instant::now();
        let result = self.storage.upload_file(key, &path).await;
        let key_owned = key.to_owned();
        match result {
            Ok(uploaded) => {
                if let Err(e) = tokio::fs::remove_file(&path).await {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(key, error = %e, "uploaded recording kept on disk: cannot remove it");
                    }
                }
                services
                    .db(move |s| s.upload_done(&key_owned, now_ms()))
                    .await;
                http_api::Metrics::add(&services.metrics.uploads, 1);
                tracing::info!(
                    key,
                    bytes = uploaded.size,
                    ms = started.elapsed().as_millis() as u64,
                    "recording uploaded"
                );
                true
            }
            Err(StorageError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                // Nothing on disk: uploaded and removed before (its row was not updated), or
                // never written. The bucket says which.
                let done = matches!(self.storage.size(key).await, Ok(Some(_)));
                if done {
                    services
                        .db(move |s| s.upload_done(&key_owned, now_ms()))
                        .await;
                } else {
                    let error = "the recording's file is not on this node's disk".to_owned();
                    tracing::error!(key, "upload: {error}; giving up");
                    services
                        .db(move |s| s.upload_lost(&key_owned, now_ms(), &error))
                        .await;
                }
                done
            }
            Err(e) => {
                let wait = backoff(attempts);
                let error = e.to_string();
                tracing::warn!(key, attempts = attempts + 1, retry_in_s = wait.as_secs(), error = %error, "recording upload failed; queued");
                http_api::Metrics::add(&services.metrics.upload_failures, 1);
                let next = now_ms() + wait.as_millis() as i64;
                services
                    .db(move |s| s.upload_failed(&key_owned, next, &error))
                    .await;
                false
            }
        }
    }

    /// Retries the queue until `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        services: Arc<Services>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let node = self.node.clone();
            let due = services
                .db(move |s| s.uploads_due(&node, now_ms(), BATCH))
                .await
                .unwrap_or_default();
            for item in &due {
                if *shutdown.borrow() {
                    return;
                }
                self.attempt(&services, &item.key, item.attempts).await;
            }
            if due.len() as u32 == BATCH {
                continue;
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// At start-up: finished recordings whose WAV is still on this node's disk and whose upload
    /// is not queued (a crash between a call's end and its queueing, or a node that ran with
    /// the local backend before). Returns how many were queued.
    pub async fn sweep(&self, services: &Services) -> usize {
        let dir = services.files.dir().to_path_buf();
        let names = tokio::task::spawn_blocking(move || local_wavs(&dir))
            .await
            .unwrap_or_default();
        let mut queued = 0;
        for name in names {
            let Some(sid) = name
                .strip_suffix(".wav")
                .and_then(|s| s.parse::<store::RecordingSid>().ok())
            else {
                continue;
            };
            let (key, node) = (name.clone(), self.node.clone());
            let newly = services
                .db(move |s| {
                    let Some(rec) = s.recording_by_sid(&sid)? else {
                        return Ok(false);
                    };
                    if rec.status.is_unfinished() || rec.media_file != key {
                        return Ok(false);
                    }
                    s.queue_upload_if_absent(&key, &node, now_ms())
                })
                .await
                .unwrap_or(false);
            if newly {
                queued += 1;
            }
        }
        if queued > 0 {
            tracing::info!(queued, "finished recordings on disk queued for upload");
            self.wake.notify_one();
        }
        queued
    }
}

/// `RE….wav` files directly in `dir` (not MP3s, not temporary downloads).
fn local_wavs(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            n.starts_with("RE") && n.ends_with(".wav") && !n.ends_with(media_store::FETCHED_SUFFIX)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(8), Duration::from_secs(256));
        assert_eq!(backoff(9), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn only_recording_wavs_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "RE0123456789abcdef0123456789abcdef.wav",
            "RE0123456789abcdef0123456789abcdef.mp3",
            "RE0123456789abcdef0123456789abcde0.7-1.fetched.wav",
            "hark.db",
            "notes.wav",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(
            local_wavs(dir.path()),
            vec!["RE0123456789abcdef0123456789abcdef.wav".to_owned()]
        );
    }
}
