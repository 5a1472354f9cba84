//! Microsoft Graph call operations as a bot asks for them (SPEC §7): validated requests and
//! their outcomes, plain data shared by the HTTP API (which parses and renders them) and the
//! call core (which runs them).

/// A validated `recordResponse` body (SPEC §7 table; defaults applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordResponse {
    /// `prompts[0].mediaInfo.uri`, if given (at most one prompt).
    pub prompt_uri: Option<String>,
    pub barge_in_allowed: bool,
    pub initial_silence_timeout_secs: u32,
    pub max_silence_timeout_secs: u32,
    pub max_record_duration_secs: u32,
    pub play_beep: bool,
    /// Each one of `0-9*#`.
    pub stop_tones: Vec<char>,
    pub client_context: Option<String>,
}

/// A validated `playPrompt` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayPrompt {
    /// `mediaInfo.uri` of each prompt, played in order.
    pub prompt_uris: Vec<String>,
    pub barge_in_allowed: bool,
    pub client_context: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationRequest {
    RecordResponse(RecordResponse),
    PlayPrompt(PlayPrompt),
    /// `subscribeToTone`: tone notifications for the rest of the call.
    SubscribeToTone {
        client_context: Option<String>,
    },
}

/// Graph's `resultInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultInfo {
    pub code: u16,
    pub subcode: u32,
    pub message: String,
}

/// A Graph operation's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationStatus {
    /// Registered by the API, not yet picked up by the call.
    NotStarted,
    Running,
    Completed,
    Failed,
}

impl OperationStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            OperationStatus::NotStarted => "notStarted",
            OperationStatus::Running => "running",
            OperationStatus::Completed => "completed",
            OperationStatus::Failed => "failed",
        }
    }
}

/// A Graph call's `state` as a bot sees it in call notifications and `GET` of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallState {
    Establishing,
    Established,
    Terminated,
}

impl CallState {
    pub const ALL: &'static [CallState] = &[
        CallState::Establishing,
        CallState::Established,
        CallState::Terminated,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            CallState::Establishing => "establishing",
            CallState::Established => "established",
            CallState::Terminated => "terminated",
        }
    }
}

impl std::fmt::Display for CallState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CallState {
    type Err = store::ParseError;
    fn from_str(s: &str) -> Result<Self, store::ParseError> {
        CallState::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| store::ParseError {
                what: "Graph call state",
                value: s.to_owned(),
            })
    }
}

impl TryFrom<&str> for CallState {
    type Error = store::ParseError;
    fn try_from(s: &str) -> Result<Self, store::ParseError> {
        s.parse()
    }
}

#[cfg(test)]
mod call_state_tests {
    use super::CallState;

    #[test]
    fn call_state_round_trips_and_refuses_others() {
        let texts: Vec<&str> = CallState::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(texts, ["establishing", "established", "terminated"]);
        for c in CallState::ALL {
            assert_eq!(c.to_string().parse::<CallState>().unwrap(), *c);
        }
        let e = "Terminated".parse::<CallState>().unwrap_err();
        assert_eq!(
            (e.what, e.value.as_str()),
            ("Graph call state", "Terminated")
        );
        assert!("".parse::<CallState>().is_err());
    }

    #[test]
    fn operation_status_strings() {
        use super::OperationStatus::*;
        let texts: Vec<&str> = [NotStarted, Running, Completed, Failed]
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(texts, ["notStarted", "running", "completed", "failed"]);
    }
}
