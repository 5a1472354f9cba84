//! `<Dial>`: every noun rings at once on a leg of its own; the first to answer is bridged to
//! the caller and the others are canceled. The bridge ends when either side hangs up, on
//! `hangupOnStar`, at `timeLimit`, or when the call is stopped; then the recording (if any) is
//! closed and the flow learns `DialCallStatus`.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use control::{CallInfo, CallStatus, HttpMethod};
use control::{DialResult, DialVerb};
use media_engine::MediaItem;
use record_engine::wav::WavStorage;
use store::{CallRecord, CallSid, Direction, RecordingSource, RecordingStatus};

use crate::call::{Activity, Call};
use crate::conversation::{Layout, LiveRecording, RecordingPlan};
use crate::leg::{Leg, LegId, LegState, MediaKind};
use crate::params::{new_call_row, progress_params, ProgressEvent};
use crate::{
    DialRequest, FetchResult, IoId, MediaCommand, MediaInput, Output, Persist, PlaybackId,
    SipCommand, SipInput,
};

/// One noun's leg: a child call of its own (`outbound-dial`, `ParentCallSid`).
struct Dialled {
    leg: LegId,
    call_sid: CallSid,
    outcome: Outcome,
    info: CallInfo,
    row: CallRecord,
    /// The noun's `statusCallback`, its method and events.
    callback: Option<(String, HttpMethod, Vec<String>)>,
    sequence: u32,
    answered_at: Option<Instant>,
    finished: bool,
    /// `<Number sendDigits>`: keys sent to the party once it answers.
    send_digits: Option<String>,
    /// The noun's `url` and `method`: TwiML the party hears before the bridge.
    whisper: Option<(String, HttpMethod)>,
}

/// A whisper: a small TwiML program run on the answered party (`<Say>`, `<Play>`, `<Pause>`,
/// `<Gather>`, `<Redirect>`, `<Hangup>`/`<Reject>`); when it ends, the party is bridged.
struct Whisper {
    leg: LegId,
    /// `None` until the first document arrives.
    flow: Option<Box<control::CallFlow>>,
    activity: WhisperActivity,
    /// Keys the party pressed, for a `<Gather>`.
    keys: std::collections::VecDeque<char>,
}

enum WhisperActivity {
    Idle,
    Fetch {
        io: IoId,
        url: String,
        initial: bool,
    },
    Prompt(Box<crate::prompt::PromptRun>),
    Gather {
        step: control::GatherStep,
        prompts: Option<Box<crate::prompt::PromptRun>>,
        digits: String,
        deadline: Option<Instant>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ringing,
    Answered,
    /// Its final answer (486 busy, 480/408 no answer, others failed).
    Refused(u16),
    /// We canceled it (another answered, or the dial ended).
    Canceled,
}

enum Phase {
    Ringing {
        deadline: Instant,
    },
    /// The party answered and hears its noun's `url` TwiML before the bridge.
    Whisper(Box<Whisper>),
    Bridged {
        leg: LegId,
        at: Instant,
        limit: Instant,
    },
    /// Over: the recording is being closed; then the flow hears `result`.
    Closing {
        result: DialResult,
    },
}

pub(crate) struct Dial<S: WavStorage> {
    verb: DialVerb,
    dialled: Vec<Dialled>,
    phase: Phase,
    /// The caller hears ringback (it stops at the bridge or the end).
    ringback: bool,
    recording: Option<LiveRecording<S>>,
}

impl<S: WavStorage> Dial<S> {
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Ringing { deadline } => Some(*deadline),
            Phase::Bridged { limit, .. } => Some(*limit),
            Phase::Whisper(w) => match &w.activity {
                WhisperActivity::Gather { deadline, .. } => *deadline,
                _ => None,
            },
            Phase::Closing { .. } => None,
        }
    }

    /// A playback ended: the whisper's prompt moves on.
    pub(crate) fn play_done(&mut self, id: PlaybackId) {
        if let Phase::Whisper(w) = &mut self.phase {
            match &mut w.activity {
                WhisperActivity::Prompt(run) => run.play_done(id),
                WhisperActivity::Gather {
                    prompts: Some(run), ..
                } => run.play_done(id),
                _ => {}
            }
        }
    }

    /// Whether the conversation is being recorded: `Some(paused)` while it is.
    pub(crate) fn recording_paused(&self) -> Option<bool> {
        self.recording
            .as_ref()
            .filter(|r| !r.is_closing_or_closed())
            .map(|r| r.audio.paused())
    }

    /// The conversation's recording, lent to the REST API's pause/resume/stop.
    pub(crate) fn take_recording(&mut self) -> Option<LiveRecording<S>> {
        self.recording.take()
    }

    pub(crate) fn put_recording(&mut self, rec: LiveRecording<S>) {
        self.recording = Some(rec);
    }

    pub(crate) fn bridged_leg(&self) -> Option<LegId> {
        match self.phase {
            Phase::Bridged { leg, .. } => Some(leg),
            _ => None,
        }
    }
}

