//! Headless Chromium for the browser tests (issue 12): Debian's `chromium-headless-shell`, driven
//! by `tests/browser/run-page.mjs` (playwright-core pinned by `tests/browser/package-lock.json`,
//! no browser download), with a fake microphone playing a WAV. One page per run: the page does
//! its steps and sets `window.__result`; the run returns that JSON. Everything is bounded in time,
//! the page's console goes to stderr, and Chromium is killed by its PID (process group) at the
//! end. `scripts/setup.sh` installs all of it; a missing piece fails the test, never skips it.
//!
//! Only std and serde_json here, so this file also builds on its own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The real binary of Debian's `chromium-headless-shell` (`/usr/bin/chromium-headless-shell` is
/// a shell wrapper around it).
pub const HEADLESS_SHELL: &str = "/usr/lib/chromium/chromium-headless-shell";

/// The SDK version vendored in `crates/hark/assets/client/twilio.min.js`.
pub const SDK_VERSION: &str = "2.18.5";

/// `tests/browser/` at the repository root (run-page.mjs, package.json, node_modules).
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

/// The vendored `twilio.min.js`.
pub fn sdk_js() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/client/twilio.min.js")
}

/// Fails the test (never skips) when Chromium, node or playwright-core is missing.
pub fn require_browser() {
    let hint = "run scripts/setup.sh (installs chromium-headless-shell, nodejs/npm and \
                tests/browser/node_modules)";
    assert!(
        Path::new(HEADLESS_SHELL).is_file(),
        "{HEADLESS_SHELL} missing: {hint}"
    );
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(node, "node not found on PATH: {hint}");
    let pw = browser_dir().join("node_modules/playwright-core/package.json");
    assert!(pw.is_file(), "{} missing: {hint}", pw.display());
}

