//! `hark call`: a built-in test caller.
//!
//! Calls a SIP URI, streams a WAV file as 20 ms G.711 RTP, optionally sends DTMF (RFC 4733
//! events or SIP INFO) and hangs up, and can save what the server sent back. Drives the
//! sans-IO [`sip_core::uac::Uac`] with tokio; every wait is bounded by `--timeout`.
//!
//! DTMF as RFC 4733: per key, 8 event packets 20 ms apart (durations 160..1280), then 3 end
//! packets (E=1, duration 1280, own sequence numbers), then 100 ms of audio before the next
//! key. The events replace the audio packets, but the audio clock and the file position keep
//! running (a phone's microphone does not stop while a key is held), so the first audio packet
//! after an event has timestamp = event timestamp + 1760 and carries the marker bit (a new
//! talkspurt after a gap in the audio stream, as Asterisk does).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use media_engine::sender::{RtpSender, PACKET_BYTES};
use media_engine::{g711, rtp, Codec, FRAME_SAMPLES, SAMPLE_RATE};
use sip_core::message::uri_host_port;
use sip_core::sdp::{self, AudioCodec, Negotiated};
use sip_core::uac::{Uac, UacConfig, UacEndReason, UacEvent, UacOutput};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::time::{sleep_until, Instant};

const TICK: Duration = Duration::from_millis(20);
/// Event packets before the end packets: 8 × 20 ms = a 160 ms tone.
const TONE_TICKS: u64 = 8;
const END_PACKETS: u64 = 3;
const EVENT_TICKS: u64 = TONE_TICKS + END_PACKETS;
/// Event plus 100 ms of audio before the next key.
const KEY_TICKS: u64 = EVENT_TICKS + 5;
/// SIP INFO keys: 160 ms tone + 100 ms gap.
const INFO_TICKS: u64 = 13;
const INFO_DURATION_MS: u32 = 160;
const MAX_WAV_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DtmfMode {
    /// RFC 4733 (formerly RFC 2833) telephone-event packets in the RTP stream.
    Rfc2833,
    /// SIP INFO `application/dtmf-relay`.
    Info,
}

#[derive(clap::Args, Debug, Clone)]
pub struct CallArgs {
    /// Target, e.g. `sip:record@127.0.0.1:5060` (port defaults to 5060).
    pub uri: String,
    /// WAV to stream: 8 kHz mono, 16-bit PCM, µ-law or A-law.
    #[arg(long)]
    pub play: PathBuf,
    /// Keys to press (0-9 * # A-D).
    #[arg(long)]
    pub dtmf: Option<String>,
    /// Seconds after answer for the first key (default: when the file ends).
    #[arg(long, requires = "dtmf")]
    pub dtmf_at: Option<f64>,
    #[arg(long, value_enum, default_value_t = DtmfMode::Rfc2833)]
    pub dtmf_mode: DtmfMode,
    /// Send BYE this many seconds after answer (default: wait for the server's BYE).
    #[arg(long)]
    pub hangup_after: Option<f64>,
    /// Local address for SIP and RTP (ports are ephemeral).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Write the audio received from the server as an 8 kHz 16-bit WAV.
    #[arg(long)]
    pub save_received: Option<PathBuf>,
    /// Hard bound on the whole call, in seconds.
    #[arg(long, default_value_t = 300.0)]
    pub timeout: f64,
}

