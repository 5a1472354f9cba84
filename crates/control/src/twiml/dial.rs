//! `<Dial>`: attributes, and the nouns `<Sip>`, `<Client>` (with `<Identity>`/`<Parameter>`),
//! `<Number>`, or a bare number as text. Several nouns ring at once.

use super::verbs::{parse_int, parse_status_events, to_u32, Attrs};
use super::xml::{xml_trim, Element, Tree};
use super::{AttrWarning, HttpMethod, StatusEvents, TwimlError};

/// Twilio's ring-time bounds for `timeout` (seconds).
const MIN_TIMEOUT: u32 = 5;
const MAX_TIMEOUT: u32 = 600;
/// Twilio's default and ceiling for `timeLimit`: four hours.
const MAX_TIME_LIMIT: u32 = 14_400;

/// `record` on `<Dial>`: when recording starts and whether each party gets its own channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialRecord {
    /// `record-from-ringing*`: from the moment the nouns ring (the caller's side of it).
    pub from_ringing: bool,
    /// `*-dual`: channel 1 the caller, channel 2 the dialled party.
    pub dual: bool,
}

/// `recordingTrack`: whose audio a recording holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordingTrack {
    /// The caller's audio (what Twilio calls the inbound track).
    Inbound,
    /// The dialled party's audio.
    Outbound,
    #[default]
    Both,
}

impl RecordingTrack {
    pub fn parse(value: &str) -> Option<Self> {
        match xml_trim(value).to_ascii_lowercase().as_str() {
            "inbound" => Some(RecordingTrack::Inbound),
            "outbound" => Some(RecordingTrack::Outbound),
            "both" => Some(RecordingTrack::Both),
            _ => None,
        }
    }
}

/// Whom one noun calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialTarget {
    /// `<Sip>`: a SIP URI, with digest credentials if the far end challenges.
    Sip {
        uri: String,
        username: Option<String>,
        password: Option<String>,
    },
    /// `<Client>`: a registered identity (a SIP phone's REGISTER or a Voice SDK client).
    Client {
        identity: String,
        parameters: Vec<(String, String)>,
    },
    /// `<Number>` (or text in `<Dial>`): through a configured `[[trunk]]`.
    Number {
        number: String,
        send_digits: Option<String>,
    },
}

/// One noun: whom to call and the whisper TwiML run on them before the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialNoun {
    pub target: DialTarget,
    /// As written (relative or absolute); resolved by the flow.
    pub url: Option<String>,
    pub method: HttpMethod,
    /// The dialled leg's call progress (`statusCallback`, `statusCallbackMethod`).
    pub status_callback: Option<String>,
    pub status_callback_method: HttpMethod,
    /// `statusCallbackEvent`: of `initiated`, `ringing`, `answered`, `completed` (the default).
    pub status_callback_events: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialVerb {
    /// As written; `None` = the next verb runs after the bridge (no request).
    pub action: Option<String>,
    pub method: HttpMethod,
    /// Ring time in seconds (5–600, default 30).
    pub timeout_secs: u32,
    pub caller_id: Option<String>,
    /// `None` = `do-not-record`.
    pub record: Option<DialRecord>,
    pub recording_status_callback: Option<String>,
    pub recording_status_callback_method: HttpMethod,
    pub recording_status_callback_events: StatusEvents,
    pub recording_track: RecordingTrack,
    /// `trim="trim-silence"`; `<Dial>` defaults to `do-not-trim`.
    pub trim_silence: bool,
    /// Longest bridge in seconds (default and cap 14400).
    pub time_limit_secs: u32,
    /// The caller's `*` ends the bridge (the caller stays).
    pub hangup_on_star: bool,
    /// The caller is answered only when the dialled party is (ringing meanwhile).
    pub answer_on_bridge: bool,
    /// `ringTone`: a country code for the ringback the caller hears (`us` by default).
    pub ring_tone: String,
    /// Hark's extension, as on `<Record>`: transcribe the conversation's recording, each
    /// channel on its own (`transcribeCallback` implies it).
    pub transcribe: bool,
    pub transcribe_callback: Option<String>,
    /// BCP-47; `None` = the configured default.
    pub transcribe_language: Option<String>,
    pub nouns: Vec<DialNoun>,
}

