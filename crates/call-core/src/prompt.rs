//! Prompts: what `<Say>`, `<Play>`, `<Pause>`, `<Gather>`'s prompts, a bot's prompts and the
//! application-error prompt play, one item after another, each loaded then played.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use control::graph::RecordResponse;
use control::PromptStep;
use record_engine::wav::WavStorage;

use crate::call::{Activity, Call, RETRIEVAL_FAILURE};
use crate::leg::LegId;
use crate::{FetchRequest, FetchResult, IoId, MediaCommand, Output, Persist, PlaybackId};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PromptItem {
    Say {
        text: String,
        voice: String,
        language: String,
        loops: u32,
    },
    Url {
        url: String,
        loops: u32,
    },
    /// RFC 4733 events.
    Digits(String),
    /// Seconds of silence (at least one).
    Pause {
        secs: u32,
    },
}

impl PromptItem {
    pub(crate) fn play(url: String, loops: u32, digits: Option<String>) -> PromptItem {
        match digits {
            Some(digits) => PromptItem::Digits(digits),
            None => PromptItem::Url { url, loops },
        }
    }

    /// The prompt a `<Play>`, `<Pause>` or `<Say>` step plays (once per verb: cloned).
    pub(crate) fn of_step(step: &control::Step) -> Option<PromptItem> {
        use control::Step;
        match step {
            Step::Play { url, loops, digits } => {
                Some(PromptItem::play(url.clone(), *loops, digits.clone()))
            }
            Step::Pause { secs } => Some(PromptItem::Pause { secs: *secs }),
            Step::Say {
                text,
                voice,
                language,
                loops,
            } => Some(PromptItem::Say {
                text: text.clone(),
                voice: voice.clone(),
                language: language.clone(),
                loops: *loops,
            }),
            _ => None,
        }
    }

    pub(crate) fn from_step(step: &PromptStep) -> PromptItem {
        match step {
            PromptStep::Say {
                text,
                voice,
                language,
                loops,
            } => PromptItem::Say {
                text: text.clone(),
                voice: voice.clone(),
                language: language.clone(),
                loops: *loops,
            },
            PromptStep::Play { url, loops, digits } => {
                PromptItem::play(url.clone(), *loops, digits.clone())
            }
            PromptStep::Pause { secs } => PromptItem::Pause { secs: *secs },
        }
    }
}

/// What to do when a prompt's audio cannot be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoadErrorPolicy {
    /// Skip it with a warning (TwiML).
    Skip,
    /// The prompt fails (a bot's operation fails with 8511).
    Fail,
    /// Play the error tones instead (the application-error prompt).
    ErrorTones,
}

pub(crate) enum PromptOutcome {
    Done,
    /// Stopped: the caller hung up, the call was stopped from our side, or a key barged in.
    Interrupted,
    Failed(String),
}

/// What runs when the prompt is over.
pub(crate) enum AfterPrompt {
    NextStep,
    EndCall,
    BotPlay { id: String },
    BotRecord { id: String, request: RecordResponse },
}

enum Phase {
    Next,
    Loading { io: IoId, item: PromptItem },
    Playing(PlaybackId),
}

pub(crate) struct PromptRun {
    items: VecDeque<PromptItem>,
    phase: Phase,
    policy: LoadErrorPolicy,
    /// Who hears it: the caller, or a dialled party (a `<Dial>` noun's whisper).
    leg: LegId,
    verb: &'static str,
}

impl PromptRun {
    pub(crate) fn new(items: Vec<PromptItem>, policy: LoadErrorPolicy) -> PromptRun {
        Self::on_leg(items, policy, LegId::CALLER)
    }

    pub(crate) fn on_leg(items: Vec<PromptItem>, policy: LoadErrorPolicy, leg: LegId) -> PromptRun {
        let verb = match items.first() {
            Some(PromptItem::Say { .. }) => "Say",
            Some(PromptItem::Pause { .. }) => "Pause",
            _ => "Play",
        };
        PromptRun {
            items: items.into(),
            phase: Phase::Next,
            policy,
            leg,
            verb,
        }
    }

    /// The verb this run plays for, as the live view names it.
    pub(crate) fn verb(&self) -> &'static str {
        self.verb
    }

    pub(crate) fn play_done(&mut self, id: PlaybackId) {
        if matches!(self.phase, Phase::Playing(p) if p == id) {
            self.phase = Phase::Next;
        }
    }
}