#[derive(Debug, Error)]
pub enum CallerError {
    #[error("--{name} {value:?}: {reason}")]
    BadArg { name: &'static str, value: String, reason: &'static str },
    #[error("target URI {uri:?}: {reason}")]
    BadUri { uri: String, reason: String },
    #[error("cannot read {}: {source}", path.display())]
    ReadWav { path: PathBuf, source: io::Error },
    #[error("{} is not a usable WAV file: {reason}", path.display())]
    BadWav { path: PathBuf, reason: String },
    #[error("{} is {found}; hark call needs 8 kHz mono 16-bit PCM, µ-law or A-law (it does not resample)", path.display())]
    UnsupportedWav { path: PathBuf, found: String },
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("call rejected: {status} {reason}")]
    Rejected { status: u16, reason: String },
    #[error("call answered but unusable: {0}")]
    BadAnswer(String),
    #[error("timed out after {secs} s (--timeout) {stage}")]
    Timeout { secs: f64, stage: &'static str },
    #[error("cannot write --save-received {}: {source}", path.display())]
    SaveReceived { path: PathBuf, source: hound::Error },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> CallerError {
    let context = context.into();
    move |source| CallerError::Io { context, source }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    Local,
    Remote,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReport {
    /// Final status of the INVITE.
    pub status: u16,
    /// RTP packets sent, telephone-events included.
    pub packets_sent: u64,
    pub packets_received: u64,
    pub dtmf_sent: u32,
    pub ended_by: EndedBy,
    /// From answer to the end of the call.
    pub duration: Duration,
}

impl fmt::Display for CallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by = match self.ended_by {
            EndedBy::Local => "us",
            EndedBy::Remote => "the server",
        };
        write!(
            f,
            "call answered {} and ended by {by} after {:.2} s: {} RTP packets sent, {} received, {} DTMF keys sent",
            self.status,
            self.duration.as_secs_f64(),
            self.packets_sent,
            self.packets_received,
            self.dtmf_sent
        )
    }
}

/// Validated arguments.
struct Plan {
    keys: Vec<char>,
    dtmf_at: Option<Duration>,
    hangup_after: Option<Duration>,
    timeout: Duration,
}

fn seconds(name: &'static str, value: f64) -> Result<Duration, CallerError> {
    Duration::try_from_secs_f64(value).map_err(|_| CallerError::BadArg {
        name,
        value: value.to_string(),
        reason: "must be a non-negative number of seconds",
    })
}

impl Plan {
    fn new(args: &CallArgs) -> Result<Plan, CallerError> {
        let keys: Vec<char> = args.dtmf.as_deref().unwrap_or("").chars().map(|c| c.to_ascii_uppercase()).collect();
        if keys.iter().any(|c| !matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')) {
            let value = args.dtmf.clone().unwrap_or_default();
            return Err(CallerError::BadArg { name: "dtmf", value, reason: "keys must be 0-9, *, #, A-D" });
        }
        let timeout = seconds("timeout", args.timeout)?;
        if timeout.is_zero() {
            let value = args.timeout.to_string();
            return Err(CallerError::BadArg { name: "timeout", value, reason: "must be more than 0" });
        }
        Ok(Plan {
            keys,
            dtmf_at: args.dtmf_at.map(|s| seconds("dtmf-at", s)).transpose()?,
            hangup_after: args.hangup_after.map(|s| seconds("hangup-after", s)).transpose()?,
            timeout,
        })
    }
}

