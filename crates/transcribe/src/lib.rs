//! Transcription for Hark (SPEC §3.7, issue 5): engines behind one trait and the utterances a
//! transcript is made of.
//!
//! Engines are an enum rather than a trait object: there are three, all async, and an enum keeps
//! the futures `Send` without boxing. The daemon runs them off the call path (their own tasks);
//! the offline engine's CPU work happens in separate worker processes.

pub mod assemblyai;
mod error;
pub mod offline;
pub mod openai;
mod utterance;
pub mod wav;

use std::path::PathBuf;

pub use assemblyai::{AssemblyAiConfig, AssemblyAiEngine};
pub use error::EngineError;
pub use offline::{EngineInfo, EngineStatus, OfflineConfig, OfflineEngine, Recogniser};
pub use openai::{OpenAiConfig, OpenAiEngine};
pub use utterance::{speech_spans, utterances, Utterance};

/// A stretch of recognised speech, in seconds from the start of the recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub start_sec: f64,
    pub end_sec: f64,
    pub text: String,
}

/// The result of one engine run.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The non-empty segment texts joined by single spaces.
    pub text: String,
    pub segments: Vec<Segment>,
    /// The BCP-47 tag the job asked for.
    pub language: String,
    /// Which engine produced it, e.g. `pocketsphinx` or `openai:whisper-1`.
    pub engine: String,
    /// Length of the recording.
    pub audio_secs: f64,
    /// Wall time the engine spent on it (queueing excluded).
    pub processing_secs: f64,
    /// Pieces the recording was decoded in (offline engine; 0 when nothing was decoded or the
    /// engine does not say).
    pub chunks: u32,
}

impl Transcript {
    /// Real-time factor: processing time per second of audio (0 for empty audio).
    pub fn rtf(&self) -> f64 {
        if self.audio_secs > 0.0 {
            self.processing_secs / self.audio_secs
        } else {
            0.0
        }
    }

    /// Builds a transcript whose `text` is the concatenation of its non-empty segments.
    fn from_segments(
        segments: Vec<Segment>,
        language: &str,
        engine: String,
        audio_secs: f64,
        processing_secs: f64,
    ) -> Self {
        let segments: Vec<Segment> = segments
            .into_iter()
            .map(|s| Segment {
                text: s.text.split_whitespace().collect::<Vec<_>>().join(" "),
                ..s
            })
            .collect();
        let text = segments
            .iter()
            .filter(|s| !s.text.is_empty())
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            text,
            segments,
            language: language.to_string(),
            engine,
            audio_secs,
            processing_secs,
            chunks: 0,
        }
    }
}

/// One recording to transcribe.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Job {
    pub wav_path: PathBuf,
    /// BCP-47, e.g. `en-US`. Empty means English.
    pub language: String,
    /// VAD speech spans in seconds ([`speech_spans`]); may be empty.
    pub speech: Vec<(f64, f64)>,
    /// Expected sentences: the offline engine then only recognises these (JSGF grammar), which
    /// is how tests check known speech. The HTTP engine ignores it.
    pub grammar: Option<Vec<String>>,
}

impl Job {
    pub fn new(wav_path: impl Into<PathBuf>, language: impl Into<String>) -> Self {
        Self {
            wav_path: wav_path.into(),
            language: language.into(),
            ..Self::default()
        }
    }
}

/// The job's WAV bytes and its duration (seconds), for the HTTP engines that upload it.
async fn read_job_wav(job: &Job) -> Result<(Vec<u8>, f64), EngineError> {
    let wav_err = |reason: String| EngineError::Wav {
        path: job.wav_path.clone(),
        reason,
    };
    let bytes = tokio::fs::read(&job.wav_path)
        .await
        .map_err(|e| wav_err(e.to_string()))?;
    let audio_secs = record_engine::wav::read_header(&mut &bytes[..])
        .map_err(|e| wav_err(e.to_string()))?
        .duration_secs(bytes.len() as u64);
    Ok((bytes, audio_secs))
}

/// A reqwest error with its whole cause chain (its Display hides the cause: "error sending
/// request").
fn error_chain(e: &reqwest::Error) -> String {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    reason
}

/// The configured transcription engine.
pub enum Engine {
    Offline(OfflineEngine),
    OpenAi(OpenAiEngine),
    AssemblyAi(AssemblyAiEngine),
}

impl Engine {
    pub async fn transcribe(&self, job: &Job) -> Result<Transcript, EngineError> {
        match self {
            Engine::Offline(e) => e.transcribe(job).await,
            Engine::OpenAi(e) => e.transcribe(job).await,
            Engine::AssemblyAi(e) => e.transcribe(job).await,
        }
    }

    /// The name stored in [`Transcript::engine`].
    pub fn name(&self) -> String {
        match self {
            Engine::Offline(e) => e.name().to_string(),
            Engine::OpenAi(e) => e.name(),
            Engine::AssemblyAi(e) => e.name(),
        }
    }
}

/// The primary language subtag of a BCP-47 tag, lowercased (`en-US` → `en`); `None` when the tag
/// is malformed. Empty means English, the default of Twilio's transcription.
pub fn primary_language(tag: &str) -> Option<String> {
    if tag.is_empty() {
        return Some("en".to_string());
    }
    let mut parts = tag.split(['-', '_']);
    let primary = parts.next()?;
    let well_formed = (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts
            .all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    well_formed.then(|| primary.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(s: f64, e: f64, t: &str) -> Segment {
        Segment {
            start_sec: s,
            end_sec: e,
            text: t.to_string(),
        }
    }

    #[test]
    fn transcript_text_is_concatenation_of_non_empty_segments() {
        let t = Transcript::from_segments(
            vec![
                seg(0.0, 1.0, " hello  there "),
                seg(1.0, 2.0, ""),
                seg(2.0, 3.0, "bye"),
            ],
            "en-US",
            "x".into(),
            4.0,
            1.0,
        );
        assert_eq!(t.text, "hello there bye");
        assert_eq!(t.segments[0].text, "hello there");
        assert_eq!(t.segments.len(), 3);
        assert_eq!(t.rtf(), 0.25);
    }

    #[test]
    fn rtf_of_empty_audio_is_zero() {
        let t = Transcript::from_segments(vec![], "en", "x".into(), 0.0, 1.0);
        assert_eq!(t.rtf(), 0.0);
        assert_eq!(t.text, "");
    }

    #[test]
    fn primary_language_of_bcp47_tags() {
        assert_eq!(primary_language("en-US").as_deref(), Some("en"));
        assert_eq!(primary_language("ja").as_deref(), Some("ja"));
        assert_eq!(primary_language("DE-de").as_deref(), Some("de"));
        assert_eq!(primary_language("zh-Hant-TW").as_deref(), Some("zh"));
        assert_eq!(primary_language("yue-HK").as_deref(), Some("yue"));
        assert_eq!(primary_language("").as_deref(), Some("en"));
    }

    #[test]
    fn primary_language_rejects_malformed_tags() {
        assert_eq!(primary_language("e"), None);
        assert_eq!(primary_language("english"), None);
        assert_eq!(primary_language("en-"), None);
        assert_eq!(primary_language("en US"), None);
        assert_eq!(primary_language("12-US"), None);
    }
}
