//! Hark's HTTP API (SPEC §6): `/2010-04-01/Accounts/{AccountSid}/…` for calls and recordings as
//! the Twilio helper libraries expect them, recording media (WAV, MP3 encoded on first request),
//! `/healthz` and `/metrics`.

use std::path::PathBuf;
use std::sync::Arc;

pub mod metrics;

pub use metrics::Metrics;

/// Whether recording media needs credentials (`http.media_auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaAuth {
    Basic,
    None,
}

pub struct ApiState {
    pub account_sid: String,
    pub auth_token: String,
    pub media_auth: MediaAuth,
    pub store: Arc<store::Store>,
    /// Where `RecordingRecord::media_file` lives; MP3s are cached beside the WAVs.
    pub storage_dir: PathBuf,
    pub metrics: Arc<Metrics>,
}

/// Every route of the API.
pub fn router(state: Arc<ApiState>) -> axum::Router {
    todo!()
}
