//! Live call control (SPEC §7, issue 6): what the HTTP API asks of the daemon's running calls.
//! The daemon implements [`CallControl`]; the API only validates, authenticates and renders.

use std::future::Future;
use std::pin::Pin;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::auth::constant_time_eq;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Graph's view of a call (`GET /v1.0/communications/calls/{id}`). The id is the CallSid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallView {
    pub id: String,
    pub state: CallState,
    pub from: String,
    pub to: String,
    /// Whether the call is driven by a bot (Graph operations are allowed) or by TwiML.
    pub bot: bool,
}

pub use control::graph::{
    CallState, OperationRequest, OperationStatus, PlayPrompt, RecordResponse, ResultInfo,
};
use store::{CallStatus, HttpMethod};

/// An operation as Graph shows it (`recordOperation`, `playPromptOperation`,
/// `subscribeToToneOperation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationView {
    pub id: String,
    pub call_id: String,
    /// `recordOperation`, `playPromptOperation` or `subscribeToToneOperation`.
    pub kind: String,
    pub status: OperationStatus,
    pub result_info: Option<ResultInfo>,
    /// Record operations, once completed: where the WAV is and a Bearer token for it.
    pub recording_location: Option<String>,
    pub recording_access_token: Option<String>,
    pub client_context: Option<String>,
}

/// A running call as the console's live view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCallView {
    pub sid: String,
    pub from: String,
    pub to: String,
    /// `inbound`, `outbound-api`, `outbound-dial`.
    pub direction: String,
    pub state: CallState,
    /// When the call reached Hark, Unix ms.
    pub started_ms: i64,
    pub legs: u32,
    /// The verb running ("" between steps).
    pub verb: String,
    /// `off`, `on` or `paused`.
    pub recording: String,
    pub bot: bool,
    /// The node running it; "" for this node.
    pub node: String,
}

/// Twilio's live call update (`POST …/Calls/{CallSid}.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallUpdate {
    /// `Twiml`: run this document now.
    pub twiml: Option<String>,
    /// `Url` (+ `Method`, default POST): fetch and run this document now.
    pub url: Option<String>,
    pub method: Option<HttpMethod>,
    /// `Status=completed` (or `canceled` before answer): hang up. Only those two.
    pub status: Option<CallStatus>,
}

/// Twilio's `POST …/Calls.json`, validated: a call Hark places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCall {
    /// `client:<identity>` (a registered Voice SDK client).
    pub to: String,
    pub from: String,
    /// What runs once the party answers: `Url` (+ `Method`), `Twiml`, or an application's
    /// settings (`ApplicationSid`); exactly one.
    pub url: Option<String>,
    pub method: HttpMethod,
    pub twiml: Option<String>,
    pub application_sid: Option<String>,
    pub fallback_url: Option<String>,
    pub fallback_method: HttpMethod,
    pub status_callback: Option<String>,
    pub status_callback_method: HttpMethod,
    /// `StatusCallbackEvent`s: `initiated`, `ringing`, `answered`, `completed`.
    pub status_callback_events: Vec<String>,
    /// Seconds to ring before giving up (`no-answer`).
    pub timeout_secs: u32,
}

/// Twilio's "Invalid 'To' Phone Number".
pub const CODE_INVALID_TO: u32 = 21211;

/// Why a call was not placed: 400 with Twilio's code, or 503 when no calls can start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateError {
    pub code: u32,
    pub message: String,
    pub unavailable: bool,
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
    fn start_operation(
        &self,
        id: &str,
        request: OperationRequest,
    ) -> BoxFuture<'_, Result<OperationView, ControlError>>;
    fn operation(&self, id: &str, operation_id: &str) -> BoxFuture<'_, Option<OperationView>>;
    /// Twilio live update of `call_sid` (TwiML or bot call).
    fn update(&self, call_sid: &str, update: CallUpdate)
        -> BoxFuture<'_, Result<(), ControlError>>;
    /// Starts recording a live call (REST `Calls/{CallSid}/Recordings.json`).
    fn start_recording(
        &self,
        call_sid: &str,
        request: control::recording_control::LiveRecordingRequest,
    ) -> BoxFuture<'_, Result<(), ControlError>> {
        let _ = (call_sid, request);
        Box::pin(async { Err(ControlError::UnknownCall) })
    }
    /// Pauses, resumes or stops recording `sid` of a live call.
    fn change_recording(
        &self,
        call_sid: &str,
        sid: store::RecordingSid,
        change: control::recording_control::RecordingChange,
    ) -> BoxFuture<'_, Result<(), ControlError>> {
        let _ = (call_sid, sid, change);
        Box::pin(async { Err(ControlError::UnknownCall) })
    }
    /// Every running call, oldest first: this node's, and with `everywhere` also those the
    /// other nodes of a cluster last reported.
    fn live_calls(&self, everywhere: bool) -> Vec<LiveCallView> {
        let _ = everywhere;
        Vec::new()
    }
    /// Changes whenever anything [`CallControl::live_calls`] shows changes (a counter).
    fn live_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
    /// Places a call; answers its row once written (status `queued`).
    fn create_call(&self, call: NewCall) -> BoxFuture<'_, Result<store::CallRecord, CreateError>> {
        let _ = call;
        Box::pin(async {
            Err(CreateError {
                code: 20500,
                message: "this server places no calls".into(),
                unavailable: true,
            })
        })
    }
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

