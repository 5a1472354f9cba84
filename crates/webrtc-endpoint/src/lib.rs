//! Sans-IO WebRTC media for one browser call: ICE-lite, DTLS-SRTP and codec choice over
//! [str0m], with received audio handed on as plain RTP so `media_engine`'s
//! [`MediaReceiver`](media_engine::receiver::MediaReceiver) (latch, reorder, gap fill, G.711
//! decode, RFC 4733 de-duplication) is reused unchanged.
//!
//! # Layout
//! - [`config`]: [`LegConfig`], what all legs share (one DTLS certificate, the crypto provider,
//!   whether Opus may be chosen).
//! - [`codec`]: which one audio codec a leg uses ([`Chosen`]), picked from the offer's order.
//! - [`leg`]: [`WebRtcLeg`], one `str0m::Rtc` behind the Hark run-loop contract, and its
//!   [`Output`]s; [`ReceivedMedia`] rebuilds an RTP datagram for the receiver.
//! - [`error`]: [`WebRtcError`], what went wrong and with which input.
//!
//! # Run loop
//! The caller owns the UDP socket (one per call, from Hark's RTP port range) and the clock.
//! After every mutation ([`WebRtcLeg::accept_offer`], [`WebRtcLeg::accept_answer`],
//! [`WebRtcLeg::handle_datagram`], [`WebRtcLeg::handle_timeout`], [`WebRtcLeg::write_audio`],
//! [`WebRtcLeg::send_digit`]) it drains [`WebRtcLeg::poll_output`] until
//! [`Output::Timeout`], sends each [`Output::Transmit`], and calls `handle_timeout` at the
//! returned instant.

pub mod codec;
pub mod config;
pub mod error;
pub mod leg;

pub use codec::{AudioCodec, Chosen};
pub use config::LegConfig;
pub use error::{SdpKind, WebRtcError};
pub use leg::{Answer, Output, ReceivedMedia, Transmit, WebRtcLeg, SYNTHETIC_SSRC};