/// Reads an 8 kHz mono WAV as linear PCM.
pub async fn load_wav(path: &Path) -> Result<Vec<i16>, CallerError> {
    let read_err = |source| CallerError::ReadWav { path: path.to_path_buf(), source };
    let len = tokio::fs::metadata(path).await.map_err(read_err)?.len();
    if len > MAX_WAV_BYTES {
        let reason = format!("{len} bytes is more than the {MAX_WAV_BYTES}-byte limit");
        return Err(CallerError::BadWav { path: path.to_path_buf(), reason });
    }
    let bytes = tokio::fs::read(path).await.map_err(read_err)?;
    parse_wav(path, &bytes)
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// RIFF/WAVE by hand: hound cannot read G.711 (format tags 6 and 7).
fn parse_wav(path: &Path, bytes: &[u8]) -> Result<Vec<i16>, CallerError> {
    let bad = |reason: &str| CallerError::BadWav { path: path.to_path_buf(), reason: reason.to_string() };
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(bad("no RIFF/WAVE header"));
    }
    let (mut fmt, mut data) = (None, None);
    let mut rest = bytes.get(12..).unwrap_or_default();
    while let (Some(id), Some(size)) = (rest.get(0..4), le32(rest, 4)) {
        // Streaming writers leave sizes at 0xFFFFFFFF: clamp to what is there.
        let end = 8usize.saturating_add(size as usize).min(rest.len());
        let body = rest.get(8..end).unwrap_or_default();
        match id {
            b"fmt " => fmt = Some(body),
            b"data" => data = Some(body),
            _ => {}
        }
        let next = end.saturating_add(size as usize & 1);
        rest = rest.get(next..).unwrap_or_default();
    }
    let fmt = fmt.ok_or_else(|| bad("no fmt chunk"))?;
    let data = data.ok_or_else(|| bad("no data chunk"))?;
    let (Some(mut tag), Some(channels), Some(rate), Some(bits)) = (le16(fmt, 0), le16(fmt, 2), le32(fmt, 4), le16(fmt, 14))
    else {
        return Err(bad("fmt chunk shorter than 16 bytes"));
    };
    if tag == 0xFFFE {
        // WAVE_FORMAT_EXTENSIBLE: the real tag opens the SubFormat GUID.
        tag = le16(fmt, 24).ok_or_else(|| bad("extensible fmt chunk shorter than 40 bytes"))?;
    }
    let codec = match (tag, bits) {
        (1, 16) => None,
        (7, 8) => Some(Codec::Pcmu),
        (6, 8) => Some(Codec::Pcma),
        _ => None,
    };
    let supported = (tag == 1 && bits == 16) || codec.is_some();
    if !supported || channels != 1 || rate != SAMPLE_RATE {
        let name = match tag {
            1 => "PCM".to_string(),
            3 => "IEEE float".to_string(),
            6 => "A-law".to_string(),
            7 => "µ-law".to_string(),
            t => format!("format tag {t:#06x}"),
        };
        let found = format!("{name} {bits}-bit, {rate} Hz, {channels} channel(s)");
        return Err(CallerError::UnsupportedWav { path: path.to_path_buf(), found });
    }
    Ok(match codec {
        None => data.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect(),
        Some(codec) => {
            let mut pcm = vec![0i16; data.len()];
            g711::decode(codec, data, &mut pcm);
            pcm
        }
    })
}

/// Host and port (default 5060) of a `sip:` URI.
fn parse_target(uri: &str) -> Result<(String, u16), CallerError> {
    let bad = |reason: &str| CallerError::BadUri { uri: uri.to_string(), reason: reason.to_string() };
    let scheme = uri.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    if scheme.as_deref() != Some("sip") {
        return Err(bad("only sip: URIs are supported (UDP)"));
    }
    let (host, port) = uri_host_port(uri).ok_or_else(|| bad("no host[:port]"))?;
    Ok((host.to_string(), port.unwrap_or(5060)))
}

async fn resolve(uri: &str, host: &str, port: u16, bind: IpAddr) -> Result<SocketAddr, CallerError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| CallerError::BadUri { uri: uri.to_string(), reason: format!("cannot resolve {host}: {e}") })?
        .collect();
    let same_family = addrs.iter().find(|a| a.is_ipv4() == bind.is_ipv4());
    same_family.or(addrs.first()).copied().ok_or_else(|| CallerError::BadUri {
        uri: uri.to_string(),
        reason: format!("{host} has no address"),
    })
}

/// Outbound RTP: the file, then silence, with DTMF events in place of audio.
struct MediaOut {
    sender: RtpSender,
    remote: SocketAddr,
    event_pt: Option<u8>,
    start: Instant,
    /// Index of the next 20 ms tick; tick n is due at start + n*20 ms.
    tick: u64,
    dtmf_tick: u64,
    info: bool,
    pkt: [u8; PACKET_BYTES],
    ev: [u8; 16],
}

