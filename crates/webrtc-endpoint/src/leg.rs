//! One browser call's media: a `str0m::Rtc` as an ICE-lite, DTLS-server endpoint with one
//! host candidate and one audio m-line.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::CodecExtra;
use str0m::media::{Direction, Frequency, MediaData, MediaKind, MediaTime, Mid, TelephoneEvent};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Rtc};

use crate::codec::{self, AudioCodec, Chosen};
use crate::error::{SdpKind, WebRtcError};
use crate::LegConfig;

/// SSRC of the RTP that [`ReceivedMedia::write_rtp`] synthesizes. str0m does not surface the
/// sender's SSRC per frame; one fixed value keeps the receiver on one stream.
pub const SYNTHETIC_SSRC: u32 = 0x5745_4252; // "WEBR"
/// How long a key sounds, as Hark's `DigitSender` sends it for SIP (8 × 20 ms).
const DIGIT_TONE: Duration = Duration::from_millis(160);
/// RFC 4733 volume: -10 dBm0, what phones send.
const DIGIT_VOLUME: u8 = 10;
/// Written audio timestamps are extended from 32 bits starting here, so a caller's timestamp
/// that steps back a little at the start stays a valid str0m `MediaTime`.
const EXTENDED_BASE: u64 = 1 << 32;

/// What a [`WebRtcLeg`] wants done.
#[derive(Debug)]
pub enum Output {
    /// Send `bytes` from the leg's socket to `to`.
    Transmit(Transmit),
    /// ICE and DTLS are up: audio written from now on is sent.
    Connected,
    /// ICE lost the browser, or the DTLS session closed: treat as media loss.
    Disconnected,
    /// One received audio frame or telephone-event report.
    Audio(ReceivedMedia),
    /// Nothing more until this instant (or the next datagram): call
    /// [`WebRtcLeg::handle_timeout`] then.
    Timeout(Instant),
}

#[derive(Debug)]
pub struct Transmit {
    pub to: SocketAddr,
    /// Owned by str0m already; moved, not copied.
    pub bytes: Vec<u8>,
}

/// A negotiated SDP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub sdp: String,
    pub chosen: Chosen,
}

pub struct WebRtcLeg {
    rtc: Rtc,
    /// The socket's address: the host candidate, and the destination of every datagram.
    local: SocketAddr,
    mid: Mid,
    opus: bool,
    /// `None` only on the offering side until the answer came.
    chosen: Option<Chosen>,
    pending: Option<SdpPendingOffer>,
    /// Extended RTP time of the last audio frame written.
    sent_time: Option<u64>,
}

impl std::fmt::Debug for WebRtcLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcLeg")
            .field("local", &self.local)
            .field("mid", &self.mid)
            .field("chosen", &self.chosen)
            .field("connected", &self.rtc.is_connected())
            .finish_non_exhaustive()
    }
}

impl WebRtcLeg {
    /// Answers a browser's offer (an outgoing client call): chooses one codec by the offer's
    /// order, builds the endpoint for it and returns the answer, which carries the complete
    /// host candidate for `local` (the browser's offer has none; it will send STUN checks).
    pub fn accept_offer(
        config: &LegConfig,
        now: Instant,
        offer_sdp: &str,
        local: SocketAddr,
    ) -> Result<(Self, Answer), WebRtcError> {
        let offer = SdpOffer::from_sdp_string(offer_sdp).map_err(|source| WebRtcError::Sdp {
            kind: SdpKind::Offer,
            source,
        })?;
        let codec = codec::choose(&offer, config.opus)?;
        let mut rtc = build(config, now, local, &[codec])?;
        let answer =
            rtc.sdp_api()
                .accept_offer(offer)
                .map_err(|source| WebRtcError::Negotiation {
                    kind: SdpKind::Offer,
                    source,
                })?;
        let mid = audio_mid(&answer).ok_or(WebRtcError::NoAudio(SdpKind::Offer))?;
        let chosen =
            Chosen::negotiated(&rtc, mid, codec).ok_or_else(|| WebRtcError::NoCommonCodec {
                kind: SdpKind::Offer,
                offered: Vec::new(),
            })?;
        let leg = Self {
            rtc,
            local,
            mid,
            opus: config.opus,
            chosen: Some(chosen),
            pending: None,
            sent_time: None,
        };
        let answer = Answer {
            sdp: answer.to_sdp_string(),
            chosen,
        };
        Ok((leg, answer))
    }

