//! Child processes with bounded lifetimes: the built-in caller (`hark call`) and SIPp.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{alloc_port_block, scenarios_dir, TempDir};

/// How a child ended.
#[derive(Debug)]
pub struct Output {
    pub name: String,
    /// None when it had to be killed at its deadline.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Panics with the child's output unless it exited 0.
    pub fn assert_success(&self) {
        assert!(
            self.success(),
            "{} failed ({}) after {:.1} s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.name,
            match self.status {
                Some(s) => s.to_string(),
                None => "killed at its deadline".into(),
            },
            self.elapsed.as_secs_f64(),
            tail(&self.stdout, 80),
            tail(&self.stderr, 80)
        );
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A running child; killed (by its PID) on drop.
pub struct Running {
    pub name: String,
    child: Option<Child>,
    started: Instant,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Running {
    pub fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Running {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        cmd.stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("stdout file"))
            .stderr(File::create(&stderr).expect("stderr file"));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Running {
            name: name.into(),
            child: Some(child),
            started: Instant::now(),
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits up to `timeout`, then kills it.
    pub fn wait(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let mut status = None;
        if let Some(mut c) = self.child.take() {
            loop {
                if let Ok(Some(s)) = c.try_wait() {
                    status = Some(s);
                    break;
                }
                if Instant::now() >= deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.output(status)
    }

    /// Kills it now (SIGKILL to its PID) and returns what it printed.
    pub fn kill(mut self) -> Output {
        let mut status = None;
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            status = c.wait().ok();
        }
        self.output(status)
    }

    fn output(&self, status: Option<ExitStatus>) -> Output {
        Output {
            name: self.name.clone(),
            status,
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
            elapsed: self.started.elapsed(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `hark call` — the built-in caller.
pub struct HarkCall {
    uri: String,
    args: Vec<String>,
}

impl HarkCall {
    pub fn new(uri: &str) -> HarkCall {
        HarkCall {
            uri: uri.into(),
            args: vec!["--bind".into(), "127.0.0.1".into()],
        }
    }

    pub fn play(mut self, wav: &Path) -> Self {
        self.args.push("--play".into());
        self.args.push(wav.display().to_string());
        self
    }

    pub fn dtmf(mut self, keys: &str, at_secs: f64) -> Self {
        self.args.push("--dtmf".into());
        self.args.push(keys.into());
        self.args.push("--dtmf-at".into());
        self.args.push(format!("{at_secs}"));
        self
    }

    pub fn dtmf_mode(mut self, mode: &str) -> Self {
        self.args.push("--dtmf-mode".into());
        self.args.push(mode.into());
        self
    }

    pub fn hangup_after(mut self, secs: f64) -> Self {
        self.args.push("--hangup-after".into());
        self.args.push(format!("{secs}"));
        self
    }

    pub fn save_received(mut self, out: &Path) -> Self {
        self.args.push("--save-received".into());
        self.args.push(out.display().to_string());
        self
    }

    pub fn spawn(self, dir: &TempDir) -> Running {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hark"));
        cmd.arg("call").arg(&self.uri).args(&self.args);
        Running::spawn("hark-call", cmd, &dir.path)
    }

    /// Runs to completion (bounded).
    pub fn run(self, dir: &TempDir, timeout: Duration) -> Output {
        self.spawn(dir).wait(timeout)
    }
}

/// Fails the test (never skips) when SIPp is not installed.
pub fn require_sipp() {
    let ok = Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        ok,
        "SIPp is not installed: run scripts/setup.sh (it installs the sip-tester package)"
    );
}

/// A SIPp run of one scenario from sipp-scenarios/ against Hark.
pub struct Sipp {
    scenario: String,
    target: SocketAddr,
    extra: Vec<String>,
    pub sip_port: u16,
    pub media_port: u16,
}

impl Sipp {
    pub fn new(scenario: &str, target: SocketAddr) -> Sipp {
        require_sipp();
        let base = alloc_port_block();
        Sipp {
            scenario: scenario.into(),
            target,
            extra: Vec::new(),
            sip_port: base,
            media_port: base + 2,
        }
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.extra.push(a.into());
        self
    }

    /// TCP, one connection (`-t t1`).
    pub fn tcp(self) -> Self {
        self.arg("-t").arg("t1")
    }

    pub fn spawn(self, dir: &TempDir) -> Running {
        let scen = scenarios_dir().join(&self.scenario);
        assert!(scen.exists(), "missing scenario {}", scen.display());
        let mut cmd = Command::new("sipp");
        cmd.current_dir(scenarios_dir())
            .arg("-sf")
            .arg(&scen)
            .args(["-s", "rec", "-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .arg("-p")
            .arg(self.sip_port.to_string())
            .arg("-mp")
            .arg(self.media_port.to_string())
            .args(["-m", "1", "-nostdin", "-timeout", "60s", "-timeout_error"])
            .arg("-trace_err")
            .arg("-error_file")
            .arg(dir.join(&format!("sipp-{}.errors.log", self.scenario)))
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(dir.join(&format!("sipp-{}.messages.log", self.scenario)))
            .args(&self.extra)
            .arg(self.target.to_string());
        Running::spawn(&format!("sipp-{}", self.scenario), cmd, &dir.path)
    }

    /// Runs to completion (bounded); on failure the error and message logs are appended to
    /// stderr so `assert_success` shows them.
    pub fn run(self, dir: &TempDir, timeout: Duration) -> Output {
        let name = self.scenario.clone();
        let mut out = self.spawn(dir).wait(timeout);
        if !out.success() {
            for kind in ["errors", "messages"] {
                let p = dir.join(&format!("sipp-{name}.{kind}.log"));
                if let Ok(s) = std::fs::read_to_string(&p) {
                    out.stderr
                        .push_str(&format!("\n--- {} ---\n{}", p.display(), tail(&s, 150)));
                }
            }
        }
        out
    }
}

/// The SIP messages SIPp logged (for reading Hark's SDP etc.).
pub fn sipp_messages(dir: &TempDir, scenario: &str) -> String {
    std::fs::read_to_string(dir.join(&format!("sipp-{scenario}.messages.log"))).unwrap_or_default()
}
