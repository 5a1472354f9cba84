//! One parse function per verb. Adding a verb = a struct/variant in `twiml.rs`, a function
//! here and an arm in [`parse_verb`].
//!
//! Invalid attribute values become [`AttrWarning`]s and the default is used (SPEC §2.2).

use super::xml::{xml_trim, Element, Tree};
use super::{
    AttrWarning, HttpMethod, ParseLimits, PlayVerb, RecordVerb, StatusEvents, TwimlError, Verb,
};

/// Ceiling for `loop` (SPEC §4: our decision, Twilio documents none).
pub const MAX_LOOPS: u32 = 1000;
const DEFAULT_MAX_LENGTH: u32 = 3600;
const FINISH_KEYS: &str = "0123456789*#";

/// Attribute access for one verb, collecting warnings.
struct Attrs<'a> {
    verb: &'static str,
    element: &'a Element,
    warnings: &'a mut Vec<AttrWarning>,
}

impl<'a> Attrs<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.element.attr(name)
    }

    fn warn(&mut self, attribute: &'static str, value: &str, reason: impl Into<String>) {
        self.warnings.push(AttrWarning {
            verb: self.verb,
            attribute,
            value: value.to_string(),
            reason: reason.into(),
        });
    }

    /// Empty or whitespace-only counts as absent.
    fn url(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(xml_trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    fn method(&mut self, name: &'static str) -> HttpMethod {
        match self.get(name) {
            None => HttpMethod::Post,
            Some(v) if xml_trim(v).eq_ignore_ascii_case("POST") => HttpMethod::Post,
            Some(v) if xml_trim(v).eq_ignore_ascii_case("GET") => HttpMethod::Get,
            Some(v) => {
                self.warn(name, v, "must be GET or POST; using POST");
                HttpMethod::Post
            }
        }
    }

    fn boolean(&mut self, name: &'static str, default: bool) -> bool {
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
}

/// Parses an optionally signed decimal integer; out-of-range values saturate so that
/// "huge" still compares as huge. `None` = not an integer.
fn parse_int(value: &str) -> Option<i64> {
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

fn to_u32(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(if n < 0 { 0 } else { u32::MAX })
}

/// Any element child is a schema error; so is non-whitespace text unless `text_allowed`.
fn check_content(
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
        "Pause" => parse_pause(tree, element, warnings),
        "Hangup" => parse_hangup(tree, element),
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
    if let Some(v) = a.get("trim") {
        let t = xml_trim(v);
        r.trim_silence = if t.eq_ignore_ascii_case("trim-silence") {
            true
        } else if t.eq_ignore_ascii_case("do-not-trim") {
            false
        } else {
            a.warn(
                "trim",
                v,
                "must be trim-silence or do-not-trim; using trim-silence",
            );
            true
        };
    }
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
    Ok(r)
}

/// Exactly the listed events; unknown tokens are warned about; nothing valid → `completed`.
fn parse_status_events(a: &mut Attrs<'_>, value: &str) -> StatusEvents {
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
        if token.eq_ignore_ascii_case("in-progress") {
            events.in_progress = true;
        } else if token.eq_ignore_ascii_case("completed") {
            events.completed = true;
        } else if token.eq_ignore_ascii_case("absent") {
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

/// `<Play>`: body = audio URL. `digits` playback is not implemented yet: the attribute is kept
/// in [`PlayVerb::digits`] with a warning; the body, if any, is played instead, and with an
/// empty body `url` is empty, which the flow skips.
fn parse_play(
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
    let digits = a.url("digits");
    if let Some(d) = &digits {
        let reason = if url.is_empty() {
            "sending digits is not supported yet; verb skipped"
        } else {
            "sending digits is not supported yet; playing the body instead"
        };
        a.warn("digits", d, reason);
    } else if url.is_empty() {
        return Err(TwimlError::MissingContent {
            verb: "Play",
            what: "an audio URL in its body",
        });
    }
    let mut loop_count = 1;
    if let Some(v) = a.get("loop") {
        loop_count = match parse_int(v) {
            Some(n) if n > i64::from(MAX_LOOPS) => {
                a.warn("loop", v, format!("above {MAX_LOOPS}; clamped"));
                MAX_LOOPS
            }
            Some(n) if n >= 0 => to_u32(n),
            _ => {
                a.warn("loop", v, "must be an integer >= 0; using 1");
                1
            }
        };
    }
    Ok(PlayVerb {
        url,
        loop_count,
        digits,
    })
}

/// `<Pause>`: `length` integer ≥ 1, default 1; no content.
fn parse_pause(
    tree: &Tree,
    element: &Element,
    warnings: &mut Vec<AttrWarning>,
) -> Result<Verb, TwimlError> {
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
    Ok(Verb::Pause { length_secs })
}

/// `<Hangup>`: no attributes, no content.
fn parse_hangup(tree: &Tree, element: &Element) -> Result<Verb, TwimlError> {
    check_content(element, tree, "Hangup", false)?;
    Ok(Verb::Hangup)
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
