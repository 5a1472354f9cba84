use std::path::PathBuf;
use std::time::Duration;

/// Why a transcription failed. The daemon marks the transcription `failed` and logs this; the
/// recording itself is never touched.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("language {language}: {reason}")]
    UnsupportedLanguage { language: String, reason: String },

    #[error("language {language:?} is not a BCP-47 tag")]
    InvalidLanguage { language: String },

    #[error("{engine}: no result within {after:?}")]
    Timeout { engine: String, after: Duration },

    #[error("wav {path}: {reason}")]
    Wav { path: PathBuf, reason: String },

    /// The worker process could not be started or did not report ready.
    #[error("asr worker ({python} {script}): {reason}")]
    WorkerStart {
        python: PathBuf,
        script: PathBuf,
        reason: String,
    },

    /// The worker exited or broke the protocol during a request; it is restarted on next use.
    #[error("asr worker pid {pid}: {reason}")]
    WorkerDied { pid: u32, reason: String },

    /// The worker answered `ok: false` (e.g. unreadable WAV, grammar word not in dictionary).
    #[error("asr worker: {reason}")]
    Worker { reason: String },

    #[error("POST {url}: {reason}")]
    Request { url: String, reason: String },

    #[error("POST {url}: HTTP status {status}: {body}")]
    HttpStatus {
        url: String,
        status: u16,
        body: String,
    },

    #[error("POST {url}: response body: {reason}")]
    BadResponse { url: String, reason: String },
}
