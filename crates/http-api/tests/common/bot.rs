//! A fake `CallControl` that records what it was asked, and a router over it (the live
//! call-control and call-update tests).

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Method, Request};
use axum::response::Response;
use http_api::control::{
    self, BotApi, BoxFuture, CallControl, CallUpdate, CallView, ControlError, OperationRequest,
    OperationView, ResultInfo,
};
use serde_json::Value;
use tower::ServiceExt;

use super::*;

pub const API_TOKEN: &str = "bot-token-123";
pub const SECRET: &[u8] = b"recording-token-secret";
/// A live bot call.
pub const CA1: &str = "CA11111111111111111111111111111111";
/// A live TwiML call: Graph operations conflict.
pub const CA2: &str = "CA22222222222222222222222222222222";
/// Not a call.
pub const CA9: &str = "CA99999999999999999999999999999999";
pub const RE1: &str = "RE11111111111111111111111111111111";
pub const RE2: &str = "RE22222222222222222222222222222222";
pub const RE9: &str = "RE99999999999999999999999999999999";
pub const WAV: &[u8] = b"RIFF\x24\x00\x00\x00WAVEfmt fake-wav-bytes-0123456789";

#[derive(Default)]
pub struct Fake {
    pub hang_ups: Mutex<Vec<String>>,
    pub ops: Mutex<Vec<(String, OperationRequest)>>,
    pub updates: Mutex<Vec<(String, CallUpdate)>>,
}

impl Fake {
    pub fn calls_made(&self) -> usize {
        self.hang_ups.lock().unwrap().len()
            + self.ops.lock().unwrap().len()
            + self.updates.lock().unwrap().len()
    }
}

pub fn view(id: &str) -> Option<CallView> {
    (id == CA1 || id == CA2).then(|| CallView {
        id: id.into(),
        state: http_api::control::CallState::Established,
        from: "+15551230001".into(),
        to: "sip:bot@hark.example".into(),
        bot: id == CA1,
    })
}

pub fn finished_record_op() -> OperationView {
    OperationView {
        id: "op-done".into(),
        call_id: CA1.into(),
        kind: "recordOperation".into(),
        status: http_api::control::OperationStatus::Completed,
        result_info: Some(ResultInfo {
            code: 200,
            subcode: 8514,
            message: "Action completed, DTMF tone pressed.".into(),
        }),
        recording_location: Some(control::recording_location("https://hark.example", RE1)),
        recording_access_token: Some("tok".into()),
        client_context: Some("ctx".into()),
    }
}

impl CallControl for Fake {
    fn call(&self, id: &str) -> BoxFuture<'_, Option<CallView>> {
        let v = view(id);
        Box::pin(async move { v })
    }
    fn hang_up(&self, id: &str) -> BoxFuture<'_, bool> {
        let known = view(id).is_some();
        if known {
            self.hang_ups.lock().unwrap().push(id.into());
        }
        Box::pin(async move { known })
    }
    fn start_operation(
        &self,
        id: &str,
        request: OperationRequest,
    ) -> BoxFuture<'_, Result<OperationView, ControlError>> {
        let result = match id {
            CA1 => {
                let (kind, client_context) = match &request {
                    OperationRequest::RecordResponse(r) => {
                        ("recordOperation", r.client_context.clone())
                    }
                    OperationRequest::PlayPrompt(p) => {
                        ("playPromptOperation", p.client_context.clone())
                    }
                    OperationRequest::SubscribeToTone { client_context } => {
                        ("subscribeToToneOperation", client_context.clone())
                    }
                };
                let mut ops = self.ops.lock().unwrap();
                ops.push((id.into(), request));
                Ok(OperationView {
                    id: format!("op-{}", ops.len()),
                    call_id: id.into(),
                    kind: kind.into(),
                    status: http_api::control::OperationStatus::Running,
                    result_info: None,
                    recording_location: None,
                    recording_access_token: None,
                    client_context,
                })
            }
            CA2 => Err(ControlError::Conflict("call CA2 is driven by TwiML".into())),
            _ => Err(ControlError::UnknownCall),
        };
        Box::pin(async move { result })
    }
    fn operation(&self, id: &str, operation_id: &str) -> BoxFuture<'_, Option<OperationView>> {
        let op = (id == CA1 && operation_id == "op-done").then(finished_record_op);
        Box::pin(async move { op })
    }
    fn update(
        &self,
        call_sid: &str,
        update: CallUpdate,
    ) -> BoxFuture<'_, Result<(), ControlError>> {
        let result = match call_sid {
            CA1 => {
                self.updates.lock().unwrap().push((call_sid.into(), update));
                Ok(())
            }
            CA2 => Err(ControlError::Conflict(
                "Call is not in-progress. Cannot redirect.".into(),
            )),
            _ => Err(ControlError::UnknownCall),
        };
        Box::pin(async move { result })
    }
}

pub struct Bot {
    pub fx: Fixture,
    pub fake: Arc<Fake>,
}

pub fn bot_with_token(api_token: &str) -> Bot {
    let fake = Arc::new(Fake::default());
    let bot = BotApi {
        api_token: api_token.into(),
        token_secret: SECRET.to_vec(),
        token_ttl_secs: 3600,
        control: fake.clone(),
    };
    let fx = fixture_with_bot(Default::default(), Some(bot), |s| {
        let mut c1 = call(CA1, AC, T0);
        c1.status = store::CallStatus::InProgress;
        s.insert_call(&c1).unwrap();
        s.insert_recording(&recording(RE1, CA1, AC, T0)).unwrap();
        s.insert_recording(&recording(RE2, CA1, AC, T0)).unwrap();
    });
    std::fs::write(fx.dir.join(format!("{RE1}.wav")), WAV).unwrap();
    std::fs::write(fx.dir.join(format!("{RE2}.wav")), b"other").unwrap();
    Bot { fx, fake }
}

pub fn bot() -> Bot {
    bot_with_token(API_TOKEN)
}

pub fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

pub async fn send(
    app: &axum::Router,
    method: Method,
    uri: &str,
    auth: Option<&str>,
    body: &str,
) -> Response {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    app.clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap()
}

pub async fn json_of(resp: Response) -> Value {
    serde_json::from_slice(&body(resp).await).unwrap()
}

pub fn calls(rest: &str) -> String {
    format!("/v1.0/communications/calls/{rest}")
}

pub fn twilio_call(sid: &str) -> String {
    format!("/2010-04-01/Accounts/{AC}/Calls/{sid}.json")
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