impl<S: WavStorage> Call<S> {
    /// Starts the next item; `Some` when there is none left.
    pub(crate) fn prompt_advance(
        &mut self,
        run: &mut PromptRun,
        now: Instant,
    ) -> Option<PromptOutcome> {
        let _ = now;
        if !matches!(run.phase, Phase::Next) {
            return None;
        }
        let Some(item) = run.items.pop_front() else {
            return Some(PromptOutcome::Done);
        };
        run.phase = match item {
            PromptItem::Say {
                ref text,
                ref voice,
                ref language,
                ..
            } => {
                let io = self.fetch(FetchRequest::Speech {
                    text: text.clone(),
                    voice: voice.clone(),
                    language: language.clone(),
                });
                Phase::Loading { io, item }
            }
            PromptItem::Url { ref url, .. } => {
                let io = self.fetch(FetchRequest::Audio { url: url.clone() });
                Phase::Loading { io, item }
            }
            PromptItem::Digits(digits) => {
                let id = self.next_playback();
                self.leg_media(run.leg, MediaCommand::PlayDigits { id, digits });
                Phase::Playing(id)
            }
            PromptItem::Pause { secs } => {
                let second = self.config.silence_second.clone();
                Phase::Playing(self.play_on(run.leg, second, secs.max(1)))
            }
        };
        None
    }

    pub(crate) fn play(&mut self, audio: Arc<[i16]>, loops: u32) -> PlaybackId {
        self.play_on(LegId::CALLER, audio, loops)
    }

    pub(crate) fn play_on(&mut self, leg: LegId, audio: Arc<[i16]>, loops: u32) -> PlaybackId {
        let id = self.next_playback();
        self.leg_media(leg, MediaCommand::Play { id, audio, loops });
        id
    }

    pub(crate) fn leg_media(&mut self, leg: LegId, command: MediaCommand) {
        self.push(Output::Media { leg, command });
    }

    /// The audio of the item loading arrived (or could not be had).
    pub(crate) fn prompt_loaded(
        &mut self,
        run: &mut PromptRun,
        id: IoId,
        result: FetchResult<S>,
        now: Instant,
    ) -> Option<PromptOutcome> {
        let Phase::Loading { io, .. } = &run.phase else {
            return None;
        };
        if *io != id {
            return None;
        }
        let FetchResult::Audio(result) = result else {
            return None;
        };
        let Phase::Loading { item, .. } = std::mem::replace(&mut run.phase, Phase::Next) else {
            return None;
        };
        match result {
            Ok(samples) => {
                let loops = match &item {
                    PromptItem::Say { text, loops, .. } => {
                        // What Hark said is part of the call's transcript (speaker `system`).
                        let event = store::CallEvent {
                            call_sid: self.info.call_sid.clone(),
                            at_ms: self.unix_ms(now),
                            speaker: "system".into(),
                            text: text.clone(),
                            duration_sec: samples.len() as f64 / 8000.0
                                * f64::from((*loops).max(1)),
                        };
                        self.push(Output::Persist(Persist::InsertCallEvent(event)));
                        *loops
                    }
                    PromptItem::Url { loops, .. } => *loops,
                    _ => 1,
                };
                run.phase = Phase::Playing(self.play_on(run.leg, samples, loops));
                None
            }
            Err(e) => match run.policy {
                LoadErrorPolicy::Skip => {
                    match &item {
                        PromptItem::Url { url, .. } => {
                            tracing::warn!(code = RETRIEVAL_FAILURE, url, error = %e, "<Play> skipped")
                        }
                        _ => tracing::warn!(error = %e, "<Say> could not be rendered; skipped"),
                    }
                    None
                }
                LoadErrorPolicy::Fail => {
                    if let PromptItem::Url { url, .. } = &item {
                        tracing::warn!(uri = %url, error = %e, "bot prompt unusable");
                    }
                    run.items.clear();
                    Some(PromptOutcome::Failed(e))
                }
                LoadErrorPolicy::ErrorTones => {
                    tracing::warn!(error = %e, "error prompt could not be rendered; playing tones");
                    let tones: Arc<[i16]> = media_engine::tone::error_tones().into();
                    run.phase = Phase::Playing(self.play_on(run.leg, tones, 1));
                    None
                }
            },
        }
    }

    /// Stops what the prompt is doing; nothing more of it plays.
    pub(crate) fn interrupt_prompt(&mut self, run: &mut PromptRun) {
        match std::mem::replace(&mut run.phase, Phase::Next) {
            Phase::Loading { io, .. } => self.push(Output::CancelFetch(io)),
            Phase::Playing(_) => self.leg_media(run.leg, MediaCommand::Stop),
            Phase::Next => {}
        }
        run.items.clear();
    }

    pub(crate) fn prompt_finished(
        &mut self,
        outcome: PromptOutcome,
        then: AfterPrompt,
        now: Instant,
    ) -> Activity<S> {
        match then {
            AfterPrompt::NextStep => Activity::Idle,
            AfterPrompt::EndCall => {
                self.end_call(now);
                Activity::Idle
            }
            AfterPrompt::BotPlay { id } => {
                self.bot_play_finished(&id, outcome);
                Activity::Idle
            }
            AfterPrompt::BotRecord { id, request } => match outcome {
                PromptOutcome::Done => self.start_bot_capture(id, &request, now),
                other => {
                    self.bot_play_finished_failed(&id, other);
                    Activity::Idle
                }
            },
        }
    }
}
