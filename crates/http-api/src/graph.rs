//! The live call-control API (SPEC §7, MS Graph-style): `/v1.0/communications/calls/{id}`
//! (GET state, DELETE hang up), its `recordResponse`, `playPrompt` and `subscribeToTone`
//! actions, `operations/{opId}`, and `/v1.0/communications/recordings/{sid}` for bots.
//!
//! Auth runs before any lookup: call routes need `Authorization: Bearer <bot.api_token>` (an
//! empty configured token admits nobody), recordings need the recording's own
//! `recordingAccessToken`. Errors use Graph's shape
//! `{"error": {"code", "message", "innerError": {"request-id", "date"}}}`. Without a `[bot]`
//! (`ApiState::bot` is `None`) every path here is 404.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use store::RecordingSid;

use crate::auth::constant_time_eq;
use crate::control::{self, BotApi, ControlError, OperationRequest, OperationView};
use crate::graph_body::{self, BodyError};
use crate::media::ServeError;
use crate::rest::{find_recording, json, media_paths, serve_recording_wav};
use crate::route::is_sid;
use crate::{Inner, Metrics};

/// Path prefix of the API.
pub const PREFIX: &str = "/v1.0";
/// Largest request body read (an operation body is a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A Graph-shaped error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    allow: Option<&'static str>,
}

impl GraphError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        GraphError {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }
    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is missing or invalid",
        )
    }
    fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            format!("{what} was not found"),
        )
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalidRequest", message)
    }
    fn method_not_allowed(allow: &'static str) -> Self {
        GraphError {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "notAllowed",
                format!("Method not allowed; allowed: {allow}"),
            )
        }
    }
    fn internal(message: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "generalException",
            message,
        )
    }

    pub fn body(&self, request_id: &str, date: &str) -> serde_json::Value {
        json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {"request-id": request_id, "date": date},
            }
        })
    }
}

