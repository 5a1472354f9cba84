//! Outbound RTP: 20 ms G.711 or Opus packets with continuous timestamps and the marker bit on
//! the first packet of each talkspurt (RFC 3551 §4.1).

use crate::opus::{OpusEncoder, OpusError, MAX_PACKET, TS_PER_TIMELINE_SAMPLE};
use crate::{g711, rfc4733, Codec, FRAME_SAMPLES};

/// 12-byte header + the largest payload: an Opus packet (G.711 takes 160 bytes of it).
pub const PACKET_BYTES: usize = 12 + MAX_PACKET;
/// RFC 4733 volume field: -10 dBm0, what common phones send.
const EVENT_VOLUME: u8 = 10;

pub struct RtpSender {
    codec: Codec,
    payload_type: u8,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    talkspurt_start: bool,
    /// Set for an Opus leg: frames are encoded with it.
    opus: Option<Box<OpusEncoder>>,
    /// RTP timestamp units per 8 kHz sample: 6 for Opus (48 kHz clock), else 1.
    ts_per_sample: u32,
    /// The same for telephone-event durations (the event type's clock).
    event_ts_per_sample: u32,
}

impl RtpSender {
    pub fn new(
        codec: Codec,
        payload_type: u8,
        ssrc: u32,
        initial_sequence: u16,
        initial_timestamp: u32,
    ) -> Self {
        Self {
            codec,
            payload_type,
            ssrc,
            sequence: initial_sequence,
            timestamp: initial_timestamp,
            talkspurt_start: true,
            opus: None,
            ts_per_sample: 1,
            event_ts_per_sample: 1,
        }
    }

