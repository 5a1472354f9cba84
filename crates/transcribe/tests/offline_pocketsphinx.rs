//! The offline engine end to end: real `scripts/asr_worker.py` processes with PyPI pocketsphinx
//! in `<repo>/.venv` (scripts/setup.sh creates it), on espeak-ng speech at 8 kHz µ-law.
//! These tests fail, not skip, when the venv, espeak-ng or sox is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use transcribe::wav::{pcm16_samples, pcm16_wav};
use transcribe::{speech_spans, utterances, EngineError, Job, OfflineConfig, OfflineEngine};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv python, checked to import pocketsphinx.
fn python() -> PathBuf {
    let py = repo_root().join(".venv/bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import pocketsphinx"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{} cannot import pocketsphinx: run scripts/setup.sh (or {} -m pip install 'pocketsphinx==5.*')",
        py.display(),
        py.display()
    );
    py
}

fn config(workers: usize) -> OfflineConfig {
    OfflineConfig {
        python: python(),
        worker_script: repo_root().join("scripts/asr_worker.py"),
        workers,
        ..OfflineConfig::default()
    }
}

fn tool(name: &str, args: &[&str]) {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name} is required (scripts/setup.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("transcribe-e2e-{}-{name}", std::process::id()))
}

/// `text` spoken by espeak-ng, telephone path (8 kHz µ-law, undithered), stored as Hark stores recordings
/// (8 kHz 16-bit PCM), with `lead` seconds of silence before and 1 s after.
fn phone_wav(name: &str, text: &str, lead: f64) -> PathBuf {
    let raw = temp(&format!("{name}.22k.wav"));
    let ulaw = temp(&format!("{name}.ulaw.wav"));
    let out = temp(&format!("{name}.wav"));
    tool(
        "espeak-ng",
        &[
            "-v",
            "en-us",
            "-s",
            "150",
            "-w",
            raw.to_str().unwrap(),
            text,
        ],
    );
    let lead = format!("{lead}");
    tool(
        "sox",
        &[
            "-D", // no dither: repeatable, and the worker must cope with digital silence
            raw.to_str().unwrap(),
            "-r",
            "8000",
            "-c",
            "1",
            "-e",
            "mu-law",
            ulaw.to_str().unwrap(),
            "pad",
            &lead,
            "1",
        ],
    );
    tool(
        "sox",
        &[
            ulaw.to_str().unwrap(),
            "-e",
            "signed",
            "-b",
            "16",
            out.to_str().unwrap(),
        ],
    );
    let _ = std::fs::remove_file(raw);
    let _ = std::fs::remove_file(ulaw);
    out
}

/// A job with the VAD spans the daemon would send.
fn job(wav: &Path, grammar: Option<&[&str]>) -> Job {
    let (rate, pcm) = pcm16_samples(&std::fs::read(wav).unwrap()).unwrap();
    let mut job = Job::new(wav, "en-US");
    job.speech = speech_spans(&pcm, rate);
    job.grammar = grammar.map(|g| g.iter().map(|s| s.to_string()).collect());
    job
}

fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Share of the reference's words found in the hypothesis (multiset).
fn overlap(reference: &str, hypothesis: &str) -> f64 {
    let r = words(reference);
    let mut h = words(hypothesis);
    let hits = r
        .iter()
        .filter(|w| match h.iter().position(|x| x == *w) {
            Some(i) => {
                h.swap_remove(i);
                true
            }
            None => false,
        })
        .count();
    hits as f64 / r.len().max(1) as f64
}

fn pid_alive(pid: u32) -> bool {
    // A reaped process has no /proc entry; a zombie would still show as state Z.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.contains(") Z "),
        Err(_) => false,
    }
}

const SENTENCE: &str = "please leave a message after the tone";
const OTHERS: [&str; 2] = [
    "the meeting has been moved to thursday afternoon",
    "press one to speak with an operator",
];

