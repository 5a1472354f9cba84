//! Concurrent recorded WebRTC calls against a Hark it starts itself (issue 12 benchmark).
//!
//! ```text
//! cargo run --release -p hark-benches --bin webrtc-load -- --calls 300 --codec opus
//! ```
//!
//! Each call is a headless client of its own: the Voice SDK's signalling (`listen` with an
//! access token, `invite`, heartbeats, `hangup`) over a WebSocket to `/signal`, and a str0m
//! peer (full ICE, DTLS-SRTP) sending 20 ms frames of the speech fixture in real time, Opus or
//! PCMU, pre-encoded once. Hark answers every call with an application that records it.
//! While all calls are up, Hark's CPU time and RSS are read from /proc once a second; the
//! report gives CPU (% of one core) and RSS per call, then checks every recording (count,
//! sample rate, duration). Loopback only; Hark is the child this tool started, stopped by PID.
//!
//! Options: `--calls N` (100), `--codec opus|pcmu` (opus), `--secs S` per call (30),
//! `--ramp R` calls started per second (25), `--hark PATH` (target/release/hark),
//! `--http-port P` (28380), `--out DIR` (a new temp dir; recordings removed unless `--keep`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::{TcpStream, UdpSocket};
use tokio_tungstenite::tungstenite::Message;

const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "webrtc-load-token";
const KEY_SID: &str = "SK0123456789abcdef0123456789abcdef";
const KEY_SECRET: &str = "webrtc-load-secret";
const APP_SID: &str = "AP0123456789abcdef0123456789abcdef";

#[derive(Clone)]
struct Options {
    calls: usize,
    opus: bool,
    secs: u64,
    ramp: u64,
    hark: PathBuf,
    http_port: u16,
    out: PathBuf,
    keep: bool,
}

fn options() -> Result<Options, String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut o = Options {
        calls: 100,
        opus: true,
        secs: 30,
        ramp: 25,
        hark: repo.join("target/release/hark"),
        http_port: 28380,
        out: std::env::temp_dir().join(format!("hark-webrtc-load-{}", std::process::id())),
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--calls" => o.calls = value()?.parse().map_err(|e| format!("--calls: {e}"))?,
            "--codec" => {
                o.opus = match value()?.as_str() {
                    "opus" => true,
                    "pcmu" => false,
                    other => return Err(format!("--codec opus|pcmu, not {other}")),
                }
            }
            "--secs" => o.secs = value()?.parse().map_err(|e| format!("--secs: {e}"))?,
            "--ramp" => o.ramp = value()?.parse().map_err(|e| format!("--ramp: {e}"))?,
            "--hark" => o.hark = value()?.into(),
            "--http-port" => {
                o.http_port = value()?.parse().map_err(|e| format!("--http-port: {e}"))?
            }
            "--out" => o.out = value()?.into(),
            "--keep" => o.keep = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.calls == 0 || o.secs < 10 || o.ramp == 0 {
        return Err("--calls ≥ 1, --secs ≥ 10, --ramp ≥ 1".into());
    }
    Ok(o)
}

/// The speech fixture as 20 ms payloads of the codec, encoded once and shared by every call.
fn payloads(opus: bool) -> Vec<Vec<u8>> {
    let speech = hark_benches::speech();
    if !opus {
        return speech.pcmu.iter().map(|p| p.to_vec()).collect();
    }
    let mut encoder = media_engine::opus::OpusEncoder::new().expect("opus encoder");
    speech
        .pcm
        .iter()
        .map(|frame| {
            let mut out = [0u8; media_engine::opus::MAX_PACKET];
            let n = encoder.encode(frame, &mut out).expect("encode");
            out[..n].to_vec()
        })
        .collect()
}

