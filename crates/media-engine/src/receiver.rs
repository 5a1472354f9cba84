//! One call's inbound RTP: latch, reorder, fill gaps, decode, DTMF.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::rtp::RtpError;
use crate::{Codec, MediaItem};

#[derive(Debug, Clone, Copy)]
pub struct ReceiverConfig {
    pub codec: Codec,
    pub codec_pt: u8,
    pub telephone_event_pt: Option<u8>,
    /// Packets held back to put late arrivals in order.
    pub reorder_window: u16,
    /// Longest a packet is held waiting for a missing predecessor.
    pub max_hold: Duration,
}

impl ReceiverConfig {
    pub fn new(codec: Codec, codec_pt: u8, telephone_event_pt: Option<u8>) -> Self {
        Self { codec, codec_pt, telephone_event_pt, reorder_window: 5, max_hold: Duration::from_millis(60) }
    }
}

/// What happened to one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketVerdict {
    /// Audio or event accepted (it may be held for reordering).
    Accepted,
    /// A retransmission/duplicate, or older than the reorder window.
    Late,
    /// From an address other than the latched one.
    ForeignSource,
    /// A payload type that was not negotiated (comfort noise counts as silence).
    UnknownPayloadType(u8),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    pub packets: u64,
    pub malformed: u64,
    pub late: u64,
    pub foreign: u64,
    pub filled_samples: u64,
    pub dtmf_events: u64,
}

pub struct MediaReceiver {
    config: ReceiverConfig,
}

impl MediaReceiver {
    pub fn new(config: ReceiverConfig) -> Self {
        todo!()
    }
    /// Feeds one datagram. `emit` receives audio frames and DTMF events in timeline order.
    pub fn handle_packet<F: FnMut(MediaItem)>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        emit: F,
    ) -> Result<PacketVerdict, RtpError> {
        todo!()
    }
    /// Releases packets held longer than `max_hold`, filling what never came with silence.
    pub fn handle_timeout<F: FnMut(MediaItem)>(&mut self, now: Instant, emit: F) {
        todo!()
    }
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }
    /// A key from SIP INFO, placed at the current end of the timeline.
    pub fn inject_dtmf<F: FnMut(MediaItem)>(&mut self, digit: char, emit: F) {
        todo!()
    }
    /// A re-INVITE changed the codec or the remote address: forget the latch and the SSRC,
    /// keep the timeline position.
    pub fn renegotiate(&mut self, config: ReceiverConfig) {
        todo!()
    }
    /// The source we latched onto (symmetric RTP: send our RTP there).
    pub fn latched(&self) -> Option<SocketAddr> {
        todo!()
    }
    pub fn last_packet_at(&self) -> Option<Instant> {
        todo!()
    }
    /// Samples on the timeline so far.
    pub fn position(&self) -> u64 {
        todo!()
    }
    pub fn stats(&self) -> ReceiverStats {
        todo!()
    }
}
