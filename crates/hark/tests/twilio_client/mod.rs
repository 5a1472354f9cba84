//! Helpers for the REST and durability tests: a blocking HTTP client for Hark's API, the
//! Python scripts in this folder (official `twilio` library in `<repo>/.venv`), and recordings
//! made with `hark call`.
//!
//! Test files use it with `mod common; mod twilio_app; mod twilio_client;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::{
    Daemon, HarkCall, Output, Recorded, Running, TempDir, WebhookServer, ACCOUNT_SID, AUTH_TOKEN,
};

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): status {} {}", self.status, self.text()))
    }
}

/// Blocking HTTP over reqwest on a private runtime.
pub struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

/// Credentials for a request.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    /// The daemon's own account.
    Account,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    pub fn new() -> Http {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            // A restarted daemon is a new server: never reuse a connection to the old one.
            .pool_max_idle_per_host(0)
            .build()
            .expect("reqwest client");
        Http { rt, client }
    }

    pub fn request(
        &self,
        method: &str,
        url: &str,
        auth: Auth<'_>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.client.request(method.clone(), url);
        rb = match auth {
            Auth::None => rb,
            Auth::Basic(u, p) => rb.basic_auth(u, Some(p)),
            Auth::Account => rb.basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN)),
        };
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        self.rt.block_on(async {
            let r = rb
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
            let status = r.status().as_u16();
            let headers = r
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = r
                .bytes()
                .await
                .unwrap_or_else(|e| panic!("{method} {url}: body: {e}"))
                .to_vec();
            Resp {
                status,
                headers,
                body,
            }
        })
    }

    pub fn get(&self, url: &str, auth: Auth<'_>) -> Resp {
        self.request("GET", url, auth, &[])
    }
}

/// `{public_url}/2010-04-01/Accounts/{account}/{rest}`.
pub fn api_url(d: &Daemon, account: &str, rest: &str) -> String {
    format!("{}/2010-04-01/Accounts/{account}/{rest}", d.public_url())
}

/// Asserts a Twilio error body (SPEC §6.1) with `status` and `code`.
pub fn assert_error(r: &Resp, status: u16, code: u64, what: &str) {
    assert_eq!(r.status, status, "{what}: status; body {}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: content type {:?}",
        r.header("content-type")
    );
    let v = r.json();
    let keys: Vec<&String> = v.as_object().expect("error object").keys().collect();
    assert_eq!(
        keys,
        ["code", "message", "more_info", "status"],
        "{what}: error keys"
    );
    assert_eq!(v["status"], status, "{what}: status field");
    assert_eq!(v["code"], code, "{what}: code field");
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: message"
    );
    assert!(
        v["more_info"]
            .as_str()
            .is_some_and(|m| m.starts_with("https://") && m.ends_with(&code.to_string())),
        "{what}: more_info {}",
        v["more_info"]
    );
}

/// Runs `script` (in this folder) with the venv's Python; bounded by `timeout`.
pub fn run_script(script: &str, args: &[String], dir: &TempDir, timeout: Duration) -> Output {
    let py = crate::twilio_app::venv_python();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/twilio_client")
        .join(script);
    let mut cmd = Command::new(py);
    cmd.arg(path).args(args);
    Running::spawn(script.trim_end_matches(".py"), cmd, &dir.path).wait(timeout)
}

/// The speech fixture `times` times over, as a µ-law WAV in `dir`.
pub fn looped_speech(dir: &TempDir, name: &str, times: usize) -> (PathBuf, Vec<u8>) {
    let one = crate::common::speech_ulaw();
    let mut sent = Vec::with_capacity(one.len() * times);
    for _ in 0..times {
        sent.extend_from_slice(&one);
    }
    let path = dir.join(name);
    crate::common::write_ulaw_wav(&path, &sent);
    (path, sent)
}

/// TwiML: `<Record>` ending on `#`, the action on `wh`'s `/action`; with `rsc`, a
/// recordingStatusCallback for in-progress and completed.
pub fn record_twiml(action: &str, rsc: Option<&str>) -> String {
    let cb = match rsc {
        Some(u) => format!(
            r#" recordingStatusCallback="{u}" recordingStatusCallbackEvent="in-progress completed""#
        ),
        None => String::new(),
    };
    format!(
        r##"<Response><Record action="{action}" finishOnKey="#" maxLength="120" timeout="10"{cb}/></Response>"##
    )
}

/// Places `n` calls at once, each playing `wav` then pressing `#`, and waits for all of them
/// and for their `n` action requests. Returns the action requests in arrival order.
pub fn record_calls(
    d: &Daemon,
    wh: &WebhookServer,
    wav: &Path,
    n: usize,
    stagger: Duration,
) -> Vec<Recorded> {
    let mut calls = Vec::new();
    for _ in 0..n {
        calls.push(
            HarkCall::new(&d.uri("rec"))
                .play(wav)
                .dtmf("#", secs_of_wav(wav) + 0.2)
                .spawn(&d.tmp),
        );
        std::thread::sleep(stagger);
    }
    for c in calls {
        c.wait(Duration::from_secs(60)).assert_success();
    }
    wh.wait_for("/action", n, Duration::from_secs(10))
}

/// Length of an 8 kHz µ-law WAV written by `write_ulaw_wav` (one byte per sample).
fn secs_of_wav(path: &Path) -> f64 {
    crate::common::read_ulaw_wav(path).len() as f64 / 8000.0
}

/// Resident set size of a process, in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
