//! Speech vs silence, one 20 ms frame at a time.
//!
//! Decision: a frame whose RMS is below `threshold_dbfs` is silence (the per-tenant knob of
//! SPEC §3.3, and it keeps line hiss from reaching the VAD). Louder frames of 10/20/30 ms go to
//! webrtc-vad; other lengths (a trimmed frame, an odd packetisation) are judged by energy alone.
//!
//! No extra hangover is added: webrtc-vad already holds a speech decision for a few frames after
//! voice ends (its internal "overhang"), trim keeps 200 ms of padding, and the silence timeout is
//! whole seconds, so a short hangover here would change nothing observable.

use webrtc_vad::{SampleRate, Vad, VadMode};

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
        Self {
            threshold_dbfs: -45.0,
            vad_mode: 2,
        }
    }
}

/// Owns a webrtc-vad handle so the detector can move between threads.
struct VadHandle(Vad);

// SAFETY: `Vad` holds a raw pointer to a heap block of plain C state (no thread-locals, no
// globals, no callbacks). This handle owns it exclusively: it is never cloned or shared, and
// every access goes through `&mut self`, so moving it to another thread is the same as moving
// a `Box` of plain data. It is deliberately not `Sync`.
unsafe impl Send for VadHandle {}

/// One per call. webrtc-vad's handle is not `Send` by itself; this wrapper is, because it owns
/// the handle exclusively and never shares it.
pub struct SpeechDetector {
    config: SpeechConfig,
    /// `None` when the rate is one webrtc-vad does not take: energy decides alone.
    vad: Option<VadHandle>,
    sample_rate: u32,
}

impl SpeechDetector {
    pub fn new(config: SpeechConfig) -> Self {
        Self::with_sample_rate(config, 8000)
    }

    /// For wideband codecs (16 kHz). webrtc-vad accepts 8/16/32/48 kHz; any other rate is
    /// judged by energy only.
    pub fn with_sample_rate(config: SpeechConfig, sample_rate: u32) -> Self {
        let rate = match sample_rate {
            8000 => Some(SampleRate::Rate8kHz),
            16000 => Some(SampleRate::Rate16kHz),
            32000 => Some(SampleRate::Rate32kHz),
            48000 => Some(SampleRate::Rate48kHz),
            _ => None,
        };
        let mode = match config.vad_mode {
            0 => VadMode::Quality,
            1 => VadMode::LowBitrate,
            2 => VadMode::Aggressive,
            _ => VadMode::VeryAggressive,
        };
        let vad = rate.map(|r| VadHandle(Vad::new_with_rate_and_mode(r, mode)));
        Self {
            config,
            vad,
            sample_rate,
        }
    }

    pub fn config(&self) -> SpeechConfig {
        self.config
    }

    /// `pcm` is 8 kHz mono; 160 samples (20 ms) is the normal case, other lengths are judged by
    /// energy alone.
    pub fn is_speech(&mut self, pcm: &[i16]) -> bool {
        if pcm.is_empty() || rms_dbfs(pcm) < self.config.threshold_dbfs {
            return false;
        }
        let per_10ms = (self.sample_rate / 100) as usize;
        // webrtc-vad takes 10, 20 or 30 ms frames only.
        let vad_len = per_10ms > 0 && [per_10ms, 2 * per_10ms, 3 * per_10ms].contains(&pcm.len());
        match &mut self.vad {
            // webrtc-vad only errs on a bad length, which was checked; energy decides if it does.
            Some(VadHandle(vad)) if vad_len => vad.is_voice_segment(pcm).unwrap_or(true),
            _ => true,
        }
    }
}

/// Floor reported for digital silence.
const SILENCE_FLOOR_DBFS: f32 = -120.0;

