//! `<Record>` on a live call (SPEC §3.2): beep, capture from the ring into the record-engine
//! state machine, finalize before any webhook, then status callbacks.

use std::time::Duration;

use control::twiml::RecordVerb;
use control::{HttpMethod, RecordResult};
use media_engine::MediaItem;
use record_engine::{RecordParams, Recorder, SpeechConfig, SpeechDetector, StopReason, WavWriter};
use tokio::time::Instant;

use store::{RecordingRecord, StatusCallbackSpec};

use crate::call::{Call, DRAIN_INTERVAL};
use crate::outbox::now_ms;
use crate::sids::new_sid;
use crate::storage::RecordingFiles;

/// When no audio arrives at all (silence suppression, a dead stream), the recorder's timeline is
/// advanced with silence this far behind real time, so silence and maxLength still end it.
/// Generous, so audio that is only late (a starved sender) is not overwritten.
const STALL_SLACK: Duration = Duration::from_millis(1000);

/// A caller whose media had not begun at capture start and whose first packet comes within
/// this is recorded from that packet, as if it had been flowing (no sliver of silence before
/// it); a later first packet is placed at its arrival, after silence from capture start.
const FIRST_PACKET_GRACE: Duration = Duration::from_millis(200);

/// How a capture differs between `<Record>` and a bot's `recordResponse`.
pub(crate) struct CaptureOptions {
    /// Graph's initialSilenceTimeoutInSeconds; `None` = Twilio (silence timer from the start).
    pub initial_silence_secs: Option<u32>,
    /// The recording's `source`.
    pub source: &'static str,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self {
            initial_silence_secs: None,
            source: "RecordVerb",
        }
    }
}

/// A finished capture: what `<Record>` reports, plus the stop reason and kept samples.
pub(crate) struct Captured {
    pub result: RecordResult,
    pub reason: StopReason,
    pub samples: u64,
}

impl Call {
    /// Runs one `<Record>`; `None` when the daemon is shutting down or the call was taken
    /// elsewhere (no action request).
    pub(crate) async fn record(&mut self, verb: &RecordVerb) -> Option<RecordResult> {
        self.capture(verb, &CaptureOptions::default())
            .await
            .map(|c| c.result)
    }

