//! What every leg of the process shares.

use std::sync::Arc;
use std::time::Duration;

use str0m::config::{CryptoProvider, DtlsCert};
use str0m::{Rtc, RtcConfig};

use crate::WebRtcError;

/// Packets str0m holds back to reorder audio before releasing a gap. Hark's `MediaReceiver`
/// reorders again (5 packets, 60 ms), so str0m only needs to bridge small swaps.
const REORDER_PACKETS: usize = 3;
/// Longest str0m waits for a missing audio packet: the receiver's own `max_hold`.
const REORDER_TIMEOUT: Duration = Duration::from_millis(60);

/// Shared by all legs: build it once at start-up.
#[derive(Clone)]
pub struct LegConfig {
    /// Opus may be chosen when the offer lists it before PCMU/PCMA. Off until the media engine
    /// decodes Opus.
    pub opus: bool,
    provider: Arc<CryptoProvider>,
    /// One self-signed certificate for every leg, made at start-up: browsers only check it
    /// against the fingerprint in our answer. Measured in release (tests/cost.rs), a fresh
    /// aws-lc-rs key per leg costs little (`accept_offer` 1.03 vs 1.04 ms); sharing mainly keeps
    /// key generation, and its failure, out of call setup.
    cert: DtlsCert,
}

impl std::fmt::Debug for LegConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegConfig")
            .field("opus", &self.opus)
            .finish_non_exhaustive()
    }
}

impl LegConfig {
    /// Generates the DTLS certificate (aws-lc-rs).
    pub fn new(opus: bool) -> Result<Self, WebRtcError> {
        let provider = Arc::new(str0m::crypto::from_feature_flags());
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or(WebRtcError::Certificate)?;
        Ok(Self {
            opus,
            provider,
            cert,
        })
    }

    /// A builder with the shared identity and the CPU-saving defaults, no codecs yet.
    pub(crate) fn builder(&self) -> RtcConfig {
        Rtc::builder()
            .set_crypto_provider(Arc::clone(&self.provider))
            .set_dtls_cert(self.cert.clone())
            .set_ice_lite(true)
            // A recorder needs neither stats events nor bandwidth estimation (BWE is off
            // unless enabled).
            .set_stats_interval(None)
            .set_reordering_size_audio(REORDER_PACKETS)
            .set_reordering_timeout_audio(Some(REORDER_TIMEOUT))
            .clear_codecs()
    }
}
