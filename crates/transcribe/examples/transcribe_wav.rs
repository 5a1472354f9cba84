//! Transcribes WAV files with the offline engine the way the daemon does (speech_spans, then the
//! worker pool); scripts/wer/measure.sh uses it.
//!
//!   transcribe_wav [--grammar SENTENCES.txt] [--pocketsphinx] [--python P] [--script S]
//!                  [--model DIR] [--threads N] [--beam-size N] [--chunk-secs S] [--prompt T]
//!                  [--language L] ID=FILE.wav…
//!
//! `--pocketsphinx` decodes the open vocabulary with Pocketsphinx instead of Whisper (the engine
//! before issue 10, for comparison).
//!
//! stdout: `<ID> <text>` per file; stderr: per-file and total audio/processing seconds and RTF.

use std::path::PathBuf;
use std::process::ExitCode;

use record_engine::wav::Wav;
use transcribe::{speech_spans, Job, OfflineConfig, OfflineEngine, Recogniser};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("transcribe_wav: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let mut config = OfflineConfig::default();
    let mut grammar: Option<Vec<String>> = None;
    let mut language = "en-US".to_string();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--grammar" => {
                let path = value()?;
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                grammar = Some(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect(),
                );
            }
            "--python" => config.python = PathBuf::from(value()?),
            "--script" => config.worker_script = Some(PathBuf::from(value()?)),
            "--model" => config.model = Some(PathBuf::from(value()?)),
            "--threads" => {
                config.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?
            }
            "--beam-size" => {
                config.beam_size = value()?.parse().map_err(|e| format!("--beam-size: {e}"))?
            }
            "--chunk-secs" => {
                config.chunk_secs = value()?.parse().map_err(|e| format!("--chunk-secs: {e}"))?
            }
            "--pocketsphinx" => config.recogniser = Recogniser::Pocketsphinx,
            "--prompt" => config.prompt = value()?,
            "--language" => language = value()?,
            _ => {
                let (id, path) = a
                    .split_once('=')
                    .ok_or(format!("{a}: expected ID=FILE.wav"))?;
                files.push((id.to_string(), PathBuf::from(path)));
            }
        }
    }

    let engine = OfflineEngine::start(config)
        .await
        .map_err(|e| e.to_string())?;
    let (mut audio, mut processing) = (0.0, 0.0);
    for (id, path) in files {
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let wav = Wav::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let (rate, pcm) = (wav.header.sample_rate, wav.mono().collect::<Vec<_>>());
        let job = Job {
            speech: speech_spans(&pcm, rate),
            grammar: grammar.clone(),
            ..Job::new(&path, language.clone())
        };
        let t = engine
            .transcribe(&job)
            .await
            .map_err(|e| format!("{id}: {e}"))?;
        eprintln!(
            "{id} audio={:.2}s processing={:.2}s rtf={:.3} segments={} chunks={}",
            t.audio_secs,
            t.processing_secs,
            t.rtf(),
            t.segments.len(),
            t.chunks
        );
        audio += t.audio_secs;
        processing += t.processing_secs;
        println!("{id} {}", t.text);
    }
    let rtf = if audio > 0.0 { processing / audio } else { 0.0 };
    // The workers' peak resident memory (VmHWM), for the long-recording benchmark.
    let peak_kib: u64 = engine
        .worker_pids()
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .max()
        .unwrap_or(0);
    eprintln!(
        "TOTAL audio={audio:.1}s processing={processing:.1}s worker_peak_rss={:.0}MiB RTF={rtf:.3}",
        peak_kib as f64 / 1024.0
    );
    Ok(())
}
