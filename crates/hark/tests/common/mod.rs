//! End-to-end harness: drives the `hark` binary the way an operator would (config file, env,
//! SIP over UDP/TCP, RTP, webhooks) and checks what comes out (webhooks, WAV files, SIP).
//!
//! Every test file does `mod common;` and uses only what it needs, hence the `dead_code` allow.
#![allow(dead_code, unused_imports)]

pub mod audio;
pub mod browser;
pub mod daemon;
pub mod procs;
pub mod rtp;
pub mod server;
pub mod sip;
pub mod tls;
pub mod webhook;

pub use audio::*;
pub use daemon::{App, Daemon};
pub use procs::{require_sipp, HarkCall, Output, Running, Sipp};
pub use rtp::{RtpPlan, RtpSender};
pub use server::LocalServer;
pub use sip::{options_ok, options_ok_from, RawUac, SipMsg};
pub use webhook::{Recorded, Reply, WebhookServer};

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// AccountSid every test daemon runs with.
pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
/// Key of X-Twilio-Signature; the webhook server verifies with it independently.
pub const AUTH_TOKEN: &str = "e2e-auth-token-3f9a";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Ports are handed out in blocks of this size.
pub const PORT_BLOCK: u16 = 64;

/// Returns the first port of a block of `PORT_BLOCK` ports in 30000–60000 that could all be bound
/// (UDP and TCP) a moment ago. Blocks avoid the kernel's ephemeral range when possible, so a
/// client socket bound to port 0 elsewhere does not land in a daemon's RTP range. Start points
/// depend on the PID and a counter: parallel test threads and test processes take different
/// blocks, and probing skips blocks someone else holds.
pub fn alloc_port_block() -> u16 {
    let (eph_lo, eph_hi) = ephemeral_range();
    let all: Vec<u16> = (0..(30000 / PORT_BLOCK))
        .map(|i| 30000 + i * PORT_BLOCK)
        .collect();
    let outside: Vec<u16> = all
        .iter()
        .copied()
        .filter(|&b| b + PORT_BLOCK - 1 < eph_lo || b > eph_hi)
        .collect();
    let blocks = if outside.len() >= 8 { outside } else { all };
    let pid = std::process::id();
    for _ in 0..(blocks.len() * 2) {
        let k = COUNTER.fetch_add(1, Ordering::SeqCst);
        let idx = (pid.wrapping_mul(7919).wrapping_add(k.wrapping_mul(13))) as usize % blocks.len();
        let base = blocks[idx];
        if (base..base + PORT_BLOCK).all(port_free) {
            return base;
        }
    }
    panic!("no free block of {PORT_BLOCK} ports found in 30000-60000");
}

fn port_free(p: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", p)).is_ok() && TcpListener::bind(("127.0.0.1", p)).is_ok()
}

fn ephemeral_range() -> (u16, u16) {
    let text =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .filter_map(|v| v.parse::<u16>().ok());
    match (it.next(), it.next()) {
        (Some(lo), Some(hi)) => (lo, hi),
        _ => (32768, 60999),
    }
}

/// A per-test scratch directory; kept (and its path printed) when the test fails.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("hark-e2e-{}-{}-{}", name, std::process::id(), n));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("(test files kept in {})", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Polls `f` every 50 ms until it returns Some or `timeout` passes.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Directory holding the test fixtures (speech WAV).
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// The repository's `sipp-scenarios/` folder.
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sipp-scenarios")
}

/// The `name=value` of a `Set-Cookie` header: what a browser sends back in `Cookie`.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Checks `s` looks like `<prefix>` + 32 hex digits (SPEC §0).
pub fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks an RFC 2822 GMT timestamp like `Fri, 14 Oct 2016 21:56:34 +0000`.
pub fn is_rfc2822(s: &str) -> bool {
    let parts: Vec<&str> = s.split(' ').collect();
    const DAYS: [&str; 7] = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    parts.len() == 6
        && DAYS.contains(&parts[0])
        && parts[1].parse::<u8>().is_ok_and(|d| (1..=31).contains(&d))
        && MONTHS.contains(&parts[2])
        && parts[3].len() == 4
        && parts[3].parse::<u16>().is_ok()
        && parts[4].len() == 8
        && parts[4]
            .split(':')
            .all(|x| x.len() == 2 && x.parse::<u8>().is_ok())
        && (parts[5] == "+0000" || parts[5] == "GMT")
}

