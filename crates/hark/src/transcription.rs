//! The transcription queue (SPEC §3.7, issue 5): jobs are rows in the database (a restart resumes
//! them), run with bounded concurrency off the call path, and end `completed` with utterances or
//! `failed` with a reason; the `transcribeCallback` goes through the outbox.

use std::sync::Arc;

use control::params::standard_params;
use control::{CallInfo, CallStatus, HttpMethod};
use store::{TranscriptionRecord, TranscriptionStatus, Utterance};
use tokio::sync::{Notify, Semaphore};

use crate::outbox::now_ms;
use crate::services::Services;

/// Engine plus what the queue needs; cheap to clone.
#[derive(Clone)]
pub struct Transcriber {
    engine: Option<Arc<transcribe::Engine>>,
    wake: Arc<Notify>,
    slots: Arc<Semaphore>,
}

impl Transcriber {
    pub fn new(engine: Option<transcribe::Engine>, workers: usize) -> Self {
        Self {
            engine: engine.map(Arc::new),
            wake: Arc::new(Notify::new()),
            slots: Arc::new(Semaphore::new(workers.max(1))),
        }
    }

    /// Queues a transcription of a finished, non-empty recording.
    pub async fn queue(&self, shared: &Services, row: TranscriptionRecord) {
        let sid = row.sid.clone();
        if shared
            .db(move |s| s.insert_transcription(&row))
            .await
            .is_some()
        {
            tracing::info!(transcription = %sid, "transcription queued");
            self.wake.notify_one();
        }
    }

