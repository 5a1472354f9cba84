//! One call as a sans-IO state machine, built like `sip_core::Endpoint`: every input comes with
//! the current instant (`handle_sip`, `handle_media`, `handle_control`, `handle_fetch_result`,
//! `handle_timeout`) and everything the call wants done comes out of [`Call::poll_output`] (SIP
//! and media commands per leg, fetches, recording files, rows, callbacks, live and bot updates)
//! with the next deadline from [`Call::poll_timeout`]. No sockets, no clock, no tasks: the
//! daemon's call task drives it, and tests drive it in simulated time.
//!
//! # Layout
//! - [`Call`] (`call.rs`): the lifecycle ([`CallState`]) and the program that runs — TwiML
//!   ([`control::CallFlow`]) or a bot — one activity at a time.
//! - `prompt.rs`: Say/Play/Pause/digits prompts, for verbs, `<Gather>`, bots and the error prompt.
//! - `capture.rs`: `<Record>` and `recordResponse` on one leg: beep, capture, finalize.
//! - `bot.rs`: Graph operations, their outcomes, tones.
//! - [`params`]: webhook parameters (call progress, recording status) and status mappings.
//! - `dial.rs`: `<Dial>`: ring the nouns on new legs, bridge the first to answer.
//! - `conversation.rs`: a bridged conversation's recording (dual-channel or mixed).
//! - [`leg`]: a call's parties: the caller is leg 0, `<Dial>` adds the others.

mod bot;
mod call;
mod capture;
mod conversation;
mod dial;
pub mod leg;
pub mod params;
mod prompt;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use call::{Call, CallState, Program, StopCause};
pub use capture::RecordingTracks;
pub use leg::{Leg, LegId, LegState, MediaKind};

use control::graph::{OperationRequest, ResultInfo};
use control::{HttpMethod, ParseLimits};
use record_engine::{RecordSummary, Recorder, WavWriter};
use sip_core::sdp::Negotiated;

/// How long the BYE we send may take to be answered before the call is reported ended anyway.
pub const BYE_GRACE: Duration = Duration::from_secs(5);

/// Identifies one asynchronous request (fetch, speech, recording file) and its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IoId(pub u64);

/// Identifies one playback on a leg; a `PlayDone` for an older one is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlaybackId(pub u64);

/// The application a call runs (`[app]` or a matching `[[route]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    pub voice_url: Option<String>,
    pub voice_method: HttpMethod,
    pub twiml: String,
    pub fallback_url: Option<String>,
    pub fallback_method: HttpMethod,
    pub status_callback: Option<String>,
    pub status_callback_method: HttpMethod,
    /// Twilio's `StatusCallbackEvent`: the progress events sent (`initiated`, `ringing`,
    /// `answered`, `completed`); `None` sends every one.
    pub status_callback_events: Option<Vec<String>>,
    /// A bot drives the call over the Graph-style API instead of TwiML.
    pub bot: bool,
}

/// `record.*` settings a capture uses.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordDefaults {
    pub pre_roll_ms: u32,
    pub trim_padding_ms: u32,
    pub finish_key_guard_ms: u32,
    pub silence_threshold_dbfs: f32,
    pub vad_mode: u8,
}

/// What a call needs to know, fixed when it starts.
#[derive(Clone)]
pub struct CallConfig {
    pub account_sid: store::AccountSid,
    /// Recording URLs are `{http_public_url}/2010-04-01/Accounts/{AccountSid}/Recordings/{Sid}`.
    pub http_public_url: String,
    pub app: AppSpec,
    pub parse_limits: ParseLimits,
    pub record: RecordDefaults,
    /// `transcription.language`, when `<Record transcribeLanguage>` names none.
    pub transcription_language: String,
    /// `rtp.timeout`, for the log line when it fires.
    pub rtp_timeout: Duration,
    /// The `<Record>` beep and one second of silence (`<Pause>`), shared by all calls.
    pub beep: Arc<[i16]>,
    pub silence_second: Arc<[i16]>,
    /// Unix milliseconds at the instant the call was created: rows and `Timestamp`s are this
    /// plus the input's instant minus that one, so simulated time gives exact wall times.
    pub wall_clock: (Instant, i64),
}