impl<S: WavStorage> Call<S> {
    pub(crate) fn start_dial(&mut self, verb: DialVerb, now: Instant) -> Activity<S> {
        let from = verb
            .caller_id
            .clone()
            .unwrap_or_else(|| self.info.from.clone());
        let timeout = Duration::from_secs(u64::from(verb.timeout_secs));
        let mut dialled = Vec::with_capacity(verb.nouns.len());
        for noun in &verb.nouns {
            let leg = LegId(self.legs.iter().map(|l| l.id.0).max().unwrap_or(0) + 1);
            self.legs.push(Leg::new(
                leg,
                MediaKind::G711Rtp,
                self.config.record.pre_roll_ms,
            ));
            let call_sid = CallSid::from_bits((self.sids)());
            tracing::info!(leg = leg.0, child = %call_sid, target = ?noun.target, "dialling");
            let info = CallInfo {
                call_sid: call_sid.clone(),
                account_sid: self.info.account_sid.clone(),
                from: from.clone(),
                to: target_text(&noun.target),
                forwarded_from: None,
                caller_name: None,
                client: None,
                direction: Direction::OutboundDial,
            };
            let mut row = new_call_row(&info, self.unix_ms(now));
            row.parent_call_sid = Some(self.info.call_sid.clone());
            self.push(Output::Persist(Persist::InsertCall {
                row: row.clone(),
                request_id: None,
            }));
            let mut child = Dialled {
                leg,
                call_sid: call_sid.clone(),
                outcome: Outcome::Ringing,
                info,
                row,
                callback: noun.status_callback.clone().map(|url| {
                    (
                        url,
                        noun.status_callback_method,
                        noun.status_callback_events.clone(),
                    )
                }),
                sequence: 0,
                answered_at: None,
                finished: false,
                whisper: noun.url.clone().map(|u| (u, noun.method)),
                send_digits: match &noun.target {
                    control::DialTarget::Number { send_digits, .. } => send_digits.clone(),
                    _ => None,
                },
            };
            self.child_progress(&mut child, ProgressEvent::Initiated, now, None);
            self.child_progress(&mut child, ProgressEvent::Ringing, now, None);
            self.push(Output::Sip {
                leg,
                command: SipCommand::Dial(DialRequest {
                    target: noun.target.clone(),
                    call_sid: call_sid.clone(),
                    from: from.clone(),
                    timeout,
                }),
            });
            dialled.push(child);
        }
        let mut dial = Dial {
            verb,
            dialled,
            phase: Phase::Ringing {
                deadline: now + timeout,
            },
            ringback: false,
            recording: None,
        };
        if self.caller().answered() {
            let tone = ringback(&dial.verb.ring_tone);
            self.play(tone, 0);
            dial.ringback = true;
        }
        if dial.verb.record.is_some_and(|r| r.from_ringing) {
            self.start_conversation_recording(&mut dial, now);
        }
        Activity::Dial(Box::new(dial))
    }

    /// Signalling of a dialled leg.
    pub(crate) fn dial_sip(&mut self, now: Instant, index: usize, input: SipInput) {
        let id = self.legs[index].id;
        match input {
            SipInput::Answered => {
                if matches!(self.legs[index].state, LegState::Ringing) {
                    self.legs[index].state = LegState::Answered { at: now };
                }
            }
            SipInput::Refused { status } => {
                if matches!(self.legs[index].state, LegState::Ringing) {
                    self.legs[index].state = LegState::Rejected { status };
                }
            }
            SipInput::Ended(reason) => {
                tracing::info!(leg = id.0, %reason, "dialled party gone");
                let leg = &mut self.legs[index];
                leg.state = match leg.state {
                    LegState::Ringing => LegState::Rejected { status: 480 },
                    LegState::Rejected { status } => LegState::Rejected { status },
                    _ => LegState::Gone {
                        answered_at: leg.answered_at(),
                    },
                };
            }
            SipInput::Dtmf { digit, .. } => {
                // The dialled party's INFO key goes to the caller.
                if let Activity::Dial(d) = &self.activity {
                    if d.bridged_leg() == Some(id) {
                        let playback = self.next_playback();
                        self.push(Output::Media {
                            leg: LegId::CALLER,
                            command: MediaCommand::PlayDigits {
                                id: playback,
                                digits: digit.to_string(),
                            },
                        });
                    }
                }
            }
            SipInput::MediaChanged(media) => {
                self.push(Output::Media {
                    leg: id,
                    command: MediaCommand::Renegotiate(media),
                });
            }
            SipInput::Confirmed => {}
        }
    }