fn start_hark(o: &Options) -> Result<Child, String> {
    std::fs::create_dir_all(o.out.join("recordings")).map_err(|e| e.to_string())?;
    let config = format!(
        "[sip]\nlisten = \"127.0.0.1:0\"\n[rtp]\nport_min = 30000\nport_max = 39999\nopus = true\n\
         [http]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
         [account]\nsid = \"{ACCOUNT_SID}\"\nauth_token = \"{AUTH_TOKEN}\"\n\
         [storage]\ndir = \"{dir}\"\n[log]\nlevel = \"warn\"\n\
         [[api_key]]\nsid = \"{KEY_SID}\"\nsecret = \"{KEY_SECRET}\"\n\
         [[application]]\nsid = \"{APP_SID}\"\nvoice_url = \"\"\n\
         twiml = '<Response><Record playBeep=\"false\" timeout=\"0\" maxLength=\"3600\"/></Response>'\n",
        port = o.http_port,
        dir = o.out.join("recordings").display(),
    );
    let path = o.out.join("hark.toml");
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    let log = std::fs::File::create(o.out.join("hark.log")).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&o.hark);
    cmd.arg("serve").arg("--config").arg(&path);
    for (k, _) in std::env::vars() {
        if k.starts_with("HARK_") {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    cmd.spawn()
        .map_err(|e| format!("{}: {e}", o.hark.display()))
}

/// `/proc/PID`: CPU seconds (user + system) and RSS in KiB.
fn proc_sample(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // USER_HZ is 100 on Linux.
    Some((ticks as f64 / 100.0, rss))
}

#[derive(Default)]
struct Counters {
    answered: AtomicUsize,
    connected: AtomicUsize,
    failed: AtomicUsize,
    frames_sent: AtomicU64,
    frames_received: AtomicU64,
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("webrtc-load: {e}");
            std::process::exit(2);
        }
    };
    let mut hark = match start_hark(&o) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("webrtc-load: cannot start hark: {e} (cargo build --release -p hark)");
            std::process::exit(2);
        }
    };
    let pid = hark.id();
    let code = run(&o, pid);
    // Only our own child, by PID.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = hark.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = hark.kill();
    if !o.keep {
        let _ = std::fs::remove_dir_all(o.out.join("recordings"));
    }
    std::process::exit(code);
}

fn run(o: &Options, pid: u32) -> i32 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let target: SocketAddr = SocketAddr::from(([127, 0, 0, 1], o.http_port));
    let ready = rt.block_on(async {
        for _ in 0..150 {
            if TcpStream::connect(target).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    if !ready {
        eprintln!(
            "hark did not listen on {target}; see {}",
            o.out.join("hark.log").display()
        );
        return 2;
    }
    std::thread::sleep(Duration::from_secs(2));
    let idle = proc_sample(pid).unwrap_or((0.0, 0));
    let payloads = Arc::new(payloads(o.opus));
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    // All calls are up once the last has started and had two seconds to connect; each ends
    // `secs` after its own start.
    let ramp_secs = o.calls as f64 / o.ramp as f64;
    let steady_from = started + Duration::from_secs_f64(ramp_secs + 3.0);
    let steady_to = started + Duration::from_secs(o.secs) - Duration::from_secs(1);
    let tasks: Vec<_> = (0..o.calls)
        .map(|i| {
            let at = started + Duration::from_secs_f64(i as f64 / o.ramp as f64);
            let (payloads, counters, o2) = (payloads.clone(), counters.clone(), o.clone());
            rt.spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                let end = at + Duration::from_secs(o2.secs);
                if let Err(e) = call(i, target, &o2, &payloads, &counters, end).await {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("call {i}: {e}");
                }
            })
        })
        .collect();
    // Sample while the calls run.
    let mut samples = Vec::new();
    let total = started + Duration::from_secs_f64(ramp_secs) + Duration::from_secs(o.secs + 2);
    while Instant::now() < total {
        std::thread::sleep(Duration::from_secs(1));
        if let Some(s) = proc_sample(pid) {
            samples.push((Instant::now(), s));
        }
    }
    rt.block_on(async {
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
    });
    let steady: Vec<_> = samples
        .iter()
        .filter(|(t, _)| *t >= steady_from && *t <= steady_to)
        .collect();
    let n = o.calls as f64;
    let codec = if o.opus { "opus" } else { "pcmu" };
    println!(
        "webrtc-load: {} calls, {codec}, {} s each, ramp {}/s",
        o.calls, o.secs, o.ramp
    );
    println!(
        "  answered {}  media connected {}  failed {}  frames sent {}  frames received {}",
        counters.answered.load(Ordering::Relaxed),
        counters.connected.load(Ordering::Relaxed),
        counters.failed.load(Ordering::Relaxed),
        counters.frames_sent.load(Ordering::Relaxed),
        counters.frames_received.load(Ordering::Relaxed),
    );
    let mut ok = counters.answered.load(Ordering::Relaxed) == o.calls
        && counters.connected.load(Ordering::Relaxed) == o.calls;
    match (steady.first(), steady.last()) {
        (Some((t0, (c0, _))), Some((t1, (c1, rss)))) if t1 > t0 => {
            let cpu = (c1 - c0) / t1.duration_since(*t0).as_secs_f64() * 100.0;
            let rss_mib = *rss as f64 / 1024.0;
            let per_call_kib = rss.saturating_sub(idle.1) as f64 / n;
            println!(
                "  hark, all {} calls up ({:.0} s window): CPU {cpu:.1} % of one core ({:.3} % per call), RSS {rss_mib:.1} MiB (idle {:.1} MiB, {per_call_kib:.0} KiB per call)",
                o.calls,
                t1.duration_since(*t0).as_secs_f64(),
                cpu / n,
                idle.1 as f64 / 1024.0,
            );
        }
        _ => {
            println!("  no steady window: --secs must exceed the ramp by a few seconds");
            ok = false;
        }
    }
    ok &= check_recordings(o);
    println!("  result: {}", if ok { "PASS" } else { "FAIL" });
    if ok {
        0
    } else {
        1
    }
}

