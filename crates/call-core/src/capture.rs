//! `<Record>` and a bot's `recordResponse` on the caller's leg (SPEC §3.2): beep, capture into
//! the record-engine state machine, finalize before any webhook, then status callbacks and the
//! transcription job.

use std::time::{Duration, Instant};

use control::twiml::RecordVerb;
use control::RecordResult;
use media_engine::{AudioFrame, MediaItem, FRAME_SAMPLES, SAMPLE_RATE, WIDE_FRAME_SAMPLES};
use record_engine::wav::WavStorage;
use record_engine::{
    RecordParams, RecordSummary, Recorder, SpeechConfig, SpeechDetector, StopReason, WavError,
};
use store::{
    RecordingRecord, RecordingSid, RecordingSource, RecordingStatus, StatusCallbackSpec,
    TranscriptionRecord, TranscriptionStatus,
};

use crate::call::{Activity, Call};
use crate::leg::{Leg, LegId};
use crate::params::status_params;
use crate::{FetchResult, IoId, MediaCommand, Output, Persist, PlaybackId, RecordingIo};

/// When no audio arrives at all (silence suppression, a dead stream), the recorder's timeline is
/// advanced with silence this far behind real time, so silence and maxLength still end it.
/// Generous, so audio that is only late (a starved sender) is not overwritten.
pub const STALL_SLACK: Duration = Duration::from_millis(1000);

/// How often a stalled capture is padded.
const STALL_STEP: Duration = Duration::from_millis(100);

/// A caller whose media had not begun at capture start and whose first packet comes within
/// this is recorded from that packet, as if it had been flowing (no sliver of silence before
/// it); a later first packet is placed at its arrival, after silence from capture start.
pub const FIRST_PACKET_GRACE: Duration = Duration::from_millis(200);

fn samples_in(d: Duration) -> u64 {
    d.as_millis() as u64 * u64::from(SAMPLE_RATE) / 1000
}

/// How a capture differs between `<Record>` and a bot's `recordResponse`.
#[derive(Debug, Clone)]
pub(crate) struct CaptureOptions {
    /// Graph's initialSilenceTimeoutInSeconds; `None` = Twilio (silence timer from the start).
    pub initial_silence_secs: Option<u32>,
    /// The recording's `source`.
    pub source: RecordingSource,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self {
            initial_silence_secs: None,
            source: RecordingSource::RecordVerb,
        }
    }
}

/// Which legs a recording takes, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingTracks {
    /// One channel: these legs mixed (a `<Record>`: the caller alone).
    Mixed(Vec<LegId>),
    /// One channel per leg, in this order.
    Separate(Vec<LegId>),
}

impl RecordingTracks {
    pub fn channels(&self) -> u32 {
        match self {
            RecordingTracks::Mixed(_) => 1,
            RecordingTracks::Separate(legs) => legs.len() as u32,
        }
    }

    pub fn takes(&self, leg: LegId) -> bool {
        match self {
            RecordingTracks::Mixed(legs) | RecordingTracks::Separate(legs) => legs.contains(&leg),
        }
    }
}

/// Who gets the outcome.
pub(crate) enum AfterCapture {
    Twiml,
    Bot { id: String },
}

/// A finished capture: what `<Record>` reports, plus the stop reason and kept samples.
pub(crate) struct Captured {
    pub result: RecordResult,
    pub reason: StopReason,
    pub samples: u64,
}

enum Phase<S: WavStorage> {
    /// No beep: capture begins at the next step.
    Starting,
    Beep(PlaybackId),
    /// The row is written and the file is being created; audio meanwhile is held.
    Opening {
        io: IoId,
        capture_start: u64,
        held: Vec<MediaItem>,
    },
    Capturing {
        /// At the leg's rate: timeline positions (8 kHz) are multiplied by `scale`.
        recorder: Box<Recorder<S>>,
        scale: u64,
        /// The end of the last real audio and when it was seen: stall padding runs behind it.
        anchor: (u64, Instant),
        /// While media has not begun: the first real packet at or before this position
        /// starts the recording.
        first_audio_by: Option<u64>,
        io_error: Option<WavError>,
    },
    Finalizing {
        io: IoId,
        reason: StopReason,
    },
}

