//! The sans-IO call-flow interpreter. The daemon asks for the next [`Step`], carries it out
//! and reports back; this module decides what follows.

use tracing::{error, warn};

use crate::twiml::{Document, HttpMethod, RecordVerb, Verb};
use crate::urls::{resolve, resolve_media};

/// Verbs one call may execute across all its documents; stops action/redirect loops.
pub const MAX_VERBS_PER_CALL: u32 = 10_000;
/// Documents one call may run, the first included.
pub const MAX_DOCUMENTS_PER_CALL: u32 = 100;

/// What the daemon must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Play audio `loops` times (0 = until hangup). `url` is resolved.
    Play {
        url: String,
        loops: u32,
    },
    Pause {
        secs: u32,
    },
    /// Record; `action`, `recording_status_callback` and `transcribe_callback` are resolved
    /// absolute URLs (or `None`).
    Record(RecordVerb),
    Hangup,
    /// Request `url` with the standard parameters plus `extra`. Unless `discard_answer`, give
    /// the answer to [`CallFlow::document_fetched`].
    Fetch {
        url: String,
        method: HttpMethod,
        extra: Vec<(String, String)>,
        discard_answer: bool,
    },
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

#[derive(Debug)]
enum State {
    /// Executing verbs from `next`.
    Running,
    /// A `Record` step was handed out; only [`CallFlow::record_finished`] may follow.
    AwaitingRecord {
        action: Option<String>,
        method: HttpMethod,
    },
    /// The action request to hand out next.
    FetchReady {
        url: String,
        method: HttpMethod,
        extra: Vec<(String, String)>,
        discard_answer: bool,
    },
    /// A `Fetch` whose answer matters was handed out; only [`CallFlow::document_fetched`] may follow.
    AwaitingDocument,
    Ended,
}

/// One call's TwiML execution. Misuse (a step asked for while a `Record` or `Fetch` result is
/// outstanding, or a result nobody asked for) ends the flow: it never silently continues.
pub struct CallFlow {
    document: Document,
    document_url: Option<String>,
    next: usize,
    state: State,
    verbs_run: u32,
    documents_run: u32,
}

impl CallFlow {
    pub fn new(document: Document, document_url: Option<String>) -> Self {
        Self {
            document,
            document_url,
            next: 0,
            state: State::Running,
            verbs_run: 0,
            documents_run: 1,
        }
    }

    pub fn next_step(&mut self) -> Step {
        match std::mem::replace(&mut self.state, State::Ended) {
            State::Running => self.run_verbs(),
            State::FetchReady {
                url,
                method,
                extra,
                discard_answer,
            } => {
                if !discard_answer {
                    self.state = State::AwaitingDocument;
                }
                Step::Fetch {
                    url,
                    method,
                    extra,
                    discard_answer,
                }
            }
            State::AwaitingRecord { .. } => {
                error!(
                    "call flow: next_step while a <Record> result is outstanding; ending the flow"
                );
                Step::End
            }
            State::AwaitingDocument => {
                error!(
                    "call flow: next_step while an action document is outstanding; ending the flow"
                );
                Step::End
            }
            State::Ended => Step::End,
        }
    }

    pub fn record_finished(&mut self, result: RecordResult) {
        let State::AwaitingRecord { action, method } =
            std::mem::replace(&mut self.state, State::Ended)
        else {
            error!("call flow: record_finished without a running <Record>; ending the flow");
            return;
        };
        // SPEC §3.2.7: an empty recording requests nothing and falls through (unless hung up).
        if result.absent {
            if !result.hung_up {
                self.state = State::Running;
            }
            return;
        }
        let Some(url) = action else {
            if !result.hung_up {
                self.state = State::Running;
            }
            return;
        };
        let digits = if result.hung_up && result.digits.is_empty() {
            "hangup".to_string()
        } else {
            result.digits
        };
        let extra = vec![
            ("RecordingUrl".to_string(), result.recording_url),
            ("RecordingSid".to_string(), result.recording_sid),
            (
                "RecordingDuration".to_string(),
                result.duration_secs.to_string(),
            ),
            ("Digits".to_string(), digits),
        ];
        // SPEC §3.2.9: after a hangup the action is still requested, its answer discarded.
        self.state = State::FetchReady {
            url,
            method,
            extra,
            discard_answer: result.hung_up,
        };
    }

