//! Path matching for `/2010-04-01/…`, done by hand so that authentication runs before any
//! route- or SID-specific work and unknown paths get the same treatment as unknown SIDs.

use std::str::FromStr;

use store::{CallSid, RecordingSid, TranscriptionSid};

/// What a recording path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.json`: metadata.
    Json,
    /// No extension or `.wav`.
    Wav,
    Mp3,
}

/// A path's SIDs arrive parsed: only a well-formed SID of the right kind makes a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `Accounts/{AC}/Recordings.json`
    RecordingList,
    /// `Accounts/{AC}/Recordings/{RE}[.json|.wav|.mp3]`
    Recording { sid: RecordingSid, format: Format },
    /// `Accounts/{AC}/Calls.json`
    CallList,
    /// `Accounts/{AC}/Calls/{CA}.json`
    Call { sid: CallSid },
    /// `Accounts/{AC}/Calls/{CA}/Recordings.json`
    CallRecordingList { call_sid: CallSid },
    /// `Accounts/{AC}/Calls/{CA}/Recordings/{RE}.json`
    CallRecording {
        call_sid: CallSid,
        sid: RecordingSid,
    },
    /// `Accounts/{AC}/Calls/{CA}/Recordings/Twilio.CURRENT.json` (POST only: the recording in
    /// progress)
    CallRecordingCurrent { call_sid: CallSid },
    /// `Accounts/{AC}/Transcriptions.json`
    TranscriptionList,
    /// `Accounts/{AC}/Transcriptions/{TR}.json` (`text: false`) or `.txt` (`text: true`)
    Transcription { sid: TranscriptionSid, text: bool },
    /// `Accounts/{AC}/Recordings/{RE}/Transcriptions.json`
    RecordingTranscriptionList { recording_sid: RecordingSid },
    /// `Accounts/{AC}/Recordings/{RE}/Transcriptions/{TR}.json`
    RecordingTranscription {
        recording_sid: RecordingSid,
        sid: TranscriptionSid,
    },
    /// Anything else, including well-shaped paths whose SID is malformed.
    Unknown,
}

impl Route {
    /// Media routes may be served without credentials (`http.media_auth = "none"`).
    pub fn is_media(&self) -> bool {
        matches!(
            self,
            Route::Recording {
                format: Format::Wav | Format::Mp3,
                ..
            }
        )
    }

    /// The call a POST to this route acts on while it is up (update, recordings): the routes
    /// a cluster sends to the call's node.
    pub fn live_call(&self) -> Option<&CallSid> {
        match self {
            Route::Call { sid } => Some(sid),
            Route::CallRecordingList { call_sid }
            | Route::CallRecording { call_sid, .. }
            | Route::CallRecordingCurrent { call_sid } => Some(call_sid),
            _ => None,
        }
    }
}

/// `PREFIX` + 32 hex digits (SPEC §0); defined with the SID types in `store`.
pub use store::is_sid;

fn sid<T: FromStr>(text: &str) -> Option<T> {
    text.parse().ok()
}

