//! The bot side of the live call-control tests (SPEC §7, issue 6): an HTTP server that collects
//! the `commsNotifications` Hark POSTs and serves prompt audio, and a client for
//! `/v1.0/communications/calls` and Twilio's live call update.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

use crate::common::{wait_until, App, Daemon, LocalServer, ACCOUNT_SID, AUTH_TOKEN};

/// `bot.api_token` of every bot test daemon.
pub const API_TOKEN: &str = "bot-e2e-token-7c1d";

/// One `commsNotification` (a POST may carry several; each is its own `Note`).
#[derive(Debug, Clone)]
pub struct Note {
    pub at: Instant,
    pub change_type: String,
    pub resource_url: String,
    pub data: Value,
    /// The whole POSTed body, and its Content-Type.
    pub body: Value,
    pub content_type: String,
}

impl Note {
    pub fn state(&self) -> Option<&str> {
        self.data["state"].as_str()
    }
    pub fn status(&self) -> Option<&str> {
        self.data["status"].as_str()
    }
    pub fn result(&self) -> (u64, u64) {
        let r = &self.data["resultInfo"];
        (
            r["code"].as_u64().unwrap_or(0),
            r["subcode"].as_u64().unwrap_or(0),
        )
    }
}

struct Shared {
    notes: Mutex<Vec<Note>>,
    /// Bodies that were not a commsNotifications document.
    bad: Mutex<Vec<String>>,
    media: Mutex<HashMap<String, Vec<u8>>>,
}

pub struct Bot {
    server: LocalServer,
    shared: Arc<Shared>,
    client: reqwest::Client,
}

/// An HTTP answer from Hark.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the request was sent.
    pub sent: Instant,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    Bearer(&'a str),
    Basic(&'a str, &'a str),
    None,
}

impl Bot {
    pub fn start() -> Bot {
        let shared = Arc::new(Shared {
            notes: Mutex::new(Vec::new()),
            bad: Mutex::new(Vec::new()),
            media: Mutex::new(HashMap::new()),
        });
        let server =
            LocalServer::start(2, Router::new().fallback(handle).with_state(shared.clone()));
        Bot {
            server,
            shared,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("reqwest client"),
        }
    }

    /// Where Hark POSTs notifications.
    pub fn callback_url(&self) -> String {
        format!("{}/notify", self.server.base)
    }

    /// Serves `bytes` at `/media/{name}`; returns its URL.
    pub fn serve(&self, name: &str, bytes: Vec<u8>) -> String {
        self.shared
            .media
            .lock()
            .expect("media")
            .insert(format!("/media/{name}"), bytes);
        format!("{}/media/{name}", self.server.base)
    }

    /// Serves an 8 kHz PCM16 WAV of `samples`.
    pub fn serve_wav(&self, name: &str, samples: &[i16]) -> String {
        let mut cursor = std::io::Cursor::new(Vec::new());
        {
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 8000,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut w = hound::WavWriter::new(&mut cursor, spec).expect("wav writer");
            for &s in samples {
                w.write_sample(s).expect("sample");
            }
            w.finalize().expect("finalize");
        }
        self.serve(name, cursor.into_inner())
    }

    pub fn notes(&self) -> Vec<Note> {
        self.shared.notes.lock().expect("notes").clone()
    }

    /// Bodies Hark sent that were not `commsNotifications`.
    pub fn assert_no_bad_bodies(&self) {
        let bad = self.shared.bad.lock().expect("bad").clone();
        assert!(bad.is_empty(), "malformed notifications: {bad:#?}");
    }

