//! Hark's typed domain, defined once for the workspace: statuses, sources, HTTP methods and
//! SIDs. Each value prints as exactly the string Twilio (and the database) has always used, and
//! parses back only from that string, so rows, JSON, form parameters and existing SQLite files
//! are unchanged by the types.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::db::{FromValue, Param, ToParam, Value};

/// A string that is not one of a domain type's values.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {what}: {value:?}")]
pub struct ParseError {
    /// Which type was asked for, e.g. `call status`.
    pub what: &'static str,
    /// The refused text.
    pub value: String,
}

/// SQL and JSON as the value's text (`as_str`/`FromStr`): how every enum and SID here is stored
/// and sent.
macro_rules! text_codec {
    ($name:ident) => {
        impl ToParam for $name {
            fn to_param(&self) -> Param<'_> {
                Param::Text(self.as_str())
            }
        }

        impl FromValue for $name {
            fn from_value(value: &Value) -> Result<Self, String> {
                match value {
                    Value::Text(s) => s.parse().map_err(|e: ParseError| e.to_string()),
                    other => Err(format!("{other} is not text")),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// An enum whose every variant is one fixed string: `as_str`, `Display`, `FromStr`,
/// `TryFrom<&str>`, SQL and serde, all as that string.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(ParseError { what: $what, value: s.to_owned() }),
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = ParseError;
            fn try_from(s: &str) -> Result<Self, ParseError> {
                s.parse()
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        text_codec!($name);
    };
}

string_enum!(
    /// A call's `Status` (REST) and `CallStatus` (webhooks).
    CallStatus, "call status" {
        Queued => "queued",
        Ringing => "ringing",
        InProgress => "in-progress",
        Completed => "completed",
        Busy => "busy",
        NoAnswer => "no-answer",
        Failed => "failed",
        Canceled => "canceled",
    }
);

impl CallStatus {
    /// Whether the call is over (`completed`, `busy`, `no-answer`, `failed`, `canceled`).
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            CallStatus::Queued | CallStatus::Ringing | CallStatus::InProgress
        )
    }
}

string_enum!(
    /// A recording's `Status`, as Twilio has them, plus `deleted` for soft-deleted rows.
    RecordingStatus, "recording status" {
        InProgress => "in-progress",
        Paused => "paused",
        Stopped => "stopped",
        Processing => "processing",
        Completed => "completed",
        Absent => "absent",
        Failed => "failed",
        /// Soft-deleted (`DELETE`); the row stays for `IncludeSoftDeleted`.
        Deleted => "deleted",
    }
);

impl RecordingStatus {
    /// Still being written: `in-progress` or `paused`.
    pub fn is_unfinished(&self) -> bool {
        matches!(self, RecordingStatus::InProgress | RecordingStatus::Paused)
    }
}

string_enum!(
    /// A transcription's `status` (SPEC §3.7).
    TranscriptionStatus, "transcription status" {
        Queued => "queued",
        InProgress => "in-progress",
        Completed => "completed",
        Failed => "failed",
    }
);

string_enum!(
    /// What started a recording (`Source`).
    RecordingSource, "recording source" {
        RecordVerb => "RecordVerb",
        /// A Graph bot's `recordResponse` operation.
        RecordResponse => "RecordResponse",
        DialVerb => "DialVerb",
        Conference => "Conference",
        OutboundApi => "OutboundAPI",
        Trunking => "Trunking",
        StartCallRecordingApi => "StartCallRecordingAPI",
    }
);

string_enum!(
    /// A call's `Direction`.
    Direction, "call direction" {
        Inbound => "inbound",
        OutboundApi => "outbound-api",
        OutboundDial => "outbound-dial",
    }
);

/// The method of a webhook or TwiML fetch. Prints as `GET` / `POST`; parses either case, as
/// TwiML attributes and REST parameters are case-insensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    Get,
    Post,
}

