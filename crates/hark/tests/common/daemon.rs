//! Runs `hark serve` with a generated config, unique ports and a private storage dir. SIP and
//! HTTP listen on port 0 and the ports are read from the daemon's `listening` log line; RTP
//! takes a block from `alloc_port_block`, its ports come from a configured range.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{alloc_port_block, options_ok_from, TempDir, ACCOUNT_SID, AUTH_TOKEN};

/// Where the call logic comes from.
#[derive(Debug, Clone)]
pub enum App {
    /// `[app] twiml`: a static document.
    Twiml(String),
    /// `[app] voice_url` with `voice_method`.
    VoiceUrl { url: String, method: &'static str },
}

pub struct Daemon {
    child: Option<Child>,
    pub tmp: TempDir,
    pub storage: PathBuf,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    /// 0 until the first launch has bound it; later launches bind the same port.
    pub sip_port: u16,
    /// 0 until the first launch has bound it; later launches bind the same port.
    pub http_port: u16,
    pub rtp_min: u16,
    pub rtp_max: u16,
    starts: u32,
    /// `HARK_…` variables given to every launch (`set_env`).
    env: Vec<(String, String)>,
    /// The `hark` binary and working directory of the next launches (`set_binary`); the build's
    /// binary and `tmp` by default.
    binary: Option<(PathBuf, PathBuf)>,
    /// Where the readiness OPTIONS comes from (a loopback address in `sip.trusted`).
    probe_ip: &'static str,
}

/// A TOML value: numbers and booleans stay bare, the rest becomes a basic string.
pub fn toml_value(v: &str) -> String {
    if v.parse::<i64>().is_ok() || v.parse::<f64>().is_ok() || v == "true" || v == "false" {
        return v.to_string();
    }
    toml_string(v)
}

/// A TOML basic string.
pub fn toml_string(v: &str) -> String {
    let mut s = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => s.push_str(&format!("\\u{:04x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

impl Daemon {
    /// Starts a daemon; `overrides` are `("section.key", "value")` pairs written into its config
    /// file on top of the test defaults (ports, storage, account, app).
    pub fn start(overrides: &[(&str, &str)], app: App) -> Daemon {
        let mut d = Daemon::prepare(overrides, app);
        d.launch();
        d
    }

    /// Like `start`, but only writes the config (for tests that run `hark serve` themselves).
    pub fn prepare(overrides: &[(&str, &str)], app: App) -> Daemon {
        let tmp = TempDir::new("daemon");
        let base = alloc_port_block();
        let storage = tmp.join("recordings");
        let d = Daemon {
            child: None,
            storage,
            config_path: tmp.join("hark.toml"),
            log_path: tmp.join("hark.log"),
            sip_port: 0,
            http_port: 0,
            rtp_min: base,
            rtp_max: base + 39,
            tmp,
            starts: 0,
            env: Vec::new(),
            binary: None,
            probe_ip: "127.0.0.1",
        };
        d.write_config(overrides, &app);
        d
    }

    /// Readiness is probed with OPTIONS from `ip` (for a config whose `sip.trusted` leaves
    /// 127.0.0.1 out).
    pub fn set_probe_ip(&mut self, ip: &'static str) {
        self.probe_ip = ip;
    }

    /// Runs `binary` from `cwd` on the next launches (an installed copy, not the build tree's).
    pub fn set_binary(&mut self, binary: PathBuf, cwd: PathBuf) {
        self.binary = Some((binary, cwd));
    }

    /// An environment variable for the next launches (e.g. `HARK_APP__TWIML`, empty).
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.push((name.to_string(), value.to_string()));
    }

    /// Appends raw TOML to the config file (`[[route]]` tables, which `overrides` cannot say).
    pub fn append_config(&self, toml: &str) {
        let mut text = std::fs::read_to_string(&self.config_path).expect("read config");
        text.push_str(toml);
        std::fs::write(&self.config_path, text).expect("write config");
    }

    /// The test defaults as `section.key` → value. SIP and HTTP on port 0, the public URL that
    /// of the bound HTTP listener.
    pub fn base_settings(&self, app: &App) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("sip.listen".into(), "127.0.0.1:0".into());
        m.insert("rtp.port_min".into(), self.rtp_min.to_string());
        m.insert("rtp.port_max".into(), self.rtp_max.to_string());
        m.insert("http.listen".into(), "127.0.0.1:0".into());
        m.insert("http.public_url".into(), String::new());
        m.insert("account.sid".into(), ACCOUNT_SID.into());
        m.insert("account.auth_token".into(), AUTH_TOKEN.into());
        m.insert("storage.dir".into(), self.storage.display().to_string());
        m.insert("log.level".into(), "info".into());
        match app {
            App::Twiml(t) => {
                m.insert("app.twiml".into(), t.clone());
                m.insert("app.voice_url".into(), String::new());
            }
            App::VoiceUrl { url, method } => {
                m.insert("app.voice_url".into(), url.clone());
                m.insert("app.voice_method".into(), method.to_string());
            }
        }
        m
    }

    fn write_config(&self, overrides: &[(&str, &str)], app: &App) {
        let mut m = self.base_settings(app);
        for (k, v) in overrides {
            m.insert(k.to_string(), v.to_string());
        }
        std::fs::write(&self.config_path, render_toml(&m)).expect("write config");
    }

    /// Spawns `hark serve --config …` and waits until it answers OPTIONS. The first launch
    /// learns its SIP and HTTP ports from the log; later ones bind the same ports (environment
    /// variables over the config file), so URLs handed out before a restart stay valid.
    pub fn launch(&mut self) {
        self.starts += 1;
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open log");
        use std::io::Write;
        let mut log2 = log.try_clone().expect("clone log");
        let _ = writeln!(log2, "===== hark serve start #{} =====", self.starts);
        let (binary, cwd) = self.binary.clone().unwrap_or_else(|| {
            (
                PathBuf::from(env!("CARGO_BIN_EXE_hark")),
                self.tmp.path.clone(),
            )
        });
        let mut cmd = Command::new(binary);
        cmd.arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log);
        for (k, _) in std::env::vars() {
            if k.starts_with("HARK_") {
                cmd.env_remove(k);
            }
        }
        if self.sip_port != 0 {
            cmd.env("HARK_SIP__LISTEN", format!("127.0.0.1:{}", self.sip_port));
            cmd.env("HARK_HTTP__LISTEN", format!("127.0.0.1:{}", self.http_port));
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let child = cmd.spawn().expect("spawn hark serve");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits (≤ 15 s) for the `listening` line of this start, then until the daemon answers
    /// OPTIONS over UDP with 200.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let marker = format!("===== hark serve start #{} =====", self.starts);
        let listening = loop {
            let log = self.log();
            let this_start = log.rsplit_once(&marker).map_or("", |(_, after)| after);
            if let Some(l) = Listening::find(this_start) {
                break l;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("hark serve exited with {status} before listening:\n{log}");
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "hark serve logged no `listening` line within 15 s (is RUST_LOG below \
                     info?):\n{log}"
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.sip_port = listening.sip_udp.port();
        self.http_port = listening.http.port();
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "hark serve exited with {status} before answering OPTIONS:\n{}",
                        self.log()
                    );
                }
            }
            if options_ok_from(self.probe_ip, self.sip_addr()) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "hark serve did not answer OPTIONS on {} within 15 s:\n{}",
                    self.sip_addr(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL the daemon (a crash).
    pub fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again with the same config, dirs and ports.
    pub fn restart(&mut self) {
        self.kill_9();
        self.launch();
    }

    /// The daemon process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Running and answering OPTIONS.
    pub fn assert_alive(&mut self) {
        assert!(self.is_running(), "hark serve died:\n{}", self.log());
        assert!(
            options_ok_from(self.probe_ip, self.sip_addr()),
            "hark serve stopped answering OPTIONS:\n{}",
            self.log()
        );
    }

    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip_port))
    }

    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.sip_port)
    }

    pub fn public_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http_port))
    }

    pub fn recording_url(&self, sid: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}",
            self.public_url()
        )
    }

    pub fn recording_path(&self, sid: &str) -> PathBuf {
        self.storage.join(format!("{sid}.wav"))
    }

    /// `*.wav` files in the storage dir, sorted.
    pub fn recordings(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.storage)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "wav"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill_9();
        if std::thread::panicking() {
            let log = self.log();
            let tail: String = {
                let lines: Vec<&str> = log.lines().collect();
                lines[lines.len().saturating_sub(200)..].join("\n")
            };
            eprintln!(
                "----- hark serve log ({}; last 200 lines) -----\n{tail}\n----- end of log -----",
                self.log_path.display()
            );
        }
    }
}

