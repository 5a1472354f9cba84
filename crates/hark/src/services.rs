//! The handles a call and the daemon's background work (transcription, retention, recovery)
//! share: configuration, the database, the callback outbox, recording files, metrics. Nothing
//! here knows about calls, so none of those modules imports another.

use std::sync::Arc;

use call_core::Persist;

use crate::config::Config;
use crate::outbox::Outbox;
use crate::storage::RecordingFiles;

pub struct Services {
    pub config: Config,
    /// Metadata: calls, recordings, transcriptions, the outbox.
    pub store: Arc<store::Store>,
    /// Signed, retried, ordered webhooks.
    pub outbox: Outbox,
    /// Recording files.
    pub files: RecordingFiles,
    pub metrics: Arc<http_api::Metrics>,
    /// Deletes recordings as the REST API does (retention, bot recordings).
    pub recording_deleter: http_api::RecordingDeleter,
    /// `storage.backend = "s3"`: copies finished recordings to the bucket.
    pub uploader: Option<Arc<crate::uploads::Uploader>>,
}

impl Services {
    /// A recording's WAV is complete: with the S3 backend, upload it now (queued on failure).
    pub(crate) async fn recording_written(&self, sid: &store::RecordingSid) {
        if let Some(uploader) = &self.uploader {
            uploader
                .finished(self, &RecordingFiles::wav_name(sid.as_str()))
                .await;
        }
    }

    /// Runs a store operation on a blocking thread; failures are logged and counted, never
    /// fatal to the caller (for a call, the audio on disk is what matters).
    pub(crate) async fn db<T, F>(&self, op: F) -> Option<T>
    where
        F: FnOnce(&store::Store) -> Result<T, store::StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || op(&store)).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                http_api::Metrics::add(&self.metrics.db_errors, 1);
                tracing::error!(error = %e, "database");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "database task failed");
                None
            }
        }
    }

    /// Writes what a call asks to be written, in order; a failure is logged and counted. The
    /// transcription queue is the call's (it also wakes the workers).
    pub(crate) async fn persist(&self, persist: Persist) {
        match persist {
            Persist::InsertCall { row, request_id } => {
                self.db(move |s| s.insert_call_with_request_id(&row, request_id.as_deref()))
                    .await;
            }
            Persist::UpdateCall(row) => {
                self.db(move |s| s.update_call(&row)).await;
            }
            Persist::InsertRecording(row) => {
                let sid = row.sid.clone();
                if self.db(move |s| s.insert_recording(&row)).await.is_none() {
                    tracing::error!(recording = %sid, "recording not in the database; recording anyway");
                }
            }
            Persist::UpdateRecording(row) => {
                self.db(move |s| s.update_recording(&row)).await;
            }
            Persist::InsertCallEvent(event) => {
                self.db(move |s| s.insert_call_event(&event)).await;
            }
            Persist::QueueTranscription(job) => {
                // Callers route these to the transcriber; never reached.
                tracing::error!(transcription = %job.sid, "transcription job not queued");
            }
        }
    }
}