/// Writes `dst`: `src` (any WAV sox reads) as 48 kHz 16-bit mono PCM followed by `pad_secs` of
/// silence — the fake microphone plays it once (`%noloop`), so the pad keeps the track quiet
/// rather than ended while a test still listens.
pub fn fake_audio_48k(src: &Path, dst: &Path, pad_secs: f64) {
    let out = Command::new("sox")
        .arg(src)
        .args(["-r", "48000", "-e", "signed", "-b", "16", "-c", "1"])
        .arg(dst)
        .args(["pad", "0", &format!("{pad_secs}")])
        .output()
        .unwrap_or_else(|e| panic!("sox not runnable ({e}): run scripts/setup.sh"));
    assert!(
        out.status.success(),
        "sox {} -> {}: {}",
        src.display(),
        dst.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// [`fake_audio_48k`] with a sine of `hz` mixed in at −26 dBFS: a component above 4 kHz
/// reaches a recording only through a wideband codec (Opus), never through G.711.
pub fn fake_audio_48k_with_tone(src: &Path, dst: &Path, pad_secs: f64, hz: f64) {
    fake_audio_48k(src, dst, pad_secs);
    let mut reader = hound::WavReader::open(dst).expect("sox output");
    let spec = reader.spec();
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .expect("read sox output");
    drop(reader);
    let mut writer = hound::WavWriter::create(dst, spec).expect("rewrite fake audio");
    let amplitude = 32768.0 * 10f64.powf(-26.0 / 20.0) * std::f64::consts::SQRT_2;
    for (i, s) in samples.iter().enumerate() {
        let t = i as f64 / f64::from(spec.sample_rate);
        let tone = amplitude * (2.0 * std::f64::consts::PI * hz * t).sin();
        let mixed = (f64::from(*s) * 0.7 + tone).clamp(-32768.0, 32767.0);
        writer.write_sample(mixed as i16).expect("write sample");
    }
    writer.finalize().expect("finalize fake audio");
}

/// What one page run produced.
#[derive(Debug)]
pub struct PageOutput {
    /// The page's `window.__result` (Null when it reported none).
    pub result: serde_json::Value,
    /// `None` when the page reported; otherwise why not.
    pub error: Option<String>,
    /// Milliseconds from the driver's start: `launch`, `loaded`, `result`.
    pub ms: serde_json::Value,
    /// Every stderr line of the driver: `run-page: chromium pid N`, `[page:log] …`, errors.
    pub console: Vec<String>,
    pub elapsed: Duration,
}

impl PageOutput {
    /// The page's result; panics with the console when there is none.
    pub fn expect_result(&self) -> &serde_json::Value {
        assert!(
            self.error.is_none(),
            "browser page failed after {:.1} s: {}\n--- console ---\n{}",
            self.elapsed.as_secs_f64(),
            self.error.as_deref().unwrap_or(""),
            self.console.join("\n")
        );
        &self.result
    }
}

/// One page in headless Chromium: `PageRun::new(url).fake_audio(wav).run()`.
pub struct PageRun {
    url: String,
    fake_audio: Option<PathBuf>,
    timeout: Duration,
    result_expr: Option<String>,
    extra_args: Vec<String>,
}

impl PageRun {
    /// `url` must be on loopback (127.0.0.1 / [::1] / localhost).
    pub fn new(url: &str) -> PageRun {
        assert!(
            [
                "http://127.0.0.1",
                "https://127.0.0.1",
                "http://[::1]",
                "https://[::1]"
            ]
            .iter()
            .chain(["http://localhost", "https://localhost"].iter())
            .any(|p| url.starts_with(p)),
            "browser tests stay on loopback: {url}"
        );
        PageRun {
            url: url.into(),
            fake_audio: None,
            timeout: Duration::from_secs(20),
            result_expr: None,
            extra_args: Vec::new(),
        }
    }

    /// The fake microphone plays this WAV once (16-bit PCM; see [`fake_audio_48k`]). Without it
    /// Chromium's fake device beeps.
    pub fn fake_audio(mut self, wav: &Path) -> Self {
        self.fake_audio = Some(wav.to_path_buf());
        self
    }

    /// How long the page has to report (default 20 s; the run as a whole is killed 30 s later).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// A JS expression polled until it is neither undefined nor null (default `window.__result`).
    pub fn result_expr(mut self, expr: &str) -> Self {
        self.result_expr = Some(expr.into());
        self
    }

    /// One more Chromium switch.
    pub fn arg(mut self, a: &str) -> Self {
        self.extra_args.push(a.into());
        self
    }

    /// Runs the page; see [`PageOutput`]. Panics only when the driver cannot start.
    pub fn run(self) -> PageOutput {
        require_browser();
        let started = Instant::now();
        let mut cfg = serde_json::json!({
            "url": self.url,
            "timeoutMs": self.timeout.as_millis() as u64,
            "executablePath": HEADLESS_SHELL,
            "extraArgs": self.extra_args,
        });
        if let Some(wav) = &self.fake_audio {
            let abs = std::fs::canonicalize(wav)
                .unwrap_or_else(|e| panic!("fake audio {}: {e}", wav.display()));
            cfg["fakeAudio"] = abs.display().to_string().into();
        }
        if let Some(e) = &self.result_expr {
            cfg["resultExpr"] = e.clone().into();
        }
        let dir = browser_dir();
        // Playwright's and Chromium's temporary profile and artifacts: removed after the run,
        // whatever happened to them.
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let tmp = std::env::temp_dir().join(format!(
            "hark-browser-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&tmp).expect("browser temp dir");
        let mut child = Command::new("node")
            .arg(dir.join("run-page.mjs"))
            .arg(cfg.to_string())
            .current_dir(&dir)
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node run-page.mjs: {e}"));

        // stderr: forwarded line by line as it comes, kept, and scanned for Chromium's PID.
        let console = Arc::new(Mutex::new(Vec::<String>::new()));
        let chromium_pid = Arc::new(Mutex::new(None::<u32>));
        let err = child.stderr.take().expect("stderr");
        let err_thread = {
            let console = console.clone();
            let chromium_pid = chromium_pid.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().take(100_000) {
                    let Ok(line) = line else { break };
                    if let Some(pid) = line.strip_prefix("run-page: chromium pid ") {
                        *chromium_pid.lock().unwrap() = pid.trim().parse().ok();
                    }
                    eprintln!("[browser] {line}");
                    console.lock().unwrap().push(line);
                }
            })
        };
        let mut out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            let _ = tx.send(s);
        });

        // The driver bounds itself (timeout + 15 s); this bounds the driver.
        let deadline = started + self.timeout + Duration::from_secs(30);
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        // Normally run-page.mjs has killed it already; this covers a driver killed above.
        if let Some(pid) = *chromium_pid.lock().unwrap() {
            kill_chromium_group(pid);
        }
        let stdout = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
        let _ = err_thread.join();
        let _ = std::fs::remove_dir_all(&tmp);
        let console = std::mem::take(&mut *console.lock().unwrap());

        let reply: Option<serde_json::Value> = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l.trim()).ok());
        let elapsed = started.elapsed();
        match reply {
            Some(r) if r["ok"] == true => PageOutput {
                result: r["result"].clone(),
                error: None,
                ms: r["ms"].clone(),
                console,
                elapsed,
            },
            Some(r) => PageOutput {
                result: serde_json::Value::Null,
                error: Some(r["error"].as_str().unwrap_or("no error text").to_string()),
                ms: r["ms"].clone(),
                console,
                elapsed,
            },
            None => PageOutput {
                result: serde_json::Value::Null,
                error: Some(match status {
                    Some(s) => format!("run-page.mjs exited {s} without a result: {stdout}"),
                    None => format!(
                        "run-page.mjs killed after {:.1} s (no result)",
                        elapsed.as_secs_f64()
                    ),
                }),
                ms: serde_json::Value::Null,
                console,
                elapsed,
            },
        }
    }
}

