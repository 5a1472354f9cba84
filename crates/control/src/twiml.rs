//! TwiML documents: `<Response>` with `<Record>`, `<Play>`, `<Pause>`, `<Hangup>`, `<Say>`,
//! `<Gather>`, `<Redirect>`, `<Reject>`, `<Dial>`.
//!
//! Names are case-sensitive, comments are ignored, unknown attributes are ignored, entities are
//! never expanded (only the five predefined ones and character references are decoded).

use thiserror::Error;

mod content_type;
mod dial;
mod gather;
mod say;
#[cfg(test)]
mod tests;
mod verbs;
mod xml;

pub use content_type::{classify_content_type, ContentKind};
pub use dial::{DialNoun, DialRecord, DialTarget, DialVerb, RecordingTrack};
pub use say::MAX_SAY_BYTES;
pub use verbs::MAX_LOOPS;

/// Defined once, in `store`; re-exported for TwiML's `method` attributes.
pub use store::HttpMethod;

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

impl StatusEvents {
    /// The subscription a recording keeps: `url` (if any) with `method` and these events.
    pub fn callback(
        &self,
        url: Option<&String>,
        method: HttpMethod,
    ) -> Option<store::StatusCallbackSpec> {
        url.map(|url| store::StatusCallbackSpec {
            url: url.clone(),
            method,
            in_progress: self.in_progress,
            completed: self.completed,
            absent: self.absent,
        })
    }
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
    /// `transcribeLanguage` (BCP-47); `None` = the configured default.
    pub transcribe_language: Option<String>,
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
            transcribe_language: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayVerb {
    /// As written: `file://…`, a path, or http(s). May be empty when `digits` is set.
    pub url: String,
    /// 0 = until hangup (capped at 1000).
    pub loop_count: u32,
    /// DTMF to send (RFC 4733) instead of playing the body: only `0-9*#A-D` and `w` (0.5 s
    /// pause) remain; invalid characters are dropped with a warning.
    pub digits: Option<String>,
}

/// `<Say>`: text for the local TTS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SayVerb {
    /// SSML children flattened to their text, whitespace collapsed, at most [`MAX_SAY_BYTES`].
    /// Empty text is allowed (with a warning); the flow skips it.
    pub text: String,
    /// As written (`man`, `woman`, `alice`, `Polly.Joanna`, …); mapping to a local voice is the
    /// daemon's job.
    pub voice: String,
    /// `en` for `man`/`woman`, else `en-US`, unless given.
    pub language: String,
    /// 0 = until hangup (capped at 1000).
    pub loop_count: u32,
}

/// What `<Gather>` plays while it waits; the first key interrupts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    Say(SayVerb),
    Play(PlayVerb),
    Pause { length_secs: u32 },
}

/// `<Gather input="dtmf">`. Speech input is not supported: it is gathered as DTMF with a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatherVerb {
    /// As written; `None` = the document's own URL.
    pub action: Option<String>,
    pub method: HttpMethod,
    /// Seconds to wait for the first key and between keys (≥ 1).
    pub timeout_secs: u32,
    /// One key that submits (not included in `Digits`); `None` = no finish key.
    pub finish_on_key: Option<char>,
    /// Submit after this many digits; `None` = unlimited.
    pub num_digits: Option<u32>,
    /// Request the action even when nothing was pressed.
    pub action_on_empty_result: bool,
    pub prompts: Vec<Prompt>,
}

impl Default for GatherVerb {
    fn default() -> Self {
        Self {
            action: None,
            method: HttpMethod::Post,
            timeout_secs: 5,
            finish_on_key: Some('#'),
            num_digits: None,
            action_on_empty_result: false,
            prompts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectVerb {
    /// The body, as written (relative or absolute).
    pub url: String,
    pub method: HttpMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    Rejected,
    Busy,
}

impl RejectReason {
    /// The SIP final response for a call rejected before answer (SPEC §4 [D]).
    pub fn sip_status(&self) -> u16 {
        match self {
            RejectReason::Rejected => 603,
            RejectReason::Busy => 486,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RejectVerb {
    pub reason: RejectReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    Record(RecordVerb),
    Play(PlayVerb),
    Pause { length_secs: u32 },
    Hangup,
    Say(SayVerb),
    Gather(GatherVerb),
    Redirect(RedirectVerb),
    Reject(RejectVerb),
    Dial(DialVerb),
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

impl Document {
    /// The document a `text/plain` answer stands for: say it (whitespace collapsed, at most
    /// [`MAX_SAY_BYTES`]), then hang up. Empty text: just hang up.
    pub fn say_then_hangup(text: &str) -> Self {
        let text = say::normalize_text(text);
        let mut verbs = Vec::with_capacity(2);
        if !text.is_empty() {
            verbs.push(Verb::Say(SayVerb {
                text,
                voice: "man".into(),
                language: "en".into(),
                loop_count: 1,
            }));
        }
        verbs.push(Verb::Hangup);
        Self {
            verbs,
            warnings: Vec::new(),
        }
    }

    /// The document an `audio/*` answer stands for: play `url` once, then hang up.
    pub fn play_then_hangup(url: &str) -> Self {
        Self {
            verbs: vec![
                Verb::Play(PlayVerb {
                    url: url.to_string(),
                    loop_count: 1,
                    digits: None,
                }),
                Verb::Hangup,
            ],
            warnings: Vec::new(),
        }
    }
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
