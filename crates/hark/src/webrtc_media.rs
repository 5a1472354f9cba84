//! One task per browser call owning its UDP socket and its [`WebRtcLeg`] (ICE-lite,
//! DTLS-SRTP): the same [`MediaSession`] to the call task as a SIP call's RTP task. Received
//! frames are re-framed as RTP for the unchanged `MediaReceiver` (reorder, gap fill, G.711,
//! RFC 4733), so a browser's audio and keys reach the call core exactly as a SIP caller's do.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use media_engine::opus::{OpusEncoder, MAX_PACKET, TS_PER_TIMELINE_SAMPLE};
use media_engine::playout::AudioPlayout;
use media_engine::receiver::MediaReceiver;
use media_engine::ring::media_ring;
use media_engine::{g711, FRAME_SAMPLES};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use webrtc_endpoint::{AudioCodec, Chosen, LegConfig, Output, WebRtcLeg};

use crate::media::{MediaCommand, MediaNotice, MediaSession};

/// The receiver latches onto one source; every frame comes out of the leg, so one made-up
/// address stands for the browser.
const BROWSER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);
/// RFC 4733 key spacing: a 160 ms event, its end packets and a gap (str0m refuses < 50 ms).
const KEY_SPACING: Duration = Duration::from_millis(260);
const PAUSE: Duration = Duration::from_millis(500);

/// Which side of the offer/answer a browser leg is on.
pub enum Negotiation<'a> {
    /// The browser called (`device.connect()`): answer its offer.
    Answer { offer_sdp: &'a str },
    /// We call the browser: make the offer; its answer comes as `MediaCommand::AcceptAnswer`.
    Offer,
}

/// Starts the media task on `socket` (its address, or `advertised` when bound to a wildcard,
/// is the ICE host candidate) and returns our SDP for the browser: the answer to its offer, or
/// our offer.
pub fn start(
    socket: UdpSocket,
    advertised: SocketAddr,
    config: &LegConfig,
    negotiation: Negotiation<'_>,
    rtp_timeout: Duration,
    metrics: Arc<http_api::Metrics>,
) -> Result<(MediaSession, String), String> {
    let origin = Instant::now();
    let now = origin.into_std();
    let (leg, sdp, receiver) = match negotiation {
        Negotiation::Answer { offer_sdp } => {
            let (leg, answer) = WebRtcLeg::accept_offer(config, now, offer_sdp, advertised)
                .map_err(|e| format!("WebRTC offer refused: {e}"))?;
            let receiver = receiver_for(answer.chosen, now);
            (
                leg,
                answer.sdp,
                Some((receiver, answer.chosen.sample_rate())),
            )
        }
        Negotiation::Offer => {
            let (leg, offer) = WebRtcLeg::create_offer(config, now, advertised)
                .map_err(|e| format!("WebRTC offer not made: {e}"))?;
            (leg, offer, None)
        }
    };
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let (commands, command_rx) = mpsc::channel(crate::media::COMMANDS_CAPACITY);
    let (notice_tx, notices) = mpsc::channel(1);
    let (producer, ring) = media_ring(crate::media::RING_CAPACITY);
    let sample_rate = receiver.as_ref().map(|(_, rate)| *rate);
    let receiver = receiver.map(|(r, _)| r);
    let task = tokio::spawn(run(Task {
        socket,
        origin: origin.into_std(),
        leg,
        receiver,
        rtp_timeout,
        commands: command_rx,
        notices: notice_tx,
        producer,
    }));
    let mut session =
        MediaSession::from_parts(local, origin, commands, ring, notices, task, metrics);
    if let Some(rate) = sample_rate {
        session.sample_rate = rate;
    }
    Ok((session, sdp))
}

/// The receiver for what was negotiated; the media timeline starts at `origin`.
fn receiver_for(chosen: Chosen, origin: std::time::Instant) -> MediaReceiver {
    MediaReceiver::new(chosen.receiver_config(), origin)
}

/// Prompt audio (8 kHz) as the leg's codec: G.711, or Opus on the 48 kHz RTP clock.
enum AudioEncoder {
    G711(media_engine::Codec),
    Opus(Box<OpusEncoder>),
}

impl AudioEncoder {
    fn for_leg(leg: &WebRtcLeg) -> Self {
        match leg.chosen().map(|c| (c.codec, c.codec.media_engine())) {
            Some((_, Some(codec))) => AudioEncoder::G711(codec),
            Some((AudioCodec::Opus, None)) => match OpusEncoder::new() {
                Ok(e) => AudioEncoder::Opus(Box::new(e)),
                Err(e) => {
                    tracing::error!(error = %e, "no Opus encoder; prompts are not sent");
                    AudioEncoder::G711(media_engine::Codec::Pcmu)
                }
            },
            _ => AudioEncoder::G711(media_engine::Codec::Pcmu),
        }
    }

