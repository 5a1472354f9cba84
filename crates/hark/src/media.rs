//! The RTP edge: one task per call owns the call's UDP socket, feeds the sans-IO
//! [`MediaReceiver`] and pushes what it emits into the SPSC ring; it also paces outbound audio.
//!
//! Per packet: one `recv_from`, no allocation, no lock.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use media_engine::playout::{AudioPlayout, DigitSender, DigitTick, EVENT_PACKET_BYTES};
use media_engine::receiver::{MediaReceiver, PacketVerdict, ReceiverConfig};
use media_engine::ring::{media_ring, MediaConsumer};
use media_engine::sender::{RtpSender, PACKET_BYTES};
use media_engine::srtp::{SrtpContext, SrtpKey, SrtpSuite};
use media_engine::{AudioFrame, Codec, MediaItem, FRAME_SAMPLES};
use sip_core::sdp::{AudioCodec, Direction, Negotiated};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

/// Items the ring holds: 960 ms of 20 ms frames, nearly ten drain intervals.
pub const RING_CAPACITY: usize = 48;

pub enum MediaCommand {
    /// Play `audio` `loops` times (0 = until stopped); `done` fires when it has been sent.
    Play {
        audio: Arc<[i16]>,
        loops: u32,
        done: oneshot::Sender<()>,
    },
    /// Send `digits` as RFC 4733 events (in-band tones when telephone-event was not
    /// negotiated); `w` is a 0.5 s pause. `done` fires when the last one has been sent.
    PlayDigits {
        digits: String,
        done: oneshot::Sender<()>,
    },
    Stop,
    InjectDtmf(char),
    Renegotiate(Negotiated),
    /// Copy every received audio frame here (a bridge's other leg), or stop (`None`).
    RelayOut(Option<mpsc::Sender<AudioFrame>>),
    /// Send the frames arriving here (a bridge's other leg's audio) while no prompt plays, or
    /// stop (`None`).
    RelayIn(Option<mpsc::Receiver<AudioFrame>>),
    /// A browser's answer to our WebRTC offer (a call we placed to it).
    AcceptAnswer {
        sdp: String,
        /// The rate the leg's audio is recorded at, once the answer is applied.
        result: oneshot::Sender<Result<u32, String>>,
    },
}

