//! RTP (RFC 3550) header view.

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    #[error("datagram shorter than an RTP header ({0} bytes)")]
    TooShort(usize),
    #[error("RTP version is not 2")]
    BadVersion,
    #[error("RTP header fields (CSRC count, extension or padding) run past the datagram")]
    BadLength,
    #[error("packet is RTCP (payload type {0}), not RTP")]
    Rtcp(u8),
}

/// Borrowed view of one RTP packet.
#[derive(Debug, Clone, Copy)]
pub struct RtpView<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

pub fn parse(datagram: &[u8]) -> Result<RtpView<'_>, RtpError> {
    todo!()
}