impl Default for DialVerb {
    fn default() -> Self {
        Self {
            action: None,
            method: HttpMethod::Post,
            timeout_secs: 30,
            caller_id: None,
            record: None,
            recording_status_callback: None,
            recording_status_callback_method: HttpMethod::Post,
            recording_status_callback_events: StatusEvents {
                in_progress: false,
                completed: true,
                absent: false,
            },
            recording_track: RecordingTrack::Both,
            trim_silence: false,
            time_limit_secs: MAX_TIME_LIMIT,
            hangup_on_star: false,
            answer_on_bridge: false,
            ring_tone: "us".into(),
            transcribe: false,
            transcribe_callback: None,
            transcribe_language: None,
            nouns: Vec::new(),
        }
    }
}

pub(super) fn parse_dial(
    tree: &Tree,
    element: &Element,
    warnings: &mut Vec<AttrWarning>,
) -> Result<DialVerb, TwimlError> {
    let mut nouns = Vec::new();
    let text = xml_trim(&element.text);
    if !text.is_empty() {
        nouns.push(DialNoun {
            target: DialTarget::Number {
                number: text.to_string(),
                send_digits: None,
            },
            url: None,
            method: HttpMethod::Post,
            status_callback: None,
            status_callback_method: HttpMethod::Post,
            status_callback_events: vec!["completed".into()],
        });
    }
    for child in element.children.iter().filter_map(|&i| tree.get(i)) {
        nouns.push(parse_noun(tree, child, warnings)?);
    }
    if nouns.is_empty() {
        return Err(TwimlError::MissingContent {
            verb: "Dial",
            what: "a number or a <Sip>, <Client> or <Number> noun",
        });
    }
    let mut a = Attrs {
        verb: "Dial",
        element,
        warnings,
    };
    let mut d = DialVerb {
        nouns,
        ..DialVerb::default()
    };
    d.action = a.url("action");
    d.method = a.method("method");
    if let Some(v) = a.get("timeout") {
        d.timeout_secs = match parse_int(v) {
            Some(n) if n < i64::from(MIN_TIMEOUT) => {
                a.warn("timeout", v, format!("below {MIN_TIMEOUT}; raised"));
                MIN_TIMEOUT
            }
            Some(n) if n > i64::from(MAX_TIMEOUT) => {
                a.warn("timeout", v, format!("above {MAX_TIMEOUT}; clamped"));
                MAX_TIMEOUT
            }
            Some(n) => to_u32(n),
            None => {
                a.warn("timeout", v, "must be an integer; using 30");
                30
            }
        };
    }
    d.caller_id = a.url("callerId");
    if let Some(v) = a.get("record") {
        d.record = match xml_trim(v).to_ascii_lowercase().as_str() {
            "do-not-record" | "false" => None,
            "record-from-answer" | "true" => Some(DialRecord {
                from_ringing: false,
                dual: false,
            }),
            "record-from-ringing" => Some(DialRecord {
                from_ringing: true,
                dual: false,
            }),
            "record-from-answer-dual" => Some(DialRecord {
                from_ringing: false,
                dual: true,
            }),
            "record-from-ringing-dual" => Some(DialRecord {
                from_ringing: true,
                dual: true,
            }),
            _ => {
                a.warn("record", v, "unknown value; not recording");
                None
            }
        };
    }
    d.recording_status_callback = a.url("recordingStatusCallback");
    d.recording_status_callback_method = a.method("recordingStatusCallbackMethod");
    if let Some(v) = a.get("recordingStatusCallbackEvent") {
        d.recording_status_callback_events = parse_status_events(&mut a, v);
    }
    if let Some(v) = a.get("recordingTrack") {
        d.recording_track = RecordingTrack::parse(v).unwrap_or_else(|| {
            a.warn(
                "recordingTrack",
                v,
                "must be inbound, outbound or both; using both",
            );
            RecordingTrack::Both
        });
    }
    d.trim_silence = a.trim(false);
    if let Some(v) = a.get("timeLimit") {
        d.time_limit_secs = match parse_int(v) {
            Some(n) if n >= 1 && n <= i64::from(MAX_TIME_LIMIT) => to_u32(n),
            _ => {
                a.warn(
                    "timeLimit",
                    v,
                    format!("must be 1 to {MAX_TIME_LIMIT}; using {MAX_TIME_LIMIT}"),
                );
                MAX_TIME_LIMIT
            }
        };
    }
    d.hangup_on_star = a.boolean("hangupOnStar", false);
    d.answer_on_bridge = a.boolean("answerOnBridge", false);
    d.transcribe = a.boolean("transcribe", false);
    d.transcribe_callback = a.url("transcribeCallback");
    if d.transcribe_callback.is_some() {
        d.transcribe = true;
    }
    d.transcribe_language = a.language();
    if let Some(v) = a.get("ringTone") {
        let t = xml_trim(v).to_ascii_lowercase();
        if t.len() == 2 && t.chars().all(|c| c.is_ascii_alphabetic()) {
            d.ring_tone = t;
        } else {
            a.warn("ringTone", v, "must be a two-letter country code; using us");
        }
    }
    Ok(d)
}

