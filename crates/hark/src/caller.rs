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

use media_engine::playout::{DigitSender, DigitTick, EVENT_PACKET_BYTES};
use media_engine::sender::{RtpSender, PACKET_BYTES};
use media_engine::{g711, rtp, Codec, FRAME_SAMPLES, SAMPLE_RATE};
use sip_core::message::uri_host_port;
use sip_core::sdp::{self, AudioCodec, Negotiated};
use sip_core::uac::{Uac, UacConfig, UacEndReason, UacEvent, UacOutput};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::time::{sleep_until, Instant};

const TICK: Duration = Duration::from_millis(20);
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
    BadArg {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
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
        let keys: Vec<char> = args
            .dtmf
            .as_deref()
            .unwrap_or("")
            .chars()
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if keys
            .iter()
            .any(|c| !matches!(c, '0'..='9' | '*' | '#' | 'A'..='D'))
        {
            let value = args.dtmf.clone().unwrap_or_default();
            return Err(CallerError::BadArg {
                name: "dtmf",
                value,
                reason: "keys must be 0-9, *, #, A-D",
            });
        }
        let timeout = seconds("timeout", args.timeout)?;
        if timeout.is_zero() {
            let value = args.timeout.to_string();
            return Err(CallerError::BadArg {
                name: "timeout",
                value,
                reason: "must be more than 0",
            });
        }
        Ok(Plan {
            keys,
            dtmf_at: args.dtmf_at.map(|s| seconds("dtmf-at", s)).transpose()?,
            hangup_after: args
                .hangup_after
                .map(|s| seconds("hangup-after", s))
                .transpose()?,
            timeout,
        })
    }
}

/// Reads an 8 kHz mono WAV as linear PCM.
pub async fn load_wav(path: &Path) -> Result<Vec<i16>, CallerError> {
    let read_err = |source| CallerError::ReadWav {
        path: path.to_path_buf(),
        source,
    };
    let len = tokio::fs::metadata(path).await.map_err(read_err)?.len();
    if len > MAX_WAV_BYTES {
        let reason = format!("{len} bytes is more than the {MAX_WAV_BYTES}-byte limit");
        return Err(CallerError::BadWav {
            path: path.to_path_buf(),
            reason,
        });
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
    let bad = |reason: &str| CallerError::BadWav {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
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
    let (Some(mut tag), Some(channels), Some(rate), Some(bits)) =
        (le16(fmt, 0), le16(fmt, 2), le32(fmt, 4), le16(fmt, 14))
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
        return Err(CallerError::UnsupportedWav {
            path: path.to_path_buf(),
            found,
        });
    }
    Ok(match codec {
        None => data
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect(),
        Some(codec) => {
            let mut pcm = vec![0i16; data.len()];
            g711::decode(codec, data, &mut pcm);
            pcm
        }
    })
}

/// Host and port (default 5060) of a `sip:` URI.
fn parse_target(uri: &str) -> Result<(String, u16), CallerError> {
    let bad = |reason: &str| CallerError::BadUri {
        uri: uri.to_string(),
        reason: reason.to_string(),
    };
    let scheme = uri.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    if scheme.as_deref() != Some("sip") {
        return Err(bad("only sip: URIs are supported (UDP)"));
    }
    let (host, port) = uri_host_port(uri).ok_or_else(|| bad("no host[:port]"))?;
    Ok((host.to_string(), port.unwrap_or(5060)))
}

async fn resolve(
    uri: &str,
    host: &str,
    port: u16,
    bind: IpAddr,
) -> Result<SocketAddr, CallerError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| CallerError::BadUri {
            uri: uri.to_string(),
            reason: format!("cannot resolve {host}: {e}"),
        })?
        .collect();
    let same_family = addrs.iter().find(|a| a.is_ipv4() == bind.is_ipv4());
    same_family
        .or(addrs.first())
        .copied()
        .ok_or_else(|| CallerError::BadUri {
            uri: uri.to_string(),
            reason: format!("{host} has no address"),
        })
}

