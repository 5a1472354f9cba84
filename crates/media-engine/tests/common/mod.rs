//! Shared by the integration tests: packet builders and a receiver driven in virtual time.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use media_engine::pcap::{read_rtp_packets, PcapRtp};
use media_engine::receiver::{MediaReceiver, PacketVerdict, ReceiverConfig};
use media_engine::{AudioFrame, Codec, DtmfEvent, MediaItem};

pub const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 26000);
pub const TE: u8 = 101;

pub fn pcap(name: &str) -> Vec<PcapRtp> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    read_rtp_packets(&bytes).unwrap()
}

pub fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, (u8::from(marker) << 7) | pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

pub fn event(code: u8, end: bool, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    [code, if end { 0x80 | 10 } else { 10 }, d[0], d[1]]
}

/// Header fields of an RTP datagram: (pt, seq, ts, ssrc).
pub fn header(p: &[u8]) -> (u8, u16, u32, u32) {
    let v = media_engine::rtp::parse(p).unwrap();
    (v.payload_type, v.sequence, v.timestamp, v.ssrc)
}

pub struct Run {
    pub rx: MediaReceiver,
    pub t0: Instant,
    pub items: Vec<MediaItem>,
    pub verdicts: Vec<PacketVerdict>,
}

impl Run {
    pub fn new(codec: Codec, pt: u8) -> Self {
        Self::with(ReceiverConfig::new(codec, pt, Some(TE)))
    }
    pub fn with(config: ReceiverConfig) -> Self {
        let t0 = Instant::now();
        Self {
            rx: MediaReceiver::new(config, t0),
            t0,
            items: Vec::new(),
            verdicts: Vec::new(),
        }
    }
    /// Feeds a datagram arriving `at` after the start; runs due timeouts first, as the
    /// daemon's event loop would.
    pub fn feed(&mut self, at: Duration, datagram: &[u8]) {
        let now = self.t0 + at;
        self.timeouts_until(now);
        let items = &mut self.items;
        let v = self
            .rx
            .handle_packet(now, PEER, datagram, |i| items.push(i))
            .unwrap();
        self.verdicts.push(v);
    }
    pub fn timeouts_until(&mut self, now: Instant) {
        while let Some(t) = self.rx.poll_timeout().filter(|&t| t <= now) {
            let items = &mut self.items;
            self.rx.handle_timeout(t, |i| items.push(i));
        }
    }
    /// Lets all timers run out.
    pub fn finish(&mut self) {
        let later = self.t0 + Duration::from_secs(3600);
        self.timeouts_until(later);
    }
    pub fn frames(&self) -> Vec<AudioFrame> {
        self.items
            .iter()
            .filter_map(|i| {
                if let MediaItem::Audio(f) = i {
                    Some(*f)
                } else {
                    None
                }
            })
            .collect()
    }
    pub fn dtmf(&self) -> Vec<DtmfEvent> {
        self.items
            .iter()
            .filter_map(|i| {
                if let MediaItem::Dtmf(d) = i {
                    Some(*d)
                } else {
                    None
                }
            })
            .collect()
    }
    pub fn digits(&self) -> String {
        self.dtmf().iter().map(|d| d.digit).collect()
    }
    /// Asserts the frames tile [0, position) and returns the concatenated samples.
    pub fn timeline(&self) -> Vec<i16> {
        let mut pcm = Vec::new();
        for f in self.frames() {
            assert_eq!(f.position, pcm.len() as u64, "hole or overlap at {f:?}");
            assert!(f.len >= 1 && (f.filled || f.len <= 160), "{f:?}");
            pcm.extend_from_slice(f.pcm());
        }
        assert_eq!(pcm.len() as u64, self.rx.position());
        pcm
    }
}

pub fn decode(codec: Codec, payload: &[u8]) -> Vec<i16> {
    let mut out = vec![0; payload.len()];
    media_engine::g711::decode(codec, payload, &mut out);
    out
}
