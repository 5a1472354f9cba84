//! Text to speech for `<Say>` (espeak-ng as a subprocess), cached.
//!
//! The text goes to espeak-ng on stdin (never through a shell or argv, so it cannot become an
//! option); the 22.05 kHz WAV it writes to stdout is resampled to 8 kHz. Renders are kept in a
//! byte-bounded LRU keyed by (espeak voice, text), and concurrent first renders of one key share
//! one subprocess.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use thiserror::Error;

use crate::cache::{lock, Lru, SingleFlight};
use crate::decode::{decode, Container};

/// SPEC §4: `<Say>` text is at most 4 KB.
pub const MAX_TEXT_BYTES: usize = 4096;
/// A render taking longer is killed.
const RENDER_TIMEOUT: Duration = Duration::from_secs(10);
/// espeak-ng's accepted speed range, words per minute.
const RATE_RANGE: (u32, u32) = (80, 450);
/// 4 KB of text is a few minutes of speech; anything far longer is not espeak output.
const MAX_WAV_BYTES: u64 = 64 << 20;
const MAX_SECONDS: u32 = 900;

#[derive(Debug, Clone)]
pub struct TtsConfig {
    /// The espeak-ng binary, looked up in PATH unless it has a slash.
    pub espeak_path: PathBuf,
    /// Speaking rate, words per minute (clamped to 80–450).
    pub rate_wpm: u32,
    /// Rendered audio kept in memory, in bytes (2 per sample).
    pub cache_bytes: usize,
}

impl Default for TtsConfig {
    fn default() -> Self {
        Self {
            espeak_path: PathBuf::from("espeak-ng"),
            rate_wpm: 150,
            cache_bytes: 50 << 20,
        }
    }
}

#[derive(Debug, Clone, Error)]
pub enum TtsError {
    #[error("<Say> text is {bytes} bytes; the limit is {limit}")]
    TooLong { bytes: usize, limit: usize },
    #[error("cannot run {path}: {message} (is the espeak-ng package installed?)")]
    Spawn { path: PathBuf, message: String },
    #[error("{path} failed ({status}): {stderr}")]
    Failed {
        path: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("{path} took longer than {} ms and was killed", .timeout.as_millis())]
    Timeout { path: PathBuf, timeout: Duration },
    #[error("{path} wrote unusable audio: {found}")]
    Output { path: PathBuf, found: String },
}

type Key = (String, String);

pub struct Tts {
    config: TtsConfig,
    timeout: Duration,
    cache: Mutex<Lru<Key, Arc<[i16]>>>,
    flights: SingleFlight<Key, Result<Arc<[i16]>, TtsError>>,
    renders: AtomicU64,
}

impl Tts {
    pub fn new(config: TtsConfig) -> Self {
        Self {
            cache: Mutex::new(Lru::new(config.cache_bytes)),
            config,
            timeout: RENDER_TIMEOUT,
            flights: SingleFlight::default(),
            renders: AtomicU64::new(0),
        }
    }