    /// The answer to a `Fetch` replaces the document; execution starts at its first verb.
    pub fn document_fetched(&mut self, document: Document, url: String) {
        if !matches!(
            std::mem::replace(&mut self.state, State::Ended),
            State::AwaitingDocument
        ) {
            error!("call flow: document_fetched without an outstanding Fetch; ending the flow");
            return;
        }
        self.documents_run = self.documents_run.saturating_add(1);
        if self.documents_run > MAX_DOCUMENTS_PER_CALL {
            warn!(url = %url, "call flow: more than {MAX_DOCUMENTS_PER_CALL} documents in one call; hanging up");
            return;
        }
        self.document = document;
        self.document_url = Some(url);
        self.next = 0;
        self.state = State::Running;
    }

    pub fn document_url(&self) -> Option<&str> {
        self.document_url.as_deref()
    }

    /// True once only `End` can follow.
    pub fn is_ended(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    /// Runs verbs until one needs the daemon. State is `Ended` on entry.
    fn run_verbs(&mut self) -> Step {
        loop {
            let Some(verb) = self.document.verbs.get(self.next).cloned() else {
                return Step::End;
            };
            self.next += 1;
            self.verbs_run = self.verbs_run.saturating_add(1);
            if self.verbs_run > MAX_VERBS_PER_CALL {
                warn!("call flow: more than {MAX_VERBS_PER_CALL} verbs in one call; hanging up");
                return Step::End;
            }
            match verb {
                Verb::Play(play) => {
                    if play.url.is_empty() {
                        warn!("call flow: <Play> without a URL (digits are not supported yet); skipped");
                        continue;
                    }
                    match resolve_media(self.document_url.as_deref(), &play.url) {
                        Ok(url) => {
                            self.state = State::Running;
                            return Step::Play {
                                url,
                                loops: play.loop_count,
                            };
                        }
                        Err(e) => warn!("call flow: <Play> skipped: {e}"),
                    }
                }
                Verb::Pause { length_secs } => {
                    self.state = State::Running;
                    return Step::Pause { secs: length_secs };
                }
                Verb::Hangup => return Step::Hangup,
                Verb::Record(record) => {
                    let record = self.resolve_record(record);
                    self.state = State::AwaitingRecord {
                        action: record.action.clone(),
                        method: record.method,
                    };
                    return Step::Record(record);
                }
            }
        }
    }

    fn resolve_optional(&self, attribute: &str, reference: Option<String>) -> Option<String> {
        let reference = reference?;
        match resolve(self.document_url.as_deref(), &reference) {
            Ok(url) => Some(url),
            Err(e) => {
                warn!("call flow: <Record {attribute}> ignored: {e}");
                None
            }
        }
    }

    fn resolve_record(&self, mut record: RecordVerb) -> RecordVerb {
        record.action = match record.action.take() {
            Some(action) => self.resolve_optional("action", Some(action)),
            None => {
                if let Some(url) = &self.document_url {
                    // SPEC §3.1 [D]: the default re-fetches this same document and can loop.
                    warn!(url = %url, "call flow: <Record> without action defaults to the document URL");
                }
                self.document_url.clone()
            }
        };
        record.recording_status_callback = self.resolve_optional(
            "recordingStatusCallback",
            record.recording_status_callback.take(),
        );
        record.transcribe_callback =
            self.resolve_optional("transcribeCallback", record.transcribe_callback.take());
        record
    }
}

#[cfg(test)]
mod tests;