    /// RTP timestamp units per 20 ms frame.
    fn frame_ticks(&self) -> u32 {
        match self {
            AudioEncoder::G711(_) => FRAME_SAMPLES as u32,
            AudioEncoder::Opus(_) => FRAME_SAMPLES as u32 * TS_PER_TIMELINE_SAMPLE,
        }
    }

    /// Encodes one frame (up to 160 samples; a short last frame is padded with silence for
    /// Opus) into `out`; returns the payload length.
    fn encode(&mut self, frame: &[i16], out: &mut [u8; MAX_PACKET]) -> Option<usize> {
        match self {
            AudioEncoder::G711(codec) => {
                let n = frame.len().min(FRAME_SAMPLES);
                g711::encode(*codec, &frame[..n], &mut out[..n]);
                Some(n)
            }
            AudioEncoder::Opus(encoder) => {
                let mut pcm = [0i16; FRAME_SAMPLES];
                let n = frame.len().min(FRAME_SAMPLES);
                pcm[..n].copy_from_slice(&frame[..n]);
                encoder
                    .encode(&pcm, out)
                    .map_err(|e| tracing::debug!(error = %e, "Opus frame not encoded"))
                    .ok()
            }
        }
    }
}

/// Keys being sent, one at a time, and who waits for the last.
struct Keys {
    keys: std::collections::VecDeque<char>,
    next_at: Instant,
    done: Option<oneshot::Sender<()>>,
}

fn finish(done: &mut Option<oneshot::Sender<()>>) {
    if let Some(d) = done.take() {
        let _ = d.send(());
    }
}

/// What the media task owns.
struct Task {
    socket: UdpSocket,
    /// Timeline index 0 of the received audio.
    origin: std::time::Instant,
    leg: WebRtcLeg,
    /// Set once the codec is known: at once for the browser's offer, at its answer to ours.
    receiver: Option<MediaReceiver>,
    rtp_timeout: Duration,
    commands: mpsc::Receiver<MediaCommand>,
    notices: mpsc::Sender<MediaNotice>,
    producer: media_engine::ring::MediaProducer,
}

