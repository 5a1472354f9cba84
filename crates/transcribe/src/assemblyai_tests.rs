//! The asynchronous engine against a small AssemblyAI-style server on 127.0.0.1:0.

use super::*;
use crate::wav::pcm16_wav;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const KEY: &str = "aai-test-key";

/// What the server saw, and how it answers polls.
#[derive(Default)]
struct Server {
    uploads: Vec<(Option<String>, Bytes)>,
    creates: Vec<serde_json::Value>,
    polls: usize,
    /// Polls answered `processing` before the final answer.
    processing_polls: usize,
    /// The final poll answer; `None` = processing for ever.
    outcome: Option<serde_json::Value>,
    /// Status for the upload (401 to refuse).
    upload_status: u16,
    /// The first polls answered 503.
    failing_polls: usize,
}

type Shared = Arc<Mutex<Server>>;

fn auth(h: &HeaderMap) -> Option<String> {
    h.get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn upload(State(s): State<Shared>, h: HeaderMap, body: Bytes) -> impl IntoResponse {
    let mut s = s.lock().unwrap();
    s.uploads.push((auth(&h), body));
    let status = StatusCode::from_u16(s.upload_status).unwrap();
    if !status.is_success() {
        return (status, r#"{"error":"Authentication error"}"#.to_string());
    }
    (
        status,
        r#"{"upload_url":"https://cdn.example/upload/abc123"}"#.to_string(),
    )
}

/// A JSON answer.
fn json_reply(v: serde_json::Value) -> impl IntoResponse {
    ([("content-type", "application/json")], v.to_string())
}

async fn create(State(s): State<Shared>, h: HeaderMap, body: Bytes) -> impl IntoResponse {
    let mut s = s.lock().unwrap();
    assert_eq!(auth(&h).as_deref(), Some(KEY));
    assert_eq!(
        h.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    s.creates
        .push(serde_json::from_slice(&body).expect("JSON body"));
    json_reply(json!({"id": "tr-1", "status": "queued"}))
}

async fn poll(
    State(s): State<Shared>,
    h: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> impl IntoResponse {
    let mut s = s.lock().unwrap();
    assert_eq!(auth(&h).as_deref(), Some(KEY));
    assert_eq!(id, "tr-1");
    s.polls += 1;
    if s.polls <= s.failing_polls {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    match &s.outcome {
        Some(done) if s.polls > s.processing_polls + s.failing_polls => {
            json_reply(done.clone()).into_response()
        }
        _ => json_reply(json!({"id": "tr-1", "status": "processing"})).into_response(),
    }
}

async fn start(server: Server) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(server));
    let router = Router::new()
        .route("/v2/upload", post(upload))
        .route("/v2/transcript", post(create))
        .route("/v2/transcript/{id}", get(poll))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}"), shared)
}

fn temp_wav(name: &str, secs: f64) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("transcribe-aai-{}-{name}.wav", std::process::id()));
    let n = (secs * 8000.0) as usize;
    let samples: Vec<i16> = (0..n).map(|i| ((i % 40) as i16 - 20) * 150).collect();
    std::fs::write(&path, pcm16_wav(8000, &samples)).unwrap();
    path
}

fn engine(base_url: String, timeout: Duration) -> AssemblyAiEngine {
    AssemblyAiEngine::new(AssemblyAiConfig {
        base_url,
        api_key: KEY.to_string(),
        timeout,
        poll_interval: Duration::from_millis(20),
    })
    .unwrap()
}

fn word(text: &str, start: u64, end: u64) -> serde_json::Value {
    json!({"text": text, "start": start, "end": end, "confidence": 0.9})
}