    /// Runs queued jobs until the process ends; jobs a crash left running are queued again.
    pub async fn run(self, shared: Arc<Services>) {
        if let Some(n) = shared
            .db(|s| s.requeue_transcriptions_in_progress(now_ms()))
            .await
        {
            if n > 0 {
                tracing::warn!(
                    jobs = n,
                    "transcriptions interrupted by a restart queued again"
                );
            }
        }
        loop {
            refresh_counts(&shared).await;
            let free = self.slots.available_permits().max(1) as u32;
            let queued = shared
                .db(move |s| s.next_queued_transcriptions(free))
                .await
                .unwrap_or_default();
            if queued.is_empty() {
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(2), self.wake.notified())
                        .await;
                continue;
            }
            for job in queued {
                let Ok(permit) = self.slots.clone().acquire_owned().await else {
                    return;
                };
                let sid = job.sid.clone();
                let claimed = shared
                    .db(move |s| s.start_transcription(&sid, now_ms()))
                    .await;
                if claimed != Some(true) {
                    continue; // deleted, or somebody else has it
                }
                let this = self.clone();
                let shared = shared.clone();
                tokio::spawn(async move {
                    this.process(&shared, job).await;
                    refresh_counts(&shared).await;
                    drop(permit);
                    this.wake.notify_one();
                });
            }
        }
    }

    async fn process(&self, shared: &Services, mut job: TranscriptionRecord) {
        job.status = TranscriptionStatus::InProgress;
        let result = self.transcribe(shared, &job).await;
        job.date_updated_ms = now_ms();
        let utterances = match result {
            Ok((transcript, utterances)) => {
                shared
                    .metrics
                    .transcription_finished(transcript.audio_secs, transcript.processing_secs);
                tracing::info!(transcription = %job.sid, engine = %transcript.engine, audio_s = transcript.audio_secs, rtf = transcript.rtf(), "transcription completed");
                job.status = TranscriptionStatus::Completed;
                job.text = Some(transcript.text);
                job.engine = Some(transcript.engine);
                job.audio_secs = Some(transcript.audio_secs);
                job.processing_secs = Some(transcript.processing_secs);
                utterances
            }
            Err(reason) => {
                tracing::warn!(transcription = %job.sid, reason = %reason, "transcription failed");
                job.status = TranscriptionStatus::Failed;
                job.error = Some(reason);
                Vec::new()
            }
        };
        let row = job.clone();
        shared
            .db(move |s| s.finish_transcription(&row, &utterances))
            .await;
        self.callback(shared, &job).await;
    }

    /// The engine run; a failure is a reason for the log and the row, never a panic.
    async fn transcribe(
        &self,
        shared: &Services,
        job: &TranscriptionRecord,
    ) -> Result<(transcribe::Transcript, Vec<Utterance>), String> {
        let Some(engine) = self.engine.clone() else {
            return Err(
                "no transcription engine is configured (transcription.engine = \"none\")".into(),
            );
        };
        let (account, recording_sid) = (job.account_sid.clone(), job.recording_sid.clone());
        let recording = shared
            .db(move |s| s.get_recording(&account, &recording_sid, false))
            .await
            .flatten()
            .ok_or_else(|| format!("recording {} is gone", job.recording_sid))?;
        let max = shared.config.transcription.max_seconds;
        let duration = recording.duration_secs.unwrap_or(0);
        if max > 0 && duration > max {
            return Err(format!(
                "the recording is {duration} s, over transcription.max_seconds = {max}"
            ));
        }
        let local = shared.files.path_of(&recording.media_file);
        // With object storage the local file goes once its upload is checked, possibly while
        // this job reads it: the job reads its own hard link to it (same bytes, no copy), or
        // a copy fetched from the bucket when the file is already gone (or another node
        // recorded it). Either is removed when the job ends.
        let fetched = match &shared.uploader {
            Some(uploader) => {
                let tmp = shared.files.fetched_path(recording.sid.as_str());
                match std::fs::hard_link(&local, &tmp) {
                    Ok(()) => Some(tmp),
                    Err(_) => {
                        uploader
                            .storage()
                            .download(&recording.media_file, &tmp)
                            .await
                            .map_err(|e| format!("fetching the recording: {e}"))?;
                        Some(tmp)
                    }
                }
            }
            None => None,
        };
        let path = fetched.clone().unwrap_or(local);
        let _remove_fetched = RemoveOnDrop(fetched);
        let read_path = path.clone();
        let channels = tokio::task::spawn_blocking(move || read_channels(&read_path))
            .await
            .map_err(|e| e.to_string())??;
        let settings = &shared.config.transcription;
        let language = job.language.clone().unwrap_or_default();
        let Some(split) = channels.split else {
            // One channel (a `<Record>`, a mixed conversation): the caller's words.
            let mut request = transcribe::Job::new(path, language);
            request.speech = channels.speech[0].clone();
            request.grammar = settings.phrases.clone();
            let transcript = engine
                .transcribe(&request)
                .await
                .map_err(|e| e.to_string())?;
            let utterances = to_rows(transcribe::utterances(&transcript, "caller"));
            return Ok((transcript, utterances));
        };
        // Two parties: each channel on its own, merged in time order by speaker.
        let labels = [
            settings.caller_label.as_str(),
            settings.callee_label.as_str(),
        ];
        let mut parts = Vec::with_capacity(2);
        let mut failure = None;
        for (i, channel) in split.iter().enumerate() {
            let mut request = transcribe::Job::new(channel, language.clone());
            request.speech = channels.speech[i].clone();
            request.grammar = settings.phrases.clone();
            match engine.transcribe(&request).await {
                Ok(t) => {
                    tracing::info!(transcription = %job.sid, channel = i + 1, speaker = labels[i], segments = t.segments.len(), spans = request.speech.len(), text = %t.text, "channel transcribed");
                    parts.push((labels[i], t))
                }
                Err(e) => failure = Some(format!("channel {}: {e}", i + 1)),
            }
        }
        for channel in &split {
            let _ = std::fs::remove_file(channel);
        }
        if let Some(reason) = failure {
            return Err(reason);
        }
        Ok(merge_speakers(parts))
    }

    /// `transcribeCallback` (always POST, SPEC §3.7) with the call's standard parameters.
    async fn callback(&self, shared: &Services, job: &TranscriptionRecord) {
        let Some(url) = job.transcribe_callback.clone() else {
            return;
        };
        let (account, call_sid) = (job.account_sid.clone(), job.call_sid.clone());
        let call = shared
            .db(move |s| s.get_call(&account, &call_sid))
            .await
            .flatten();
        let info = CallInfo {
            call_sid: job.call_sid.clone(),
            account_sid: job.account_sid.clone(),
            from: call.as_ref().map(|c| c.from.clone()).unwrap_or_default(),
            to: call.as_ref().map(|c| c.to.clone()).unwrap_or_default(),
            forwarded_from: None,
            caller_name: None,
            client: None,
            direction: call
                .as_ref()
                .map_or(store::Direction::Inbound, |c| c.direction),
        };
        let status = match call.as_ref().map(|c| c.status) {
            Some(CallStatus::InProgress) => CallStatus::InProgress,
            Some(CallStatus::Ringing) => CallStatus::Ringing,
            _ => CallStatus::Completed,
        };
        let base = format!(
            "{}/2010-04-01/Accounts/{}",
            shared.config.http_public_url, job.account_sid
        );
        let mut params = standard_params(&info, status);
        params.extend([
            ("TranscriptionSid".to_string(), job.sid.to_string()),
            (
                "TranscriptionText".to_string(),
                job.text.clone().unwrap_or_default(),
            ),
            (
                "TranscriptionStatus".to_string(),
                job.status.as_str().to_string(),
            ),
            (
                "TranscriptionUrl".to_string(),
                format!(
                    "{base}/Recordings/{}/Transcriptions/{}",
                    job.recording_sid, job.sid
                ),
            ),
            ("RecordingSid".to_string(), job.recording_sid.to_string()),
            (
                "RecordingUrl".to_string(),
                format!("{base}/Recordings/{}", job.recording_sid),
            ),
        ]);
        shared
            .outbox
            .enqueue(job.recording_sid.as_str(), &url, HttpMethod::Post, params)
            .await;
    }
}

