//! TwiML documents: `<Response>` with `<Record>`, `<Play>`, `<Pause>`, `<Hangup>`.
//!
//! Names are case-sensitive, comments are ignored, unknown attributes are ignored, entities are
//! never expanded (only the five predefined ones and character references are decoded).

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
}

impl HttpMethod {
    pub fn as_str(&self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Documents longer than this are refused (12100).
    pub max_bytes: usize,
    /// `record.max_length_cap`: `maxLength` above it is clamped (SPEC §3.1: 14400).
    pub max_length_cap: u32,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self { max_bytes: 64 * 1024, max_length_cap: 14_400 }
    }
}

/// `recordingStatusCallbackEvent` subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusEvents {
    pub in_progress: bool,
    pub completed: bool,
    pub absent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordVerb {
    /// As written (relative or absolute); `None` = the document's own URL.
    pub action: Option<String>,
    pub method: HttpMethod,
    /// Seconds of silence; 0 = never stop on silence.
    pub timeout_secs: u32,
    /// Keys that end the recording; empty = none.
    pub finish_on_key: String,
    pub max_length_secs: u32,
    pub play_beep: bool,
    pub trim_silence: bool,
    pub recording_status_callback: Option<String>,
    pub recording_status_callback_method: HttpMethod,
    pub recording_status_callback_events: StatusEvents,
    pub transcribe: bool,
    pub transcribe_callback: Option<String>,
}

impl Default for RecordVerb {
    fn default() -> Self {
        Self {
            action: None,
            method: HttpMethod::Post,
            timeout_secs: 5,
            finish_on_key: "1234567890*#".to_string(),
            max_length_secs: 3600,
            play_beep: true,
            trim_silence: true,
            recording_status_callback: None,
            recording_status_callback_method: HttpMethod::Post,
            recording_status_callback_events: StatusEvents { in_progress: false, completed: true, absent: false },
            transcribe: false,
            transcribe_callback: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayVerb {
    /// As written: `file://…`, a path, or http(s).
    pub url: String,
    /// 0 = until hangup (capped at 1000).
    pub loop_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    Record(RecordVerb),
    Play(PlayVerb),
    Pause { length_secs: u32 },
    Hangup,
}

/// An invalid attribute value replaced by its default (SPEC §2.2: a warning, not an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrWarning {
    pub verb: &'static str,
    pub attribute: &'static str,
    pub value: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub verbs: Vec<Verb>,
    pub warnings: Vec<AttrWarning>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TwimlError {
    #[error("document is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("document is not well-formed XML at byte {position}: {message}")]
    NotWellFormed { position: usize, message: String },
    #[error("root element is <{0}>, not <Response>")]
    BadRoot(String),
    #[error("unknown verb <{0}>")]
    UnknownVerb(String),
    #[error("<{parent}> cannot contain <{child}>")]
    BadNesting { parent: String, child: String },
    #[error("<{verb}> needs {what}")]
    MissingContent { verb: &'static str, what: &'static str },
}

impl TwimlError {
    /// Twilio's error code for the failure (SPEC §2.2).
    pub fn code(&self) -> u32 {
        match self {
            TwimlError::TooLarge { .. } | TwimlError::NotWellFormed { .. } | TwimlError::BadRoot(_) => 12100,
            TwimlError::UnknownVerb(_) | TwimlError::BadNesting { .. } | TwimlError::MissingContent { .. } => 12200,
        }
    }
}

pub fn parse_document(xml: &str, limits: &ParseLimits) -> Result<Document, TwimlError> {
    todo!()
}
