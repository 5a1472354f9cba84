//! Request bodies of the live call-control API (SPEC §7 table): JSON in, validated
//! [`RecordResponse`] / [`PlayPrompt`] out, or an error naming the field. Unknown fields are
//! ignored and `null` means "not given", as Graph does.

use serde_json::{Map, Value};

use crate::control::{PlayPrompt, RecordResponse};

/// Longest `clientContext`, in characters (Graph's limit).
pub const MAX_CLIENT_CONTEXT_CHARS: usize = 256;
/// Range of each recordResponse timer, in seconds.
pub const TIMEOUT_RANGE: (i64, i64) = (1, 120);
const DEFAULT_TIMEOUT_SECS: u32 = 5;
const PROMPT_TYPE: &str = "#microsoft.graph.mediaPrompt";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is not a JSON object: {0}")]
    NotJson(String),
    #[error("{field} must be {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
    },
    #[error("{field} must be between {min} and {max}, got {got}")]
    OutOfRange {
        field: &'static str,
        min: i64,
        max: i64,
        got: String,
    },
    #[error("prompts holds {0} prompts; recordResponse takes at most one")]
    TooManyPrompts(usize),
    #[error("prompts must hold at least one prompt")]
    NoPrompts,
    #[error("{field} is required")]
    Missing { field: String },
    #[error("{field} must be an http or https URL")]
    BadUri { field: String },
    #[error("{field} must be \"{PROMPT_TYPE}\"")]
    BadPromptType { field: String },
    #[error("{field} must be one character of 0-9, * or #, got {got:?}")]
    BadTone { field: String, got: String },
    #[error("clientContext is {0} characters long; at most 256 are allowed")]
    ClientContextTooLong(usize),
}

/// A `recordResponse` body with SPEC §7's defaults.
pub fn record_response(body: &[u8]) -> Result<RecordResponse, BodyError> {
    let obj = object(body)?;
    let prompts = prompts(&obj)?;
    if prompts.len() > 1 {
        return Err(BodyError::TooManyPrompts(prompts.len()));
    }
    Ok(RecordResponse {
        prompt_uri: prompts.into_iter().next(),
        barge_in_allowed: boolean(&obj, "bargeInAllowed", false)?,
        initial_silence_timeout_secs: timeout(&obj, "initialSilenceTimeoutInSeconds")?,
        max_silence_timeout_secs: timeout(&obj, "maxSilenceTimeoutInSeconds")?,
        max_record_duration_secs: timeout(&obj, "maxRecordDurationInSeconds")?,
        play_beep: boolean(&obj, "playBeep", true)?,
        stop_tones: stop_tones(&obj)?,
        client_context: client_context(&obj)?,
    })
}

/// A `playPrompt` body: one prompt or more.
pub fn play_prompt(body: &[u8]) -> Result<PlayPrompt, BodyError> {
    let obj = object(body)?;
    let prompt_uris = prompts(&obj)?;
    if prompt_uris.is_empty() {
        return Err(BodyError::NoPrompts);
    }
    Ok(PlayPrompt {
        prompt_uris,
        barge_in_allowed: boolean(&obj, "bargeInAllowed", false)?,
        client_context: client_context(&obj)?,
    })
}

/// A `subscribeToTone` body: its `clientContext`.
pub fn subscribe_to_tone(body: &[u8]) -> Result<Option<String>, BodyError> {
    client_context(&object(body)?)
}

/// The body as a JSON object; an empty body counts as `{}` (every field has a default).
fn object(body: &[u8]) -> Result<Map<String, Value>, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(BodyError::NotJson(format!("got {}", kind(&other)))),
        Err(e) => Err(BodyError::NotJson(e.to_string())),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The field, `None` when absent or `null`.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn wrong(field: impl Into<String>, expected: &'static str) -> BodyError {
    BodyError::WrongType {
        field: field.into(),
        expected,
    }
}

fn boolean(obj: &Map<String, Value>, name: &str, default: bool) -> Result<bool, BodyError> {
    match field(obj, name) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(wrong(name, "a boolean")),
    }
}