fn to_rows(utterances: Vec<transcribe::Utterance>) -> Vec<Utterance> {
    utterances
        .into_iter()
        .map(|u| Utterance {
            order: u.order,
            start_sec: u.start_sec,
            duration_sec: u.duration_sec,
            speaker: u.speaker,
            text: u.text,
        })
        .collect()
}

/// A recording's channels as the engines take them.
struct Channels {
    /// Speech spans of each channel (one for a mono file).
    speech: Vec<Vec<(f64, f64)>>,
    /// A two-channel file: each channel as a mono WAV beside it (removed after).
    split: Option<[std::path::PathBuf; 2]>,
}

/// Reads the recording; a two-channel one is written out as two mono WAVs.
fn read_channels(path: &std::path::Path) -> Result<Channels, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let wav = record_engine::wav::Wav::parse(&bytes).map_err(|e| e.to_string())?;
    let rate = wav.header.sample_rate;
    if wav.header.channels != 2 {
        let pcm: Vec<i16> = wav.mono().collect();
        return Ok(Channels {
            speech: vec![transcribe::speech_spans(&pcm, rate)],
            split: None,
        });
    }
    let all = wav.samples();
    let mut speech = Vec::with_capacity(2);
    let mut files = Vec::with_capacity(2);
    for ch in 0..2 {
        let pcm: Vec<i16> = all.iter().skip(ch).step_by(2).copied().collect();
        speech.push(transcribe::speech_spans(&pcm, rate));
        let file = path.with_extension(format!("ch{}.wav", ch + 1));
        std::fs::write(&file, transcribe::wav::pcm16_wav(rate, &pcm))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        files.push(file);
    }
    let [a, b]: [std::path::PathBuf; 2] = files
        .try_into()
        .map_err(|_| "two channels expected".to_string())?;
    Ok(Channels {
        speech,
        split: Some([a, b]),
    })
}

/// Each speaker's transcript merged into one: utterances in time order (renumbered), the text
/// one `speaker: words` line per utterance.
fn merge_speakers(
    parts: Vec<(&str, transcribe::Transcript)>,
) -> (transcribe::Transcript, Vec<Utterance>) {
    let mut all: Vec<transcribe::Utterance> = parts
        .iter()
        .flat_map(|(label, t)| transcribe::utterances(t, label))
        .collect();
    all.sort_by(|a, b| a.start_sec.total_cmp(&b.start_sec));
    for (i, u) in all.iter_mut().enumerate() {
        u.order = i as u32 + 1;
    }
    let text = all
        .iter()
        .map(|u| format!("{}: {}", u.speaker, u.text))
        .collect::<Vec<_>>()
        .join("\n");
    let mut merged =
        parts
            .first()
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| transcribe::Transcript {
                text: String::new(),
                segments: Vec::new(),
                language: String::new(),
                engine: String::new(),
                audio_secs: 0.0,
                processing_secs: 0.0,
                chunks: 0,
            });
    merged.text = text;
    merged.segments = parts.iter().flat_map(|(_, t)| t.segments.clone()).collect();
    merged.audio_secs = parts.iter().map(|(_, t)| t.audio_secs).fold(0.0, f64::max);
    merged.processing_secs = parts.iter().map(|(_, t)| t.processing_secs).sum();
    merged.chunks = parts.iter().map(|(_, t)| t.chunks).sum();
    (merged, to_rows(all))
}

