//! The AssemblyAI-style asynchronous engine (`transcription.engine = "assemblyai"`) against a
//! local server the test runs: the recording is uploaded byte for byte with the key, a
//! transcript is created with its `upload_url` and language, polled until `completed`, and its
//! words become the callback's text and the voice_log utterances; an `error` transcript ends
//! `failed` without touching the recording.

mod common;
mod twilio_app;
mod twilio_client;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use common::*;
use serde_json::{json, Value};
use twilio_client::{api_url, Auth, Http};

const KEY: &str = "aai-local-key";
const TOKEN: &str = "vl-aai-5";

#[derive(Default)]
struct Seen {
    /// (method, path, authorization, body)
    requests: Vec<(String, String, Option<String>, Vec<u8>)>,
    polls: usize,
}

struct FakeState {
    seen: Mutex<Seen>,
    /// The finished transcript (`status` completed or error).
    outcome: Value,
}

async fn handle(
    State(st): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut seen = st.seen.lock().expect("seen");
    seen.requests.push((
        method.to_string(),
        uri.path().to_string(),
        auth,
        body.to_vec(),
    ));
    let reply = match (method.as_str(), uri.path()) {
        ("POST", "/v2/upload") => json!({"upload_url": "https://cdn.example/upload/u1"}),
        ("POST", "/v2/transcript") => json!({"id": "t1", "status": "queued"}),
        ("GET", "/v2/transcript/t1") => {
            seen.polls += 1;
            if seen.polls < 2 {
                json!({"id": "t1", "status": "processing"})
            } else {
                st.outcome.clone()
            }
        }
        _ => return (axum::http::StatusCode::NOT_FOUND, "no such route").into_response(),
    };
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        reply.to_string(),
    )
        .into_response()
}

struct FakeAssemblyAi {
    server: LocalServer,
    state: Arc<FakeState>,
}

impl FakeAssemblyAi {
    fn start(outcome: Value) -> FakeAssemblyAi {
        let state = Arc::new(FakeState {
            seen: Mutex::new(Seen::default()),
            outcome,
        });
        let server =
            LocalServer::start(1, Router::new().fallback(handle).with_state(state.clone()));
        FakeAssemblyAi { server, state }
    }
}

/// A daemon transcribing with the fake server; one call of the speech fixture ending in '#'.
/// Returns the daemon, the `/done` and `/tcb` requests and the recording's bytes.
fn record_and_transcribe(aai: &FakeAssemblyAi) -> (Daemon, Recorded, Recorded, Vec<u8>) {
    let wh = WebhookServer::start();
    wh.route("/done", Reply::twiml("<Response><Hangup/></Response>"));
    wh.route("/tcb", Reply::empty());
    let twiml = format!(
        r##"<Response><Record transcribeCallback="{}" transcribeLanguage="fr-FR" finishOnKey="#" timeout="10" maxLength="30" action="{}"/></Response>"##,
        wh.url("/tcb"),
        wh.url("/done")
    );
    let d = Daemon::start(
        &[
            ("transcription.engine", "assemblyai"),
            ("transcription.assemblyai_url", aai.server.base.as_str()),
            ("transcription.assemblyai_api_key", KEY),
            ("transcription.assemblyai_poll_ms", "100"),
            ("transcripts.api_token", TOKEN),
        ],
        App::Twiml(twiml),
    );
    let done = call_then_pound(&d, &wh, &data_dir().join("speech_8k_ulaw.wav"));
    let rec = check_recording(&d, &done, &decode_all(&speech_ulaw()), false);
    let bytes = std::fs::read(&rec.path).expect("recording");
    let cb = wh.wait_for("/tcb", 1, Duration::from_secs(30)).remove(0);
    assert!(cb.signature_ok, "{:?}", cb.signature_problem);
    wh.assert_signatures_ok();
    (d, done, cb, bytes)
}

fn word(text: &str, start: u64, end: u64) -> Value {
    json!({"text": text, "start": start, "end": end, "confidence": 0.93})
}