pub(crate) struct Capture<S: WavStorage> {
    pub(crate) tracks: RecordingTracks,
    /// The leg whose audio is captured (one-leg recordings are all there is today).
    pub(crate) leg: usize,
    sid: RecordingSid,
    url: String,
    verb: RecordVerb,
    options: CaptureOptions,
    then: AfterCapture,
    row: Option<RecordingRecord>,
    callback: Option<StatusCallbackSpec>,
    /// The file's sample rate: the leg's (16 kHz for Opus), fixed when capture starts.
    sample_rate: u32,
    phase: Phase<S>,
}

impl<S: WavStorage> Capture<S> {
    /// When a stalled stream must next be padded with silence.
    pub(crate) fn stall_deadline(&self, leg: &Leg) -> Option<Instant> {
        let Phase::Capturing {
            recorder, anchor, ..
        } = &self.phase
        else {
            return None;
        };
        if recorder.stop_reason().is_some() {
            return None;
        }
        let ahead = leg.timeline_end.saturating_sub(anchor.0) * 1000 / u64::from(SAMPLE_RATE);
        Some(anchor.1 + STALL_SLACK + Duration::from_millis(ahead) + STALL_STEP)
    }

    /// No audio for a while: advance with silence behind real time.
    pub(crate) fn pad_stall(&mut self, leg: &mut Leg, now: Instant) {
        let Phase::Capturing {
            recorder,
            scale,
            anchor,
            io_error,
            ..
        } = &mut self.phase
        else {
            return;
        };
        let stalled = now
            .saturating_duration_since(anchor.1)
            .saturating_sub(STALL_SLACK);
        let target = anchor.0 + samples_in(stalled);
        while leg.timeline_end < target && recorder.stop_reason().is_none() {
            let len = (target - leg.timeline_end).min(FRAME_SAMPLES as u64);
            if let Err(e) = push_silence(recorder, *scale, leg.timeline_end, len) {
                *io_error = Some(e);
                break;
            }
            leg.timeline_end += len;
        }
    }
}

