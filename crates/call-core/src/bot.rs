//! Bot-driven calls (SPEC §7): the call is answered and runs the operations a bot posts —
//! `recordResponse`, `playPrompt`, `subscribeToTone` — in order unless one allows barge-in.
//! Outcomes, tones and call states go out as [`BotEvent`]s; the driver notifies the bot.

use std::collections::VecDeque;
use std::time::Instant;

use control::graph::CallState as GraphCallState;
use control::graph::{OperationRequest, RecordResponse, ResultInfo};
use control::twiml::{RecordVerb, StatusEvents};
use control::HttpMethod;
use record_engine::wav::WavStorage;
use record_engine::StopReason;
use store::RecordingSource;

use crate::call::{Activity, Call, StopCause};
use crate::capture::{AfterCapture, CaptureOptions, Captured};
use crate::prompt::{AfterPrompt, LoadErrorPolicy, PromptItem, PromptOutcome, PromptRun};
use crate::{BotEvent, LiveUpdate, OperationStatus, Output};

#[derive(Default)]
pub(crate) struct BotState {
    /// Operations waiting their turn, oldest first.
    queue: VecDeque<(String, OperationRequest)>,
    /// The operation running now.
    running: Option<String>,
    /// Tone notifications: `Some(last sequence number)` once subscribed.
    tones: Option<u32>,
    /// The call was handed to the bot.
    pub(crate) started: bool,
    /// `terminated` was sent.
    terminated_sent: bool,
}

fn result(code: u16, subcode: u32, message: &str) -> ResultInfo {
    ResultInfo {
        code,
        subcode,
        message: message.to_string(),
    }
}

fn barge_in_allowed(request: &OperationRequest) -> bool {
    match request {
        OperationRequest::RecordResponse(r) => r.barge_in_allowed,
        OperationRequest::PlayPrompt(p) => p.barge_in_allowed,
        OperationRequest::SubscribeToTone { .. } => false,
    }
}

impl<S: WavStorage> Call<S> {
    /// An operation arrived from the API.
    pub(crate) fn queue_operation(&mut self, id: String, request: OperationRequest) {
        if let OperationRequest::SubscribeToTone { .. } = request {
            self.bot.tones.get_or_insert(0);
            self.finish_operation(
                &id,
                OperationStatus::Completed,
                result(200, 0, "Subscribed to tones"),
                None,
            );
            return;
        }
        if barge_in_allowed(&request) {
            // Everything queued is cancelled; the running one stops at once.
            for (queued, _) in std::mem::take(&mut self.bot.queue) {
                self.finish_operation(
                    &queued,
                    OperationStatus::Failed,
                    result(400, 8508, "Operation canceled by barge-in"),
                    None,
                );
            }
            if self.bot.running.is_some() {
                self.request_stop(StopCause::BargeIn);
            }
        }
        self.bot.queue.push_back((id, request));
    }

    /// The call is handed to the bot: answered and established.
    pub(crate) fn bot_started(&mut self, now: Instant) {
        self.push(Output::Live(LiveUpdate::BotMode));
        self.bot.started = true;
        self.bot_call_state(GraphCallState::Establishing);
        self.answer(now);
        self.push(Output::Live(LiveUpdate::Established));
        self.bot_call_state(GraphCallState::Established);
    }

    /// The bot program's loop: the next operation, or the end.
    pub(crate) fn bot_step(&mut self, now: Instant) -> (Activity<S>, bool) {
        let ending = self.caller().hung_up()
            || matches!(
                self.stop,
                Some(StopCause::ApiHangup | StopCause::Shutdown | StopCause::Redirect(_))
            );
        if ending {
            self.bot_ended(now);
            return (Activity::Idle, true);
        }
        let Some((id, request)) = self.bot.queue.pop_front() else {
            return (Activity::Idle, false);
        };
        if self.stop == Some(StopCause::BargeIn) {
            self.stop = None;
        }
        self.bot.running = Some(id.clone());
        self.push(Output::Bot(BotEvent::Operation {
            id: id.clone(),
            status: OperationStatus::Running,
            result: None,
            recording_sid: None,
        }));
        let activity = match request {
            OperationRequest::PlayPrompt(p) => Activity::Prompt {
                run: Box::new(PromptRun::new(
                    p.prompt_uris
                        .into_iter()
                        .map(|url| PromptItem::Url { url, loops: 1 })
                        .collect(),
                    LoadErrorPolicy::Fail,
                )),
                then: AfterPrompt::BotPlay { id },
            },
            OperationRequest::RecordResponse(r) => match r.prompt_uri.clone() {
                Some(url) => Activity::Prompt {
                    run: Box::new(PromptRun::new(
                        vec![PromptItem::Url { url, loops: 1 }],
                        LoadErrorPolicy::Fail,
                    )),
                    then: AfterPrompt::BotRecord { id, request: r },
                },
                None => self.start_bot_capture(id, &r, now),
            },
            OperationRequest::SubscribeToTone { .. } => {
                self.operation_over();
                Activity::Idle
            }
        };
        (activity, true)
    }