/// How often a transcription engine that is not ready is tried again (an operator may install
/// it while the daemon runs), and how often a ready one's state is re-read for `/healthz`.
const READINESS_RECHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// Logs at start whether the transcription engine is ready — its engine, model, versions and
/// threads, or why not and the one command that makes it ready — and keeps `/healthz` current.
pub fn watch_readiness(
    engine: Option<&transcribe::Engine>,
    config: &crate::config::Config,
    readiness: http_api::Readiness,
) {
    let offline = match engine {
        None => {
            tracing::info!("transcription is off (transcription.engine = \"none\")");
            readiness.set("transcription", true, serde_json::json!({"engine": "none"}));
            return;
        }
        Some(transcribe::Engine::Offline(e)) => e.clone(),
        Some(other) => {
            // Remote engines are checked by their first request; nothing runs here.
            tracing::info!(engine = %other.name(), "transcription engine configured");
            readiness.set(
                "transcription",
                true,
                serde_json::json!({"engine": other.name()}),
            );
            return;
        }
    };
    let workers = config.transcription.workers;
    let fix = install_command();
    readiness.set(
        "transcription",
        false,
        serde_json::json!({"engine": "offline", "state": "starting"}),
    );
    tokio::spawn(async move {
        let mut was_ready = None;
        loop {
            let status = match offline.status() {
                transcribe::EngineStatus::Ready(info) => Ok(info),
                _ => offline.warm_up().await.map_err(|e| e.to_string()),
            };
            let ready = status.is_ok();
            match &status {
                Ok(info) => {
                    if was_ready != Some(true) {
                        tracing::info!(
                            engine = %info.engine,
                            ctranslate2 = %info.ctranslate2,
                            model = %info.model,
                            multilingual = info.multilingual,
                            threads = info.threads,
                            workers,
                            python = %offline.config().python.display(),
                            "transcription engine ready"
                        );
                    }
                    readiness.set(
                        "transcription",
                        true,
                        serde_json::json!({
                            "engine": "offline",
                            "recogniser": info.engine,
                            "ctranslate2": info.ctranslate2,
                            "model": info.model,
                            "multilingual": info.multilingual,
                            "threads": info.threads,
                            "workers": workers,
                            "python": offline.config().python,
                        }),
                    );
                }
                Err(reason) => {
                    if was_ready != Some(false) {
                        tracing::warn!(
                            reason = %reason,
                            "transcription engine not ready: transcriptions fail until it is; make it ready with `{fix}` (or set transcription.python)"
                        );
                    }
                    readiness.set(
                        "transcription",
                        false,
                        serde_json::json!({
                            "engine": "offline",
                            "error": reason,
                            "fix": fix,
                            "python": offline.config().python,
                        }),
                    );
                }
            }
            was_ready = Some(ready);
            tokio::time::sleep(READINESS_RECHECK).await;
        }
    });
}

/// The command that installs the offline engine for this binary.
pub fn install_command() -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "hark".into());
    format!("{exe} install-asr")
}

async fn refresh_counts(shared: &Services) {
    if let Some(counts) = shared.db(|s| s.transcription_counts()).await {
        shared.metrics.set_transcriptions(&counts);
    }
}

/// Deletes a temporary file when the job is done with it, however it ends.
struct RemoveOnDrop(Option<std::path::PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(
        segments: &[(f64, f64, &str)],
        audio: f64,
        processing: f64,
    ) -> transcribe::Transcript {
        transcribe::Transcript {
            text: segments.iter().map(|s| s.2).collect::<Vec<_>>().join(" "),
            segments: segments
                .iter()
                .map(|&(start_sec, end_sec, text)| transcribe::Segment {
                    start_sec,
                    end_sec,
                    text: text.into(),
                })
                .collect(),
            language: "en-US".into(),
            engine: "pocketsphinx".into(),
            audio_secs: audio,
            processing_secs: processing,
            chunks: 1,
        }
    }

    /// Two channels' words interleave by start time, each with its speaker.
    #[test]
    fn speakers_merge_in_time_order() {
        let customer = transcript(&[(0.5, 2.0, "hello"), (6.0, 7.0, "thanks")], 8.0, 1.0);
        let operator = transcript(&[(2.5, 5.0, "how can i help")], 8.0, 0.5);
        let (merged, rows) = merge_speakers(vec![("customer", customer), ("operator", operator)]);
        let seen: Vec<(u32, &str, &str)> = rows
            .iter()
            .map(|u| (u.order, u.speaker.as_str(), u.text.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (1, "customer", "hello"),
                (2, "operator", "how can i help"),
                (3, "customer", "thanks")
            ]
        );
        assert_eq!(
            merged.text,
            "customer: hello\noperator: how can i help\ncustomer: thanks"
        );
        assert_eq!(merged.audio_secs, 8.0);
        assert_eq!(merged.processing_secs, 1.5);
    }

    #[test]
    fn a_stereo_file_is_split_into_its_channels() {
        let dir = std::env::temp_dir().join(format!("hark-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("RE1.wav");
        let mut w = record_engine::WavWriter::create_channels(
            std::fs::File::create(&path).unwrap(),
            8000,
            record_engine::WavEncoding::Pcm16,
            2,
        )
        .unwrap();
        let frames: Vec<i16> = (0..8000).flat_map(|i| [i as i16, -(i as i16)]).collect();
        w.write(&frames).unwrap();
        w.finalize(0..8000).unwrap();
        let channels = read_channels(&path).unwrap();
        let [a, b] = channels.split.expect("split");
        let left = std::fs::read(&a).unwrap();
        let right = std::fs::read(&b).unwrap();
        let wl = record_engine::wav::Wav::parse(&left).unwrap();
        let wr = record_engine::wav::Wav::parse(&right).unwrap();
        assert_eq!(wl.header.channels, 1);
        assert_eq!(wl.samples()[..3], [0, 1, 2]);
        assert_eq!(wr.samples()[..3], [0, -1, -2]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
