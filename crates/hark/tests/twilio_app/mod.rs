//! Runs `app.py` (the official Twilio Python helper library in `<repo>/.venv`) as the
//! application Hark talks to, and reads back its JSON-lines request log.
//!
//! Test files use it with `mod common; mod twilio_app;`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::common::{
    dbfs, rms, tone_share, wait_until, Recorded, TempDir, AUTH_TOKEN, FRAME, RATE,
};

/// An AccessToken with a VoiceGrant (incoming allowed, outgoing to `app_sid`), minted by
/// twilio-python's `AccessToken` for `identity`: valid from 2 minutes ago until `ttl_secs` from
/// now (negative: already expired).
pub fn access_token(
    key_sid: &str,
    secret: &str,
    app_sid: &str,
    identity: &str,
    ttl_secs: i64,
) -> String {
    let script = format!(
        "import time\n\
         from twilio.jwt.access_token import AccessToken\n\
         from twilio.jwt.access_token.grants import VoiceGrant\n\
         now = int(time.time())\n\
         t = AccessToken('{}', '{key_sid}', '{secret}', identity='{identity}', \
         nbf=now - 120, valid_until=now + ({ttl_secs}))\n\
         t.add_grant(VoiceGrant(incoming_allow=True, outgoing_application_sid='{app_sid}'))\n\
         print(t.to_jwt())\n",
        crate::common::ACCOUNT_SID
    );
    let out = Command::new(venv_python())
        .args(["-c", &script])
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "minting failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 token")
        .trim()
        .to_string()
}

/// `<repo>/.venv/bin/python`; fails the test (never skips) when the venv is missing.
pub fn venv_python() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let py = repo.join(".venv/bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import twilio"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import twilio: run scripts/setup.sh (it runs scripts/python-venv.sh, which \
         creates .venv with the Twilio helper library)",
        py.display()
    );
    py
}

/// One request as app.py logged it.
#[derive(Debug, Clone)]
pub struct AppReq {
    pub method: String,
    pub path: String,
    pub query: String,
    /// POST form pairs in the order sent.
    pub form: Vec<(String, String)>,
    pub headers: BTreeMap<String, String>,
    /// `RequestValidator.validate` said yes.
    pub valid: bool,
    /// What app.py answered.
    pub status: u16,
    /// Wall clock (seconds since the epoch) when it arrived.
    pub t: f64,
}

impl AppReq {
    fn from_json(v: &Value) -> Option<AppReq> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let form = v
            .get("form")?
            .as_array()?
            .iter()
            .filter_map(|p| {
                let p = p.as_array()?;
                Some((
                    p.first()?.as_str()?.to_string(),
                    p.get(1)?.as_str()?.to_string(),
                ))
            })
            .collect();
        let headers = v
            .get("headers")?
            .as_object()?
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_string()))
            .collect();
        Some(AppReq {
            method: s("method"),
            path: s("path"),
            query: s("query"),
            form,
            headers,
            valid: v.get("valid")?.as_bool()?,
            status: v.get("status")?.as_u64()? as u16,
            t: v.get("t")?.as_f64()?,
        })
    }

    /// Form (POST) or query (GET) parameters.
    pub fn params(&self) -> Vec<(String, String)> {
        if self.method == "POST" {
            self.form.clone()
        } else {
            url::form_urlencoded::parse(self.query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        }
    }

    pub fn opt_param(&self, name: &str) -> Option<String> {
        self.params()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The single value of `name`; panics when missing.
    pub fn param(&self, name: &str) -> String {
        self.opt_param(name).unwrap_or_else(|| {
            panic!(
                "{} {} has no {name}: {:?}",
                self.method,
                self.path,
                self.params()
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// As the harness's `Recorded`, for `check_recording` (`at` is meaningless: now).
    pub fn to_recorded(&self) -> Recorded {
        Recorded {
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            params: self.params(),
            at: Instant::now(),
            signature_ok: self.valid,
            signature_problem: None,
            fetched: None,
        }
    }
}

/// A running app.py; killed (by its own PID) on drop.
pub struct TwilioApp {
    child: Option<Child>,
    pub port: u16,
    pub tmp: TempDir,
    scenario: PathBuf,
    log: PathBuf,
    stderr: PathBuf,
}

impl TwilioApp {
    /// Starts app.py with `routes` (path → route, see app.py) and waits (≤ 20 s) for its port.
    pub fn start(routes: Value) -> TwilioApp {
        let py = venv_python();
        let tmp = TempDir::new("twilio-app");
        let scenario = tmp.join("routes.json");
        let log = tmp.join("requests.jsonl");
        let stderr = tmp.join("app.stderr");
        write_json(&scenario, &routes);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/twilio_app/app.py");
        let mut child = Command::new(py)
            .arg(script)
            .args(["--port", "0", "--auth-token", AUTH_TOKEN])
            .arg("--scenario")
            .arg(&scenario)
            .arg("--log")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("app stderr file"))
            .spawn()
            .expect("start app.py");
        let out = child.stdout.take().expect("app stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let port = line.trim().parse::<u16>().ok();
        let mut app = TwilioApp {
            child: Some(child),
            port: port.unwrap_or(0),
            tmp,
            scenario,
            log,
            stderr,
        };
        assert!(
            port.is_some_and(|p| p != 0),
            "app.py did not print its port within 20 s (got {line:?}); stderr:\n{}",
            app.stderr_text()
        );
        assert!(app.is_running(), "app.py exited: {}", app.stderr_text());
        app
    }

    fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base(), path)
    }

    /// Replaces the routes (app.py re-reads them on every request).
    pub fn set_routes(&self, routes: Value) {
        write_json(&self.scenario, &routes);
    }

    pub fn requests(&self) -> Vec<AppReq> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| AppReq::from_json(&v))
            .collect()
    }

    pub fn requests_to(&self, path: &str) -> Vec<AppReq> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `path` got at least `n` requests; panics after `timeout`.
    pub fn wait_for(&self, path: &str, n: usize, timeout: Duration) -> Vec<AppReq> {
        wait_until(timeout, || {
            let r = self.requests_to(path);
            (r.len() >= n).then_some(r)
        })
        .unwrap_or_else(|| {
            panic!(
                "expected {n} request(s) to {path} within {timeout:?}; app log: {}",
                self.summary()
            )
        })
    }

    /// One line per request, for failure messages.
    pub fn summary(&self) -> String {
        self.requests()
            .iter()
            .map(|r| {
                format!(
                    "\n  {} {}?{} -> {} valid={} {:?}",
                    r.method, r.path, r.query, r.status, r.valid, r.form
                )
            })
            .collect()
    }

    /// Every request except those to `unsigned_paths` (media) passed `RequestValidator`.
    pub fn assert_all_valid(&self, unsigned_paths: &[&str]) {
        let reqs = self.requests();
        assert!(!reqs.is_empty(), "app.py received no request");
        let bad: Vec<String> = reqs
            .iter()
            .filter(|r| !unsigned_paths.contains(&r.path.as_str()) && !r.valid)
            .map(|r| format!("{} {}?{} {:?}", r.method, r.path, r.query, r.form))
            .collect();
        assert!(
            bad.is_empty(),
            "RequestValidator rejected X-Twilio-Signature on: {bad:#?}"
        );
    }
}

impl Drop for TwilioApp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- app.py requests -----{}\n----- app.py stderr (tail) -----\n{}",
                self.summary(),
                tail(&self.stderr_text(), 40)
            );
        }
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Written whole then renamed, so app.py never reads half a file.
fn write_json(path: &Path, v: &Value) {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(v).expect("json")).expect("write routes");
    std::fs::rename(&tmp, path).expect("rename routes");
}