    /// Media of a dialled leg (`Item`s go through [`Call::dial_item`]).
    pub(crate) fn dial_media(&mut self, index: usize, input: MediaInput) {
        let leg = &mut self.legs[index];
        match input {
            MediaInput::Ready {
                origin,
                advertised,
                sample_rate,
            } => leg.media_ready(origin, advertised, sample_rate),
            MediaInput::SampleRate(rate) => leg.sample_rate = rate,
            MediaInput::RtpTimeout => {
                if !leg.media_timed_out {
                    tracing::warn!(leg = leg.id.0, "no RTP from the dialled party");
                }
                leg.media_timed_out = true;
            }
            MediaInput::SetupFailed { status, reason } => {
                tracing::warn!(leg = leg.id.0, status, %reason, "no media for the dialled leg");
                if matches!(leg.state, LegState::Ringing) {
                    leg.state = LegState::Rejected { status };
                }
            }
            MediaInput::Item(_) | MediaInput::PlayDone(_) => {}
        }
    }

    /// Audio or a key of any leg while the dial runs.
    pub(crate) fn dial_item(
        &mut self,
        mut d: Box<Dial<S>>,
        index: usize,
        item: MediaItem,
        now: Instant,
    ) -> Activity<S> {
        let id = self.legs[index].id;
        match item {
            MediaItem::Audio(frame) => {
                let origin = self.legs[index].origin;
                self.legs[index].idle_audio(frame);
                let slot = if id == LegId::CALLER {
                    Some(0)
                } else if d.bridged_leg() == Some(id) {
                    Some(1)
                } else {
                    None
                };
                if let (Some(rec), Some(slot), Some(origin)) = (d.recording.as_mut(), slot, origin)
                {
                    rec.audio.push(slot, origin, &frame);
                }
            }
            MediaItem::Dtmf(event) => {
                if let Phase::Whisper(w) = &mut d.phase {
                    if w.leg == id {
                        w.keys.push_back(event.digit);
                    }
                    return Activity::Dial(d);
                }
                let Some(bridged) = d.bridged_leg() else {
                    return Activity::Dial(d);
                };
                if id == LegId::CALLER && d.verb.hangup_on_star && event.digit == '*' {
                    tracing::info!("hangupOnStar: the caller leaves the bridge");
                    self.leg_sip(bridged, SipCommand::Hangup);
                    let result = self.dial_result(&d, "completed", false, now);
                    self.close_dial(&mut d, result, now);
                    return Activity::Dial(d);
                }
                let to = if id == LegId::CALLER {
                    bridged
                } else if id == bridged {
                    LegId::CALLER
                } else {
                    return Activity::Dial(d);
                };
                let playback = self.next_playback();
                self.push(Output::Media {
                    leg: to,
                    command: MediaCommand::PlayDigits {
                        id: playback,
                        digits: event.digit.to_string(),
                    },
                });
            }
        }
        Activity::Dial(d)
    }