/// Every call left one recording at the codec's rate, about as long as the call.
fn check_recordings(o: &Options) -> bool {
    // Finalization runs after each hang-up; give the last ones a moment.
    std::thread::sleep(Duration::from_secs(2));
    let dir = o.out.join("recordings");
    let mut wavs: Vec<(u32, f64)> = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "wav") {
            if let Ok(mut f) = std::fs::File::open(&path) {
                if let Ok(h) = record_engine::wav::read_header(&mut f) {
                    let bytes = h.data_len.unwrap_or(0) as f64;
                    let secs = bytes / f64::from(h.block_align.max(1)) / f64::from(h.sample_rate);
                    wavs.push((h.sample_rate, secs));
                }
            }
        }
    }
    let rate = if o.opus { 16_000 } else { 8_000 };
    let right_rate = wavs.iter().filter(|(r, _)| *r == rate).count();
    let expected = o.secs as f64;
    let full = wavs
        .iter()
        .filter(|(_, s)| (expected - 3.0..=expected + 1.0).contains(s))
        .count();
    println!(
        "  recordings: {} WAVs, {right_rate} at {rate} Hz, {full} of {:.0}±2 s",
        wavs.len(),
        expected - 1.0
    );
    wavs.len() == o.calls && right_rate == o.calls && full == o.calls
}

fn client_rtc(opus: bool, local: SocketAddr) -> Rtc {
    let mut config = Rtc::builder().clear_codecs();
    let cc = config.codec_config();
    if opus {
        cc.enable_opus(true, false);
    } else {
        cc.enable_pcmu(true, false);
    }
    let mut rtc = config.build(Instant::now());
    if let Ok(c) = Candidate::host(local, "udp") {
        rtc.add_local_candidate(c);
    }
    rtc
}

fn offer(rtc: &mut Rtc) -> Result<(Mid, String, SdpPendingOffer), String> {
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().ok_or("no offer")?;
    Ok((mid, offer.to_sdp_string(), pending))
}

fn frame(kind: &str, payload: serde_json::Value) -> Message {
    let text = serde_json::json!({"type": kind, "version": "1.6", "payload": payload}).to_string();
    Message::Text(text.into())
}

