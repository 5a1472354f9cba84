//! Two peers in simulated time, str0m's `tests/common.rs` way: a str0m client (playing the
//! browser, full ICE, controlling) and our [`WebRtcLeg`] exchange datagrams in memory with no
//! latency; time jumps to the earliest deadline. No sleeps, no sockets.
#![allow(dead_code)] // Each test file uses its own subset.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::{Codec, FormatParams};
use str0m::media::{Direction, Frequency, MediaData, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Rtc};
use webrtc_endpoint::{LegConfig, Output, ReceivedMedia, WebRtcLeg};

pub const LEG_ADDR: &str = "127.0.0.1:40000";
pub const CLIENT_ADDR: &str = "127.0.0.1:50000";
/// Upper bound on simulated steps, so a broken handshake fails instead of spinning.
const MAX_STEPS: usize = 100_000;

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// The browser's side: PCMU, then Opus, telephone-event at 8 and 48 kHz (the SDK's default
/// `codecPreferences` order).
pub fn client_rtc(now: Instant, codecs: &[Codec], local: SocketAddr) -> Rtc {
    let mut config = Rtc::builder().clear_codecs();
    let cc = config.codec_config();
    for codec in codecs {
        match *codec {
            Codec::PCMU => cc.enable_pcmu(true, false),
            Codec::PCMA => cc.enable_pcma(true, false),
            Codec::Opus => cc.enable_opus(true, false),
            other => panic!("test client does not offer {other:?}"),
        }
    }
    for (pt, rate) in [
        (126, Frequency::EIGHT_KHZ),
        (110, Frequency::FORTY_EIGHT_KHZ),
    ] {
        cc.add_config(
            pt.into(),
            None,
            Codec::Tele,
            rate,
            None,
            FormatParams::parse_line("0-16"),
        );
    }
    let mut rtc = config.build(now);
    rtc.add_local_candidate(Candidate::host(local, "udp").expect("candidate"));
    rtc
}

/// The client's offer of one audio m-line.
pub fn client_offer(rtc: &mut Rtc) -> (Mid, String, SdpPendingOffer) {
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().expect("offer");
    (mid, offer.to_sdp_string(), pending)
}

pub struct Pair {
    pub now: Instant,
    pub start: Instant,
    pub leg: WebRtcLeg,
    pub client: Rtc,
    pub client_mid: Mid,
    leg_timeout: Instant,
    client_timeout: Instant,
    to_leg: VecDeque<(SocketAddr, Vec<u8>)>,
    to_client: VecDeque<Vec<u8>>,
    /// What the leg handed out, in order.
    pub received: Vec<ReceivedMedia>,
    pub leg_connected: bool,
    pub leg_disconnected: bool,
    pub client_connected: bool,
    /// Media the client received.
    pub client_media: Vec<MediaData>,
    /// Indexes (0-based, counting only PCMU RTP) of the client's packets the network loses.
    pub lose_pcmu_to_leg: Vec<usize>,
    pcmu_to_leg: usize,
    /// The browser vanished: nothing is delivered either way and its timers stop.
    pub client_gone: bool,
    /// Wall time spent inside the leg's datagram handling and polling (cost measurements).
    pub leg_busy: Duration,
}

impl Pair {
    /// The client offers, our leg answers, the client applies the answer.
    pub fn browser_calls(config: &LegConfig, codecs: &[Codec]) -> Self {
        let start = Instant::now();
        let mut client = client_rtc(start, codecs, addr(CLIENT_ADDR));
        let (client_mid, offer, pending) = client_offer(&mut client);
        let (leg, answer) =
            WebRtcLeg::accept_offer(config, start, &offer, addr(LEG_ADDR)).expect("answer");
        client
            .sdp_api()
            .accept_answer(
                pending,
                SdpAnswer::from_sdp_string(&answer.sdp).expect("answer parses"),
            )
            .expect("client takes the answer");
        Self::new(start, leg, client, client_mid)
    }

    /// Our leg offers, the client answers.
    pub fn leg_calls(config: &LegConfig, codecs: &[Codec]) -> Self {
        let start = Instant::now();
        let mut client = client_rtc(start, codecs, addr(CLIENT_ADDR));
        let (mut leg, offer) =
            WebRtcLeg::create_offer(config, start, addr(LEG_ADDR)).expect("offer");
        let offer = str0m::change::SdpOffer::from_sdp_string(&offer).expect("offer parses");
        let answer = client
            .sdp_api()
            .accept_offer(offer)
            .expect("client answers");
        leg.accept_answer(&answer.to_sdp_string())
            .expect("leg takes the answer");
        let mid = answer.media_lines[0].mid();
        Self::new(start, leg, client, mid)
    }

