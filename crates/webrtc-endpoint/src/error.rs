//! Errors of a WebRTC leg: bad input from the network or the signalling peer, never a panic.

use std::net::SocketAddr;

use str0m::error::{IceError, NetError, SdpError};
use str0m::RtcError;
use thiserror::Error;

/// Which SDP a parse error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpKind {
    Offer,
    Answer,
}

impl std::fmt::Display for SdpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Offer => "offer",
            Self::Answer => "answer",
        })
    }
}

#[derive(Debug, Error)]
pub enum WebRtcError {
    #[error("the crypto provider could not generate a DTLS certificate")]
    Certificate,
    #[error("local address {addr} cannot be an ICE host candidate")]
    Candidate {
        addr: SocketAddr,
        #[source]
        source: IceError,
    },
    #[error("malformed SDP {kind}")]
    Sdp {
        kind: SdpKind,
        #[source]
        source: SdpError,
    },
    #[error("the SDP {0} has no usable audio m-line")]
    NoAudio(SdpKind),
    /// None of the offered payload types is PCMU, PCMA (or Opus when enabled).
    #[error("no audio codec in common; the {kind} lists payload types {offered:?}")]
    NoCommonCodec { kind: SdpKind, offered: Vec<u8> },
    #[error("str0m refused the SDP {kind}")]
    Negotiation {
        kind: SdpKind,
        #[source]
        source: RtcError,
    },
    #[error("accept_answer called on a leg that has no offer outstanding")]
    NoOfferPending,
    /// Media written on the offering side before the answer came.
    #[error("no codec negotiated yet: the answer has not been applied")]
    NotNegotiated,
    #[error("datagram of {len} bytes from {from} is not STUN, DTLS, RTP or RTCP")]
    Datagram {
        from: SocketAddr,
        len: usize,
        #[source]
        source: NetError,
    },
    /// Neither the nominated peer nor a STUN request with our ICE username: a stray packet.
    #[error("datagram from {0} does not belong to this leg")]
    ForeignSource(SocketAddr),
    #[error("{0:?} is not a DTMF key")]
    NotDtmf(char),
    /// str0m rejected an input or a write (`what` says which).
    #[error("str0m failed to {what}")]
    Rtc {
        what: &'static str,
        #[source]
        source: RtcError,
    },
}
