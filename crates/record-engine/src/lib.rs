//! Pure recording for Hark: no sockets, no clock, no async.
//!
//! # Layout
//! - [`speech`]: speech/silence decision per 20 ms frame (webrtc-vad gated by an energy floor).
//! - [`recorder`]: the `<Record>` state machine: stop on finish key, silence, max length, hangup;
//!   trim; empty detection. Time is audio time (samples), so tests are exact.
//! - [`wav`]: a WAV writer whose header stays valid while recording, in-place trim at the end,
//!   and repair of files left open by a crash; and the workspace's one WAV reader
//!   ([`wav::Wav`], [`wav::read_header`]).

pub mod recorder;
pub mod speech;
pub mod wav;

pub use recorder::{AbsentReason, RecordParams, RecordSummary, Recorder, StopReason};
pub use speech::{SpeechConfig, SpeechDetector};
pub use wav::{repair_wav_file, RepairOutcome, WavEncoding, WavError, WavWriter};
