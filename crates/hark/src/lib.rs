//! The Hark daemon: every socket, clock read, task and file lives here; the protocol and
//! recording logic is in the sans-IO crates (`sip-core`, `media-engine`, `record-engine`,
//! `control`).
//!
//! # Layout
//! - [`config`]: the TOML config, env overrides (`HARK_<SECTION>__<KEY>`), validation.
//! - [`server`]: `hark serve`: sockets, recovery, signals; [`tls`]: HTTPS for the HTTP listener.
//! - [`sip_task`]: UDP/TCP around the SIP endpoint; routes call events to call tasks.
//! - [`call`]: one task per call, driving `call_core::Call` (TwiML, Record, Gather, bot
//!   operations); [`call_env`]: what a call is given; [`bot_notify`]: Graph notifications.
//! - [`media`]: one task per call owning the RTP socket; the SPSC ring to the call task.
//! - [`signal`]: `/signal`, the Voice SDK's signalling WebSocket.
//! - [`webhook`]: signed TwiML fetches; [`outbox`]: persisted, retried status callbacks.
//! - [`storage`], [`recovery`]: recording files and crash recovery; metadata is in `store`,
//!   the HTTP API in `http-api`.
//! - [`live`]: running calls for the live call-control API.

pub mod bot_notify;
pub mod call;
pub mod call_env;
pub mod client_call;
pub mod cluster;
pub mod config;
pub mod dial;
pub mod drain;
pub mod egress;
pub mod live;
pub mod media;
pub mod outbox;
pub mod recovery;
pub mod retention;
pub mod secrets;
pub mod server;
pub mod services;
pub mod sids;
pub mod signal;
pub mod sip_task;
pub mod storage;
pub mod tls;
pub mod transcription;
pub mod uploads;
pub mod webhook;
pub mod webrtc_media;
