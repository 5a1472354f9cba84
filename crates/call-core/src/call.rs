//! The call: its lifecycle, the program it runs and the one activity running now.

use std::collections::VecDeque;
use std::time::Instant;

use control::flow::FlowOptions;
use control::graph::CallState as GraphCallState;
use control::params::standard_params;
use control::twiml::{classify_content_type, ContentKind};
use control::{CallFlow, CallInfo, CallStatus, Document, Step, TwimlError};
use media_engine::MediaItem;
use record_engine::wav::WavStorage;
use store::{CallRecord, RecordingSid, TranscriptionSid};

use crate::bot::BotState;
use crate::capture::{AfterCapture, Capture, CaptureOptions};
use crate::dial::Dial;
use crate::leg::{Leg, LegId, LegState};
use crate::params::{final_status, new_call_row, progress_params, ProgressEvent};
use crate::prompt::{AfterPrompt, LoadErrorPolicy, PromptItem, PromptRun};
use crate::{
    CallConfig, ControlInput, FetchRequest, FetchResult, HttpAnswer, IoId, LegOffer, LiveActivity,
    LiveRecordingState, LiveUpdate, MediaCommand, MediaInput, Output, Persist, PlaybackId,
    Redirect, SidSource, SipCommand, SipInput, TimerReason, BYE_GRACE,
};

/// Twilio's codes for the failures of SPEC §2.2.
pub(crate) const RETRIEVAL_FAILURE: u32 = 11200;
const BAD_CONTENT_TYPE: u32 = 12300;

/// What the caller hears when the application fails and there is no fallback.
pub(crate) const APP_ERROR_TEXT: &str = "We are sorry, an application error has occurred. Goodbye.";

/// The call's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// Ringing; the caller's media is being set up.
    Setup,
    /// The program runs.
    Running,
    /// We sent the BYE and wait for its answer until the deadline.
    Ending { bye_deadline: Instant },
    /// Reported; nothing more will come out.
    Done,
}

/// What drives the call.
pub enum Program {
    /// The first document (or a live update's) is being fetched.
    Loading,
    Twiml(Box<CallFlow>),
    /// A bot's Graph operations.
    Bot,
}

/// Why whatever runs must stop, from our side. One cause is kept: a stronger one replaces a
/// weaker (shutdown > API hang-up > live update > barge-in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopCause {
    BargeIn,
    Redirect(Redirect),
    ApiHangup,
    Shutdown,
}

impl StopCause {
    fn rank(&self) -> u8 {
        match self {
            StopCause::BargeIn => 0,
            StopCause::Redirect(_) => 1,
            StopCause::ApiHangup => 2,
            StopCause::Shutdown => 3,
        }
    }
}