    pub(crate) fn dial_step(&mut self, mut d: Box<Dial<S>>, now: Instant) -> (Activity<S>, bool) {
        match d.phase {
            Phase::Ringing { .. } => {
                if self.gone() {
                    self.cancel_ringing(&mut d, None, CallStatus::Canceled, now);
                    let hung_up = self.caller().hung_up();
                    let result = self.dial_result(&d, "canceled", hung_up, now);
                    self.close_dial(&mut d, result, now);
                    return (Activity::Dial(d), true);
                }
                // Legs that answered or failed since the last step.
                let mut winner = None;
                for i in 0..d.dialled.len() {
                    if d.dialled[i].outcome != Outcome::Ringing {
                        continue;
                    }
                    let Some(leg) = self.leg_index(d.dialled[i].leg) else {
                        continue;
                    };
                    match self.legs[leg].state {
                        LegState::Answered { .. } => {
                            if winner.is_none() {
                                d.dialled[i].outcome = Outcome::Answered;
                                winner = Some(d.dialled[i].leg);
                                self.child_answered(&mut d.dialled[i], now);
                            } else {
                                // Answered in the same instant as the winner: too late.
                                d.dialled[i].outcome = Outcome::Canceled;
                                self.leg_sip(d.dialled[i].leg, SipCommand::Hangup);
                                self.child_finished(&mut d.dialled[i], CallStatus::Canceled, now);
                            }
                        }
                        LegState::Rejected { status } => {
                            d.dialled[i].outcome = Outcome::Refused(status);
                            let status = refused_status(status);
                            self.child_finished(&mut d.dialled[i], status, now);
                        }
                        LegState::Gone { .. } => {
                            d.dialled[i].outcome = Outcome::Refused(480);
                            self.child_finished(&mut d.dialled[i], CallStatus::NoAnswer, now);
                        }
                        LegState::Ringing => {}
                    }
                }
                if let Some(leg) = winner {
                    self.cancel_ringing(&mut d, Some(leg), CallStatus::Canceled, now);
                    let whisper = d
                        .dialled
                        .iter()
                        .find(|x| x.leg == leg)
                        .and_then(|x| x.whisper.clone());
                    match whisper {
                        Some((url, method)) => self.start_whisper(&mut d, leg, url, method),
                        None => self.bridge(&mut d, leg, now),
                    }
                    return (Activity::Dial(d), true);
                }
                if d.dialled.iter().all(|x| x.outcome != Outcome::Ringing) {
                    let status = unanswered_status(&d);
                    tracing::info!(status, "nobody answered the dial");
                    let result = self.dial_result(&d, status, false, now);
                    self.close_dial(&mut d, result, now);
                    return (Activity::Dial(d), true);
                }
                (Activity::Dial(d), false)
            }
            Phase::Whisper(_) => {
                let progressed = self.whisper_step(&mut d, now);
                (Activity::Dial(d), progressed)
            }
            Phase::Bridged { leg, at, .. } => {
                let callee_gone = self.leg_index(leg).is_none_or(|i| self.legs[i].hung_up());
                let caller_gone = self.caller().hung_up();
                if !(callee_gone || caller_gone || self.stop.is_some()) {
                    return (Activity::Dial(d), false);
                }
                if !callee_gone {
                    self.leg_sip(leg, SipCommand::Hangup);
                }
                tracing::info!(
                    caller_gone,
                    callee_gone,
                    secs = now.saturating_duration_since(at).as_secs(),
                    "bridge ended"
                );
                let result = self.dial_result(&d, "completed", caller_gone, now);
                self.close_dial(&mut d, result, now);
                (Activity::Dial(d), true)
            }
            Phase::Closing { .. } => {
                let done = d.recording.as_ref().is_none_or(|r| r.closed.is_some());
                if !done {
                    return (Activity::Dial(d), false);
                }
                let Phase::Closing { mut result } =
                    std::mem::replace(&mut d.phase, Phase::Closing { result: empty() })
                else {
                    return (Activity::Dial(d), false);
                };
                if let Some(rec) = &d.recording {
                    let secs = rec.row.duration_secs.unwrap_or(0);
                    if rec.row.status == RecordingStatus::Completed {
                        result.recording = Some((rec.sid.clone(), rec.url.clone(), secs));
                    }
                }
                if self.stop.is_some() && !self.caller().hung_up() {
                    // Stopped from our side (API, shutdown, live update): no action request.
                    return (self.twiml_interrupted(now), true);
                }
                if let crate::Program::Twiml(flow) = self.program_mut() {
                    flow.dial_finished(result);
                }
                (Activity::Idle, true)
            }
        }
    }

    /// The ring timeout or the time limit.
    pub(crate) fn dial_timeout(&mut self, mut d: Box<Dial<S>>, now: Instant) -> Activity<S> {
        if let Phase::Whisper(w) = &mut d.phase {
            if let WhisperActivity::Gather {
                digits,
                deadline: Some(at),
                ..
            } = &mut w.activity
            {
                if now >= *at {
                    let digits = std::mem::take(digits);
                    if let Some(flow) = w.flow.as_mut() {
                        flow.gather_finished(digits, None);
                    }
                    w.activity = WhisperActivity::Idle;
                }
            }
            return Activity::Dial(d);
        }
        match d.phase {
            Phase::Ringing { deadline } if now >= deadline => {
                tracing::info!("no answer within the dial timeout");
                self.cancel_ringing(&mut d, None, CallStatus::NoAnswer, now);
                for x in &mut d.dialled {
                    if x.outcome == Outcome::Canceled {
                        x.outcome = Outcome::Refused(408);
                    }
                }
                let result = self.dial_result(&d, "no-answer", false, now);
                self.close_dial(&mut d, result, now);
                Activity::Dial(d)
            }
            Phase::Bridged { leg, limit, .. } if now >= limit => {
                tracing::info!("the dial's timeLimit is reached");
                self.leg_sip(leg, SipCommand::Hangup);
                let result = self.dial_result(&d, "completed", false, now);
                self.close_dial(&mut d, result, now);
                Activity::Dial(d)
            }
            _ => Activity::Dial(d),
        }
    }

    pub(crate) fn dial_io(
        &mut self,
        mut d: Box<Dial<S>>,
        id: IoId,
        result: FetchResult<S>,
        now: Instant,
    ) -> Activity<S> {
        let closing = matches!(d.phase, Phase::Closing { .. });
        if let Some(rec) = d.recording.as_mut().filter(|r| r.owns(id)) {
            self.live_recording_io(rec, id, result, now, closing);
            return Activity::Dial(d);
        }
        if let Phase::Whisper(w) = &mut d.phase {
            self.whisper_io(w, id, result, now);
        }
        Activity::Dial(d)
    }

    // ---- inside ----