impl<S: WavStorage> Call<S> {
    pub(crate) fn start_capture(
        &mut self,
        verb: RecordVerb,
        options: CaptureOptions,
        then: AfterCapture,
        now: Instant,
    ) -> Activity<S> {
        let _ = now;
        let sid = self.new_recording_sid();
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Recordings/{}",
            self.config.http_public_url, self.info.account_sid, sid
        );
        let phase = if verb.play_beep {
            let beep = self.config.beep.clone();
            Phase::Beep(self.play(beep, 1))
        } else {
            Phase::Starting
        };
        Activity::Capture(Box::new(Capture {
            tracks: RecordingTracks::Mixed(vec![LegId::CALLER]),
            leg: 0,
            sid,
            url,
            verb,
            options,
            then,
            row: None,
            callback: None,
            sample_rate: SAMPLE_RATE,
            phase,
        }))
    }

    pub(crate) fn capture_step(
        &mut self,
        mut c: Box<Capture<S>>,
        now: Instant,
    ) -> (Activity<S>, bool) {
        match &mut c.phase {
            Phase::Starting => self.begin_capture(c, now),
            Phase::Beep(_) => {
                if self.gone() {
                    self.media(MediaCommand::Stop);
                    return self.begin_capture(c, now);
                }
                (Activity::Capture(c), false)
            }
            Phase::Capturing {
                recorder, io_error, ..
            } => {
                if recorder.stop_reason().is_none() {
                    if let Some(e) = io_error {
                        tracing::error!(recording = %c.sid, error = %e, "writing the recording failed; keeping what was written");
                        recorder.stop(StopReason::Hangup);
                    } else if self.caller().hung_up() {
                        recorder.stop(StopReason::Hangup);
                    } else if self.stop.is_some() {
                        recorder.stop(StopReason::Redirected);
                    } else {
                        return (Activity::Capture(c), false);
                    }
                }
                (self.finalize(c), true)
            }
            Phase::Opening { .. } | Phase::Finalizing { .. } => (Activity::Capture(c), false),
        }
    }

    /// After the beep: capture starts now, unless the call is already over for the program.
    fn begin_capture(&mut self, mut c: Box<Capture<S>>, now: Instant) -> (Activity<S>, bool) {
        if self.caller().hung_up() {
            // Gone before capture began: nothing was recorded and nothing is requested.
            let captured = self.captured(&c, 0, StopReason::Hangup, true);
            return (self.capture_over(c, Some(captured), now), true);
        }
        if self.gone() {
            return (self.capture_over(c, None, now), true);
        }
        // Everything heard so far is pre-roll; capture starts now. Audio that flows ends where
        // the ring has got to; media that stalled or has not started yet (a muted phone, a
        // gateway that opens media late) is behind the clock, and capture starts at the
        // present: the caller's first packets, placed at their arrival, are all after it.
        let leg = &self.legs[c.leg];
        let clock = leg.media_clock(now);
        let capture_start = if !leg.heard_audio
            || clock.saturating_sub(leg.timeline_end) > samples_in(STALL_SLACK)
        {
            clock
        } else {
            leg.timeline_end
        };
        let leg = &mut self.legs[c.leg];
        leg.timeline_end = capture_start.max(leg.timeline_end);
        let verb = &c.verb;
        c.callback = verb.recording_status_callback_events.callback(
            verb.recording_status_callback.as_ref(),
            verb.recording_status_callback_method,
        );
        c.sample_rate = self.legs[c.leg].sample_rate;
        let ms = self.unix_ms(now);
        let row = RecordingRecord {
            sid: c.sid.clone(),
            account_sid: self.info.account_sid.clone(),
            call_sid: self.info.call_sid.clone(),
            status: RecordingStatus::InProgress,
            source: c.options.source,
            channels: c.tracks.channels(),
            sample_rate: c.sample_rate,
            date_created_ms: ms,
            date_updated_ms: ms,
            start_time_ms: ms,
            duration_secs: None,
            error_code: None,
            media_file: format!("{}.wav", c.sid),
            transcribe: verb.transcribe,
            transcribe_callback: verb.transcribe_callback.clone(),
            status_callback: c.callback.clone(),
            deleted_at_ms: None,
        };
        // The row first: a crash after this point is recovered from it.
        self.push(Output::Persist(Persist::InsertRecording(row.clone())));
        c.row = Some(row);
        let io = self.next_io();
        self.push(Output::Recording {
            id: io,
            io: RecordingIo::Open {
                sid: c.sid.clone(),
                sample_rate: c.sample_rate,
                channels: 1,
            },
        });
        c.phase = Phase::Opening {
            io,
            capture_start,
            held: Vec::new(),
        };
        (Activity::Capture(c), true)
    }

    pub(crate) fn capture_play_done(
        &mut self,
        mut c: Box<Capture<S>>,
        id: PlaybackId,
        now: Instant,
    ) -> Activity<S> {
        let _ = now;
        if matches!(c.phase, Phase::Beep(p) if p == id) {
            c.phase = Phase::Starting;
        }
        Activity::Capture(c)
    }

    pub(crate) fn capture_io(
        &mut self,
        mut c: Box<Capture<S>>,
        id: IoId,
        result: FetchResult<S>,
        now: Instant,
    ) -> Activity<S> {
        match (&mut c.phase, result) {
            (Phase::Opening { io, .. }, FetchResult::RecordingOpened(opened)) if *io == id => {
                let Phase::Opening {
                    capture_start,
                    held,
                    ..
                } = std::mem::replace(&mut c.phase, Phase::Starting)
                else {
                    return Activity::Capture(c);
                };
                match opened {
                    Ok(writer) => self.capture_opened(c, writer, capture_start, held, now),
                    Err(e) => {
                        tracing::error!(recording = %c.sid, error = %e, "cannot create the recording file");
                        if let Some(row) = c.row.as_mut() {
                            row.status = RecordingStatus::Absent;
                            row.duration_secs = Some(0);
                            let row = row.clone();
                            self.push(Output::Persist(Persist::UpdateRecording(row)));
                        }
                        let captured = self.captured(&c, 0, StopReason::Hangup, true);
                        self.capture_over(c, Some(captured), now)
                    }
                }
            }
            (
                Phase::Finalizing { io, reason },
                FetchResult::RecordingFinalized {
                    summary,
                    repaired_samples,
                },
            ) if *io == id => {
                let reason = *reason;
                self.capture_finalized(c, reason, summary, repaired_samples, now)
            }
            _ => Activity::Capture(c),
        }
    }

    fn capture_opened(
        &mut self,
        mut c: Box<Capture<S>>,
        writer: record_engine::WavWriter<S>,
        capture_start: u64,
        held: Vec<MediaItem>,
        now: Instant,
    ) -> Activity<S> {
        let record = &self.config.record;
        let verb = &c.verb;
        let scale = u64::from((c.sample_rate / SAMPLE_RATE).max(1));
        let params = RecordParams {
            sample_rate: c.sample_rate,
            silence_timeout_secs: (verb.timeout_secs > 0).then_some(verb.timeout_secs),
            initial_silence_timeout_secs: c.options.initial_silence_secs,
            max_length_secs: verb.max_length_secs,
            finish_on_key: verb.finish_on_key.clone(),
            trim_silence: verb.trim_silence,
            trim_padding_ms: record.trim_padding_ms,
            finish_key_guard_ms: record.finish_key_guard_ms,
        };
        let detector = SpeechDetector::with_sample_rate(
            SpeechConfig {
                threshold_dbfs: record.silence_threshold_dbfs,
                vad_mode: record.vad_mode,
            },
            c.sample_rate,
        );
        let mut recorder = Box::new(Recorder::new(
            params,
            detector,
            writer,
            capture_start * scale,
        ));
        tracing::info!(recording = %c.sid, capture_start, max_length = verb.max_length_secs, timeout = verb.timeout_secs, finish_on_key = %verb.finish_on_key, "recording");
        let mut io_error = None;
        for frame in std::mem::take(&mut self.legs[c.leg].preroll) {
            if let Err(e) = push_frame(&mut recorder, scale, &frame) {
                io_error = Some(e);
            }
        }
        if let (Some(cb), Some(row)) = (
            c.callback.as_ref().filter(|cb| cb.in_progress),
            c.row.as_ref(),
        ) {
            let params = status_params(row, RecordingStatus::InProgress, &c.url);
            let (url, method) = (cb.url.clone(), cb.method);
            self.push(Output::Callback {
                group: c.sid.to_string(),
                url,
                method,
                params,
            });
        }
        let first_audio_by = (!self.legs[c.leg].heard_audio)
            .then_some(capture_start + samples_in(FIRST_PACKET_GRACE));
        c.phase = Phase::Capturing {
            recorder,
            scale,
            anchor: (capture_start, now),
            first_audio_by,
            io_error,
        };
        let mut activity = Activity::Capture(c);
        for item in held {
            activity = match activity {
                Activity::Capture(c) => self.capture_item(c, item, now),
                other => other,
            };
        }
        activity
    }

    /// Audio or a key during the capture.
    pub(crate) fn capture_item(
        &mut self,
        mut c: Box<Capture<S>>,
        item: MediaItem,
        now: Instant,
    ) -> Activity<S> {
        match &mut c.phase {
            Phase::Opening { held, .. } => held.push(item),
            Phase::Capturing {
                recorder,
                scale,
                anchor,
                first_audio_by,
                io_error,
            } => {
                if recorder.stop_reason().is_some() || io_error.is_some() {
                    if let MediaItem::Audio(frame) = item {
                        self.legs[c.leg].idle_audio(frame);
                    }
                    return Activity::Capture(c);
                }
                match item {
                    MediaItem::Audio(frame) => {
                        let leg = &mut self.legs[c.leg];
                        let end = frame.end();
                        if !frame.filled {
                            *anchor = (end, now);
                            leg.heard_audio = true;
                        }
                        if end > leg.timeline_end {
                            leg.timeline_end = end;
                        }
                        if let Some(by) = *first_audio_by {
                            if frame.filled {
                                // The wait for the first packet: the recorder fills it if needed.
                                return Activity::Capture(c);
                            }
                            *first_audio_by = None;
                            if frame.position <= by {
                                recorder.postpone_capture_start(frame.position * *scale);
                            }
                        }
                        if let Err(e) = push_frame(recorder, *scale, &frame) {
                            *io_error = Some(e);
                        }
                    }
                    MediaItem::Dtmf(event) => {
                        recorder.push_dtmf(event.digit, event.position * *scale);
                    }
                }
            }
            _ => {
                if let MediaItem::Audio(frame) = item {
                    self.legs[c.leg].idle_audio(frame);
                }
            }
        }
        Activity::Capture(c)
    }

    /// Finalize (trim/cut/header) before anybody is told about the recording.
    fn finalize(&mut self, mut c: Box<Capture<S>>) -> Activity<S> {
        let Phase::Capturing { recorder, .. } = std::mem::replace(&mut c.phase, Phase::Starting)
        else {
            return Activity::Capture(c);
        };
        let reason = recorder.stop_reason().unwrap_or(StopReason::Hangup);
        let io = self.next_io();
        self.push(Output::Recording {
            id: io,
            io: RecordingIo::Finalize {
                sid: c.sid.clone(),
                recorder,
            },
        });
        c.phase = Phase::Finalizing { io, reason };
        Activity::Capture(c)
    }

    fn capture_finalized(
        &mut self,
        mut c: Box<Capture<S>>,
        reason: StopReason,
        summary: Option<RecordSummary>,
        repaired_samples: u64,
        now: Instant,
    ) -> Activity<S> {
        // Whatever happened, keep the audio that reached the disk.
        let (duration, samples, absent_reason) = match &summary {
            Some(s) => (s.duration_secs, s.samples, s.absent.map(|a| a.error_code())),
            None => {
                let rate = u64::from(c.sample_rate.max(1));
                let secs = ((repaired_samples + rate / 2) / rate) as u32;
                (
                    secs,
                    repaired_samples,
                    (repaired_samples == 0).then_some(16102),
                )
            }
        };
        let absent = absent_reason.is_some();
        let ms = self.unix_ms(now);
        let Some(mut row) = c.row.take() else {
            return self.capture_over(c, None, now);
        };
        if let Some(s) = &summary {
            // The file begins where trim-silence (or kept pre-roll) put it, not at capture
            // start: its start time is what places transcript utterances on the call's clock.
            // Samples of the file's rate (16 kHz for a wideband leg) to milliseconds.
            row.start_time_ms += s.kept_start_offset * 1000 / i64::from(c.sample_rate.max(1));
        }
        row.status = if absent {
            RecordingStatus::Absent
        } else {
            RecordingStatus::Completed
        };
        row.duration_secs = Some(duration);
        row.error_code = absent_reason;
        row.date_updated_ms = ms;
        self.push(Output::Persist(Persist::UpdateRecording(row.clone())));
        tracing::info!(recording = %c.sid, ?reason, duration, samples, absent = ?absent_reason, "recording finished");
        if let Some(cb) = c
            .callback
            .as_ref()
            .filter(|cb| if absent { cb.absent } else { cb.completed })
        {
            let params = status_params(&row, row.status, &c.url);
            let (url, method) = (cb.url.clone(), cb.method);
            self.push(Output::Callback {
                group: c.sid.to_string(),
                url,
                method,
                params,
            });
        }
        if c.verb.transcribe && !absent {
            let job = TranscriptionRecord {
                sid: self.new_transcription_sid(),
                account_sid: row.account_sid.clone(),
                recording_sid: c.sid.clone(),
                call_sid: row.call_sid.clone(),
                status: TranscriptionStatus::Queued,
                text: None,
                language: Some(
                    c.verb
                        .transcribe_language
                        .clone()
                        .unwrap_or_else(|| self.config.transcription_language.clone()),
                ),
                engine: None,
                error: None,
                audio_secs: None,
                processing_secs: None,
                duration_secs: Some(duration),
                kind: TranscriptionRecord::FAST.into(),
                transcribe_callback: c.verb.transcribe_callback.clone(),
                date_created_ms: ms,
                date_updated_ms: ms,
            };
            self.push(Output::Persist(Persist::QueueTranscription(job)));
        }
        if reason == StopReason::Redirected {
            return self.capture_over(c, None, now);
        }
        let mut captured = self.captured(&c, duration, reason, absent);
        captured.samples = samples;
        self.capture_over(c, Some(captured), now)
    }

    fn captured(
        &self,
        c: &Capture<S>,
        duration: u32,
        reason: StopReason,
        absent: bool,
    ) -> Captured {
        Captured {
            result: RecordResult {
                recording_sid: c.sid.clone(),
                recording_url: c.url.clone(),
                duration_secs: duration,
                digits: reason.digits(),
                absent,
                hung_up: reason == StopReason::Hangup,
            },
            reason,
            samples: 0,
        }
    }

    /// The capture is over: `None` when it was stopped from our side (no action request).
    fn capture_over(
        &mut self,
        c: Box<Capture<S>>,
        captured: Option<Captured>,
        now: Instant,
    ) -> Activity<S> {
        match c.then {
            AfterCapture::Twiml => match captured {
                Some(captured) => {
                    if let crate::Program::Twiml(flow) = &mut self.program_mut() {
                        flow.record_finished(captured.result);
                    }
                    Activity::Idle
                }
                None => self.twiml_interrupted(now),
            },
            AfterCapture::Bot { id } => {
                self.bot_capture_finished(&id, captured);
                Activity::Idle
            }
        }
    }
}

