//! PStream 1.6 frames as the Voice JS SDK 2.18.5 sends and expects them (`pstream.ts`).
//!
//! Every frame is one WebSocket text frame `{"type":T,"version":"1.6","payload":{…}}`, except the
//! heartbeat, which is the text `"\n"`. Client frames are parsed field by field so a malformed one
//! names what is wrong; server frames are printed with exactly the payload keys the SDK reads.

use serde_json::{json, Map, Value};

/// The `version` every frame carries (`PSTREAM_VERSION` in `pstream.ts`).
pub const PSTREAM_VERSION: &str = "1.6";

/// The heartbeat text frame, sent by the server and echoed by the client (`wstransport.ts`).
pub const HEARTBEAT: &str = "\n";

/// One text frame from the client.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientText {
    /// The client's echo of our `"\n"`.
    Heartbeat,
    Frame(ClientFrame),
}

/// A frame the SDK sends (`pstream.ts` `setToken`, `register`, `invite`, `reconnect`, …).
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    /// Sent on every socket open and on every `device.updateToken()`.
    Listen {
        token: String,
        /// Seconds the client would like its signalling to survive a drop (0 by default).
        reconnect_timeout_secs: u64,
        /// `{browser:{platform,userAgent},p,plugin,v}`: kept for logs only.
        browser_info: Option<Value>,
    },
    /// `{media:{audio:true}}` registers (every 30 s), `audio:false` unregisters.
    Register {
        audio: bool,
    },
    Invite(ClientInvite),
    /// The client accepts our incoming call with its SDP answer.
    Answer {
        callsid: String,
        sdp: String,
    },
    /// `callsid` is the CA sid once we sent one, else the client's `TJS…` temporary id.
    Hangup {
        callsid: String,
        message: Option<String>,
    },
    /// The client declines our incoming call (`call.ignore()` sends nothing).
    Reject {
        callsid: String,
    },
    /// Digits sent in signalling because telephone-event was not negotiated.
    Dtmf {
        callsid: String,
        digits: String,
    },
    /// ICE restart: a new offer for a running call, answered with `answer`.
    Reinvite {
        callsid: String,
        sdp: String,
    },
    Message(CallMessage),
}

/// An outgoing call (`device.connect`) or, with `reconnect`, a call rebinding after a drop.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientInvite {
    /// `TJS…` for a new call; the CA sid when reconnecting.
    pub callsid: String,
    pub sdp: String,
    /// `twilio.params`: `encodeURIComponent(k)=encodeURIComponent(v)` joined by `&`.
    pub params: Option<String>,
    /// The opaque token from our `answer{reconnect}`: present only on a reconnect.
    pub reconnect: Option<String>,
}

impl ClientInvite {
    /// The `connect({params})` pairs, URL-decoded, in the client's order.
    pub fn decoded_params(&self) -> Vec<(String, String)> {
        self.params
            .as_deref()
            .map(decode_params)
            .unwrap_or_default()
    }
}

/// `call.sendMessage()`: a user-defined message for the call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallMessage {
    pub callsid: String,
    /// Any JSON value the page passed as `content`.
    pub content: Value,
    pub content_type: String,
    pub message_type: String,
    /// Echoed in our `ack` so the SDK can resolve the message.
    pub voice_event_sid: String,
}

/// A frame that cannot be understood; names the frame and field at fault.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("frame is not a JSON object")]
    NotObject,
    #[error("frame has no string `type`")]
    MissingType,
    #[error("unknown frame type `{0}`")]
    UnknownType(String),
    #[error("`{frame}` frame: missing field `{field}`")]
    MissingField {
        frame: &'static str,
        field: &'static str,
    },
    #[error("`{frame}` frame: field `{field}` is not {expected}")]
    WrongType {
        frame: &'static str,
        field: &'static str,
        expected: &'static str,
    },
}

impl ClientText {
    /// Parses one text frame from the client.
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        if text == HEARTBEAT {
            return Ok(Self::Heartbeat);
        }
        ClientFrame::parse(text).map(Self::Frame)
    }
}