/// Version tag of [`recording_access_token`]'s format.
const TOKEN_VERSION: &str = "v1";

/// A recording access token for `recording_sid`, valid until `expires_unix` (seconds): what the
/// daemon puts in `recordingAccessToken`; the API checks it on `GET recordingLocation`.
///
/// Stateless: `v1.<expires_unix>.<base64url HMAC-SHA256(secret, "<sid>|<expires_unix>")>`, so
/// tokens survive restarts and need no table; rotating the secret revokes them all.
pub fn recording_access_token(secret: &[u8], recording_sid: &str, expires_unix: i64) -> String {
    let mac = token_mac(secret, recording_sid, expires_unix);
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac);
    format!("{TOKEN_VERSION}.{expires_unix}.{encoded}")
}

fn token_mac(secret: &[u8], recording_sid: &str, expires_unix: i64) -> Vec<u8> {
    // HMAC takes keys of any length, so this never fails.
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(format!("{recording_sid}|{expires_unix}").as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Whether `token` grants `recording_sid` at `now_unix` (valid while `now_unix < expires`).
/// An empty secret grants nothing: anyone could mint its tokens.
pub fn check_recording_access_token(
    secret: &[u8],
    token: &str,
    recording_sid: &str,
    now_unix: i64,
) -> bool {
    if secret.is_empty() {
        return false;
    }
    let mut parts = token.splitn(3, '.');
    let (Some(version), Some(expires), Some(_mac)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if version != TOKEN_VERSION {
        return false;
    }
    let Ok(expires_unix) = expires.parse::<i64>() else {
        return false;
    };
    // Re-minting gives the canonical form, so `+60` or `060` for the expiry do not pass either.
    let expected = recording_access_token(secret, recording_sid, expires_unix);
    let genuine = constant_time_eq(expected.as_bytes(), token.as_bytes());
    genuine & (now_unix < expires_unix)
}

/// Where a bot downloads a recording: `{public_url}/v1.0/communications/recordings/{sid}`.
pub fn recording_location(public_url: &str, recording_sid: &str) -> String {
    format!("{public_url}/v1.0/communications/recordings/{recording_sid}")
}

/// `/communications/calls/{id}`: the `resourceUrl` of call state notifications.
pub fn call_resource_url(call_id: &str) -> String {
    format!("/communications/calls/{call_id}")
}

/// `/communications/calls/{id}/operations/{opId}`: the `resourceUrl` of operation notifications
/// (the `Location` of the API responses is `{public_url}/v1.0` + this).
pub fn operation_resource_url(call_id: &str, operation_id: &str) -> String {
    format!("/communications/calls/{call_id}/operations/{operation_id}")
}

/// Graph's `identitySet` for a caller or callee: a phone number when it looks like one (E.164 or
/// digits), else a user id (SIP user parts, URIs).
fn identity_set(id: &str) -> Value {
    let digits = id.strip_prefix('+').unwrap_or(id);
    let phone = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    let kind = if phone { "phone" } else { "user" };
    json!({
        "@odata.type": "#microsoft.graph.identitySet",
        kind: {"@odata.type": "#microsoft.graph.identity", "id": id},
    })
}

/// The Graph JSON of a call (`GET /v1.0/communications/calls/{id}`, and the `resourceData` of
/// call state notifications): `@odata.type`, id, state, source, targets, plus plain `from`/`to`.
pub fn call_json(call: &CallView) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.call",
        "@odata.id": call_resource_url(&call.id),
        "id": call.id,
        "state": call.state.as_str(),
        "source": {
            "@odata.type": "#microsoft.graph.participantInfo",
            "identity": identity_set(&call.from),
        },
        "targets": [{
            "@odata.type": "#microsoft.graph.invitationParticipantInfo",
            "identity": identity_set(&call.to),
        }],
        "from": call.from,
        "to": call.to,
    })
}

