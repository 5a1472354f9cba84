//! Live call control (SPEC §7, issue 6): what the HTTP API asks of the daemon's running calls.
//! The daemon implements [`CallControl`]; the API only validates, authenticates and renders.

use std::future::Future;
use std::pin::Pin;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Graph's view of a call (`GET /v1.0/communications/calls/{id}`). The id is the CallSid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallView {
    pub id: String,
    /// `establishing`, `established` or `terminated`.
    pub state: String,
    pub from: String,
    pub to: String,
    /// Whether the call is driven by a bot (Graph operations are allowed) or by TwiML.
    pub bot: bool,
}

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
    SubscribeToTone { client_context: Option<String> },
}

/// Graph's `resultInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultInfo {
    pub code: u16,
    pub subcode: u32,
    pub message: String,
}

/// An operation as Graph shows it (`recordOperation`, `playPromptOperation`,
/// `subscribeToToneOperation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationView {
    pub id: String,
    pub call_id: String,
    /// `recordOperation`, `playPromptOperation` or `subscribeToToneOperation`.
    pub kind: String,
    /// `notStarted`, `running`, `completed` or `failed`.
    pub status: String,
    pub result_info: Option<ResultInfo>,
    /// Record operations, once completed: where the WAV is and a Bearer token for it.
    pub recording_location: Option<String>,
    pub recording_access_token: Option<String>,
    pub client_context: Option<String>,
}

/// Twilio's live call update (`POST …/Calls/{CallSid}.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallUpdate {
    /// `Twiml`: run this document now.
    pub twiml: Option<String>,
    /// `Url` (+ `Method`, default POST): fetch and run this document now.
    pub url: Option<String>,
    pub method: Option<String>,
    /// `Status=completed` (or `canceled` before answer): hang up.
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// No such call (or it has ended).
    UnknownCall,
    /// The call is not in a state for this (e.g. a Graph operation on a TwiML call, or an update
    /// to a call that has ended): 400 with this message.
    Conflict(String),
}

/// The daemon's running calls.
pub trait CallControl: Send + Sync + 'static {
    fn call(&self, id: &str) -> BoxFuture<'_, Option<CallView>>;
    /// Hangs up; false if the call is unknown or over.
    fn hang_up(&self, id: &str) -> BoxFuture<'_, bool>;
    /// Queues (or, with barge-in, starts) an operation; returns it as it is now (`running` or
    /// `notStarted`).
    fn start_operation(&self, id: &str, request: OperationRequest) -> BoxFuture<'_, Result<OperationView, ControlError>>;
    fn operation(&self, id: &str, operation_id: &str) -> BoxFuture<'_, Option<OperationView>>;
    /// Twilio live update of `call_sid` (TwiML or bot call).
    fn update(&self, call_sid: &str, update: CallUpdate) -> BoxFuture<'_, Result<(), ControlError>>;
}

/// Bot settings of the API (`[bot]`).
#[derive(Clone)]
pub struct BotApi {
    /// Bearer token of `/v1.0/communications/calls`; empty = every request is 401.
    pub api_token: String,
    /// Key of the recording access tokens (HMAC); tokens name one recording and expire.
    pub token_secret: Vec<u8>,
    /// Lifetime of a recording access token.
    pub token_ttl_secs: u64,
    pub control: std::sync::Arc<dyn CallControl>,
}

/// A recording access token for `recording_sid`, valid until `expires_unix` (seconds): what the
/// daemon puts in `recordingAccessToken`; the API checks it on `GET recordingLocation`.
pub fn recording_access_token(secret: &[u8], recording_sid: &str, expires_unix: i64) -> String {
    todo!()
}

/// Whether `token` grants `recording_sid` at `now_unix`.
pub fn check_recording_access_token(secret: &[u8], token: &str, recording_sid: &str, now_unix: i64) -> bool {
    todo!()
}

/// Where a bot downloads a recording: `{public_url}/v1.0/communications/recordings/{sid}`.
pub fn recording_location(public_url: &str, recording_sid: &str) -> String {
    format!("{public_url}/v1.0/communications/recordings/{recording_sid}")
}

/// The Graph JSON of an operation (`@odata.type`, id, status, resultInfo, recordingLocation,
/// recordingAccessToken, clientContext) — used by the API responses and by the daemon's
/// `commsNotifications`.
pub fn operation_json(op: &OperationView) -> serde_json::Value {
    todo!()
}

/// A `commsNotifications` body for one resource (SPEC §7): `changeType` `deleted` for a finished
/// operation, `updated`/`created` for call state.
pub fn comms_notification(change_type: &str, resource_url: &str, resource_data: serde_json::Value) -> serde_json::Value {
    todo!()
}
