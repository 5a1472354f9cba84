//! Outbound RTP (the file, then silence, with keys in place of audio) and the audio the
//! server sends back.

use std::net::SocketAddr;
use std::time::Duration;

use media_engine::playout::{DigitSender, DigitTick, EVENT_PACKET_BYTES};
use media_engine::sender::{RtpSender, PACKET_BYTES};
use media_engine::{g711, rtp, Codec, FRAME_SAMPLES};
use sip_core::sdp::{AudioCodec, Negotiated};
use tokio::time::Instant;

use crate::{CallArgs, DtmfMode, Plan};

const TICK: Duration = Duration::from_millis(20);
/// SIP INFO keys: 160 ms tone + 100 ms gap.
const INFO_TICKS: u64 = 13;

/// Outbound RTP: the file, then silence, with DTMF events in place of audio.
pub(crate) struct MediaOut {
    sender: RtpSender,
    pub(crate) remote: SocketAddr,
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
pub(crate) enum Tick<'a> {
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
    pub(crate) fn due(&self) -> Instant {
        let ticks = u32::try_from(self.tick).unwrap_or(u32::MAX);
        self.start + TICK * ticks
    }

    pub(crate) fn next(&mut self, audio: &[i16], keys: &[char]) -> Tick<'_> {
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
pub(crate) struct Received {
    pub(crate) codec: Option<(Codec, u8)>,
    pub(crate) keep: bool,
    pub(crate) samples: Vec<i16>,
    /// (SSRC, first timestamp, timeline offset of that timestamp).
    pub(crate) base: Option<(u32, u32, usize)>,
    pub(crate) max_samples: usize,
    pub(crate) packets: u64,
}

impl Received {
    pub(crate) fn on_datagram(&mut self, datagram: &[u8]) {
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

/// `hark call` offers G.711 only, so its answers never name Opus (PCMU stands in).
pub(crate) fn engine_codec(c: AudioCodec) -> Codec {
    match c {
        AudioCodec::Pcmu | AudioCodec::Opus => Codec::Pcmu,
        AudioCodec::Pcma => Codec::Pcma,
    }
}

pub(crate) fn start_media(
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

#[cfg(test)]
mod tests {
    use super::*;

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
            let len = s.packetize(&[1000; 160], &mut b);
            b[..len].to_vec()
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