/// The 128 bits of each new SID the call mints (`RE…`, `TR…`): random in the daemon,
/// deterministic in tests.
pub type SidSource = Box<dyn FnMut() -> u128 + Send>;

/// From the leg's signalling (sip-core's `CallEvent`s of this leg's dialog).
#[derive(Debug, Clone, PartialEq)]
pub enum SipInput {
    /// ACK for our 2xx.
    Confirmed,
    /// A re-INVITE was answered (hold/unhold, a new media address).
    MediaChanged(Negotiated),
    /// DTMF by SIP INFO.
    Dtmf { digit: char, duration_ms: u32 },
    /// The dialog is over (BYE, CANCEL, lost ACK, our BYE answered).
    Ended(String),
    /// The party we called answered (its answer is already with the media side).
    Answered,
    /// The party we called declined with this final status (486 busy, 603 decline, …).
    Refused { status: u16 },
}

/// From the leg's media.
// Audio frames travel inline: boxing them would allocate per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum MediaInput {
    /// Media was allocated (answer to [`MediaCommand::Allocate`]): `origin` is timeline index 0
    /// of the inbound audio; `advertised` goes into the SDP answer; `sample_rate` is the rate
    /// the leg's audio is recorded at (16000 for Opus, else 8000).
    Ready {
        origin: Instant,
        advertised: SocketAddr,
        sample_rate: u32,
    },
    /// The far end's answer settled the codec (a leg we called): recordings of the leg are
    /// made at this rate from now on.
    SampleRate(u32),
    /// No media could be allocated: the call is refused with this status (488, 503).
    SetupFailed { status: u16, reason: String },
    /// Audio or a key, drained from the leg's ring, in timeline order.
    Item(media_engine::MediaItem),
    /// A playback has been sent (or was stopped).
    PlayDone(PlaybackId),
    /// No RTP for `rtp.timeout`: a hang-up for the program; we still send the BYE.
    RtpTimeout,
}

/// Twilio's live update: run this TwiML now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    Twiml(String),
    Url(String, HttpMethod),
}

/// From the API and the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlInput {
    /// Graph DELETE, Twilio `Status=completed|canceled`.
    HangUp,
    Redirect(Redirect),
    /// A Graph operation, already registered by the API as `notStarted`.
    Operation {
        id: String,
        request: OperationRequest,
    },
    /// The daemon is stopping: end the call (503 if not answered yet).
    Shutdown,
    /// REST: start recording the call (`Calls/{CallSid}/Recordings.json`).
    StartRecording(control::recording_control::LiveRecordingRequest),
    /// REST: pause, resume or stop a recording (`None`: `Twilio.CURRENT`).
    ChangeRecording {
        sid: Option<store::RecordingSid>,
        change: control::recording_control::RecordingChange,
    },
}

/// A webhook's answer, as far as the call needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// The final URL (after redirects): relative URLs in the document resolve against it.
    pub url: String,
    pub content_type: String,
    pub body: String,
    /// The body was larger than the parse limit and was cut.
    pub oversized: bool,
}