impl ClientFrame {
    /// Parses one JSON frame (not the heartbeat).
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        let (frame_kind, payload) = split_frame(text, &CLIENT_KINDS)?;
        let p = Payload {
            frame: frame_kind,
            map: &payload,
        };
        match frame_kind {
            "listen" => Ok(Self::Listen {
                token: p.string("token")?,
                reconnect_timeout_secs: p.optional_u64("reconnectTimeout")?.unwrap_or(0),
                browser_info: payload.get("browserinfo").cloned(),
            }),
            "register" => {
                let media = p.object("media")?;
                let audio = match media.get("audio") {
                    Some(Value::Bool(audio)) => *audio,
                    Some(_) => return Err(p.wrong("media.audio", "a boolean")),
                    None => return Err(p.missing("media.audio")),
                };
                Ok(Self::Register { audio })
            }
            "invite" => {
                let params = match payload.get("twilio") {
                    None | Some(Value::Null) => None,
                    Some(Value::Object(twilio)) => match twilio.get("params") {
                        None | Some(Value::Null) => None,
                        Some(Value::String(params)) => Some(params.clone()),
                        Some(_) => return Err(p.wrong("twilio.params", "a string")),
                    },
                    Some(_) => return Err(p.wrong("twilio", "an object")),
                };
                Ok(Self::Invite(ClientInvite {
                    callsid: p.string("callsid")?,
                    sdp: p.string("sdp")?,
                    params,
                    reconnect: p.optional_string("reconnect")?,
                }))
            }
            "answer" => Ok(Self::Answer {
                callsid: p.string("callsid")?,
                sdp: p.string("sdp")?,
            }),
            "hangup" => Ok(Self::Hangup {
                callsid: p.string("callsid")?,
                message: p.optional_string("message")?,
            }),
            "reject" => Ok(Self::Reject {
                callsid: p.string("callsid")?,
            }),
            "dtmf" => Ok(Self::Dtmf {
                callsid: p.string("callsid")?,
                digits: p.string("dtmf")?,
            }),
            "reinvite" => Ok(Self::Reinvite {
                callsid: p.string("callsid")?,
                sdp: p.string("sdp")?,
            }),
            "message" => Ok(Self::Message(CallMessage {
                callsid: p.string("callsid")?,
                content: payload
                    .get("content")
                    .cloned()
                    .ok_or_else(|| p.missing("content"))?,
                // `pstream.sendMessage` defaults it, so it is always there from the SDK.
                content_type: p
                    .optional_string("contenttype")?
                    .unwrap_or_else(|| "application/json".to_owned()),
                message_type: p.string("messagetype")?,
                voice_event_sid: p.string("voiceeventsid")?,
            })),
            other => Err(FrameError::UnknownType(other.to_owned())),
        }
    }

    /// The frame's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Listen { .. } => "listen",
            Self::Register { .. } => "register",
            Self::Invite(_) => "invite",
            Self::Answer { .. } => "answer",
            Self::Hangup { .. } => "hangup",
            Self::Reject { .. } => "reject",
            Self::Dtmf { .. } => "dtmf",
            Self::Reinvite { .. } => "reinvite",
            Self::Message(_) => "message",
        }
    }

    /// Prints the frame as the SDK does (`JSON.stringify` drops absent optional keys); for test
    /// and load clients.
    pub fn to_text(&self) -> String {
        let payload = match self {
            Self::Listen {
                token,
                reconnect_timeout_secs,
                browser_info,
            } => {
                let mut p = json!({"reconnectTimeout": reconnect_timeout_secs, "token": token});
                if let Some(info) = browser_info {
                    p["browserinfo"] = info.clone();
                }
                p
            }
            Self::Register { audio } => json!({"media": {"audio": audio}}),
            Self::Invite(invite) => {
                let twilio = match &invite.params {
                    Some(params) if !params.is_empty() => json!({"params": params}),
                    _ => json!({}),
                };
                let mut p = json!({"callsid": invite.callsid, "sdp": invite.sdp, "twilio": twilio});
                if let Some(reconnect) = &invite.reconnect {
                    p["reconnect"] = json!(reconnect);
                }
                p
            }
            Self::Answer { callsid, sdp } | Self::Reinvite { callsid, sdp } => {
                json!({"callsid": callsid, "sdp": sdp})
            }
            Self::Hangup { callsid, message } => match message {
                Some(message) => json!({"callsid": callsid, "message": message}),
                None => json!({"callsid": callsid}),
            },
            Self::Reject { callsid } => json!({"callsid": callsid}),
            Self::Dtmf { callsid, digits } => json!({"callsid": callsid, "dtmf": digits}),
            Self::Message(m) => json!({
                "callsid": m.callsid,
                "content": m.content,
                "contenttype": m.content_type,
                "messagetype": m.message_type,
                "voiceeventsid": m.voice_event_sid,
            }),
        };
        envelope(self.kind(), payload)
    }
}