    fn new(start: Instant, leg: WebRtcLeg, client: Rtc, client_mid: Mid) -> Self {
        let mut pair = Self {
            now: start,
            start,
            leg,
            client,
            client_mid,
            leg_timeout: start,
            client_timeout: start,
            to_leg: VecDeque::new(),
            to_client: VecDeque::new(),
            received: Vec::new(),
            leg_connected: false,
            leg_disconnected: false,
            client_connected: false,
            client_media: Vec::new(),
            lose_pcmu_to_leg: Vec::new(),
            pcmu_to_leg: 0,
            client_gone: false,
            leg_busy: Duration::ZERO,
        };
        pair.drain();
        pair
    }

    /// Polls both sides to their timeouts and delivers every queued datagram, until quiet.
    pub fn drain(&mut self) {
        loop {
            self.poll_leg();
            self.poll_client();
            if self.to_leg.is_empty() && self.to_client.is_empty() {
                return;
            }
            if self.client_gone {
                self.to_leg.clear();
                self.to_client.clear();
                return;
            }
            while let Some((from, bytes)) = self.to_leg.pop_front() {
                if self.lost(&bytes) {
                    continue;
                }
                let began = Instant::now();
                self.leg
                    .handle_datagram(self.now, from, &bytes)
                    .expect("leg takes the datagram");
                self.poll_leg();
                self.leg_busy += began.elapsed();
            }
            while let Some(bytes) = self.to_client.pop_front() {
                let receive =
                    Receive::new(Protocol::Udp, addr(LEG_ADDR), addr(CLIENT_ADDR), &bytes)
                        .expect("datagram");
                self.client
                    .handle_input(Input::Receive(self.now, receive))
                    .expect("client takes the datagram");
                self.poll_client();
            }
        }
    }

    /// Whether the network loses this datagram (SRTP keeps the RTP header in the clear).
    fn lost(&mut self, datagram: &[u8]) -> bool {
        let is_pcmu = matches!(datagram, [b0, b1, ..] if b0 >> 6 == 2 && b1 & 0x7F == 0);
        if !is_pcmu {
            return false;
        }
        let index = self.pcmu_to_leg;
        self.pcmu_to_leg += 1;
        self.lose_pcmu_to_leg.contains(&index)
    }

    fn poll_leg(&mut self) {
        loop {
            match self.leg.poll_output().expect("leg poll") {
                Output::Transmit(t) => {
                    assert_eq!(t.to, addr(CLIENT_ADDR));
                    self.to_client.push_back(t.bytes);
                }
                Output::Connected => self.leg_connected = true,
                Output::Disconnected => self.leg_disconnected = true,
                Output::Audio(media) => self.received.push(media),
                Output::Timeout(at) => {
                    self.leg_timeout = at;
                    return;
                }
            }
        }
    }

    fn poll_client(&mut self) {
        loop {
            match self.client.poll_output().expect("client poll") {
                str0m::Output::Transmit(t) => {
                    self.to_leg.push_back((t.source, t.contents.into()));
                }
                str0m::Output::Event(Event::Connected) => self.client_connected = true,
                str0m::Output::Event(Event::MediaData(data)) => self.client_media.push(data),
                str0m::Output::Event(_) => {}
                str0m::Output::Timeout(at) => {
                    self.client_timeout = at;
                    return;
                }
            }
        }
    }

    /// Advances to the earliest deadline (at most `limit`) and runs both sides' timers.
    fn step(&mut self, limit: Instant) {
        let client_timeout = if self.client_gone {
            limit
        } else {
            self.client_timeout
        };
        let mut next = self.leg_timeout.min(client_timeout).min(limit);
        if next <= self.now {
            // Both idle at `now` (str0m reports its last time when it has nothing to do).
            next = (self.now + Duration::from_millis(1)).min(limit.max(self.now));
        }
        self.now = next;
        self.leg.handle_timeout(self.now).expect("leg timeout");
        if !self.client_gone {
            self.client
                .handle_input(Input::Timeout(self.now))
                .expect("client timeout");
        }
        self.drain();
    }

    /// Runs simulated time up to `at`.
    pub fn run_until(&mut self, at: Instant) {
        for _ in 0..MAX_STEPS {
            if self.now >= at {
                return;
            }
            self.step(at);
        }
        panic!("time did not reach {at:?}");
    }

    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs until ICE and DTLS are up on both sides.
    pub fn connect(&mut self) {
        for _ in 0..MAX_STEPS {
            if self.leg_connected && self.client_connected {
                return;
            }
            let limit = self.now + Duration::from_secs(1);
            self.step(limit);
            assert!(
                self.now - self.start < Duration::from_secs(10),
                "no connection after 10 s of simulated time"
            );
        }
        panic!("no connection");
    }
}

/// 1 s of a 440 Hz tone at 8 kHz, the kind of content a recording must keep sample for sample.
pub fn tone_8k() -> Vec<i16> {
    (0..8000)
        .map(|n| {
            let t = n as f64 / 8000.0;
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
        })
        .collect()
}
