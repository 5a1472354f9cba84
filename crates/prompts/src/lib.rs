//! Prompt audio, everything a call plays that it did not record: `<Play>` URLs fetched,
//! cached, decoded and resampled to 8 kHz mono, and `<Say>` text rendered by espeak-ng.
//!
//! # Layout
//! - [`fetch`]: [`AudioCache`], http(s) and file URLs by URL, revalidated per HTTP caching.
//! - [`decode`]: bytes → 8 kHz mono (WAV, MP3, AU, raw µ-law).
//! - [`resample`]: any rate → 8 kHz.
//! - [`tts`]: [`Tts`], `<Say>` through espeak-ng, cached.
//! - `cache`: the byte-bounded LRU and single-flight both caches share.
//!
//! The daemon builds the two caches from its config ([`AudioConfig`], [`TtsConfig`]); this
//! crate knows nothing of the daemon.

mod cache;
pub mod decode;
pub mod fetch;
pub mod resample;
pub mod tts;

pub use fetch::{error_chain, AudioCache, AudioConfig, AudioError};
pub use resample::{resample, resample_to_8k};
pub use tts::{Tts, TtsConfig, TtsError};
