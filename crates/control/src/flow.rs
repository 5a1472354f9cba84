//! The sans-IO call-flow interpreter. The daemon asks for the next [`Step`], carries it out
//! and reports back; this module decides what follows.
//!
//! Failures (SPEC §2.2): the daemon reports a failed fetch ([`CallFlow::fetch_failed`]) or an
//! answer that is not usable TwiML ([`CallFlow::document_failed`]); the flow then requests the
//! fallback URL with `ErrorCode`/`ErrorUrl`, or, without one (or when the fallback itself
//! failed), hands out [`Step::AppError`].

use store::RecordingSid;
use tracing::{error, warn};

use crate::twiml::{
    DialVerb, Document, GatherVerb, HttpMethod, Prompt, RecordVerb, SayVerb, TwimlError, Verb,
};
use crate::urls::{resolve, resolve_media, strip_fragment};

/// Verbs one call may execute across all its documents; stops action/redirect loops.
pub const MAX_VERBS_PER_CALL: u32 = 10_000;
/// Documents one call may run, the first included.
pub const MAX_DOCUMENTS_PER_CALL: u32 = 100;
/// Twilio's "invalid URL format": a `<Redirect>` whose URL cannot be resolved.
pub const ERROR_INVALID_URL: u32 = 11100;

/// What the daemon must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Play audio `loops` times (0 = until hangup). `url` is resolved. With `digits`, send
    /// them as RFC 4733 events instead (`w` = 0.5 s pause) and `url` is empty.
    Play {
        url: String,
        loops: u32,
        digits: Option<String>,
    },
    Pause {
        secs: u32,
    },
    /// Speak `text` `loops` times (0 = until hangup). `voice`/`language` as written in TwiML.
    Say {
        text: String,
        voice: String,
        language: String,
        loops: u32,
    },
    /// Record; `action`, `recording_status_callback` and `transcribe_callback` are resolved
    /// absolute URLs (or `None`).
    Record(RecordVerb),
    /// Collect DTMF while playing the prompts, then report with [`CallFlow::gather_finished`].
    Gather(GatherStep),
    /// Call the nouns and bridge the first to answer; report with [`CallFlow::dial_finished`].
    /// `action`, `recording_status_callback` and the nouns' `url` are resolved.
    Dial(DialVerb),
    /// Answers first if needed (SPEC §4), then hang up.
    Hangup,
    /// Before answer: reject with this SIP status (486 busy, 603 rejected). After answer: hang
    /// up. Only `End` follows.
    Reject {
        status: u16,
    },
    /// Request `url` with the standard parameters plus `extra`. Unless `discard_answer`, report
    /// the outcome with [`CallFlow::document_fetched`], [`CallFlow::text_fetched`],
    /// [`CallFlow::audio_fetched`], [`CallFlow::document_failed`] or [`CallFlow::fetch_failed`].
    Fetch {
        url: String,
        method: HttpMethod,
        extra: Vec<(String, String)>,
        discard_answer: bool,
    },
    /// The application failed with Twilio error `code` and there is no (working) fallback:
    /// play the application-error prompt and hang up, or answer 500/503 if not yet answered.
    /// Only `End` follows.
    AppError {
        code: u32,
    },
    /// The document ran out (or the call is over): hang up.
    End,
}

impl Step {
    /// Whether carrying out this step needs an answered call (SPEC §1: the call is answered
    /// when the first such step runs). `<Hangup>` answers first too.
    pub fn needs_media(&self) -> bool {
        match self {
            Step::Play { .. }
            | Step::Pause { .. }
            | Step::Say { .. }
            | Step::Record(_)
            | Step::Gather(_)
            | Step::Hangup => true,
            // With answerOnBridge the caller is answered when the dialled party is.
            Step::Dial(dial) => !dial.answer_on_bridge,
            Step::Reject { .. } | Step::Fetch { .. } | Step::AppError { .. } | Step::End => false,
        }
    }
}

/// A `<Gather>` ready to run; prompts are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatherStep {
    /// Played in order until the first key.
    pub prompts: Vec<PromptStep>,
    /// Seconds to wait for the first key (after the prompts) and between keys.
    pub timeout_secs: u32,
    /// Submits without being included in `Digits`; `None` = no finish key.
    pub finish_on_key: Option<char>,
    /// Submit when this many digits were pressed; `None` = unlimited.
    pub num_digits: Option<u32>,
}

