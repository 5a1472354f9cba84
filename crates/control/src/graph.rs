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
