//! Recordings on disk: `{dir}/{RecordingSid}.wav` and a JSON sidecar `{RecordingSid}.json` that
//! carries what crash recovery needs (status, callback subscription, whether it was delivered).

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusCallback {
    pub url: String,
    /// `GET` or `POST`.
    pub method: String,
    pub in_progress: bool,
    pub completed: bool,
    pub absent: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordingMeta {
    pub sid: String,
    pub account_sid: String,
    pub call_sid: String,
    /// `in-progress`, `completed` or `absent`.
    pub status: String,
    pub start_time: String,
    pub date_created: String,
    pub duration: Option<u32>,
    pub error_code: Option<u32>,
    pub source: String,
    pub channels: u32,
    pub status_callback: Option<StatusCallback>,
    /// The final (`completed`/`absent`) status callback was delivered, or none was due.
    pub final_callback_done: bool,
    pub transcribe: bool,
    pub transcribe_callback: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RecordingStore {
    dir: PathBuf,
}

impl RecordingStore {
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub fn wav_path(&self, sid: &str) -> PathBuf {
        self.dir.join(format!("{sid}.wav"))
    }

    fn meta_path(&self, sid: &str) -> PathBuf {
        self.dir.join(format!("{sid}.json"))
    }

    /// Atomic: write a temporary file, then rename over the old sidecar.
    pub fn write_meta(&self, meta: &RecordingMeta) -> io::Result<()> {
        let tmp = self.dir.join(format!("{}.json.tmp", meta.sid));
        let body = serde_json::to_vec_pretty(meta).map_err(io::Error::other)?;
        std::fs::write(&tmp, body)?;
        std::fs::rename(&tmp, self.meta_path(&meta.sid))
    }

    pub fn read_meta(&self, sid: &str) -> io::Result<Option<RecordingMeta>> {
        match std::fs::read(self.meta_path(sid)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every sidecar in the directory (unreadable ones are logged and skipped).
    pub fn all_meta(&self) -> Vec<RecordingMeta> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match std::fs::read(&path).map(|b| serde_json::from_slice::<RecordingMeta>(&b)) {
                Ok(Ok(meta)) => out.push(meta),
                Ok(Err(e)) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable recording sidecar")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read recording sidecar")
                }
            }
        }
        out
    }
}