/// Splits `/2010-04-01/Accounts/{AC}/…` into the path account (if the path names one) and the
/// route. Only the path is given, never the query.
pub fn parse(path: &str) -> (Option<&str>, Route) {
    let Some(rest) = path.strip_prefix("/2010-04-01/Accounts/") else {
        return (None, Route::Unknown);
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let Some((&account, tail)) = segs.split_first() else {
        return (None, Route::Unknown);
    };
    if account.is_empty() {
        return (None, Route::Unknown);
    }
    // `Accounts/{AC}.json` (the account resource) is not served.
    let route = match tail {
        ["Recordings.json"] => Route::RecordingList,
        ["Recordings", file] => recording_file(file),
        ["Calls.json"] => Route::CallList,
        ["Calls", file] => match file.strip_suffix(".json").and_then(sid) {
            Some(sid) => Route::Call { sid },
            None => Route::Unknown,
        },
        ["Calls", call, "Recordings.json"] => match sid(call) {
            Some(call_sid) => Route::CallRecordingList { call_sid },
            None => Route::Unknown,
        },
        ["Calls", call, "Recordings", "Twilio.CURRENT.json"] => match sid(call) {
            Some(call_sid) => Route::CallRecordingCurrent { call_sid },
            None => Route::Unknown,
        },
        ["Calls", call, "Recordings", file] => {
            match (sid(call), file.strip_suffix(".json").and_then(sid)) {
                (Some(call_sid), Some(sid)) => Route::CallRecording { call_sid, sid },
                _ => Route::Unknown,
            }
        }
        ["Transcriptions.json"] => Route::TranscriptionList,
        ["Transcriptions", file] => {
            // No extension (the callback's TranscriptionUrl) is the JSON, like Twilio's.
            let (sid_text, text) = match (file.strip_suffix(".json"), file.strip_suffix(".txt")) {
                (Some(sid), _) => (sid, false),
                (_, Some(sid)) => (sid, true),
                _ => (*file, false),
            };
            match sid(sid_text) {
                Some(sid) => Route::Transcription { sid, text },
                None => Route::Unknown,
            }
        }
        ["Recordings", recording, "Transcriptions.json"] => match sid(recording) {
            Some(recording_sid) => Route::RecordingTranscriptionList { recording_sid },
            None => Route::Unknown,
        },
        ["Recordings", recording, "Transcriptions", file] => {
            match (
                sid(recording),
                sid(file.strip_suffix(".json").unwrap_or(file)),
            ) {
                (Some(recording_sid), Some(sid)) => {
                    Route::RecordingTranscription { recording_sid, sid }
                }
                _ => Route::Unknown,
            }
        }
        _ => Route::Unknown,
    };
    (Some(account), route)
}

fn recording_file(file: &str) -> Route {
    let (text, format) = if let Some(sid) = file.strip_suffix(".json") {
        (sid, Format::Json)
    } else if let Some(sid) = file.strip_suffix(".wav") {
        (sid, Format::Wav)
    } else if let Some(sid) = file.strip_suffix(".mp3") {
        (sid, Format::Mp3)
    } else {
        (file, Format::Wav)
    };
    match sid(text) {
        Some(sid) => Route::Recording { sid, format },
        None => Route::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "AC0123456789abcdef0123456789abcdef";
    const CA: &str = "CA0123456789abcdef0123456789abcdef";
    const RE: &str = "RE0123456789abcdef0123456789ABCDEF";
    const TR: &str = "TR0123456789abcdef0123456789abcdef";

    fn p(rest: &str) -> (Option<String>, Route) {
        let path = format!("/2010-04-01/Accounts/{rest}");
        let (a, r) = parse(&path);
        (a.map(str::to_string), r)
    }

    fn ca() -> CallSid {
        CA.parse().unwrap()
    }

    fn re() -> RecordingSid {
        RE.parse().unwrap()
    }

    fn tr() -> TranscriptionSid {
        TR.parse().unwrap()
    }

    #[test]
    fn sid_is_prefix_and_32_hex_digits() {
        assert!(is_sid(RE, "RE"));
        assert!(!is_sid(RE, "CA"));
        assert!(!is_sid(&RE[..33], "RE"));
        assert!(!is_sid("RE0123456789abcdef0123456789abcdeg", "RE"));
        // Multi-byte characters must not cause a slicing panic.
        assert!(!is_sid("RÉ0123456789abcdef0123456789abcde", "RE"));
    }

    #[test]
    fn recording_paths_by_extension() {
        let r = |ext: &str| p(&format!("{AC}/Recordings/{RE}{ext}")).1;
        assert_eq!(
            r(".json"),
            Route::Recording {
                sid: re(),
                format: Format::Json
            }
        );
        assert_eq!(
            r(""),
            Route::Recording {
                sid: re(),
                format: Format::Wav
            }
        );
        assert_eq!(
            r(".wav"),
            Route::Recording {
                sid: re(),
                format: Format::Wav
            }
        );
        assert_eq!(
            r(".mp3"),
            Route::Recording {
                sid: re(),
                format: Format::Mp3
            }
        );
        assert_eq!(r(".ogg"), Route::Unknown);
        assert!(r("").is_media() && r(".mp3").is_media() && !r(".json").is_media());
    }

    #[test]
    fn list_and_call_paths() {
        assert_eq!(
            p(&format!("{AC}/Recordings.json")),
            (Some(AC.to_string()), Route::RecordingList)
        );
        assert_eq!(p(&format!("{AC}/Calls.json")).1, Route::CallList);
        assert_eq!(
            p(&format!("{AC}/Calls/{CA}.json")).1,
            Route::Call { sid: ca() }
        );
        assert_eq!(
            p(&format!("{AC}/Calls/{CA}/Recordings.json")).1,
            Route::CallRecordingList { call_sid: ca() }
        );
        assert_eq!(
            p(&format!("{AC}/Calls/{CA}/Recordings/{RE}.json")).1,
            Route::CallRecording {
                call_sid: ca(),
                sid: re()
            }
        );
    }

    #[test]
    fn transcription_paths() {
        assert_eq!(
            p(&format!("{AC}/Transcriptions.json")),
            (Some(AC.to_string()), Route::TranscriptionList)
        );
        assert_eq!(
            p(&format!("{AC}/Transcriptions/{TR}.json")).1,
            Route::Transcription {
                sid: tr(),
                text: false
            }
        );
        assert_eq!(
            p(&format!("{AC}/Transcriptions/{TR}")).1,
            Route::Transcription {
                sid: tr(),
                text: false
            },
            "no extension is the JSON (TranscriptionUrl)"
        );
        assert_eq!(
            p(&format!("{AC}/Transcriptions/{TR}.txt")).1,
            Route::Transcription {
                sid: tr(),
                text: true
            }
        );
        assert_eq!(
            p(&format!("{AC}/Recordings/{RE}/Transcriptions.json")).1,
            Route::RecordingTranscriptionList {
                recording_sid: re()
            }
        );
        assert_eq!(
            p(&format!("{AC}/Recordings/{RE}/Transcriptions/{TR}.json")).1,
            Route::RecordingTranscription {
                recording_sid: re(),
                sid: tr()
            }
        );
        assert!(!p(&format!("{AC}/Transcriptions/{TR}.txt")).1.is_media());
    }

    #[test]
    fn malformed_sids_and_other_paths_are_unknown_but_keep_the_account() {
        assert_eq!(
            p(&format!("{AC}/Calls/{RE}.json")),
            (Some(AC.to_string()), Route::Unknown)
        );
        assert_eq!(p(&format!("{AC}/Recordings/RE1.json")).1, Route::Unknown);
        assert_eq!(p(&format!("{AC}/Recordings.json/")).1, Route::Unknown);
        assert_eq!(p(&format!("{AC}/Calls/{CA}")).1, Route::Unknown);
        assert_eq!(
            p(&format!("{AC}/Transcriptions/{RE}.json")).1,
            Route::Unknown
        );
        assert_eq!(
            p(&format!("{AC}/Transcriptions/{TR}.wav")).1,
            Route::Unknown
        );
        assert_eq!(
            p(&format!("{AC}/Recordings/{RE}/Transcriptions/{TR}.txt")).1,
            Route::Unknown
        );
        assert_eq!(
            p(&format!("{AC}/Recordings/{TR}/Transcriptions.json")).1,
            Route::Unknown
        );
        assert_eq!(p(AC).1, Route::Unknown);
        assert_eq!(parse("/2010-04-01/Accounts/"), (None, Route::Unknown));
        assert_eq!(parse("/2010-04-01/Other"), (None, Route::Unknown));
    }
}