/// What one tick produced.
enum Tick<'a> {
    Rtp { packet: &'a [u8], key_started: bool },
    /// Audio plus a key to send by SIP INFO.
    RtpAndInfo { packet: &'a [u8], key: char },
}

impl MediaOut {
    fn due(&self) -> Instant {
        let ticks = u32::try_from(self.tick).unwrap_or(u32::MAX);
        self.start + TICK * ticks
    }

    fn next(&mut self, audio: &[i16], keys: &[char]) -> Tick<'_> {
        let n = self.tick;
        self.tick += 1;
        let rel = n.checked_sub(self.dtmf_tick);
        if let (Some(rel), Some(pt), false) = (rel, self.event_pt, self.info) {
            let key = usize::try_from(rel / KEY_TICKS).ok().and_then(|i| keys.get(i));
            let phase = rel % KEY_TICKS;
            if let (Some(&key), true) = (key, phase < EVENT_TICKS) {
                let end = phase >= TONE_TICKS;
                let duration = (160 * (phase + 1).min(TONE_TICKS)) as u16;
                let len = self.sender.event_packet(pt, key, phase == 0, end, duration, &mut self.ev);
                if phase == EVENT_TICKS - 1 {
                    self.sender.skip((EVENT_TICKS as u32) * FRAME_SAMPLES as u32);
                }
                return Tick::Rtp { packet: self.ev.get(..len).unwrap_or_default(), key_started: phase == 0 };
            }
        }
        let pos = usize::try_from(n).unwrap_or(usize::MAX).saturating_mul(FRAME_SAMPLES);
        let frame = audio.get(pos..).map(|a| a.get(..FRAME_SAMPLES).unwrap_or(a)).unwrap_or_default();
        let len = self.sender.packetize(frame, &mut self.pkt);
        let packet = self.pkt.get(..len).unwrap_or_default();
        match rel {
            Some(rel) if self.info && rel % INFO_TICKS == 0 => {
                match usize::try_from(rel / INFO_TICKS).ok().and_then(|i| keys.get(i)) {
                    Some(&key) => Tick::RtpAndInfo { packet, key },
                    None => Tick::Rtp { packet, key_started: false },
                }
            }
            _ => Tick::Rtp { packet, key_started: false },
        }
    }
}

/// Inbound audio on an honest timeline: positions from RTP timestamps, gaps left as silence.
struct Received {
    codec: Option<(Codec, u8)>,
    keep: bool,
    samples: Vec<i16>,
    /// (SSRC, first timestamp, timeline offset of that timestamp).
    base: Option<(u32, u32, usize)>,
    max_samples: usize,
    packets: u64,
}

impl Received {
    fn on_datagram(&mut self, datagram: &[u8]) {
        let Ok(p) = rtp::parse(datagram) else { return };
        self.packets += 1;
        let Some((codec, pt)) = self.codec.filter(|(_, pt)| *pt == p.payload_type) else { return };
        if !self.keep || p.payload.is_empty() {
            return;
        }
        let _ = pt;
        let (ssrc, first_ts, offset) = match self.base {
            Some(b) if b.0 == p.ssrc => b,
            // A new source continues at the end of what we have.
            _ => *self.base.insert((p.ssrc, p.timestamp, self.samples.len())),
        };
        let delta = p.timestamp.wrapping_sub(first_ts);
        if delta > i32::MAX as u32 {
            return; // older than the source's first packet
        }
        let pos = offset.saturating_add(delta as usize);
        let end = pos.saturating_add(p.payload.len());
        if end > self.max_samples {
            return;
        }
        if end > self.samples.len() {
            self.samples.resize(end, 0);
        }
        if let Some(out) = self.samples.get_mut(pos..end) {
            g711::decode(codec, p.payload, out);
        }
    }
}

fn engine_codec(c: AudioCodec) -> Codec {
    match c {
        AudioCodec::Pcmu => Codec::Pcmu,
        AudioCodec::Pcma => Codec::Pcma,
    }
}

async fn at(t: Option<Instant>) {
    match t {
        Some(t) => sleep_until(t).await,
        None => std::future::pending().await,
    }
}

enum Wake {
    Limit,
    Sip(io::Result<(usize, SocketAddr)>),
    SipTimer,
    Hangup,
    Tick,
    Rtp(io::Result<(usize, SocketAddr)>),
}