impl HttpMethod {
    pub const ALL: &'static [HttpMethod] = &[HttpMethod::Get, HttpMethod::Post];

    pub fn as_str(&self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HttpMethod {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        if s.eq_ignore_ascii_case("GET") {
            Ok(HttpMethod::Get)
        } else if s.eq_ignore_ascii_case("POST") {
            Ok(HttpMethod::Post)
        } else {
            Err(ParseError {
                what: "HTTP method",
                value: s.to_owned(),
            })
        }
    }
}

impl TryFrom<&str> for HttpMethod {
    type Error = ParseError;
    fn try_from(s: &str) -> Result<Self, ParseError> {
        s.parse()
    }
}

text_codec!(HttpMethod);

/// A Twilio-style identifier: two-letter prefix and 32 hex digits (128 bits). Hark mints lower
/// case; either case parses, as the REST routes and `account.sid` have always accepted it.
macro_rules! sid_type {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// The SID whose 32 hex digits are `bits` (injected randomness, tests).
            pub fn from_bits(bits: u128) -> Self {
                $name(format!("{}{bits:032x}", $prefix))
            }

            /// A fresh SID from 128 random bits.
            pub fn new_random() -> Self {
                Self::from_bits(rand::random())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                if is_sid(s, $prefix) {
                    Ok($name(s.to_owned()))
                } else {
                    Err(ParseError { what: stringify!($name), value: s.to_owned() })
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = ParseError;
            fn try_from(s: &str) -> Result<Self, ParseError> {
                s.parse()
            }
        }

        text_codec!($name);

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

/// `prefix` followed by exactly 32 hex digits (either case): the shape of every SID (SPEC §0).
pub fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == prefix.len() + 32
        && s.starts_with(prefix)
        && s.as_bytes()[prefix.len()..]
            .iter()
            .all(u8::is_ascii_hexdigit)
}

sid_type!(
    /// `CA…`: a call.
    CallSid, "CA"
);
sid_type!(
    /// `RE…`: a recording.
    RecordingSid, "RE"
);
sid_type!(
    /// `TR…`: a transcription.
    TranscriptionSid, "TR"
);
sid_type!(
    /// `AC…`: an account.
    AccountSid, "AC"
);
sid_type!(
    /// `SK…`: an API key (`[[api_key]]`): REST Basic auth and access-token signing.
    ApiKeySid, "SK"
);
sid_type!(
    /// `AP…`: a TwiML application (`[[application]]`) that client calls run.
    ApplicationSid, "AP"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The value as a column holds it.
    fn stored(v: &impl ToParam) -> Value {
        match v.to_param() {
            Param::Text(s) => Value::Text(s.to_owned()),
            other => panic!("stored as {other:?}"),
        }
    }

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr<Err = ParseError> + ToParam,
        T: FromValue + serde::Serialize + serde::de::DeserializeOwned,
    {
        for v in all {
            let text = v.to_string();
            assert_eq!(text.parse::<T>().unwrap(), *v);
            let stored = stored(v);
            assert_eq!(stored, Value::Text(text.clone()));
            assert_eq!(T::from_value(&stored).unwrap(), *v);
            let json = serde_json::to_string(v).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), *v);
        }
    }

    #[test]
    fn every_enum_round_trips_through_text_sql_and_json() {
        round_trips(CallStatus::ALL);
        round_trips(RecordingStatus::ALL);
        round_trips(TranscriptionStatus::ALL);
        round_trips(RecordingSource::ALL);
        round_trips(Direction::ALL);
        round_trips(HttpMethod::ALL);
    }