    /// `<Record>` and the bots' `recordResponse`: beep, capture, finalize, callbacks.
    pub(crate) async fn capture(
        &mut self,
        verb: &RecordVerb,
        options: &CaptureOptions,
    ) -> Option<Captured> {
        let sid = new_sid("RE");
        let recording_url = format!(
            "{}/2010-04-01/Accounts/{}/Recordings/{}",
            self.shared.config.http_public_url, self.info.account_sid, sid
        );
        if verb.play_beep {
            let beep = self.shared.beep.clone();
            let _ = self.play(beep, 1).await;
        }
        if self.hung_up() {
            // Gone before capture began: nothing was recorded and nothing is requested.
            return Some(self.result(&sid, &recording_url, 0, StopReason::Hangup, true));
        }
        if self.gone() {
            return None;
        }
        // Everything heard so far is pre-roll; capture starts now. Audio that flows ends where
        // the ring has got to; media that stalled or has not started yet (a muted phone, a
        // gateway that opens media late) is behind the clock, and capture starts at the
        // present: the caller's first packets, placed at their arrival, are all after it.
        // The clock first: a packet that lands after this read is placed after it.
        let clock = self.media_clock();
        self.drain_idle();
        let stall = STALL_SLACK.as_millis() as u64 * u64::from(media_engine::SAMPLE_RATE) / 1000;
        let capture_start = if !self.heard_audio || clock.saturating_sub(self.timeline_end) > stall
        {
            clock
        } else {
            self.timeline_end
        };
        self.timeline_end = capture_start.max(self.timeline_end);
        let callback = verb
            .recording_status_callback
            .as_ref()
            .map(|url| StatusCallbackSpec {
                url: url.clone(),
                method: verb.recording_status_callback_method.as_str().to_string(),
                in_progress: verb.recording_status_callback_events.in_progress,
                completed: verb.recording_status_callback_events.completed,
                absent: verb.recording_status_callback_events.absent,
            });
        let now = now_ms();
        let mut row = RecordingRecord {
            sid: sid.clone(),
            account_sid: self.info.account_sid.clone(),
            call_sid: self.info.call_sid.clone(),
            status: "in-progress".into(),
            source: options.source.into(),
            channels: 1,
            date_created_ms: now,
            date_updated_ms: now,
            start_time_ms: now,
            duration_secs: None,
            error_code: None,
            media_file: RecordingFiles::wav_name(&sid),
            transcribe: verb.transcribe,
            transcribe_callback: verb.transcribe_callback.clone(),
            status_callback: callback.clone(),
            deleted_at_ms: None,
        };
        let wav_path = self.shared.files.wav_path(&sid);
        // The row first: a crash after this point is recovered from it.
        let inserted = row.clone();
        if self
            .shared
            .db(move |s| s.insert_recording(&inserted))
            .await
            .is_none()
        {
            tracing::error!(recording = %sid, "recording not in the database; recording anyway");
        }
        // Read access too: finalizing moves the kept audio to the front of the file. The header
        // is rewritten every second of audio, so a crash leaves a file that plays that far.
        let created = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&wav_path);
        let writer = match created
            .map_err(record_engine::WavError::from)
            .and_then(|f| {
                WavWriter::create_encoded(f, 8000, self.shared.config.record.wav_encoding)
                    .map(|w| w.with_sync_every(8000))
            }) {
            Ok(w) => w,
            Err(e) => {
                http_api::Metrics::add(&self.shared.metrics.disk_errors, 1);
                tracing::error!(recording = %sid, path = %wav_path.display(), error = %e, "cannot create the recording file");
                row.status = "absent".into();
                row.duration_secs = Some(0);
                self.shared.db(move |s| s.update_recording(&row)).await;
                return Some(self.result(&sid, &recording_url, 0, StopReason::Hangup, true));
            }
        };
        let config = &self.shared.config;
        let params = RecordParams {
            sample_rate: 8000,
            silence_timeout_secs: (verb.timeout_secs > 0).then_some(verb.timeout_secs),
            initial_silence_timeout_secs: options.initial_silence_secs,
            max_length_secs: verb.max_length_secs,
            finish_on_key: verb.finish_on_key.clone(),
            trim_silence: verb.trim_silence,
            trim_padding_ms: config.record.trim_padding_ms,
            finish_key_guard_ms: config.record.finish_key_guard_ms,
        };
        let detector = SpeechDetector::new(SpeechConfig {
            threshold_dbfs: config.record.silence_threshold_dbfs,
            vad_mode: config.record.vad_mode,
        });
        let mut recorder = Recorder::new(params, detector, writer, capture_start);
        tracing::info!(recording = %sid, capture_start, max_length = verb.max_length_secs, timeout = verb.timeout_secs, finish_on_key = %verb.finish_on_key, "recording");
        let mut io_error = None;
        for frame in std::mem::take(&mut self.preroll) {
            if let Err(e) = push_frame(&mut recorder, &frame) {
                io_error = Some(e);
            }
        }
        self.shared
            .metrics
            .recordings_in_progress
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(cb) = callback.as_ref().filter(|cb| cb.in_progress) {
            let params = status_params(&row, "in-progress", &recording_url);
            self.shared
                .outbox
                .enqueue(&sid, &cb.url, method_of(&cb.method), params)
                .await;
        }