#[test]
fn upload_create_poll_and_words_become_the_transcript() {
    let aai = FakeAssemblyAi::start(json!({
        "id": "t1", "status": "completed", "text": "Bonjour, ici Anna. Rappelez-moi.",
        "words": [word("Bonjour,", 400, 900), word("ici", 950, 1150), word("Anna.", 1200, 1700),
                  word("Rappelez-moi.", 2400, 3300)],
    }));
    let (d, done, cb, bytes) = record_and_transcribe(&aai);
    assert_eq!(cb.param("TranscriptionStatus"), "completed");
    assert_eq!(
        cb.param("TranscriptionText"),
        "Bonjour, ici Anna. Rappelez-moi."
    );
    assert_eq!(cb.param("RecordingSid"), done.param("RecordingSid"));

    // What the server saw: upload (the recording, byte for byte), create, two polls.
    let seen = aai.state.seen.lock().expect("seen");
    let calls: Vec<(&str, &str)> = seen
        .requests
        .iter()
        .map(|(m, p, _, _)| (m.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("POST", "/v2/upload"),
            ("POST", "/v2/transcript"),
            ("GET", "/v2/transcript/t1"),
            ("GET", "/v2/transcript/t1"),
        ]
    );
    assert!(seen.requests.iter().all(|r| r.2.as_deref() == Some(KEY)));
    assert!(seen.requests[0].3 == bytes, "the upload is the recording");
    let create: Value = serde_json::from_slice(&seen.requests[1].3).expect("JSON");
    assert_eq!(create["audio_url"], "https://cdn.example/upload/u1");
    assert_eq!(create["language_code"], "fr");
    drop(seen);

    // REST and voice_log: two utterances, one per sentence, 1.3 s and 0.9 s long.
    let http = Http::new();
    let tr = cb.param("TranscriptionSid");
    let v = http
        .get(
            &api_url(&d, ACCOUNT_SID, &format!("Transcriptions/{tr}.json")),
            Auth::Account,
        )
        .json();
    assert_eq!(v["transcription_text"], "Bonjour, ici Anna. Rappelez-moi.");
    let vl = http
        .request(
            "GET",
            &format!(
                "{}/public/api/v1/monitor/voice_log/{}?format=json",
                d.public_url(),
                done.param("CallSid")
            ),
            Auth::None,
            &[("Authorization", &format!("Token {TOKEN}"))],
        )
        .json();
    let u = vl["utterances"].as_array().expect("utterances");
    let texts: Vec<&str> = u.iter().filter_map(|x| x["text"].as_str()).collect();
    assert_eq!(texts, ["Bonjour, ici Anna.", "Rappelez-moi."], "{vl}");
    assert_eq!(u[0]["voice_duration_sec"].as_f64(), Some(1.3));
    assert_eq!(u[1]["voice_duration_sec"].as_f64(), Some(0.9));
    let gap = u[1]["speak_start_sec"].as_f64().unwrap_or(f64::NAN)
        - u[0]["speak_start_sec"].as_f64().unwrap_or(f64::NAN);
    assert!((gap - 2.0).abs() <= 0.11, "starts {vl}");
}

#[test]
fn error_transcript_fails_and_keeps_the_recording() {
    let aai = FakeAssemblyAi::start(json!({
        "id": "t1", "status": "error", "error": "Audio duration is too short."
    }));
    let (d, done, cb, bytes) = record_and_transcribe(&aai);
    assert_eq!(cb.param("TranscriptionStatus"), "failed");
    assert_eq!(cb.param("TranscriptionText"), "");
    let re = done.param("RecordingSid");
    assert!(
        std::fs::read(d.recording_path(re)).expect("recording") == bytes,
        "the recording is untouched"
    );
    let http = Http::new();
    let r = http
        .get(
            &api_url(&d, ACCOUNT_SID, &format!("Recordings/{re}.json")),
            Auth::Account,
        )
        .json();
    assert_eq!(r["status"], "completed");
    assert!(
        d.log().contains("Audio duration is too short."),
        "the engine's reason is logged"
    );
}
