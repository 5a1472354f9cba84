//! AssemblyAI-style asynchronous engine: upload the audio (`POST /v2/upload`), create a
//! transcript (`POST /v2/transcript` with the `audio_url`), then poll
//! `GET /v2/transcript/{id}` until it is `completed` or `error`. Word timings (ms) become
//! segments, cut at sentence ends and pauses.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use crate::{error_chain, primary_language, read_job_wav, EngineError, Job, Segment, Transcript};

#[derive(Debug, Clone)]
pub struct AssemblyAiConfig {
    /// e.g. `https://api.assemblyai.com` (a trailing `/v2` is accepted).
    pub base_url: String,
    /// Sent as the `authorization` header.
    pub api_key: String,
    /// Upload, creation and every poll together.
    pub timeout: Duration,
    /// Pause between polls.
    pub poll_interval: Duration,
}

impl Default for AssemblyAiConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.assemblyai.com".to_string(),
            api_key: String::new(),
            timeout: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
        }
    }
}

#[derive(Clone)]
pub struct AssemblyAiEngine {
    config: AssemblyAiConfig,
    base: String,
    client: reqwest::Client,
}

/// Characters of an error body kept in the error message.
const BODY_EXCERPT: usize = 300;
/// Polls in a row that may fail (transport, 5xx) before the transcription fails.
const MAX_POLL_FAILURES: u32 = 3;
/// A pause between words this long starts a new segment.
const SEGMENT_GAP_MS: u64 = 700;

#[derive(Debug, Deserialize)]
struct Upload {
    upload_url: String,
}

#[derive(Debug, Deserialize)]
struct TranscriptState {
    id: String,
    status: JobStatus,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    words: Option<Vec<Word>>,
    #[serde(default)]
    error: Option<String>,
}

/// AssemblyAI's job states; `queued` and `processing` (and any state added later) mean "ask again".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum JobStatus {
    Completed,
    Error,
    #[serde(other)]
    Pending,
}

#[derive(Debug, Clone, Deserialize)]
struct Word {
    text: String,
    /// Milliseconds from the start of the audio.
    start: u64,
    end: u64,
}