#[tokio::test]
async fn grammar_constrained_decode_accepts_the_spoken_sentence_with_its_timing() {
    let wav = phone_wav("grammar", SENTENCE, 1.0);
    let engine = OfflineEngine::start(config(1)).await.unwrap();
    let grammar = [OTHERS[0], SENTENCE, OTHERS[1]];
    let t = engine.transcribe(&job(&wav, Some(&grammar))).await.unwrap();

    assert!(overlap(SENTENCE, &t.text) >= 0.5, "text {:?}", t.text);
    for other in OTHERS {
        assert!(
            overlap(SENTENCE, &t.text) > overlap(other, &t.text),
            "{:?} is closer to {other:?}",
            t.text
        );
    }
    let u = utterances(&t, "caller");
    assert!(!u.is_empty(), "{t:?}");
    assert_eq!(u[0].order, 1);
    // espeak-ng starts speaking ~60 ms into its output; the speech was sent at 1.0 s.
    assert!(
        (u[0].start_sec - 1.0).abs() <= 0.3,
        "start {}",
        u[0].start_sec
    );
    let end = u
        .last()
        .map(|u| u.start_sec + u.duration_sec)
        .unwrap_or(0.0);
    assert!(
        end > 2.5 && end <= t.audio_secs,
        "end {end} of {}",
        t.audio_secs
    );
    assert_eq!(t.engine, "pocketsphinx");
    assert!(
        (t.audio_secs - 4.55).abs() < 0.1,
        "audio_secs {}",
        t.audio_secs
    );
    assert!(t.processing_secs > 0.0 && t.rtf() < 1.0, "rtf {}", t.rtf());
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn open_vocabulary_decode_gives_text_per_vad_span() {
    let wav = phone_wav("open", SENTENCE, 1.0);
    let engine = OfflineEngine::start(config(1)).await.unwrap();
    let job = job(&wav, None);
    assert_eq!(job.speech.len(), 1, "{:?}", job.speech);
    let t = engine.transcribe(&job).await.unwrap();
    // espeak at 8 kHz with an open vocabulary is poor (see scripts/wer); only the shape is
    // checked here: one segment per VAD span, carrying that span's timing.
    assert_eq!(t.segments.len(), 1, "{t:?}");
    assert_eq!(t.segments[0].start_sec, job.speech[0].0);
    assert_eq!(t.segments[0].end_sec, job.speech[0].1);
    assert!(!t.text.is_empty(), "{t:?}");
    assert_eq!(t.text, t.segments[0].text);
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn crashed_worker_is_restarted_on_next_request() {
    let wav = phone_wav("crash", SENTENCE, 0.5);
    let engine = OfflineEngine::start(config(1)).await.unwrap();
    let grammar = [SENTENCE];
    let pids = engine.worker_pids();
    assert_eq!(pids.len(), 1);
    tool("kill", &["-KILL", &pids[0].to_string()]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(pids[0]) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let t = engine.transcribe(&job(&wav, Some(&grammar))).await.unwrap();
    assert!(overlap(SENTENCE, &t.text) >= 0.5, "{:?}", t.text);
    let now = engine.worker_pids();
    assert_eq!(now.len(), 1);
    assert_ne!(now[0], pids[0]);
    assert_eq!(engine.restarts(), 1);
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn hung_worker_times_out_is_killed_and_replaced() {
    let wav = phone_wav("hang", SENTENCE, 0.5);
    let engine = OfflineEngine::start(OfflineConfig {
        timeout: Duration::from_secs(2),
        timeout_per_audio_second: 0.0,
        ..config(1)
    })
    .await
    .unwrap();
    let grammar = [SENTENCE];
    let pid = engine.worker_pids()[0];
    // SIGSTOP: the worker reads nothing and answers nothing, like a decoder stuck in a loop.
    tool("kill", &["-STOP", &pid.to_string()]);

    let started = Instant::now();
    let err = engine
        .transcribe(&job(&wav, Some(&grammar)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, EngineError::Timeout { after, .. } if after == Duration::from_secs(2)),
        "{err:?}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "took {took:?}"
    );
    assert!(!pid_alive(pid), "worker {pid} still running after timeout");
    assert!(engine.worker_pids().is_empty());

    let t = engine.transcribe(&job(&wav, Some(&grammar))).await.unwrap();
    assert!(overlap(SENTENCE, &t.text) >= 0.5, "{:?}", t.text);
    assert_eq!(engine.restarts(), 1);
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn caller_giving_up_mid_request_kills_the_worker() {
    let wav = phone_wav("cancel", SENTENCE, 0.5);
    let engine = OfflineEngine::start(config(1)).await.unwrap();
    let grammar = [SENTENCE];
    let pid = engine.worker_pids()[0];
    tool("kill", &["-STOP", &pid.to_string()]);
    let j = job(&wav, Some(&grammar));
    let r = tokio::time::timeout(Duration::from_millis(300), engine.transcribe(&j)).await;
    assert!(r.is_err(), "the stopped worker cannot have answered");
    // Its answer would reach the next request, so the worker must be gone.
    assert!(engine.worker_pids().is_empty());
    let t = engine.transcribe(&j).await.unwrap();
    assert!(overlap(SENTENCE, &t.text) >= 0.5, "{:?}", t.text);
    assert_ne!(engine.worker_pids()[0], pid);
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn bad_request_fails_alone_and_the_worker_keeps_serving() {
    let wav = phone_wav("oov", SENTENCE, 0.5);
    let engine = OfflineEngine::start(config(1)).await.unwrap();
    let pid = engine.worker_pids()[0];
    let err = engine
        .transcribe(&job(&wav, Some(&["please leave a zzyzxq"])))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::Worker { reason } if reason.contains("zzyzxq")),
        "{err:?}"
    );
    // A file that is not audio.
    let junk = temp("junk.wav");
    std::fs::write(&junk, b"RIFF\x04\0\0\0WAVEdata\0\0\0\0").unwrap();
    let err = engine
        .transcribe(&Job::new(&junk, "en-US"))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Wav { .. }), "{err:?}");

    let t = engine
        .transcribe(&job(&wav, Some(&[SENTENCE])))
        .await
        .unwrap();
    assert!(overlap(SENTENCE, &t.text) >= 0.5, "{:?}", t.text);
    assert_eq!(engine.worker_pids(), vec![pid]);
    assert_eq!(engine.restarts(), 0);
    let _ = std::fs::remove_file(wav);
    let _ = std::fs::remove_file(junk);
}

#[tokio::test]
async fn pool_of_two_serves_concurrent_jobs_and_silence_gives_empty_text() {
    let wav = phone_wav("pool", SENTENCE, 0.5);
    let silent = temp("silent.wav");
    std::fs::write(&silent, pcm16_wav(8000, &vec![0i16; 16000])).unwrap();
    let engine = OfflineEngine::start(config(2)).await.unwrap();
    let pids = engine.worker_pids();
    assert_eq!(pids.len(), 2);
    assert_ne!(pids[0], pids[1]);

    let grammar = [SENTENCE];
    let (j1, j2, j3) = (
        job(&wav, Some(&grammar)),
        job(&wav, Some(&grammar)),
        job(&silent, None),
    );
    let (a, b, c) = tokio::join!(
        engine.transcribe(&j1),
        engine.transcribe(&j2),
        engine.transcribe(&j3)
    );
    for t in [a.unwrap(), b.unwrap()] {
        assert!(overlap(SENTENCE, &t.text) >= 0.5, "{:?}", t.text);
    }
    let c = c.unwrap();
    assert!(j3.speech.is_empty());
    assert!(utterances(&c, "caller").is_empty(), "{c:?}");
    assert_eq!(c.audio_secs, 2.0);
    let mut after = engine.worker_pids();
    after.sort();
    let mut before = pids;
    before.sort();
    assert_eq!(after, before, "no worker was replaced");
    let _ = std::fs::remove_file(wav);
    let _ = std::fs::remove_file(silent);
}