    #[test]
    fn strings_are_todays() {
        let call: Vec<&str> = CallStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            call,
            [
                "queued",
                "ringing",
                "in-progress",
                "completed",
                "busy",
                "no-answer",
                "failed",
                "canceled"
            ]
        );
        let rec: Vec<&str> = RecordingStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            rec,
            [
                "in-progress",
                "paused",
                "stopped",
                "processing",
                "completed",
                "absent",
                "failed",
                "deleted"
            ]
        );
        let tr: Vec<&str> = TranscriptionStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(tr, ["queued", "in-progress", "completed", "failed"]);
        assert_eq!(RecordingSource::RecordVerb.as_str(), "RecordVerb");
        assert_eq!(RecordingSource::RecordResponse.as_str(), "RecordResponse");
        assert_eq!(RecordingSource::OutboundApi.as_str(), "OutboundAPI");
        assert_eq!(
            RecordingSource::StartCallRecordingApi.as_str(),
            "StartCallRecordingAPI"
        );
        assert_eq!(Direction::Inbound.as_str(), "inbound");
        assert_eq!(HttpMethod::Get.as_str(), "GET");
        assert_eq!(HttpMethod::Post.as_str(), "POST");
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let e = "done".parse::<CallStatus>().unwrap_err();
        assert_eq!(
            e,
            ParseError {
                what: "call status",
                value: "done".into()
            }
        );
        assert_eq!(e.to_string(), "invalid call status: \"done\"");
        // Exact strings only: no case folding, no padding.
        assert!("Completed".parse::<CallStatus>().is_err());
        assert!(" completed".parse::<RecordingStatus>().is_err());
        assert!("recordverb".parse::<RecordingSource>().is_err());
        assert!("".parse::<TranscriptionStatus>().is_err());
        assert!("PUT".parse::<HttpMethod>().is_err());
        assert_eq!("get".parse::<HttpMethod>().unwrap(), HttpMethod::Get);
        let bad = RecordingStatus::from_value(&Value::Text("gone".into()));
        assert_eq!(bad, Err("invalid recording status: \"gone\"".to_owned()));
        assert!(CallStatus::from_value(&Value::Int(1)).is_err());
        assert!(serde_json::from_str::<Direction>("\"sideways\"").is_err());
    }

    #[test]
    fn sids_parse_print_and_mint() {
        let text = "CA0123456789abcdef0123456789abcdef";
        let sid: CallSid = text.parse().unwrap();
        assert_eq!(sid.as_str(), text);
        assert_eq!(sid.to_string(), text);
        assert_eq!(
            RecordingSid::from_bits(0xff).as_str(),
            "RE000000000000000000000000000000ff"
        );
        let minted = TranscriptionSid::new_random();
        assert_eq!(minted.as_str().parse::<TranscriptionSid>().unwrap(), minted);
        assert_ne!(TranscriptionSid::new_random(), minted);
        assert_eq!(AccountSid::PREFIX, "AC");
        assert_eq!(CallSid::from_value(&stored(&sid)).unwrap(), sid);
        assert!(CallSid::from_value(&Value::Text("CA1".into())).is_err());
        assert_eq!(serde_json::to_string(&sid).unwrap(), format!("\"{text}\""));
        assert!(serde_json::from_str::<RecordingSid>(&format!("\"{text}\"")).is_err());
        // Upper-case hex parses (configured account SIDs, REST paths); minted SIDs are lower.
        let upper = "AC0123456789ABCDEF0123456789ABCDEF";
        assert_eq!(upper.parse::<AccountSid>().unwrap().as_str(), upper);
        assert!(minted.as_str()[2..]
            .bytes()
            .all(|b| !b.is_ascii_uppercase()));
    }

    #[test]
    fn bad_sids_are_refused() {
        for bad in [
            "RE0123456789abcdef0123456789abcdef",  // another type's prefix
            "CA0123456789abcdef0123456789abcde",   // 31 digits
            "CA0123456789abcdef0123456789abcdef0", // 33 digits
            "CA0123456789abcdef0123456789abcdeg",  // not hex
            "",
        ] {
            let e = bad.parse::<CallSid>().unwrap_err();
            assert_eq!(e.what, "CallSid");
            assert_eq!(e.value, bad);
        }
    }
}
