//! The OpenAI-compatible engine (`transcription.engine = "openai"`) against a local server the
//! test runs: the multipart request Hark sends (`file`, `model`, `language`,
//! `response_format=verbose_json`, bearer key), `verbose_json` segments mapped to utterances, and
//! failures (server down, server slower than `timeout_secs`) ending `failed` without touching the
//! recording.

mod common;
mod twilio_app;
mod twilio_client;

use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use common::*;
use twilio_client::{api_url, Auth, Http};

const TOKEN: &str = "vl-openai-77";
const MODEL: &str = "whisper-large-v3-test";
const API_KEY: &str = "sk-local-test-key";

/// One multipart/form-data part.
#[derive(Debug, Clone)]
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

#[derive(Debug, Clone)]
struct EngineRequest {
    method: String,
    path: String,
    content_type: String,
    authorization: Option<String>,
    parts: Vec<Part>,
}

impl EngineRequest {
    fn part(&self, name: &str) -> &Part {
        let found: Vec<&Part> = self.parts.iter().filter(|p| p.name == name).collect();
        assert_eq!(found.len(), 1, "one `{name}` part in {:?}", self.names());
        found[0]
    }

    fn text(&self, name: &str) -> String {
        String::from_utf8(self.part(name).data.clone()).expect("utf-8 field")
    }

    fn names(&self) -> Vec<String> {
        self.parts.iter().map(|p| p.name.clone()).collect()
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    (from..=hay.len().checked_sub(needle.len())?).find(|&i| hay[i..].starts_with(needle))
}

/// RFC 7578 body → parts; panics on anything malformed (the test wants to see it).
fn parse_multipart(content_type: &str, body: &[u8]) -> Vec<Part> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .unwrap_or_else(|| panic!("no boundary in {content_type:?}"))
        .trim_matches('"');
    let delim = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut pos = find(body, &delim, 0).expect("first boundary") + delim.len();
    loop {
        if body[pos..].starts_with(b"--") {
            return parts;
        }
        assert!(body[pos..].starts_with(b"\r\n"), "CRLF after boundary");
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos).expect("part headers end");
        let head = std::str::from_utf8(&body[pos..head_end]).expect("ascii headers");
        let next = find(body, &delim, head_end).expect("closing boundary");
        let data = body[head_end + 4..next - 2].to_vec(); // CRLF before the boundary
        let mut part = Part {
            name: String::new(),
            filename: None,
            content_type: None,
            data,
        };
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(':').expect("header line");
            if k.eq_ignore_ascii_case("content-disposition") {
                for item in v.split(';').map(str::trim) {
                    if let Some(n) = item.strip_prefix("name=") {
                        part.name = n.trim_matches('"').to_string();
                    } else if let Some(f) = item.strip_prefix("filename=") {
                        part.filename = Some(f.trim_matches('"').to_string());
                    }
                }
            } else if k.eq_ignore_ascii_case("content-type") {
                part.content_type = Some(v.trim().to_string());
            }
        }
        parts.push(part);
        pos = next + delim.len();
    }
}

struct FakeState {
    log: Mutex<Vec<EngineRequest>>,
    delay: Duration,
    reply: String,
}

/// A local OpenAI-compatible transcription server: logs each request, waits `delay`, answers
/// `reply` as JSON.
struct FakeEngine {
    server: LocalServer,
    state: Arc<FakeState>,
}

async fn handle(
    State(st): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = h("content-type").unwrap_or_default();
    let parts = if content_type.starts_with("multipart/form-data") {
        parse_multipart(&content_type, &body)
    } else {
        Vec::new()
    };
    st.log.lock().expect("log").push(EngineRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        content_type,
        authorization: h("authorization"),
        parts,
    });
    tokio::time::sleep(st.delay).await;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        st.reply.clone(),
    )
        .into_response()
}

impl FakeEngine {
    fn start(delay: Duration, reply: &str) -> FakeEngine {
        let state = Arc::new(FakeState {
            log: Mutex::new(Vec::new()),
            delay,
            reply: reply.to_string(),
        });
        let server =
            LocalServer::start(1, Router::new().fallback(handle).with_state(state.clone()));
        FakeEngine { server, state }
    }

    fn requests(&self) -> Vec<EngineRequest> {
        self.state.log.lock().expect("log").clone()
    }
}

/// A daemon whose `<Record>` transcribes with the openai engine at `url`.
fn daemon(wh: &WebhookServer, url: &str, timeout_secs: &str, lang_attr: &str) -> Daemon {
    wh.route("/done", Reply::twiml("<Response><Hangup/></Response>"));
    wh.route("/tcb", Reply::empty());
    let twiml = format!(
        r##"<Response><Record transcribeCallback="{}" {lang_attr} finishOnKey="#" timeout="10" maxLength="30" action="{}"/></Response>"##,
        wh.url("/tcb"),
        wh.url("/done")
    );
    Daemon::start(
        &[
            ("transcription.engine", "openai"),
            ("transcription.openai_url", url),
            ("transcription.openai_model", MODEL),
            ("transcription.openai_api_key", API_KEY),
            ("transcription.timeout_secs", timeout_secs),
            ("transcripts.api_token", TOKEN),
        ],
        App::Twiml(twiml),
    )
}