    /// Offers audio to a browser (an incoming client call): every codec we take, PCMU first
    /// (Opus first when enabled). Complete with [`accept_answer`](Self::accept_answer).
    pub fn create_offer(
        config: &LegConfig,
        now: Instant,
        local: SocketAddr,
    ) -> Result<(Self, String), WebRtcError> {
        let codecs: &[AudioCodec] = if config.opus {
            &[AudioCodec::Opus, AudioCodec::Pcmu, AudioCodec::Pcma]
        } else {
            &[AudioCodec::Pcmu, AudioCodec::Pcma]
        };
        let mut rtc = build(config, now, local, codecs)?;
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().expect("adding an m-line is a change");
        let leg = Self {
            rtc,
            local,
            mid,
            opus: config.opus,
            chosen: None,
            pending: Some(pending),
            sent_time: None,
        };
        Ok((leg, offer.to_sdp_string()))
    }

    /// Applies the browser's answer to [`create_offer`](Self::create_offer)'s offer.
    pub fn accept_answer(&mut self, answer_sdp: &str) -> Result<Chosen, WebRtcError> {
        let answer = SdpAnswer::from_sdp_string(answer_sdp).map_err(|source| WebRtcError::Sdp {
            kind: SdpKind::Answer,
            source,
        })?;
        let codec = codec::choose_answered(&answer, self.opus)?;
        let pending = self.pending.take().ok_or(WebRtcError::NoOfferPending)?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|source| WebRtcError::Negotiation {
                kind: SdpKind::Answer,
                source,
            })?;
        let chosen = Chosen::negotiated(&self.rtc, self.mid, codec).ok_or_else(|| {
            WebRtcError::NoCommonCodec {
                kind: SdpKind::Answer,
                offered: Vec::new(),
            }
        })?;
        self.chosen = Some(chosen);
        Ok(chosen)
    }

    /// Feeds one datagram received on the leg's socket.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), WebRtcError> {
        let receive =
            Receive::new(Protocol::Udp, from, self.local, datagram).map_err(|source| {
                WebRtcError::Datagram {
                    from,
                    len: datagram.len(),
                    source,
                }
            })?;
        let input = Input::Receive(now, receive);
        if !self.rtc.accepts(&input) {
            return Err(WebRtcError::ForeignSource(from));
        }
        self.rtc
            .handle_input(input)
            .map_err(|source| WebRtcError::Rtc {
                what: "handle a datagram",
                source,
            })
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), WebRtcError> {
        self.rtc
            .handle_input(Input::Timeout(now))
            .map_err(|source| WebRtcError::Rtc {
                what: "handle a timeout",
                source,
            })
    }

    /// The next thing to do; drain until [`Output::Timeout`] after every mutation.
    pub fn poll_output(&mut self) -> Result<Output, WebRtcError> {
        loop {
            let output = self.rtc.poll_output().map_err(|source| WebRtcError::Rtc {
                what: "poll",
                source,
            })?;
            let event = match output {
                str0m::Output::Timeout(at) => return Ok(Output::Timeout(at)),
                str0m::Output::Transmit(t) => {
                    return Ok(Output::Transmit(Transmit {
                        to: t.destination,
                        bytes: t.contents.into(),
                    }))
                }
                str0m::Output::Event(event) => event,
            };
            match event {
                Event::Connected => return Ok(Output::Connected),
                Event::IceConnectionStateChange(IceConnectionState::Disconnected)
                | Event::Closed => return Ok(Output::Disconnected),
                Event::MediaData(data) => return Ok(Output::Audio(ReceivedMedia::new(data))),
                // MediaAdded (the mid is known from the SDP), stats are off, no video/data.
                _ => {}
            }
        }
    }

    /// Sends one encoded frame (20 ms of G.711: 160 bytes) with the caller's RTP timestamp in
    /// the codec's clock. Frames written before [`Output::Connected`] are dropped by str0m.
    pub fn write_audio(
        &mut self,
        now: Instant,
        rtp_timestamp: u32,
        payload: &[u8],
    ) -> Result<(), WebRtcError> {
        let chosen = self.chosen.ok_or(WebRtcError::NotNegotiated)?;
        let time = self.extend(rtp_timestamp);
        let clock = frequency(chosen.codec);
        let writer = self
            .rtc
            .writer(self.mid)
            .ok_or(WebRtcError::NotNegotiated)?;
        // str0m takes the frame as `Arc<[u8]>`: one copy per frame, its API's cost.
        writer
            .write(chosen.pt.into(), now, MediaTime::new(time, clock), payload)
            .map_err(|source| WebRtcError::Rtc {
                what: "write audio",
                source,
            })
    }

    /// Sends `key` as an RFC 4733 event (160 ms, three end packets) through str0m's
    /// telephone-event writer, timed one frame after the last audio written. Keys must be at
    /// least 50 ms apart (str0m refuses sooner ones).
    pub fn send_digit(&mut self, now: Instant, key: char) -> Result<(), WebRtcError> {
        let code = media_engine::rfc4733::event_code(key).ok_or(WebRtcError::NotDtmf(key))?;
        let chosen = self.chosen.ok_or(WebRtcError::NotNegotiated)?;
        let clock = frequency(chosen.codec);
        let frame = u64::from(chosen.codec.clock_rate() / 50);
        let start = self.sent_time.map_or(EXTENDED_BASE, |t| t + frame);
        let event = TelephoneEvent {
            event: code,
            end: true,
            volume: DIGIT_VOLUME,
            duration: DIGIT_TONE,
        };
        let writer = self
            .rtc
            .writer(self.mid)
            .ok_or(WebRtcError::NotNegotiated)?;
        writer
            .telephone_event(event)
            .write(chosen.pt.into(), now, MediaTime::new(start, clock), &[][..])
            .map_err(|source| WebRtcError::Rtc {
                what: "send a telephone event",
                source,
            })
    }

    /// Ends the session; the leg emits nothing more.
    pub fn close(&mut self) {
        self.rtc.disconnect();
    }

    pub fn chosen(&self) -> Option<Chosen> {
        self.chosen
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    pub fn is_connected(&self) -> bool {
        self.rtc.is_connected()
    }

    /// Extends a 32-bit RTP timestamp against the last one written.
    fn extend(&mut self, timestamp: u32) -> u64 {
        let time = match self.sent_time {
            None => EXTENDED_BASE + u64::from(timestamp),
            Some(last) => {
                let step = i64::from(timestamp.wrapping_sub(last as u32) as i32);
                last.saturating_add_signed(step)
            }
        };
        self.sent_time = Some(time);
        time
    }
}