/// An error as the SDK reads it: `payload.error.{code,message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalError {
    /// A Twilio error code (31204 invalid token, 31205 expired, 31201 not allowed, …).
    pub code: u32,
    pub message: String,
}

impl SignalError {
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// 31204: the SDK's `AccessTokenInvalid` (its code 20101).
    pub fn token_invalid() -> Self {
        Self::new(31204, "JWT is invalid")
    }

    /// 31205: the SDK's `AccessTokenExpired` (its code 20104); it stops re-registering.
    pub fn token_expired() -> Self {
        Self::new(31205, "JWT token expired")
    }

    fn to_json(&self) -> Value {
        json!({"code": self.code, "message": self.message})
    }
}

/// What the SDK shows as `call.parameters` of an incoming call (`device.ts` `_onSignalingInvite`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingParameters {
    pub call_sid: String,
    pub account_sid: String,
    pub from: String,
    /// `client:<identity>` of the called client.
    pub to: String,
    /// Become `call.customParameters`; printed as `k=v&…` (`Params`).
    pub params: Vec<(String, String)>,
}

/// A frame Hark sends. Never `close`: the SDK would destroy its stream for good.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerFrame {
    /// The answer to every valid `listen`; `ttl_secs` drives the SDK's `tokenWillExpire`.
    Connected { identity: String, ttl_secs: u64 },
    /// Registered (answer to `register{audio:true}`).
    Ready,
    /// Unregistered (answer to `register{audio:false}`, or a refused registration).
    Offline,
    /// The outgoing call got its CA sid and rings.
    Ringing { callsid: String },
    /// The outgoing call is answered (or a `reinvite` is, with its new SDP).
    Answer {
        callsid: String,
        sdp: Option<String>,
        /// Opaque; lets the client rebind the call with `invite{reconnect}` after a drop.
        reconnect: Option<String>,
    },
    /// An incoming call with our SDP offer.
    Invite {
        callsid: String,
        sdp: String,
        parameters: IncomingParameters,
        reconnect: Option<String>,
    },
    /// An incoming call the client never answered is withdrawn.
    Cancel { callsid: String },
    Hangup {
        callsid: String,
        error: Option<SignalError>,
    },
    /// A device error; with `callsid` also routed to that call.
    Error {
        error: SignalError,
        callsid: Option<String>,
    },
    /// A `message` was delivered.
    Ack {
        callsid: String,
        voice_event_sid: String,
    },
}