impl From<BodyError> for GraphError {
    fn from(e: BodyError) -> Self {
        GraphError::bad_request(e.to_string())
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let date = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
        let mut resp = json(self.status, &self.body(&request_id(), &date));
        let h = resp.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(allow) = self.allow {
            h.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        resp
    }
}

/// A random UUID-shaped id for `innerError.request-id`.
fn request_id() -> String {
    let b: [u8; 16] = rand::random();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let part = |r: std::ops::Range<usize>| hex.get(r).unwrap_or("");
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    RecordResponse,
    PlayPrompt,
    SubscribeToTone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GraphRoute<'a> {
    Call(&'a str),
    Action(&'a str, Action),
    Operation(&'a str, &'a str),
    Recording(&'a str),
    Unknown,
}

/// Graph matches action names case-insensitively.
fn parse(path: &str) -> GraphRoute<'_> {
    let Some(rest) = path.strip_prefix("/v1.0/communications/") else {
        return GraphRoute::Unknown;
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let is = |s: &str, name: &str| s.eq_ignore_ascii_case(name);
    match segs.as_slice() {
        [calls, id] if is(calls, "calls") && !id.is_empty() => GraphRoute::Call(id),
        [calls, id, action] if is(calls, "calls") && !id.is_empty() => {
            let a = if is(action, "recordResponse") {
                Action::RecordResponse
            } else if is(action, "playPrompt") {
                Action::PlayPrompt
            } else if is(action, "subscribeToTone") {
                Action::SubscribeToTone
            } else {
                return GraphRoute::Unknown;
            };
            GraphRoute::Action(id, a)
        }
        [calls, id, ops, op] if is(calls, "calls") && is(ops, "operations") && !op.is_empty() => {
            GraphRoute::Operation(id, op)
        }
        [recs, sid] if is(recs, "recordings") && !sid.is_empty() => GraphRoute::Recording(sid),
        _ => GraphRoute::Unknown,
    }
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn api_token_ok(bot: &BotApi, headers: &HeaderMap) -> bool {
    match bearer(headers) {
        Some(t) => {
            !bot.api_token.is_empty() & constant_time_eq(t.as_bytes(), bot.api_token.as_bytes())
        }
        None => false,
    }
}

pub async fn handler(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    match handle(&inner, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(inner: &Inner, req: Request) -> Result<Response, GraphError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let Some(bot) = inner.api.bot.as_ref() else {
        return Err(GraphError::not_found(path));
    };
    let route = parse(path);
    let now = chrono::Utc::now().timestamp();
    // Nothing below runs for an unauthenticated client.
    let authorized = match route {
        GraphRoute::Recording(sid) => bearer(&parts.headers)
            .is_some_and(|t| control::check_recording_access_token(&bot.token_secret, t, sid, now)),
        _ => api_token_ok(bot, &parts.headers),
    };
    if !authorized {
        return Err(GraphError::unauthorized());
    }
    let m = &parts.method;
    let read = *m == Method::GET || *m == Method::HEAD;
    let ctl = &bot.control;
    let mut body = body;
    if let GraphRoute::Call(id) | GraphRoute::Action(id, _) | GraphRoute::Operation(id, _) = route {
        if let Ok(sid) = id.parse::<store::CallSid>() {
            let bytes = read_body(body).await?;
            if let Some(answer) =
                crate::rest::elsewhere(inner, &sid, m, &parts.uri, &parts.headers, &bytes).await
            {
                return Ok(answer);
            }
            body = Body::from(bytes);
        }
    }
    match route {
        GraphRoute::Unknown => Err(GraphError::not_found(path)),
        GraphRoute::Call(id) if read => match known(id) {
            Some(id) => match ctl.call(id).await {
                Some(c) => Ok(json(StatusCode::OK, &control::call_json(&c))),
                None => Err(call_not_found(id)),
            },
            None => Err(call_not_found(id)),
        },
        GraphRoute::Call(id) if *m == Method::DELETE => {
            if known(id).is_some() && ctl.hang_up(id).await {
                Ok(StatusCode::NO_CONTENT.into_response())
            } else {
                Err(call_not_found(id))
            }
        }
        GraphRoute::Call(_) => Err(GraphError::method_not_allowed("GET, HEAD, DELETE")),
        GraphRoute::Action(id, action) if *m == Method::POST => {
            let id = known(id).ok_or_else(|| call_not_found(id))?;
            let bytes = read_body(body).await?;
            let request = match action {
                Action::RecordResponse => {
                    OperationRequest::RecordResponse(graph_body::record_response(&bytes)?)
                }
                Action::PlayPrompt => {
                    OperationRequest::PlayPrompt(graph_body::play_prompt(&bytes)?)
                }
                Action::SubscribeToTone => OperationRequest::SubscribeToTone {
                    client_context: graph_body::subscribe_to_tone(&bytes)?,
                },
            };
            match ctl.start_operation(id, request).await {
                Ok(op) => Ok(operation_response(&inner.api.public_url, id, &op)),
                Err(ControlError::UnknownCall) => Err(call_not_found(id)),
                Err(ControlError::Conflict(msg)) => Err(GraphError::bad_request(msg)),
            }
        }
        GraphRoute::Action(..) => Err(GraphError::method_not_allowed("POST")),
        GraphRoute::Operation(id, op_id) if read => {
            let op = match known(id) {
                Some(id) => ctl.operation(id, op_id).await,
                None => None,
            };
            match op {
                Some(op) => Ok(json(StatusCode::OK, &control::operation_json(&op))),
                None => Err(GraphError::not_found(format_args!(
                    "Operation {op_id} of call {id}"
                ))),
            }
        }
        GraphRoute::Operation(..) => Err(GraphError::method_not_allowed("GET, HEAD")),
        GraphRoute::Recording(sid) if read => recording(inner, sid, &parts.headers).await,
        GraphRoute::Recording(_) => Err(GraphError::method_not_allowed("GET, HEAD")),
    }
}

/// Call ids are CallSids; anything else cannot name a call, so the daemon is not asked.
fn known(id: &str) -> Option<&str> {
    is_sid(id, "CA").then_some(id)
}

fn call_not_found(id: &str) -> GraphError {
    GraphError::not_found(format_args!("Call {id}"))
}

async fn read_body(body: Body) -> Result<axum::body::Bytes, GraphError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            GraphError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalidRequest",
                format!("the request body is over {MAX_BODY_BYTES} bytes or unreadable"),
            )
        })
}

/// 200, `Location` of the operation, and the operation.
fn operation_response(public_url: &str, call_id: &str, op: &OperationView) -> Response {
    let location = format!(
        "{}{PREFIX}{}",
        public_url.trim_end_matches('/'),
        control::operation_resource_url(call_id, &op.id)
    );
    let mut resp = json(StatusCode::OK, &control::operation_json(op));
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => tracing::warn!(%location, "operation Location is not a valid header value"),
    }
    resp
}

/// The WAV of a recording, for the holder of its access token.
async fn recording(inner: &Inner, sid: &str, headers: &HeaderMap) -> Result<Response, GraphError> {
    let not_found = || GraphError::not_found(format_args!("Recording {sid}"));
    let Ok(sid) = sid.parse::<RecordingSid>() else {
        return Err(not_found());
    };
    let rec = match find_recording(inner, &sid, None, false).await {
        Ok(r) => r,
        Err(e) if e.status == StatusCode::NOT_FOUND => return Err(not_found()),
        Err(_) => return Err(GraphError::internal("database error")),
    };
    if rec.status.is_unfinished() {
        return Err(not_found());
    }
    let (wav, _) = media_paths(&inner.api.storage_dir, &rec).ok_or_else(not_found)?;
    match serve_recording_wav(inner, &rec, &wav, "application/octet-stream", headers).await {
        Ok(r) => Ok(r),
        Err(ServeError::NotFound) => Err(not_found()),
        Err(ServeError::Io(e)) => {
            Metrics::add(&inner.api.metrics.disk_errors, 1);
            tracing::error!(path = %wav.display(), error = %e, "reading recording media");
            Err(GraphError::internal("recording media unreadable"))
        }
        Err(ServeError::Remote(e)) => {
            tracing::error!(recording = %rec.sid, error = %e, "reading recording media from object storage");
            Err(GraphError::internal("recording media unreadable"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "CA0123456789abcdef0123456789abcdef";

    #[test]
    fn graph_paths_and_case_insensitive_actions() {
        let p = |s: &str| {
            parse(Box::leak(
                format!("/v1.0/communications/{s}").into_boxed_str(),
            ))
        };
        assert_eq!(p(&format!("calls/{CA}")), GraphRoute::Call(CA));
        assert_eq!(
            p(&format!("calls/{CA}/recordResponse")),
            GraphRoute::Action(CA, Action::RecordResponse)
        );
        assert_eq!(
            p(&format!("calls/{CA}/PLAYPROMPT")),
            GraphRoute::Action(CA, Action::PlayPrompt)
        );
        assert_eq!(
            p(&format!("calls/{CA}/subscribeToTone")),
            GraphRoute::Action(CA, Action::SubscribeToTone)
        );
        assert_eq!(
            p(&format!("calls/{CA}/operations/op1")),
            GraphRoute::Operation(CA, "op1")
        );
        assert_eq!(p("recordings/RE1"), GraphRoute::Recording("RE1"));
        for bad in [
            "calls",
            "calls/",
            &format!("calls/{CA}/mute"),
            &format!("calls/{CA}/operations/"),
            &format!("calls/{CA}/operations/x/y"),
            "recordings/",
            "other/x",
        ] {
            assert_eq!(p(bad), GraphRoute::Unknown, "{bad}");
        }
        assert_eq!(parse("/v1.0/me"), GraphRoute::Unknown);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_basic_is_not_bearer() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(bearer(&h("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&h("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&h("Basic abc")), None);
        assert_eq!(bearer(&h("Bearer")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn error_body_is_graph_shaped() {
        let e = GraphError::not_found("Call X");
        assert_eq!(
            e.body("rid", "2024-01-02T03:04:05"),
            json!({"error": {"code": "itemNotFound", "message": "Call X was not found",
                "innerError": {"request-id": "rid", "date": "2024-01-02T03:04:05"}}})
        );
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(id, request_id());
    }
}
