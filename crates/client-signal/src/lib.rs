//! Sans-IO signalling for the Twilio Voice JS SDK, so the unchanged `@twilio/voice-sdk` (pinned:
//! 2.18.5) can place and take calls through Hark.
//!
//! The SDK talks "PStream 1.6": JSON text frames `{"type","version","payload"}` over one
//! WebSocket at `/signal`, plus `"\n"` heartbeats the server sends and the client echoes. It
//! authenticates with a Twilio AccessToken (an HS256 JWT minted by the operator's server).
//!
//! # Layout
//! - [`frame`]: the frames both ways as typed enums; parse client frames, print server frames.
//! - [`token`]: AccessToken verification (signature, account, validity window, voice grant).
//! - [`session`]: one WebSocket connection as a state machine: `listen` → `connected`,
//!   `register` → `ready`/`offline`, call frames to events, heartbeats and token expiry as timers.
//!
//! # Run loop
//! Nothing here reads a clock or a socket. The daemon feeds [`Session::handle_text`],
//! [`Session::handle_timeout`] and [`Session::handle_close`] with the current `Instant`, calls the
//! frame-sending methods ([`Session::ringing`], [`Session::answer`], …) for its calls, then drains
//! [`Session::poll_output`] until it returns `None` (writing every [`SessionOutput::Send`] as a
//! text frame) and sleeps until [`Session::poll_timeout`].

pub mod frame;
pub mod session;
pub mod token;

pub use frame::{
    decode_params, encode_params, CallMessage, ClientFrame, ClientInvite, ClientText, FrameError,
    IncomingParameters, ServerFrame, SignalError, HEARTBEAT, PSTREAM_VERSION,
};
pub use session::{
    ApiKey, CallError, Session, SessionConfig, SessionEvent, SessionOutput, TimerReason,
};
pub use token::{
    mint, verify, OutgoingGrant, TokenError, VerifiedToken, VoiceGrant, MAX_LIFETIME_SECS,
};
