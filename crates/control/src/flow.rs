//! The sans-IO call-flow interpreter. The daemon asks for the next [`Step`], carries it out
//! and reports back; this module decides what follows.

use crate::twiml::{Document, HttpMethod, RecordVerb};

/// What the daemon must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Play audio `loops` times (0 = until hangup). `url` is resolved.
    Play { url: String, loops: u32 },
    Pause { secs: u32 },
    /// Record; `action`, `recording_status_callback` and `transcribe_callback` are resolved
    /// absolute URLs (or `None`).
    Record(RecordVerb),
    Hangup,
    /// Request `url` with the standard parameters plus `extra`. Unless `discard_answer`, give
    /// the answer to [`CallFlow::document_fetched`].
    Fetch { url: String, method: HttpMethod, extra: Vec<(String, String)>, discard_answer: bool },
    /// The document ran out (or the call is over): hang up.
    End,
}

/// How a `<Record>` ended, as the daemon saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordResult {
    pub recording_sid: String,
    pub recording_url: String,
    pub duration_secs: u32,
    /// `Digits` for the action request (a key, `hangup`, or empty).
    pub digits: String,
    /// Empty recording: no action request; the next verb runs.
    pub absent: bool,
    /// The caller hung up: the action is requested but its answer is ignored.
    pub hung_up: bool,
}

pub struct CallFlow {
    document: Document,
    document_url: Option<String>,
    next: usize,
}

impl CallFlow {
    pub fn new(document: Document, document_url: Option<String>) -> Self {
        Self { document, document_url, next: 0 }
    }
    pub fn next_step(&mut self) -> Step {
        todo!()
    }
    pub fn record_finished(&mut self, result: RecordResult) {
        todo!()
    }
    /// The answer to a `Fetch` replaces the document; execution starts at its first verb.
    pub fn document_fetched(&mut self, document: Document, url: String) {
        todo!()
    }
    pub fn document_url(&self) -> Option<&str> {
        self.document_url.as_deref()
    }
}