    fn bridge(&mut self, d: &mut Dial<S>, leg: LegId, now: Instant) {
        if std::mem::take(&mut d.ringback) {
            self.push(Output::Media {
                leg: LegId::CALLER,
                command: MediaCommand::Stop,
            });
        }
        // answerOnBridge: the caller is answered now, with the dialled party.
        self.answer(now);
        tracing::info!(leg = leg.0, "bridged");
        self.bridged = Some(leg);
        self.push(Output::Media {
            leg: LegId::CALLER,
            command: MediaCommand::Bridge { peer: leg },
        });
        self.push(Output::Media {
            leg,
            command: MediaCommand::Bridge {
                peer: LegId::CALLER,
            },
        });
        if let Some(digits) = d
            .dialled
            .iter()
            .find(|x| x.leg == leg)
            .and_then(|x| x.send_digits.clone())
        {
            let id = self.next_playback();
            self.push(Output::Media {
                leg,
                command: MediaCommand::PlayDigits { id, digits },
            });
        }
        d.phase = Phase::Bridged {
            leg,
            at: now,
            limit: now + Duration::from_secs(u64::from(d.verb.time_limit_secs)),
        };
        if d.verb.record.is_some() && d.recording.is_none() {
            self.start_conversation_recording(d, now);
        }
    }

    /// Stops every noun still ringing but `except`; their child calls end as `status`.
    fn cancel_ringing(
        &mut self,
        d: &mut Dial<S>,
        except: Option<LegId>,
        status: CallStatus,
        now: Instant,
    ) {
        for i in 0..d.dialled.len() {
            let x = &d.dialled[i];
            if x.outcome != Outcome::Ringing || Some(x.leg) == except {
                continue;
            }
            let leg = x.leg;
            d.dialled[i].outcome = Outcome::Canceled;
            self.child_finished(&mut d.dialled[i], status, now);
            // A leg that answered in the meantime gets a BYE; a ringing one a CANCEL.
            let answered = self.leg_index(leg).is_some_and(|l| self.legs[l].answered());
            let command = if answered {
                SipCommand::Hangup
            } else {
                SipCommand::Cancel
            };
            self.leg_sip(leg, command);
        }
    }

    fn dial_result(
        &self,
        d: &Dial<S>,
        status: &str,
        caller_hung_up: bool,
        now: Instant,
    ) -> DialResult {
        let answered = d.dialled.iter().find(|x| x.outcome == Outcome::Answered);
        let bridged = matches!(d.phase, Phase::Bridged { .. });
        // From the party's answer (a whisper included), as Twilio counts DialCallDuration.
        let duration_secs = answered
            .and_then(|x| x.answered_at)
            .filter(|_| bridged)
            .map_or(0, |at| now.saturating_duration_since(at).as_secs());
        DialResult {
            status: status.to_string(),
            call_sid: answered
                .or(d.dialled.last())
                .map(|x| x.call_sid.to_string()),
            duration_secs,
            bridged,
            recording: None,
            caller_hung_up,
        }
    }

    /// The dial is over: ringback and relay stop, every child call ends, the recording closes;
    /// the flow hears `result` once it has.
    fn close_dial(&mut self, d: &mut Dial<S>, result: DialResult, now: Instant) {
        if std::mem::take(&mut d.ringback) {
            self.push(Output::Media {
                leg: LegId::CALLER,
                command: MediaCommand::Stop,
            });
        }
        self.bridged = None;
        if let Phase::Bridged { leg, .. } = d.phase {
            self.push(Output::Media {
                leg: LegId::CALLER,
                command: MediaCommand::Unbridge,
            });
            self.push(Output::Media {
                leg,
                command: MediaCommand::Unbridge,
            });
        }
        for i in 0..d.dialled.len() {
            let status = match d.dialled[i].outcome {
                Outcome::Answered => CallStatus::Completed,
                Outcome::Refused(s) => refused_status(s),
                Outcome::Ringing | Outcome::Canceled => CallStatus::Canceled,
            };
            self.child_finished(&mut d.dialled[i], status, now);
        }
        d.phase = Phase::Closing { result };
        self.close_recording(d, now);
    }

    // ---- whisper ----

    fn start_whisper(&mut self, d: &mut Dial<S>, leg: LegId, url: String, method: HttpMethod) {
        tracing::info!(leg = leg.0, %url, "whisper to the dialled party");
        let io = self.whisper_fetch(d, leg, url.clone(), method, Vec::new());
        d.phase = Phase::Whisper(Box::new(Whisper {
            leg,
            flow: None,
            activity: WhisperActivity::Fetch {
                io,
                url,
                initial: true,
            },
            keys: std::collections::VecDeque::new(),
        }));
    }