    /// The bot program is over: what is queued will never run; a live update takes the call
    /// to TwiML, else the call ends.
    pub(crate) fn bot_ended(&mut self, now: Instant) {
        let hung_up = self.caller().hung_up();
        let why = if hung_up {
            result(410, 8528, "Call hung up")
        } else {
            result(400, 8508, "Operation canceled")
        };
        for (queued, _) in std::mem::take(&mut self.bot.queue) {
            self.finish_operation(&queued, OperationStatus::Failed, why.clone(), None);
        }
        if let Some(StopCause::Redirect(_)) = &self.stop {
            if !hung_up {
                // The TwiML program takes the call (the redirect is applied next).
                self.set_program_loading();
                return;
            }
        } else {
            self.push(Output::Live(LiveUpdate::Terminated));
            self.bot_call_state(GraphCallState::Terminated);
        }
        self.end_call(now);
    }

    fn operation_over(&mut self) {
        self.bot.running = None;
        if self.stop == Some(StopCause::BargeIn) {
            self.stop = None;
        }
    }

    fn interrupted_outcome(&self) -> ResultInfo {
        if self.caller().hung_up() {
            result(410, 8528, "Call hung up")
        } else {
            result(400, 8508, "Operation canceled")
        }
    }

    pub(crate) fn bot_play_finished(&mut self, id: &str, outcome: PromptOutcome) {
        match outcome {
            PromptOutcome::Done => self.finish_operation(
                id,
                OperationStatus::Completed,
                result(200, 0, "Action completed, prompt played"),
                None,
            ),
            other => return self.bot_play_finished_failed(id, other),
        }
        self.operation_over();
    }

    pub(crate) fn bot_play_finished_failed(&mut self, id: &str, outcome: PromptOutcome) {
        let info = match outcome {
            PromptOutcome::Failed(e) => result(500, 8511, &format!("Prompt failed: {e}")),
            _ => self.interrupted_outcome(),
        };
        self.finish_operation(id, OperationStatus::Failed, info, None);
        self.operation_over();
    }

    pub(crate) fn start_bot_capture(
        &mut self,
        id: String,
        request: &RecordResponse,
        now: Instant,
    ) -> Activity<S> {
        let verb = RecordVerb {
            action: None,
            method: HttpMethod::Post,
            timeout_secs: request.max_silence_timeout_secs,
            finish_on_key: request.stop_tones.iter().collect(),
            max_length_secs: request.max_record_duration_secs,
            play_beep: request.play_beep,
            trim_silence: false,
            recording_status_callback: None,
            recording_status_callback_method: HttpMethod::Post,
            recording_status_callback_events: StatusEvents {
                in_progress: false,
                completed: false,
                absent: false,
            },
            transcribe: false,
            transcribe_callback: None,
            transcribe_language: None,
        };
        let options = CaptureOptions {
            initial_silence_secs: Some(request.initial_silence_timeout_secs),
            source: RecordingSource::RecordResponse,
        };
        self.start_capture(verb, options, AfterCapture::Bot { id }, now)
    }

    pub(crate) fn bot_capture_finished(&mut self, id: &str, captured: Option<Captured>) {
        let Some(captured) = captured else {
            self.finish_operation(
                id,
                OperationStatus::Failed,
                result(400, 8508, "Operation canceled"),
                None,
            );
            return self.operation_over();
        };
        let heard = captured.samples > 0;
        let media_stopped = self.caller().media_timed_out;
        use OperationStatus::{Completed, Failed};
        let (status, info) = match captured.reason {
            StopReason::MaxLength => (
                Completed,
                result(200, 8515, "Action completed, max record duration reached"),
            ),
            StopReason::Silence => (
                Completed,
                result(200, 8509, "Action completed, silence detected after speech"),
            ),
            StopReason::FinishKey(_) => (
                Completed,
                result(200, 8514, "Action completed, stop tone detected"),
            ),
            StopReason::NoSpeech => (
                Failed,
                result(
                    400,
                    8510,
                    "Action failed, no speech before the initial silence timeout",
                ),
            ),
            StopReason::Hangup if media_stopped && !heard => (
                Failed,
                result(500, 8513, "Action failed, no media received"),
            ),
            StopReason::Hangup if media_stopped => {
                (Failed, result(500, 8588, "Action failed, media stopped"))
            }
            StopReason::Hangup => (Failed, result(410, 8528, "Action failed, call hung up")),
            // A capture stopped from our side reports `None` (above).
            StopReason::Redirected => (
                Failed,
                result(400, 8508, "Action failed, operation canceled"),
            ),
        };
        // The audio is kept even when the operation failed; the bot gets it if there is any.
        let recording = heard.then_some(captured.result.recording_sid);
        self.finish_operation(id, status, info, recording);
        self.operation_over();
    }

    fn finish_operation(
        &mut self,
        id: &str,
        status: OperationStatus,
        info: ResultInfo,
        recording_sid: Option<store::RecordingSid>,
    ) {
        tracing::info!(operation = %id, status = status.as_str(), result = ?info, "bot operation finished");
        self.push(Output::Bot(BotEvent::Operation {
            id: id.to_string(),
            status,
            result: Some(info),
            recording_sid,
        }));
    }

    /// A key heard: the bot is told if it subscribed.
    pub(crate) fn bot_tone(&mut self, key: char) {
        if let Some(sequence) = self.bot.tones.as_mut() {
            *sequence += 1;
            let sequence = *sequence;
            self.push(Output::Bot(BotEvent::Tone { key, sequence }));
        }
    }

    pub(crate) fn bot_call_state(&mut self, state: GraphCallState) {
        if !self.config.app.bot {
            return;
        }
        if state == GraphCallState::Terminated {
            if self.bot.terminated_sent {
                return;
            }
            self.bot.terminated_sent = true;
        }
        self.push(Output::Bot(BotEvent::CallState(state)));
    }
}