/// Graph's `completionReason` of a finished operation, from its subcode (SPEC §7 table).
fn completion_reason(kind: &str, info: &ResultInfo) -> Option<&'static str> {
    match kind {
        "recordOperation" => Some(match info.subcode {
            8508 => "operationCanceled",
            8509 => "maxSilenceTimeout",
            8510 => "initialSilenceTimeout",
            8511 => "playPromptFailed",
            8512 => "playBeepFailed",
            8513 | 8588 => "mediaReceiveTimeout",
            8514 => "stopToneDetected",
            8515 => "maxRecordDurationReached",
            _ => "unspecifiedError",
        }),
        "playPromptOperation" => Some(match (info.code, info.subcode) {
            (_, 8508) => "mediaOperationCanceled",
            (200..=299, _) => "completedSuccessfully",
            _ => "unknown",
        }),
        _ => None,
    }
}

/// The Graph JSON of an operation (`@odata.type`, id, status, resultInfo, recordingLocation,
/// recordingAccessToken, clientContext) — used by the API responses and by the daemon's
/// `commsNotifications`. Record-only properties appear on `recordOperation`s only.
pub fn operation_json(op: &OperationView) -> Value {
    let result_info = op.result_info.as_ref().map_or(Value::Null, |r| {
        json!({
            "@odata.type": "#microsoft.graph.resultInfo",
            "code": r.code,
            "subcode": r.subcode,
            "message": r.message,
        })
    });
    let mut v = json!({
        "@odata.type": format!("#microsoft.graph.{}", op.kind),
        "@odata.id": operation_resource_url(&op.call_id, &op.id),
        "id": op.id,
        "status": op.status.as_str(),
        "resultInfo": result_info,
        "clientContext": op.client_context,
    });
    if let Some(obj) = v.as_object_mut() {
        if op.kind == "recordOperation" {
            obj.insert("recordingLocation".into(), json!(op.recording_location));
            obj.insert(
                "recordingAccessToken".into(),
                json!(op.recording_access_token),
            );
        }
        let reason = op
            .result_info
            .as_ref()
            .and_then(|r| completion_reason(&op.kind, r));
        if let Some(reason) = reason {
            obj.insert("completionReason".into(), json!(reason));
        }
    }
    v
}

