//! Hark's HTTP API (SPEC §6): `/2010-04-01/Accounts/{AccountSid}/…` for calls and recordings as
//! the Twilio helper libraries expect them, recording media (WAV, MP3 encoded on first request),
//! `/healthz` and `/metrics`; transcriptions (SPEC §6.4) and the per-call transcript API
//! `/public/api/v1/monitor/voice_log/{request_id}` (SPEC §8, see [`voice_log`]); the live
//! call-control API `/v1.0/communications/…` (SPEC §7, Bearer auth, see [`control`]) and
//! Twilio's live call update `POST …/Calls/{CallSid}.json`.
//!
//! Auth (SPEC §6.1): every `/2010-04-01` route needs HTTP Basic `AccountSid:AuthToken`, or
//! `ApiKeySid:secret` of a configured API key as Twilio accepts (media too unless `media_auth`
//! is `None`), checked before any lookup: 401 + error 20003 without
//! valid credentials, 403 + 20003 when the path names another account. `/healthz` and
//! `/metrics` are open (scrapers rarely do Basic) and expose counters only, never SIDs.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

mod admin;
mod auth;
mod call_create;
mod call_recordings;
mod call_update;
mod console;
pub mod control;
mod error;
mod graph;
mod graph_body;
mod media;
pub mod metrics;
mod mp3;
mod paging;
mod resources;
mod rest;
mod route;
mod transcriptions;
pub mod voice_log;

pub use admin::DrainSwitch;
pub use auth::{constant_time_eq, ApiKey};
pub use console::ClientAddr;
pub use error::ApiError;
pub use metrics::{LabelledCounts, Metrics};
pub use mp3::{encode_wav, Mp3Error};
pub use voice_log::{VoiceLogConfig, VoiceLogToken};

/// Whether recording media needs credentials (`http.media_auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaAuth {
    Basic,
    None,
}

pub struct ApiState {
    pub account_sid: store::AccountSid,
    pub auth_token: String,
    /// `[[api_key]]`s: each also authenticates as `ApiKeySid:secret` for `account_sid`.
    pub api_keys: Vec<ApiKey>,
    pub media_auth: MediaAuth,
    pub store: Arc<store::Store>,
    /// Where `RecordingRecord::media_file` lives; MP3s are cached beside the WAVs.
    pub storage_dir: PathBuf,
    /// `storage.backend = "s3"`: finished recordings not on this node's disk are read from
    /// here (object key = `media_file`).
    pub remote_media: Option<media_store::ObjectStorage>,
    pub metrics: Arc<Metrics>,
    /// `http.public_url` without a trailing slash, e.g. `https://hark.example.com`: the base of
    /// the absolute `media_url` in recording JSON.
    pub public_url: String,
    /// Tokens of the per-call transcript API; none configured: every request is 401.
    pub voice_log: VoiceLogConfig,
    /// Live call control (`/v1.0/communications/calls`, Twilio's call update); `None` = those
    /// routes answer 404.
    pub bot: Option<control::BotApi>,
    /// Engines `/healthz` reports on besides the database.
    pub readiness: Readiness,
    /// `/admin/drain` and SIGTERM: the node stops taking calls.
    pub drain: DrainSwitch,
    /// `cluster.node_id`, shown by `/admin/drain` and `/healthz`.
    pub node_id: String,
    /// Several nodes: live call control of a call another node runs is sent there.
    pub forwarder: Option<Arc<dyn CallForwarder>>,
}

/// Set on a request one node forwards to another, which then never forwards it again.
pub const FORWARDED_HEADER: &str = "x-hark-forwarded-by";

/// A live-call request (`POST …/Calls/{Sid}…`) for a call this node does not run.
pub struct ForwardRequest {
    pub method: axum::http::Method,
    /// Path and query, e.g. `/2010-04-01/Accounts/AC…/Calls/CA….json`.
    pub path_and_query: String,
    pub headers: axum::http::HeaderMap,
    pub body: bytes::Bytes,
}

/// Sends live call control to the node running the call (the daemon looks it up in the
/// shared database). `None`: no other node runs it; the request is answered here.
pub trait CallForwarder: Send + Sync {
    fn forward<'a>(
        &'a self,
        call: &'a store::CallSid,
        request: ForwardRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Response>> + Send + 'a>>;
}

/// Whether the daemon's engines (transcription, …) can do their work, as `/healthz` shows it.
/// The daemon updates it; cheap to clone.
#[derive(Clone, Default)]
pub struct Readiness(Arc<std::sync::RwLock<std::collections::BTreeMap<String, serde_json::Value>>>);

impl Readiness {
    /// Sets one component: `ready` plus its details (an object's fields are merged in).
    pub fn set(&self, component: &str, ready: bool, detail: serde_json::Value) {
        let mut entry = serde_json::Map::new();
        entry.insert("ready".into(), ready.into());
        if let serde_json::Value::Object(fields) = detail {
            entry.extend(fields);
        }
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        map.insert(component.to_string(), serde_json::Value::Object(entry));
    }

