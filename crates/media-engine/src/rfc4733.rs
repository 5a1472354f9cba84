//! RFC 4733 (formerly 2833) telephone-events: payload parse and event de-duplication.
//!
//! Variants seen in the wild and handled: end packets repeated with distinct or identical
//! sequence numbers, events on their own SSRC, audio packets interleaved during the event,
//! events with no end packet.

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EventError {
    #[error("telephone-event payload shorter than 4 bytes ({0})")]
    TooShort(usize),
    #[error("telephone-event code {0} is not a DTMF key")]
    NotDtmf(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    pub digit: char,
    pub end: bool,
    pub volume: u8,
    /// In timestamp units.
    pub duration: u16,
}

pub fn parse_event(payload: &[u8]) -> Result<EventPayload, EventError> {
    todo!()
}

/// Reports each key press once. An event is identified by (SSRC, RTP timestamp); a new
/// timestamp, or the same digit after an end, begins a new press.
#[derive(Debug, Default)]
pub struct EventDeduplicator {
    // implementation-defined
}

impl EventDeduplicator {
    pub fn new() -> Self {
        Self::default()
    }
    /// Returns the payload when this packet begins a press not reported before.
    pub fn accept(&mut self, ssrc: u32, timestamp: u32, payload: &[u8]) -> Result<Option<EventPayload>, EventError> {
        todo!()
    }
}