/// The result of a [`FetchRequest`] or [`RecordingIo`].
pub enum FetchResult<S: record_engine::wav::WavStorage> {
    Twiml(Result<HttpAnswer, String>),
    /// Prompt audio or rendered speech, 8 kHz mono.
    Audio(Result<Arc<[i16]>, String>),
    RecordingOpened(Result<WavWriter<S>, String>),
    /// `summary` is `None` when finishing failed and the file was repaired instead:
    /// `repaired_samples` is then what it holds.
    RecordingFinalized {
        summary: Option<RecordSummary>,
        repaired_samples: u64,
    },
    /// A conversation's file: the frames it holds, or why closing failed and what the repaired
    /// file holds.
    RecordingClosed(Result<u64, (String, u64)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipCommand {
    /// 180 Ringing.
    Ring,
    /// 200 OK with our SDP at `local_rtp`.
    Answer { local_rtp: SocketAddr },
    /// A final non-2xx answer instead of answering.
    Reject { status: u16 },
    /// BYE.
    Hangup,
    /// Call the leg (an outbound call): the offer is what media allocation made.
    Invite,
    /// Stop calling it before it answered.
    Cancel,
    /// Call a `<Dial>` noun on this new leg: the edge sets up its media, sends the INVITE (or
    /// rings the client) and reports `Ready` + [`SipInput::Answered`], or `Refused`/`Ended`.
    Dial(DialRequest),
}

/// One `<Dial>` noun to call, with what its INVITE carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialRequest {
    pub target: control::DialTarget,
    /// The child call's SID (`DialCallSid`).
    pub call_sid: store::CallSid,
    /// The caller ID presented: `callerId`, else the caller's own.
    pub from: String,
    pub timeout: Duration,
}

/// What a leg's media is set up from.
#[derive(Debug, Clone)]
pub enum LegOffer {
    /// A SIP offer already negotiated by sip-core (G.711 over RTP).
    Rtp(Negotiated),
    /// A browser's WebRTC offer (SDP), answered by the media side (ICE-lite, DTLS-SRTP).
    WebRtc { sdp: String },
    /// A browser we call: the media side makes the offer, the browser answers.
    WebRtcOffer,
}

impl LegOffer {
    pub fn kind(&self) -> MediaKind {
        match self {
            LegOffer::Rtp(_) => MediaKind::G711Rtp,
            LegOffer::WebRtc { .. } | LegOffer::WebRtcOffer => MediaKind::WebRtc,
        }
    }
}

#[derive(Debug)]
pub enum MediaCommand {
    /// Set up media for the offer (a port, the RTP task); answered with `Ready` or
    /// `SetupFailed`.
    Allocate {
        offer: LegOffer,
    },
    /// Play `audio` `loops` times (0 = until stopped); answered with `PlayDone(id)`.
    Play {
        id: PlaybackId,
        audio: Arc<[i16]>,
        loops: u32,
    },
    /// Send `digits` as RFC 4733 events (`w` = 0.5 s); answered with `PlayDone(id)`.
    PlayDigits {
        id: PlaybackId,
        digits: String,
    },
    Stop,
    /// A SIP INFO key, placed on the media timeline (it comes back through the ring).
    InjectDtmf(char),
    Renegotiate(Negotiated),
    /// Relay this leg's audio to `peer`'s and back (transcoded as needed).
    Bridge {
        peer: LegId,
    },
    /// Stop relaying this leg's audio.
    Unbridge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchRequest {
    /// A TwiML document (voice URL, action, `<Redirect>`, live update URL).
    Twiml {
        url: String,
        method: HttpMethod,
        params: Vec<(String, String)>,
    },
    /// Prompt audio (`<Play>`, bot prompts), decoded to 8 kHz.
    Audio { url: String },
    /// Text to speech, 8 kHz.
    Speech {
        text: String,
        voice: String,
        language: String,
    },
}

/// Recording files: opened and finalized off the call's task.
pub enum RecordingIo<S: record_engine::wav::WavStorage> {
    /// Create the WAV for this recording at `sample_rate`; answered with `RecordingOpened`.
    Open {
        sid: store::RecordingSid,
        sample_rate: u32,
        /// 1, or 2 for a dual-channel conversation.
        channels: u16,
    },
    /// Keep frames `keep` of a conversation's file and close it; answered with
    /// `RecordingClosed`.
    Close {
        sid: store::RecordingSid,
        writer: WavWriter<S>,
        keep: std::ops::Range<u64>,
    },
    /// Finish (trim, cut, header) or else repair; answered with `RecordingFinalized`.
    Finalize {
        sid: store::RecordingSid,
        recorder: Box<Recorder<S>>,
    },
}

/// Rows, written in output order (a recording's row before its file: crash recovery needs it).
#[derive(Debug, Clone, PartialEq)]
pub enum Persist {
    InsertCall {
        row: store::CallRecord,
        request_id: Option<String>,
    },
    UpdateCall(store::CallRecord),
    InsertRecording(store::RecordingRecord),
    UpdateRecording(store::RecordingRecord),
    /// What Hark said (speaker `system`), for the call's transcript.
    InsertCallEvent(store::CallEvent),
    /// A transcription job for a finished recording.
    QueueTranscription(store::TranscriptionRecord),
}

/// The live-control registry's view of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveUpdate {
    /// A bot drives the call (Graph operations are accepted).
    BotMode,
    Established,
    /// From here on the API treats the call as ended.
    Terminated,
    /// What the call is doing now (sent when it changes): the console's live view.
    Activity(LiveActivity),
}

/// What a running call is doing, as a supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LiveActivity {
    /// The TwiML verb running (`Say`, `Play`, `Pause`, `Gather`, `Record`, `Dial`), `Fetch`
    /// while a document is fetched, `Bot` for a bot-driven call, "" between steps.
    pub verb: &'static str,
    /// Legs with a live dialog (the caller and any dialled party).
    pub legs: u32,
    pub recording: LiveRecordingState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LiveRecordingState {
    #[default]
    Off,
    On,
    /// Only paused recordings (REST `Status=paused`).
    Paused,
}

impl LiveRecordingState {
    pub fn as_str(self) -> &'static str {
        match self {
            LiveRecordingState::Off => "off",
            LiveRecordingState::On => "on",
            LiveRecordingState::Paused => "paused",
        }
    }
}