    /// `text` spoken with the TwiML `voice` and `language`, as 8 kHz mono. Unknown voices and
    /// languages fall back to the defaults with a warning; empty text is empty audio.
    pub async fn render(
        &self,
        text: &str,
        voice: &str,
        language: &str,
    ) -> Result<Arc<[i16]>, TtsError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(TtsError::TooLong {
                bytes: text.len(),
                limit: MAX_TEXT_BYTES,
            });
        }
        let mapping = map_voice(voice, language);
        for warning in &mapping.warnings {
            tracing::warn!(voice, language, espeak_voice = %mapping.espeak_voice, "<Say>: {warning}");
        }
        let text = clean_text(text);
        if text.is_empty() {
            return Ok(Arc::from(Vec::new()));
        }
        let key: Key = (mapping.espeak_voice, text);
        if let Some(hit) = lock(&self.cache).get(&key) {
            return Ok(hit);
        }
        self.flights
            .run(key.clone(), || async {
                // Rendered by a flight that finished while this one was being set up.
                if let Some(hit) = lock(&self.cache).get(&key) {
                    return Ok(hit);
                }
                let samples = self.synthesize(&key.0, &key.1).await?;
                lock(&self.cache).insert(key.clone(), samples.clone(), samples.len() * 2);
                Ok(samples)
            })
            .await
    }

    /// espeak-ng subprocesses started so far.
    pub fn renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }

    /// `espeak-ng --version`, to log at startup (and fail early if it is missing).
    pub async fn version(&self) -> Result<String, TtsError> {
        let path = self.config.espeak_path.clone();
        let timeout = self.timeout;
        let out = tokio::task::spawn_blocking(move || {
            run(&path, &["--version".to_string()], "", timeout, 4096)
        })
        .await
        .map_err(|e| self.output_err(e.to_string()))??;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    fn output_err(&self, found: String) -> TtsError {
        TtsError::Output {
            path: self.config.espeak_path.clone(),
            found,
        }
    }

    async fn synthesize(&self, espeak_voice: &str, text: &str) -> Result<Arc<[i16]>, TtsError> {
        self.renders.fetch_add(1, Ordering::Relaxed);
        let rate = self.config.rate_wpm.clamp(RATE_RANGE.0, RATE_RANGE.1);
        let args = [
            "-v",
            espeak_voice,
            "-s",
            &rate.to_string(),
            "-b",
            "1", // stdin is UTF-8
            "--stdout",
            "--stdin",
        ]
        .map(str::to_string);
        let path = self.config.espeak_path.clone();
        let text = text.to_string();
        let timeout = self.timeout;
        // The wait and the resampling both block: keep them off the runtime threads.
        let decoded = tokio::task::spawn_blocking(move || {
            let wav = run(&path, &args, &text, timeout, MAX_WAV_BYTES)?;
            if wav.is_empty() {
                return Err(TtsError::Output {
                    path,
                    found: "no output (unknown voice?)".into(),
                });
            }
            decode(&wav, Container::Wav, MAX_SECONDS)
                .map_err(|found| TtsError::Output { path, found })
        })
        .await
        .map_err(|e| self.output_err(e.to_string()))??;
        Ok(decoded.samples.into())
    }
}

/// Runs `path args`, writes `stdin`, returns stdout (at most `max_out` bytes); kills the process
/// after `timeout`.
fn run(
    path: &Path,
    args: &[String],
    stdin: &str,
    timeout: Duration,
    max_out: u64,
) -> Result<Vec<u8>, TtsError> {
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| TtsError::Spawn {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if let Some(mut pipe) = child.stdin.take() {
        // At most 4 KB: fits the pipe buffer, so this cannot wait on the child. A write error
        // means the child died, which its exit status reports.
        let _ = pipe.write_all(stdin.as_bytes());
    }
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (tx, rx) = mpsc::sync_channel(1); // one message: the output
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(pipe) = stdout {
            let _ = pipe.take(max_out).read_to_end(&mut out);
        }
        if let Some(pipe) = stderr {
            let _ = pipe.take(2048).read_to_end(&mut err);
        }
        let _ = tx.send((out, err));
    });
    let Ok((out, err)) = rx.recv_timeout(timeout) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(TtsError::Timeout {
            path: path.to_path_buf(),
            timeout,
        });
    };
    let status = child.wait().map_err(|e| TtsError::Failed {
        path: path.to_path_buf(),
        status: "unknown".into(),
        stderr: e.to_string(),
    })?;
    let stderr = String::from_utf8_lossy(&err).trim().to_string();
    if !status.success() {
        return Err(TtsError::Failed {
            path: path.to_path_buf(),
            status: status.to_string(),
            stderr,
        });
    }
    Ok(out)
}