    /// A whisper document request: the dialled leg's own call parameters (Twilio's).
    fn whisper_fetch(
        &mut self,
        d: &Dial<S>,
        leg: LegId,
        url: String,
        method: HttpMethod,
        extra: Vec<(String, String)>,
    ) -> IoId {
        let mut params = match d.dialled.iter().find(|x| x.leg == leg) {
            Some(x) => control::params::standard_params(&x.info, CallStatus::InProgress),
            None => Vec::new(),
        };
        params.push(("ParentCallSid".into(), self.info.call_sid.to_string()));
        params.extend(extra);
        self.fetch(crate::FetchRequest::Twiml {
            url,
            method,
            params,
        })
    }

    fn whisper_io(&mut self, w: &mut Whisper, id: IoId, result: FetchResult<S>, now: Instant) {
        match &mut w.activity {
            WhisperActivity::Fetch { io, url, initial } if *io == id => {
                let FetchResult::Twiml(answer) = result else {
                    return;
                };
                let fetched = self.classify(answer, url);
                if *initial {
                    let flow = fetched.into_flow(control::flow::FlowOptions::default());
                    w.flow = Some(Box::new(flow));
                } else if let Some(flow) = w.flow.as_mut() {
                    fetched.feed(flow);
                }
                w.activity = WhisperActivity::Idle;
            }
            WhisperActivity::Prompt(run) => {
                let finished = self.prompt_loaded(run, id, result, now).is_some();
                if finished {
                    w.activity = WhisperActivity::Idle;
                }
            }
            WhisperActivity::Gather {
                prompts: Some(run), ..
            } => {
                let _ = self.prompt_loaded(run, id, result, now);
            }
            _ => {}
        }
    }

    /// Runs the whisper as far as it goes now; when it ends the party is bridged (or, if it
    /// hung up, the dial ends unbridged).
    fn whisper_step(&mut self, d: &mut Box<Dial<S>>, now: Instant) -> bool {
        let Phase::Whisper(w) = &mut d.phase else {
            return false;
        };
        let leg = w.leg;
        let callee_gone = self.leg_index(leg).is_none_or(|i| self.legs[i].hung_up());
        if self.gone() || callee_gone {
            if let WhisperActivity::Prompt(run) = &mut w.activity {
                self.interrupt_prompt(run);
            }
            if !callee_gone {
                self.leg_sip(leg, SipCommand::Hangup);
            }
            let caller_gone = self.caller().hung_up();
            let status = if callee_gone { "completed" } else { "canceled" };
            let result = self.dial_result(d, status, caller_gone, now);
            self.close_dial(d, result, now);
            return true;
        }
        match &mut w.activity {
            WhisperActivity::Fetch { .. } => false,
            WhisperActivity::Prompt(run) => {
                if self.prompt_advance(run, now).is_some() {
                    w.activity = WhisperActivity::Idle;
                    return true;
                }
                false
            }
            WhisperActivity::Gather {
                step,
                prompts,
                digits,
                deadline,
            } => {
                let timeout = std::time::Duration::from_secs(u64::from(step.timeout_secs.max(1)));
                if let Some(run) = prompts {
                    if !w.keys.is_empty() {
                        self.interrupt_prompt(run);
                    } else if self.prompt_advance(run, now).is_none() {
                        return false;
                    }
                    *prompts = None;
                    *deadline = Some(now + timeout);
                }
                let mut finished: Option<Option<char>> = None;
                while let Some(key) = w.keys.pop_front() {
                    if Some(key) == step.finish_on_key {
                        if !digits.is_empty() {
                            finished = Some(Some(key));
                            break;
                        }
                        continue;
                    }
                    digits.push(key);
                    *deadline = Some(now + timeout);
                    if step
                        .num_digits
                        .is_some_and(|n| digits.chars().count() >= n as usize)
                    {
                        finished = Some(None);
                        break;
                    }
                }
                let Some(key) = finished else {
                    return false;
                };
                let digits = std::mem::take(digits);
                if let Some(flow) = w.flow.as_mut() {
                    flow.gather_finished(digits, key);
                }
                w.activity = WhisperActivity::Idle;
                true
            }
            WhisperActivity::Idle => {
                let Some(flow) = w.flow.as_mut() else {
                    return false;
                };
                let step = flow.next_step();
                tracing::debug!(leg = leg.0, ?step, "whisper step");
                use crate::prompt::{LoadErrorPolicy, PromptItem, PromptRun};
                use control::Step;
                if let Some(item) = PromptItem::of_step(&step) {
                    let run = PromptRun::on_leg(vec![item], LoadErrorPolicy::Skip, leg);
                    w.activity = WhisperActivity::Prompt(Box::new(run));
                    return true;
                }
                w.activity = match step {
                    Step::Play { .. } | Step::Pause { .. } | Step::Say { .. } => {
                        WhisperActivity::Idle
                    }
                    Step::Gather(step) => {
                        let items = step.prompts.iter().map(PromptItem::from_step).collect();
                        WhisperActivity::Gather {
                            step,
                            prompts: Some(Box::new(crate::prompt::PromptRun::on_leg(
                                items,
                                crate::prompt::LoadErrorPolicy::Skip,
                                leg,
                            ))),
                            digits: String::new(),
                            deadline: None,
                        }
                    }
                    Step::Fetch {
                        url,
                        method,
                        extra,
                        discard_answer: _,
                    } => {
                        let io = self.whisper_fetch(d, leg, url.clone(), method, extra);
                        let Phase::Whisper(w) = &mut d.phase else {
                            return true;
                        };
                        w.activity = WhisperActivity::Fetch {
                            io,
                            url,
                            initial: false,
                        };
                        return true;
                    }
                    Step::End => {
                        self.bridge(d, leg, now);
                        return true;
                    }
                    Step::Record(_) | Step::Dial(_) => {
                        tracing::warn!(
                            leg = leg.0,
                            "a whisper cannot <Record> or <Dial>; bridging now"
                        );
                        self.bridge(d, leg, now);
                        return true;
                    }
                    Step::Hangup | Step::Reject { .. } | Step::AppError { .. } => {
                        // The party refused the call in its whisper: no bridge.
                        tracing::info!(leg = leg.0, "the whisper hung up: not bridged");
                        self.leg_sip(leg, SipCommand::Hangup);
                        let caller_gone = self.caller().hung_up();
                        let result = self.dial_result(d, "completed", caller_gone, now);
                        self.close_dial(d, result, now);
                        return true;
                    }
                };
                true
            }
        }
    }