/// Defined once, with the other Graph operation types.
pub use control::graph::OperationStatus;

/// What the bot is told (the driver turns these into `commsNotifications`, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotEvent {
    CallState(control::graph::CallState),
    /// An operation started (no notification) or finished (notified). A finished record
    /// operation with audio names its recording.
    Operation {
        id: String,
        status: OperationStatus,
        result: Option<ResultInfo>,
        recording_sid: Option<store::RecordingSid>,
    },
    /// A key heard while subscribed to tones; `sequence` counts from 1.
    Tone {
        key: char,
        sequence: u32,
    },
}

/// Why the call asked to be woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerReason {
    /// `<Gather>`'s timeout between keys.
    GatherDigits,
    /// No audio for a while during a capture: advance it with silence.
    StallPadding,
    /// Our BYE was not answered in time.
    ByeGrace,
    /// The party we call did not answer within the call's `Timeout`.
    RingTimeout,
    /// `<Dial>`'s ring timeout or `timeLimit`.
    Dial,
}

// A few outputs per verb, moved once each: not worth a box per row.
#[allow(clippy::large_enum_variant)]
pub enum Output<S: record_engine::wav::WavStorage> {
    Sip {
        leg: LegId,
        command: SipCommand,
    },
    Media {
        leg: LegId,
        command: MediaCommand,
    },
    Fetch {
        id: IoId,
        request: FetchRequest,
    },
    CancelFetch(IoId),
    Recording {
        id: IoId,
        io: RecordingIo<S>,
    },
    Persist(Persist),
    /// Queue a signed webhook in the outbox (ordered per `group`, retried).
    Callback {
        group: String,
        url: String,
        method: HttpMethod,
        params: Vec<(String, String)>,
    },
    Live(LiveUpdate),
    Bot(BotEvent),
}

impl<S: record_engine::wav::WavStorage> std::fmt::Debug for Output<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Sip { leg, command } => write!(f, "Sip({leg:?}, {command:?})"),
            Output::Media { leg, command } => match command {
                MediaCommand::Play { id, audio, loops } => {
                    write!(
                        f,
                        "Media({leg:?}, Play({id:?}, {} samples x{loops}))",
                        audio.len()
                    )
                }
                other => write!(f, "Media({leg:?}, {other:?})"),
            },
            Output::Fetch { id, request } => write!(f, "Fetch({id:?}, {request:?})"),
            Output::CancelFetch(id) => write!(f, "CancelFetch({id:?})"),
            Output::Recording { id, io } => match io {
                RecordingIo::Open {
                    sid,
                    sample_rate,
                    channels,
                } => {
                    write!(
                        f,
                        "Recording({id:?}, Open {sid} at {sample_rate} Hz x{channels})"
                    )
                }
                RecordingIo::Close { sid, keep, .. } => {
                    write!(f, "Recording({id:?}, Close {sid} keep {keep:?})")
                }
                RecordingIo::Finalize { sid, .. } => write!(f, "Recording({id:?}, Finalize {sid})"),
            },
            Output::Persist(p) => write!(f, "Persist({p:?})"),
            Output::Callback {
                group, url, params, ..
            } => write!(f, "Callback({group}, {url}, {params:?})"),
            Output::Live(s) => write!(f, "Live({s:?})"),
            Output::Bot(e) => write!(f, "Bot({e:?})"),
        }
    }
}

#[cfg(test)]
mod tests;