fn timeout(obj: &Map<String, Value>, name: &'static str) -> Result<u32, BodyError> {
    let Some(v) = field(obj, name) else {
        return Ok(DEFAULT_TIMEOUT_SECS);
    };
    let (min, max) = TIMEOUT_RANGE;
    let out_of_range = |got: String| BodyError::OutOfRange {
        field: name,
        min,
        max,
        got,
    };
    match v.as_i64() {
        Some(n) if (min..=max).contains(&n) => {
            u32::try_from(n).map_err(|_| out_of_range(n.to_string()))
        }
        Some(n) => Err(out_of_range(n.to_string())),
        // Integers past i64::MAX are still integers, just far out of range.
        None if v.is_u64() => Err(out_of_range(v.to_string())),
        None => Err(wrong(name, "an integer")),
    }
}

/// `mediaInfo.uri` of each prompt, in order.
fn prompts(obj: &Map<String, Value>) -> Result<Vec<String>, BodyError> {
    let items = match field(obj, "prompts") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(wrong("prompts", "an array of mediaPrompt objects")),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let at = format!("prompts[{i}]");
            let Value::Object(p) = p else {
                return Err(wrong(at, "a mediaPrompt object"));
            };
            match field(p, "@odata.type") {
                None => {}
                Some(Value::String(t)) if t == PROMPT_TYPE => {}
                Some(_) => {
                    return Err(BodyError::BadPromptType {
                        field: format!("{at}.@odata.type"),
                    })
                }
            }
            let info = match field(p, "mediaInfo") {
                None => {
                    return Err(BodyError::Missing {
                        field: format!("{at}.mediaInfo"),
                    })
                }
                Some(Value::Object(info)) => info,
                Some(_) => return Err(wrong(format!("{at}.mediaInfo"), "an object")),
            };
            if let Some(r) = field(info, "resourceId") {
                if !r.is_string() {
                    return Err(wrong(format!("{at}.mediaInfo.resourceId"), "a string"));
                }
            }
            let uri_field = format!("{at}.mediaInfo.uri");
            match field(info, "uri") {
                None => Err(BodyError::Missing { field: uri_field }),
                Some(Value::String(uri)) if is_http_url(uri) => Ok(uri.clone()),
                Some(Value::String(_)) => Err(BodyError::BadUri { field: uri_field }),
                Some(_) => Err(wrong(uri_field, "a string")),
            }
        })
        .collect()
}

/// `http(s)://` and a host; the daemon fetches prompts over HTTP only.
pub fn is_http_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        s.get(8..)
    } else if lower.starts_with("http://") {
        s.get(7..)
    } else {
        None
    };
    rest.is_some_and(|r| {
        !r.is_empty()
            && !r.starts_with('/')
            && !r.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

fn stop_tones(obj: &Map<String, Value>) -> Result<Vec<char>, BodyError> {
    let items = match field(obj, "stopTones") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(wrong("stopTones", "an array of strings")),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let at = format!("stopTones[{i}]");
            let Value::String(s) = t else {
                return Err(wrong(at, "a string"));
            };
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => Ok(c),
                _ => Err(BodyError::BadTone {
                    field: at,
                    got: s.clone(),
                }),
            }
        })
        .collect()
}