    // ---- child calls ----

    fn child_progress(
        &mut self,
        x: &mut Dialled,
        event: ProgressEvent,
        now: Instant,
        duration: Option<u64>,
    ) {
        let Some((url, method, events)) = &x.callback else {
            return;
        };
        if !events.iter().any(|e| e == event.as_str()) {
            return;
        }
        let mut params = progress_params(&x.info, event, x.sequence, self.unix_ms(now), duration);
        params.push(("ParentCallSid".into(), self.info.call_sid.to_string()));
        x.sequence += 1;
        let (url, method) = (url.clone(), *method);
        self.push(Output::Callback {
            group: x.call_sid.to_string(),
            url,
            method,
            params,
        });
    }

    fn child_answered(&mut self, x: &mut Dialled, now: Instant) {
        let ms = self.unix_ms(now);
        x.answered_at = Some(now);
        x.row.status = CallStatus::InProgress;
        x.row.start_time_ms = Some(ms);
        x.row.date_updated_ms = ms;
        self.push(Output::Persist(Persist::UpdateCall(x.row.clone())));
        self.child_progress(x, ProgressEvent::Answered, now, None);
    }

    fn child_finished(&mut self, x: &mut Dialled, status: CallStatus, now: Instant) {
        if x.finished {
            return;
        }
        x.finished = true;
        let ms = self.unix_ms(now);
        let duration = x
            .answered_at
            .map(|at| now.saturating_duration_since(at).as_secs());
        x.row.status = status;
        x.row.date_updated_ms = ms;
        x.row.end_time_ms = Some(ms);
        x.row.duration_secs = Some(duration.unwrap_or(0) as u32);
        self.push(Output::Persist(Persist::UpdateCall(x.row.clone())));
        self.child_progress(x, ProgressEvent::Completed(status), now, duration);
    }

    fn start_conversation_recording(&mut self, d: &mut Dial<S>, now: Instant) {
        let Some(record) = d.verb.record else { return };
        let track = d.verb.recording_track;
        let layout = Layout {
            slots: [
                track != control::twiml::RecordingTrack::Outbound,
                track != control::twiml::RecordingTrack::Inbound,
            ],
            dual: record.dual,
        };
        let verb = &d.verb;
        let callback = verb.recording_status_callback_events.callback(
            verb.recording_status_callback.as_ref(),
            verb.recording_status_callback_method,
        );
        let trim = verb.trim_silence;
        let transcription = verb.transcribe.then(|| {
            let language = verb
                .transcribe_language
                .clone()
                .unwrap_or_else(|| self.config.transcription_language.clone());
            (verb.transcribe_callback.clone(), language)
        });
        let sid = self.new_recording_sid();
        let plan = RecordingPlan {
            layout,
            source: RecordingSource::DialVerb,
            callback,
            trim,
            transcription,
        };
        let rec = self.open_live_recording(sid, plan, now);
        d.recording = Some(rec);
    }

    fn close_recording(&mut self, d: &mut Dial<S>, now: Instant) {
        if let Some(rec) = d.recording.as_mut() {
            self.close_live_recording(rec, now);
        }
    }