async fn run(task: Task) {
    let Task {
        socket,
        origin,
        mut leg,
        mut receiver,
        rtp_timeout,
        mut commands,
        notices,
        mut producer,
    } = task;
    let mut encoder = AudioEncoder::for_leg(&leg);
    let mut buf = vec![0u8; 2048];
    let mut rtp = Vec::with_capacity(2048);
    let mut encoded = [0u8; MAX_PACKET];
    let mut playback: Option<(AudioPlayout, Option<oneshot::Sender<()>>)> = None;
    let mut keys: Option<Keys> = None;
    let mut rtp_ts: u32 = rand::random();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut housekeeping = tokio::time::interval(Duration::from_millis(250));
    housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_media = Instant::now();
    let mut timed_out = false;
    let mut relay_out: Option<mpsc::Sender<media_engine::AudioFrame>> = None;
    let mut relay_in: Option<mpsc::Receiver<media_engine::AudioFrame>> = None;
    let mut relay_pcm = [0i16; media_engine::FRAME_SAMPLES];
    loop {
        let deadline = loop {
            match leg.poll_output() {
                Ok(Output::Transmit(t)) => {
                    if let Err(e) = socket.send_to(&t.bytes, t.to).await {
                        tracing::debug!(to = %t.to, error = %e, "WebRTC send failed");
                    }
                }
                Ok(Output::Connected) => tracing::info!("browser media connected"),
                Ok(Output::Disconnected) => {
                    tracing::info!("browser media disconnected");
                    if !timed_out {
                        timed_out = true;
                        let _ = notices.try_send(MediaNotice::RtpTimeout);
                    }
                }
                Ok(Output::Audio(mut media)) => {
                    // Chrome sends keys on the 8 kHz telephone-event even beside Opus (timed
                    // on the 48 kHz clock): every negotiated event type is the receiver's.
                    if media.is_telephone_event() {
                        if let Some(pt) = leg.chosen().and_then(|c| c.telephone_event_pt) {
                            media.pt = pt;
                        }
                    }
                    media.write_rtp(&mut rtp);
                    let now = media.arrival;
                    last_media = Instant::from_std(now);
                    if let Some(receiver) = receiver.as_mut() {
                        let relay = relay_out.as_ref();
                        let _ = receiver.handle_packet(now, BROWSER, &rtp, |item| {
                            crate::media::relay_frame(relay, &item);
                            producer.push(item);
                        });
                    }
                }
                Ok(Output::Timeout(at)) => break Instant::from_std(at),
                Err(e) => {
                    tracing::debug!(error = %e, "WebRTC leg");
                    break Instant::now() + Duration::from_millis(20);
                }
            }
        };
        let hold = receiver
            .as_ref()
            .and_then(MediaReceiver::poll_timeout)
            .map(Instant::from_std);
        let wake = hold.map_or(deadline, |h| h.min(deadline));
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = received {
                    if let Err(e) = leg.handle_datagram(Instant::now().into_std(), from, &buf[..n]) {
                        tracing::trace!(from = %from, error = %e, "datagram dropped");
                    }
                }
            }
            command = commands.recv() => match command {
                None => break,
                Some(MediaCommand::Play { audio, loops, done }) => {
                    if let Some((_, mut d)) = playback.take() { finish(&mut d); }
                    if let Some(mut k) = keys.take() { finish(&mut k.done); }
                    playback = Some((AudioPlayout::new(audio, loops), Some(done)));
                    tick.reset_immediately();
                }
                Some(MediaCommand::PlayDigits { digits, done }) => {
                    if let Some((_, mut d)) = playback.take() { finish(&mut d); }
                    if let Some(mut k) = keys.take() { finish(&mut k.done); }
                    keys = Some(Keys { keys: digits.chars().collect(), next_at: Instant::now(), done: Some(done) });
                    tick.reset_immediately();
                }
                Some(MediaCommand::Stop) => {
                    if let Some((_, mut d)) = playback.take() { finish(&mut d); }
                    if let Some(mut k) = keys.take() { finish(&mut k.done); }
                }
                Some(MediaCommand::InjectDtmf(digit)) => {
                    if let Some(receiver) = receiver.as_mut() {
                        receiver.inject_dtmf(digit, std::time::Instant::now(), |item| { producer.push(item); });
                    }
                }
                // A browser's media is renegotiated by ICE restart, not by SIP re-INVITE.
                Some(MediaCommand::Renegotiate(_)) => {}
                Some(MediaCommand::RelayOut(tx)) => relay_out = tx,
                Some(MediaCommand::RelayIn(rx)) => relay_in = rx,
                Some(MediaCommand::AcceptAnswer { sdp, result }) => {
                    let accepted = match (&receiver, leg.accept_answer(&sdp)) {
                        (Some(_), _) => Err("the browser already answered".to_string()),
                        (None, Err(e)) => Err(format!("WebRTC answer refused: {e}")),
                        // The timeline starts at the task's origin, as for a SIP call.
                        (None, Ok(chosen)) => {
                            receiver = Some(receiver_for(chosen, origin));
                            encoder = AudioEncoder::for_leg(&leg);
                            last_media = Instant::now();
                            Ok(chosen.sample_rate())
                        }
                    };
                    let _ = result.send(accepted);
                }
            },
            Some(frame) = async {
                match relay_in.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if playback.is_none() && keys.is_none() {
                    if let Some(n) = crate::media::narrow_pcm(&frame, &mut relay_pcm) {
                        if let Some(len) = encoder.encode(&relay_pcm[..n], &mut encoded) {
                            let _ = leg.write_audio(Instant::now().into_std(), rtp_ts, &encoded[..len]);
                        }
                        rtp_ts = rtp_ts.wrapping_add(encoder.frame_ticks());
                    }
                }
            }
            _ = tick.tick(), if playback.is_some() || keys.is_some() => {
                let now = Instant::now();
                if let Some(k) = keys.as_mut() {
                    if now >= k.next_at {
                        match k.keys.pop_front() {
                            Some('w' | 'W') => k.next_at = now + PAUSE,
                            Some(key) => {
                                if let Err(e) = leg.send_digit(now.into_std(), key) {
                                    tracing::debug!(key = %key, error = %e, "key not sent");
                                }
                                k.next_at = now + KEY_SPACING;
                            }
                            None => {
                                if let Some(mut k) = keys.take() { finish(&mut k.done); }
                            }
                        }
                    }
                } else if let Some((audio, done)) = playback.as_mut() {
                    match audio.next_frame() {
                        Some(frame) => {
                            if let Some(n) = encoder.encode(frame, &mut encoded) {
                                let _ = leg.write_audio(now.into_std(), rtp_ts, &encoded[..n]);
                            }
                            rtp_ts = rtp_ts.wrapping_add(encoder.frame_ticks());
                        }
                        None => {
                            finish(done);
                            playback = None;
                        }
                    }
                }
            }
            _ = housekeeping.tick() => {
                // The RTP timeout counts from the answer (the receiver is made then): a browser
                // still ringing sends nothing.
                if receiver.is_some() && !timed_out && last_media.elapsed() >= rtp_timeout {
                    timed_out = true;
                    let _ = notices.try_send(MediaNotice::RtpTimeout);
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                let now = std::time::Instant::now();
                if let Err(e) = leg.handle_timeout(now) {
                    tracing::debug!(error = %e, "WebRTC timeout");
                }
                if let Some(receiver) = receiver.as_mut() {
                    receiver.handle_timeout(now, |item| { producer.push(item); });
                }
            }
        }
    }
    leg.close();
}
