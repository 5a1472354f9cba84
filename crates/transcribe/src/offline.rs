//! The embedded offline engine: a pool of persistent `scripts/asr_worker.py` processes (PyPI
//! pocketsphinx 5 with its bundled en-us model) speaking JSON lines over stdin/stdout.
//!
//! Why processes: pocketsphinx is CPU-bound C behind a Python binding; a process keeps it off the
//! daemon's threads entirely, a crash or hang costs one worker (killed and restarted), and the
//! model is loaded once per worker instead of once per recording.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::task::JoinHandle;

use crate::{primary_language, wav, EngineError, Job, Segment, Transcript};

const ENGINE: &str = "pocketsphinx";
/// Worker stderr lines kept for the error of a worker that fails to start.
const STDERR_TAIL: usize = 12;

/// A non-English (or replacement) pocketsphinx model: acoustic model directory, optional
/// language model, pronunciation dictionary.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPaths {
    pub hmm: PathBuf,
    pub lm: Option<PathBuf>,
    pub dict: PathBuf,
}

#[derive(Debug, Clone)]
pub struct OfflineConfig {
    /// Python with pocketsphinx 5 installed; relative paths are from the working directory.
    pub python: PathBuf,
    pub worker_script: PathBuf,
    /// Worker processes, i.e. recordings decoded at once.
    pub workers: usize,
    /// A request's time limit is `timeout + timeout_per_audio_second × audio seconds`.
    pub timeout: Duration,
    pub timeout_per_audio_second: f64,
    /// Time for a new worker to load its model and say ready.
    pub startup_timeout: Duration,
    /// Extra models by BCP-47 tag or primary subtag (`de`, `pt-BR`); English is bundled.
    pub models: BTreeMap<String, ModelPaths>,
}

