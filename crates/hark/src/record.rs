//! `<Record>` on a live call (SPEC §3.2): beep, capture from the ring into the record-engine
//! state machine, finalize before any webhook, then status callbacks.

use std::time::Duration;

use control::twiml::RecordVerb;
use control::{HttpMethod, RecordResult};
use media_engine::MediaItem;
use record_engine::{RecordParams, Recorder, SpeechConfig, SpeechDetector, StopReason, WavWriter};
use tokio::time::Instant;

use crate::call::{Call, DRAIN_INTERVAL};
use crate::sids::{new_sid, rfc2822_now};
use crate::storage::{RecordingMeta, StatusCallback};

/// When no audio arrives at all (silence suppression, a dead stream), the recorder's timeline is
/// advanced with silence this far behind real time, so silence and maxLength still end it.
const STALL_SLACK: Duration = Duration::from_millis(500);

impl Call {
    /// Runs one `<Record>`; `None` when the daemon is shutting down (no action request).
    pub(crate) async fn record(&mut self, verb: &RecordVerb) -> Option<RecordResult> {
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
        // Everything heard so far is pre-roll; capture starts now.
        self.drain_idle();
        let capture_start = self.timeline_end;
        let config = &self.shared.config;
        let callback = verb
            .recording_status_callback
            .as_ref()
            .map(|url| StatusCallback {
                url: url.clone(),
                method: verb.recording_status_callback_method.as_str().to_string(),
                in_progress: verb.recording_status_callback_events.in_progress,
                completed: verb.recording_status_callback_events.completed,
                absent: verb.recording_status_callback_events.absent,
            });
        let start_time = rfc2822_now();
        let mut meta = RecordingMeta {
            sid: sid.clone(),
            account_sid: self.info.account_sid.clone(),
            call_sid: self.info.call_sid.clone(),
            status: "in-progress".into(),
            start_time: start_time.clone(),
            date_created: start_time.clone(),
            duration: None,
            error_code: None,
            source: "RecordVerb".into(),
            channels: 1,
            status_callback: callback.clone(),
            final_callback_done: false,
            transcribe: verb.transcribe,
            transcribe_callback: verb.transcribe_callback.clone(),
        };
        let store = self.shared.store.clone();
        let wav_path = store.wav_path(&sid);
        let created = store.write_meta(&meta).and_then(|_| {
            // Read access too: finalizing moves the kept audio to the front of the file.
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&wav_path)
        });
        let writer = match created
            .map_err(record_engine::WavError::from)
            .and_then(|f| WavWriter::create(f, 8000))
        {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(recording = %sid, path = %wav_path.display(), error = %e, "cannot create the recording file");
                return Some(self.result(&sid, &recording_url, 0, StopReason::Hangup, true));
            }
        };
        let params = RecordParams {
            sample_rate: 8000,
            silence_timeout_secs: (verb.timeout_secs > 0).then_some(verb.timeout_secs),
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
            if let Err(e) = recorder.push_audio(frame.position, frame.pcm()) {
                io_error = Some(e);
            }
        }
        if let Some(cb) = callback.as_ref().filter(|cb| cb.in_progress) {
            let params = self.status_params(&meta, "in-progress", &recording_url);
            self.shared.webhooks.spawn_callback(
                cb.url.clone(),
                method_of(&cb.method),
                params,
                |_| {},
            );
        }

        // Capture until a stop condition.
        let mut drain = tokio::time::interval(DRAIN_INTERVAL);
        let mut anchor = (capture_start, Instant::now());
        let silence = [0i16; media_engine::FRAME_SAMPLES];
        while recorder.stop_reason().is_none() && io_error.is_none() {
            if self.hung_up() {
                self.drain_into(&mut recorder, &mut anchor, &mut io_error);
                recorder.stop(StopReason::Hangup);
                break;
            }
            if *self.shutdown.borrow() {
                self.drain_into(&mut recorder, &mut anchor, &mut io_error);
                recorder.stop(StopReason::Redirected);
                break;
            }
            tokio::select! {
                _ = drain.tick() => {
                    self.drain_into(&mut recorder, &mut anchor, &mut io_error);
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
        let summary = match finished {
            Ok(Ok((summary, _file))) => summary,
            Ok(Err(e)) => {
                tracing::error!(recording = %sid, error = %e, "finalizing the recording failed");
                let _ = record_engine::repair_wav_file(&wav_path);
                meta.status = "completed".into();
                let _ = store.write_meta(&meta);
                return Some(self.result(&sid, &recording_url, 0, reason, false));
            }
            Err(e) => {
                tracing::error!(recording = %sid, error = %e, "finalize task failed");
                return Some(self.result(&sid, &recording_url, 0, reason, true));
            }
        };
        let absent = summary.absent.is_some();
        meta.status = if absent { "absent" } else { "completed" }.into();
        meta.duration = Some(summary.duration_secs);
        meta.error_code = summary.absent.map(|a| a.error_code());
        let due = callback
            .as_ref()
            .is_some_and(|cb| if absent { cb.absent } else { cb.completed });
        meta.final_callback_done = !due;
        if let Err(e) = store.write_meta(&meta) {
            tracing::error!(recording = %sid, error = %e, "cannot write the recording sidecar");
        }
        tracing::info!(recording = %sid, ?reason, duration = summary.duration_secs, samples = summary.samples, absent = ?summary.absent, "recording finished");
        if due {
            if let Some(cb) = &callback {
                let event = if absent { "absent" } else { "completed" };
                let params = self.status_params(&meta, event, &recording_url);
                let store = store.clone();
                let mut done_meta = meta.clone();
                self.shared.webhooks.spawn_callback(
                    cb.url.clone(),
                    method_of(&cb.method),
                    params,
                    move |delivered| {
                        if delivered {
                            done_meta.final_callback_done = true;
                            let _ = store.write_meta(&done_meta);
                        }
                    },
                );
            }
        }
        if reason == StopReason::Redirected {
            return None;
        }
        Some(self.result(&sid, &recording_url, summary.duration_secs, reason, absent))
    }

    fn result(
        &self,
        sid: &str,
        url: &str,
        duration: u32,
        reason: StopReason,
        absent: bool,
    ) -> RecordResult {
        RecordResult {
            recording_sid: sid.to_string(),
            recording_url: url.to_string(),
            duration_secs: duration,
            digits: reason.digits(),
            absent,
            hung_up: reason == StopReason::Hangup,
        }
    }

    pub(crate) fn status_params(
        &self,
        meta: &RecordingMeta,
        status: &str,
        url: &str,
    ) -> Vec<(String, String)> {
        status_params(meta, status, url)
    }

    fn drain_into<S: record_engine::wav::WavStorage>(
        &mut self,
        recorder: &mut Recorder<S>,
        anchor: &mut (u64, Instant),
        io_error: &mut Option<record_engine::WavError>,
    ) {
        while let Some(item) = self.media.ring.pop() {
            match item {
                MediaItem::Audio(frame) => {
                    let end = frame.position + u64::from(frame.len);
                    if !frame.filled {
                        *anchor = (end, Instant::now());
                    }
                    if end > self.timeline_end {
                        self.timeline_end = end;
                    }
                    if let Err(e) = recorder.push_audio(frame.position, frame.pcm()) {
                        *io_error = Some(e);
                        return;
                    }
                }
                MediaItem::Dtmf(event) => {
                    tracing::debug!(digit = %event.digit, position = event.position, source = ?event.source, "DTMF");
                    recorder.push_dtmf(event.digit, event.position);
                }
            }
            if recorder.stop_reason().is_some() {
                return;
            }
        }
    }
}

/// SPEC §3.6 parameters.
pub(crate) fn status_params(
    meta: &RecordingMeta,
    status: &str,
    url: &str,
) -> Vec<(String, String)> {
    let duration = match status {
        "completed" => meta.duration.unwrap_or(0).to_string(),
        _ => "0".to_string(),
    };
    vec![
        ("AccountSid".into(), meta.account_sid.clone()),
        ("CallSid".into(), meta.call_sid.clone()),
        ("RecordingSid".into(), meta.sid.clone()),
        ("RecordingUrl".into(), url.to_string()),
        ("RecordingStatus".into(), status.to_string()),
        ("RecordingDuration".into(), duration),
        ("RecordingChannels".into(), meta.channels.to_string()),
        ("RecordingSource".into(), meta.source.clone()),
        ("RecordingStartTime".into(), meta.start_time.clone()),
        ("ErrorCode".into(), meta.error_code.unwrap_or(0).to_string()),
    ]
}

pub(crate) fn method_of(text: &str) -> HttpMethod {
    if text.eq_ignore_ascii_case("GET") {
        HttpMethod::Get
    } else {
        HttpMethod::Post
    }
}