/// An `Rtc` for `codecs` with the host candidate `local`.
fn build(
    config: &LegConfig,
    now: Instant,
    local: SocketAddr,
    codecs: &[AudioCodec],
) -> Result<Rtc, WebRtcError> {
    let mut builder = config.builder();
    codec::configure(builder.codec_config(), codecs);
    let mut rtc = builder.build(now);
    let candidate =
        Candidate::host(local, Protocol::Udp).map_err(|source| WebRtcError::Candidate {
            addr: local,
            source,
        })?;
    rtc.add_local_candidate(candidate);
    Ok(rtc)
}

/// The mid of the answer's audio m-line (str0m writes `a=mid` on every line it answers).
fn audio_mid(answer: &SdpAnswer) -> Option<Mid> {
    answer
        .media_lines
        .iter()
        .find(|m| !m.disabled && m.rtp_params().iter().any(|p| p.spec().codec.is_audio()))
        .map(|m| m.mid())
}

fn frequency(codec: AudioCodec) -> Frequency {
    match codec {
        AudioCodec::Pcmu | AudioCodec::Pcma => Frequency::EIGHT_KHZ,
        AudioCodec::Opus => Frequency::FORTY_EIGHT_KHZ,
    }
}

/// One received frame, with what an RTP header needs to carry it into Hark's receiver.
#[derive(Debug, Clone)]
pub struct ReceivedMedia {
    pub pt: u8,
    /// The RTP sequence number (the last one of the frame).
    pub sequence: u16,
    /// The RTP timestamp, in the payload type's clock.
    pub timestamp: u32,
    /// First packet of a talkspurt (or of a telephone event).
    pub marker: bool,
    /// When its first packet came in.
    pub arrival: Instant,
    payload: Payload,
}