/// One `<Gather>` prompt, resolved like the corresponding [`Step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptStep {
    Say {
        text: String,
        voice: String,
        language: String,
        loops: u32,
    },
    Play {
        url: String,
        loops: u32,
        digits: Option<String>,
    },
    Pause {
        secs: u32,
    },
}

/// Per-application settings the flow needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowOptions {
    /// Requested with `ErrorCode` and `ErrorUrl` when a document cannot be fetched or run.
    pub fallback_url: Option<String>,
    pub fallback_method: HttpMethod,
}

impl Default for FlowOptions {
    fn default() -> Self {
        Self {
            fallback_url: None,
            fallback_method: HttpMethod::Post,
        }
    }
}

/// How a `<Record>` ended, as the daemon saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordResult {
    pub recording_sid: RecordingSid,
    pub recording_url: String,
    pub duration_secs: u32,
    /// `Digits` for the action request (a key, `hangup`, or empty).
    pub digits: String,
    /// Empty recording: no action request; the next verb runs.
    pub absent: bool,
    /// The caller hung up: the action is requested but its answer is ignored.
    pub hung_up: bool,
}

/// How a `<Dial>` ended (Twilio's `DialCallStatus` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialResult {
    /// `completed`, `answered`, `busy`, `no-answer`, `failed` or `canceled`.
    pub status: String,
    /// The dialled leg's CallSid (the one that answered, else the last tried).
    pub call_sid: Option<String>,
    /// Seconds the bridge lasted.
    pub duration_secs: u64,
    pub bridged: bool,
    /// The conversation's recording: sid, URL, seconds.
    pub recording: Option<(RecordingSid, String, u32)>,
    /// The caller hung up: the action is requested but its answer is ignored.
    pub caller_hung_up: bool,
}

#[derive(Debug)]
struct PendingFetch {
    url: String,
    method: HttpMethod,
    extra: Vec<(String, String)>,
    discard_answer: bool,
    /// This is the fallback request: its own failure must not request it again.
    is_fallback: bool,
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
    /// A `Gather` step was handed out; only [`CallFlow::gather_finished`] may follow.
    AwaitingGather {
        action: Option<String>,
        method: HttpMethod,
        action_on_empty_result: bool,
    },
    /// A `Dial` step was handed out; only [`CallFlow::dial_finished`] may follow.
    AwaitingDial {
        action: Option<String>,
        method: HttpMethod,
    },
    /// The request to hand out next.
    FetchReady(PendingFetch),
    /// A `Fetch` whose answer matters was handed out; only its outcome may follow.
    AwaitingDocument {
        is_fallback: bool,
    },
    /// `AppError` to hand out next.
    AppErrorReady {
        code: u32,
    },
    Ended,
}

/// One call's TwiML execution. Misuse (a step asked for while a `Record`, `Gather` or `Fetch`
/// result is outstanding, or a result nobody asked for) ends the flow: it never silently
/// continues.
pub struct CallFlow {
    document: Document,
    document_url: Option<String>,
    next: usize,
    state: State,
    verbs_run: u32,
    documents_run: u32,
    options: FlowOptions,
}

impl CallFlow {
    pub fn new(document: Document, document_url: Option<String>) -> Self {
        Self::with_options(document, document_url, FlowOptions::default())
    }

    pub fn with_options(
        document: Document,
        document_url: Option<String>,
        options: FlowOptions,
    ) -> Self {
        Self {
            document,
            document_url,
            next: 0,
            state: State::Running,
            verbs_run: 0,
            documents_run: 1,
            options,
        }
    }

    /// The initial document could not be fetched or used (`code` 11200, 12100, 12200 or
    /// 12300 for `url`): the flow starts with the fallback request, or with `AppError`.
    pub fn initial_failure(code: u32, url: &str, options: FlowOptions) -> Self {
        let empty = Document {
            verbs: Vec::new(),
            warnings: Vec::new(),
        };
        let mut flow = Self::with_options(empty, None, options);
        flow.fail(code, url, false);
        flow
    }

