//! One parse function per verb. Adding a verb = a struct/variant in `twiml.rs`, a function
//! here and an arm in [`parse_verb`].
//!
//! Invalid attribute values become [`AttrWarning`]s and the default is used (SPEC §2.2).

use store::RecordingStatus;

use super::xml::{xml_trim, Element, Tree};
use super::{
    AttrWarning, HttpMethod, ParseLimits, PlayVerb, RecordVerb, RedirectVerb, RejectReason,
    RejectVerb, StatusEvents, TwimlError, Verb,
};

/// Ceiling for `loop` (SPEC §4: our decision, Twilio documents none).
pub const MAX_LOOPS: u32 = 1000;
const DEFAULT_MAX_LENGTH: u32 = 3600;
pub(super) const FINISH_KEYS: &str = "0123456789*#";
/// `<Play digits>`: DTMF events plus `w` (a 0.5 s pause).
const PLAY_DIGITS: &str = "0123456789*#ABCDw";

/// Attribute access for one verb, collecting warnings.
pub(super) struct Attrs<'a> {
    pub verb: &'static str,
    pub element: &'a Element,
    pub warnings: &'a mut Vec<AttrWarning>,
}

impl<'a> Attrs<'a> {
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.element.attr(name)
    }

    pub fn warn(&mut self, attribute: &'static str, value: &str, reason: impl Into<String>) {
        self.warnings.push(AttrWarning {
            verb: self.verb,
            attribute,
            value: value.to_string(),
            reason: reason.into(),
        });
    }

    /// Empty or whitespace-only counts as absent.
    pub fn url(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(xml_trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    pub fn method(&mut self, name: &'static str) -> HttpMethod {
        match self.get(name) {
            None => HttpMethod::Post,
            Some(v) => match xml_trim(v).parse() {
                Ok(method) => method,
                Err(_) => {
                    self.warn(name, v, "must be GET or POST; using POST");
                    HttpMethod::Post
                }
            },
        }
    }

    pub fn boolean(&mut self, name: &'static str, default: bool) -> bool {
        match self.get(name) {
            None => default,
            Some(v) if xml_trim(v).eq_ignore_ascii_case("true") => true,
            Some(v) if xml_trim(v).eq_ignore_ascii_case("false") => false,
            Some(v) => {
                self.warn(name, v, format!("must be true or false; using {default}"));
                default
            }
        }
    }

    /// `trim`: `trim-silence` or `do-not-trim`; anything else warns and keeps `default`.
    pub fn trim(&mut self, default: bool) -> bool {
        let Some(v) = self.get("trim") else {
            return default;
        };
        let t = xml_trim(v);
        if t.eq_ignore_ascii_case("trim-silence") {
            true
        } else if t.eq_ignore_ascii_case("do-not-trim") {
            false
        } else {
            let using = if default {
                "trim-silence"
            } else {
                "do-not-trim"
            };
            self.warn(
                "trim",
                v,
                format!("must be trim-silence or do-not-trim; using {using}"),
            );
            default
        }
    }

    /// `transcribeLanguage` (Hark's extension, SPEC §3.7): a BCP-47 tag such as `en-US`;
    /// anything else warns and leaves the configured default.
    pub fn language(&mut self) -> Option<String> {
        let v = self.get("transcribeLanguage")?;
        let t = xml_trim(v);
        let bcp47 = !t.is_empty()
            && t.len() <= 35
            && t.split('-').all(|p| {
                !p.is_empty() && p.len() <= 8 && p.chars().all(|c| c.is_ascii_alphanumeric())
            });
        if bcp47 {
            return Some(t.to_string());
        }
        self.warn(
            "transcribeLanguage",
            v,
            "is not a BCP-47 language tag; using the configured default",
        );
        None
    }

    /// `loop`: 0 = until hangup, capped at [`MAX_LOOPS`], default 1.
    pub fn loop_count(&mut self) -> u32 {
        let Some(v) = self.get("loop") else {
            return 1;
        };
        match parse_int(v) {
            Some(n) if n > i64::from(MAX_LOOPS) => {
                self.warn("loop", v, format!("above {MAX_LOOPS}; clamped"));
                MAX_LOOPS
            }
            Some(n) if n >= 0 => to_u32(n),
            _ => {
                self.warn("loop", v, "must be an integer >= 0; using 1");
                1
            }
        }
    }
}

/// Parses an optionally signed decimal integer; out-of-range values saturate so that
/// "huge" still compares as huge. `None` = not an integer.
pub(super) fn parse_int(value: &str) -> Option<i64> {
    let v = xml_trim(value);
    let (negative, digits) = match v.as_bytes().first() {
        Some(b'-') => (true, v.get(1..)?),
        Some(b'+') => (false, v.get(1..)?),
        _ => (false, v),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.parse::<i64>().unwrap_or(i64::MAX);
    Some(if negative { -magnitude } else { magnitude })
}

pub(super) fn to_u32(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(if n < 0 { 0 } else { u32::MAX })
}

/// Any element child is a schema error; so is non-whitespace text unless `text_allowed`.
pub(super) fn check_content(
    element: &Element,
    tree: &Tree,
    parent: &str,
    text_allowed: bool,
) -> Result<(), TwimlError> {
    if let Some(child) = element.children.first().and_then(|&i| tree.get(i)) {
        return Err(TwimlError::BadNesting {
            parent: parent.to_string(),
            child: child.name.clone(),
        });
    }
    if !text_allowed && !xml_trim(&element.text).is_empty() {
        return Err(TwimlError::BadNesting {
            parent: parent.to_string(),
            child: "#text".to_string(),
        });
    }
    Ok(())
}

/// Dispatches a direct child of `<Response>` (names are case-sensitive, SPEC §11 item 11).
pub(crate) fn parse_verb(
    tree: &Tree,
    element: &Element,
    limits: &ParseLimits,
    warnings: &mut Vec<AttrWarning>,
) -> Result<Verb, TwimlError> {
    match element.name.as_str() {
        "Record" => parse_record(tree, element, limits, warnings).map(Verb::Record),
        "Play" => parse_play(tree, element, warnings).map(Verb::Play),
        "Pause" => {
            parse_pause(tree, element, warnings).map(|length_secs| Verb::Pause { length_secs })
        }
        "Hangup" => parse_hangup(tree, element),
        "Say" => super::say::parse_say(tree, element, warnings).map(Verb::Say),
        "Gather" => super::gather::parse_gather(tree, element, warnings).map(Verb::Gather),
        "Redirect" => parse_redirect(tree, element, warnings).map(Verb::Redirect),
        "Reject" => parse_reject(tree, element, warnings).map(Verb::Reject),
        "Dial" => super::dial::parse_dial(tree, element, warnings).map(Verb::Dial),
        other => Err(TwimlError::UnknownVerb(other.to_string())),
    }
}

/// `<Record>`: attributes per SPEC §3.1; no content.
fn parse_record(
    tree: &Tree,
    element: &Element,
    limits: &ParseLimits,
    warnings: &mut Vec<AttrWarning>,
) -> Result<RecordVerb, TwimlError> {
    check_content(element, tree, "Record", false)?;
    let mut a = Attrs {
        verb: "Record",
        element,
        warnings,
    };
    let cap = limits.max_length_cap;
    let default_max = DEFAULT_MAX_LENGTH.min(cap);
    let mut r = RecordVerb {
        max_length_secs: default_max,
        ..RecordVerb::default()
    };

    r.action = a.url("action");
    r.method = a.method("method");
    if let Some(v) = a.get("timeout") {
        r.timeout_secs = match parse_int(v) {
            Some(n) if n >= 0 => to_u32(n),
            _ => {
                a.warn("timeout", v, "must be an integer >= 0; using 5");
                5
            }
        };
    }
    if let Some(v) = a.get("finishOnKey") {
        let kept: String = v.chars().filter(|c| FINISH_KEYS.contains(*c)).collect();
        if kept.chars().count() != v.chars().count() {
            a.warn(
                "finishOnKey",
                v,
                format!("only 0-9, * and # are allowed; using {kept:?}"),
            );
        }
        r.finish_on_key = kept;
    }
    if let Some(v) = a.get("maxLength") {
        r.max_length_secs = match parse_int(v) {
            // [D] 0 = as long as the account allows.
            Some(0) => cap,
            Some(n) if n <= 1 => {
                a.warn(
                    "maxLength",
                    v,
                    format!("must be greater than 1; using {default_max}"),
                );
                default_max
            }
            Some(n) if n > i64::from(cap) => {
                a.warn("maxLength", v, format!("above the cap of {cap}; clamped"));
                cap
            }
            Some(n) => to_u32(n),
            None => {
                a.warn(
                    "maxLength",
                    v,
                    format!("not an integer; using {default_max}"),
                );
                default_max
            }
        };
    }
    r.play_beep = a.boolean("playBeep", true);
    r.trim_silence = a.trim(true);
    r.recording_status_callback = a.url("recordingStatusCallback");
    r.recording_status_callback_method = a.method("recordingStatusCallbackMethod");
    if let Some(v) = a.get("recordingStatusCallbackEvent") {
        r.recording_status_callback_events = parse_status_events(&mut a, v);
    }
    r.transcribe = a.boolean("transcribe", false);
    r.transcribe_callback = a.url("transcribeCallback");
    if r.transcribe_callback.is_some() {
        r.transcribe = true;
    }
    r.transcribe_language = a.language();
    Ok(r)
}

/// Exactly the listed events; unknown tokens are warned about; nothing valid → `completed`.
pub(super) fn parse_status_events(a: &mut Attrs<'_>, value: &str) -> StatusEvents {
    const ATTR: &str = "recordingStatusCallbackEvent";
    let mut events = StatusEvents {
        in_progress: false,
        completed: false,
        absent: false,
    };
    let mut any_token = false;
    for token in value.split([',', ' ', '\t', '\r', '\n']) {
        if token.is_empty() {
            continue;
        }
        any_token = true;
        let is = |status: RecordingStatus| token.eq_ignore_ascii_case(status.as_str());
        if is(RecordingStatus::InProgress) {
            events.in_progress = true;
        } else if is(RecordingStatus::Completed) {
            events.completed = true;
        } else if is(RecordingStatus::Absent) {
            events.absent = true;
        } else {
            a.warn(ATTR, token, "unknown event; ignored");
        }
    }
    if !(events.in_progress || events.completed || events.absent) {
        if !any_token {
            a.warn(ATTR, value, "no events listed; using completed");
        }
        events.completed = true;
    }
    events
}

/// `<Play>`: body = audio URL; with `digits` the body is ignored (SPEC §4) and may be empty.
pub(super) fn parse_play(
    tree: &Tree,
    element: &Element,
    warnings: &mut Vec<AttrWarning>,
) -> Result<PlayVerb, TwimlError> {
    check_content(element, tree, "Play", true)?;
    let mut a = Attrs {
        verb: "Play",
        element,
        warnings,
    };
    let url = xml_trim(&element.text).to_string();
    let digits = a.url("digits").and_then(|d| {
        let kept: String = d.chars().filter(|c| PLAY_DIGITS.contains(*c)).collect();
        if kept.chars().count() != d.chars().count() {
            let using = if kept.is_empty() {
                "no digits left".to_string()
            } else {
                format!("using {kept:?}")
            };
            a.warn(
                "digits",
                &d,
                format!("only 0-9, *, #, A-D and w are allowed; {using}"),
            );
        }
        (!kept.is_empty()).then_some(kept)
    });
    match (&digits, url.is_empty()) {
        (None, true) => {
            return Err(TwimlError::MissingContent {
                verb: "Play",
                what: "an audio URL in its body or a digits attribute",
            })
        }
        (Some(d), false) => a.warn("digits", d, "the body is ignored when digits are sent"),
        _ => {}
    }
    let loop_count = a.loop_count();
    Ok(PlayVerb {
        url,
        loop_count,
        digits,
    })
}

/// `<Pause>`: `length` integer ≥ 1, default 1; no content. Returns the length in seconds.
pub(super) fn parse_pause(
    tree: &Tree,
    element: &Element,
    warnings: &mut Vec<AttrWarning>,
) -> Result<u32, TwimlError> {
    check_content(element, tree, "Pause", false)?;
    let mut a = Attrs {
        verb: "Pause",
        element,
        warnings,
    };
    let mut length_secs = 1;
    if let Some(v) = a.get("length") {
        length_secs = match parse_int(v) {
            Some(n) if n >= 1 => to_u32(n),
            _ => {
                a.warn("length", v, "must be an integer >= 1; using 1");
                1
            }
        };
    }
    Ok(length_secs)
}

/// `<Hangup>`: no attributes, no content.
fn parse_hangup(tree: &Tree, element: &Element) -> Result<Verb, TwimlError> {
    check_content(element, tree, "Hangup", false)?;
    Ok(Verb::Hangup)
}

/// `<Redirect>`: body = URL (required), `method` (POST).
fn parse_redirect(
    tree: &Tree,
    element: &Element,
    warnings: &mut Vec<AttrWarning>,
) -> Result<RedirectVerb, TwimlError> {
    check_content(element, tree, "Redirect", true)?;
    let url = xml_trim(&element.text).to_string();
    if url.is_empty() {
        return Err(TwimlError::MissingContent {
            verb: "Redirect",
            what: "a URL in its body",
        });
    }
    let mut a = Attrs {
        verb: "Redirect",
        element,
        warnings,
    };
    let method = a.method("method");
    Ok(RedirectVerb { url, method })
}

/// `<Reject>`: `reason` `rejected` (default) or `busy`; no content.
fn parse_reject(
    tree: &Tree,
    element: &Element,
    warnings: &mut Vec<AttrWarning>,
) -> Result<RejectVerb, TwimlError> {
    check_content(element, tree, "Reject", false)?;
    let mut a = Attrs {
        verb: "Reject",
        element,
        warnings,
    };
    let reason = match a.get("reason") {
        None => RejectReason::Rejected,
        Some(v) if xml_trim(v).eq_ignore_ascii_case("rejected") => RejectReason::Rejected,
        Some(v) if xml_trim(v).eq_ignore_ascii_case("busy") => RejectReason::Busy,
        Some(v) => {
            a.warn("reason", v, "must be rejected or busy; using rejected");
            RejectReason::Rejected
        }
    };
    Ok(RejectVerb { reason })
}

#[cfg(test)]
mod tests {
    use super::parse_int;

    #[test]
    fn parse_int_accepts_signs_and_saturates() {
        assert_eq!(parse_int(" 42 "), Some(42));
        assert_eq!(parse_int("+7"), Some(7));
        assert_eq!(parse_int("-3"), Some(-3));
        assert_eq!(parse_int("99999999999999999999999"), Some(i64::MAX));
        assert_eq!(parse_int("-99999999999999999999999"), Some(-i64::MAX));
    }

    #[test]
    fn parse_int_rejects_non_integers() {
        for bad in ["", "-", "+", "1.5", "1e3", "abc", "0x10", "1 2", "\u{0661}"] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }
}
