//! Path matching for `/2010-04-01/…`, done by hand so that authentication runs before any
//! route- or SID-specific work and unknown paths get the same treatment as unknown SIDs.

/// What a recording path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.json`: metadata.
    Json,
    /// No extension or `.wav`.
    Wav,
    Mp3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `Accounts/{AC}/Recordings.json`
    RecordingList,
    /// `Accounts/{AC}/Recordings/{RE}[.json|.wav|.mp3]`
    Recording { sid: &'a str, format: Format },
    /// `Accounts/{AC}/Calls.json`
    CallList,
    /// `Accounts/{AC}/Calls/{CA}.json`
    Call { sid: &'a str },
    /// `Accounts/{AC}/Calls/{CA}/Recordings.json`
    CallRecordingList { call_sid: &'a str },
    /// `Accounts/{AC}/Calls/{CA}/Recordings/{RE}.json`
    CallRecording { call_sid: &'a str, sid: &'a str },
    /// `Accounts/{AC}/Transcriptions.json`
    TranscriptionList,
    /// `Accounts/{AC}/Transcriptions/{TR}.json` (`text: false`) or `.txt` (`text: true`)
    Transcription { sid: &'a str, text: bool },
    /// `Accounts/{AC}/Recordings/{RE}/Transcriptions.json`
    RecordingTranscriptionList { recording_sid: &'a str },
    /// `Accounts/{AC}/Recordings/{RE}/Transcriptions/{TR}.json`
    RecordingTranscription {
        recording_sid: &'a str,
        sid: &'a str,
    },
    /// Anything else, including well-shaped paths whose SID is malformed.
    Unknown,
}

impl Route<'_> {
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
}

/// `PREFIX` + 32 hex digits (SPEC §0); defined with the SID types in `store`.
pub use store::is_sid;

/// Splits `/2010-04-01/Accounts/{AC}/…` into the path account (if the path names one) and the
/// route. Only the path is given, never the query.
pub fn parse(path: &str) -> (Option<&str>, Route<'_>) {
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
        ["Calls", file] => match file.strip_suffix(".json") {
            Some(sid) if is_sid(sid, "CA") => Route::Call { sid },
            _ => Route::Unknown,
        },
        ["Calls", call_sid, "Recordings.json"] if is_sid(call_sid, "CA") => {
            Route::CallRecordingList { call_sid }
        }
        ["Calls", call_sid, "Recordings", file] if is_sid(call_sid, "CA") => {
            match file.strip_suffix(".json") {
                Some(sid) if is_sid(sid, "RE") => Route::CallRecording { call_sid, sid },
                _ => Route::Unknown,
            }
        }
        ["Transcriptions.json"] => Route::TranscriptionList,
        ["Transcriptions", file] => {
            // No extension (the callback's TranscriptionUrl) is the JSON, like Twilio's.
            let (sid, text) = match (file.strip_suffix(".json"), file.strip_suffix(".txt")) {
                (Some(sid), _) => (sid, false),
                (_, Some(sid)) => (sid, true),
                _ => (*file, false),
            };
            if is_sid(sid, "TR") {
                Route::Transcription { sid, text }
            } else {
                Route::Unknown
            }
        }
        ["Recordings", recording_sid, "Transcriptions.json"] if is_sid(recording_sid, "RE") => {
            Route::RecordingTranscriptionList { recording_sid }
        }
        ["Recordings", recording_sid, "Transcriptions", file] if is_sid(recording_sid, "RE") => {
            match file.strip_suffix(".json").or(Some(*file)) {
                Some(sid) if is_sid(sid, "TR") => {
                    Route::RecordingTranscription { recording_sid, sid }
                }
                _ => Route::Unknown,
            }
        }
        _ => Route::Unknown,
    };
    (Some(account), route)
}

fn recording_file(file: &str) -> Route<'_> {
    let (sid, format) = if let Some(sid) = file.strip_suffix(".json") {
        (sid, Format::Json)
    } else if let Some(sid) = file.strip_suffix(".wav") {
        (sid, Format::Wav)
    } else if let Some(sid) = file.strip_suffix(".mp3") {
        (sid, Format::Mp3)
    } else {
        (file, Format::Wav)
    };
    if is_sid(sid, "RE") {
        Route::Recording { sid, format }
    } else {
        Route::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "AC0123456789abcdef0123456789abcdef";
    const CA: &str = "CA0123456789abcdef0123456789abcdef";
    const RE: &str = "RE0123456789abcdef0123456789ABCDEF";
    const TR: &str = "TR0123456789abcdef0123456789abcdef";

    fn p(rest: &str) -> (Option<String>, Route<'static>) {
        let path: &'static str = Box::leak(format!("/2010-04-01/Accounts/{rest}").into_boxed_str());
        let (a, r) = parse(path);
        (a.map(str::to_string), r)
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
                sid: RE,
                format: Format::Json
            }
        );
        assert_eq!(
            r(""),
            Route::Recording {
                sid: RE,
                format: Format::Wav
            }
        );
        assert_eq!(
            r(".wav"),
            Route::Recording {
                sid: RE,
                format: Format::Wav
            }
        );
        assert_eq!(
            r(".mp3"),
            Route::Recording {
                sid: RE,
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
            Route::Call { sid: CA }
        );
        assert_eq!(
            p(&format!("{AC}/Calls/{CA}/Recordings.json")).1,
            Route::CallRecordingList { call_sid: CA }
        );
        assert_eq!(
            p(&format!("{AC}/Calls/{CA}/Recordings/{RE}.json")).1,
            Route::CallRecording {
                call_sid: CA,
                sid: RE
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
                sid: TR,
                text: false
            }
        );
        assert_eq!(
            p(&format!("{AC}/Transcriptions/{TR}")).1,
            Route::Transcription {
                sid: TR,
                text: false
            },
            "no extension is the JSON (TranscriptionUrl)"
        );
        assert_eq!(
            p(&format!("{AC}/Transcriptions/{TR}.txt")).1,
            Route::Transcription {
                sid: TR,
                text: true
            }
        );
        assert_eq!(
            p(&format!("{AC}/Recordings/{RE}/Transcriptions.json")).1,
            Route::RecordingTranscriptionList { recording_sid: RE }
        );
        assert_eq!(
            p(&format!("{AC}/Recordings/{RE}/Transcriptions/{TR}.json")).1,
            Route::RecordingTranscription {
                recording_sid: RE,
                sid: TR
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
