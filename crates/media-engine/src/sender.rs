//! Outbound RTP: 20 ms G.711 packets with continuous timestamps and the marker bit on the
//! first packet of each talkspurt (RFC 3551 §4.1).

use crate::{Codec, FRAME_SAMPLES};

/// 12-byte header + 160 bytes of G.711.
pub const PACKET_BYTES: usize = 12 + FRAME_SAMPLES;

pub struct RtpSender {
    codec: Codec,
    payload_type: u8,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    talkspurt_start: bool,
}

impl RtpSender {
    pub fn new(codec: Codec, payload_type: u8, ssrc: u32, initial_sequence: u16, initial_timestamp: u32) -> Self {
        Self { codec, payload_type, ssrc, sequence: initial_sequence, timestamp: initial_timestamp, talkspurt_start: true }
    }
    /// Writes one packet of up to 160 samples (shorter frames are padded with silence) into
    /// `out` and returns its length. Advances sequence and timestamp.
    pub fn packetize(&mut self, pcm: &[i16], out: &mut [u8; PACKET_BYTES]) -> usize {
        todo!()
    }
    /// We sent nothing for `samples` (silence suppression): the timestamp keeps pace with the
    /// clock and the next packet carries the marker bit.
    pub fn skip(&mut self, samples: u32) {
        todo!()
    }
    /// A telephone-event packet (RFC 4733) for `<Play digits>` and the test caller. `start`
    /// sets the marker; `end` sets E. The timestamp is the event's start; it does not advance.
    pub fn event_packet(&mut self, event_pt: u8, digit: char, start: bool, end: bool, duration: u16, out: &mut [u8; 16]) -> usize {
        todo!()
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