/// Streams `ulaw` from `from` to Hark's `to`, then an RFC 4733 '#', then silence until Hark's
/// BYE (≤ 20 s); panics with the daemon log if none comes.
pub fn talk_then_pound(
    d: &Daemon,
    uac: &RawUac,
    from: &UdpSocket,
    to: std::net::SocketAddr,
    ulaw: &[u8],
) {
    talk_then_pound_with(d, uac, from, to, ulaw, None);
}

/// [`talk_then_pound`] with every RTP packet passed through `transform` (SRTP's protect).
pub fn talk_then_pound_with(
    d: &Daemon,
    uac: &RawUac,
    from: &UdpSocket,
    to: std::net::SocketAddr,
    ulaw: &[u8],
    transform: Option<rtp::PacketTransform>,
) {
    let mut rtp = RtpSender::spawn_with(
        from,
        to,
        vec![
            RtpPlan::Audio(ulaw.to_vec()),
            RtpPlan::Dtmf(rtp::dtmf_event('#')),
        ],
        true,
        transform,
    );
    let bye = uac.wait_request("BYE", Duration::from_secs(20));
    rtp.stop();
    assert!(bye.is_some(), "Hark hangs up after '#':\n{}", d.log());
}

/// Twilio-style duration: round half up of the kept seconds.
pub fn rounded_seconds(samples: usize) -> u64 {
    ((samples as u64) * 2 + 8000) / 16000
}

/// What `check_recording` verified.
pub struct RecordingCheck {
    pub sid: String,
    pub path: PathBuf,
    pub samples: Vec<i16>,
    /// Where the recording starts in the sent audio (samples).
    pub offset: usize,
}

impl RecordingCheck {
    /// One past the last sample of the recording, in the sent audio.
    pub fn end(&self) -> usize {
        self.offset + self.samples.len()
    }

    /// End in the sent audio when `inserted` zero samples were added along the way.
    pub fn end_minus(&self, inserted: usize) -> usize {
        self.end() - inserted
    }
}

/// Checks an action request (or completed status callback) against the file on disk: SIDs, URL
/// shape, `RecordingDuration` = round(kept seconds), hound-readable 8 kHz PCM16 mono, samples a
/// sample-exact contiguous part of `sent`; with `fetched`, that the handler got 200 audio/x-wav
/// with the file's bytes (without and with `.wav`).
/// Places one call with the built-in caller playing the µ-law WAV `wav` and pressing '#'
/// 100 ms after it ends; returns the `/done` action request (the document's `<Record>` action
/// must be `wh`'s `/done`).
pub fn call_then_pound(d: &Daemon, wh: &WebhookServer, wav: &Path) -> Recorded {
    let samples = read_ulaw_wav(wav).len();
    HarkCall::new(&d.uri("rec"))
        .play(wav)
        .dtmf("#", secs(samples) + 0.1)
        .run(&d.tmp, Duration::from_secs(40))
        .assert_success();
    wh.wait_for("/done", 1, Duration::from_secs(5)).remove(0)
}

pub fn check_recording(d: &Daemon, req: &Recorded, sent: &[i16], fetched: bool) -> RecordingCheck {
    let (rec, inserted) = check_recording_tolerant(d, req, sent, fetched, 0);
    assert_eq!(inserted, 0);
    rec
}

