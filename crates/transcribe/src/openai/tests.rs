//! The HTTP engine against a tiny OpenAI-compatible server on 127.0.0.1:0.

use super::*;
use crate::wav::pcm16_wav;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// Serves `router` on an ephemeral port; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

/// A server that records each request and answers `status` with `body`.
async fn canned(status: StatusCode, body: &'static str, delay: Duration) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = Arc::clone(&seen);
    let router = Router::new().route(
        "/v1/audio/transcriptions",
        post(move |headers: HeaderMap, body_in: Bytes| async move {
            s.lock().unwrap().push((headers, body_in));
            tokio::time::sleep(delay).await;
            (status, body)
        }),
    );
    (serve(router).await, seen)
}

fn temp_wav(name: &str, secs: f64) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "transcribe-openai-{}-{name}.wav",
        std::process::id()
    ));
    let n = (secs * 8000.0) as usize;
    let samples: Vec<i16> = (0..n).map(|i| ((i % 50) as i16 - 25) * 100).collect();
    std::fs::write(&path, pcm16_wav(8000, &samples)).unwrap();
    path
}

fn engine(base_url: String, api_key: Option<&str>, timeout: Duration) -> OpenAiEngine {
    OpenAiEngine::new(OpenAiConfig {
        base_url,
        model: "whisper-large-v3".to_string(),
        api_key: api_key.map(str::to_string),
        timeout,
    })
    .unwrap()
}

/// One multipart part: (name, filename, content-type, body).
type Part = (String, Option<String>, Option<String>, Vec<u8>);

/// An independent multipart/form-data parser (RFC 7578), enough for the parts reqwest sends.
fn parse_multipart(content_type: &str, body: &[u8]) -> Vec<Part> {
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("boundary in content-type")
        .trim_matches('"');
    let delim = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let pieces = split(body, &delim).into_iter().skip(1);
    for piece in pieces {
        if piece.starts_with(b"--") {
            break; // closing delimiter
        }
        let piece = piece.strip_prefix(b"\r\n").expect("CRLF after delimiter");
        let header_end = find(piece, b"\r\n\r\n").expect("blank line after part headers");
        let headers = std::str::from_utf8(&piece[..header_end]).unwrap();
        let content = piece[header_end + 4..]
            .strip_suffix(b"\r\n")
            .expect("CRLF before delimiter");
        let mut name = None;
        let mut filename = None;
        let mut ctype = None;
        for h in headers.split("\r\n") {
            let lower = h.to_ascii_lowercase();
            if lower.starts_with("content-disposition:") {
                for attr in h.split(';').map(str::trim) {
                    if let Some(v) = attr.strip_prefix("name=") {
                        name = Some(v.trim_matches('"').to_string());
                    }
                    if let Some(v) = attr.strip_prefix("filename=") {
                        filename = Some(v.trim_matches('"').to_string());
                    }
                }
            } else if lower.starts_with("content-type:") {
                ctype = Some(h["content-type:".len()..].trim().to_string());
            }
        }
        parts.push((name.expect("part name"), filename, ctype, content.to_vec()));
    }
    parts
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split<'a>(mut hay: &'a [u8], delim: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(i) = find(hay, delim) {
        out.push(&hay[..i]);
        hay = &hay[i + delim.len()..];
    }
    out.push(hay);
    out
}

const VERBOSE: &str = r#"{"task":"transcribe","language":"english","duration":4.0,
  "text":" Hello there. Leave a message.",
  "segments":[{"id":0,"seek":0,"start":0.52,"end":1.6,"text":" Hello there.","tokens":[1,2],"temperature":0.0,"avg_logprob":-0.2,"compression_ratio":1.0,"no_speech_prob":0.01},
              {"id":1,"seek":0,"start":2.0,"end":3.75,"text":" Leave a message.","tokens":[3],"temperature":0.0,"avg_logprob":-0.3,"compression_ratio":1.0,"no_speech_prob":0.02}]}"#;