/// One call: signalling, media for `secs`, hang-up.
async fn call(
    i: usize,
    target: SocketAddr,
    o: &Options,
    payloads: &[Vec<u8>],
    counters: &Counters,
    end: Instant,
) -> Result<(), String> {
    let now_unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let voice = client_signal::VoiceGrant {
        incoming_allow: false,
        outgoing: Some(client_signal::OutgoingGrant {
            application_sid: APP_SID.into(),
            params: Vec::new(),
        }),
    };
    let token = client_signal::mint(
        KEY_SID,
        KEY_SECRET,
        ACCOUNT_SID,
        &format!("load{i}"),
        &voice,
        now_unix,
        3600,
    );
    let tcp = TcpStream::connect(target)
        .await
        .map_err(|e| e.to_string())?;
    let url = format!("ws://{target}/signal");
    let (mut ws, _) = tokio_tungstenite::client_async(url, tcp)
        .await
        .map_err(|e| format!("websocket: {e}"))?;
    ws.send(frame(
        "listen",
        serde_json::json!({"token": token, "browserinfo": {}, "reconnectTimeout": 0}),
    ))
    .await
    .map_err(|e| e.to_string())?;
    let sock = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let local = sock.local_addr().map_err(|e| e.to_string())?;
    let mut rtc = client_rtc(o.opus, local);
    let (mid, offer_sdp, pending) = offer(&mut rtc)?;
    let temp = format!("TJS{i:08x}-load");
    let mut pending = Some(pending);
    let mut call_sid: Option<String> = None;
    let mut pt = None;
    let (clock, ticks) = if o.opus {
        (Frequency::FORTY_EIGHT_KHZ, 960u64)
    } else {
        (Frequency::EIGHT_KHZ, 160u64)
    };
    let mut ts: u64 = 0;
    let mut next_frame = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut connected = false;
    let mut buf = vec![0u8; 2048];
    let mut invited = false;
    let hard_stop = end + Duration::from_secs(10);
    loop {
        let timeout = loop {
            match rtc.poll_output().map_err(|e| e.to_string())? {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    let _ = sock.send_to(&t.contents, t.destination).await;
                }
                Output::Event(Event::Connected) => {
                    connected = true;
                    counters.connected.fetch_add(1, Ordering::Relaxed);
                }
                Output::Event(Event::MediaData(_)) => {
                    counters.frames_received.fetch_add(1, Ordering::Relaxed);
                }
                Output::Event(_) => {}
            }
        };
        if Instant::now() >= hard_stop {
            return Err("no hang-up answer".into());
        }
        let wake = timeout.min(Instant::now() + Duration::from_millis(50));
        tokio::select! {
            received = sock.recv_from(&mut buf) => {
                if let Ok((n, from)) = received {
                    if let Ok(r) = Receive::new(Protocol::Udp, from, local, &buf[..n]) {
                        let _ = rtc.handle_input(Input::Receive(Instant::now(), r));
                    }
                }
            }
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let text = text.as_str();
                    if text.trim().is_empty() {
                        // The server's heartbeat: echoing it is the client's liveness.
                        let _ = ws.send(Message::Text("\n".into())).await;
                        continue;
                    }
                    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
                    match v["type"].as_str().unwrap_or("") {
                        "connected" if !invited => {
                            invited = true;
                            ws.send(frame("invite", serde_json::json!({
                                "callsid": temp, "sdp": offer_sdp,
                                "twilio": {"params": format!("To=load{i}")}
                            }))).await.map_err(|e| e.to_string())?;
                        }
                        "answer" => {
                            call_sid = v["payload"]["callsid"].as_str().map(str::to_string);
                            let sdp = v["payload"]["sdp"].as_str().ok_or("answer without sdp")?;
                            let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| e.to_string())?;
                            if let Some(p) = pending.take() {
                                rtc.sdp_api().accept_answer(p, answer).map_err(|e| e.to_string())?;
                            }
                            let want = if o.opus { Codec::Opus } else { Codec::PCMU };
                            pt = rtc.writer(mid).and_then(|w| {
                                w.payload_params().find(|p| p.spec().codec == want).map(|p| p.pt())
                            });
                            counters.answered.fetch_add(1, Ordering::Relaxed);
                        }
                        "hangup" => {
                            return if Instant::now() + Duration::from_secs(1) >= end {
                                Ok(())
                            } else {
                                Err(format!("hung up early: {text}"))
                            };
                        }
                        "error" => return Err(format!("signalling error: {text}")),
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("websocket: {e}")),
                None => return Err("websocket closed".into()),
            },
            _ = tick.tick() => {
                if Instant::now() >= end {
                    if let Some(sid) = call_sid.take() {
                        ws.send(frame("hangup", serde_json::json!({"callsid": sid}))).await.map_err(|e| e.to_string())?;
                        // Give the hang-up a moment to leave, then end the media.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        let _ = ws.close(None).await;
                        return Ok(());
                    }
                }
                if let (true, Some(pt)) = (connected, pt) {
                    let payload = &payloads[next_frame % payloads.len()];
                    next_frame += 1;
                    let now = Instant::now();
                    if let Some(w) = rtc.writer(mid) {
                        if w.write(pt, now, MediaTime::new(ts, clock), payload.as_slice()).is_ok() {
                            counters.frames_sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    ts += ticks;
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                let _ = rtc.handle_input(Input::Timeout(Instant::now()));
            }
        }
    }
}