    pub fn describe(&self) -> String {
        self.notes()
            .iter()
            .map(|n| {
                format!(
                    "{} {} state={:?} status={:?} result={:?}",
                    n.change_type,
                    n.resource_url,
                    n.state(),
                    n.status(),
                    n.result()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The first note matching `pred`, waiting up to `timeout`.
    pub fn wait_note(&self, what: &str, timeout: Duration, pred: impl Fn(&Note) -> bool) -> Note {
        wait_until(timeout, || self.notes().into_iter().find(|n| pred(n))).unwrap_or_else(|| {
            panic!(
                "no notification {what} within {timeout:?}; got:\n{}",
                self.describe()
            )
        })
    }

    /// Waits for the call's `established` notification; returns the call id.
    pub fn wait_established(&self, timeout: Duration) -> String {
        let n = self.wait_note("established", timeout, |n| n.state() == Some("established"));
        let id = n.data["id"].as_str().expect("resourceData.id").to_string();
        assert_eq!(n.change_type, "updated");
        assert_eq!(n.resource_url, format!("/communications/calls/{id}"));
        id
    }

    /// The completion notification of operation `op`.
    pub fn wait_op(&self, call: &str, op: &str, timeout: Duration) -> Note {
        let url = format!("/communications/calls/{call}/operations/{op}");
        let n = self.wait_note(&format!("for {url}"), timeout, |n| n.resource_url == url);
        assert_eq!(n.change_type, "deleted", "{url}: changeType");
        assert_eq!(n.data["id"], op, "{url}: resourceData.id");
        n
    }

    pub fn wait_terminated(&self, call: &str, timeout: Duration) -> Note {
        let n = self.wait_note("terminated", timeout, |n| n.state() == Some("terminated"));
        assert_eq!(n.change_type, "deleted");
        assert_eq!(n.data["id"], call);
        n
    }

    /// Sends a request to Hark.
    pub fn request(
        &self,
        method: &str,
        url: &str,
        auth: Auth<'_>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.client.request(method, url);
        match auth {
            Auth::Bearer(t) => rb = rb.bearer_auth(t),
            Auth::Basic(u, p) => rb = rb.basic_auth(u, Some(p)),
            Auth::None => {}
        }
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        let rb = rb.body(body);
        let sent = Instant::now();
        self.server.block_on(async move {
            let r = rb
                .send()
                .await
                .unwrap_or_else(|e| panic!("request failed: {e}"));
            let status = r.status().as_u16();
            let headers = r
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            Resp {
                status,
                headers,
                body,
                sent,
            }
        })
    }
}

async fn handle(
    State(sh): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    if method == Method::GET {
        return match sh.media.lock().expect("media").get(uri.path()) {
            Some(b) => (
                StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, "audio/wav")],
                b.clone(),
            )
                .into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        };
    }
    let content_type = headers
        .get("content-type")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let items = parsed
        .as_ref()
        .and_then(|v| v["value"].as_array())
        .filter(|a| !a.is_empty());
    match (parsed.as_ref(), items) {
        (Some(doc), Some(items)) if uri.path() == "/notify" => {
            let mut notes = sh.notes.lock().expect("notes");
            for it in items {
                if it["@odata.type"] != "#microsoft.graph.commsNotification" {
                    sh.bad
                        .lock()
                        .expect("bad")
                        .push(format!("item without @odata.type: {it}"));
                }
                notes.push(Note {
                    at,
                    change_type: it["changeType"].as_str().unwrap_or("").to_string(),
                    resource_url: it["resourceUrl"].as_str().unwrap_or("").to_string(),
                    data: it["resourceData"].clone(),
                    body: doc.clone(),
                    content_type: content_type.clone(),
                });
            }
        }
        _ => sh.bad.lock().expect("bad").push(format!(
            "{method} {uri}: {}",
            String::from_utf8_lossy(&body)
        )),
    }
    StatusCode::ACCEPTED.into_response()
}

/// A daemon whose default application is the bot.
pub fn bot_daemon(bot: &Bot) -> Daemon {
    let cb = bot.callback_url();
    Daemon::start(
        &[
            ("app.bot_callback_uri", cb.as_str()),
            ("bot.api_token", API_TOKEN),
        ],
        App::Twiml("<Response><Hangup/></Response>".into()),
    )
}

/// `{public}/v1.0/communications/calls/{id}` + `tail`.
pub fn call_url(d: &Daemon, id: &str, tail: &str) -> String {
    format!("{}/v1.0/communications/calls/{id}{tail}", d.public_url())
}

/// Authenticated JSON POST to a call's action.
pub fn post_action(bot: &Bot, d: &Daemon, id: &str, action: &str, body: &Value) -> Resp {
    bot.request(
        "POST",
        &call_url(d, id, &format!("/{action}")),
        Auth::Bearer(API_TOKEN),
        Some("application/json"),
        serde_json::to_vec(body).expect("json"),
    )
}

/// POSTs an operation expecting 200; checks `Location`, `@odata.type`, the status and the echoed
/// clientContext; returns the operation id.
pub fn start_op(bot: &Bot, d: &Daemon, id: &str, action: &str, body: &Value) -> String {
    let r = post_action(bot, d, id, action, body);
    assert_eq!(r.status, 200, "{action}: {}", r.text());
    let v = r.json();
    let op = v["id"].as_str().expect("operation id").to_string();
    let kind = match action {
        "recordResponse" => "recordOperation",
        "playPrompt" => "playPromptOperation",
        _ => "subscribeToToneOperation",
    };
    assert_eq!(v["@odata.type"], format!("#microsoft.graph.{kind}"));
    assert_eq!(
        r.header("location"),
        Some(call_url(d, id, &format!("/operations/{op}")).as_str()),
        "Location"
    );
    let status = v["status"].as_str().unwrap_or("");
    assert!(
        status == "running" || status == "notStarted",
        "{action} answered with status {status:?}"
    );
    assert!(v["resultInfo"].is_null(), "resultInfo before completion");
    assert_eq!(v["clientContext"], body["clientContext"], "clientContext");
    op
}

/// A `mediaPrompt` for `uri`.
pub fn prompt(uri: &str) -> Value {
    serde_json::json!({
        "@odata.type": "#microsoft.graph.mediaPrompt",
        "mediaInfo": {"@odata.type": "#microsoft.graph.mediaInfo", "uri": uri, "resourceId": "r1"},
    })
}

/// GET `url` with a Bearer token.
pub fn get_bearer(bot: &Bot, url: &str, token: &str) -> Resp {
    bot.request("GET", url, Auth::Bearer(token), None, Vec::new())
}

/// Twilio's live update of `call_sid` with a form body.
pub fn twilio_update(bot: &Bot, d: &Daemon, call_sid: &str, form: &[(&str, &str)]) -> Resp {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    bot.request(
        "POST",
        &format!(
            "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}.json",
            d.public_url()
        ),
        Auth::Basic(ACCOUNT_SID, AUTH_TOKEN),
        Some("application/x-www-form-urlencoded"),
        body.into_bytes(),
    )
}

/// Samples of a WAV held in memory (hound checks the header); 8 kHz PCM16 mono expected.
pub fn wav_samples(bytes: &[u8]) -> Vec<i16> {
    let r = hound::WavReader::new(std::io::Cursor::new(bytes)).expect("hound reads the WAV");
    let spec = r.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 8000, 16),
        "recording format"
    );
    r.into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .expect("samples")
}

/// Seconds between two instants (b after a), negative when b is earlier.
pub fn since(a: Instant, b: Instant) -> f64 {
    if b >= a {
        (b - a).as_secs_f64()
    } else {
        -(a - b).as_secs_f64()
    }
}
