//! TwiML documents: `<Response>` with `<Record>`, `<Play>`, `<Pause>`, `<Hangup>`.
//!
//! Names are case-sensitive, comments are ignored, unknown attributes are ignored, entities are
//! never expanded (only the five predefined ones and character references are decoded).

use thiserror::Error;

#[cfg(test)]
mod tests;
mod verbs;
mod xml;

pub use verbs::MAX_LOOPS;

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
        Self {
            max_bytes: 64 * 1024,
            max_length_cap: 14_400,
        }
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
            recording_status_callback_events: StatusEvents {
                in_progress: false,
                completed: true,
                absent: false,
            },
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
    /// The `digits` attribute, kept for when DTMF playback exists. Until then it is ignored with
    /// a warning, and with an empty body `url` is empty: the flow skips the verb.
    pub digits: Option<String>,
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
    MissingContent {
        verb: &'static str,
        what: &'static str,
    },
}

impl TwimlError {
    /// Twilio's error code for the failure (SPEC §2.2).
    pub fn code(&self) -> u32 {
        match self {
            TwimlError::TooLarge { .. }
            | TwimlError::NotWellFormed { .. }
            | TwimlError::BadRoot(_) => 12100,
            TwimlError::UnknownVerb(_)
            | TwimlError::BadNesting { .. }
            | TwimlError::MissingContent { .. } => 12200,
        }
    }
}

/// Parses a TwiML document. Checks, in order: size, well-formedness (a DOCTYPE is refused so
/// that no entity is ever declared), root element, then each verb.
pub fn parse_document(xml: &str, limits: &ParseLimits) -> Result<Document, TwimlError> {
    if xml.len() > limits.max_bytes {
        return Err(TwimlError::TooLarge {
            size: xml.len(),
            limit: limits.max_bytes,
        });
    }
    let tree = xml::build(xml)?;
    let root = tree.get(0).ok_or(TwimlError::NotWellFormed {
        position: 0,
        message: "no root element".into(),
    })?;
    if root.name != "Response" {
        return Err(TwimlError::BadRoot(root.name.clone()));
    }
    if !xml::xml_trim(&root.text).is_empty() {
        return Err(TwimlError::BadNesting {
            parent: "Response".into(),
            child: "#text".into(),
        });
    }
    let mut warnings = Vec::new();
    let mut verbs = Vec::with_capacity(root.children.len());
    for element in root.children.iter().filter_map(|&i| tree.get(i)) {
        verbs.push(verbs::parse_verb(&tree, element, limits, &mut warnings)?);
    }
    Ok(Document { verbs, warnings })
}

/// [`parse_document`] for a raw HTTP body: the size limit applies to the bytes, and a body that
/// is not UTF-8 is not well-formed (position = first bad byte).
pub fn parse_document_bytes(body: &[u8], limits: &ParseLimits) -> Result<Document, TwimlError> {
    if body.len() > limits.max_bytes {
        return Err(TwimlError::TooLarge {
            size: body.len(),
            limit: limits.max_bytes,
        });
    }
    let xml = std::str::from_utf8(body).map_err(|e| TwimlError::NotWellFormed {
        position: e.valid_up_to(),
        message: "document is not valid UTF-8".into(),
    })?;
    parse_document(xml, limits)
}