/// One call of the speech fixture ending in '#': the call's `/done` request, the recording's bytes, and where in the sent audio the
/// recording begins (seconds; the caller starts talking when the call is answered).
fn call(d: &Daemon, wh: &WebhookServer) -> (Recorded, Vec<u8>, f64) {
    let done = call_then_pound(d, wh, &data_dir().join("speech_8k_ulaw.wav"));
    let rec = check_recording(d, &done, &decode_all(&speech_ulaw()), false);
    let bytes = std::fs::read(&rec.path).expect("recording");
    (done, bytes, rec.offset as f64 / 8000.0)
}

fn voice_log(http: &Http, d: &Daemon, id: &str, json: bool) -> twilio_client::Resp {
    let q = if json { "?format=json" } else { "" };
    http.request(
        "GET",
        &format!("{}/public/api/v1/monitor/voice_log/{id}{q}", d.public_url()),
        Auth::None,
        &[("Authorization", &format!("Token {TOKEN}"))],
    )
}

/// A failed transcription: callback and REST say `failed`, voice_log has nothing, the
/// recording is still `completed` with the same bytes.
fn assert_failed_without_harm(d: &Daemon, done: &Recorded, cb: &Recorded, before: &[u8]) {
    let re = done.param("RecordingSid");
    assert_eq!(cb.param("TranscriptionStatus"), "failed");
    assert_eq!(cb.param("TranscriptionText"), "");
    assert_eq!(cb.param("RecordingSid"), re);
    let tr = cb.param("TranscriptionSid");
    let http = Http::new();
    let v = http
        .get(
            &api_url(d, ACCOUNT_SID, &format!("Transcriptions/{tr}.json")),
            Auth::Account,
        )
        .json();
    assert_eq!(v["status"], "failed");
    assert!(v["transcription_text"].is_null(), "{v}");
    let txt = http.get(
        &api_url(d, ACCOUNT_SID, &format!("Transcriptions/{tr}.txt")),
        Auth::Account,
    );
    assert_eq!(txt.status, 404, "no text for a failed transcription");
    let r = http
        .get(
            &api_url(d, ACCOUNT_SID, &format!("Recordings/{re}.json")),
            Auth::Account,
        )
        .json();
    assert_eq!(r["status"], "completed", "{r}");
    let after = std::fs::read(d.recording_path(re)).expect("recording still there");
    assert!(after == before, "the recording's bytes changed");
    let media = http.get(&d.recording_url(re), Auth::Account);
    assert_eq!(media.status, 200);
    assert!(media.body == before, "media differs from the file");
    let vl = voice_log(&http, d, done.param("CallSid"), true);
    assert_eq!(vl.status, 404, "no transcript when the only one failed");
    assert!(
        d.log().contains("transcription failed"),
        "the reason is logged"
    );
}

