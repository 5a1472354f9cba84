//! Outbound RTP: 20 ms G.711 packets with continuous timestamps and the marker bit on the
//! first packet of each talkspurt (RFC 3551 §4.1).

use crate::{g711, rfc4733, Codec, FRAME_SAMPLES};

/// 12-byte header + 160 bytes of G.711.
pub const PACKET_BYTES: usize = 12 + FRAME_SAMPLES;
/// RFC 4733 volume field: -10 dBm0, what common phones send.
const EVENT_VOLUME: u8 = 10;

pub struct RtpSender {
    codec: Codec,
    payload_type: u8,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    talkspurt_start: bool,
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
        }
    }
    /// Writes one packet of up to 160 samples (shorter frames are padded with silence) into
    /// `out` and returns its length. Advances sequence and timestamp.
    pub fn packetize(&mut self, pcm: &[i16], out: &mut [u8; PACKET_BYTES]) -> usize {
        let marker = std::mem::replace(&mut self.talkspurt_start, false);
        let (header, payload) = out.split_at_mut(12);
        self.write_header(header, self.payload_type, marker, self.timestamp);
        let n = pcm.len().min(FRAME_SAMPLES);
        let (voiced, pad) = payload.split_at_mut(n);
        g711::encode(self.codec, &pcm[..n], voiced);
        pad.fill(g711::silence_byte(self.codec));
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);
        PACKET_BYTES
    }
    /// We sent nothing for `samples` (silence suppression): the timestamp keeps pace with the
    /// clock and the next packet carries the marker bit.
    pub fn skip(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
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
        let d = duration.to_be_bytes();
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
    pub fn set_codec(&mut self, codec: Codec, payload_type: u8) {
        self.codec = codec;
        self.payload_type = payload_type;
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
        s.packetize(&[0; 160], &mut out);
        let v = rtp::parse(&out).unwrap();
        assert!(!v.marker);
        assert_eq!((v.sequence, v.timestamp, v.payload.len()), (0, 0x60, 160));
    }

    #[test]
    fn payload_is_g711_of_the_samples_and_short_frames_are_padded_with_silence() {
        let mut s = RtpSender::new(Codec::Pcma, 8, 1, 0, 0);
        let mut out = [0u8; PACKET_BYTES];
        s.packetize(&[32767, -32768, 0], &mut out);
        let v = rtp::parse(&out).unwrap();
        assert_eq!(v.payload_type, 8);
        assert_eq!(v.payload[..3], [0xAA, 0x2A, 0xD5]);
        assert!(v.payload[3..].iter().all(|&b| b == 0xD5));
        // Always 160 samples of timestamp per packet.
        assert_eq!(s.timestamp(), 160);
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