/// Outbound RTP: the file, then silence, with DTMF events in place of audio.
struct MediaOut {
    sender: RtpSender,
    remote: SocketAddr,
    start: Instant,
    /// Index of the next 20 ms tick; tick n is due at start + n*20 ms.
    tick: u64,
    dtmf_tick: u64,
    /// The keys as RFC 4733 events from `dtmf_tick` on; `None` when they go by SIP INFO.
    events: Option<DigitSender>,
    info: bool,
    pkt: [u8; PACKET_BYTES],
    ev: [u8; EVENT_PACKET_BYTES],
}

/// What one tick produced.
enum Tick<'a> {
    Rtp {
        packet: &'a [u8],
        key_started: bool,
    },
    /// Audio plus a key to send by SIP INFO.
    RtpAndInfo {
        packet: &'a [u8],
        key: char,
    },
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
        if let (Some(_), Some(events)) = (rel, self.events.as_mut()) {
            // A gap or the end of the keys is audio: the file position keeps running.
            if let DigitTick::Event {
                packet,
                key_started,
            } = events.next(&mut self.sender, &mut self.ev)
            {
                return Tick::Rtp {
                    packet,
                    key_started,
                };
            }
        }
        let pos = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .saturating_mul(FRAME_SAMPLES);
        let frame = audio
            .get(pos..)
            .map(|a| a.get(..FRAME_SAMPLES).unwrap_or(a))
            .unwrap_or_default();
        let len = self.sender.packetize(frame, &mut self.pkt);
        let packet = self.pkt.get(..len).unwrap_or_default();
        match rel {
            Some(rel) if self.info && rel % INFO_TICKS == 0 => {
                match usize::try_from(rel / INFO_TICKS)
                    .ok()
                    .and_then(|i| keys.get(i))
                {
                    Some(&key) => Tick::RtpAndInfo { packet, key },
                    None => Tick::Rtp {
                        packet,
                        key_started: false,
                    },
                }
            }
            _ => Tick::Rtp {
                packet,
                key_started: false,
            },
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
        let Some((codec, _)) = self.codec.filter(|(_, pt)| *pt == p.payload_type) else {
            return;
        };
        if !self.keep || p.payload.is_empty() {
            return;
        }
        let (_, first_ts, offset) = match self.base {
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
        .map_err(|_| CallerError::Timeout {
            secs,
            stage: "resolving the target",
        })??;
    let sip = UdpSocket::bind((args.bind, 0))
        .await
        .map_err(io_err(format!("binding SIP socket on {}", args.bind)))?;
    let rtp = UdpSocket::bind((args.bind, 0))
        .await
        .map_err(io_err(format!("binding RTP socket on {}", args.bind)))?;
    let local_sip = sip.local_addr().map_err(io_err("SIP socket address"))?;
    let local_rtp = rtp.local_addr().map_err(io_err("RTP socket address"))?;

    let seed: u64 = rand::random();
    let mut config = UacConfig::new(local_sip, remote, args.uri.clone());
    config.seed = seed;
    let offer = sdp::build_offer(local_rtp, seed >> 16);
    let mut uac = Uac::invite(Instant::now().into_std(), config, offer);
    tracing::info!(uri = %args.uri, %remote, %local_sip, %local_rtp, "calling");

    let mut received = Received {
        codec: None,
        keep: args.save_received.is_some(),
        samples: Vec::new(),
        base: None,
        max_samples: usize::try_from(
            plan.timeout
                .as_secs()
                .saturating_add(1)
                .saturating_mul(8000),
        )
        .unwrap_or(usize::MAX),
        packets: 0,
    };
    let mut media: Option<MediaOut> = None;
    let (mut answered_at, mut status, mut unusable) = (None::<Instant>, 0u16, None::<String>);
    let (mut packets_sent, mut dtmf_sent) = (0u64, 0u32);
    let mut hangup_at: Option<Instant> = None;
    let mut sip_buf = vec![0u8; 65_536];
    let mut rtp_buf = vec![0u8; 2048];

    let result: Result<EndedBy, CallerError> = loop {
        // Drain everything (an ACK may follow the event that ends the call) before stopping.
        let mut outcome = None;
        while let Some(out) = uac.poll_output() {
            match out {
                UacOutput::Transmit { to, bytes } => {
                    if let Err(e) = sip.send_to(&bytes, to).await {
                        outcome.get_or_insert(Err(io_err(format!("sending SIP to {to}"))(e)));
                    }
                }
                UacOutput::Event(UacEvent::Answered {
                    status: s,
                    media: neg,
                }) => {
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
                UacOutput::Event(UacEvent::Failed { status, reason }) => {
                    outcome.get_or_insert(Err(CallerError::Rejected { status, reason }));
                }
                UacOutput::Event(UacEvent::Ended { reason }) => {
                    outcome.get_or_insert(match (unusable.take(), reason) {
                        (Some(e), _) => Err(CallerError::BadAnswer(e)),
                        (None, UacEndReason::LocalBye) => Ok(EndedBy::Local),
                        (None, UacEndReason::RemoteBye) => Ok(EndedBy::Remote),
                    });
                }
                UacOutput::Event(UacEvent::InfoAnswered { digit, status }) if status >= 300 => {
                    tracing::warn!(%digit, status, "INFO DTMF refused");
                }
                UacOutput::Event(e) => tracing::debug!(event = ?e, "sip"),
            }
        }
        if let Some(outcome) = outcome {
            break outcome;
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
                let stage = if answered_at.is_some() {
                    "during the call"
                } else {
                    "before the call was answered"
                };
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
                    Tick::Rtp {
                        packet,
                        key_started,
                    } => (packet, key_started, None),
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

    let ended_at = Instant::now();
    if let Some(path) = args.save_received.clone() {
        let samples = std::mem::take(&mut received.samples);
        let saved = tokio::task::spawn_blocking(move || {
            write_wav(&path, &samples).map_err(|source| CallerError::SaveReceived { path, source })
        })
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
        duration: answered_at.map(|t| ended_at - t).unwrap_or_default(),
    })
}

fn start_media(
    neg: &Negotiated,
    plan: &Plan,
    args: &CallArgs,
    audio_len: usize,
    now: Instant,
    seed: u64,
) -> MediaOut {
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
    let events = match (info, neg.telephone_event_pt) {
        (false, Some(pt)) => Some(DigitSender::new(plan.keys.iter().copied(), pt)),
        _ => None,
    };
    let (ssrc, seq, ts) = (seed as u32, (seed >> 32) as u16, (seed >> 48) as u32 * 160);
    MediaOut {
        sender: RtpSender::new(engine_codec(neg.codec), neg.codec_pt, ssrc, seq, ts),
        remote: neg.remote_rtp,
        start: now,
        tick: 0,
        dtmf_tick,
        events,
        info,
        pkt: [0; PACKET_BYTES],
        ev: [0; EVENT_PACKET_BYTES],
    }
}

fn write_wav(path: &Path, samples: &[i16]) -> Result<(), hound::Error> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    for &s in samples {
        w.write_sample(s)?;
    }
    w.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use sip_core::message::{parse_message, reason_phrase, Message, Method, Request};
    use tokio::task::JoinHandle;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hark-caller-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn sine(freq: f64, samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|i| ((i as f64 * freq * std::f64::consts::TAU / 8000.0).sin() * 8000.0) as i16)
            .collect()
    }

    /// The fixture: 1 s of 440 Hz, 8 kHz mono 16-bit.
    fn sine_wav(name: &str) -> (PathBuf, Vec<i16>) {
        let path = tmp(name);
        let pcm = sine(440.0, 8000);
        write_wav(&path, &pcm).unwrap();
        (path, pcm)
    }

    fn args(uri: String, play: PathBuf) -> CallArgs {
        CallArgs {
            uri,
            play,
            dtmf: None,
            dtmf_at: None,
            dtmf_mode: DtmfMode::Rfc2833,
            hangup_after: None,
            bind: "127.0.0.1".parse().unwrap(),
            save_received: None,
            timeout: 20.0,
        }
    }

    #[derive(Debug)]
    struct Pkt {
        pt: u8,
        marker: bool,
        seq: u16,
        ts: u32,
        ssrc: u32,
        payload: Vec<u8>,
    }

    #[derive(Debug, Default)]
    struct UasLog {
        rtp: Vec<Pkt>,
        infos: Vec<String>,
        acked: bool,
        bye_from_caller: bool,
        our_bye_answer: Option<u16>,
    }

    struct Uas {
        answer_pt: u8,
        reject: Option<u16>,
        /// Send BYE 200 ms after this many keys (RFC 4733 end packets or INFOs).
        bye_after_keys: Option<usize>,
        /// Send 1 s of 1 kHz tone with a 200 ms hole after the ACK.
        echo: bool,
    }

    fn reply(req: &Request, status: u16, extra: &str, body: &str) -> Vec<u8> {
        let h = &req.headers;
        let mut to = h.get("To").unwrap().to_string();
        if !to.contains("tag=") {
            to.push_str(";tag=uas1");
        }
        format!(
            "SIP/2.0 {status} {}\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            reason_phrase(status),
            h.get_all("Via").join(", "),
            h.get("From").unwrap(),
            h.get("Call-ID").unwrap(),
            h.get("CSeq").unwrap(),
            body.len()
        )
        .into_bytes()
    }

    /// The tone the fake UAS sends: packets 0..25 and 35..60 of a 1 kHz sine (a 200 ms hole).
    fn echo_packets(codec: Codec, pt: u8) -> Vec<Vec<u8>> {
        let tone = sine(1000.0, 60 * 160);
        let mut sender = RtpSender::new(codec, pt, 0xABCD, 100, 1000);
        let mut out = Vec::new();
        for i in 0..60 {
            let mut buf = [0u8; PACKET_BYTES];
            let len = sender.packetize(&tone[i * 160..(i + 1) * 160], &mut buf);
            if !(25..35).contains(&i) {
                out.push(buf[..len].to_vec());
            }
        }
        out
    }

    async fn fake_uas(uas: Uas) -> (SocketAddr, JoinHandle<UasLog>) {
        let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let sip_addr = sip.local_addr().unwrap();
        let rtp_port = rtp.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut log = UasLog::default();
            let deadline = Instant::now() + Duration::from_secs(20);
            let (mut invite, mut caller_sip, mut caller_rtp) = (None::<Request>, None, None);
            let mut keys_ended = std::collections::BTreeSet::new();
            let (mut bye_at, mut stop_at) = (None, None);
            let mut buf = vec![0u8; 65_536];
            let mut rbuf = [0u8; 2048];
            loop {
                tokio::select! {
                    _ = sleep_until(deadline) => panic!("fake UAS timed out: {log:?}"),
                    _ = at(stop_at) => return log,
                    _ = at(bye_at) => {
                        bye_at = None;
                        let inv: &Request = invite.as_ref().unwrap();
                        let contact = inv.headers.get("Contact").unwrap().trim_matches(['<', '>']);
                        let bye = format!(
                            "BYE {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {sip_addr};branch=z9hG4bKuasbye\r\n\
                             From: {};tag=uas1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 BYE\r\nMax-Forwards: 70\r\n\
                             Content-Length: 0\r\n\r\n",
                            inv.headers.get("To").unwrap(), inv.headers.get("From").unwrap(), inv.headers.get("Call-ID").unwrap());
                        sip.send_to(bye.as_bytes(), caller_sip.unwrap()).await.unwrap();
                    }
                    r = sip.recv_from(&mut buf) => {
                        let (n, from) = r.unwrap();
                        match parse_message(&buf[..n]).unwrap() {
                            Message::Response(resp) => {
                                log.our_bye_answer = Some(resp.status);
                                // Let RTP already in flight arrive.
                                stop_at = Some(Instant::now() + Duration::from_millis(150));
                            }
                            Message::Request(req) => match req.method {
                                Method::Invite => {
                                    let offer = sdp::parse_offer(&req.body).unwrap();
                                    caller_rtp = Some(SocketAddr::new(offer.connection, offer.port));
                                    caller_sip = Some(from);
                                    sip.send_to(&reply(&req, 100, "", ""), from).await.unwrap();
                                    if let Some(status) = uas.reject {
                                        sip.send_to(&reply(&req, status, "", ""), from).await.unwrap();
                                    } else {
                                        let name = if uas.answer_pt == 0 { "PCMU" } else { "PCMA" };
                                        let body = format!(
                                            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                                             m=audio {rtp_port} RTP/AVP {} 101\r\na=rtpmap:{} {name}/8000\r\n\
                                             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
                                            uas.answer_pt, uas.answer_pt);
                                        let extra = format!("Contact: <sip:uas@{sip_addr}>\r\nContent-Type: application/sdp\r\n");
                                        sip.send_to(&reply(&req, 200, &extra, &body), from).await.unwrap();
                                    }
                                    invite = Some(req);
                                }
                                Method::Ack => {
                                    log.acked = true;
                                    if uas.reject.is_some() {
                                        return log;
                                    }
                                    if uas.echo {
                                        let codec = if uas.answer_pt == 0 { Codec::Pcmu } else { Codec::Pcma };
                                        for p in echo_packets(codec, uas.answer_pt) {
                                            rtp.send_to(&p, caller_rtp.unwrap()).await.unwrap();
                                        }
                                    }
                                }
                                Method::Info => {
                                    log.infos.push(String::from_utf8(req.body.clone()).unwrap());
                                    sip.send_to(&reply(&req, 200, "", ""), from).await.unwrap();
                                    if uas.bye_after_keys == Some(log.infos.len()) {
                                        bye_at = Some(Instant::now() + Duration::from_millis(200));
                                    }
                                }
                                Method::Bye => {
                                    log.bye_from_caller = true;
                                    sip.send_to(&reply(&req, 200, "", ""), from).await.unwrap();
                                    stop_at = Some(Instant::now() + Duration::from_millis(150));
                                }
                                m => panic!("fake UAS got unexpected {m}"),
                            },
                        }
                    }
                    r = rtp.recv_from(&mut rbuf) => {
                        let (n, _) = r.unwrap();
                        let p = rtp::parse(&rbuf[..n]).unwrap();
                        if p.payload_type == 101 && p.payload[1] & 0x80 != 0 {
                            keys_ended.insert(p.timestamp);
                            if uas.bye_after_keys == Some(keys_ended.len()) && bye_at.is_none() && log.our_bye_answer.is_none() {
                                bye_at = Some(Instant::now() + Duration::from_millis(200));
                            }
                        }
                        log.rtp.push(Pkt { pt: p.payload_type, marker: p.marker, seq: p.sequence, ts: p.timestamp, ssrc: p.ssrc, payload: p.payload.to_vec() });
                    }
                }
            }
        });
        (sip_addr, task)
    }

    /// Sequence +1 per packet and one SSRC across audio and events.
    fn assert_one_stream(rtp: &[Pkt]) {
        for w in rtp.windows(2) {
            assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "sequence gap at {w:?}");
            assert_eq!(w[1].ssrc, w[0].ssrc);
        }
    }

    #[tokio::test]
    async fn call_streams_the_file_sends_rfc4733_keys_and_ends_on_remote_bye() {
        let (uas_sip, uas) = fake_uas(Uas {
            answer_pt: 0,
            reject: None,
            bye_after_keys: Some(2),
            echo: true,
        })
        .await;
        let (wav, pcm) = sine_wav("rfc2833.wav");
        let saved = tmp("rfc2833-received.wav");
        let mut a = args(format!("sip:record@{uas_sip}"), wav);
        a.dtmf = Some("1#".into());
        a.save_received = Some(saved.clone());
        let report = run(a).await.unwrap();
        let log = uas.await.unwrap();

        assert!(log.acked);
        assert_eq!(
            (report.status, report.ended_by, report.dtmf_sent),
            (200, EndedBy::Remote, 2)
        );
        assert_eq!(report.packets_sent, log.rtp.len() as u64);
        assert_eq!(report.packets_received, 50);
        let rtp = &log.rtp;
        assert_one_stream(rtp);
        // Layout: 50 file packets, '1' (11 events), 5 silence, '#' (11 events), silence.
        let kinds: Vec<u8> = rtp.iter().map(|p| p.pt).collect();
        assert_eq!(
            kinds[..77],
            [[0u8; 50].as_slice(), &[101; 11], &[0; 5], &[101; 11]].concat()
        );
        assert!(
            kinds[77..].len() >= 5 && kinds[77..].iter().all(|&pt| pt == 0),
            "{kinds:?}"
        );
        let markers: Vec<usize> = rtp
            .iter()
            .enumerate()
            .filter(|(_, p)| p.marker)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(markers, vec![0, 50, 61, 66, 77]);
        // The file is sent as-is, then silence.
        let mut first = [0u8; 160];
        g711::encode(Codec::Pcmu, &pcm[..160], &mut first);
        assert_eq!(rtp[0].payload, first);
        assert!(rtp[50..]
            .iter()
            .filter(|p| p.pt == 0)
            .all(|p| p.payload == [0xFF; 160]));
        // Audio clock: +160 per packet, and it keeps running through each 11-packet event.
        let t0 = rtp[0].ts;
        for (i, p) in rtp.iter().enumerate() {
            let expect = match i {
                0..=49 => i as u32 * 160,
                50..=60 => 50 * 160,
                66..=76 => (50 + 16) * 160,
                _ => i as u32 * 160,
            };
            assert_eq!(p.ts.wrapping_sub(t0), expect, "timestamp of packet {i}");
        }
        for (start, code) in [(50, 1u8), (66, 11)] {
            let events: Vec<&[u8]> = rtp[start..start + 11]
                .iter()
                .map(|p| p.payload.as_slice())
                .collect();
            for (k, ev) in events.iter().enumerate() {
                let end = k >= 8;
                let duration = 160 * (k as u16 + 1).min(8);
                let d = duration.to_be_bytes();
                assert_eq!(
                    *ev,
                    [code, if end { 0x80 | 10 } else { 10 }, d[0], d[1]],
                    "event packet {k}"
                );
            }
        }

        let reader = hound::WavReader::open(&saved).unwrap();
        assert_eq!(
            (
                reader.spec().sample_rate,
                reader.spec().channels,
                reader.spec().bits_per_sample
            ),
            (8000, 1, 16)
        );
        let got: Vec<i16> = reader.into_samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(got.len(), 60 * 160, "timeline spans the hole");
        assert!(
            got[4000..5600].iter().all(|&s| s == 0),
            "the 200 ms hole is silence"
        );
        assert!(
            got[..4000]
                .iter()
                .chain(&got[5600..])
                .map(|s| s.unsigned_abs())
                .max()
                > Some(7000)
        );
    }

    #[tokio::test]
    async fn info_mode_sends_dtmf_relay_and_local_hangup_ends_the_call() {
        let (uas_sip, uas) = fake_uas(Uas {
            answer_pt: 8,
            reject: None,
            bye_after_keys: None,
            echo: false,
        })
        .await;
        let (wav, _) = sine_wav("info.wav");
        let mut a = args(format!("sip:record@{uas_sip}"), wav);
        a.dtmf = Some("5".into());
        a.dtmf_mode = DtmfMode::Info;
        a.dtmf_at = Some(0.2);
        a.hangup_after = Some(1.0);
        let report = run(a).await.unwrap();
        let log = uas.await.unwrap();

        assert_eq!(log.infos, vec!["Signal=5\r\nDuration=160\r\n".to_string()]);
        assert!(log.bye_from_caller);
        assert_eq!(
            (report.status, report.ended_by, report.dtmf_sent),
            (200, EndedBy::Local, 1)
        );
        assert_eq!(report.packets_sent, log.rtp.len() as u64);
        assert!(
            (45..=50).contains(&log.rtp.len()),
            "1 s of 20 ms packets, got {}",
            log.rtp.len()
        );
        assert_one_stream(&log.rtp);
        assert!(log.rtp.iter().all(|p| p.pt == 8 && p.payload.len() == 160));
        assert!(log.rtp[0].marker && log.rtp[1..].iter().all(|p| !p.marker));
        for w in log.rtp.windows(2) {
            assert_eq!(w[1].ts.wrapping_sub(w[0].ts), 160);
        }
    }

    #[tokio::test]
    async fn rejected_call_is_acked_and_returns_the_status() {
        let (uas_sip, uas) = fake_uas(Uas {
            answer_pt: 0,
            reject: Some(486),
            bye_after_keys: None,
            echo: false,
        })
        .await;
        let (wav, _) = sine_wav("reject.wav");
        let err = run(args(format!("sip:record@{uas_sip}"), wav))
            .await
            .unwrap_err();
        assert!(
            matches!(err, CallerError::Rejected { status: 486, .. }),
            "{err}"
        );
        assert!(uas.await.unwrap().acked);
    }

    #[tokio::test]
    async fn silent_server_hits_the_timeout() {
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (wav, _) = sine_wav("timeout.wav");
        let mut a = args(format!("sip:record@{}", silent.local_addr().unwrap()), wav);
        a.timeout = 0.3;
        let started = std::time::Instant::now();
        let err = run(a).await.unwrap_err();
        assert!(
            matches!(
                err,
                CallerError::Timeout {
                    stage: "before the call was answered",
                    ..
                }
            ),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    fn wav_bytes(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut fmt = Vec::new();
        fmt.extend_from_slice(&tag.to_le_bytes());
        fmt.extend_from_slice(&channels.to_le_bytes());
        fmt.extend_from_slice(&rate.to_le_bytes());
        fmt.extend_from_slice(&(rate * u32::from(bits / 8) * u32::from(channels)).to_le_bytes());
        fmt.extend_from_slice(&(bits / 8 * channels).to_le_bytes());
        fmt.extend_from_slice(&bits.to_le_bytes());
        let mut out = b"RIFF\0\0\0\0WAVE".to_vec();
        // An odd-sized unknown chunk first: its pad byte must be skipped.
        out.extend_from_slice(b"LIST\x03\0\0\0abc\0");
        out.extend_from_slice(b"fmt ");
        out.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
        out.extend_from_slice(&fmt);
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn g711_wavs_decode_to_linear_pcm() {
        let p = Path::new("x.wav");
        let ulaw = parse_wav(p, &wav_bytes(7, 1, 8000, 8, &[0xFF, 0x80, 0x00])).unwrap();
        assert_eq!(ulaw, vec![0, 32124, -32124]);
        let alaw = parse_wav(p, &wav_bytes(6, 1, 8000, 8, &[0xD5, 0xAA])).unwrap();
        assert_eq!(alaw, vec![8, 32256]);
        let pcm = parse_wav(
            p,
            &wav_bytes(1, 1, 8000, 16, &[0x01, 0x00, 0xFF, 0xFF, 0x7F]),
        )
        .unwrap();
        assert_eq!(pcm, vec![1, -1], "a trailing odd byte is not a sample");
    }

    #[test]
    fn unsupported_wav_formats_are_named_in_the_error() {
        let p = Path::new("in.wav");
        for (bytes, found) in [
            (
                wav_bytes(1, 2, 8000, 16, &[0; 8]),
                "PCM 16-bit, 8000 Hz, 2 channel(s)",
            ),
            (
                wav_bytes(1, 1, 44100, 16, &[0; 8]),
                "PCM 16-bit, 44100 Hz, 1 channel(s)",
            ),
            (
                wav_bytes(1, 1, 8000, 8, &[0; 8]),
                "PCM 8-bit, 8000 Hz, 1 channel(s)",
            ),
            (
                wav_bytes(3, 1, 8000, 32, &[0; 8]),
                "IEEE float 32-bit, 8000 Hz, 1 channel(s)",
            ),
            (
                wav_bytes(0x55, 1, 8000, 0, &[0; 8]),
                "format tag 0x0055 0-bit, 8000 Hz, 1 channel(s)",
            ),
        ] {
            match parse_wav(p, &bytes) {
                Err(e @ CallerError::UnsupportedWav { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.starts_with(&format!("in.wav is {found};")), "{msg}");
                }
                other => panic!("{found}: {other:?}"),
            }
        }
    }

    #[test]
    fn broken_wavs_are_errors_not_panics() {
        let p = Path::new("b.wav");
        let good = wav_bytes(1, 1, 8000, 16, &[0; 4]);
        for cut in [0, 4, 11, 20, 30, 40] {
            assert!(
                matches!(parse_wav(p, &good[..cut]), Err(CallerError::BadWav { .. })),
                "cut at {cut}"
            );
        }
        assert!(parse_wav(p, b"RIFX\0\0\0\0WAVE").is_err());
    }

    #[test]
    fn target_uri_needs_sip_scheme_and_defaults_to_port_5060() {
        assert_eq!(
            parse_target("sip:record@127.0.0.1").unwrap(),
            ("127.0.0.1".into(), 5060)
        );
        assert_eq!(
            parse_target("sip:r@[::1]:5070;transport=udp").unwrap(),
            ("::1".into(), 5070)
        );
        assert_eq!(
            parse_target("SIP:host.example:5080").unwrap(),
            ("host.example".into(), 5080)
        );
        for bad in ["sips:r@h", "tel:+1555", "record@h", "sip:", "sip:r@h:99999"] {
            assert!(
                matches!(parse_target(bad), Err(CallerError::BadUri { .. })),
                "{bad}"
            );
        }
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        call: CallArgs,
    }

    #[test]
    fn cli_defaults_and_dtmf_mode_values() {
        let c = Cli::try_parse_from(["call", "sip:r@127.0.0.1", "--play", "a.wav"])
            .unwrap()
            .call;
        assert_eq!(
            (c.dtmf_mode, c.timeout, c.bind),
            (
                DtmfMode::Rfc2833,
                300.0,
                "127.0.0.1".parse::<IpAddr>().unwrap()
            )
        );
        assert!(c.dtmf.is_none() && c.hangup_after.is_none() && c.save_received.is_none());
        let c = Cli::try_parse_from([
            "call",
            "sip:r@h",
            "--play",
            "a.wav",
            "--dtmf",
            "12#",
            "--dtmf-at",
            "1.5",
            "--dtmf-mode",
            "info",
        ])
        .unwrap()
        .call;
        assert_eq!(
            (c.dtmf.as_deref(), c.dtmf_at, c.dtmf_mode),
            (Some("12#"), Some(1.5), DtmfMode::Info)
        );
        assert!(
            Cli::try_parse_from(["call", "sip:r@h"]).is_err(),
            "--play is required"
        );
        assert!(
            Cli::try_parse_from(["call", "sip:r@h", "--play", "a", "--dtmf-at", "1"]).is_err(),
            "--dtmf-at needs --dtmf"
        );
    }

    #[test]
    fn bad_keys_and_negative_times_are_rejected_by_name() {
        let mut a = args("sip:r@h".into(), "a.wav".into());
        a.dtmf = Some("1x".into());
        assert!(matches!(
            Plan::new(&a),
            Err(CallerError::BadArg { name: "dtmf", .. })
        ));
        a.dtmf = Some("abc*#".into());
        assert_eq!(Plan::new(&a).unwrap().keys, vec!['A', 'B', 'C', '*', '#']);
        a.hangup_after = Some(-1.0);
        assert!(matches!(
            Plan::new(&a),
            Err(CallerError::BadArg {
                name: "hangup-after",
                ..
            })
        ));
        a.hangup_after = None;
        a.timeout = f64::NAN;
        assert!(matches!(
            Plan::new(&a),
            Err(CallerError::BadArg {
                name: "timeout",
                ..
            })
        ));
    }

    #[test]
    fn received_audio_drops_packets_older_than_the_stream_and_rebases_a_new_ssrc() {
        let mut r = Received {
            codec: Some((Codec::Pcmu, 0)),
            keep: true,
            samples: Vec::new(),
            base: None,
            max_samples: 1000,
            packets: 0,
        };
        let pkt = |ssrc: u32, ts: u32| {
            let mut s = RtpSender::new(Codec::Pcmu, 0, ssrc, 0, ts);
            let mut b = [0u8; PACKET_BYTES];
            s.packetize(&[1000; 160], &mut b);
            b
        };
        r.on_datagram(&pkt(1, 5000));
        r.on_datagram(&pkt(1, 4840)); // before the first packet: dropped
        r.on_datagram(&pkt(1, 5320)); // one packet lost: 160 samples of silence
        r.on_datagram(&pkt(2, 77)); // new source continues at the end
        r.on_datagram(&pkt(2, 77 + 100_000)); // beyond max_samples: dropped
        r.on_datagram(b"junk");
        assert_eq!(r.packets, 5);
        assert_eq!(r.samples.len(), 640);
        assert!(r.samples[160..320].iter().all(|&s| s == 0));
        assert!(r.samples[..160]
            .iter()
            .chain(&r.samples[320..])
            .all(|&s| (s - 1000).abs() < 40));
    }
}