/// Places the call and returns when it has ended, either side hanging up.
pub async fn run(args: CallArgs) -> Result<CallReport, CallerError> {
    let plan = Plan::new(&args)?;
    let limit = Instant::now() + plan.timeout;
    let secs = plan.timeout.as_secs_f64();
    let audio = load_wav(&args.play).await?;
    let (host, port) = parse_target(&args.uri)?;
    let remote = tokio::time::timeout_at(limit, resolve(&args.uri, &host, port, args.bind))
        .await
        .map_err(|_| CallerError::Timeout { secs, stage: "resolving the target" })??;
    let sip = UdpSocket::bind((args.bind, 0)).await.map_err(io_err(format!("binding SIP socket on {}", args.bind)))?;
    let rtp = UdpSocket::bind((args.bind, 0)).await.map_err(io_err(format!("binding RTP socket on {}", args.bind)))?;
    let local_sip = sip.local_addr().map_err(io_err("SIP socket address"))?;
    let local_rtp = rtp.local_addr().map_err(io_err("RTP socket address"))?;

    let seed: u64 = rand::random();
    let mut config = UacConfig::new(local_sip, remote, args.uri.clone());
    config.seed = seed;
    let offer = sdp::build_offer(local_rtp, seed >> 16);
    let mut uac = Uac::invite(Instant::now().into_std(), config, offer);
    tracing::info!(target = %args.uri, %remote, %local_sip, %local_rtp, "calling");

    let mut received = Received {
        codec: None,
        keep: args.save_received.is_some(),
        samples: Vec::new(),
        base: None,
        max_samples: usize::try_from(plan.timeout.as_secs().saturating_add(1).saturating_mul(8000)).unwrap_or(usize::MAX),
        packets: 0,
    };
    let mut media: Option<MediaOut> = None;
    let (mut answered_at, mut status, mut unusable) = (None::<Instant>, 0u16, None::<String>);
    let (mut packets_sent, mut dtmf_sent) = (0u64, 0u32);
    let mut hangup_at: Option<Instant> = None;
    let mut sip_buf = vec![0u8; 65_536];
    let mut rtp_buf = vec![0u8; 2048];

    let result: Result<EndedBy, CallerError> = 'call: loop {
        while let Some(out) = uac.poll_output() {
            match out {
                UacOutput::Transmit { to, bytes } => {
                    if let Err(e) = sip.send_to(&bytes, to).await {
                        break 'call Err(io_err(format!("sending SIP to {to}"))(e));
                    }
                }
                UacOutput::Event(UacEvent::Answered { status: s, media: neg }) => {
                    let now = Instant::now();
                    status = s;
                    answered_at = Some(now);
                    hangup_at = plan.hangup_after.map(|d| now + d);
                    media = Some(start_media(&neg, &plan, &args, audio.len(), now, seed));
                    received.codec = Some((engine_codec(neg.codec), neg.codec_pt));
                    tracing::info!(status = s, codec = ?neg.codec, remote_rtp = %neg.remote_rtp, "answered");
                }
                UacOutput::Event(UacEvent::UnusableAnswer { status: s, error }) => {
                    status = s;
                    unusable = Some(error);
                }
                UacOutput::Event(UacEvent::Failed { status, reason }) => break 'call Err(CallerError::Rejected { status, reason }),
                UacOutput::Event(UacEvent::Ended { reason }) => {
                    break 'call match (unusable.take(), reason) {
                        (Some(e), _) => Err(CallerError::BadAnswer(e)),
                        (None, UacEndReason::LocalBye) => Ok(EndedBy::Local),
                        (None, UacEndReason::RemoteBye) => Ok(EndedBy::Remote),
                    };
                }
                UacOutput::Event(UacEvent::InfoAnswered { digit, status }) if status >= 300 => {
                    tracing::warn!(%digit, status, "INFO DTMF refused");
                }
                UacOutput::Event(e) => tracing::debug!(event = ?e, "sip"),
            }
        }
        let sip_timer = uac.poll_timeout().map(Instant::from_std);
        let tick_at = media.as_ref().map(MediaOut::due);
        let wake = tokio::select! {
            biased;
            _ = sleep_until(limit) => Wake::Limit,
            r = sip.recv_from(&mut sip_buf) => Wake::Sip(r),
            _ = at(sip_timer) => Wake::SipTimer,
            _ = at(hangup_at) => Wake::Hangup,
            _ = at(tick_at) => Wake::Tick,
            r = rtp.recv_from(&mut rtp_buf) => Wake::Rtp(r),
        };
        let now = Instant::now().into_std();
        match wake {
            Wake::Limit => {
                // Best effort: leave the server in a clean state, then give up.
                uac.hangup(now);
                while let Some(out) = uac.poll_output() {
                    if let UacOutput::Transmit { to, bytes } = out {
                        let _ = sip.send_to(&bytes, to).await;
                    }
                }
                let stage = if answered_at.is_some() { "during the call" } else { "before the call was answered" };
                break Err(CallerError::Timeout { secs, stage });
            }
            Wake::Sip(r) => match r {
                Ok((n, from)) => uac.handle_input(now, from, sip_buf.get(..n).unwrap_or_default()),
                Err(e) => break Err(io_err("receiving SIP")(e)),
            },
            Wake::SipTimer => uac.handle_timeout(now),
            Wake::Hangup => {
                hangup_at = None;
                media = None;
                uac.hangup(now);
            }
            Wake::Tick => {
                let Some(m) = media.as_mut() else { continue };
                let remote = m.remote;
                let (packet, key_started, info) = match m.next(&audio, &plan.keys) {
                    Tick::Rtp { packet, key_started } => (packet, key_started, None),
                    Tick::RtpAndInfo { packet, key } => (packet, false, Some(key)),
                };
                match rtp.send_to(packet, remote).await {
                    Ok(_) => packets_sent += 1,
                    Err(e) => tracing::warn!(%remote, error = %e, "RTP send failed"),
                }
                dtmf_sent += u32::from(key_started);
                if let Some(key) = info {
                    if uac.info_dtmf(now, key, INFO_DURATION_MS).is_ok() {
                        dtmf_sent += 1;
                    }
                }
            }
            Wake::Rtp(r) => match r {
                Ok((n, _)) => received.on_datagram(rtp_buf.get(..n).unwrap_or_default()),
                Err(e) => break Err(io_err("receiving RTP")(e)),
            },
        }
    };

    if let Some(path) = args.save_received.clone() {
        let samples = std::mem::take(&mut received.samples);
        let saved = tokio::task::spawn_blocking(move || write_wav(&path, &samples).map_err(|source| CallerError::SaveReceived { path, source }))
            .await
            .map_err(|e| io_err("writing --save-received")(io::Error::other(e)))
            .and_then(|r| r);
        if let (Err(e), Ok(_)) = (saved, &result) {
            return Err(e);
        }
    }
    let ended_by = result?;
    Ok(CallReport {
        status,
        packets_sent,
        packets_received: received.packets,
        dtmf_sent,
        ended_by,
        duration: answered_at.map(|t| t.elapsed()).unwrap_or_default(),
    })
}