    /// Sends Opus at `payload_type` from now on (48 kHz clock); telephone-event durations run
    /// at `event_clock`.
    pub fn set_opus(&mut self, payload_type: u8, event_clock: u32) -> Result<(), OpusError> {
        if self.opus.is_none() {
            self.opus = Some(Box::new(OpusEncoder::new()?));
        }
        self.payload_type = payload_type;
        self.ts_per_sample = TS_PER_TIMELINE_SAMPLE;
        self.event_ts_per_sample = (event_clock / crate::SAMPLE_RATE).max(1);
        Ok(())
    }
    /// Writes one packet of up to 160 samples (shorter frames are padded with silence) into
    /// `out` and returns its length. Advances sequence and timestamp. 0 (nothing to send, the
    /// timestamp still advances) when the Opus encoder fails.
    pub fn packetize(&mut self, pcm: &[i16], out: &mut [u8; PACKET_BYTES]) -> usize {
        let n = pcm.len().min(FRAME_SAMPLES);
        let (header, payload) = out.split_at_mut(12);
        let payload_len = match self.opus.as_mut() {
            Some(encoder) => {
                let mut frame = [0i16; FRAME_SAMPLES];
                frame[..n].copy_from_slice(&pcm[..n]);
                let mut encoded = [0u8; MAX_PACKET];
                match encoder.encode(&frame, &mut encoded) {
                    Ok(len) => {
                        payload[..len].copy_from_slice(&encoded[..len]);
                        len
                    }
                    Err(_) => 0,
                }
            }
            None => {
                let (voiced, pad) = payload[..FRAME_SAMPLES].split_at_mut(n);
                g711::encode(self.codec, &pcm[..n], voiced);
                pad.fill(g711::silence_byte(self.codec));
                FRAME_SAMPLES
            }
        };
        let ticks = FRAME_SAMPLES as u32 * self.ts_per_sample;
        if payload_len == 0 {
            self.skip(FRAME_SAMPLES as u32);
            return 0;
        }
        let marker = std::mem::replace(&mut self.talkspurt_start, false);
        self.write_header(header, self.payload_type, marker, self.timestamp);
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(ticks);
        12 + payload_len
    }
    /// We sent nothing for `samples` (8 kHz samples; silence suppression): the timestamp keeps
    /// pace with the clock and the next packet carries the marker bit.
    pub fn skip(&mut self, samples: u32) {
        self.timestamp = self
            .timestamp
            .wrapping_add(samples.wrapping_mul(self.ts_per_sample));
        self.talkspurt_start = true;
    }
    /// A telephone-event packet (RFC 4733) for `<Play digits>` and the test caller. `start`
    /// sets the marker; `end` sets E. The timestamp is the event's start; it does not advance
    /// (call [`skip`](Self::skip) with the event's duration afterwards). Each packet takes a new
    /// sequence number. Returns 0 and writes nothing when `digit` is not a DTMF key.
    pub fn event_packet(
        &mut self,
        event_pt: u8,
        digit: char,
        start: bool,
        end: bool,
        duration: u16,
        out: &mut [u8; 16],
    ) -> usize {
        let Some(code) = rfc4733::event_code(digit) else {
            return 0;
        };
        let (header, payload) = out.split_at_mut(12);
        self.write_header(header, event_pt, start, self.timestamp);
        let duration = u32::from(duration).saturating_mul(self.event_ts_per_sample);
        let d = u16::try_from(duration).unwrap_or(u16::MAX).to_be_bytes();
        payload.copy_from_slice(&[code, if end { 0x80 } else { 0 } | EVENT_VOLUME, d[0], d[1]]);
        self.sequence = self.sequence.wrapping_add(1);
        16
    }
    fn write_header(&self, header: &mut [u8], payload_type: u8, marker: bool, timestamp: u32) {
        header[0] = 0x80;
        header[1] = (u8::from(marker) << 7) | (payload_type & 0x7F);
        header[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        header[4..8].copy_from_slice(&timestamp.to_be_bytes());
        header[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
    }
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }
    pub fn sequence(&self) -> u16 {
        self.sequence
    }
    /// Sends G.711 `codec` at `payload_type` from now on.
    pub fn set_codec(&mut self, codec: Codec, payload_type: u8) {
        self.codec = codec;
        self.payload_type = payload_type;
        self.opus = None;
        self.ts_per_sample = 1;
        self.event_ts_per_sample = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp;

    #[test]
    fn first_packet_has_marker_and_initial_seq_ts() {
        let mut s = RtpSender::new(Codec::Pcmu, 0, 0x0102_0304, 65535, 0xFFFF_FFC0);
        let mut out = [0u8; PACKET_BYTES];
        assert_eq!(s.packetize(&[0; 160], &mut out), 172);
        assert_eq!(
            out[..12],
            [0x80, 0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC0, 1, 2, 3, 4]
        );
        // seq and ts wrap.
        assert_eq!((s.sequence(), s.timestamp()), (0, 0x60));
        let len = s.packetize(&[0; 160], &mut out);
        let v = rtp::parse(&out[..len]).unwrap();
        assert!(!v.marker);
        assert_eq!((v.sequence, v.timestamp, v.payload.len()), (0, 0x60, 160));
    }

    #[test]
    fn payload_is_g711_of_the_samples_and_short_frames_are_padded_with_silence() {
        let mut s = RtpSender::new(Codec::Pcma, 8, 1, 0, 0);
        let mut out = [0u8; PACKET_BYTES];
        let len = s.packetize(&[32767, -32768, 0], &mut out);
        let v = rtp::parse(&out[..len]).unwrap();
        assert_eq!(v.payload_type, 8);
        assert_eq!(v.payload[..3], [0xAA, 0x2A, 0xD5]);
        assert!(v.payload[3..].iter().all(|&b| b == 0xD5));
        // Always 160 samples of timestamp per packet.
        assert_eq!(s.timestamp(), 160);
    }

    /// An Opus leg: packets decode back to the tone, timestamps run at 48 kHz, key durations
    /// are on the 48 kHz event clock.
    #[test]
    fn opus_packets_run_on_the_48k_clock() {
        let mut s = RtpSender::new(Codec::Pcmu, 0, 7, 0, 1000);
        s.set_opus(111, 48_000).unwrap();
        let mut dec = crate::opus::OpusDecoder::new().unwrap();
        let mut out = [0u8; PACKET_BYTES];
        let mut decoded = Vec::new();
        for f in 0..25u32 {
            let tone: Vec<i16> = (0..160u32)
                .map(|i| {
                    let t = f64::from(f * 160 + i) / 8000.0;
                    (6000.0 * (2.0 * std::f64::consts::PI * 500.0 * t).sin()) as i16
                })
                .collect();
            let len = s.packetize(&tone, &mut out);
            let v = rtp::parse(&out[..len]).unwrap();
            assert_eq!((v.payload_type, v.timestamp), (111, 1000 + f * 960));
            let mut pcm = [0i16; crate::opus::MAX_DECODED];
            let n = dec.decode(v.payload, &mut pcm).unwrap();
            decoded.extend_from_slice(&pcm[..n]);
        }
        assert_eq!(decoded.len(), 25 * 320);
        let tail = &decoded[3200..];
        let crossings = tail.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!(
            (290..=310).contains(&crossings),
            "500 Hz over 0.3 s: {crossings}"
        );
        s.skip(160);
        assert_eq!(s.timestamp(), 1000 + 26 * 960);
        let mut ev = [0u8; 16];
        s.event_packet(110, '5', true, false, 160, &mut ev);
        assert_eq!(u16::from_be_bytes([ev[14], ev[15]]), 960, "20 ms at 48 kHz");
        s.set_codec(Codec::Pcmu, 0);
        assert_eq!(s.packetize(&[0; 160], &mut out), 172, "back to G.711");
    }

    #[test]
    fn skip_advances_timestamp_and_marks_next_talkspurt() {
        let mut s = RtpSender::new(Codec::Pcmu, 0, 1, 10, 1000);
        let mut out = [0u8; PACKET_BYTES];
        s.packetize(&[0; 160], &mut out);
        s.skip(800);
        s.packetize(&[0; 160], &mut out);
        let v = rtp::parse(&out).unwrap();
        assert!(v.marker);
        assert_eq!((v.sequence, v.timestamp), (11, 1960));
    }

    #[test]
    fn event_packet_is_rfc4733_payload_with_fixed_timestamp() {
        let mut s = RtpSender::new(Codec::Pcmu, 0, 9, 100, 4000);
        let mut out = [0u8; 16];
        assert_eq!(s.event_packet(101, '#', true, false, 160, &mut out), 16);
        assert_eq!(out[1], 0x80 | 101);
        assert_eq!(out[12..], [11, 10, 0x00, 0xA0]);
        assert_eq!(s.event_packet(101, '#', false, true, 1280, &mut out), 16);
        let v = rtp::parse(&out).unwrap();
        assert!(!v.marker);
        assert_eq!((v.sequence, v.timestamp), (101, 4000));
        assert_eq!(v.payload, [11, 0x80 | 10, 0x05, 0x00]);
        assert_eq!(s.timestamp(), 4000);
        assert_eq!(s.event_packet(101, 'x', true, false, 160, &mut out), 0);
        assert_eq!(s.sequence(), 102);
    }
}
