//! Speech vs silence, one 20 ms frame at a time.

/// How eager speech detection is.
#[derive(Debug, Clone, Copy)]
pub struct SpeechConfig {
    /// Frames below this RMS level (dBFS) are silence whatever the VAD says.
    pub threshold_dbfs: f32,
    /// webrtc-vad aggressiveness 0..=3.
    pub vad_mode: u8,
}

impl Default for SpeechConfig {
    fn default() -> Self {
        Self { threshold_dbfs: -45.0, vad_mode: 2 }
    }
}

/// One per call. webrtc-vad's handle is not `Send` by itself; this wrapper is, because it owns
/// the handle exclusively and never shares it.
pub struct SpeechDetector {
    config: SpeechConfig,
}

impl SpeechDetector {
    pub fn new(config: SpeechConfig) -> Self {
        todo!()
    }
    /// `pcm` is 8 kHz mono; 160 samples (20 ms) is the normal case, other lengths are judged by
    /// energy alone.
    pub fn is_speech(&mut self, pcm: &[i16]) -> bool {
        todo!()
    }
}

/// RMS level of `pcm` in dBFS (−inf for digital silence is reported as −120).
pub fn rms_dbfs(pcm: &[i16]) -> f32 {
    todo!()
}