    pub fn next_step(&mut self) -> Step {
        match std::mem::replace(&mut self.state, State::Ended) {
            State::Running => self.run_verbs(),
            State::FetchReady(fetch) => {
                if !fetch.discard_answer {
                    self.state = State::AwaitingDocument {
                        is_fallback: fetch.is_fallback,
                    };
                }
                Step::Fetch {
                    url: fetch.url,
                    method: fetch.method,
                    extra: fetch.extra,
                    discard_answer: fetch.discard_answer,
                }
            }
            State::AppErrorReady { code } => Step::AppError { code },
            State::AwaitingRecord { .. } => {
                error!(
                    "call flow: next_step while a <Record> result is outstanding; ending the flow"
                );
                Step::End
            }
            State::AwaitingGather { .. } => {
                error!(
                    "call flow: next_step while a <Gather> result is outstanding; ending the flow"
                );
                Step::End
            }
            State::AwaitingDial { .. } => {
                error!(
                    "call flow: next_step while a <Dial> result is outstanding; ending the flow"
                );
                Step::End
            }
            State::AwaitingDocument { .. } => {
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
            (
                "RecordingSid".to_string(),
                result.recording_sid.into_string(),
            ),
            (
                "RecordingDuration".to_string(),
                result.duration_secs.to_string(),
            ),
            ("Digits".to_string(), digits),
        ];
        // SPEC §3.2.9: after a hangup the action is still requested, its answer discarded.
        self.state = State::FetchReady(PendingFetch {
            url,
            method,
            extra,
            discard_answer: result.hung_up,
            is_fallback: false,
        });
    }

    /// A `<Dial>` ended. With an action, it is requested with `DialCallStatus`,
    /// `DialCallSid`, `DialCallDuration`, `DialBridged` (and the recording's parameters);
    /// without one the next verb runs, unless the caller hung up.
    pub fn dial_finished(&mut self, result: DialResult) {
        let State::AwaitingDial { action, method } =
            std::mem::replace(&mut self.state, State::Ended)
        else {
            error!("call flow: dial_finished without a running <Dial>; ending the flow");
            return;
        };
        let Some(url) = action else {
            if !result.caller_hung_up {
                self.state = State::Running;
            }
            return;
        };
        let mut extra = vec![("DialCallStatus".to_string(), result.status)];
        if let Some(sid) = result.call_sid {
            extra.push(("DialCallSid".to_string(), sid));
        }
        if result.bridged {
            extra.push((
                "DialCallDuration".to_string(),
                result.duration_secs.to_string(),
            ));
        }
        extra.push(("DialBridged".to_string(), result.bridged.to_string()));
        if let Some((sid, recording_url, secs)) = result.recording {
            extra.push(("RecordingUrl".to_string(), recording_url));
            extra.push(("RecordingSid".to_string(), sid.into_string()));
            extra.push(("RecordingDuration".to_string(), secs.to_string()));
        }
        self.state = State::FetchReady(PendingFetch {
            url,
            method,
            extra,
            discard_answer: result.caller_hung_up,
            is_fallback: false,
        });
    }

    /// A `<Gather>` ended: `digits` without the finish key (empty on timeout or nothing
    /// pressed), `finished_on_key` the key that ended it, if any. Digits (or
    /// `actionOnEmptyResult`) request the action with `Digits` and `FinishedOnKey`; otherwise,
    /// or with no action to request, the next verb runs.
    pub fn gather_finished(&mut self, digits: String, finished_on_key: Option<char>) {
        let State::AwaitingGather {
            action,
            method,
            action_on_empty_result,
        } = std::mem::replace(&mut self.state, State::Ended)
        else {
            error!("call flow: gather_finished without a running <Gather>; ending the flow");
            return;
        };
        self.state = State::Running;
        if digits.is_empty() && !action_on_empty_result {
            return;
        }
        let Some(url) = action else {
            return;
        };
        let key = finished_on_key.map(String::from).unwrap_or_default();
        self.state = State::FetchReady(PendingFetch {
            url,
            method,
            extra: vec![
                ("Digits".to_string(), digits),
                ("FinishedOnKey".to_string(), key),
            ],
            discard_answer: false,
            is_fallback: false,
        });
    }

    /// The answer to a `Fetch` replaces the document; execution starts at its first verb.
    pub fn document_fetched(&mut self, document: Document, url: String) {
        if self.take_awaiting_document("document_fetched").is_none() {
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

    /// A `text/plain` answer: it is said, then the call hangs up.
    pub fn text_fetched(&mut self, text: &str, url: String) {
        self.document_fetched(Document::say_then_hangup(text), url);
    }

    /// An `audio/*` answer (the body of `url`): it is played, then the call hangs up.
    pub fn audio_fetched(&mut self, url: String) {
        let document = Document::play_then_hangup(&url);
        self.document_fetched(document, url);
    }

    /// The outstanding `Fetch` of `failed_url` failed with Twilio error `error_code` (11200
    /// retrieval, 12300 content type, …): request the fallback URL, unless this was the
    /// fallback request or there is none, in which case `AppError` follows.
    pub fn fetch_failed(&mut self, error_code: u32, failed_url: &str) {
        let Some(is_fallback) = self.take_awaiting_document("fetch_failed") else {
            return;
        };
        self.fail(error_code, failed_url, is_fallback);
    }

    /// The answer to the outstanding `Fetch` of `url` is not usable TwiML.
    pub fn document_failed(&mut self, err: &TwimlError, url: &str) {
        self.fetch_failed(err.code(), url);
    }

    pub fn document_url(&self) -> Option<&str> {
        self.document_url.as_deref()
    }

    /// True once only `End` can follow.
    pub fn is_ended(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    /// Leaves `Ended` behind; `Some(is_fallback)` if a document was awaited.
    fn take_awaiting_document(&mut self, what: &str) -> Option<bool> {
        match std::mem::replace(&mut self.state, State::Ended) {
            State::AwaitingDocument { is_fallback } => Some(is_fallback),
            _ => {
                error!("call flow: {what} without an outstanding Fetch; ending the flow");
                None
            }
        }
    }

    /// SPEC §2.2: fallback request (once per failure), else the application-error step.
    fn fail(&mut self, code: u32, failed_url: &str, failed_request_was_fallback: bool) {
        error!(code, url = %failed_url, "call flow: TwiML application error");
        self.state = match &self.options.fallback_url {
            Some(fallback) if !failed_request_was_fallback => State::FetchReady(PendingFetch {
                url: fallback.clone(),
                method: self.options.fallback_method,
                extra: vec![
                    ("ErrorCode".to_string(), code.to_string()),
                    (
                        "ErrorUrl".to_string(),
                        strip_fragment(failed_url).to_string(),
                    ),
                ],
                discard_answer: false,
                is_fallback: true,
            }),
            _ => State::AppErrorReady { code },
        };
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
            let step = match verb {
                Verb::Play(play) => self
                    .play_step(&play.url, play.loop_count, play.digits)
                    .map(|(url, loops, digits)| Step::Play { url, loops, digits }),
                Verb::Say(say) => say_step(say).map(|(text, voice, language, loops)| Step::Say {
                    text,
                    voice,
                    language,
                    loops,
                }),
                Verb::Pause { length_secs } => Some(Step::Pause { secs: length_secs }),
                Verb::Hangup => return Step::Hangup,
                Verb::Reject(reject) => {
                    return Step::Reject {
                        status: reject.reason.sip_status(),
                    }
                }
                Verb::Record(record) => {
                    let record = self.resolve_record(record);
                    self.state = State::AwaitingRecord {
                        action: record.action.clone(),
                        method: record.method,
                    };
                    return Step::Record(record);
                }
                Verb::Gather(gather) => return self.gather_step(gather),
                Verb::Dial(dial) => {
                    let dial = self.resolve_dial(dial);
                    self.state = State::AwaitingDial {
                        action: dial.action.clone(),
                        method: dial.method,
                    };
                    return Step::Dial(dial);
                }
                Verb::Redirect(redirect) => {
                    return match resolve(self.document_url.as_deref(), &redirect.url) {
                        Ok(url) => {
                            self.state = State::AwaitingDocument { is_fallback: false };
                            Step::Fetch {
                                url,
                                method: redirect.method,
                                extra: Vec::new(),
                                discard_answer: false,
                            }
                        }
                        Err(e) => {
                            warn!("call flow: <Redirect> failed: {e}");
                            self.fail(ERROR_INVALID_URL, &redirect.url, false);
                            self.next_step()
                        }
                    };
                }
            };
            if let Some(step) = step {
                self.state = State::Running;
                return step;
            }
        }
    }

    /// `None` = skip (unresolvable media). Digits need no URL: the body is ignored.
    fn play_step(
        &self,
        url: &str,
        loops: u32,
        digits: Option<String>,
    ) -> Option<(String, u32, Option<String>)> {
        if digits.is_some() {
            return Some((String::new(), loops, digits));
        }
        match resolve_media(self.document_url.as_deref(), url) {
            Ok(url) => Some((url, loops, None)),
            Err(e) => {
                warn!("call flow: <Play> skipped: {e}");
                None
            }
        }
    }

    fn gather_step(&mut self, gather: GatherVerb) -> Step {
        let mut prompts = Vec::with_capacity(gather.prompts.len());
        for prompt in gather.prompts {
            match prompt {
                Prompt::Say(say) => {
                    if let Some((text, voice, language, loops)) = say_step(say) {
                        prompts.push(PromptStep::Say {
                            text,
                            voice,
                            language,
                            loops,
                        });
                    }
                }
                Prompt::Play(play) => {
                    if let Some((url, loops, digits)) =
                        self.play_step(&play.url, play.loop_count, play.digits)
                    {
                        prompts.push(PromptStep::Play { url, loops, digits });
                    }
                }
                Prompt::Pause { length_secs } => {
                    prompts.push(PromptStep::Pause { secs: length_secs })
                }
            }
        }
        // Twilio's default action is the current document; a static document has none.
        let action = match gather.action {
            Some(action) => self.resolve_optional("Gather", "action", Some(action)),
            None => self.document_url.clone(),
        };
        self.state = State::AwaitingGather {
            action,
            method: gather.method,
            action_on_empty_result: gather.action_on_empty_result,
        };
        Step::Gather(GatherStep {
            prompts,
            timeout_secs: gather.timeout_secs,
            finish_on_key: gather.finish_on_key,
            num_digits: gather.num_digits,
        })
    }

    fn resolve_optional(
        &self,
        verb: &str,
        attribute: &str,
        reference: Option<String>,
    ) -> Option<String> {
        let reference = reference?;
        match resolve(self.document_url.as_deref(), &reference) {
            Ok(url) => Some(url),
            Err(e) => {
                warn!("call flow: <{verb} {attribute}> ignored: {e}");
                None
            }
        }
    }

    fn resolve_dial(&self, mut dial: DialVerb) -> DialVerb {
        dial.action = self.resolve_optional("Dial", "action", dial.action.take());
        dial.recording_status_callback = self.resolve_optional(
            "Dial",
            "recordingStatusCallback",
            dial.recording_status_callback.take(),
        );
        dial.transcribe_callback = self.resolve_optional(
            "Dial",
            "transcribeCallback",
            dial.transcribe_callback.take(),
        );
        for noun in &mut dial.nouns {
            noun.url = self.resolve_optional("Dial", "url", noun.url.take());
            noun.status_callback =
                self.resolve_optional("Dial", "statusCallback", noun.status_callback.take());
        }
        dial
    }

    fn resolve_record(&self, mut record: RecordVerb) -> RecordVerb {
        record.action = match record.action.take() {
            Some(action) => self.resolve_optional("Record", "action", Some(action)),
            None => {
                if let Some(url) = &self.document_url {
                    // SPEC §3.1 [D]: the default re-fetches this same document and can loop.
                    warn!(url = %url, "call flow: <Record> without action defaults to the document URL");
                }
                self.document_url.clone()
            }
        };
        record.recording_status_callback = self.resolve_optional(
            "Record",
            "recordingStatusCallback",
            record.recording_status_callback.take(),
        );
        record.transcribe_callback = self.resolve_optional(
            "Record",
            "transcribeCallback",
            record.transcribe_callback.take(),
        );
        record
    }
}

/// `None` = skip (nothing to say).
fn say_step(say: SayVerb) -> Option<(String, String, String, u32)> {
    if say.text.is_empty() {
        warn!("call flow: <Say> with no text skipped");
        return None;
    }
    Some((say.text, say.voice, say.language, say.loop_count))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ivr;
