//! OpenAI-compatible HTTP engine: `POST {base_url}/v1/audio/transcriptions`, the interface of
//! hosted Whisper, whisper.cpp's server and faster-whisper servers.

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::{error_chain, primary_language, read_job_wav, EngineError, Job, Segment, Transcript};

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// e.g. `http://127.0.0.1:8080` or `https://api.openai.com` (a trailing `/v1` is accepted).
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub api_key: Option<String>,
    /// Whole request, upload to last byte of the answer.
    pub timeout: Duration,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8080".to_string(),
            model: "whisper-1".to_string(),
            api_key: None,
            timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Clone)]
pub struct OpenAiEngine {
    config: OpenAiConfig,
    url: String,
    client: reqwest::Client,
}

/// Characters of an error body kept in the error message.
const BODY_EXCERPT: usize = 300;

#[derive(Debug, Deserialize)]
struct VerboseJson {
    text: String,
    #[serde(default)]
    segments: Option<Vec<VerboseSegment>>,
}

#[derive(Debug, Deserialize)]
struct VerboseSegment {
    start: f64,
    end: f64,
    text: String,
}

impl OpenAiEngine {
    pub fn new(config: OpenAiConfig) -> Result<Self, EngineError> {
        let base = config.base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        let url = format!("{base}/v1/audio/transcriptions");
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| EngineError::Request {
                url: url.clone(),
                reason: format!("building the HTTP client: {e}"),
            })?;
        Ok(Self {
            config,
            url,
            client,
        })
    }

    /// `openai:<model>`.
    pub fn name(&self) -> String {
        format!("openai:{}", self.config.model)
    }

    /// The endpoint requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn transcribe(&self, job: &Job) -> Result<Transcript, EngineError> {
        let language =
            primary_language(&job.language).ok_or_else(|| EngineError::InvalidLanguage {
                language: job.language.clone(),
            })?;
        let (bytes, audio_secs) = read_job_wav(job).await?;
        let file_name = job
            .wav_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "audio.wav".to_string());

        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name)
            .mime_str("audio/wav")
            .map_err(|e| self.request_error(&e))?;
        let form = reqwest::multipart::Form::new()
            .part("file", part)
            .text("model", self.config.model.clone())
            .text("language", language)
            .text("response_format", "verbose_json");
        let mut request = self.client.post(&self.url).multipart(form);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }

        let started = Instant::now();
        let response = request.send().await.map_err(|e| self.request_error(&e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.request_error(&e))?;
        let processing_secs = started.elapsed().as_secs_f64();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(EngineError::HttpStatus {
                url: self.url.clone(),
                status: status.as_u16(),
                body: text.chars().take(BODY_EXCERPT).collect(),
            });
        }
        let parsed: VerboseJson =
            serde_json::from_slice(&body).map_err(|e| EngineError::BadResponse {
                url: self.url.clone(),
                reason: format!("not verbose_json ({e})"),
            })?;

        let segments = match parsed.segments {
            Some(segs) if !segs.is_empty() => segs
                .into_iter()
                .map(|s| Segment {
                    start_sec: s.start,
                    end_sec: s.end,
                    text: s.text,
                })
                .collect(),
            // No segments (plain `json` servers): one segment over the speech, or the whole file.
            _ => {
                let (start_sec, end_sec) = match (job.speech.first(), job.speech.last()) {
                    (Some(f), Some(l)) => (f.0, l.1),
                    _ => (0.0, audio_secs),
                };
                vec![Segment {
                    start_sec,
                    end_sec,
                    text: parsed.text,
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

    fn request_error(&self, e: &reqwest::Error) -> EngineError {
        if e.is_timeout() {
            return EngineError::Timeout {
                engine: format!("{} at {}", self.name(), self.url),
                after: self.config.timeout,
            };
        }
        EngineError::Request {
            url: self.url.clone(),
            reason: error_chain(e),
        }
    }
}

#[cfg(test)]
mod tests;