/// One page driven step by step (`tests/browser/drive.mjs`): for tests whose browser steps
/// interleave with calls. Each step waits for its answer (bounded); Chromium is killed by its
/// process group when this is dropped.
pub struct Drive {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    answers: mpsc::Receiver<String>,
    chromium_pid: Arc<Mutex<Option<u32>>>,
    tmp: PathBuf,
}

/// A step's answer: its value and when it completed (the browser's wall clock, Unix ms).
#[derive(Debug, Clone)]
pub struct Step {
    pub value: serde_json::Value,
    pub at_ms: u64,
}

impl Drive {
    pub fn start(width: u32, height: u32) -> Drive {
        require_browser();
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let tmp = std::env::temp_dir().join(format!(
            "hark-drive-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&tmp).expect("browser temp dir");
        let cfg = serde_json::json!({
            "viewport": {"width": width, "height": height},
            "executablePath": HEADLESS_SHELL,
        });
        let dir = browser_dir();
        let mut child = Command::new("node")
            .arg(dir.join("drive.mjs"))
            .arg(cfg.to_string())
            .current_dir(&dir)
            .env("TMPDIR", &tmp)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node drive.mjs: {e}"));
        let chromium_pid = Arc::new(Mutex::new(None::<u32>));
        let err = child.stderr.take().expect("stderr");
        {
            let chromium_pid = chromium_pid.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().take(100_000) {
                    let Ok(line) = line else { break };
                    if let Some(pid) = line.strip_prefix("drive: chromium pid ") {
                        *chromium_pid.lock().unwrap() = pid.trim().parse().ok();
                    }
                    eprintln!("[browser] {line}");
                }
            });
        }
        let out = child.stdout.take().expect("stdout");
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().take(100_000) {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take().expect("stdin");
        Drive {
            child,
            stdin,
            answers,
            chromium_pid,
            tmp,
        }
    }

    /// Sends a step without waiting for it (its answer comes with [`Drive::answer`]).
    pub fn send(&mut self, cmd: serde_json::Value) {
        writeln!(self.stdin, "{cmd}").expect("drive.mjs stdin");
        self.stdin.flush().expect("drive.mjs stdin");
    }

    /// The answer to the oldest step sent and not yet answered.
    pub fn answer(&mut self) -> Result<Step, String> {
        // Steps bound themselves to 60 s; launching Chromium may take a while on a busy box.
        let line = self
            .answers
            .recv_timeout(Duration::from_secs(90))
            .map_err(|e| format!("no answer from drive.mjs: {e}"))?;
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("bad answer {line:?}: {e}"))?;
        let at_ms = v["at_ms"].as_u64().unwrap_or(0);
        if v["ok"] == true {
            Ok(Step {
                value: v["value"].clone(),
                at_ms,
            })
        } else {
            Err(v["error"].as_str().unwrap_or("no error text").to_string())
        }
    }

    pub fn step(&mut self, cmd: serde_json::Value) -> Result<Step, String> {
        self.send(cmd);
        self.answer()
    }

    /// [`Drive::step`] that must succeed.
    pub fn must(&mut self, cmd: serde_json::Value) -> Step {
        let shown = cmd.to_string();
        self.step(cmd)
            .unwrap_or_else(|e| panic!("browser step {shown} failed: {e}"))
    }

    pub fn goto(&mut self, url: &str) {
        self.must(serde_json::json!({"cmd": "goto", "url": url}));
    }

    pub fn fill(&mut self, selector: &str, value: &str) {
        self.must(serde_json::json!({"cmd": "fill", "selector": selector, "value": value}));
    }

