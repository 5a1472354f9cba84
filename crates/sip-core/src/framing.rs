//! SIP over TCP: split a byte stream into messages by Content-Length (RFC 3261 §18.3).

use thiserror::Error;

/// Largest message accepted on a stream.
pub const MAX_MESSAGE: usize = 65_535;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FramingError {
    #[error("message exceeds {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("Content-Length is missing or invalid on a stream transport")]
    BadContentLength,
}

/// Accumulates stream bytes; yields whole messages. CRLF keep-alives (RFC 5626) are skipped.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
}

impl StreamFramer {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
    /// The next complete message, `Ok(None)` while incomplete. After an error the stream
    /// cannot be resynchronised and should be closed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        todo!()
    }
}