/// RMS level of `pcm` in dBFS (−inf for digital silence is reported as −120).
pub fn rms_dbfs(pcm: &[i16]) -> f32 {
    if pcm.is_empty() {
        return SILENCE_FLOOR_DBFS;
    }
    let sum_sq: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum_sq / pcm.len() as f64).sqrt();
    if rms <= 0.0 {
        return SILENCE_FLOOR_DBFS;
    }
    let db = 20.0 * (rms / 32768.0).log10();
    (db as f32).max(SILENCE_FLOOR_DBFS)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Vowel-like test signal: 150 Hz fundamental with decaying harmonics up to ~3 kHz and a
    /// 4 Hz syllable-rate amplitude modulation. `start` is the absolute sample index, so frames
    /// cut from a longer signal join without discontinuities.
    pub(crate) fn vowel(start: u64, len: usize, amplitude: f64) -> Vec<i16> {
        let rate = 8000.0;
        (0..len as u64)
            .map(|i| {
                let t = (start + i) as f64 / rate;
                let mut v = 0.0;
                for h in 1..=20u32 {
                    let f = 150.0 * f64::from(h);
                    // formant-ish emphasis around 700 Hz and 1200 Hz
                    let formant = 1.0
                        + 2.0 * (-((f - 700.0) / 200.0).powi(2)).exp()
                        + 1.5 * (-((f - 1200.0) / 250.0).powi(2)).exp();
                    v += formant / f64::from(h) * (2.0 * std::f64::consts::PI * f * t).sin();
                }
                let env = 0.6 + 0.4 * (2.0 * std::f64::consts::PI * 4.0 * t).sin();
                (v * env * amplitude / 4.0).clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    /// Deterministic low-level white noise (xorshift), peak `amplitude`.
    pub(crate) fn noise(seed: u64, len: usize, amplitude: i16) -> Vec<i16> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let r = (x % (2 * amplitude as u64 + 1)) as i64 - amplitude as i64;
                r as i16
            })
            .collect()
    }

    #[test]
    fn rms_of_digital_silence_is_floor() {
        assert_eq!(rms_dbfs(&[0; 160]), -120.0);
        assert_eq!(rms_dbfs(&[]), -120.0);
    }

    #[test]
    fn rms_of_full_scale_square_is_zero_dbfs() {
        let sq: Vec<i16> = (0..160)
            .map(|i| if i % 2 == 0 { -32768 } else { 32767 })
            .collect();
        assert!(rms_dbfs(&sq).abs() < 0.01, "{}", rms_dbfs(&sq));
    }

    #[test]
    fn rms_of_constant_quarter_scale_is_minus_12_dbfs() {
        let v = vec![8192i16; 160];
        assert!((rms_dbfs(&v) - (-12.041)).abs() < 0.01, "{}", rms_dbfs(&v));
    }

    #[test]
    fn frame_below_threshold_is_silence_even_if_voiced() {
        let mut d = SpeechDetector::new(SpeechConfig {
            threshold_dbfs: -20.0,
            vad_mode: 0,
        });
        let quiet = vowel(0, 160, 500.0); // about -40 dBFS
        assert!(rms_dbfs(&quiet) < -20.0);
        assert!(!d.is_speech(&quiet));
    }

    #[test]
    fn minus_60_dbfs_noise_is_silence() {
        let mut d = SpeechDetector::new(SpeechConfig::default());
        let n = noise(7, 160, 50);
        assert!(rms_dbfs(&n) < -55.0);
        for _ in 0..50 {
            assert!(!d.is_speech(&n));
        }
    }

    #[test]
    fn webrtc_vad_calls_synthetic_vowel_speech() {
        let mut d = SpeechDetector::new(SpeechConfig::default());
        let mut voiced = 0;
        for f in 0..50u64 {
            if d.is_speech(&vowel(f * 160, 160, 8000.0)) {
                voiced += 1;
            }
        }
        // The VAD needs a few frames to adapt; after that every frame must be speech.
        assert!(voiced >= 45, "only {voiced}/50 frames were speech");
    }

    #[test]
    fn loud_tone_gated_by_vad_not_by_energy() {
        // A loud steady high-pitch tone passes the energy gate; whatever the VAD decides, the
        // answer must come from the VAD (the frame is 160 samples), so compare with a raw Vad.
        let tone: Vec<i16> = (0..160)
            .map(|i| {
                (10000.0 * (2.0 * std::f64::consts::PI * 3500.0 * f64::from(i) / 8000.0).sin())
                    as i16
            })
            .collect();
        let mut d = SpeechDetector::new(SpeechConfig {
            threshold_dbfs: -45.0,
            vad_mode: 3,
        });
        let mut raw = Vad::new_with_rate_and_mode(SampleRate::Rate8kHz, VadMode::VeryAggressive);
        for _ in 0..20 {
            assert_eq!(d.is_speech(&tone), raw.is_voice_segment(&tone).unwrap());
        }
    }

    #[test]
    fn odd_length_frame_judged_by_energy_only() {
        let mut d = SpeechDetector::new(SpeechConfig::default());
        assert!(d.is_speech(&[3000i16; 100]));
        assert!(!d.is_speech(&[0i16; 100]));
    }

    #[test]
    fn detector_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<SpeechDetector>();
    }

    #[test]
    fn real_speech_file_has_speech_frames() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/speech_8k_s16.wav");
        let samples: Vec<i16> = hound::WavReader::open(path)
            .unwrap()
            .samples::<i16>()
            .map(|s| s.unwrap())
            .collect();
        let mut d = SpeechDetector::new(SpeechConfig::default());
        let speech = samples.chunks_exact(160).filter(|f| d.is_speech(f)).count();
        let total = samples.len() / 160;
        // espeak sentence with short pauses: most frames are voiced.
        assert!(speech * 2 > total, "{speech}/{total}");
    }
}