impl AssemblyAiEngine {
    pub fn new(config: AssemblyAiConfig) -> Result<Self, EngineError> {
        let base = config.base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v2").unwrap_or(base).to_string();
        // Each request is bounded too, so a hung poll cannot outlive the overall timeout much.
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| EngineError::Request {
                url: base.clone(),
                reason: format!("building the HTTP client: {e}"),
            })?;
        Ok(Self {
            config,
            base,
            client,
        })
    }

    pub fn name(&self) -> String {
        "assemblyai".to_string()
    }

    pub async fn transcribe(&self, job: &Job) -> Result<Transcript, EngineError> {
        let language =
            primary_language(&job.language).ok_or_else(|| EngineError::InvalidLanguage {
                language: job.language.clone(),
            })?;
        let (bytes, audio_secs) = read_job_wav(job).await?;
        let started = Instant::now();
        let done = tokio::time::timeout(self.config.timeout, self.run(bytes, &language))
            .await
            .map_err(|_| EngineError::Timeout {
                engine: format!("{} at {}", self.name(), self.base),
                after: self.config.timeout,
            })??;
        let processing_secs = started.elapsed().as_secs_f64();
        let segments = match done.words.as_deref() {
            Some(words) if !words.is_empty() => segments_of(words),
            _ => {
                let (start_sec, end_sec) = match (job.speech.first(), job.speech.last()) {
                    (Some(f), Some(l)) => (f.0, l.1),
                    _ => (0.0, audio_secs),
                };
                vec![Segment {
                    start_sec,
                    end_sec,
                    text: done.text.unwrap_or_default(),
                }]
            }
        };
        Ok(Transcript::from_segments(
            segments,
            &job.language,
            self.name(),
            audio_secs,
            processing_secs,
        ))
    }

    /// Upload, create, poll; the caller bounds the whole in time.
    async fn run(&self, audio: Vec<u8>, language: &str) -> Result<TranscriptState, EngineError> {
        let upload_url = format!("{}/v2/upload", self.base);
        let upload: Upload = self
            .send(
                "POST",
                &upload_url,
                self.client
                    .post(&upload_url)
                    .header("content-type", "application/octet-stream")
                    .body(audio),
            )
            .await?;
        let create_url = format!("{}/v2/transcript", self.base);
        let mut state: TranscriptState = self
            .send(
                "POST",
                &create_url,
                self.client.post(&create_url).json(&json!({
                    "audio_url": upload.upload_url,
                    "language_code": language,
                    "punctuate": true,
                    "format_text": true,
                })),
            )
            .await?;
        loop {
            match state.status {
                JobStatus::Completed => return Ok(state),
                JobStatus::Error => {
                    return Err(EngineError::BadResponse {
                        url: format!("{}/v2/transcript/{}", self.base, state.id),
                        reason: format!(
                            "transcript failed: {}",
                            state.error.as_deref().unwrap_or("no reason given")
                        ),
                    })
                }
                JobStatus::Pending => {}
            }
            tokio::time::sleep(self.config.poll_interval).await;
            let poll_url = format!("{}/v2/transcript/{}", self.base, state.id);
            // A poll that fails in transit or with a 5xx is tried again a few times: the
            // transcript is still being made on the other side.
            let mut failures = 0;
            state = loop {
                match self
                    .send("GET", &poll_url, self.client.get(&poll_url))
                    .await
                {
                    Ok(s) => break s,
                    Err(
                        e @ (EngineError::Request { .. }
                        | EngineError::HttpStatus { status: 500.., .. }),
                    ) if failures < MAX_POLL_FAILURES => {
                        failures += 1;
                        tracing::warn!(error = %e, failures, "assemblyai: poll failed; retrying");
                        tokio::time::sleep(self.config.poll_interval).await;
                    }
                    Err(e) => return Err(e),
                }
            };
        }
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, EngineError> {
        let described = format!("{method} {url}");
        let response = request
            .header("authorization", &self.config.api_key)
            .send()
            .await
            .map_err(|e| self.request_error(&described, &e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.request_error(&described, &e))?;
        if !status.is_success() {
            return Err(EngineError::HttpStatus {
                url: described,
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body)
                    .chars()
                    .take(BODY_EXCERPT)
                    .collect(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| EngineError::BadResponse {
            url: described,
            reason: format!("unexpected JSON ({e})"),
        })
    }

    fn request_error(&self, url: &str, e: &reqwest::Error) -> EngineError {
        if e.is_timeout() {
            return EngineError::Timeout {
                engine: format!("{} at {}", self.name(), self.base),
                after: self.config.timeout,
            };
        }
        EngineError::Request {
            url: url.to_string(),
            reason: error_chain(e),
        }
    }
}

/// Words → segments: a new one after a word ending a sentence or before a pause of
/// [`SEGMENT_GAP_MS`] or more.
fn segments_of(words: &[Word]) -> Vec<Segment> {
    let mut segments: Vec<Segment> = Vec::new();
    let mut open = false;
    let mut last_end = 0u64;
    for w in words {
        let pause = w.start.saturating_sub(last_end) >= SEGMENT_GAP_MS;
        match segments.last_mut() {
            Some(seg) if open && !pause => {
                seg.text.push(' ');
                seg.text.push_str(&w.text);
                seg.end_sec = w.end as f64 / 1000.0;
            }
            _ => segments.push(Segment {
                start_sec: w.start as f64 / 1000.0,
                end_sec: w.end as f64 / 1000.0,
                text: w.text.clone(),
            }),
        }
        open = !w.text.ends_with(['.', '?', '!']);
        last_end = w.end;
    }
    segments
}

#[cfg(test)]
#[path = "assemblyai_tests.rs"]
mod tests;
