//! Sans-IO SIP for Hark.
//!
//! # Layout
//! - [`message`]: SIP message parse/print (RFC 3261 §7, §20 compact forms), name-addr and Via helpers.
//! - [`framing`]: Content-Length framing of SIP over TCP (incomplete is not invalid).
//! - [`sdp`]: the audio subset of SDP offer/answer (PCMU/0, PCMA/8, telephone-event).
//! - [`endpoint`]: the UAS endpoint: INVITE/ACK/BYE/CANCEL/OPTIONS/INFO server transactions,
//!   dialogs, our BYE client transaction, RFC 3261 timers as outputs.
//! - [`uac`]: a small user-agent client used by `hark call` and the tests.
//!
//! # Run loop
//! Nothing here reads a clock or a socket. The driver feeds [`Endpoint::handle_input`] and
//! [`Endpoint::handle_timeout`] with the current `Instant`, then drains [`Endpoint::poll_output`]
//! until it returns `None`, and sleeps until [`Endpoint::poll_timeout`].

pub mod access;
pub mod endpoint;
pub mod framing;
pub mod message;
pub mod registrar;
pub mod sdp;
pub mod uac;

pub use endpoint::{
    CallError, CallEvent, CallKey, EndReason, Endpoint, EndpointConfig, IncomingCall, Output, Peer,
    TimerReason, Transport,
};
pub use framing::StreamFramer;
pub use message::{
    parse_message, CSeq, Headers, Message, Method, NameAddr, ParseError, Request, Response, Via,
};