impl MediaCommand {
    fn name(&self) -> &'static str {
        match self {
            MediaCommand::Play { .. } => "play",
            MediaCommand::PlayDigits { .. } => "play_digits",
            MediaCommand::Stop => "stop",
            MediaCommand::InjectDtmf(_) => "inject_dtmf",
            MediaCommand::Renegotiate(_) => "renegotiate",
            MediaCommand::AcceptAnswer { .. } => "accept_answer",
            MediaCommand::RelayOut(_) => "relay_out",
            MediaCommand::RelayIn(_) => "relay_in",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaNotice {
    /// No RTP for `rtp.timeout`.
    RtpTimeout,
}

/// The call task's side of one media session.
pub struct MediaSession {
    pub local_rtp: SocketAddr,
    /// Timeline index 0 of the inbound audio: positions are samples since this instant.
    pub origin: Instant,
    commands: mpsc::Sender<MediaCommand>,
    pub ring: MediaConsumer,
    /// At most one notice per session (the RTP timeout), so one slot never fills.
    pub notices: mpsc::Receiver<MediaNotice>,
    task: tokio::task::JoinHandle<()>,
    metrics: Arc<http_api::Metrics>,
    /// The rate received audio is recorded at: 16000 for Opus, else 8000.
    pub sample_rate: u32,
}

/// `hark_channel_overflow_total` label of the call task -> media task queue.
pub const CHANNEL_MEDIA_COMMANDS: &str = "media_commands";
/// A call has at most one prompt or key string in flight plus a stop and a remote update; a
/// full queue means the media task is wedged.
pub(crate) const COMMANDS_CAPACITY: usize = 32;

impl MediaSession {
    /// A session whose task another module runs (a browser's WebRTC media).
    pub(crate) fn from_parts(
        local_rtp: SocketAddr,
        origin: Instant,
        commands: mpsc::Sender<MediaCommand>,
        ring: MediaConsumer,
        notices: mpsc::Receiver<MediaNotice>,
        task: tokio::task::JoinHandle<()>,
        metrics: Arc<http_api::Metrics>,
    ) -> Self {
        MediaSession {
            local_rtp,
            origin,
            commands,
            ring,
            notices,
            task,
            metrics,
            sample_rate: media_engine::SAMPLE_RATE,
        }
    }

    /// Never waits: a full queue drops the command, logged and counted. A dropped `Play` drops
    /// its `done` sender, which the call reads as "finished".
    pub fn send(&self, command: MediaCommand) {
        match self.commands.try_send(command) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(command)) => {
                let n = self.metrics.channel_overflows.count(CHANNEL_MEDIA_COMMANDS);
                tracing::error!(
                    command = command.name(),
                    overflows = n,
                    capacity = COMMANDS_CAPACITY,
                    "media command queue full; command dropped"
                );
            }
            // The media task ends only when the session is dropped.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Hands out even RTP ports from the configured range, round-robin, skipping busy ones.
pub struct PortAllocator {
    min: u16,
    max: u16,
    next: AtomicU32,
}

impl PortAllocator {
    pub fn new(min: u16, max: u16) -> Self {
        let first = min + (min % 2);
        Self {
            min: first,
            max,
            next: AtomicU32::new(0),
        }
    }

    pub async fn bind(&self, ip: IpAddr) -> std::io::Result<UdpSocket> {
        let slots = (u32::from(self.max.saturating_sub(self.min)) / 2) + 1;
        for _ in 0..slots {
            let slot = self.next.fetch_add(1, Ordering::Relaxed) % slots;
            let Ok(port) = u16::try_from(u32::from(self.min) + slot * 2) else {
                continue;
            };
            if port > self.max {
                continue;
            }
            if let Ok(socket) = UdpSocket::bind(SocketAddr::new(ip, port)).await {
                return Ok(socket);
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("no free RTP port in {}..={}", self.min, self.max),
        ))
    }
}

/// The G.711 codec, for a G.711 leg.
pub fn codec_of(media: &Negotiated) -> Option<Codec> {
    match media.codec {
        AudioCodec::Pcmu => Some(Codec::Pcmu),
        AudioCodec::Pcma => Some(Codec::Pcma),
        AudioCodec::Opus => None,
    }
}

fn receiver_config(media: &Negotiated) -> ReceiverConfig {
    match codec_of(media) {
        Some(codec) => ReceiverConfig::new(codec, media.codec_pt, media.telephone_event_pt),
        None => ReceiverConfig::opus(media.codec_pt, media.telephone_event_pt),
    }
}

/// The rate a leg negotiated as `media` is recorded at.
pub fn sample_rate_of(media: &Negotiated) -> u32 {
    match media.codec {
        AudioCodec::Opus => media_engine::opus::DECODE_RATE,
        AudioCodec::Pcmu | AudioCodec::Pcma => media_engine::SAMPLE_RATE,
    }
}

/// Points `sender` at `media`'s codec and payload type.
fn configure_sender(sender: &mut RtpSender, media: &Negotiated) {
    match codec_of(media) {
        Some(codec) => sender.set_codec(codec, media.codec_pt),
        None => {
            if let Err(e) = sender.set_opus(media.codec_pt, media.telephone_event_clock) {
                tracing::error!(error = %e, "no Opus encoder: prompts go out as PCMU");
                sender.set_codec(Codec::Pcmu, 0);
            }
        }
    }
}

pub fn start(
    socket: UdpSocket,
    media: Negotiated,
    rtp_timeout: Duration,
    metrics: Arc<http_api::Metrics>,
) -> std::io::Result<MediaSession> {
    let local_rtp = socket.local_addr()?;
    let (commands, command_rx) = mpsc::channel(COMMANDS_CAPACITY);
    let (notice_tx, notices) = mpsc::channel(1);
    let (producer, ring) = media_ring(RING_CAPACITY);
    let origin = Instant::now();
    let task = tokio::spawn(run(
        origin,
        socket,
        media,
        rtp_timeout,
        command_rx,
        notice_tx,
        producer,
        metrics.clone(),
    ));
    let mut session =
        MediaSession::from_parts(local_rtp, origin, commands, ring, notices, task, metrics);
    session.sample_rate = sample_rate_of(&media);
    Ok(session)
}

/// Frames one leg of a bridge may queue for the other: 320 ms. A full queue drops frames
/// (the other side's sender stalled); it never waits.
pub const RELAY_CAPACITY: usize = 16;

/// A received audio frame goes to the bridged leg too; a full queue drops it (that leg's task
/// is stalled), never waits.
pub(crate) fn relay_frame(to: Option<&mpsc::Sender<AudioFrame>>, item: &MediaItem) {
    if let (Some(tx), MediaItem::Audio(frame)) = (to, item) {
        let _ = tx.try_send(*frame);
    }
}

/// The next frame of a bridge's other leg (pending forever when not bridged).
async fn relayed(relay: &mut Option<mpsc::Receiver<AudioFrame>>) -> Option<AudioFrame> {
    match relay {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A relayed frame as the 160 narrowband samples the sender takes (a wideband frame is
/// decimated); `None` for silence filled in for loss.
pub(crate) fn narrow_pcm(frame: &AudioFrame, out: &mut [i16; FRAME_SAMPLES]) -> Option<usize> {
    if frame.filled {
        return None;
    }
    let pcm = frame.pcm();
    let n = usize::from(frame.len).min(FRAME_SAMPLES);
    if frame.wide {
        for (i, s) in out.iter_mut().take(n).enumerate() {
            *s = pcm.get(2 * i).copied().unwrap_or(0);
        }
    } else {
        out[..n].copy_from_slice(&pcm[..n]);
    }
    Some(n)
}

/// A prompt being sent, and who waits for its end.
struct Playback {
    audio: AudioPlayout,
    done: Option<oneshot::Sender<()>>,
}

/// Adds what this call received since the last tick to the daemon's counters.
fn publish(
    metrics: &http_api::Metrics,
    receiver: &MediaReceiver,
    published: &mut media_engine::receiver::ReceiverStats,
    bytes: u64,
    published_bytes: &mut u64,
) {
    let now = receiver.stats();
    http_api::Metrics::add(
        &metrics.rtp_packets,
        now.packets.saturating_sub(published.packets),
    );
    let lost_frames =
        |s: &media_engine::receiver::ReceiverStats| s.filled_samples / FRAME_SAMPLES as u64;
    http_api::Metrics::add(
        &metrics.rtp_lost,
        lost_frames(&now).saturating_sub(lost_frames(published)),
    );
    http_api::Metrics::add(&metrics.rtp_bytes, bytes.saturating_sub(*published_bytes));
    *published = now;
    *published_bytes = bytes;
}

/// Ends a playback, telling whoever waits for it.
fn finish(playback: &mut Option<Playback>) {
    if let Some(mut p) = playback.take() {
        if let Some(done) = p.done.take() {
            let _ = done.send(());
        }
    }
}

/// Keeps the RTP clock in step with real time across silent stretches: advances the sender's
/// timestamp by what was not sent (the next packet carries the marker bit).
fn catch_up(sender: &mut RtpSender, origin: Instant, accounted: u64) -> u64 {
    let frame = FRAME_SAMPLES as u64;
    let now_samples = (origin.elapsed().as_micros() as u64 * 8 / 1000) / frame * frame;
    if now_samples > accounted {
        sender.skip(u32::try_from(now_samples - accounted).unwrap_or(u32::MAX));
        now_samples
    } else {
        accounted
    }
}

/// Keys being sent as RFC 4733 events, and who waits for their end.
struct DigitPlayback {
    keys: DigitSender,
    done: Option<oneshot::Sender<()>>,
}

/// SRTP of a call keyed by SDES (RFC 4568): the caller's key opens what it sends, ours
/// protects what we send. `scratch` holds an outgoing packet and its tag (allocated once).
struct Srtp {
    keys: sip_core::sdp::Sdes,
    inbound: SrtpContext,
    outbound: SrtpContext,
    scratch: Vec<u8>,
}

impl Srtp {
    fn of(media: &Negotiated) -> Option<Srtp> {
        let sdes = media.srtp?;
        let suite = match sdes.suite {
            sip_core::sdp::SdesSuite::AesCm128HmacSha1_80 => SrtpSuite::AesCm128HmacSha1_80,
            sip_core::sdp::SdesSuite::AesCm128HmacSha1_32 => SrtpSuite::AesCm128HmacSha1_32,
        };
        let key = |bytes: &[u8; 30]| {
            let mut k = SrtpKey {
                master_key: [0; 16],
                master_salt: [0; 14],
            };
            k.master_key.copy_from_slice(&bytes[..16]);
            k.master_salt.copy_from_slice(&bytes[16..]);
            k
        };
        Some(Srtp {
            keys: sdes,
            inbound: SrtpContext::new(suite, &key(&sdes.remote_key)),
            outbound: SrtpContext::new(suite, &key(&sdes.local_key)),
            scratch: Vec::with_capacity(PACKET_BYTES + media_engine::srtp::PROTECT_HEADROOM),
        })
    }
}

/// Sends one RTP datagram (protected first on an SRTP call). A refused send is never silent:
/// it is counted in `hark_rtp_send_errors_total`, and the call's first one is logged with the
/// address.
async fn send_rtp(
    socket: &UdpSocket,
    datagram: &[u8],
    to: SocketAddr,
    metrics: &http_api::Metrics,
    failures: &mut u64,
    srtp: &mut Option<Srtp>,
) {
    let datagram = match srtp.as_mut() {
        Some(s) => {
            s.scratch.clear();
            s.scratch.extend_from_slice(datagram);
            if let Err(e) = s.outbound.protect_rtp(&mut s.scratch) {
                tracing::warn!(error = %e, "SRTP protect failed; packet not sent");
                return;
            }
            &s.scratch[..]
        }
        None => datagram,
    };
    if let Err(e) = socket.send_to(datagram, to).await {
        http_api::Metrics::add(&metrics.rtp_send_errors, 1);
        if *failures == 0 {
            let local = socket.local_addr().ok();
            tracing::warn!(to = %to, local = ?local, error = %e, "cannot send RTP to the caller; counting further failures in hark_rtp_send_errors_total");
        }
        *failures += 1;
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    origin: Instant,
    socket: UdpSocket,
    mut media: Negotiated,
    rtp_timeout: Duration,
    mut commands: mpsc::Receiver<MediaCommand>,
    notices: mpsc::Sender<MediaNotice>,
    mut producer: media_engine::ring::MediaProducer,
    metrics: Arc<http_api::Metrics>,
) {
    // Counted locally per packet, published to the shared metrics on the housekeeping tick.
    let mut bytes: u64 = 0;
    let mut published = media_engine::receiver::ReceiverStats::default();
    let mut published_bytes: u64 = 0;
    let mut receiver = MediaReceiver::new(receiver_config(&media), origin.into_std());
    let mut send_failures: u64 = 0;
    let mut published_overruns: u64 = 0;
    let mut sender = RtpSender::new(
        Codec::Pcmu,
        media.codec_pt,
        rand::random(),
        rand::random::<u16>() & 0x7fff,
        rand::random(),
    );
    configure_sender(&mut sender, &media);
    let mut srtp = Srtp::of(&media);
    let mut srtp_refused: u64 = 0;
    let mut samples_accounted: u64 = 0;
    let mut playback: Option<Playback> = None;
    let mut digit_playback: Option<DigitPlayback> = None;
    let mut event = [0u8; EVENT_PACKET_BYTES];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    // The RTP timeout is checked by a coarse periodic tick, so packets never touch a timer.
    let mut last_rtp = Instant::now();
    let mut housekeeping = tokio::time::interval(Duration::from_millis(250));
    housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut timed_out = false;
    let mut buf = [0u8; 2048];
    let mut packet = [0u8; PACKET_BYTES];
    // One timer for the reorder hold, re-armed only when its deadline changes: packets that
    // arrive in order never touch it.
    let hold_sleep = tokio::time::sleep(Duration::from_secs(24 * 3600));
    tokio::pin!(hold_sleep);
    let mut armed: Option<Instant> = None;
    let mut relay_out: Option<mpsc::Sender<AudioFrame>> = None;
    let mut relay_in: Option<mpsc::Receiver<AudioFrame>> = None;
    let mut relay_pcm = [0i16; FRAME_SAMPLES];

    loop {
        let hold_deadline = receiver.poll_timeout().map(Instant::from_std);
        if hold_deadline != armed {
            if let Some(deadline) = hold_deadline {
                hold_sleep.as_mut().reset(deadline);
            }
            armed = hold_deadline;
        }
        tokio::select! {
            biased;
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, from)) => {
                    bytes += n as u64;
                    // SRTP authenticates before anything is parsed: a forged or replayed
                    // packet never reaches the receiver.
                    let n = match srtp.as_mut() {
                        Some(s) => match s.inbound.unprotect_rtp(&mut buf[..n]) {
                            Ok(len) => len,
                            Err(e) => {
                                if srtp_refused == 0 {
                                    tracing::info!(from = %from, error = %e, "SRTP packet refused; counting further ones");
                                }
                                srtp_refused += 1;
                                continue;
                            }
                        },
                        None => n,
                    };
                    let now = std::time::Instant::now();
                    let relay = relay_out.as_ref();
                    let on_item = |item: MediaItem| {
                        relay_frame(relay, &item);
                        producer.push(item);
                    };
                    match receiver.handle_packet(now, from, &buf[..n], on_item) {
                        Ok(PacketVerdict::ForeignSource) => {}
                        Ok(_) => last_rtp = Instant::from_std(now),
                        Err(e) => tracing::trace!(from = %from, error = %e, "RTP datagram dropped"),
                    }
                }
                Err(e) => tracing::trace!(error = %e, "RTP receive error"),
            },
            command = commands.recv() => match command {
                None => break,
                Some(MediaCommand::Play { audio, loops, done }) => {
                    finish(&mut playback);
                    if let Some(mut old) = digit_playback.take() {
                        if let Some(d) = old.done.take() { let _ = d.send(()); }
                    }
                    samples_accounted = catch_up(&mut sender, origin, samples_accounted);
                    playback = Some(Playback { audio: AudioPlayout::new(audio, loops), done: Some(done) });
                    tick.reset_immediately();
                }
                Some(MediaCommand::PlayDigits { digits, done }) => {
                    finish(&mut playback);
                    if let Some(mut old) = digit_playback.take() {
                        if let Some(d) = old.done.take() { let _ = d.send(()); }
                    }
                    samples_accounted = catch_up(&mut sender, origin, samples_accounted);
                    match media.telephone_event_pt {
                        Some(pt) => {
                            digit_playback = Some(DigitPlayback { keys: DigitSender::new(digits.chars(), pt), done: Some(done) });
                        }
                        None => {
                            // No telephone-event: the keys become audio.
                            let audio = media_engine::playout::dtmf_audio(&digits).into();
                            playback = Some(Playback { audio: AudioPlayout::new(audio, 1), done: Some(done) });
                        }
                    }
                    tick.reset_immediately();
                }
                Some(MediaCommand::Stop) => {
                    if let Some(mut old) = digit_playback.take() {
                        if let Some(d) = old.done.take() { let _ = d.send(()); }
                    }
                    finish(&mut playback);
                }
                Some(MediaCommand::InjectDtmf(digit)) => {
                    receiver.inject_dtmf(digit, std::time::Instant::now(), |item| { producer.push(item); });
                }
                Some(MediaCommand::Renegotiate(new_media)) => {
                    // New keys (or SRTP starting or ending) restart the contexts; the same
                    // keys keep their rollover counters.
                    if new_media.srtp != srtp.as_ref().map(|s| s.keys) {
                        srtp = Srtp::of(&new_media);
                    }
                    media = new_media;
                    receiver.renegotiate(receiver_config(&media));
                    configure_sender(&mut sender, &media);
                    // Keys still being sent follow a renumbered telephone-event (101 if it went).
                    if let Some(digits) = digit_playback.as_mut() {
                        digits.keys.set_event_pt(media.telephone_event_pt.unwrap_or(101));
                    }
                }
                Some(MediaCommand::AcceptAnswer { result, .. }) => {
                    let _ = result.send(Err("a SIP leg's media takes no WebRTC answer".into()));
                }
                Some(MediaCommand::RelayOut(tx)) => relay_out = tx,
                Some(MediaCommand::RelayIn(rx)) => {
                    relay_in = rx;
                    samples_accounted = catch_up(&mut sender, origin, samples_accounted);
                }
            },
            Some(frame) = relayed(&mut relay_in) => {
                // A prompt (ringback, whisper, keys) takes precedence over the other leg.
                let may_send = matches!(media.remote_direction, Direction::SendRecv | Direction::RecvOnly);
                if playback.is_none() && digit_playback.is_none() {
                    if let Some(n) = narrow_pcm(&frame, &mut relay_pcm) {
                        samples_accounted = catch_up(&mut sender, origin, samples_accounted);
                        let len = sender.packetize(&relay_pcm[..n], &mut packet);
                        samples_accounted += n as u64;
                        if may_send && len > 0 {
                            let to = receiver.latched().unwrap_or(media.remote_rtp);
                            send_rtp(&socket, &packet[..len], to, &metrics, &mut send_failures, &mut srtp).await;
                        }
                    }
                }
            },
            _ = tick.tick(), if playback.is_some() || digit_playback.is_some() => {
                // On hold (the caller sends only or nothing) we must not send.
                let may_send = matches!(media.remote_direction, Direction::SendRecv | Direction::RecvOnly);
                let to = receiver.latched().unwrap_or(media.remote_rtp);
                if let Some(digits) = digit_playback.as_mut() {
                    samples_accounted += FRAME_SAMPLES as u64;
                    match digits.keys.next(&mut sender, &mut event) {
                        DigitTick::Event { packet, .. } => {
                            if may_send {
                                send_rtp(&socket, packet, to, &metrics, &mut send_failures, &mut srtp).await;
                            }
                        }
                        DigitTick::Gap => sender.skip(FRAME_SAMPLES as u32),
                        DigitTick::Finished => {
                            if let Some(mut d) = digit_playback.take() {
                                if let Some(done) = d.done.take() { let _ = done.send(()); }
                            }
                        }
                    }
                } else {
                    let finished = match playback.as_mut().and_then(|p| p.audio.next_frame()) {
                        Some(frame) => {
                            let len = sender.packetize(frame, &mut packet);
                            samples_accounted += FRAME_SAMPLES as u64;
                            if may_send && len > 0 {
                                send_rtp(&socket, &packet[..len], to, &metrics, &mut send_failures, &mut srtp).await;
                            }
                            false
                        }
                        None => true,
                    };
                    if finished {
                        finish(&mut playback);
                    }
                }
            },
            _ = &mut hold_sleep, if armed.is_some() => {
                armed = None;
                let relay = relay_out.as_ref();
                receiver.handle_timeout(std::time::Instant::now(), |item| {
                    relay_frame(relay, &item);
                    producer.push(item);
                });
            },
            _ = housekeeping.tick() => {
                publish(&metrics, &receiver, &mut published, bytes, &mut published_bytes);
                publish_overruns(&metrics, &producer, &mut published_overruns);
                if !timed_out && last_rtp.elapsed() >= rtp_timeout {
                    timed_out = true;
                    let _ = notices.try_send(MediaNotice::RtpTimeout);
                }
            },
        }
    }
    publish_overruns(&metrics, &producer, &mut published_overruns);
}

/// Ring overruns since the last call go to `hark_media_ring_overruns_total`; a call's first is
/// logged, since each is audio missing from its recording.
fn publish_overruns(
    metrics: &http_api::Metrics,
    producer: &media_engine::ring::MediaProducer,
    published: &mut u64,
) {
    let dropped = producer.dropped();
    if dropped > *published {
        if *published == 0 {
            tracing::warn!(
                dropped,
                "the recorder fell behind: audio dropped at the call's ring; counting in hark_media_ring_overruns_total"
            );
        }
        http_api::Metrics::add(&metrics.ring_overruns, dropped - *published);
        *published = dropped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_overruns_are_published_once_each() {
        let metrics = http_api::Metrics::default();
        let (mut producer, _consumer) = media_engine::ring::media_ring(2);
        let mut published = 0;
        for _ in 0..5 {
            producer.push(media_engine::MediaItem::Dtmf(media_engine::DtmfEvent {
                digit: '1',
                position: 0,
                source: media_engine::DtmfSource::Rfc4733,
            }));
        }
        publish_overruns(&metrics, &producer, &mut published);
        publish_overruns(&metrics, &producer, &mut published);
        assert_eq!(metrics.ring_overruns.load(Ordering::Relaxed), 3);
    }

    /// A media task that stops reading (wedged): the call task never waits on it; commands past
    /// the queue's capacity are dropped and counted, and a dropped `Play` reads as finished.
    #[tokio::test]
    async fn a_full_media_command_queue_drops_and_counts() {
        let metrics = Arc::new(http_api::Metrics::default());
        let (commands, _unread) = mpsc::channel(COMMANDS_CAPACITY);
        let (_notice_tx, notices) = mpsc::channel(1);
        let session = MediaSession {
            local_rtp: "127.0.0.1:9".parse().expect("addr"),
            origin: Instant::now(),
            commands,
            ring: media_engine::ring::media_ring(2).1,
            notices,
            task: tokio::spawn(async {}),
            metrics: metrics.clone(),
            sample_rate: 8000,
        };
        for _ in 0..COMMANDS_CAPACITY {
            session.send(MediaCommand::Stop);
        }
        assert_eq!(metrics.channel_overflows.get(CHANNEL_MEDIA_COMMANDS), 0);
        let (done, played) = oneshot::channel();
        session.send(MediaCommand::Play {
            audio: Arc::from(vec![0i16; 160]),
            loops: 1,
            done,
        });
        session.send(MediaCommand::Stop);
        assert_eq!(metrics.channel_overflows.get(CHANNEL_MEDIA_COMMANDS), 2);
        assert!(
            played.await.is_err(),
            "the dropped Play's done is dropped too"
        );
    }

    /// The defect linphone showed: an IPv4 socket asked to send to an IPv6 address. The
    /// failure is counted, not swallowed.
    #[tokio::test]
    async fn a_refused_rtp_send_is_counted() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let metrics = http_api::Metrics::default();
        let mut failures = 0;
        let to: SocketAddr = "[::1]:9".parse().expect("addr");
        for _ in 0..2 {
            send_rtp(
                &socket,
                &[0x80; 172],
                to,
                &metrics,
                &mut failures,
                &mut None,
            )
            .await;
        }
        assert_eq!(failures, 2);
        assert_eq!(metrics.rtp_send_errors.load(Ordering::Relaxed), 2);
        let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind peer");
        let to = peer.local_addr().expect("addr");
        send_rtp(
            &socket,
            &[0x80; 172],
            to,
            &metrics,
            &mut failures,
            &mut None,
        )
        .await;
        assert_eq!(failures, 2, "a send that works is no failure");
    }
}