    pub fn click(&mut self, selector: &str) {
        self.must(serde_json::json!({"cmd": "click", "selector": selector}));
    }

    /// Waits until `selector` is in `state` (`visible`, `attached`, `hidden`, `detached`).
    pub fn wait(&mut self, selector: &str, state: &str, timeout: Duration) -> Step {
        self.must(serde_json::json!({
            "cmd": "wait", "selector": selector, "state": state,
            "timeoutMs": timeout.as_millis() as u64,
        }))
    }

    pub fn eval(&mut self, expr: &str) -> serde_json::Value {
        self.must(serde_json::json!({"cmd": "eval", "expr": expr}))
            .value
    }

    /// Polls `expr` in the page until it is truthy; its value.
    pub fn wait_for(&mut self, expr: &str, timeout: Duration) -> Step {
        self.must(serde_json::json!({
            "cmd": "waitFor", "expr": expr, "timeoutMs": timeout.as_millis() as u64,
        }))
    }

    pub fn screenshot(&mut self, path: &Path) {
        self.must(serde_json::json!({
            "cmd": "screenshot", "path": path.display().to_string(), "fullPage": true,
        }));
    }

    pub fn viewport(&mut self, width: u32, height: u32) {
        self.must(serde_json::json!({"cmd": "viewport", "width": width, "height": height}));
    }
}

impl Drop for Drive {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", serde_json::json!({"cmd": "quit"}));
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(pid) = *self.chromium_pid.lock().unwrap() {
            kill_chromium_group(pid);
        }
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// SIGKILL to Chromium's process group (Playwright starts it as a group leader), if that PID
/// still is Chromium.
fn kill_chromium_group(pid: u32) {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&cmdline).contains("chromium") {
        return;
    }
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// A static-file HTTP/1.1 server on 127.0.0.1 for test pages (GET only, `Connection: close`);
/// stopped when dropped.
pub struct StaticServer {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// One file: URL path (`/smoke.html`), content type, bytes.
pub type StaticFile = (String, String, Vec<u8>);

impl StaticServer {
    pub fn start(files: Vec<StaticFile>) -> StaticServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let files = Arc::new(files);
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // A thread per connection: Chromium opens idle pre-connections that would
                // otherwise hold up the next request until their read timeout.
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let files = files.clone();
                            std::thread::spawn(move || {
                                let _ = serve_one(s, &files);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        StaticServer {
            addr,
            base: format!("http://{addr}"),
            stop,
            thread: Some(thread),
        }
    }

    /// Serves `page` (a file of the browser test directory, at `/<page>`) and the vendored SDK
    /// at `/twilio.min.js`.
    pub fn page_with_sdk(page: &str) -> StaticServer {
        let html =
            std::fs::read(browser_dir().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        let sdk = std::fs::read(sdk_js()).expect("vendored twilio.min.js");
        StaticServer::start(vec![
            (format!("/{page}"), "text/html; charset=utf-8".into(), html),
            (
                "/twilio.min.js".into(),
                "application/javascript".into(),
                sdk,
            ),
        ])
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(mut s: TcpStream, files: &[StaticFile]) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    // Headers only (GET), at most 64 KiB.
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 65536 {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&req);
    let target = text.split(' ').nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/");
    let (status, ctype, body): (&str, &str, &[u8]) = match files.iter().find(|(p, _, _)| p == path)
    {
        Some((_, t, b)) => ("200 OK", t, b),
        None => ("404 Not Found", "text/plain", b"not found"),
    };
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    s.flush()
}

/// Hark serving HTTPS/WSS with a throw-away certificate made in `certs`, one `[[api_key]]`
/// (`key_sid`, `secret`) and one `[[application]]` `app_sid` whose TOML keys are `app_keys`
/// (e.g. `twiml = "…"` or `voice_url = "…"`).
pub fn client_daemon(
    certs: &super::TempDir,
    (key_sid, secret): (&str, &str),
    app_sid: &str,
    app_keys: &str,
) -> super::Daemon {
    let (cert, key) = super::tls::self_signed_cert(certs, "hark");
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let mut d = super::Daemon::prepare(
        &[("http.tls_cert", &cert), ("http.tls_key", &key)],
        super::App::Twiml("<Response><Hangup/></Response>".into()),
    );
    d.append_config(&format!(
        "\n[[api_key]]\nsid = \"{key_sid}\"\nsecret = \"{secret}\"\n\
         \n[[application]]\nsid = \"{app_sid}\"\n{app_keys}\n"
    ));
    d.launch();
    d
}