#[derive(Debug, Clone)]
enum Payload {
    Frame(Arc<[u8]>),
    /// One RFC 4733 report block, rebuilt from str0m's parsed event.
    Event([u8; 4]),
}

impl ReceivedMedia {
    fn new(data: MediaData) -> Self {
        let clock = data.params.spec().clock_rate.get();
        let payload = match data.codec_extra {
            CodecExtra::Tele(event) => Payload::Event(event_block(event, clock)),
            _ => Payload::Frame(data.data),
        };
        Self {
            pt: *data.pt,
            sequence: **data.seq_range.end() as u16,
            timestamp: data.time.numer() as u32,
            marker: data.audio_start_of_talk_spurt,
            arrival: data.network_time,
            payload,
        }
    }

    /// The codec frame, or the 4-byte RFC 4733 block of a telephone event.
    pub fn payload(&self) -> &[u8] {
        match &self.payload {
            Payload::Frame(bytes) => bytes,
            Payload::Event(block) => block,
        }
    }

    pub fn is_telephone_event(&self) -> bool {
        matches!(self.payload, Payload::Event(_))
    }

    /// Writes the frame as one RTP datagram (12-byte header, SSRC [`SYNTHETIC_SSRC`]) into
    /// `out`, replacing its contents; reuse `out` and nothing is allocated per packet.
    pub fn write_rtp(&self, out: &mut Vec<u8>) {
        out.clear();
        out.push(0x80);
        out.push((u8::from(self.marker) << 7) | (self.pt & 0x7F));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&SYNTHETIC_SSRC.to_be_bytes());
        out.extend_from_slice(self.payload());
    }
}

/// RFC 4733 §2.3: event, E|R|volume, duration in clock ticks (saturating at 16 bits).
fn event_block(event: TelephoneEvent, clock: u32) -> [u8; 4] {
    let ticks = event.duration.as_micros() * u128::from(clock) / 1_000_000;
    let duration = u16::try_from(ticks).unwrap_or(u16::MAX).to_be_bytes();
    let flags = (u8::from(event.end) << 7) | (event.volume & 0x3F);
    [event.event, flags, duration[0], duration[1]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4733_block_is_rebuilt_in_the_event_clock() {
        let event = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: Duration::from_millis(160),
        };
        assert_eq!(event_block(event, 8000), [11, 0x8A, 0x05, 0x00]);
        assert_eq!(event_block(event, 48000), [11, 0x8A, 0x1E, 0x00]);
        let long = TelephoneEvent {
            duration: Duration::from_secs(5),
            end: false,
            ..event
        };
        assert_eq!(event_block(long, 48000), [11, 10, 0xFF, 0xFF]);
    }

    #[test]
    fn synthesized_rtp_parses_as_the_frame() {
        let media = ReceivedMedia {
            pt: 0,
            sequence: 0xFFFF,
            timestamp: 0x0102_0304,
            marker: true,
            arrival: Instant::now(),
            payload: Payload::Frame(Arc::from(&[1u8, 2, 3][..])),
        };
        let mut out = Vec::new();
        media.write_rtp(&mut out);
        let view = media_engine::rtp::parse(&out).expect("valid RTP");
        assert_eq!(view.payload_type, 0);
        assert!(view.marker);
        assert_eq!(
            (view.sequence, view.timestamp, view.ssrc),
            (0xFFFF, 0x0102_0304, SYNTHETIC_SSRC)
        );
        assert_eq!(view.payload, [1, 2, 3]);
    }
}
