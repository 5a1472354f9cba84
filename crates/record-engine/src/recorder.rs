//! The `<Record>` state machine (SPEC §3.2–3.5).
//!
//! Everything is in audio time: positions are sample indices on the call's inbound timeline
//! (the daemon maps RTP timestamps onto it), so stop points and trims are sample-exact and no
//! clock is read.
//!
//! Conventions (decisions recorded here, see also the method docs):
//! - The file starts at the first pushed sample (`file_start`), at most [`MAX_PRE_ROLL_SECS`]
//!   before `capture_start`; if the first frame starts after `capture_start`, the gap is written
//!   as silence so the file always covers `[capture_start, end)`.
//! - Holes in the timeline are written as zeros and count as silence; overlaps are skipped.
//! - `Some(0)` as silence timeout is treated like `None` (never), as `timeout="0"` means; the
//!   same for the initial silence timeout (Graph only allows 1–120).
//! - Two silence timers (SPEC §7): with an initial silence timeout, the first phase ends at the
//!   first speech in captured audio (stop `NoSpeech` if the timeout comes first), and only then
//!   does the silence timeout run, from the last speech frame. Without one (Twilio), the silence
//!   timeout runs from capture start. Speech only in the pre-roll does not end the first phase,
//!   just as it does not reset the Twilio silence timer.
//! - If a silence timer and max length are reached by the same sample, `MaxLength` wins.
//! - Emptiness looks for speech where audio may be kept: `[file_start, end)` when trimming
//!   (the pre-roll can be kept), `[capture_start, end)` with `do-not-trim` (pre-roll is dropped,
//!   so speech only there leaves a file of silence: `Silent`).

use std::ops::Range;

use crate::speech::SpeechDetector;
use crate::wav::{WavError, WavStorage, WavWriter};

/// Pre-roll older than this before capture start is discarded (the daemon keeps ~300 ms; this
/// only protects the file against a bogus first position).
pub const MAX_PRE_ROLL_SECS: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordParams {
    pub sample_rate: u32,
    /// Seconds of continuous silence that end the recording; `None` = never (`timeout="0"`).
    /// Counts from capture start, or only after the first speech when
    /// `initial_silence_timeout_secs` is set (Graph `maxSilenceTimeoutInSeconds`).
    pub silence_timeout_secs: Option<u32>,
    /// Seconds from capture start within which speech must begin, else the recording stops with
    /// [`StopReason::NoSpeech`] (Graph `initialSilenceTimeoutInSeconds`). `None` = no such phase:
    /// the silence timeout runs from capture start (Twilio `<Record>`).
    pub initial_silence_timeout_secs: Option<u32>,
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
    /// No speech within the initial silence timeout (Graph subcode 8510).
    NoSpeech,
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
            StopReason::Silence
            | StopReason::NoSpeech
            | StopReason::MaxLength
            | StopReason::Redirected => String::new(),
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
    /// Samples captured before trimming/cutting (from capture start). For the timer stops
    /// (`Silence`, `NoSpeech`, `MaxLength`) this is exactly where the stop fell: the stop
    /// position is `capture_start + captured_samples`.
    pub captured_samples: u64,
    /// Some frame of captured audio (from capture start, before any finish-key cut) was speech.
    /// Pre-roll speech does not count. Always `false` after `NoSpeech`.
    pub speech_detected: bool,
    /// Where the kept audio begins, in samples from capture start: positive when leading
    /// silence was trimmed, negative when pre-roll was kept. Lets callers place the file's
    /// first sample on the call's clock.
    pub kept_start_offset: i64,
}

/// Zeros written for timeline holes, one frame at a time.
const ZEROS: [i16; 160] = [0; 160];

/// Feeds audio in timeline order; the first stop condition wins and later input is ignored.
pub struct Recorder<S: WavStorage> {
    params: RecordParams,
    detector: SpeechDetector,
    writer: WavWriter<S>,
    capture_start: u64,
    /// Timeline position of the file's first sample; `None` until the first frame.
    file_start: Option<u64>,
    /// Timeline position of the next sample to write.
    next_pos: u64,
    captured: u64,
    max_samples: u64,
    silence_limit: Option<u64>,
    /// Initial silence limit in samples; `None` = Twilio semantics.
    initial_limit: Option<u64>,
    /// Some captured (not pre-roll) audio was speech: the initial phase is over.
    heard_speech: bool,
    /// Continuous non-speech captured samples since capture start or the last speech frame.
    silence_run: u64,
    /// Merged speech spans (timeline positions), ascending. Grows only at speech onsets.
    speech: Vec<Range<u64>>,
    stopped: Option<StopReason>,
    /// Finish-key cut point (timeline): audio from here on is not kept.
    cut: Option<u64>,
}