    /// A command to a dialled leg; ending it from our side ends it for the core at once.
    pub(crate) fn leg_sip(&mut self, leg: LegId, command: SipCommand) {
        if let Some(i) = self.leg_index(leg) {
            let l = &mut self.legs[i];
            match command {
                SipCommand::Hangup => {
                    if l.remote_ended() {
                        return;
                    }
                    l.state = LegState::Gone {
                        answered_at: l.answered_at(),
                    };
                }
                SipCommand::Cancel => {
                    if !matches!(l.state, LegState::Ringing) {
                        return;
                    }
                    l.state = LegState::Rejected { status: 487 };
                }
                _ => {}
            }
        }
        self.push(Output::Sip { leg, command });
    }

    /// The call ends: dialled legs still up are hung up or canceled.
    pub(crate) fn release_dialled(&mut self) {
        let legs: Vec<(LegId, LegState)> =
            self.legs.iter().skip(1).map(|l| (l.id, l.state)).collect();
        for (leg, state) in legs {
            match state {
                LegState::Ringing => self.leg_sip(leg, SipCommand::Cancel),
                LegState::Answered { .. } => self.leg_sip(leg, SipCommand::Hangup),
                _ => {}
            }
        }
    }
}

/// `DialCallStatus` when nobody answered: busy if any callee said so, no-answer if they only
/// rang out, failed otherwise.
fn unanswered_status<S: WavStorage>(d: &Dial<S>) -> &'static str {
    let refused: Vec<u16> = d
        .dialled
        .iter()
        .filter_map(|x| match x.outcome {
            Outcome::Refused(s) => Some(s),
            _ => None,
        })
        .collect();
    if refused.iter().any(|s| matches!(s, 486 | 600 | 603)) {
        "busy"
    } else if refused.iter().any(|s| matches!(s, 408 | 480 | 487)) {
        "no-answer"
    } else {
        "failed"
    }
}

/// A dialled party's final answer as its child call's status.
fn refused_status(status: u16) -> CallStatus {
    match status {
        486 | 600 | 603 => CallStatus::Busy,
        408 | 480 | 487 => CallStatus::NoAnswer,
        _ => CallStatus::Failed,
    }
}

/// The child call's `To`: the number, the SIP URI, or `client:identity`.
fn target_text(target: &control::DialTarget) -> String {
    match target {
        control::DialTarget::Sip { uri, .. } => uri.clone(),
        control::DialTarget::Client { identity, .. } => format!("client:{identity}"),
        control::DialTarget::Number { number, .. } => number.clone(),
    }
}

fn empty() -> DialResult {
    DialResult {
        status: String::new(),
        call_sid: None,
        duration_secs: 0,
        bridged: false,
        recording: None,
        caller_hung_up: false,
    }
}

/// The ringback the caller hears while the nouns ring, per `ringTone` country (8 kHz, one
/// cadence; played in a loop). Unknown countries hear the US tone.
pub(crate) fn ringback(country: &str) -> Arc<[i16]> {
    static US: OnceLock<Arc<[i16]>> = OnceLock::new();
    static GB: OnceLock<Arc<[i16]>> = OnceLock::new();
    static EU: OnceLock<Arc<[i16]>> = OnceLock::new();
    static JP: OnceLock<Arc<[i16]>> = OnceLock::new();
    match country {
        // 400+450 Hz, 0.4 on 0.2 off 0.4 on 2.0 off.
        "gb" | "uk" | "ie" | "au" | "nz" => GB
            .get_or_init(|| {
                cadence(
                    &[400.0, 450.0],
                    &[(400, true), (200, false), (400, true), (2000, false)],
                )
            })
            .clone(),
        // 425 Hz, 1 on 4 off.
        "de" | "fr" | "it" | "es" | "nl" | "at" | "ch" | "be" | "pl" | "se" | "no" | "dk"
        | "fi" | "pt" | "cz" | "ru" => EU
            .get_or_init(|| cadence(&[425.0], &[(1000, true), (4000, false)]))
            .clone(),
        // 400 Hz, 1 on 2 off.
        "jp" => JP
            .get_or_init(|| cadence(&[400.0], &[(1000, true), (2000, false)]))
            .clone(),
        // 440+480 Hz, 2 on 4 off.
        _ => US
            .get_or_init(|| cadence(&[440.0, 480.0], &[(2000, true), (4000, false)]))
            .clone(),
    }
}

fn cadence(freqs: &[f32], parts: &[(u32, bool)]) -> Arc<[i16]> {
    let rate = media_engine::SAMPLE_RATE as f32;
    let amplitude = 4000.0 / freqs.len() as f32;
    let mut out = Vec::new();
    for &(ms, on) in parts {
        let n = (ms * media_engine::SAMPLE_RATE / 1000) as usize;
        for i in 0..n {
            let v = if on {
                let t = i as f32 / rate;
                freqs
                    .iter()
                    .map(|f| (2.0 * std::f32::consts::PI * f * t).sin() * amplitude)
                    .sum::<f32>()
            } else {
                0.0
            };
            out.push(v as i16);
        }
    }
    out.into()
}