impl ServerFrame {
    /// Parses a server frame (not the heartbeat), for test and load clients.
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        let (frame_kind, payload) = split_frame(text, &SERVER_KINDS)?;
        let p = Payload {
            frame: frame_kind,
            map: &payload,
        };
        match frame_kind {
            "connected" => {
                let token = p.object("token")?;
                let identity = match token.get("identity") {
                    Some(Value::String(identity)) => identity.clone(),
                    Some(_) => return Err(p.wrong("token.identity", "a string")),
                    None => return Err(p.missing("token.identity")),
                };
                let ttl_secs = match token.get("ttl") {
                    Some(ttl) => ttl
                        .as_u64()
                        .ok_or_else(|| p.wrong("token.ttl", "a non-negative integer"))?,
                    None => return Err(p.missing("token.ttl")),
                };
                Ok(Self::Connected { identity, ttl_secs })
            }
            "ready" => Ok(Self::Ready),
            "offline" => Ok(Self::Offline),
            "ringing" => Ok(Self::Ringing {
                callsid: p.string("callsid")?,
            }),
            "answer" => Ok(Self::Answer {
                callsid: p.string("callsid")?,
                sdp: p.optional_string("sdp")?,
                reconnect: p.optional_string("reconnect")?,
            }),
            "invite" => {
                let parameters = p.object("parameters")?;
                let field = |name: &'static str, path: &'static str| match parameters.get(name) {
                    None | Some(Value::Null) => Ok(String::new()),
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(_) => Err(p.wrong(path, "a string")),
                };
                Ok(Self::Invite {
                    callsid: p.string("callsid")?,
                    sdp: p.string("sdp")?,
                    parameters: IncomingParameters {
                        call_sid: field("CallSid", "parameters.CallSid")?,
                        account_sid: field("AccountSid", "parameters.AccountSid")?,
                        from: field("From", "parameters.From")?,
                        to: field("To", "parameters.To")?,
                        params: decode_params(&field("Params", "parameters.Params")?),
                    },
                    reconnect: p.optional_string("reconnect")?,
                })
            }
            "cancel" => Ok(Self::Cancel {
                callsid: p.string("callsid")?,
            }),
            "hangup" => Ok(Self::Hangup {
                callsid: p.string("callsid")?,
                error: match payload.get("error") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(p.error()?),
                },
            }),
            "error" => Ok(Self::Error {
                error: p.error()?,
                callsid: p.optional_string("callsid")?,
            }),
            "ack" => Ok(Self::Ack {
                callsid: p.string("callsid")?,
                voice_event_sid: p.string("voiceeventsid")?,
            }),
            other => Err(FrameError::UnknownType(other.to_owned())),
        }
    }

    /// The frame's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connected { .. } => "connected",
            Self::Ready => "ready",
            Self::Offline => "offline",
            Self::Ringing { .. } => "ringing",
            Self::Answer { .. } => "answer",
            Self::Invite { .. } => "invite",
            Self::Cancel { .. } => "cancel",
            Self::Hangup { .. } => "hangup",
            Self::Error { .. } => "error",
            Self::Ack { .. } => "ack",
        }
    }

    /// The text frame to write: `{"payload":…,"type":…,"version":"1.6"}`.
    pub fn to_text(&self) -> String {
        let payload = match self {
            Self::Connected { identity, ttl_secs } => {
                json!({"token": {"identity": identity, "ttl": ttl_secs}})
            }
            Self::Ready | Self::Offline => json!({}),
            Self::Ringing { callsid } | Self::Cancel { callsid } => json!({"callsid": callsid}),
            Self::Answer {
                callsid,
                sdp,
                reconnect,
            } => {
                let mut p = json!({"callsid": callsid});
                if let Some(sdp) = sdp {
                    p["sdp"] = json!(sdp);
                }
                if let Some(reconnect) = reconnect {
                    p["reconnect"] = json!(reconnect);
                }
                p
            }
            Self::Invite {
                callsid,
                sdp,
                parameters,
                reconnect,
            } => {
                let mut p = json!({
                    "callsid": callsid,
                    "sdp": sdp,
                    "parameters": {
                        "CallSid": parameters.call_sid,
                        "AccountSid": parameters.account_sid,
                        "From": parameters.from,
                        "To": parameters.to,
                        "Params": encode_params(&parameters.params),
                    },
                });
                if let Some(reconnect) = reconnect {
                    p["reconnect"] = json!(reconnect);
                }
                p
            }
            Self::Hangup { callsid, error } => match error {
                Some(error) => json!({"callsid": callsid, "error": error.to_json()}),
                None => json!({"callsid": callsid}),
            },
            Self::Error { error, callsid } => match callsid {
                Some(callsid) => json!({"callsid": callsid, "error": error.to_json()}),
                None => json!({"error": error.to_json()}),
            },
            Self::Ack {
                callsid,
                voice_event_sid,
            } => {
                json!({"acktype": "message", "callsid": callsid, "voiceeventsid": voice_event_sid})
            }
        };
        envelope(self.kind(), payload)
    }
}