        // Capture until a stop condition.
        let mut drain = tokio::time::interval(DRAIN_INTERVAL);
        let mut anchor = (capture_start, Instant::now());
        let grace =
            FIRST_PACKET_GRACE.as_millis() as u64 * u64::from(media_engine::SAMPLE_RATE) / 1000;
        let mut first_audio_by = (!self.heard_audio).then_some(capture_start + grace);
        let silence = [0i16; media_engine::FRAME_SAMPLES];
        while recorder.stop_reason().is_none() && io_error.is_none() {
            if self.hung_up() {
                self.drain_into(
                    &mut recorder,
                    &mut anchor,
                    &mut first_audio_by,
                    &mut io_error,
                );
                recorder.stop(StopReason::Hangup);
                break;
            }
            if self.interrupted() {
                self.drain_into(
                    &mut recorder,
                    &mut anchor,
                    &mut first_audio_by,
                    &mut io_error,
                );
                recorder.stop(StopReason::Redirected);
                break;
            }
            tokio::select! {
                _ = drain.tick() => {
                    self.drain_into(&mut recorder, &mut anchor, &mut first_audio_by, &mut io_error);
                    if !self.bot.tones.is_empty() {
                        self.flush_tones();
                    }
                    // No audio for a while: advance with silence behind real time.
                    let stalled = anchor.1.elapsed().saturating_sub(STALL_SLACK);
                    let target = anchor.0 + stalled.as_millis() as u64 * 8;
                    while self.timeline_end < target && recorder.stop_reason().is_none() {
                        let len = (target - self.timeline_end).min(silence.len() as u64) as usize;
                        if let Err(e) = recorder.push_audio(self.timeline_end, &silence[..len]) {
                            io_error = Some(e);
                            break;
                        }
                        self.timeline_end += len as u64;
                    }
                }
                event = self.events.recv() => self.on_event(event),
                notice = self.media.notices.recv() => self.on_notice(notice),
                msg = self.control.recv() => self.on_control(msg),
                _ = self.shutdown.changed() => {}
            }
        }
        if let Some(e) = &io_error {
            tracing::error!(recording = %sid, error = %e, "writing the recording failed; keeping what was written");
            recorder.stop(StopReason::Hangup);
        }
        let reason = recorder.stop_reason().unwrap_or(StopReason::Hangup);

        // Finalize (trim/cut/header) before anybody is told about the recording.
        let finished = tokio::task::spawn_blocking(move || recorder.finish()).await;
        self.shared
            .metrics
            .recordings_in_progress
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let summary = match finished {
            Ok(Ok((summary, _file))) => Some(summary),
            Ok(Err(e)) => {
                http_api::Metrics::add(&self.shared.metrics.disk_errors, 1);
                tracing::error!(recording = %sid, error = %e, "finalizing the recording failed; repairing what was written");
                None
            }
            Err(e) => {
                tracing::error!(recording = %sid, error = %e, "finalize task failed; repairing what was written");
                None
            }
        };
        // Whatever happened, keep the audio that reached the disk.
        let (duration, samples, absent_reason) = match &summary {
            Some(s) => (s.duration_secs, s.samples, s.absent.map(|a| a.error_code())),
            None => {
                let samples = match record_engine::repair_wav_file(&wav_path) {
                    Ok(
                        record_engine::RepairOutcome::Intact { samples }
                        | record_engine::RepairOutcome::Repaired { samples },
                    ) => samples,
                    Err(_) => 0,
                };
                let secs = ((samples + 4000) / 8000) as u32;
                (secs, samples, (samples == 0).then_some(16102))
            }
        };
        let absent = absent_reason.is_some();
        if let Some(s) = &summary {
            // The file begins where trim-silence (or kept pre-roll) put it, not at capture
            // start: its start time is what places transcript utterances on the call's clock.
            row.start_time_ms += s.kept_start_offset / 8;
        }
        row.status = if absent { "absent" } else { "completed" }.into();
        row.duration_secs = Some(duration);
        row.error_code = absent_reason;
        row.date_updated_ms = now_ms();
        let updated = row.clone();
        self.shared.db(move |s| s.update_recording(&updated)).await;
        tracing::info!(recording = %sid, ?reason, duration, samples, absent = ?absent_reason, "recording finished");
        if let Some(cb) = callback
            .as_ref()
            .filter(|cb| if absent { cb.absent } else { cb.completed })
        {
            let event = if absent { "absent" } else { "completed" };
            let params = status_params(&row, event, &recording_url);
            self.shared
                .outbox
                .enqueue(&sid, &cb.url, method_of(&cb.method), params)
                .await;
        }
        if verb.transcribe && !absent {
            let now = now_ms();
            let job = store::TranscriptionRecord {
                sid: new_sid("TR"),
                account_sid: row.account_sid.clone(),
                recording_sid: sid.clone(),
                call_sid: row.call_sid.clone(),
                status: store::TranscriptionRecord::QUEUED.into(),
                text: None,
                language: Some(
                    verb.transcribe_language
                        .clone()
                        .unwrap_or_else(|| self.shared.config.transcription.language.clone()),
                ),
                engine: None,
                error: None,
                audio_secs: None,
                processing_secs: None,
                duration_secs: Some(duration),
                kind: store::TranscriptionRecord::FAST.into(),
                transcribe_callback: verb.transcribe_callback.clone(),
                date_created_ms: now,
                date_updated_ms: now,
            };
            self.shared.transcriber.queue(&self.shared, job).await;
        }
        if reason == StopReason::Redirected {
            return None;
        }
        let mut captured = self.result(&sid, &recording_url, duration, reason, absent);
        captured.samples = samples;
        Some(captured)
    }

    fn result(
        &self,
        sid: &str,
        url: &str,
        duration: u32,
        reason: StopReason,
        absent: bool,
    ) -> Captured {
        Captured {
            result: RecordResult {
                recording_sid: sid.to_string(),
                recording_url: url.to_string(),
                duration_secs: duration,
                digits: reason.digits(),
                absent,
                hung_up: reason == StopReason::Hangup,
            },
            reason,
            samples: 0,
        }
    }

    fn drain_into<S: record_engine::wav::WavStorage>(
        &mut self,
        recorder: &mut Recorder<S>,
        anchor: &mut (u64, Instant),
        first_audio_by: &mut Option<u64>,
        io_error: &mut Option<record_engine::WavError>,
    ) {
        while let Some(item) = self.media.ring.pop() {
            match item {
                MediaItem::Audio(frame) => {
                    let end = frame.position + u64::from(frame.len);
                    if !frame.filled {
                        *anchor = (end, Instant::now());
                        self.heard_audio = true;
                    }
                    if end > self.timeline_end {
                        self.timeline_end = end;
                    }
                    if let Some(by) = *first_audio_by {
                        if frame.filled {
                            // The wait for the first packet: the recorder fills it if needed.
                            continue;
                        }
                        *first_audio_by = None;
                        if frame.position <= by {
                            recorder.postpone_capture_start(frame.position);
                        }
                    }
                    if let Err(e) = push_frame(recorder, &frame) {
                        *io_error = Some(e);
                        return;
                    }
                }
                MediaItem::Dtmf(event) => {
                    tracing::debug!(digit = %event.digit, position = event.position, source = ?event.source, "DTMF");
                    recorder.push_dtmf(event.digit, event.position);
                    if self.bot.tones_subscribed {
                        self.bot.tones.push_back(event.digit);
                    }
                }
            }
            if recorder.stop_reason().is_some() {
                return;
            }
        }
    }
}

