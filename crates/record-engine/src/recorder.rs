//! The `<Record>` state machine (SPEC §3.2–3.5).

use crate::speech::SpeechDetector;
use crate::wav::{WavError, WavStorage, WavWriter};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordParams {
    pub sample_rate: u32,
    /// Seconds of continuous silence that end the recording; `None` = never (`timeout="0"`).
    pub silence_timeout_secs: Option<u32>,
    pub max_length_secs: u32,
    /// Keys that end the recording; empty = none.
    pub finish_on_key: String,
    pub trim_silence: bool,
    /// Padding kept around speech when trimming, ms (SPEC §3.4: 200).
    pub trim_padding_ms: u32,
    /// Audio dropped before the start of a terminating tone, ms (SPEC §3.5: 40).
    pub finish_key_guard_ms: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    FinishKey(char),
    Silence,
    MaxLength,
    Hangup,
    Redirected,
}

impl StopReason {
    /// The `Digits` parameter of the action request.
    pub fn digits(&self) -> String {
        match self {
            StopReason::FinishKey(k) => k.to_string(),
            StopReason::Hangup => "hangup".to_string(),
            _ => String::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbsentReason {
    /// No frame was speech (Twilio error 16102).
    Silent,
    /// Speech, but what was kept rounds to 0 s (Twilio error 16101).
    TooShort,
}

impl AbsentReason {
    pub fn error_code(&self) -> u32 {
        match self {
            AbsentReason::Silent => 16102,
            AbsentReason::TooShort => 16101,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSummary {
    pub stop_reason: StopReason,
    /// Samples in the finished file.
    pub samples: u64,
    /// round-half-up(samples / rate), the `RecordingDuration`.
    pub duration_secs: u32,
    /// `Some` when the recording is empty (no action request, `absent` callback).
    pub absent: Option<AbsentReason>,
    /// Samples captured before trimming/cutting (from capture start).
    pub captured_samples: u64,
}

/// Feeds audio in timeline order; the first stop condition wins and later input is ignored.
pub struct Recorder<S: WavStorage> {
    params: RecordParams,
    detector: SpeechDetector,
    writer: WavWriter<S>,
}

impl<S: WavStorage> Recorder<S> {
    /// `capture_start` is the timeline position where capture begins (after the beep). Audio
    /// before it, up to the pre-roll, may be pushed first: trim-silence may keep it if the
    /// caller spoke over the beep; do-not-trim drops it.
    pub fn new(params: RecordParams, detector: SpeechDetector, writer: WavWriter<S>, capture_start: u64) -> Self {
        todo!()
    }
    /// Returns the stop reason once a stop condition is met (silence, max length).
    pub fn push_audio(&mut self, position: u64, pcm: &[i16]) -> Result<Option<StopReason>, WavError> {
        todo!()
    }
    /// A key press that began at `position`. Keys not in `finish_on_key`, and keys that began
    /// before capture start (during the beep), are ignored.
    pub fn push_dtmf(&mut self, digit: char, position: u64) -> Option<StopReason> {
        todo!()
    }
    /// Hangup or redirect: stops if not already stopped.
    pub fn stop(&mut self, reason: StopReason) {
        todo!()
    }
    pub fn stop_reason(&self) -> Option<StopReason> {
        todo!()
    }
    /// Samples captured so far from capture start.
    pub fn captured_samples(&self) -> u64 {
        todo!()
    }
    /// Applies the finish-key cut and trim in place, finalises the header, returns the summary
    /// and the storage (the file).
    pub fn finish(self) -> Result<(RecordSummary, S), WavError> {
        todo!()
    }
}