/// Seconds since the epoch, comparable with `AppReq::t`.
pub fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

// ---- route builders (the JSON app.py understands) ----

/// `{"twiml": [...]}`: verbs built with `VoiceResponse`; each verb is `[name, {kwargs}, [nested]]`.
pub fn twiml(verbs: Value) -> Value {
    json!({ "twiml": verbs })
}

/// `<Say>text</Say><Hangup/>`.
pub fn say_hangup(text: &str) -> Value {
    twiml(json!([["say", {"message": text}], ["hangup"]]))
}

/// A raw answer (failure cases).
pub fn raw(status: u16, content_type: &str, body: &str) -> Value {
    json!({ "raw": { "status": status, "content_type": content_type, "body": body } })
}

pub fn raw_delayed(status: u16, content_type: &str, body: &str, delay_secs: f64) -> Value {
    json!({ "raw": { "status": status, "content_type": content_type, "body": body, "delay": delay_secs } })
}

// ---- received-audio analysis ----

/// Frames (20 ms) of `s` in `[from, to)` seconds.
pub fn frames(s: &[i16], from: f64, to: f64) -> Vec<&[i16]> {
    let a = ((from * RATE as f64) as usize).min(s.len());
    let b = ((to * RATE as f64) as usize).min(s.len());
    s[a..b].chunks(FRAME).filter(|f| f.len() == FRAME).collect()
}

/// Share of 20 ms frames in `[from, to)` s that look like speech: louder than −40 dBFS and not
/// dominated by one frequency (the beep and DTMF are; espeak speech is broadband).
pub fn speech_share(s: &[i16], from: f64, to: f64) -> f64 {
    let fr = frames(s, from, to);
    if fr.is_empty() {
        return 0.0;
    }
    let speechy = fr.iter().filter(|f| is_speech_frame(f)).count();
    speechy as f64 / fr.len() as f64
}

pub fn is_speech_frame(f: &[i16]) -> bool {
    dbfs(rms(f)) > -40.0 && tone_share(f, 1000.0) < 0.3 && tone_share(f, 440.0) < 0.3
}

/// Start (s) of the first run of ≥ `min_frames` consecutive frames carrying a pure `freq` tone
/// (Goertzel share > 0.4, louder than −30 dBFS), searching from `from` s.
pub fn tone_run_start(s: &[i16], freq: f64, from: f64, min_frames: usize) -> Option<f64> {
    let start = ((from * RATE as f64) as usize).min(s.len());
    let fr: Vec<&[i16]> = s[start..].chunks(FRAME).collect();
    let is_tone = |f: &[i16]| f.len() == FRAME && dbfs(rms(f)) > -30.0 && tone_share(f, freq) > 0.4;
    let mut run = 0;
    for (i, f) in fr.iter().enumerate() {
        if is_tone(f) {
            run += 1;
            if run >= min_frames {
                let first = i + 1 - run;
                return Some((start + first * FRAME) as f64 / RATE as f64);
            }
        } else {
            run = 0;
        }
    }
    None
}

/// Number of 20 ms frames from `from` s that carry a pure `freq` tone.
pub fn tone_frames(s: &[i16], freq: f64, from: f64, to: f64) -> usize {
    frames(s, from, to)
        .iter()
        .filter(|f| dbfs(rms(f)) > -30.0 && tone_share(f, freq) > 0.4)
        .count()
}

/// A compact energy profile (one char per 100 ms) for failure messages.
pub fn profile(s: &[i16]) -> String {
    s.chunks(800)
        .map(|c| {
            let d = dbfs(rms(c));
            if tone_share(c, 1000.0) > 0.4 && d > -30.0 {
                'B'
            } else if d > -30.0 {
                '#'
            } else if d > -45.0 {
                '+'
            } else {
                '.'
            }
        })
        .collect()
}