impl<S: WavStorage> Recorder<S> {
    /// `capture_start` is the timeline position where capture begins (after the beep). Audio
    /// before it, up to the pre-roll, may be pushed first: trim-silence may keep it if the
    /// caller spoke over the beep; do-not-trim drops it. For rates other than 8 kHz, build the
    /// detector with [`SpeechDetector::with_sample_rate`] at `params.sample_rate`.
    pub fn new(
        params: RecordParams,
        detector: SpeechDetector,
        writer: WavWriter<S>,
        capture_start: u64,
    ) -> Self {
        let rate = u64::from(params.sample_rate);
        let max_samples = u64::from(params.max_length_secs) * rate;
        let secs = |t: Option<u32>| t.filter(|&t| t > 0).map(|t| u64::from(t) * rate);
        let silence_limit = secs(params.silence_timeout_secs);
        let initial_limit = secs(params.initial_silence_timeout_secs);
        Self {
            params,
            detector,
            writer,
            capture_start,
            file_start: None,
            next_pos: 0,
            captured: 0,
            max_samples,
            silence_limit,
            initial_limit,
            heard_speech: false,
            silence_run: 0,
            // Enough for a long message's worth of pauses without regrowing.
            speech: Vec::with_capacity(256),
            stopped: None,
            cut: None,
        }
    }

    /// Returns the stop reason once a stop condition is met (silence, max length).
    /// After a stop, input is ignored and `Ok(None)` is returned.
    pub fn push_audio(
        &mut self,
        position: u64,
        pcm: &[i16],
    ) -> Result<Option<StopReason>, WavError> {
        if self.stopped.is_some() || pcm.is_empty() {
            return Ok(None);
        }
        let file_start = match self.file_start {
            Some(s) => s,
            None => {
                let earliest = self
                    .capture_start
                    .saturating_sub(MAX_PRE_ROLL_SECS * u64::from(self.params.sample_rate));
                let s = position.clamp(earliest, self.capture_start);
                self.file_start = Some(s);
                self.next_pos = s;
                s
            }
        };
        debug_assert!(self.next_pos >= file_start);
        let end = position.saturating_add(pcm.len() as u64);
        if end <= self.next_pos {
            return Ok(None); // all already written (or before the file)
        }
        // Overlap with what is written: skip it.
        let skip = self.next_pos.saturating_sub(position);
        let pcm = pcm
            .get(usize::try_from(skip).unwrap_or(usize::MAX)..)
            .unwrap_or(&[]);
        let position = position.max(self.next_pos);
        // A hole: silence, bounded because captured audio stops at max length.
        while self.next_pos < position {
            let n = (position - self.next_pos).min(ZEROS.len() as u64) as usize;
            if let Some(r) = self.ingest(&ZEROS[..n], false)? {
                return Ok(Some(r));
            }
        }
        let speech = self.detector.is_speech(pcm);
        self.ingest(pcm, speech)
    }

    /// A key press that began at `position`. Keys not in `finish_on_key`, and keys that began
    /// before capture start (during the beep), are ignored.
    pub fn push_dtmf(&mut self, digit: char, position: u64) -> Option<StopReason> {
        if self.stopped.is_some()
            || position < self.capture_start
            || !self.params.finish_on_key.contains(digit)
        {
            return None;
        }
        let guard =
            u64::from(self.params.finish_key_guard_ms) * u64::from(self.params.sample_rate) / 1000;
        self.cut = Some(position.saturating_sub(guard).max(self.capture_start));
        let reason = StopReason::FinishKey(digit);
        self.stopped = Some(reason);
        Some(reason)
    }

    /// Hangup or redirect: stops if not already stopped.
    pub fn stop(&mut self, reason: StopReason) {
        if self.stopped.is_none() {
            self.stopped = Some(reason);
        }
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stopped
    }

    /// Moves capture start later, to `position`, while nothing has been pushed yet (the daemon
    /// starts a capture before a caller's media has begun and lets a prompt first packet open
    /// it). False, and nothing changes, once audio was pushed or for an earlier position.
    pub fn postpone_capture_start(&mut self, position: u64) -> bool {
        if self.file_start.is_some() || position < self.capture_start {
            return false;
        }
        self.capture_start = position;
        true
    }

    /// Samples captured so far from capture start.
    pub fn captured_samples(&self) -> u64 {
        self.captured
    }

    /// Writes buffered audio and the header sizes now (e.g. on a daemon timer).
    pub fn sync(&mut self) -> Result<(), WavError> {
        self.writer.sync()
    }

