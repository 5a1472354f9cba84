//! `hark call`: a built-in test caller.
//!
//! Calls a SIP URI, streams a WAV file as 20 ms G.711 RTP, optionally sends DTMF (RFC 4733
//! events or SIP INFO) and hangs up, and can save what the server sent back. Drives the
//! sans-IO [`sip_core::uac::Uac`] with tokio; every wait is bounded by `--timeout`.
//!
//! DTMF as RFC 4733 follows [`media_engine::playout::DigitSender`], the daemon's own schedule:
//! per key, 8 event packets 20 ms apart (durations 160..1280), then 3 end packets (E=1,
//! duration 1280, own sequence numbers), then 100 ms of audio before the next key. The events
//! replace the audio packets, but the audio clock and the file position keep running (a
//! phone's microphone does not stop while a key is held), so the first audio packet after an
//! event has timestamp = event timestamp + 1760 and carries the marker bit (a new talkspurt
//! after a gap in the audio stream, as Asterisk does).
//!
//! # Layout
//! - this file: arguments, errors, the report and the call loop ([`run`]).
//! - `media`: what goes out each 20 ms tick, and the audio that comes back.
//! - `wav`: the WAV file to play and the one saved.

mod media;
#[cfg(test)]
mod tests;
mod wav;

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use sip_core::message::uri_host_port;
use sip_core::sdp;
use sip_core::uac::{Uac, UacConfig, UacEndReason, UacEvent, UacOutput};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::time::{sleep_until, Instant};

use crate::media::{engine_codec, start_media, MediaOut, Received, Tick};

const INFO_DURATION_MS: u32 = 160;

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
    BadUri { uri: String, reason: &'static str },
    #[error("target URI {uri:?}: cannot resolve {host}: {source}")]
    Resolve {
        uri: String,
        host: String,
        source: io::Error,
    },
    #[error("target URI {uri:?}: {host} has no address")]
    NoAddress { uri: String, host: String },
    #[error("cannot read {}: {source}", path.display())]
    ReadWav { path: PathBuf, source: io::Error },
    #[error("{} is not a usable WAV file: {source}", path.display())]
    BadWav {
        path: PathBuf,
        source: record_engine::wav::ReadError,
    },
    #[error("{} is {len} bytes, more than the {max}-byte limit for --play", path.display())]
    WavTooLarge { path: PathBuf, len: u64, max: u64 },
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

/// Host and port (default 5060) of a `sip:` URI.
fn parse_target(uri: &str) -> Result<(String, u16), CallerError> {
    let bad = |reason| CallerError::BadUri {
        uri: uri.to_string(),
        reason,
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
        .map_err(|source| CallerError::Resolve {
            uri: uri.to_string(),
            host: host.to_string(),
            source,
        })?
        .collect();
    let same_family = addrs.iter().find(|a| a.is_ipv4() == bind.is_ipv4());
    same_family
        .or(addrs.first())
        .copied()
        .ok_or_else(|| CallerError::NoAddress {
            uri: uri.to_string(),
            host: host.to_string(),
        })
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
    let audio = wav::load_wav(&args.play).await?;
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
            wav::write_wav(&path, &samples)
                .map_err(|source| CallerError::SaveReceived { path, source })
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