fn start_media(neg: &Negotiated, plan: &Plan, args: &CallArgs, audio_len: usize, now: Instant, seed: u64) -> MediaOut {
    let mut info = args.dtmf_mode == DtmfMode::Info;
    if !info && neg.telephone_event_pt.is_none() && !plan.keys.is_empty() {
        tracing::warn!("the answer has no telephone-event; sending DTMF by SIP INFO instead");
        info = true;
    }
    let file_ticks = audio_len.div_ceil(FRAME_SAMPLES) as u64;
    let dtmf_tick = match plan.dtmf_at {
        Some(d) => (d.as_secs_f64() * 50.0).round() as u64,
        None => file_ticks,
    };
    let (ssrc, seq, ts) = (seed as u32, (seed >> 32) as u16, (seed >> 48) as u32 * 160);
    MediaOut {
        sender: RtpSender::new(engine_codec(neg.codec), neg.codec_pt, ssrc, seq, ts),
        remote: neg.remote_rtp,
        event_pt: neg.telephone_event_pt,
        start: now,
        tick: 0,
        dtmf_tick,
        info,
        pkt: [0; PACKET_BYTES],
        ev: [0; 16],
    }
}

fn write_wav(path: &Path, samples: &[i16]) -> Result<(), hound::Error> {
    let spec = hound::WavSpec { channels: 1, sample_rate: SAMPLE_RATE, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec)?;
    for &s in samples {
        w.write_sample(s)?;
    }
    w.finalize()
}