fn client_context(obj: &Map<String, Value>) -> Result<Option<String>, BodyError> {
    match field(obj, "clientContext") {
        None => Ok(None),
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n > MAX_CLIENT_CONTEXT_CHARS {
                Err(BodyError::ClientContextTooLong(n))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(_) => Err(wrong("clientContext", "a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(body: &str) -> Result<RecordResponse, BodyError> {
        record_response(body.as_bytes())
    }

    fn prompt(uri: &str) -> String {
        format!(
            r#"{{"@odata.type":"{PROMPT_TYPE}","mediaInfo":{{"uri":"{uri}","resourceId":"r1"}}}}"#
        )
    }

    #[test]
    fn empty_record_response_gets_spec_defaults() {
        let want = RecordResponse {
            prompt_uri: None,
            barge_in_allowed: false,
            initial_silence_timeout_secs: 5,
            max_silence_timeout_secs: 5,
            max_record_duration_secs: 5,
            play_beep: true,
            stop_tones: vec![],
            client_context: None,
        };
        assert_eq!(rr("{}"), Ok(want.clone()));
        assert_eq!(rr(""), Ok(want.clone()));
        // null is "not given".
        assert_eq!(
            rr(r#"{"playBeep":null,"prompts":null,"clientContext":null}"#),
            Ok(want)
        );
    }

    #[test]
    fn full_record_response_is_taken_as_given_and_unknown_fields_ignored() {
        let body = format!(
            r##"{{"prompts":[{}],"bargeInAllowed":true,"initialSilenceTimeoutInSeconds":1,
            "maxSilenceTimeoutInSeconds":120,"maxRecordDurationInSeconds":60,"playBeep":false,
            "stopTones":["#","*","0","9"],"clientContext":"ctx","futureField":{{"x":1}}}}"##,
            prompt("https://bot.example/hello.wav")
        );
        assert_eq!(
            rr(&body),
            Ok(RecordResponse {
                prompt_uri: Some("https://bot.example/hello.wav".into()),
                barge_in_allowed: true,
                initial_silence_timeout_secs: 1,
                max_silence_timeout_secs: 120,
                max_record_duration_secs: 60,
                play_beep: false,
                stop_tones: vec!['#', '*', '0', '9'],
                client_context: Some("ctx".into()),
            })
        );
    }

    #[test]
    fn record_response_takes_at_most_one_prompt() {
        let two = format!(
            r#"{{"prompts":[{},{}]}}"#,
            prompt("http://a/1"),
            prompt("http://a/2")
        );
        assert_eq!(rr(&two), Err(BodyError::TooManyPrompts(2)));
    }

    #[test]
    fn each_timer_is_1_to_120_seconds() {
        for name in [
            "initialSilenceTimeoutInSeconds",
            "maxSilenceTimeoutInSeconds",
            "maxRecordDurationInSeconds",
        ] {
            for bad in ["0", "121", "-1", "18446744073709551615"] {
                let err = rr(&format!(r#"{{"{name}":{bad}}}"#)).unwrap_err();
                assert_eq!(
                    err.to_string(),
                    format!("{name} must be between 1 and 120, got {bad}")
                );
            }
            for bad in ["5.5", "\"5\"", "true"] {
                let err = rr(&format!(r#"{{"{name}":{bad}}}"#)).unwrap_err();
                assert_eq!(err.to_string(), format!("{name} must be an integer"));
            }
        }
    }

    #[test]
    fn client_context_is_at_most_256_characters() {
        let ok = "é".repeat(256);
        assert_eq!(
            rr(&format!(r#"{{"clientContext":"{ok}"}}"#)).map(|r| r.client_context),
            Ok(Some(ok))
        );
        let long = "a".repeat(257);
        assert_eq!(
            rr(&format!(r#"{{"clientContext":"{long}"}}"#)),
            Err(BodyError::ClientContextTooLong(257))
        );
        assert_eq!(
            rr(r#"{"clientContext":7}"#).unwrap_err().to_string(),
            "clientContext must be a string"
        );
    }

    #[test]
    fn stop_tones_are_single_dtmf_characters() {
        for bad in ["12", "x", "", "A"] {
            assert_eq!(
                rr(&format!(r#"{{"stopTones":["1","{bad}"]}}"#)),
                Err(BodyError::BadTone {
                    field: "stopTones[1]".into(),
                    got: bad.into()
                })
            );
        }
        assert_eq!(
            rr(r##"{"stopTones":"#"}"##).unwrap_err().to_string(),
            "stopTones must be an array of strings"
        );
        assert_eq!(
            rr(r#"{"stopTones":[1]}"#).unwrap_err().to_string(),
            "stopTones[0] must be a string"
        );
    }

    #[test]
    fn booleans_must_be_json_booleans() {
        assert_eq!(
            rr(r#"{"bargeInAllowed":"true"}"#).unwrap_err().to_string(),
            "bargeInAllowed must be a boolean"
        );
        assert_eq!(
            rr(r#"{"playBeep":1}"#).unwrap_err().to_string(),
            "playBeep must be a boolean"
        );
    }

    #[test]
    fn prompt_shape_errors_name_the_field() {
        let cases = [
            (
                r#"{"prompts":{}}"#,
                "prompts must be an array of mediaPrompt objects",
            ),
            (
                r#"{"prompts":["x"]}"#,
                "prompts[0] must be a mediaPrompt object",
            ),
            (r#"{"prompts":[{}]}"#, "prompts[0].mediaInfo is required"),
            (
                r#"{"prompts":[{"mediaInfo":{}}]}"#,
                "prompts[0].mediaInfo.uri is required",
            ),
            (
                r#"{"prompts":[{"mediaInfo":[]}]}"#,
                "prompts[0].mediaInfo must be an object",
            ),
            (
                r#"{"prompts":[{"mediaInfo":{"uri":3}}]}"#,
                "prompts[0].mediaInfo.uri must be a string",
            ),
            (
                r#"{"prompts":[{"mediaInfo":{"uri":"file:///etc/passwd"}}]}"#,
                "prompts[0].mediaInfo.uri must be an http or https URL",
            ),
            (
                r#"{"prompts":[{"mediaInfo":{"uri":"http://a/b","resourceId":1}}]}"#,
                "prompts[0].mediaInfo.resourceId must be a string",
            ),
            (
                r##"{"prompts":[{"@odata.type":"#microsoft.graph.other","mediaInfo":{"uri":"http://a/b"}}]}"##,
                "prompts[0].@odata.type must be \"#microsoft.graph.mediaPrompt\"",
            ),
        ];
        for (body, msg) in cases {
            assert_eq!(rr(body).unwrap_err().to_string(), msg, "{body}");
        }
    }

    #[test]
    fn body_must_be_a_json_object() {
        assert!(matches!(rr("not json"), Err(BodyError::NotJson(_))));
        assert_eq!(
            rr("[1]").unwrap_err().to_string(),
            "the request body is not a JSON object: got an array"
        );
        assert!(matches!(play_prompt(b"{"), Err(BodyError::NotJson(_))));
    }

    #[test]
    fn play_prompt_needs_one_prompt_or_more_and_keeps_their_order() {
        assert_eq!(play_prompt(b"{}"), Err(BodyError::NoPrompts));
        assert_eq!(play_prompt(br#"{"prompts":[]}"#), Err(BodyError::NoPrompts));
        let body = format!(
            r#"{{"prompts":[{},{}],"clientContext":"c"}}"#,
            prompt("https://a/1.wav"),
            prompt("HTTP://a/2.wav")
        );
        assert_eq!(
            play_prompt(body.as_bytes()),
            Ok(PlayPrompt {
                prompt_uris: vec!["https://a/1.wav".into(), "HTTP://a/2.wav".into()],
                barge_in_allowed: false,
                client_context: Some("c".into()),
            })
        );
    }

    #[test]
    fn subscribe_to_tone_reads_client_context() {
        assert_eq!(subscribe_to_tone(b""), Ok(None));
        assert_eq!(
            subscribe_to_tone(br#"{"clientContext":"t"}"#),
            Ok(Some("t".into()))
        );
        assert!(subscribe_to_tone(br#"{"clientContext":false}"#).is_err());
    }

    #[test]
    fn http_urls_need_a_scheme_and_a_host() {
        assert!(is_http_url("https://h/x.wav"));
        assert!(is_http_url("http://h:8080"));
        assert!(!is_http_url("https://"));
        assert!(!is_http_url("https:///x"));
        assert!(!is_http_url("ftp://h/x"));
        assert!(!is_http_url("http://h/a b"));
        assert!(!is_http_url("héllo"));
    }
}