/// `check_recording`, tolerating one run of ≤ `max_inserted` zero samples inserted into the
/// exact copy; returns how many there were.
pub fn check_recording_tolerant(
    d: &Daemon,
    req: &Recorded,
    sent: &[i16],
    fetched: bool,
    max_inserted: usize,
) -> (RecordingCheck, usize) {
    let sid = req.param("RecordingSid").to_string();
    assert!(is_sid(&sid, "RE"), "RecordingSid {sid}");
    assert_eq!(req.param("AccountSid"), ACCOUNT_SID);
    assert!(is_sid(req.param("CallSid"), "CA"), "CallSid");
    assert_eq!(
        req.param("RecordingUrl"),
        d.recording_url(&sid),
        "RecordingUrl"
    );
    let path = d.recording_path(&sid);
    assert!(
        path.exists(),
        "{} missing; storage has {:?}",
        path.display(),
        d.recordings()
    );
    let samples = read_recording(&path);
    assert_eq!(
        req.param("RecordingDuration"),
        rounded_seconds(samples.len()).to_string(),
        "RecordingDuration vs the file's {} samples",
        samples.len()
    );
    let (offset, inserted) = find_segment_with_inserted_silence(&samples, sent, max_inserted)
        .unwrap_or_else(|e| panic!("{}: not the audio sent: {e}", path.display()));
    if fetched {
        let f = req
            .fetched
            .as_ref()
            .expect("the handler fetched RecordingUrl while handling the request");
        let file = std::fs::read(&path).expect("read recording");
        assert_eq!(f.status, 200, "GET RecordingUrl before answering: status");
        assert_eq!(
            f.content_type, "audio/x-wav",
            "GET RecordingUrl: content type"
        );
        assert_eq!(f.body.len(), file.len(), "GET RecordingUrl: length vs file");
        assert!(
            f.body == file,
            "GET RecordingUrl: bytes differ from the file"
        );
        assert_eq!(f.wav_status, 200, "GET RecordingUrl.wav: status");
        assert_eq!(
            f.wav_content_type, "audio/x-wav",
            "GET RecordingUrl.wav: type"
        );
        assert_eq!(f.wav_len, file.len(), "GET RecordingUrl.wav: length");
    }
    (
        RecordingCheck {
            sid,
            path,
            samples,
            offset,
        },
        inserted,
    )
}

/// Asserts |a − b| ≤ tol (in samples), printing seconds.
pub fn assert_near(what: &str, got: usize, want: usize, tol: usize) {
    let diff = got.abs_diff(want);
    assert!(
        diff <= tol,
        "{what}: got {:.3} s, want {:.3} s ± {:.3} s",
        secs(got),
        secs(want),
        secs(tol)
    );
}

/// The standard voice params (SPEC §1) on a TwiML fetch.
pub fn check_standard_params(req: &Recorded, call_status: &str) {
    assert!(is_sid(req.param("CallSid"), "CA"), "CallSid");
    assert_eq!(req.param("AccountSid"), ACCOUNT_SID);
    assert_eq!(req.param("CallStatus"), call_status, "CallStatus");
    assert_eq!(req.param("ApiVersion"), "2010-04-01");
    assert_eq!(req.param("Direction"), "inbound");
    assert!(!req.param("From").is_empty(), "From");
    assert!(!req.param("To").is_empty(), "To");
    assert_eq!(req.param("Caller"), req.param("From"), "Caller = From");
    assert_eq!(req.param("Called"), req.param("To"), "Called = To");
}

/// The offline transcription engine's python: what `hark serve` uses when transcription.python
/// is empty.
pub fn asr_python() -> PathBuf {
    transcribe::offline::default_python()
}

/// Fails (never skips) when scripts/install-asr.sh has not installed the engine.
pub fn assert_engine_installed() {
    let py = asr_python();
    let ok = std::process::Command::new(&py)
        .args(["-c", "import faster_whisper, pocketsphinx"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import faster_whisper: run scripts/install-asr.sh (scripts/setup.sh does)",
        py.display()
    );
}

/// `GET path` over plain HTTP/1.1 on `addr` (no auth): status and body; `None` when the
/// connection fails or no answer comes within 5 s.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, body.to_string()))
}

/// The value of the sample `series` (a name with its labels, as in the text) in a Prometheus
/// exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.rsplit_once(' ').filter(|(s, _)| *s == series))
        .and_then(|(_, v)| v.parse().ok())
}