/// A `commsNotifications` body for one resource (SPEC §7): `changeType` `deleted` for a finished
/// operation, `updated`/`created` for call state.
pub fn comms_notification(change_type: &str, resource_url: &str, resource_data: Value) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.commsNotifications",
        "value": [{
            "@odata.type": "#microsoft.graph.commsNotification",
            "changeType": change_type,
            "resourceUrl": resource_url,
            "resourceData": resource_data,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"k";
    const RE1: &str = "RE11111111111111111111111111111111";
    const RE2: &str = "RE22222222222222222222222222222222";

    #[test]
    fn access_token_is_versioned_expiry_and_base64url_hmac() {
        let t = recording_access_token(SECRET, RE1, 1_700_000_000);
        let mac = t.strip_prefix("v1.1700000000.").unwrap();
        // 32 bytes of HMAC-SHA256, unpadded base64url.
        assert_eq!(mac.len(), 43);
        assert!(mac
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(t, recording_access_token(SECRET, RE1, 1_700_000_000));
        assert_ne!(t, recording_access_token(SECRET, RE2, 1_700_000_000));
    }

    #[test]
    fn access_token_grants_its_recording_until_expiry_only() {
        let t = recording_access_token(SECRET, RE1, 1000);
        assert!(check_recording_access_token(SECRET, &t, RE1, 999));
        assert!(!check_recording_access_token(SECRET, &t, RE1, 1000));
        assert!(!check_recording_access_token(SECRET, &t, RE2, 999));
        assert!(!check_recording_access_token(b"other", &t, RE1, 999));
    }

    #[test]
    fn forged_or_malformed_tokens_are_refused() {
        let t = recording_access_token(SECRET, RE1, 1000);
        let mac = t.strip_prefix("v1.1000.").unwrap();
        for bad in [
            String::new(),
            "v1".into(),
            "v1.1000".into(),
            format!("v2.1000.{mac}"),
            format!("v1.+1000.{mac}"),
            format!("v1.01000.{mac}"),
            // Pushing the expiry without re-signing.
            format!("v1.2000.{mac}"),
            format!("v1.1000.{mac}A"),
            format!("v1.1000.{}", &mac[1..]),
        ] {
            assert!(
                !check_recording_access_token(SECRET, &bad, RE1, 999),
                "{bad}"
            );
        }
        // An empty secret mints tokens anyone could compute: none is accepted.
        let t = recording_access_token(b"", RE1, 1000);
        assert!(!check_recording_access_token(b"", &t, RE1, 999));
    }

    fn op(kind: &str, status: OperationStatus, result: Option<(u16, u32)>) -> OperationView {
        OperationView {
            id: "op1".into(),
            call_id: "CA1".into(),
            kind: kind.into(),
            status,
            result_info: result.map(|(code, subcode)| ResultInfo {
                code,
                subcode,
                message: "m".into(),
            }),
            recording_location: None,
            recording_access_token: None,
            client_context: None,
        }
    }

    #[test]
    fn running_record_operation_json_matches_spec() {
        assert_eq!(
            operation_json(&op("recordOperation", OperationStatus::Running, None)),
            json!({
                "@odata.type": "#microsoft.graph.recordOperation",
                "@odata.id": "/communications/calls/CA1/operations/op1",
                "id": "op1",
                "status": "running",
                "resultInfo": null,
                "recordingLocation": null,
                "recordingAccessToken": null,
                "clientContext": null,
            })
        );
    }

    #[test]
    fn finished_record_operation_carries_result_recording_and_reason() {
        let mut o = op(
            "recordOperation",
            OperationStatus::Completed,
            Some((200, 8515)),
        );
        o.recording_location = Some(recording_location("https://h", RE1));
        o.recording_access_token = Some("tok".into());
        o.client_context = Some("c".into());
        let v = operation_json(&o);
        assert_eq!(
            v["resultInfo"],
            json!({"@odata.type": "#microsoft.graph.resultInfo", "code": 200,
                "subcode": 8515, "message": "m"})
        );
        assert_eq!(
            v["recordingLocation"],
            format!("https://h/v1.0/communications/recordings/{RE1}")
        );
        assert_eq!(v["recordingAccessToken"], "tok");
        assert_eq!(v["clientContext"], "c");
        assert_eq!(v["completionReason"], "maxRecordDurationReached");
        let reason = |s| {
            operation_json(&op(
                "recordOperation",
                OperationStatus::Failed,
                Some((400, s)),
            ))["completionReason"]
                .clone()
        };
        assert_eq!(reason(8510), "initialSilenceTimeout");
        assert_eq!(reason(8509), "maxSilenceTimeout");
        assert_eq!(reason(8508), "operationCanceled");
        assert_eq!(reason(8528), "unspecifiedError");
    }

    #[test]
    fn other_operations_have_no_recording_fields() {
        let v = operation_json(&op(
            "playPromptOperation",
            OperationStatus::Completed,
            Some((200, 0)),
        ));
        assert_eq!(v["@odata.type"], "#microsoft.graph.playPromptOperation");
        assert_eq!(v["completionReason"], "completedSuccessfully");
        assert!(v.get("recordingLocation").is_none() && v.get("recordingAccessToken").is_none());
        let v = operation_json(&op(
            "playPromptOperation",
            OperationStatus::Failed,
            Some((400, 8508)),
        ));
        assert_eq!(v["completionReason"], "mediaOperationCanceled");
        let v = operation_json(&op(
            "subscribeToToneOperation",
            OperationStatus::Completed,
            Some((200, 0)),
        ));
        assert_eq!(v.as_object().map(|o| o.len()), Some(6));
    }

    #[test]
    fn comms_notification_wraps_one_resource() {
        let data = json!({"id": "op1"});
        assert_eq!(
            comms_notification(
                "deleted",
                &operation_resource_url("CA1", "op1"),
                data.clone()
            ),
            json!({
                "@odata.type": "#microsoft.graph.commsNotifications",
                "value": [{
                    "@odata.type": "#microsoft.graph.commsNotification",
                    "changeType": "deleted",
                    "resourceUrl": "/communications/calls/CA1/operations/op1",
                    "resourceData": data,
                }]
            })
        );
    }

    #[test]
    fn call_json_names_phone_numbers_phone_and_anything_else_user() {
        let v = call_json(&CallView {
            id: "CA1".into(),
            state: CallState::Terminated,
            from: "15551230001".into(),
            to: "alice".into(),
            bot: true,
        });
        assert_eq!(v["@odata.type"], "#microsoft.graph.call");
        assert_eq!(v["state"], "terminated");
        assert_eq!(v["source"]["identity"]["phone"]["id"], "15551230001");
        assert_eq!(v["targets"][0]["identity"]["user"]["id"], "alice");
        assert_eq!(
            (v["from"].as_str(), v["to"].as_str()),
            (Some("15551230001"), Some("alice"))
        );
        assert_eq!(identity_set("+")["user"]["id"], "+");
    }
}
