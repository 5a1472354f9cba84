//! Shared by the transcription and voice_log tests: a router over a temporary store.

#![allow(dead_code)]

pub mod bot;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request};
use axum::response::Response;
use base64::Engine;
use http_api::control::BotApi;
use http_api::{router, ApiState, MediaAuth, Metrics, VoiceLogConfig};
use store::{CallRecord, RecordingRecord, Store, TranscriptionRecord, Utterance};
use tower::ServiceExt;

pub const AC: &str = "AC0123456789abcdef0123456789abcdef";
pub const AC_OTHER: &str = "ACffffffffffffffffffffffffffffffff";
pub const TOKEN: &str = "s3cret-token";
/// 2023-11-14T22:13:20Z
pub const T0: i64 = 1_700_000_000_000;

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub dir: std::path::PathBuf,
    pub state: Arc<ApiState>,
    pub app: axum::Router,
}

pub fn fixture(voice_log: VoiceLogConfig, fill: impl FnOnce(&Store)) -> Fixture {
    fixture_with_bot(voice_log, None, fill)
}

pub fn fixture_with_bot(
    voice_log: VoiceLogConfig,
    bot: Option<BotApi>,
    fill: impl FnOnce(&Store),
) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let store = Store::open(&dir.join("hark.db")).unwrap();
    fill(&store);
    let state = Arc::new(ApiState {
        account_sid: AC.parse().unwrap(),
        auth_token: TOKEN.into(),
        api_keys: Vec::new(),
        media_auth: MediaAuth::Basic,
        store: Arc::new(store),
        storage_dir: dir.clone(),
        remote_media: None,
        drain: Default::default(),
        node_id: "test".into(),
        forwarder: None,
        metrics: Arc::new(Metrics::default()),
        public_url: "https://hark.example".into(),
        voice_log,
        bot,
        readiness: Default::default(),
    });
    Fixture {
        _dir: tmp,
        dir,
        app: router(state.clone()),
        state,
    }
}

pub fn basic(user: &str, pass: &str) -> String {
    let raw = format!("{user}:{pass}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

impl Fixture {
    pub async fn send(&self, method: Method, uri: &str, auth: Option<&str>) -> Response {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        self.app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }
}

pub async fn body(resp: Response) -> Vec<u8> {
    axum::body::to_bytes(resp.into_body(), 16 << 20)
        .await
        .unwrap()
        .to_vec()
}

pub async fn body_text(resp: Response) -> String {
    String::from_utf8(body(resp).await).unwrap()
}

pub fn call(sid: &str, account: &str, created: i64) -> CallRecord {
    CallRecord {
        sid: sid.parse().unwrap(),
        account_sid: account.parse().unwrap(),
        from: "+15551230001".into(),
        to: "+15559870002".into(),
        direction: store::Direction::Inbound,
        status: store::CallStatus::Completed,
        date_created_ms: created,
        date_updated_ms: created + 60_000,
        start_time_ms: Some(created + 500),
        end_time_ms: Some(created + 60_000),
        duration_secs: Some(59),
        parent_call_sid: None,
    }
}

pub fn recording(sid: &str, call_sid: &str, account: &str, start: i64) -> RecordingRecord {
    RecordingRecord {
        sid: sid.parse().unwrap(),
        account_sid: account.parse().unwrap(),
        call_sid: call_sid.parse().unwrap(),
        status: store::RecordingStatus::Completed,
        source: store::RecordingSource::RecordVerb,
        channels: 1,
        sample_rate: 8000,
        date_created_ms: start,
        date_updated_ms: start + 8_000,
        start_time_ms: start,
        duration_secs: Some(8),
        error_code: None,
        media_file: format!("{sid}.wav"),
        transcribe: true,
        transcribe_callback: None,
        status_callback: None,
        deleted_at_ms: None,
    }
}

pub fn transcription(
    sid: &str,
    rec: &RecordingRecord,
    status: &str,
    created: i64,
) -> TranscriptionRecord {
    TranscriptionRecord {
        sid: sid.parse().unwrap(),
        account_sid: rec.account_sid.clone(),
        recording_sid: rec.sid.clone(),
        call_sid: rec.call_sid.clone(),
        status: status.parse().unwrap(),
        text: (status == "completed").then(|| "hello world".to_string()),
        language: Some("en-US".into()),
        engine: Some("test".into()),
        error: (status == "failed").then(|| "engine down".to_string()),
        audio_secs: Some(8.0),
        processing_secs: Some(1.0),
        duration_secs: Some(8),
        kind: "fast".into(),
        transcribe_callback: None,
        date_created_ms: created,
        date_updated_ms: created + 1_000,
    }
}

pub fn utterance(order: u32, start_sec: f64, duration_sec: f64, text: &str) -> Utterance {
    Utterance {
        order,
        start_sec,
        duration_sec,
        speaker: "caller".into(),
        text: text.into(),
    }
}