/// Control characters (NUL included) become spaces; runs of whitespace collapse.
fn clean_text(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The espeak-ng voice for a TwiML `voice` and `language`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceMapping {
    /// e.g. `en-us`, `en-us+f3`, `fr-fr+f3`.
    pub espeak_voice: String,
    /// What fell back to a default.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gender {
    Male,
    Female,
}

/// Polly voices that are male; every other Polly voice is female (most are).
const POLLY_MALE: &[&str] = &[
    "matthew",
    "joey",
    "justin",
    "kevin",
    "stephen",
    "gregory",
    "brian",
    "arthur",
    "russell",
    "aiden",
    "geraint",
    "mathieu",
    "remi",
    "liam",
    "hans",
    "daniel",
    "enrique",
    "sergio",
    "miguel",
    "andres",
    "pedro",
    "giorgio",
    "adriano",
    "ricardo",
    "thiago",
    "cristiano",
    "jacek",
    "jan",
    "maxim",
    "takumi",
    "ruben",
    "mads",
    "karl",
    "zhiyu",
    "hyunsu",
    "kajal",
    "hiujin",
];

/// Primary languages espeak-ng 1.51 (Debian 12) ships.
const ESPEAK_LANGUAGES: &[&str] = &[
    "af", "am", "an", "ar", "as", "az", "ba", "be", "bg", "bn", "bs", "ca", "cmn", "cs", "cv",
    "cy", "da", "de", "el", "eo", "es", "et", "eu", "fa", "fi", "ga", "gd", "gn", "gu", "hak",
    "haw", "he", "hi", "hr", "ht", "hu", "hy", "ia", "id", "is", "it", "ja", "ka", "kk", "kl",
    "kn", "ko", "kok", "ku", "ky", "la", "lb", "lt", "lv", "mi", "mk", "ml", "mr", "ms", "mt",
    "my", "nb", "ne", "nl", "om", "or", "pa", "pl", "pt", "qu", "ro", "ru", "sd", "si", "sk", "sl",
    "sq", "sr", "sv", "sw", "ta", "te", "th", "tk", "tn", "tr", "tt", "ug", "uk", "ur", "uz", "vi",
    "yue",
];

const DEFAULT_LANGUAGE: &str = "en-us";

/// Maps TwiML `voice` (`man`, `woman`, `alice`, `Polly.*`, `Google.*`) and BCP-47 `language`
/// to an espeak-ng voice: a language voice plus a female variant when the voice is female.
pub fn map_voice(voice: &str, language: &str) -> VoiceMapping {
    let mut warnings = Vec::new();
    let voice = voice.trim();
    let lower = voice.to_ascii_lowercase();
    let mut language = language.trim().to_string();
    let gender = if lower.is_empty() || lower == "man" {
        Gender::Male
    } else if lower == "woman" || lower == "alice" {
        Gender::Female
    } else if let Some(name) = lower.strip_prefix("polly.") {
        let name = name.split('-').next().unwrap_or("");
        if POLLY_MALE.contains(&name) {
            Gender::Male
        } else {
            Gender::Female
        }
    } else if let Some(name) = voice
        .get("google.".len()..)
        .filter(|_| lower.starts_with("google."))
    {
        // Google.<lang>-<REGION>-<Kind>-<Letter>: the name carries the language.
        let mut parts = name.split('-');
        if let (Some(l), Some(r)) = (parts.next(), parts.next()) {
            language = format!("{l}-{r}");
        }
        Gender::Female
    } else {
        warnings.push(format!("unknown voice {voice:?}; using \"man\""));
        Gender::Male
    };
    let base = match espeak_language(&language) {
        Some(base) => base,
        None => {
            warnings.push(format!(
                "no local voice for language {language:?}; using {DEFAULT_LANGUAGE}"
            ));
            DEFAULT_LANGUAGE.to_string()
        }
    };
    let espeak_voice = match gender {
        Gender::Male => base,
        Gender::Female => format!("{base}+f3"),
    };
    VoiceMapping {
        espeak_voice,
        warnings,
    }
}

/// BCP-47 → espeak-ng language voice, or `None` if espeak has nothing close.
fn espeak_language(language: &str) -> Option<String> {
    let tag = language.trim().replace('_', "-").to_ascii_lowercase();
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or("");
    let region = parts.next().unwrap_or("");
    let pick = match (primary, region) {
        ("", _) | ("en", "") | ("en", "us") | ("en", "ca") => "en-us",
        ("en", _) => "en-gb", // GB, AU, NZ, IE, IN, ZA: closer to British
        ("es", "") | ("es", "es") => "es",
        ("es", _) => "es-419",
        ("fr", "be") => "fr-be",
        ("fr", "ch") => "fr-ch",
        ("fr", _) => "fr-fr",
        ("pt", "br") => "pt-br",
        ("pt", _) => "pt",
        ("zh", "hk") | ("zh", "yue") => "yue",
        ("zh", _) | ("cmn", _) => "cmn",
        ("no", _) | ("nn", _) => "nb",
        ("iw", _) => "he",
        ("in", _) => "id",
        (p, _) if ESPEAK_LANGUAGES.contains(&p) => p,
        _ => return None,
    };
    Some(pick.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resample::tests::{rms, sine};
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hark-tts-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// An executable shell script standing in for espeak-ng.
    fn fake_espeak(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("fake-espeak");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn tts_with(path: PathBuf) -> Tts {
        Tts::new(TtsConfig {
            espeak_path: path,
            ..TtsConfig::default()
        })
    }

    fn mapped(voice: &str, language: &str) -> (String, usize) {
        let m = map_voice(voice, language);
        (m.espeak_voice, m.warnings.len())
    }

    #[test]
    fn twiml_voices_and_languages_map_to_espeak_voices() {
        let cases = [
            ("man", "en", "en-us"),
            ("woman", "en", "en-us+f3"),
            ("alice", "en-GB", "en-gb+f3"),
            ("alice", "en-AU", "en-gb+f3"),
            ("man", "es-ES", "es"),
            ("woman", "es-MX", "es-419+f3"),
            ("man", "fr-FR", "fr-fr"),
            ("man", "fr-CA", "fr-fr"),
            ("man", "de-DE", "de"),
            ("alice", "pt-BR", "pt-br+f3"),
            ("alice", "pt-PT", "pt+f3"),
            ("alice", "ja-JP", "ja+f3"),
            ("alice", "zh-CN", "cmn+f3"),
            ("alice", "zh-HK", "yue+f3"),
            ("alice", "nb-NO", "nb+f3"),
            ("MAN", "en_gb", "en-gb"),
            ("Polly.Joanna", "en-US", "en-us+f3"),
            ("Polly.Matthew-Neural", "en-US", "en-us"),
            ("Polly.Celine", "fr-FR", "fr-fr+f3"),
            ("Polly.Hans", "de-DE", "de"),
            ("Google.de-DE-Standard-A", "en-US", "de+f3"),
        ];
        for (voice, language, expected) in cases {
            assert_eq!(
                mapped(voice, language),
                (expected.to_string(), 0),
                "{voice} {language}"
            );
        }
    }

    #[test]
    fn unknown_voice_or_language_falls_back_with_a_warning() {
        assert_eq!(mapped("robot", "en-US"), ("en-us".to_string(), 1));
        assert_eq!(mapped("woman", "xx-YY"), ("en-us+f3".to_string(), 1));
        assert_eq!(mapped("robot", "tlh"), ("en-us".to_string(), 2));
        let m = map_voice("woman", "xx-YY");
        assert!(m.warnings[0].contains("\"xx-YY\""), "{:?}", m.warnings);
    }

    #[test]
    fn text_is_cleaned_of_control_characters() {
        assert_eq!(clean_text("  Hello,\n\tworld\0!\u{7} "), "Hello, world !");
        assert_eq!(clean_text("\r\n \0"), "");
    }

    #[tokio::test]
    async fn over_4kb_is_refused_and_empty_text_is_silence_without_a_subprocess() {
        let tts = tts_with(PathBuf::from("/nonexistent/espeak-ng"));
        let err = tts
            .render(&"a".repeat(4097), "man", "en")
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            TtsError::TooLong {
                bytes: 4097,
                limit: 4096
            }
        ));
        assert!(tts.render(" \n ", "man", "en").await.unwrap().is_empty());
        assert_eq!(tts.renders(), 0);
    }

    #[tokio::test]
    async fn missing_binary_is_a_spawn_error_naming_it() {
        let tts = tts_with(PathBuf::from("/nonexistent/espeak-ng"));
        let err = tts.render("hello", "man", "en").await.unwrap_err();
        assert!(
            matches!(&err, TtsError::Spawn { path, .. } if path == Path::new("/nonexistent/espeak-ng"))
        );
        assert!(err.to_string().contains("espeak-ng package"), "{err}");
    }

    #[tokio::test]
    async fn text_goes_to_stdin_never_argv_and_the_wav_is_resampled() {
        let dir = temp_dir("args");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 22050,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(dir.join("out.wav"), spec).unwrap();
        for s in sine(500.0, 22050, 2205, 6000.0) {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        let d = dir.display();
        let script =
            format!("printf '%s\\n' \"$@\" > '{d}/args'\ncat > '{d}/stdin'\ncat '{d}/out.wav'");
        let tts = Tts::new(TtsConfig {
            espeak_path: fake_espeak(&dir, &script),
            rate_wpm: 1000,
            cache_bytes: 1 << 20,
        });
        let hostile = "--version; $(rm -rf /) `id` -v xx \"quoted\" 'single'";
        let audio = tts.render(hostile, "woman", "fr-FR").await.unwrap();
        assert_eq!(audio.len(), 800);
        let args = std::fs::read_to_string(dir.join("args")).unwrap();
        assert_eq!(args, "-v\nfr-fr+f3\n-s\n450\n-b\n1\n--stdout\n--stdin\n");
        assert_eq!(std::fs::read_to_string(dir.join("stdin")).unwrap(), hostile);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_hung_renderer_is_killed_at_the_timeout() {
        let dir = temp_dir("hang");
        let mut tts = tts_with(fake_espeak(&dir, "exec sleep 30"));
        tts.timeout = Duration::from_millis(300);
        let started = Instant::now();
        let err = tts.render("hello", "man", "en").await.unwrap_err();
        assert!(matches!(err, TtsError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn failures_and_garbage_output_are_errors_and_not_cached() {
        let dir = temp_dir("fail");
        let tts = tts_with(fake_espeak(&dir, "echo 'voice missing' >&2\nexit 3"));
        let err = tts.render("hello", "man", "en").await.unwrap_err();
        match &err {
            TtsError::Failed { status, stderr, .. } => {
                assert!(status.contains('3'), "{status}");
                assert_eq!(stderr, "voice missing");
            }
            other => panic!("{other}"),
        }
        assert!(tts.render("hello", "man", "en").await.is_err());
        assert_eq!(tts.renders(), 2);

        let tts = tts_with(fake_espeak(&dir, "cat > /dev/null\necho not a wav"));
        let err = tts.render("hello", "man", "en").await.unwrap_err();
        assert!(matches!(err, TtsError::Output { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    // The tests below run the real espeak-ng (scripts/setup.sh installs it).

    #[tokio::test]
    async fn espeak_hello_world_is_plausible_speech_and_cached() {
        let tts = Tts::new(TtsConfig::default());
        let first = tts.render("hello world", "man", "en").await.unwrap();
        let seconds = first.len() as f64 / 8000.0;
        assert!((0.5..=3.0).contains(&seconds), "{seconds} s");
        assert!(rms(&first) > 300.0, "rms {}", rms(&first));
        let again = tts.render("hello  world", "man", "en-US").await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(tts.renders(), 1);
        let woman = tts.render("hello world", "woman", "en").await.unwrap();
        assert_ne!(&*woman, &*first);
        assert_eq!(tts.renders(), 2);
    }

    #[tokio::test]
    async fn espeak_concurrent_first_renders_share_one_subprocess() {
        let tts = Arc::new(Tts::new(TtsConfig::default()));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let tts = tts.clone();
                tokio::spawn(async move { tts.render("please hold", "alice", "en-US").await })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap().unwrap());
        }
        assert!(results.iter().all(|r| Arc::ptr_eq(r, &results[0])));
        assert_eq!(tts.renders(), 1);
    }

    #[tokio::test]
    async fn espeak_version_is_reported() {
        let version = Tts::new(TtsConfig::default()).version().await.unwrap();
        assert!(version.contains("eSpeak NG"), "{version}");
    }
}