/// Decodes `k=v&k2=v2` as the SDK encodes it (`encodeURIComponent` on both sides).
pub fn decode_params(params: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(params.as_bytes())
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

/// Encodes pairs for `parameters.Params`; the SDK's `queryToJson` splits on `&`/`=` and decodes
/// values (`+` included), so form encoding reads back exactly.
pub fn encode_params(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

fn envelope(kind: &str, payload: Value) -> String {
    json!({"payload": payload, "type": kind, "version": PSTREAM_VERSION}).to_string()
}

const CLIENT_KINDS: [&str; 9] = [
    "listen", "register", "invite", "answer", "hangup", "reject", "dtmf", "reinvite", "message",
];

const SERVER_KINDS: [&str; 10] = [
    "connected",
    "ready",
    "offline",
    "ringing",
    "answer",
    "invite",
    "cancel",
    "hangup",
    "error",
    "ack",
];

/// Reads the envelope: the frame's type (one of `kinds`, as a `'static` name for errors) and its
/// payload. The SDK reads a missing payload as `{}`; so do we, and let the fields be missing.
fn split_frame(
    text: &str,
    kinds: &[&'static str],
) -> Result<(&'static str, Map<String, Value>), FrameError> {
    let value: Value = serde_json::from_str(text).map_err(FrameError::NotJson)?;
    let Value::Object(mut frame) = value else {
        return Err(FrameError::NotObject);
    };
    let Some(Value::String(kind)) = frame.remove("type") else {
        return Err(FrameError::MissingType);
    };
    let Some(frame_kind) = kinds.iter().copied().find(|known| *known == kind) else {
        return Err(FrameError::UnknownType(kind));
    };
    match frame.remove("payload") {
        None | Some(Value::Null) => Ok((frame_kind, Map::new())),
        Some(Value::Object(payload)) => Ok((frame_kind, payload)),
        Some(_) => Err(FrameError::WrongType {
            frame: frame_kind,
            field: "payload",
            expected: "an object",
        }),
    }
}

/// A payload being read, for errors that name the frame.
struct Payload<'a> {
    frame: &'static str,
    map: &'a Map<String, Value>,
}

impl Payload<'_> {
    fn missing(&self, field: &'static str) -> FrameError {
        FrameError::MissingField {
            frame: self.frame,
            field,
        }
    }

    fn wrong(&self, field: &'static str, expected: &'static str) -> FrameError {
        FrameError::WrongType {
            frame: self.frame,
            field,
            expected,
        }
    }

    fn string(&self, field: &'static str) -> Result<String, FrameError> {
        self.optional_string(field)?
            .ok_or_else(|| self.missing(field))
    }

    fn optional_string(&self, field: &'static str) -> Result<Option<String>, FrameError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong(field, "a string")),
        }
    }

    fn optional_u64(&self, field: &'static str) -> Result<Option<u64>, FrameError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.wrong(field, "a non-negative integer")),
        }
    }

    /// `error: {code, message}`.
    fn error(&self) -> Result<SignalError, FrameError> {
        let error = self.object("error")?;
        let code = match error.get("code") {
            Some(code) => code
                .as_u64()
                .and_then(|code| u32::try_from(code).ok())
                .ok_or_else(|| self.wrong("error.code", "an error code"))?,
            None => return Err(self.missing("error.code")),
        };
        let message = match error.get("message") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(message)) => message.clone(),
            Some(_) => return Err(self.wrong("error.message", "a string")),
        };
        Ok(SignalError { code, message })
    }

    fn object(&self, field: &'static str) -> Result<&Map<String, Value>, FrameError> {
        match self.map.get(field) {
            Some(Value::Object(o)) => Ok(o),
            None | Some(Value::Null) => Err(self.missing(field)),
            Some(_) => Err(self.wrong(field, "an object")),
        }
    }
}

#[cfg(test)]
mod tests;