    /// Applies the finish-key cut and trim in place, finalises the header, returns the summary
    /// and the storage (the file). Called without a prior stop, the recording counts as
    /// ended by hangup (the call went away under it).
    pub fn finish(self) -> Result<(RecordSummary, S), WavError> {
        let stop_reason = self.stopped.unwrap_or(StopReason::Hangup);
        let rate = u64::from(self.params.sample_rate);
        let Some(file_start) = self.file_start else {
            let storage = self.writer.finalize(0..0)?;
            let summary = RecordSummary {
                stop_reason,
                samples: 0,
                duration_secs: 0,
                absent: Some(AbsentReason::Silent),
                captured_samples: self.captured,
                speech_detected: false,
                kept_start_offset: 0,
            };
            return Ok((summary, storage));
        };
        let end = match self.cut {
            Some(c) => c.min(self.next_pos),
            None => self.next_pos,
        };
        let search_from = if self.params.trim_silence {
            file_start
        } else {
            self.capture_start
        };
        let spoken = speech_bounds(&self.speech, search_from..end);
        let speech_detected = speech_bounds(
            &self.speech,
            self.capture_start..end.max(self.capture_start),
        )
        .is_some();
        let (keep, absent) = match spoken {
            None => (file_start..file_start, Some(AbsentReason::Silent)),
            Some(s) => {
                let keep = if self.params.trim_silence {
                    let pad = u64::from(self.params.trim_padding_ms) * rate / 1000;
                    s.start.saturating_sub(pad).max(file_start)..s.end.saturating_add(pad).min(end)
                } else {
                    self.capture_start..end.max(self.capture_start)
                };
                let short = round_half_up(keep.end - keep.start, rate) == 0;
                (keep, short.then_some(AbsentReason::TooShort))
            }
        };
        let samples = keep.end - keep.start;
        let file_keep = keep.start.saturating_sub(file_start)..keep.end.saturating_sub(file_start);
        let storage = self.writer.finalize(file_keep)?;
        let summary = RecordSummary {
            stop_reason,
            samples,
            duration_secs: u32::try_from(round_half_up(samples, rate)).unwrap_or(u32::MAX),
            absent,
            captured_samples: self.captured,
            speech_detected,
            kept_start_offset: keep.start as i64 - self.capture_start as i64,
        };
        Ok((summary, storage))
    }

    /// Writes `pcm` at `next_pos`: pre-roll part first, then captured audio subject to the
    /// max-length and silence limits (cut to the exact sample where one is reached).
    /// Before the first speech `silence_run` equals the captured count, so one run serves
    /// both timers.
    fn ingest(&mut self, pcm: &[i16], speech: bool) -> Result<Option<StopReason>, WavError> {
        let mut pcm = pcm;
        if self.next_pos < self.capture_start {
            let n = (self.capture_start - self.next_pos).min(pcm.len() as u64) as usize;
            let (pre, rest) = pcm.split_at(n);
            self.append(pre, speech)?;
            pcm = rest;
            if pcm.is_empty() {
                return Ok(None);
            }
        }
        let (limit, on_limit) = match self.initial_limit {
            Some(initial) if !self.heard_speech => (Some(initial), StopReason::NoSpeech),
            _ => (self.silence_limit, StopReason::Silence),
        };
        let mut n = (self.max_samples - self.captured).min(pcm.len() as u64);
        if let (false, Some(limit)) = (speech, limit) {
            n = n.min(limit.saturating_sub(self.silence_run));
        }
        self.append(&pcm[..n as usize], speech)?;
        self.captured += n;
        self.heard_speech |= speech && n > 0;
        self.silence_run = if speech { 0 } else { self.silence_run + n };
        let reason = if self.captured >= self.max_samples {
            StopReason::MaxLength
        } else if limit.is_some_and(|l| self.silence_run >= l) {
            on_limit
        } else {
            return Ok(None);
        };
        self.stopped = Some(reason);
        Ok(Some(reason))
    }

    fn append(&mut self, pcm: &[i16], speech: bool) -> Result<(), WavError> {
        if pcm.is_empty() {
            return Ok(());
        }
        self.writer.write(pcm)?;
        let end = self.next_pos.saturating_add(pcm.len() as u64);
        if speech {
            match self.speech.last_mut() {
                Some(last) if last.end == self.next_pos => last.end = end,
                _ => self.speech.push(self.next_pos..end),
            }
        }
        self.next_pos = end;
        Ok(())
    }
}

/// First speech start and last speech end inside `within`, if any speech is there.
fn speech_bounds(spans: &[Range<u64>], within: Range<u64>) -> Option<Range<u64>> {
    let mut inside = spans
        .iter()
        .map(|s| s.start.max(within.start)..s.end.min(within.end))
        .filter(|s| s.start < s.end);
    let first = inside.next()?;
    let last = inside.next_back().unwrap_or_else(|| first.clone());
    Some(first.start..last.end)
}

/// `samples / rate` rounded half up, in whole seconds.
fn round_half_up(samples: u64, rate: u64) -> u64 {
    if rate == 0 {
        return 0;
    }
    samples.saturating_mul(2).saturating_add(rate) / (2 * rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_half_up_rounds_half_seconds_up() {
        assert_eq!(round_half_up(0, 8000), 0);
        assert_eq!(round_half_up(3999, 8000), 0);
        assert_eq!(round_half_up(4000, 8000), 1);
        assert_eq!(round_half_up(11_999, 8000), 1);
        assert_eq!(round_half_up(12_000, 8000), 2);
        assert_eq!(round_half_up(5, 0), 0);
    }

    #[test]
    fn speech_bounds_clip_to_window() {
        let spans = [10..20, 30..40, 50..60];
        assert_eq!(speech_bounds(&spans, 0..100), Some(10..60));
        assert_eq!(speech_bounds(&spans, 15..55), Some(15..55));
        assert_eq!(speech_bounds(&spans, 20..30), None);
        assert_eq!(speech_bounds(&spans, 35..36), Some(35..36));
        assert_eq!(speech_bounds(&[], 0..100), None);
    }
}