#[tokio::test]
async fn upload_create_poll_then_words_become_segments() {
    let (url, seen) = start(Server {
        processing_polls: 2,
        upload_status: 200,
        outcome: Some(json!({
            "id": "tr-1", "status": "completed",
            "text": "Hello, this is Anna. Call me back at five.",
            "audio_duration": 6,
            "words": [
                word("Hello,", 500, 900), word("this", 950, 1100), word("is", 1150, 1250),
                word("Anna.", 1300, 1700),
                word("Call", 2500, 2700), word("me", 2750, 2850), word("back", 2900, 3100),
                word("at", 3900, 4000), word("five.", 4050, 4500),
            ],
        })),
        ..Server::default()
    })
    .await;
    let wav = temp_wav("ok", 6.0);
    let t = engine(url, Duration::from_secs(10))
        .transcribe(&Job::new(&wav, "en-US"))
        .await
        .unwrap();
    assert_eq!(t.text, "Hello, this is Anna. Call me back at five.");
    let segs: Vec<(f64, f64, &str)> = t
        .segments
        .iter()
        .map(|s| (s.start_sec, s.end_sec, s.text.as_str()))
        .collect();
    // A sentence end cuts; so does the 0.8 s pause before "at".
    assert_eq!(
        segs,
        [
            (0.5, 1.7, "Hello, this is Anna."),
            (2.5, 3.1, "Call me back"),
            (3.9, 4.5, "at five."),
        ]
    );
    assert_eq!(t.engine, "assemblyai");
    assert_eq!(t.audio_secs, 6.0);
    let s = seen.lock().unwrap();
    assert_eq!(s.uploads.len(), 1);
    assert_eq!(s.uploads[0].0.as_deref(), Some(KEY));
    assert!(
        s.uploads[0].1 == std::fs::read(&wav).unwrap(),
        "the WAV as uploaded"
    );
    assert_eq!(
        s.creates,
        [
            json!({"audio_url": "https://cdn.example/upload/abc123", "language_code": "en",
                "punctuate": true, "format_text": true})
        ]
    );
    assert_eq!(s.polls, 3, "two processing answers, then completed");
    std::fs::remove_file(&wav).unwrap();
}

#[tokio::test]
async fn error_status_fails_with_the_servers_reason() {
    let (url, _) = start(Server {
        upload_status: 200,
        outcome: Some(json!({"id": "tr-1", "status": "error",
                             "error": "Audio file could not be decoded"})),
        ..Server::default()
    })
    .await;
    let wav = temp_wav("err", 1.0);
    let e = engine(url, Duration::from_secs(10))
        .transcribe(&Job::new(&wav, "de-DE"))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, EngineError::BadResponse { .. }), "{msg}");
    assert!(msg.contains("Audio file could not be decoded"), "{msg}");
    std::fs::remove_file(&wav).unwrap();
}

#[tokio::test]
async fn refused_key_is_the_http_status() {
    let (url, _) = start(Server {
        upload_status: 401,
        ..Server::default()
    })
    .await;
    let wav = temp_wav("401", 1.0);
    let e = engine(url, Duration::from_secs(10))
        .transcribe(&Job::new(&wav, "en"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, EngineError::HttpStatus { status: 401, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("/v2/upload"), "{e}");
    std::fs::remove_file(&wav).unwrap();
}

#[tokio::test]
async fn never_finishing_transcript_times_out_within_the_timeout() {
    let (url, seen) = start(Server {
        upload_status: 200,
        outcome: None,
        ..Server::default()
    })
    .await;
    let wav = temp_wav("slow", 1.0);
    let started = Instant::now();
    let e = engine(url, Duration::from_millis(400))
        .transcribe(&Job::new(&wav, "en"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(e, EngineError::Timeout { .. }), "{e}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(seen.lock().unwrap().polls >= 2, "it polled meanwhile");
    std::fs::remove_file(&wav).unwrap();
}

#[test]
fn words_without_pauses_or_sentence_ends_stay_one_segment() {
    let words: Vec<Word> = serde_json::from_value(json!([
        word("one", 0, 300),
        word("two", 400, 700),
        word("three", 800, 1300)
    ]))
    .unwrap();
    assert_eq!(
        segments_of(&words),
        [Segment {
            start_sec: 0.0,
            end_sec: 1.3,
            text: "one two three".into()
        }]
    );
    assert!(segments_of(&[]).is_empty());
}

#[tokio::test]
async fn failing_polls_are_retried_a_few_times_then_fail() {
    let done = json!({"id": "tr-1", "status": "completed", "text": "ok", "words": []});
    let (url, seen) = start(Server {
        upload_status: 200,
        failing_polls: 3,
        outcome: Some(done.clone()),
        ..Server::default()
    })
    .await;
    let wav = temp_wav("retry", 1.0);
    let t = engine(url, Duration::from_secs(10))
        .transcribe(&Job::new(&wav, "en"))
        .await
        .unwrap();
    assert_eq!(t.text, "ok");
    assert_eq!(seen.lock().unwrap().polls, 4, "three 503s, then the answer");

    let (url, seen) = start(Server {
        upload_status: 200,
        failing_polls: 4,
        outcome: Some(done),
        ..Server::default()
    })
    .await;
    let e = engine(url, Duration::from_secs(10))
        .transcribe(&Job::new(&wav, "en"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, EngineError::HttpStatus { status: 503, .. }),
        "{e}"
    );
    assert_eq!(
        seen.lock().unwrap().polls,
        4,
        "gives up after the fourth failure"
    );
    std::fs::remove_file(&wav).unwrap();
}