/// The one thing the program is doing.
pub(crate) enum Activity<S: WavStorage> {
    /// Between steps (TwiML) or waiting for an operation (bot).
    Idle,
    /// A TwiML document is being fetched.
    Fetch {
        io: IoId,
        url: String,
        purpose: FetchPurpose,
    },
    Prompt {
        run: Box<PromptRun>,
        then: AfterPrompt,
    },
    Gather(Box<Gather>),
    Capture(Box<Capture<S>>),
    Dial(Box<Dial<S>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FetchPurpose {
    /// The voice URL: the first document.
    Initial,
    /// A live update's URL: a new flow.
    LiveRedirect,
    /// A step of the flow (action, `<Redirect>`, fallback).
    Step { discard_answer: bool },
}

/// `<Gather input="dtmf">` (SPEC §4).
pub(crate) struct Gather {
    step: control::GatherStep,
    /// Keys heard and not yet taken.
    keys: VecDeque<char>,
    phase: GatherPhase,
}

enum GatherPhase {
    /// Prompts play until the first key.
    Prompting(PromptRun),
    Collecting {
        digits: String,
        deadline: Instant,
    },
}

/// The outcome of fetching a document.
pub(crate) enum Fetched {
    Twiml(Document, String),
    Text(String, String),
    Audio(String),
    Failed { code: u32, url: String },
}

impl Fetched {
    /// The program a first document starts (a failure: the fallback or the error prompt).
    pub(crate) fn into_flow(self, options: FlowOptions) -> CallFlow {
        match self {
            Fetched::Twiml(doc, url) => CallFlow::with_options(doc, Some(url), options),
            Fetched::Text(text, url) => {
                CallFlow::with_options(Document::say_then_hangup(&text), Some(url), options)
            }
            Fetched::Audio(url) => {
                CallFlow::with_options(Document::play_then_hangup(&url), Some(url), options)
            }
            Fetched::Failed { code, url } => CallFlow::initial_failure(code, &url, options),
        }
    }

    /// A step's document (action, `<Redirect>`) handed to the running program.
    pub(crate) fn feed(self, flow: &mut CallFlow) {
        match self {
            Fetched::Twiml(doc, url) => flow.document_fetched(doc, url),
            Fetched::Text(text, url) => flow.text_fetched(&text, url),
            Fetched::Audio(url) => flow.audio_fetched(url),
            Fetched::Failed { code, url } => flow.fetch_failed(code, &url),
        }
    }
}

/// Ringing the party of an outbound call.
#[derive(Debug, Clone, Copy)]
struct Outbound {
    ring_timeout: std::time::Duration,
    /// Set once the invite went out.
    ring_deadline: Option<Instant>,
}

/// One call. `S` is where recordings are written (a file in the daemon, memory in tests).
pub struct Call<S: WavStorage> {
    pub(crate) config: CallConfig,
    pub(crate) info: CallInfo,
    pub(crate) legs: Vec<Leg>,
    state: CallState,
    program: Program,
    pub(crate) activity: Activity<S>,
    pub(crate) stop: Option<StopCause>,
    pub(crate) bot: BotState,
    row: CallRecord,
    progress_sequence: u32,
    /// Set for a call we place (REST `Calls.json`): the leg is the party we call.
    outbound: Option<Outbound>,
    /// Recordings started over the REST API, running beside whatever the program does.
    pub(crate) api_recordings: Vec<crate::conversation::LiveRecording<S>>,
    /// The leg bridged to the caller by `<Dial>`, while it is.
    pub(crate) bridged: Option<LegId>,
    /// The call is over but REST recordings are still being closed: it finishes when they are.
    finish_waiting: bool,
    /// What the live view was last told.
    shown: LiveActivity,
    next_id: u64,
    pub(crate) sids: SidSource,
    out: VecDeque<Output<S>>,
}

impl<S: WavStorage> Call<S> {
    /// A call offered by the caller's INVITE (100 Trying already sent): writes its row, rings
    /// and asks for media for `offer`.
    pub fn new(
        now: Instant,
        config: CallConfig,
        info: CallInfo,
        offer: LegOffer,
        request_id: Option<String>,
        sids: SidSource,
    ) -> Self {
        let mut call = Self::created(now, config, info, &offer, None, sids);
        call.out.push_back(Output::Persist(Persist::InsertCall {
            row: call.row.clone(),
            request_id,
        }));
        call.progress(ProgressEvent::Initiated, now, None);
        call.sip(SipCommand::Ring);
        call.progress(ProgressEvent::Ringing, now, None);
        call.media(MediaCommand::Allocate { offer });
        call
    }

    /// A call we place (Twilio's `outbound-api`): writes its row (`queued`) and asks for media
    /// for `offer`; once media is ready the leg is invited and rings for up to `ring_timeout`.
    /// The program runs when the party answers ([`SipInput::Answered`]); a refusal, the
    /// timeout or a hang-up before that ends the call busy, no-answer, failed or canceled.
    pub fn new_outbound(
        now: Instant,
        config: CallConfig,
        mut info: CallInfo,
        offer: LegOffer,
        ring_timeout: std::time::Duration,
        sids: SidSource,
    ) -> Self {
        info.direction = store::Direction::OutboundApi;
        let outbound = Outbound {
            ring_timeout,
            ring_deadline: None,
        };
        let mut call = Self::created(now, config, info, &offer, Some(outbound), sids);
        call.row.status = CallStatus::Queued;
        call.out.push_back(Output::Persist(Persist::InsertCall {
            row: call.row.clone(),
            request_id: None,
        }));
        call.progress(ProgressEvent::Initiated, now, None);
        call.media(MediaCommand::Allocate { offer });
        call
    }

    /// A call with its one leg and its row, before anything is asked of the edges.
    fn created(
        now: Instant,
        config: CallConfig,
        info: CallInfo,
        offer: &LegOffer,
        outbound: Option<Outbound>,
        sids: SidSource,
    ) -> Self {
        let leg = Leg::new(LegId::CALLER, offer.kind(), config.record.pre_roll_ms);
        let mut call = Call {
            row: new_call_row(&info, 0),
            config,
            info,
            legs: vec![leg],
            state: CallState::Setup,
            program: Program::Loading,
            activity: Activity::Idle,
            stop: None,
            bot: BotState::default(),
            progress_sequence: 0,
            outbound,
            api_recordings: Vec::new(),
            shown: LiveActivity::default(),
            bridged: None,
            finish_waiting: false,
            next_id: 0,
            sids,
            out: VecDeque::new(),
        };
        call.row = new_call_row(&call.info, call.unix_ms(now));
        call
    }

    /// Media is ready for an outbound call: invite the party and let it ring.
    fn invite(&mut self, now: Instant) {
        let Some(outbound) = self.outbound.as_mut() else {
            return;
        };
        outbound.ring_deadline = Some(now + outbound.ring_timeout);
        self.sip(SipCommand::Invite);
        let ms = self.unix_ms(now);
        self.row.status = CallStatus::Ringing;
        self.row.date_updated_ms = ms;
        self.push(Output::Persist(Persist::UpdateCall(self.row.clone())));
        self.progress(ProgressEvent::Ringing, now, None);
    }

    /// The party we call answered: the program starts.
    fn outbound_answered(&mut self, now: Instant) {
        let invited = self.outbound.is_some_and(|o| o.ring_deadline.is_some());
        if self.state != CallState::Setup || !invited {
            return;
        }
        self.leg_answered(now);
        self.state = CallState::Running;
        self.start_program(now);
    }

    /// An outbound call ends before answer: `status` is the leg's final answer (486 busy,
    /// 480 no answer, 487 canceled by us, others failed); `cancel` stops the ringing.
    fn outbound_unanswered(&mut self, now: Instant, status: u16, cancel: bool) {
        if self.state != CallState::Setup {
            return;
        }
        let invited = self.outbound.is_some_and(|o| o.ring_deadline.is_some());
        if cancel && invited {
            self.sip(SipCommand::Cancel);
        }
        self.legs[0].state = LegState::Rejected { status };
        self.finish(now);
    }

    pub fn state(&self) -> CallState {
        self.state
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    pub(crate) fn program_mut(&mut self) -> &mut Program {
        &mut self.program
    }

    pub(crate) fn set_program_loading(&mut self) {
        self.program = Program::Loading;
    }

    pub fn legs(&self) -> &[Leg] {
        &self.legs
    }

    pub fn info(&self) -> &CallInfo {
        &self.info
    }

    pub fn is_done(&self) -> bool {
        self.state == CallState::Done
    }

    pub fn poll_output(&mut self) -> Option<Output<S>> {
        if let Some(out) = self.out.pop_front() {
            return Some(out);
        }
        // Once everything else is out: what a supervisor sees, when it changed.
        if self.state == CallState::Done {
            return None;
        }
        let now = self.live_activity();
        if now == self.shown {
            return None;
        }
        self.shown = now;
        Some(Output::Live(LiveUpdate::Activity(now)))
    }

    /// The verb running, the legs up and whether anything records.
    pub fn live_activity(&self) -> LiveActivity {
        let mut recording = LiveRecordingState::Off;
        let mut mark = |paused: bool| {
            recording = match (recording, paused) {
                (LiveRecordingState::On, _) | (_, false) => LiveRecordingState::On,
                _ => LiveRecordingState::Paused,
            }
        };
        for rec in &self.api_recordings {
            if !rec.is_closing_or_closed() {
                mark(rec.audio.paused());
            }
        }
        let verb = match (&self.program, &self.activity) {
            (Program::Bot, Activity::Capture(_)) => {
                mark(false);
                "Bot"
            }
            (Program::Bot, _) => "Bot",
            (_, Activity::Idle) => "",
            (_, Activity::Fetch { .. }) => "Fetch",
            (_, Activity::Prompt { run, .. }) => run.verb(),
            (_, Activity::Gather(_)) => "Gather",
            (_, Activity::Capture(_)) => {
                mark(false);
                "Record"
            }
            (_, Activity::Dial(d)) => {
                if let Some(paused) = d.recording_paused() {
                    mark(paused);
                }
                "Dial"
            }
        };
        let legs = self
            .legs
            .iter()
            .filter(|l| matches!(l.state, LegState::Ringing | LegState::Answered { .. }))
            .count();
        LiveActivity {
            verb,
            legs: u32::try_from(legs).unwrap_or(u32::MAX),
            recording,
        }
    }

    /// The next instant the call must be woken at, and why.
    pub fn poll_timeout(&self) -> Option<(Instant, TimerReason)> {
        match self.state {
            CallState::Ending { bye_deadline } => {
                return Some((bye_deadline, TimerReason::ByeGrace))
            }
            CallState::Running => {}
            CallState::Setup => {
                return self
                    .outbound
                    .and_then(|o| o.ring_deadline)
                    .map(|at| (at, TimerReason::RingTimeout))
            }
            _ => return None,
        }
        match &self.activity {
            Activity::Gather(g) => match g.phase {
                GatherPhase::Collecting { deadline, .. } => {
                    Some((deadline, TimerReason::GatherDigits))
                }
                GatherPhase::Prompting(_) => None,
            },
            Activity::Capture(c) => c
                .stall_deadline(&self.legs[c.leg])
                .map(|at| (at, TimerReason::StallPadding)),
            Activity::Dial(d) => d.deadline().map(|at| (at, TimerReason::Dial)),
            _ => None,
        }
    }

    pub fn handle_sip(&mut self, now: Instant, leg: LegId, input: SipInput) {
        let Some(index) = self.leg_index(leg) else {
            return;
        };
        if index != 0 {
            self.dial_sip(now, index, input);
            return self.run(now);
        }
        if self.outbound.is_some() && self.state == CallState::Setup {
            match input {
                SipInput::Answered => self.outbound_answered(now),
                SipInput::Refused { status } => {
                    tracing::info!(status, "the called party declined");
                    self.outbound_unanswered(now, status, false);
                }
                SipInput::Ended(reason) => {
                    tracing::info!(%reason, "the called party is gone before answering");
                    self.outbound_unanswered(now, 500, false);
                }
                _ => {}
            }
            return self.run(now);
        }
        match input {
            SipInput::Ended(reason) => {
                tracing::info!(%reason, "call ended by the network");
                let leg = &mut self.legs[index];
                if !matches!(leg.state, LegState::Rejected { .. }) {
                    leg.state = LegState::Gone {
                        answered_at: leg.answered_at(),
                    };
                }
            }
            SipInput::Dtmf { digit, duration_ms } if self.state == CallState::Running => {
                tracing::debug!(%digit, duration_ms, "DTMF by SIP INFO");
                self.out.push_back(Output::Media {
                    leg,
                    command: MediaCommand::InjectDtmf(digit),
                });
            }
            SipInput::MediaChanged(media) if self.state == CallState::Running => {
                tracing::info!(remote = %media.remote_rtp, direction = ?media.remote_direction, "media renegotiated");
                self.out.push_back(Output::Media {
                    leg,
                    command: MediaCommand::Renegotiate(media),
                });
            }
            SipInput::Dtmf { .. }
            | SipInput::MediaChanged(_)
            | SipInput::Confirmed
            | SipInput::Answered
            | SipInput::Refused { .. } => {}
        }
        self.run(now);
    }

    pub fn handle_media(&mut self, now: Instant, leg: LegId, input: MediaInput) {
        let Some(index) = self.leg_index(leg) else {
            return;
        };
        if index != 0 {
            match input {
                MediaInput::Item(item) => self.media_item(now, index, item),
                MediaInput::PlayDone(id) => self.play_done(now, id),
                other => self.dial_media(index, other),
            }
            return self.run(now);
        }
        match input {
            MediaInput::Ready {
                origin,
                advertised,
                sample_rate,
            } => {
                if self.state != CallState::Setup {
                    return;
                }
                self.legs[index].media_ready(origin, advertised, sample_rate);
                if self.outbound.is_some() {
                    self.invite(now);
                    return;
                }
                self.state = CallState::Running;
                self.start_program(now);
            }
            MediaInput::SetupFailed { status, reason } => {
                if self.state != CallState::Setup {
                    return;
                }
                if self.outbound.is_some() {
                    tracing::error!(status, %reason, "no media for the outbound call");
                    return self.outbound_unanswered(now, status, false);
                }
                tracing::error!(status, %reason, "no media for the call; refusing it");
                self.sip(SipCommand::Reject { status });
                self.legs[index].state = LegState::Rejected { status };
                self.finish_row(now, CallStatus::Failed, None);
                self.progress(ProgressEvent::Completed(CallStatus::Failed), now, Some(0));
                self.state = CallState::Done;
                return;
            }
            MediaInput::SampleRate(rate) => self.legs[index].sample_rate = rate,
            MediaInput::Item(item) => self.media_item(now, index, item),
            MediaInput::PlayDone(id) => self.play_done(now, id),
            MediaInput::RtpTimeout => {
                if !self.legs[index].media_timed_out {
                    tracing::warn!(
                        timeout_s = self.config.rtp_timeout.as_secs(),
                        "no RTP from the caller; treating as hangup"
                    );
                }
                self.legs[index].media_timed_out = true;
            }
        }
        self.run(now);
    }

    pub fn handle_control(&mut self, now: Instant, input: ControlInput) {
        if matches!(self.state, CallState::Ending { .. } | CallState::Done) {
            return;
        }
        if self.outbound.is_some() && self.state == CallState::Setup {
            if let ControlInput::HangUp | ControlInput::Shutdown = input {
                tracing::info!("outbound call canceled before answer");
                return self.outbound_unanswered(now, 487, true);
            }
        }
        match input {
            ControlInput::StartRecording(request) => return self.start_api_recording(request, now),
            ControlInput::ChangeRecording { sid, change } => {
                return self.change_api_recording(sid, change, now)
            }
            ControlInput::HangUp => {
                tracing::info!("hang-up requested over the API");
                self.request_stop(StopCause::ApiHangup);
            }
            ControlInput::Redirect(to) => {
                tracing::info!(?to, "call redirected over the API");
                self.request_stop(StopCause::Redirect(to));
            }
            ControlInput::Shutdown => self.request_stop(StopCause::Shutdown),
            ControlInput::Operation { id, request } => self.queue_operation(id, request),
        }
        self.run(now);
    }

    pub fn handle_fetch_result(&mut self, now: Instant, id: IoId, result: FetchResult<S>) {
        if let Some(i) = self.api_recordings.iter().position(|r| r.owns(id)) {
            if self.state == CallState::Done {
                return;
            }
            let mut rec = self.api_recordings.remove(i);
            let close = self.finish_waiting;
            self.live_recording_io(&mut rec, id, result, now, close);
            self.api_recordings.insert(i, rec);
            if self.finish_waiting && !self.api_recordings_open() {
                self.finish_waiting = false;
                self.finish(now);
            }
            return self.run(now);
        }
        if self.state != CallState::Running {
            return;
        }
        let activity = std::mem::replace(&mut self.activity, Activity::Idle);
        self.activity = match activity {
            Activity::Fetch { io, url, purpose } if io == id => match result {
                FetchResult::Twiml(answer) => {
                    let fetched = self.classify(answer, &url);
                    self.apply_fetched(purpose, fetched, now)
                }
                _ => Activity::Fetch { io, url, purpose },
            },
            Activity::Prompt { mut run, then } => {
                match self.prompt_loaded(&mut run, id, result, now) {
                    Some(outcome) => self.prompt_finished(outcome, then, now),
                    None => Activity::Prompt { run, then },
                }
            }
            Activity::Gather(mut g) => {
                let timeout = std::time::Duration::from_secs(u64::from(g.step.timeout_secs.max(1)));
                if let GatherPhase::Prompting(run) = &mut g.phase {
                    if self.prompt_loaded(run, id, result, now).is_some() {
                        g.phase = GatherPhase::Collecting {
                            digits: String::new(),
                            deadline: now + timeout,
                        };
                    }
                }
                Activity::Gather(g)
            }
            Activity::Capture(c) => self.capture_io(c, id, result, now),
            Activity::Dial(d) => self.dial_io(d, id, result, now),
            other => other,
        };
        self.run(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            CallState::Ending { bye_deadline } if now >= bye_deadline => {
                tracing::info!("our BYE was not answered in time; ending anyway");
                self.finish(now);
                return;
            }
            CallState::Running => {}
            CallState::Setup => {
                let due = self.outbound.and_then(|o| o.ring_deadline);
                if due.is_some_and(|at| now >= at) {
                    tracing::info!("no answer within the ring timeout");
                    self.outbound_unanswered(now, 480, true);
                }
                return;
            }
            _ => return,
        }
        let activity = std::mem::replace(&mut self.activity, Activity::Idle);
        self.activity = match activity {
            Activity::Gather(g) => match g.phase {
                GatherPhase::Collecting { digits, deadline } if now >= deadline => {
                    self.gather_finished(Ok((digits, None)), now)
                }
                _ => Activity::Gather(g),
            },
            Activity::Capture(mut c) => {
                let leg = &mut self.legs[c.leg];
                c.pad_stall(leg, now);
                Activity::Capture(c)
            }
            Activity::Dial(d) => self.dial_timeout(d, now),
            other => other,
        };
        self.run(now);
    }

    // ---- plumbing ----

    pub(crate) fn leg_index(&self, leg: LegId) -> Option<usize> {
        self.legs.iter().position(|l| l.id == leg)
    }

    pub(crate) fn caller(&self) -> &Leg {
        &self.legs[0]
    }

    pub(crate) fn next_io(&mut self) -> IoId {
        self.next_id += 1;
        IoId(self.next_id)
    }

    pub(crate) fn next_playback(&mut self) -> PlaybackId {
        self.next_id += 1;
        PlaybackId(self.next_id)
    }

    pub(crate) fn new_recording_sid(&mut self) -> RecordingSid {
        RecordingSid::from_bits((self.sids)())
    }

    pub(crate) fn new_transcription_sid(&mut self) -> TranscriptionSid {
        TranscriptionSid::from_bits((self.sids)())
    }

    pub(crate) fn push(&mut self, output: Output<S>) {
        self.out.push_back(output);
    }

    pub(crate) fn sip(&mut self, command: SipCommand) {
        self.out.push_back(Output::Sip {
            leg: LegId::CALLER,
            command,
        });
    }

    pub(crate) fn media(&mut self, command: MediaCommand) {
        self.out.push_back(Output::Media {
            leg: LegId::CALLER,
            command,
        });
    }

    pub(crate) fn fetch(&mut self, request: FetchRequest) -> IoId {
        let id = self.next_io();
        self.out.push_back(Output::Fetch { id, request });
        id
    }

    /// Wall-clock Unix milliseconds at `now`.
    pub(crate) fn unix_ms(&self, now: Instant) -> i64 {
        let (at, ms) = self.config.wall_clock;
        ms + now.saturating_duration_since(at).as_millis() as i64
    }

    /// The caller is gone, the daemon is stopping, or the API took the call elsewhere: whatever
    /// runs must stop.
    pub(crate) fn gone(&self) -> bool {
        self.caller().hung_up() || self.stop.is_some()
    }

    /// A document fetch runs on after a hang-up (the discarded action request): only an API
    /// hang-up or a shutdown stops it.
    fn fetch_stopped(&self) -> bool {
        matches!(self.stop, Some(StopCause::ApiHangup | StopCause::Shutdown))
    }

    pub(crate) fn request_stop(&mut self, cause: StopCause) {
        match &self.stop {
            Some(current) if current.rank() > cause.rank() => {}
            _ => self.stop = Some(cause),
        }
    }

    fn status(&self) -> CallStatus {
        let caller = self.caller();
        if caller.hung_up() {
            CallStatus::Completed
        } else if caller.answered() {
            CallStatus::InProgress
        } else {
            CallStatus::Ringing
        }
    }

    pub(crate) fn standard_params(&self) -> Vec<(String, String)> {
        standard_params(&self.info, self.status())
    }

    fn progress(&mut self, event: ProgressEvent, now: Instant, duration: Option<u64>) {
        let Some(url) = self.config.app.status_callback.clone() else {
            return;
        };
        if let Some(events) = &self.config.app.status_callback_events {
            if !events.iter().any(|e| e == event.as_str()) {
                return;
            }
        }
        let params = progress_params(
            &self.info,
            event,
            self.progress_sequence,
            self.unix_ms(now),
            duration,
        );
        self.progress_sequence += 1;
        tracing::debug!(
            event = event.as_str(),
            status = event.call_status(),
            url = %url,
            "call progress"
        );
        self.out.push_back(Output::Callback {
            group: self.info.call_sid.to_string(),
            url,
            method: self.config.app.status_callback_method,
            params,
        });
    }

    /// Runs every step that can run now.
    fn run(&mut self, now: Instant) {
        // Each step either changes state or reports no progress; bounded all the same.
        for _ in 0..10_000 {
            if !self.step(now) {
                return;
            }
        }
        tracing::error!("call core did not settle after 10000 steps");
    }

    fn step(&mut self, now: Instant) -> bool {
        if self.finish_waiting {
            return false;
        }
        match self.state {
            CallState::Setup | CallState::Done => false,
            CallState::Ending { .. } => {
                if self.caller().remote_ended() {
                    self.finish(now);
                    true
                } else {
                    false
                }
            }
            CallState::Running => {
                let activity = std::mem::replace(&mut self.activity, Activity::Idle);
                let (next, progressed) = self.step_activity(activity, now);
                if self.state == CallState::Running {
                    self.activity = next;
                }
                progressed
            }
        }
    }

    fn step_activity(&mut self, activity: Activity<S>, now: Instant) -> (Activity<S>, bool) {
        match activity {
            Activity::Idle => self.program_step(now),
            Activity::Fetch { io, url, purpose } => {
                if self.fetch_stopped() {
                    self.push(Output::CancelFetch(io));
                    let fetched = Fetched::Failed {
                        code: RETRIEVAL_FAILURE,
                        url,
                    };
                    (self.apply_fetched(purpose, fetched, now), true)
                } else {
                    (Activity::Fetch { io, url, purpose }, false)
                }
            }
            Activity::Prompt { mut run, then } => {
                if self.gone() {
                    self.interrupt_prompt(&mut run);
                    let outcome = crate::prompt::PromptOutcome::Interrupted;
                    return (self.prompt_finished(outcome, then, now), true);
                }
                match self.prompt_advance(&mut run, now) {
                    Some(outcome) => (self.prompt_finished(outcome, then, now), true),
                    None => (Activity::Prompt { run, then }, false),
                }
            }
            Activity::Gather(g) => self.gather_step(g, now),
            Activity::Capture(c) => self.capture_step(c, now),
            Activity::Dial(d) => self.dial_step(d, now),
        }
    }

    // ---- program ----

    fn flow_options(&self) -> FlowOptions {
        FlowOptions {
            fallback_url: self.config.app.fallback_url.clone(),
            fallback_method: self.config.app.fallback_method,
        }
    }

    fn start_program(&mut self, now: Instant) {
        if self.config.app.bot {
            self.program = Program::Bot;
            self.bot_started(now);
            return;
        }
        let Some(url) = self.config.app.voice_url.clone() else {
            // Validated when the config was loaded.
            let twiml = self.config.app.twiml.clone();
            let options = self.flow_options();
            let flow = match self.parse(&twiml, "config:app.twiml") {
                Ok(doc) => CallFlow::with_options(doc, None, options),
                Err(e) => CallFlow::initial_failure(e.code(), "config:app.twiml", options),
            };
            self.program = Program::Twiml(Box::new(flow));
            return;
        };
        let params = self.standard_params();
        let method = self.config.app.voice_method;
        self.activity = self.start_fetch(url, method, params, FetchPurpose::Initial);
    }

    fn start_fetch(
        &mut self,
        url: String,
        method: control::HttpMethod,
        params: Vec<(String, String)>,
        purpose: FetchPurpose,
    ) -> Activity<S> {
        let io = self.fetch(FetchRequest::Twiml {
            url: url.clone(),
            method,
            params,
        });
        Activity::Fetch { io, url, purpose }
    }

    /// The top of the program's loop: take the next step, or the next operation.
    fn program_step(&mut self, now: Instant) -> (Activity<S>, bool) {
        if let Some(StopCause::Redirect(_)) = &self.stop {
            if matches!(self.program, Program::Bot) {
                self.bot_ended(now);
                return (Activity::Idle, true);
            }
            let Some(StopCause::Redirect(to)) = self.stop.take() else {
                return (Activity::Idle, false);
            };
            if self.caller().hung_up() {
                self.end_call(now);
                return (Activity::Idle, true);
            }
            return (self.start_redirect(to, now), true);
        }
        match &mut self.program {
            Program::Bot => self.bot_step(now),
            Program::Loading => {
                // No document and nothing fetching one: nothing left to run.
                self.end_call(now);
                (Activity::Idle, true)
            }
            Program::Twiml(flow) => {
                let step = flow.next_step();
                tracing::debug!(?step, "step");
                let hung_up = self.caller().hung_up();
                if self.stop.is_some() && !hung_up {
                    self.end_call(now);
                    return (Activity::Idle, true);
                }
                // After a hangup only the (discarded) action request of a `<Record>` still runs.
                if hung_up
                    && !matches!(
                        step,
                        Step::Fetch {
                            discard_answer: true,
                            ..
                        }
                    )
                {
                    self.end_call(now);
                    return (Activity::Idle, true);
                }
                if step.needs_media() {
                    self.answer(now);
                }
                (self.start_step(step, now), true)
            }
        }
    }

    fn start_step(&mut self, step: Step, now: Instant) -> Activity<S> {
        if let Some(item) = PromptItem::of_step(&step) {
            return Activity::Prompt {
                run: Box::new(PromptRun::new(vec![item], LoadErrorPolicy::Skip)),
                then: AfterPrompt::NextStep,
            };
        }
        match step {
            Step::Play { .. } | Step::Pause { .. } | Step::Say { .. } => Activity::Idle,
            Step::Record(verb) => {
                self.start_capture(verb, CaptureOptions::default(), AfterCapture::Twiml, now)
            }
            Step::Gather(step) => {
                let items = step.prompts.iter().map(PromptItem::from_step).collect();
                Activity::Gather(Box::new(Gather {
                    step,
                    keys: VecDeque::new(),
                    phase: GatherPhase::Prompting(PromptRun::new(items, LoadErrorPolicy::Skip)),
                }))
            }
            Step::Fetch {
                url,
                method,
                extra,
                discard_answer,
            } => {
                let mut params = self.standard_params();
                params.extend(extra);
                self.start_fetch(url, method, params, FetchPurpose::Step { discard_answer })
            }
            Step::Dial(verb) => self.start_dial(verb, now),
            Step::Hangup | Step::End => {
                self.end_call(now);
                Activity::Idle
            }
            Step::Reject { status } => {
                // Before answer the call is never answered; after, a plain hangup.
                self.reject(status);
                self.end_call(now);
                Activity::Idle
            }
            Step::AppError { code } => {
                tracing::error!(code, "application error: no fallback; ending the call");
                if !self.caller().answered() {
                    self.reject(500);
                    self.end_call(now);
                    return Activity::Idle;
                }
                Activity::Prompt {
                    run: Box::new(PromptRun::new(
                        vec![PromptItem::Say {
                            text: APP_ERROR_TEXT.into(),
                            voice: "man".into(),
                            language: "en-US".into(),
                            loops: 1,
                        }],
                        LoadErrorPolicy::ErrorTones,
                    )),
                    then: AfterPrompt::EndCall,
                }
            }
        }
    }

    /// A step ended early (hang-up, shutdown, API): a live update runs next, anything else
    /// ends the call.
    pub(crate) fn twiml_interrupted(&mut self, now: Instant) -> Activity<S> {
        if !matches!(self.stop, Some(StopCause::Redirect(_))) {
            self.end_call(now);
        }
        Activity::Idle
    }

    fn start_redirect(&mut self, to: Redirect, now: Instant) -> Activity<S> {
        let _ = now;
        match to {
            Redirect::Twiml(twiml) => {
                let options = self.flow_options();
                let flow = match self.parse(&twiml, "api:Twiml") {
                    Ok(doc) => CallFlow::with_options(doc, None, options),
                    Err(e) => CallFlow::initial_failure(e.code(), "api:Twiml", options),
                };
                self.program = Program::Twiml(Box::new(flow));
                Activity::Idle
            }
            Redirect::Url(url, method) => {
                self.program = Program::Loading;
                let params = self.standard_params();
                self.start_fetch(url, method, params, FetchPurpose::LiveRedirect)
            }
        }
    }

    fn parse(&self, body: &str, url: &str) -> Result<Document, TwimlError> {
        match control::twiml::parse_document(body, &self.config.parse_limits) {
            Ok(doc) => {
                for w in &doc.warnings {
                    tracing::warn!(url, verb = w.verb, attribute = w.attribute, value = %w.value, reason = %w.reason, "TwiML attribute replaced by its default");
                }
                Ok(doc)
            }
            Err(e) => {
                let excerpt: String = body.chars().take(160).collect();
                tracing::error!(code = e.code(), url, error = %e, excerpt = %excerpt, "TwiML rejected");
                Err(e)
            }
        }
    }

    /// Classifies a webhook's answer (SPEC §2.1, §2.2).
    pub(crate) fn classify(&self, answer: Result<HttpAnswer, String>, url: &str) -> Fetched {
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                tracing::error!(code = RETRIEVAL_FAILURE, url, error = %e, "TwiML request failed");
                return Fetched::Failed {
                    code: RETRIEVAL_FAILURE,
                    url: url.to_string(),
                };
            }
        };
        match classify_content_type(&answer.content_type) {
            ContentKind::Twiml => {
                let parsed = if answer.oversized {
                    let e = TwimlError::TooLarge {
                        size: answer.body.len(),
                        limit: self.config.parse_limits.max_bytes,
                    };
                    tracing::error!(code = e.code(), url = %answer.url, error = %e, "TwiML rejected");
                    Err(e)
                } else {
                    self.parse(&answer.body, &answer.url)
                };
                match parsed {
                    Ok(doc) => Fetched::Twiml(doc, answer.url),
                    Err(e) => Fetched::Failed {
                        code: e.code(),
                        url: answer.url,
                    },
                }
            }
            ContentKind::Text => Fetched::Text(answer.body, answer.url),
            ContentKind::Audio => Fetched::Audio(answer.url),
            ContentKind::Unsupported => {
                let excerpt: String = answer.body.chars().take(160).collect();
                tracing::error!(code = BAD_CONTENT_TYPE, url = %answer.url, content_type = %answer.content_type, excerpt = %excerpt, "answer has an unsupported content type");
                Fetched::Failed {
                    code: BAD_CONTENT_TYPE,
                    url: answer.url,
                }
            }
        }
    }

    fn apply_fetched(
        &mut self,
        purpose: FetchPurpose,
        fetched: Fetched,
        now: Instant,
    ) -> Activity<S> {
        let _ = now;
        match purpose {
            FetchPurpose::Initial | FetchPurpose::LiveRedirect => {
                let flow = fetched.into_flow(self.flow_options());
                self.program = Program::Twiml(Box::new(flow));
            }
            FetchPurpose::Step { discard_answer } => {
                if let (false, Program::Twiml(flow)) = (discard_answer, &mut self.program) {
                    fetched.feed(flow);
                }
            }
        }
        Activity::Idle
    }

    // ---- answer and end ----

    pub(crate) fn answer(&mut self, now: Instant) {
        if self.caller().answered() || self.gone() {
            return;
        }
        let Some(local_rtp) = self.caller().advertised else {
            return;
        };
        self.sip(SipCommand::Answer { local_rtp });
        self.leg_answered(now);
    }

    /// The leg is answered (by us, or by the party we called): the row and progress say so.
    fn leg_answered(&mut self, now: Instant) {
        self.legs[0].state = LegState::Answered { at: now };
        let ms = self.unix_ms(now);
        self.row.status = CallStatus::InProgress;
        self.row.start_time_ms = Some(ms);
        self.row.date_updated_ms = ms;
        self.push(Output::Persist(Persist::UpdateCall(self.row.clone())));
        self.progress(ProgressEvent::Answered, now, None);
        if !self.config.app.bot {
            // A bot's call is established when the bot takes it (`bot_started`).
            self.push(Output::Live(LiveUpdate::Established));
        }
    }

    pub(crate) fn reject(&mut self, status: u16) {
        let caller = self.caller();
        if caller.answered()
            || caller.remote_ended()
            || matches!(caller.state, LegState::Rejected { .. })
        {
            return;
        }
        self.sip(SipCommand::Reject { status });
        self.legs[0].state = LegState::Rejected { status };
    }

    /// Ends the dialog from our side unless the caller already did, then reports.
    pub(crate) fn end_call(&mut self, now: Instant) {
        self.activity = Activity::Idle;
        let caller = self.caller();
        if caller.remote_ended() || matches!(caller.state, LegState::Rejected { .. }) {
            return self.finish(now);
        }
        if !caller.answered() {
            // Nothing was ever answered: refuse rather than answer only to hang up.
            let status = if self.stop == Some(StopCause::Shutdown) {
                503
            } else {
                500
            };
            self.reject(status);
            return self.finish(now);
        }
        self.release_dialled();
        self.close_api_recordings(now);
        // From here on the API treats the call as ended: an update now is refused, not
        // accepted and dropped.
        self.push(Output::Live(LiveUpdate::Terminated));
        self.sip(SipCommand::Hangup);
        // Give the BYE a moment to be answered so the dialog ends cleanly; bounded.
        self.state = CallState::Ending {
            bye_deadline: now + BYE_GRACE,
        };
    }

    /// The call is over: the API, the bot, the row and the final progress event learn it.
    fn finish(&mut self, now: Instant) {
        if self.api_recordings_open() {
            // Their files are closed first; the call finishes when they are.
            self.close_api_recordings(now);
            if self.api_recordings_open() {
                self.finish_waiting = true;
                return;
            }
        }
        self.activity = Activity::Idle;
        self.release_dialled();
        if !matches!(self.state, CallState::Ending { .. }) {
            self.push(Output::Live(LiveUpdate::Terminated));
        }
        if self.config.app.bot && self.bot.started {
            // Also after a bot call was redirected to TwiML: the bot learns that it ended.
            self.bot_call_state(GraphCallState::Terminated);
        }
        let caller = self.caller();
        let rejected_with = match caller.state {
            LegState::Rejected { status } => Some(status),
            _ => None,
        };
        let status = final_status(rejected_with, caller.answered(), caller.remote_ended());
        let duration = caller
            .answered_at()
            .map(|at| now.saturating_duration_since(at).as_secs());
        self.finish_row(now, status, duration);
        self.progress(ProgressEvent::Completed(status), now, duration);
        self.state = CallState::Done;
    }

    fn finish_row(&mut self, now: Instant, status: CallStatus, duration: Option<u64>) {
        let ms = self.unix_ms(now);
        self.row.status = status;
        self.row.date_updated_ms = ms;
        self.row.end_time_ms = Some(ms);
        self.row.duration_secs = Some(duration.unwrap_or(0) as u32);
        self.push(Output::Persist(Persist::UpdateCall(self.row.clone())));
    }

    // ---- media ----

    fn media_item(&mut self, now: Instant, leg: usize, item: MediaItem) {
        if self.state != CallState::Running {
            if let MediaItem::Audio(frame) = item {
                self.legs[leg].idle_audio(frame);
            }
            return;
        }
        if let MediaItem::Dtmf(event) = &item {
            tracing::debug!(digit = %event.digit, position = event.position, source = ?event.source, "DTMF");
            self.bot_tone(event.digit);
        }
        if let (MediaItem::Audio(frame), false) = (&item, self.api_recordings.is_empty()) {
            self.api_recording_audio(leg, frame);
        }
        let activity = std::mem::replace(&mut self.activity, Activity::Idle);
        self.activity = match activity {
            Activity::Capture(c) if c.tracks.takes(self.legs[leg].id) => {
                self.capture_item(c, item, now)
            }
            Activity::Dial(d) => self.dial_item(d, leg, item, now),
            mut other => {
                match item {
                    MediaItem::Audio(frame) => self.legs[leg].idle_audio(frame),
                    MediaItem::Dtmf(event) => {
                        // Keys count only while a `<Gather>` collects them (SPEC §3.5).
                        if let Activity::Gather(g) = &mut other {
                            g.keys.push_back(event.digit);
                        }
                    }
                }
                other
            }
        };
    }

    fn play_done(&mut self, now: Instant, id: PlaybackId) {
        if self.state != CallState::Running {
            return;
        }
        let activity = std::mem::replace(&mut self.activity, Activity::Idle);
        self.activity = match activity {
            Activity::Prompt { mut run, then } => {
                run.play_done(id);
                Activity::Prompt { run, then }
            }
            Activity::Gather(mut g) => {
                if let GatherPhase::Prompting(run) = &mut g.phase {
                    run.play_done(id);
                }
                Activity::Gather(g)
            }
            Activity::Capture(c) => self.capture_play_done(c, id, now),
            Activity::Dial(mut d) => {
                d.play_done(id);
                Activity::Dial(d)
            }
            other => other,
        };
    }

    // ---- Gather ----

    fn gather_step(&mut self, mut g: Box<Gather>, now: Instant) -> (Activity<S>, bool) {
        let timeout = std::time::Duration::from_secs(u64::from(g.step.timeout_secs.max(1)));
        match &mut g.phase {
            GatherPhase::Prompting(run) => {
                if self.gone() {
                    self.interrupt_prompt(run);
                    return (self.gather_finished(Err(()), now), true);
                }
                if !g.keys.is_empty() {
                    // The first key stops the prompts.
                    self.interrupt_prompt(run);
                } else if self.prompt_advance(run, now).is_none() {
                    return (Activity::Gather(g), false);
                }
                g.phase = GatherPhase::Collecting {
                    digits: String::new(),
                    deadline: now + timeout,
                };
                (Activity::Gather(g), true)
            }
            GatherPhase::Collecting { digits, deadline } => {
                while let Some(key) = g.keys.pop_front() {
                    if Some(key) == g.step.finish_on_key {
                        if digits.is_empty() {
                            continue; // submits only after at least one digit (SPEC §4)
                        }
                        let digits = std::mem::take(digits);
                        return (self.gather_finished(Ok((digits, Some(key))), now), true);
                    }
                    digits.push(key);
                    *deadline = now + timeout;
                    if g.step
                        .num_digits
                        .is_some_and(|n| digits.chars().count() >= n as usize)
                    {
                        let digits = std::mem::take(digits);
                        return (self.gather_finished(Ok((digits, None)), now), true);
                    }
                }
                if self.gone() {
                    return (self.gather_finished(Err(()), now), true);
                }
                (Activity::Gather(g), false)
            }
        }
    }

    fn gather_finished(
        &mut self,
        result: Result<(String, Option<char>), ()>,
        now: Instant,
    ) -> Activity<S> {
        match result {
            Ok((digits, key)) => {
                if let Program::Twiml(flow) = &mut self.program {
                    flow.gather_finished(digits, key);
                }
                Activity::Idle
            }
            Err(()) => self.twiml_interrupted(now),
        }
    }
}