/// The addresses of `hark serve`'s start-up line
/// `listening sip_udp=… sip_tcp=… http=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    pub sip_udp: SocketAddr,
    pub sip_tcp: SocketAddr,
    pub http: SocketAddr,
}

impl Listening {
    /// The first such line in `log`.
    pub fn find(log: &str) -> Option<Listening> {
        log.lines().find_map(|line| {
            let (_, fields) = line.split_once(" listening ")?;
            let field = |name: &str| -> Option<SocketAddr> {
                fields
                    .split_whitespace()
                    .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))?
                    .parse()
                    .ok()
            };
            Some(Listening {
                sip_udp: field("sip_udp")?,
                sip_tcp: field("sip_tcp")?,
                http: field("http")?,
            })
        })
    }
}

/// Renders `section.key` settings as TOML sections.
pub fn render_toml(m: &BTreeMap<String, String>) -> String {
    let mut sections: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for (k, v) in m {
        let (s, key) = k.split_once('.').expect("key is section.key");
        sections.entry(s).or_default().push((key, v));
    }
    let mut out = String::new();
    for (s, kvs) in sections {
        out.push_str(&format!("[{s}]\n"));
        for (k, v) in kvs {
            // TwiML and URLs are always strings, even when they look numeric.
            let val = if k == "twiml" || k.ends_with("url") || k == "listen" {
                toml_string(v)
            } else {
                toml_value(v)
            };
            out.push_str(&format!("{k} = {val}\n"));
        }
        out.push('\n');
    }
    out
}

/// Runs `hark serve` expecting it to fail; returns (exit code, stderr+stdout). Panics if it is
/// still running after `timeout`.
pub fn serve_expect_exit(
    config: Option<&std::path::Path>,
    env: &[(&str, &str)],
    timeout: Duration,
) -> (Option<i32>, String) {
    let tmp = TempDir::new("cfg");
    let out_path = tmp.join("out.log");
    let out = File::create(&out_path).expect("create out");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hark"));
    cmd.arg("serve");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    for (k, _) in std::env::vars() {
        if k.starts_with("HARK_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied())
        .current_dir(&tmp.path)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone"))
        .stderr(out);
    let mut child = cmd.spawn().expect("spawn hark serve");
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return (
                st.code(),
                std::fs::read_to_string(&out_path).unwrap_or_default(),
            );
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "hark serve kept running for {timeout:?} with a bad config; output:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
