//! The audio subset of SDP (RFC 4566) offer/answer (RFC 3264) that Hark needs.

use std::net::{IpAddr, SocketAddr};
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Pcmu,
    Pcma,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

/// The first audio stream of an offer, as the caller described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioOffer {
    /// Connection address (media-level c= wins over session-level).
    pub connection: IpAddr,
    pub port: u16,
    /// Payload types in the caller's preference order.
    pub formats: Vec<u8>,
    /// `a=rtpmap` entries: (pt, encoding name, clock rate).
    pub rtpmaps: Vec<(u8, String, u32)>,
    pub direction: Direction,
    pub ptime_ms: Option<u32>,
}

/// What both sides agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: AudioCodec,
    pub codec_pt: u8,
    pub telephone_event_pt: Option<u8>,
    /// Where the caller wants our RTP.
    pub remote_rtp: SocketAddr,
    /// The caller's direction (sendonly = we are on hold).
    pub remote_direction: Direction,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    #[error("SDP is not UTF-8")]
    NotUtf8,
    #[error("SDP line {line} is malformed: {text:?}")]
    Malformed { line: usize, text: String },
    #[error("SDP has no audio m= line")]
    NoAudio,
    #[error("SDP has no connection address (c=) for audio")]
    NoConnection,
    #[error("no common codec: offer has payload types {0:?}, Hark accepts PCMU/0 and PCMA/8")]
    NoCommonCodec(Vec<u8>),
}

pub fn parse_offer(body: &[u8]) -> Result<AudioOffer, SdpError> {
    todo!()
}

/// Picks the caller's first supported codec (PCMU or PCMA, static or by rtpmap name) and
/// telephone-event at whatever dynamic payload type the caller gave it.
pub fn negotiate(offer: &AudioOffer) -> Result<Negotiated, SdpError> {
    todo!()
}

/// The answer: c=/m= carry `local_rtp` (the address the caller can reach); direction mirrors the
/// caller's (sendonly → recvonly, inactive → inactive). `version` increments on each re-answer.
pub fn build_answer(neg: &Negotiated, local_rtp: SocketAddr, session_id: u64, version: u64) -> String {
    todo!()
}

/// An offer of PCMU/0, PCMA/8 and telephone-event/101, used by `hark call`.
pub fn build_offer(local_rtp: SocketAddr, session_id: u64) -> String {
    todo!()
}