#[test]
fn verbose_json_segments_become_utterances_and_request_has_openai_shape() {
    let reply = r#"{"task":"transcribe","language":"german","duration":8.2,
        "text":" Hallo, hier ist Anna.  Bitte rufen Sie zurück.",
        "segments":[
          {"id":0,"seek":0,"start":0.5,"end":1.7,"text":" Hallo, hier ist Anna.","tokens":[1,2],"temperature":0.0,"avg_logprob":-0.2,"compression_ratio":1.1,"no_speech_prob":0.01},
          {"id":1,"seek":0,"start":2.25,"end":4.0,"text":" Bitte rufen Sie zurück.","tokens":[3],"temperature":0.0,"avg_logprob":-0.3,"compression_ratio":1.2,"no_speech_prob":0.02}]}"#;
    let engine = FakeEngine::start(Duration::ZERO, reply);
    let wh = WebhookServer::start();
    let d = daemon(
        &wh,
        &engine.server.base,
        "30",
        r#"transcribeLanguage="de-DE""#,
    );
    let (done, bytes, rec_start) = call(&d, &wh);
    let cb = wh.wait_for("/tcb", 1, Duration::from_secs(30)).remove(0);

    // The request.
    let reqs = engine.requests();
    assert_eq!(reqs.len(), 1, "one engine request per recording");
    let q = &reqs[0];
    assert_eq!(q.method, "POST");
    assert_eq!(q.path, "/v1/audio/transcriptions");
    assert!(q.content_type.starts_with("multipart/form-data; boundary="));
    assert_eq!(
        q.authorization.as_deref(),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    let mut names = q.names();
    names.sort();
    assert_eq!(names, ["file", "language", "model", "response_format"]);
    let file = q.part("file");
    let re = done.param("RecordingSid");
    assert_eq!(file.filename.as_deref(), Some(format!("{re}.wav").as_str()));
    assert_eq!(file.content_type.as_deref(), Some("audio/wav"));
    assert!(
        file.data == bytes,
        "the file part is the recording, byte for byte"
    );
    assert_eq!(q.text("model"), MODEL);
    assert_eq!(q.text("language"), "de", "ISO-639-1 of transcribeLanguage");
    assert_eq!(q.text("response_format"), "verbose_json");

    // The callback and REST: the segments' texts joined.
    let text = "Hallo, hier ist Anna. Bitte rufen Sie zurück.";
    assert!(cb.signature_ok, "{:?}", cb.signature_problem);
    assert_eq!(cb.param("TranscriptionStatus"), "completed");
    assert_eq!(cb.param("TranscriptionText"), text);
    let tr = cb.param("TranscriptionSid");
    let http = Http::new();
    let v = http
        .get(
            &api_url(&d, ACCOUNT_SID, &format!("Transcriptions/{tr}.json")),
            Auth::Account,
        )
        .json();
    assert_eq!(v["status"], "completed");
    assert_eq!(v["transcription_text"], text);

    // voice_log: two utterances with the segments' durations and spacing.
    let t = voice_log(&http, &d, re, false);
    assert_eq!(t.status, 200);
    assert_eq!(
        t.text(),
        "caller : Hallo, hier ist Anna.\ncaller : Bitte rufen Sie zurück.\n"
    );
    let j = voice_log(&http, &d, re, true).json();
    let u = j["utterances"].as_array().expect("utterances");
    assert_eq!(u.len(), 2, "{j}");
    let f = |i: usize, k: &str| u[i][k].as_f64().unwrap_or(f64::NAN);
    assert_eq!(
        (u[0]["order"].clone(), u[1]["order"].clone()),
        (1.into(), 2.into())
    );
    assert_eq!(u[0]["speaker_type"], "caller");
    assert_eq!(u[1]["text"], "Bitte rufen Sie zurück.");
    assert_eq!(f(0, "voice_duration_sec"), 1.2);
    assert_eq!(f(1, "voice_duration_sec"), 1.8, "1.75 s to one decimal");
    let gap = f(1, "speak_start_sec") - f(0, "speak_start_sec");
    assert!((gap - 1.75).abs() <= 0.11, "starts {j}");
    // Segment 0 starts 0.5 s into the recording; the caller talks from the answer on, so
    // the recording (trimmed, with pre-roll) starts `rec_start` s into the call.
    let want = rec_start + 0.5;
    assert!(
        (f(0, "speak_start_sec") - want).abs() <= 0.15,
        "first utterance at {} s after answer, want {want:.2}",
        f(0, "speak_start_sec")
    );
    wh.assert_signatures_ok();
}

#[test]
fn engine_down_fails_the_transcription_and_keeps_the_recording() {
    let closed = {
        let l = StdListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let wh = WebhookServer::start();
    let d = daemon(&wh, &format!("http://127.0.0.1:{closed}"), "30", "");
    let (done, bytes, _) = call(&d, &wh);
    let cb = wh.wait_for("/tcb", 1, Duration::from_secs(30)).remove(0);
    assert!(cb.signature_ok);
    assert_failed_without_harm(&d, &done, &cb, &bytes);
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("transcription failed"))
        .expect("failure logged");
    assert!(
        line.contains(&format!("127.0.0.1:{closed}")) && line.to_lowercase().contains("connect"),
        "the reason names the server and the refused connection: {line}"
    );
    let m = Http::new()
        .get(&format!("{}/metrics", d.public_url()), Auth::None)
        .text();
    assert!(
        m.lines()
            .any(|l| l == "hark_transcriptions{state=\"failed\"} 1"),
        "{m}"
    );
}

#[test]
fn slow_engine_fails_within_timeout_secs() {
    let engine = FakeEngine::start(Duration::from_secs(30), r#"{"text":"too late"}"#);
    let wh = WebhookServer::start();
    let d = daemon(&wh, &engine.server.base, "2", "");
    let (done, bytes, _) = call(&d, &wh);
    let cb = wh.wait_for("/tcb", 1, Duration::from_secs(20)).remove(0);
    // The job starts when the recording is finalized, just before the action request.
    let took = cb.at.duration_since(done.at).as_secs_f64();
    assert!(
        (1.8..=4.5).contains(&took),
        "failed {took:.2} s after the action request; timeout_secs = 2"
    );
    assert_eq!(engine.requests().len(), 1, "the engine got the request");
    assert!(cb.signature_ok);
    assert_failed_without_harm(&d, &done, &cb, &bytes);
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("transcription failed"))
        .expect("failure logged");
    assert!(line.contains("no result within 2s"), "{line}");
}