/// One frame into the recorder, whose samples are `scale` per timeline sample; a filled frame
/// is silence over its whole span (which may be longer than the 20 ms it carries). A frame of
/// the other bandwidth (a codec change mid-call) is converted: samples repeated or dropped.
fn push_frame<S: WavStorage>(
    recorder: &mut Recorder<S>,
    scale: u64,
    frame: &AudioFrame,
) -> Result<(), WavError> {
    if frame.filled {
        return push_silence(recorder, scale, frame.position, u64::from(frame.len));
    }
    let at = frame.position * scale;
    let pcm = frame.pcm();
    match (scale, frame.wide) {
        (2, false) => {
            let mut wide = [0i16; WIDE_FRAME_SAMPLES];
            for (i, s) in pcm.iter().enumerate() {
                wide[2 * i] = *s;
                wide[2 * i + 1] = *s;
            }
            recorder.push_audio(at, &wide[..2 * pcm.len()]).map(drop)
        }
        (1, true) => {
            let mut narrow = [0i16; FRAME_SAMPLES];
            for (i, pair) in pcm.chunks(2).enumerate() {
                narrow[i] = pair[0];
            }
            recorder.push_audio(at, &narrow[..pcm.len() / 2]).map(drop)
        }
        _ => recorder.push_audio(at, pcm).map(drop),
    }
}

/// `len` timeline samples of silence from `position`.
fn push_silence<S: WavStorage>(
    recorder: &mut Recorder<S>,
    scale: u64,
    position: u64,
    len: u64,
) -> Result<(), WavError> {
    const ZEROS: [i16; WIDE_FRAME_SAMPLES] = [0; WIDE_FRAME_SAMPLES];
    let (mut at, end) = (position * scale, (position + len) * scale);
    while at < end && recorder.stop_reason().is_none() {
        let n = (end - at).min(ZEROS.len() as u64) as usize;
        recorder.push_audio(at, &ZEROS[..n])?;
        at += n as u64;
    }
    Ok(())
}