fn parse_noun(
    tree: &Tree,
    element: &Element,
    warnings: &mut Vec<AttrWarning>,
) -> Result<DialNoun, TwimlError> {
    let name = element.name.as_str();
    let verb: &'static str = match name {
        "Sip" => "Sip",
        "Client" => "Client",
        "Number" => "Number",
        other => {
            return Err(TwimlError::BadNesting {
                parent: "Dial".into(),
                child: other.to_string(),
            })
        }
    };
    let text = xml_trim(&element.text).to_string();
    let target = match verb {
        "Client" => {
            let mut identity = text;
            let mut parameters = Vec::new();
            for child in element.children.iter().filter_map(|&i| tree.get(i)) {
                match child.name.as_str() {
                    "Identity" => identity = xml_trim(&child.text).to_string(),
                    "Parameter" => {
                        let name = child.attr("name").map(xml_trim).unwrap_or_default();
                        let value = child.attr("value").map(xml_trim).unwrap_or_default();
                        if !name.is_empty() {
                            parameters.push((name.to_string(), value.to_string()));
                        }
                    }
                    other => {
                        return Err(TwimlError::BadNesting {
                            parent: "Client".into(),
                            child: other.to_string(),
                        })
                    }
                }
            }
            if identity.is_empty() {
                return Err(TwimlError::MissingContent {
                    verb: "Client",
                    what: "an identity",
                });
            }
            DialTarget::Client {
                identity,
                parameters,
            }
        }
        _ => {
            if let Some(child) = element.children.first().and_then(|&i| tree.get(i)) {
                return Err(TwimlError::BadNesting {
                    parent: name.to_string(),
                    child: child.name.clone(),
                });
            }
            if text.is_empty() {
                return Err(TwimlError::MissingContent {
                    verb,
                    what: if verb == "Sip" {
                        "a SIP URI"
                    } else {
                        "a number"
                    },
                });
            }
            if verb == "Sip" {
                if !text.to_ascii_lowercase().starts_with("sip:") {
                    return Err(TwimlError::MissingContent {
                        verb: "Sip",
                        what: "a sip: URI",
                    });
                }
                DialTarget::Sip {
                    uri: text,
                    username: element.attr("username").map(|s| xml_trim(s).to_string()),
                    password: element.attr("password").map(|s| xml_trim(s).to_string()),
                }
            } else {
                let send_digits = element
                    .attr("sendDigits")
                    .map(|s| xml_trim(s).to_string())
                    .filter(|s| !s.is_empty());
                DialTarget::Number {
                    number: text,
                    send_digits,
                }
            }
        }
    };
    let mut a = Attrs {
        verb,
        element,
        warnings,
    };
    let url = a.url("url");
    let method = a.method("method");
    let status_callback = a.url("statusCallback");
    let status_callback_method = a.method("statusCallbackMethod");
    let mut status_callback_events: Vec<String> = Vec::new();
    if let Some(v) = a.get("statusCallbackEvent") {
        for token in v
            .split([',', ' ', '\t', '\r', '\n'])
            .filter(|t| !t.is_empty())
        {
            let t = token.to_ascii_lowercase();
            if ["initiated", "ringing", "answered", "completed"].contains(&t.as_str()) {
                status_callback_events.push(t);
            } else {
                a.warn("statusCallbackEvent", token, "unknown event; ignored");
            }
        }
    }
    if status_callback_events.is_empty() {
        status_callback_events.push("completed".into());
    }
    Ok(DialNoun {
        target,
        url,
        method,
        status_callback,
        status_callback_method,
        status_callback_events,
    })
}
