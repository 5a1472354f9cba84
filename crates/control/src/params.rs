//! Twilio's standard request parameters (SPEC §1).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub call_sid: String,
    pub account_sid: String,
    /// Already formatted: E.164 with `+` for phone numbers, else `sip:user@host`.
    pub from: String,
    pub to: String,
    pub forwarded_from: Option<String>,
    pub caller_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    Ringing,
    InProgress,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
}

impl CallStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Failed => "failed",
            CallStatus::Canceled => "canceled",
        }
    }
}

/// CallSid, AccountSid, From, To, Caller, Called, CallStatus, ApiVersion, Direction and, when
/// known, ForwardedFrom and CallerName.
pub fn standard_params(call: &CallInfo, status: CallStatus) -> Vec<(String, String)> {
    todo!()
}

/// The From/To value for a SIP party: `+digits` when the user part is a phone number
/// (optionally with a leading `+`, at least 3 digits), else `sip:user@host`.
pub fn party(user: Option<&str>, uri: &str) -> String {
    todo!()
}
