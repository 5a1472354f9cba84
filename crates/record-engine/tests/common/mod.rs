//! Shared helpers of the recorder scenario tests: a test timeline of speech and silence runs,
//! a recorder on an in-memory file, and sample-exact checks.
//!
//! "Speech" is 300 Hz + 3 harmonics at amplitude 8000: webrtc-vad calls every 20 ms frame of it
//! speech from the first frame in all modes (checked in `recorder_scenarios`), and stops at the
//! first frame of silence because silence here is below the −45 dBFS energy gate. Silence is
//! −64 dBFS noise.

// Each test binary uses a different subset.
#![allow(dead_code)]

use std::io::Cursor;

use record_engine::wav::WavStorage;
use record_engine::{
    RecordParams, RecordSummary, Recorder, SpeechConfig, SpeechDetector, StopReason, WavWriter,
};

pub const RATE: u64 = 8000;
pub const FRAME: usize = 160;

pub fn ms(ms: u64) -> u64 {
    ms * RATE / 1000
}

/// Sample `i` of the test timeline's speech signal (phase-continuous by absolute position).
pub fn speech_sample(i: u64) -> i16 {
    let t = i as f64 / RATE as f64;
    let v: f64 = [300.0, 600.0, 900.0, 1200.0]
        .iter()
        .map(|f| (2.0 * std::f64::consts::PI * f * t).sin())
        .sum();
    (v * 2000.0) as i16
}

/// About −64 dBFS, deterministic in the position.
pub fn silence_sample(i: u64) -> i16 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 29;
    ((x % 61) as i64 - 30) as i16
}

/// A timeline made of (length, is_speech) runs, starting at position 0.
pub fn timeline(runs: &[(u64, bool)]) -> Vec<i16> {
    let mut out = Vec::new();
    for &(len, speech) in runs {
        let start = out.len() as u64;
        out.extend((start..start + len).map(|i| {
            if speech {
                speech_sample(i)
            } else {
                silence_sample(i)
            }
        }));
    }
    out
}

pub fn params() -> RecordParams {
    RecordParams {
        sample_rate: RATE as u32,
        silence_timeout_secs: Some(5),
        initial_silence_timeout_secs: None,
        max_length_secs: 3600,
        finish_on_key: "1234567890*#".into(),
        trim_silence: true,
        trim_padding_ms: 200,
        finish_key_guard_ms: 40,
    }
}

pub fn recorder(p: RecordParams, capture_start: u64) -> Recorder<Cursor<Vec<u8>>> {
    let w = WavWriter::create(Cursor::new(Vec::new()), p.sample_rate).unwrap();
    Recorder::new(
        p,
        SpeechDetector::new(SpeechConfig::default()),
        w,
        capture_start,
    )
}

/// Pushes `audio[from..]` in frames of `frame` samples; returns the position of the frame
/// that stopped the recording, if any.
pub fn feed<S: WavStorage>(
    r: &mut Recorder<S>,
    audio: &[i16],
    from: u64,
    frame: usize,
) -> Option<(u64, StopReason)> {
    let mut pos = from;
    for chunk in audio[from as usize..].chunks(frame) {
        if let Some(reason) = r.push_audio(pos, chunk).unwrap() {
            return Some((pos, reason));
        }
        pos += chunk.len() as u64;
    }
    None
}

/// Sample-exact comparison that reports the first difference instead of both vectors.
#[track_caller]
pub fn assert_same(got: &[i16], want: &[i16], what: &str) {
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!(
            "{what}: first difference at sample {i}: got {} want {}",
            got[i], want[i]
        );
    }
    assert_eq!(got.len(), want.len(), "{what}: length");
}

pub fn samples_of(c: Cursor<Vec<u8>>) -> Vec<i16> {
    let r = hound::WavReader::new(c).unwrap();
    assert_eq!(r.spec().channels, 1);
    assert_eq!(r.spec().bits_per_sample, 16);
    r.into_samples::<i16>().map(|s| s.unwrap()).collect()
}

pub fn finish(r: Recorder<Cursor<Vec<u8>>>) -> (RecordSummary, Vec<i16>) {
    let (summary, c) = r.finish().unwrap();
    let bytes_len = c.get_ref().len() as u64;
    let samples = samples_of(c);
    assert_eq!(
        bytes_len,
        44 + 2 * samples.len() as u64,
        "header and file length agree"
    );
    assert_eq!(summary.samples, samples.len() as u64);
    (summary, samples)
}