/// One frame into the recorder; a filled frame is silence over its whole span (which may be
/// longer than the 160 samples it carries).
fn push_frame<S: record_engine::wav::WavStorage>(
    recorder: &mut Recorder<S>,
    frame: &media_engine::AudioFrame,
) -> Result<(), record_engine::WavError> {
    if !frame.filled {
        return recorder.push_audio(frame.position, frame.pcm()).map(drop);
    }
    const ZEROS: [i16; media_engine::FRAME_SAMPLES] = [0; media_engine::FRAME_SAMPLES];
    let mut at = frame.position;
    while at < frame.end() && recorder.stop_reason().is_none() {
        let len = (frame.end() - at).min(ZEROS.len() as u64) as usize;
        recorder.push_audio(at, &ZEROS[..len])?;
        at += len as u64;
    }
    Ok(())
}

/// SPEC §3.6 parameters.
pub(crate) fn status_params(
    row: &RecordingRecord,
    status: &str,
    url: &str,
) -> Vec<(String, String)> {
    let duration = match status {
        "completed" => row.duration_secs.unwrap_or(0).to_string(),
        _ => "0".to_string(),
    };
    vec![
        ("AccountSid".into(), row.account_sid.clone()),
        ("CallSid".into(), row.call_sid.clone()),
        ("RecordingSid".into(), row.sid.clone()),
        ("RecordingUrl".into(), url.to_string()),
        ("RecordingStatus".into(), status.to_string()),
        ("RecordingDuration".into(), duration),
        ("RecordingChannels".into(), row.channels.to_string()),
        ("RecordingSource".into(), row.source.clone()),
        (
            "RecordingStartTime".into(),
            crate::sids::rfc2822(row.start_time_ms),
        ),
        ("ErrorCode".into(), row.error_code.unwrap_or(0).to_string()),
    ]
}

pub(crate) fn method_of(text: &str) -> HttpMethod {
    if text.eq_ignore_ascii_case("GET") {
        HttpMethod::Get
    } else {
        HttpMethod::Post
    }
}
