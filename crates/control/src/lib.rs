//! TwiML and call flow for Hark: pure code, no sockets or clock.
//!
//! # Layout
//! - [`twiml`]: parse a TwiML document into verbs with validated attributes (SPEC §2.2, §3.1, §4).
//! - [`flow`]: the sans-IO interpreter: which step runs next, what the `<Record>` outcome
//!   triggers (action request, fall-through), documents replaced by action answers.
//! - [`params`]: Twilio's standard request parameters (SPEC §1).
//! - [`signature`]: `X-Twilio-Signature` (SPEC §5) and form encoding.
//! - [`urls`]: relative URL resolution (RFC 3986) against the document's URL; connection
//!   overrides in URL fragments (SPEC §2.1).

pub mod flow;
pub mod graph;
pub mod params;
pub mod recording_control;
pub mod signature;
pub mod twiml;
pub mod urls;

pub use flow::{CallFlow, DialResult, FlowOptions, GatherStep, PromptStep, RecordResult, Step};
pub use params::{CallInfo, CallStatus, ClientApp};
pub use twiml::{
    classify_content_type, parse_document, parse_document_bytes, AttrWarning, ContentKind,
    DialNoun, DialRecord, DialTarget, DialVerb, Document, GatherVerb, HttpMethod, ParseLimits,
    PlayVerb, Prompt, RecordVerb, RedirectVerb, RejectReason, RejectVerb, SayVerb, StatusEvents,
    TwimlError, Verb,
};
pub use urls::{parse_overrides, ConnectionOverrides, FetchFailure, RetryPolicy, UrlError};