impl Default for OfflineConfig {
    fn default() -> Self {
        Self {
            python: PathBuf::from(".venv/bin/python"),
            worker_script: PathBuf::from("scripts/asr_worker.py"),
            workers: 1,
            timeout: Duration::from_secs(30),
            timeout_per_audio_second: 2.0,
            startup_timeout: Duration::from_secs(60),
            models: BTreeMap::new(),
        }
    }
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
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl OfflineEngine {
    /// Workers start on first use.
    pub fn new(config: OfflineConfig) -> Self {
        let workers = config.workers.max(1);
        Self {
            pool: Arc::new(Pool {
                permits: Semaphore::new(workers),
                slots: Mutex::new((0..workers).map(|_| None).collect()),
                live_pids: Arc::new(Mutex::new(Vec::new())),
                next_id: AtomicU64::new(1),
                restarts: AtomicU64::new(0),
                config,
            }),
        }
    }

    /// Starts every worker now, so a missing Python or pocketsphinx fails at daemon start.
    pub async fn start(config: OfflineConfig) -> Result<Self, EngineError> {
        let engine = Self::new(config);
        let n = lock(&engine.pool.slots).len();
        for _ in 0..n {
            let worker = Worker::spawn(&engine.pool.config, &engine.pool.live_pids).await?;
            let mut slots = lock(&engine.pool.slots);
            if let Some(slot) = slots.iter_mut().find(|s| s.is_none()) {
                *slot = Some(worker);
            }
        }
        Ok(engine)
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
        let model = pool.model_for(&job.language)?;
        let audio_secs = wav::probe(&job.wav_path).await?.duration_secs();
        let budget = pool.config.timeout
            + Duration::from_secs_f64(
                (pool.config.timeout_per_audio_second * audio_secs).clamp(0.0, 86_400.0),
            );

        let mut lease = pool.lease().await;
        lease.ready_worker().await?;
        let id = pool.next_id.fetch_add(1, Ordering::Relaxed);
        let request = serde_json::json!({
            "id": id,
            "wav": job.wav_path,
            "language": job.language,
            "segments": job.speech.iter().map(|&(s, e)| [s, e]).collect::<Vec<_>>(),
            "grammar": job.grammar,
            "model": model.map(|m| serde_json::json!({"hmm": m.hmm, "lm": m.lm, "dict": m.dict})),
        });

        let Some(worker) = lease.worker.as_mut() else {
            return Err(EngineError::Worker {
                reason: "worker slot is empty".to_string(),
            });
        };
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
            return Err(EngineError::Worker {
                reason: response
                    .error
                    .unwrap_or_else(|| "ok=false without an error".to_string()),
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
        Ok(Transcript::from_segments(
            segments,
            &job.language,
            ENGINE.to_string(),
            response.audio_secs.unwrap_or(audio_secs),
            processing_secs,
        ))
    }
}

impl Pool {
    /// The model for a language: `None` is the bundled English one.
    fn model_for(&self, language: &str) -> Result<Option<ModelPaths>, EngineError> {
        let primary = primary_language(language).ok_or_else(|| EngineError::InvalidLanguage {
            language: language.to_string(),
        })?;
        let models = &self.config.models;
        let exact = models
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(language));
        let by_primary = || {
            models
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&primary))
        };
        if let Some((_, m)) = exact.or_else(by_primary) {
            return Ok(Some(m.clone()));
        }
        if primary == "en" {
            return Ok(None);
        }
        Err(EngineError::UnsupportedLanguage {
            language: language.to_string(),
            engine: ENGINE.to_string(),
        })
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
            self.worker = Some(Worker::spawn(&self.pool.config, &self.pool.live_pids).await?);
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
}

#[derive(Debug, Deserialize)]
struct Ready {
    ready: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    engine: Option<String>,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pid: u32,
    live_pids: Arc<Mutex<Vec<u32>>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_task: Option<JoinHandle<()>>,
}

impl Worker {
    async fn spawn(
        config: &OfflineConfig,
        live_pids: &Arc<Mutex<Vec<u32>>>,
    ) -> Result<Self, EngineError> {
        let fail = |reason: String| EngineError::WorkerStart {
            python: config.python.clone(),
            script: config.worker_script.clone(),
            reason,
        };
        if !Path::new(&config.worker_script).is_file() {
            return Err(fail("worker script not found".to_string()));
        }
        let mut child = Command::new(&config.python)
            .arg(&config.worker_script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                fail(format!(
                    "cannot run the python: {e} (scripts/setup.sh creates .venv with pocketsphinx)"
                ))
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
        };

        let ready = tokio::time::timeout(config.startup_timeout, worker.read_line()).await;
        let reason = match ready {
            Err(_) => format!("not ready within {:?}", config.startup_timeout),
            Ok(Err(e)) => format!("{e}; stderr: {}", worker.stderr_after_exit().await),
            Ok(Ok(line)) => match serde_json::from_str::<Ready>(&line) {
                Ok(r) if r.ready => {
                    tracing::info!(
                        pid,
                        engine = r.engine.as_deref().unwrap_or("?"),
                        "asr worker ready"
                    );
                    return Ok(worker);
                }
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

    fn engine_with(models: &[(&str, &str)]) -> OfflineEngine {
        let models = models
            .iter()
            .map(|(k, dir)| {
                (
                    k.to_string(),
                    ModelPaths {
                        hmm: PathBuf::from(dir),
                        lm: None,
                        dict: PathBuf::from(format!("{dir}/dict")),
                    },
                )
            })
            .collect();
        OfflineEngine::new(OfflineConfig {
            models,
            ..OfflineConfig::default()
        })
    }

    #[test]
    fn english_uses_the_bundled_model() {
        let e = engine_with(&[]);
        assert_eq!(e.pool.model_for("en-US").unwrap(), None);
        assert_eq!(e.pool.model_for("en-GB").unwrap(), None);
        assert_eq!(e.pool.model_for("").unwrap(), None);
    }

    #[test]
    fn other_languages_without_a_model_are_unsupported() {
        let e = engine_with(&[]);
        let err = e.pool.model_for("ja-JP").unwrap_err();
        assert!(
            matches!(&err, EngineError::UnsupportedLanguage { language, .. } if language == "ja-JP"),
            "{err}"
        );
        assert!(err.to_string().contains("ja-JP"), "{err}");
    }

    #[test]
    fn configured_model_matches_exact_tag_before_primary_subtag() {
        let e = engine_with(&[("de", "/m/de"), ("pt-BR", "/m/ptbr"), ("pt", "/m/pt")]);
        assert_eq!(
            e.pool.model_for("de-AT").unwrap().unwrap().hmm,
            PathBuf::from("/m/de")
        );
        assert_eq!(
            e.pool.model_for("pt-br").unwrap().unwrap().hmm,
            PathBuf::from("/m/ptbr")
        );
        assert_eq!(
            e.pool.model_for("pt-PT").unwrap().unwrap().hmm,
            PathBuf::from("/m/pt")
        );
    }

    #[test]
    fn malformed_language_is_invalid() {
        let err = engine_with(&[])
            .pool
            .model_for("english please")
            .unwrap_err();
        assert!(matches!(err, EngineError::InvalidLanguage { .. }), "{err}");
    }

    #[tokio::test]
    async fn unsupported_language_fails_without_starting_a_worker() {
        let e = engine_with(&[]);
        let err = e
            .transcribe(&Job::new("/nonexistent/x.wav", "fr-FR"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, EngineError::UnsupportedLanguage { .. }),
            "{err}"
        );
        assert!(e.worker_pids().is_empty());
    }

    #[tokio::test]
    async fn missing_python_is_a_start_error_naming_it() {
        let err = OfflineEngine::start(OfflineConfig {
            python: PathBuf::from("/nonexistent/python3"),
            worker_script: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")),
            ..OfflineConfig::default()
        })
        .await
        .err()
        .expect("start must fail");
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent/python3") && msg.contains("cannot run"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn missing_worker_script_is_a_start_error() {
        let err = OfflineEngine::start(OfflineConfig {
            worker_script: PathBuf::from("/nonexistent/asr_worker.py"),
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
            worker_script: script,
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
            worker_script: script,
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