#[tokio::test]
async fn request_is_multipart_with_file_model_language_and_verbose_json() {
    let (base, seen) = canned(StatusCode::OK, VERBOSE, Duration::ZERO).await;
    let wav = temp_wav("shape", 4.0);
    let e = engine(base, Some("sk-test"), Duration::from_secs(10));
    let t = e.transcribe(&Job::new(&wav, "en-US")).await.unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let (headers, body) = &seen[0];
    assert_eq!(headers["authorization"], "Bearer sk-test");
    let ctype = headers["content-type"].to_str().unwrap();
    assert!(
        ctype.starts_with("multipart/form-data; boundary="),
        "{ctype}"
    );
    let parts = parse_multipart(ctype, body);
    let names: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(names, ["file", "model", "language", "response_format"]);
    let file = &parts[0];
    assert_eq!(file.1.as_deref(), wav.file_name().unwrap().to_str());
    assert_eq!(file.2.as_deref(), Some("audio/wav"));
    assert_eq!(file.3, std::fs::read(&wav).unwrap());
    assert_eq!(parts[1].3, b"whisper-large-v3");
    assert_eq!(parts[2].3, b"en", "ISO-639-1 from en-US");
    assert_eq!(parts[3].3, b"verbose_json");

    assert_eq!(
        t.segments,
        vec![
            Segment {
                start_sec: 0.52,
                end_sec: 1.6,
                text: "Hello there.".into()
            },
            Segment {
                start_sec: 2.0,
                end_sec: 3.75,
                text: "Leave a message.".into()
            },
        ]
    );
    assert_eq!(t.text, "Hello there. Leave a message.");
    assert_eq!(t.engine, "openai:whisper-large-v3");
    assert_eq!(t.language, "en-US");
    assert_eq!(t.audio_secs, 4.0);
    assert!(t.processing_secs > 0.0);

    let u = crate::utterances(&t, "caller");
    assert_eq!(u.len(), 2);
    assert_eq!(
        (u[1].order, u[1].start_sec, u[1].duration_sec),
        (2, 2.0, 1.75)
    );
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn no_api_key_sends_no_authorization_and_v1_base_is_not_doubled() {
    let (base, seen) = canned(StatusCode::OK, VERBOSE, Duration::ZERO).await;
    let wav = temp_wav("noauth", 1.0);
    let e = engine(format!("{base}/v1/"), None, Duration::from_secs(10));
    assert_eq!(e.url(), format!("{base}/v1/audio/transcriptions"));
    e.transcribe(&Job::new(&wav, "ja-JP")).await.unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen[0].0.get("authorization").is_none());
    let parts = parse_multipart(seen[0].0["content-type"].to_str().unwrap(), &seen[0].1);
    assert_eq!(parts[2].3, b"ja");
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn server_error_500_is_an_error_naming_url_and_status() {
    let (base, _) = canned(
        StatusCode::INTERNAL_SERVER_ERROR,
        "model exploded",
        Duration::ZERO,
    )
    .await;
    let wav = temp_wav("500", 1.0);
    let e = engine(base.clone(), None, Duration::from_secs(10));
    let err = e.transcribe(&Job::new(&wav, "en-US")).await.unwrap_err();
    assert!(
        matches!(&err, EngineError::HttpStatus { status: 500, body, .. } if body == "model exploded"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{base}/v1/audio/transcriptions")),
        "{msg}"
    );
    assert!(msg.contains("500"), "{msg}");
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn slow_server_is_bounded_by_the_timeout() {
    let (base, _) = canned(StatusCode::OK, VERBOSE, Duration::from_secs(5)).await;
    let wav = temp_wav("slow", 1.0);
    let e = engine(base, None, Duration::from_millis(300));
    let started = Instant::now();
    let err = e.transcribe(&Job::new(&wav, "en-US")).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, EngineError::Timeout { after, .. } if after == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn body_that_is_not_verbose_json_is_a_bad_response() {
    let (base, _) = canned(StatusCode::OK, "<html>hi</html>", Duration::ZERO).await;
    let wav = temp_wav("badjson", 1.0);
    let err = engine(base, None, Duration::from_secs(10))
        .transcribe(&Job::new(&wav, "en-US"))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::BadResponse { .. }), "{err:?}");
    assert!(err.to_string().contains("verbose_json"), "{err}");
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn response_without_segments_becomes_one_segment_over_the_speech() {
    let (base, _) = canned(StatusCode::OK, r#"{"text":" Just text."}"#, Duration::ZERO).await;
    let wav = temp_wav("nosegs", 3.0);
    let mut job = Job::new(&wav, "en-US");
    job.speech = vec![(0.4, 1.0), (1.5, 2.6)];
    let t = engine(base, None, Duration::from_secs(10))
        .transcribe(&job)
        .await
        .unwrap();
    assert_eq!(
        t.segments,
        vec![Segment {
            start_sec: 0.4,
            end_sec: 2.6,
            text: "Just text.".into()
        }]
    );
    assert_eq!(t.text, "Just text.");
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn engine_down_is_a_request_error_naming_the_url() {
    // Bind then drop: the port is very likely closed now.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let wav = temp_wav("down", 1.0);
    let err = engine(base.clone(), None, Duration::from_secs(5))
        .transcribe(&Job::new(&wav, "en-US"))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Request { .. }), "{err:?}");
    assert!(err.to_string().contains(&base), "{err}");
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn missing_wav_and_bad_language_fail_before_any_request() {
    let (base, seen) = canned(StatusCode::OK, VERBOSE, Duration::ZERO).await;
    let e = engine(base, None, Duration::from_secs(5));
    let err = e
        .transcribe(&Job::new("/nonexistent/x.wav", "en-US"))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Wav { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/x.wav"), "{err}");
    let wav = temp_wav("badlang", 1.0);
    let err = e.transcribe(&Job::new(&wav, "klingon!")).await.unwrap_err();
    assert!(
        matches!(err, EngineError::InvalidLanguage { .. }),
        "{err:?}"
    );
    assert!(seen.lock().unwrap().is_empty());
    let _ = std::fs::remove_file(wav);
}