    fn snapshot(&self) -> (bool, serde_json::Map<String, serde_json::Value>) {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        let all_ready = map.values().all(|v| v["ready"] == true);
        (
            all_ready,
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        )
    }
}

/// What the handlers share: the daemon's state plus the API's own MP3 bookkeeping.
struct Inner {
    api: Arc<ApiState>,
    mp3: mp3::Mp3Cache,
    voice_log_rate: voice_log::RateLimiter,
    /// Signed-in console sessions.
    console: console::Sessions,
}

/// Every route of the API.
pub fn router(state: Arc<ApiState>) -> axum::Router {
    router_and_deleter(state).0
}

/// Deletes recordings outside a request (retention, bot recordings discarded after the call),
/// exactly as `DELETE …/Recordings/{Sid}.json` does, in step with the API's MP3 encodes.
#[derive(Clone)]
pub struct RecordingDeleter {
    inner: Arc<Inner>,
}

impl RecordingDeleter {
    /// Marks the recording deleted and removes its transcripts, WAV and MP3. False when it
    /// was already deleted.
    pub async fn delete(&self, rec: &store::RecordingRecord) -> Result<bool, ApiError> {
        rest::remove_recording(&self.inner, rec).await
    }
}

/// [`router`], plus a [`RecordingDeleter`] that shares its MP3 bookkeeping.
pub fn router_and_deleter(state: Arc<ApiState>) -> (axum::Router, RecordingDeleter) {
    // The public URL says whether browsers reach us over HTTPS (the daemon derives it from the
    // listener when it is not configured).
    let secure = state.public_url.starts_with("https://");
    let inner = Arc::new(Inner {
        api: state,
        mp3: mp3::Mp3Cache::default(),
        voice_log_rate: voice_log::RateLimiter::default(),
        console: console::Sessions::new(secure),
    });
    let deleter = RecordingDeleter {
        inner: inner.clone(),
    };
    let vl = voice_log::PATH;
    let router = axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route(admin::PATH, any(admin::handler))
        .route("/2010-04-01", any(api))
        .route("/2010-04-01/{*rest}", any(api))
        .route(graph::PREFIX, any(graph::handler))
        .route(&format!("{}/{{*rest}}", graph::PREFIX), any(graph::handler))
        .route(vl, any(voice_log::handler))
        .route(&format!("{vl}/"), any(voice_log::handler))
        .route(&format!("{vl}/{{*request_id}}"), any(voice_log::handler))
        .merge(console::router())
        .fallback(|uri: Uri| async move { ApiError::not_found(uri.path()) })
        .with_state(inner);
    (router, deleter)
}

async fn api(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    rest::dispatch(&inner, &parts.method, &parts.uri, &parts.headers, body).await
}

/// 200 with a JSON body when the database answers, else 503. `status` is `ok`, or `degraded`
/// when an engine is not ready (calls are still answered and recorded); each engine's entry says
/// why. Load balancers look at the status code, people at the body.
async fn healthz(State(inner): State<Arc<Inner>>) -> Response {
    let (code, body) = health(&inner).await;
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::Value::Object(body).to_string(),
    )
        .into_response()
}

/// `/healthz`'s status code and body (the console's system page shows it too).
async fn health(inner: &Inner) -> (StatusCode, serde_json::Map<String, serde_json::Value>) {
    let store = inner.api.store.clone();
    let database = match tokio::task::spawn_blocking(move || store.schema_version()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            Metrics::add(&inner.api.metrics.db_errors, 1);
            tracing::error!(error = %e, "health check: database unavailable");
            Err("database unavailable")
        }
        Err(_) => Err("health check failed"),
    };
    let (all_ready, engines) = inner.api.readiness.snapshot();
    let mut body = serde_json::Map::new();
    let status = match (&database, all_ready) {
        (Err(_), _) => "unavailable",
        (Ok(()), true) => "ok",
        (Ok(()), false) => "degraded",
    };
    let draining = inner.api.drain.is_draining();
    // A draining node is healthy but takes no new work: 503 makes HTTP balancers agree with
    // the SIP one.
    let status = if draining && database.is_ok() {
        "draining"
    } else {
        status
    };
    body.insert("status".into(), status.into());
    body.insert("node_id".into(), inner.api.node_id.clone().into());
    body.insert(
        "database".into(),
        match database {
            Ok(()) => "ok",
            Err(why) => why,
        }
        .into(),
    );
    body.extend(engines);
    let code = if database.is_ok() && !draining {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body)
}

async fn metrics_text(State(inner): State<Arc<Inner>>) -> Response {
    let mut text = inner.api.metrics.render();
    let (_, engines) = inner.api.readiness.snapshot();
    if !engines.is_empty() {
        text.push_str(
            "# HELP hark_engine_ready Whether an engine can do its work (1) or not (0); /healthz says why.\n\
             # TYPE hark_engine_ready gauge\n",
        );
        for (name, entry) in engines {
            let ready = u8::from(entry["ready"] == true);
            text.push_str(&format!("hark_engine_ready{{engine=\"{name}\"}} {ready}\n"));
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
