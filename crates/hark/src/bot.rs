//! Bot-driven calls (SPEC §7, issue 6): the call is answered and runs the operations a bot posts
//! over `/v1.0/communications/calls` — `recordResponse`, `playPrompt`, `subscribeToTone` — in
//! order unless one allows barge-in; outcomes and call states are POSTed to the application's
//! `bot_callback_uri` as `commsNotifications`.

use std::collections::VecDeque;
use std::time::Duration;

use control::twiml::{RecordVerb, StatusEvents};
use control::HttpMethod;
use http_api::control::{
    comms_notification, operation_json, recording_access_token, recording_location,
    OperationRequest, OperationView, PlayPrompt, RecordResponse, ResultInfo,
};
use record_engine::StopReason;

use crate::call::{Call, Interrupt, DRAIN_INTERVAL};
use crate::record::CaptureOptions;

/// `source` of the recordings `recordResponse` makes.
pub(crate) const RECORDING_SOURCE: &str = "RecordResponse";

/// Bot mode of a call.
#[derive(Default)]
pub(crate) struct BotState {
    /// Operations waiting their turn, oldest first.
    pub(crate) queue: VecDeque<(String, OperationRequest)>,
    /// A barge-in asked the running operation to stop.
    pub(crate) barge_in: bool,
    pub(crate) tones_subscribed: bool,
    /// Keys heard while subscribed, not yet notified.
    pub(crate) tones: VecDeque<char>,
    tone_sequence: u32,
    /// The operation running now.
    running: Option<String>,
    /// Finished operations whose notification is not sent yet.
    pending: VecDeque<OperationView>,
    /// The call was handed to the bot.
    pub(crate) started: bool,
    /// `terminated` was sent.
    pub(crate) terminated_sent: bool,
    /// Notifications leave through one task per call, so the bot sees them in order.
    notifier: Option<tokio::sync::mpsc::UnboundedSender<serde_json::Value>>,
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

impl Call {
    /// An operation arrived from the API.
    pub(crate) fn queue_operation(&mut self, id: String, request: OperationRequest) {
        if let OperationRequest::SubscribeToTone { .. } = request {
            self.bot.tones_subscribed = true;
            self.finish_operation(
                &id,
                "completed",
                result(200, 0, "Subscribed to tones"),
                None,
            );
            return;
        }
        if barge_in_allowed(&request) {
            // Everything queued is cancelled; the running one stops at its next wait.
            for (queued, _) in std::mem::take(&mut self.bot.queue) {
                self.finish_operation(
                    &queued,
                    "failed",
                    result(400, 8508, "Operation canceled by barge-in"),
                    None,
                );
            }
            if self.bot.running().is_some() {
                self.bot.barge_in = true;
            }
        }
        self.bot.queue.push_back((id, request));
    }

    /// Runs until the caller hangs up, the bot hangs up, or the call is redirected to TwiML.
    pub(crate) async fn run_bot(&mut self) {
        self.entry.set_bot(true);
        self.bot.started = true;
        self.notify_call_state("establishing");
        self.answer().await;
        self.entry.set_state("established");
        self.notify_call_state("established");
        loop {
            self.flush_tones();
            if self.hung_up()
                || self.hangup_requested
                || self.redirect.is_some()
                || *self.shutdown.borrow()
            {
                break;
            }
            let Some((id, request)) = self.bot.queue.pop_front() else {
                self.idle().await;
                continue;
            };
            self.bot.barge_in = false;
            self.bot.running = Some(id.clone());
            self.start_operation(&id);
            match request {
                OperationRequest::RecordResponse(r) => self.record_response(&id, &r).await,
                OperationRequest::PlayPrompt(p) => self.play_prompt(&id, &p).await,
                OperationRequest::SubscribeToTone { .. } => {}
            }
            self.bot.running = None;
            self.bot.barge_in = false;
        }
        // Whatever was still queued will never run.
        let why = if self.hung_up() {
            result(410, 8528, "Call hung up")
        } else {
            result(400, 8508, "Operation canceled")
        };
        for (queued, _) in std::mem::take(&mut self.bot.queue) {
            self.finish_operation(&queued, "failed", why.clone(), None);
        }
        self.flush_notifications();
        if self.redirect.is_none() {
            self.entry.set_state("terminated");
            self.notify_call_state("terminated");
        }
    }

    /// Waits for the next operation (or the end), serving SIP, RTP and the API meanwhile.
    async fn idle(&mut self) {
        let mut drain = tokio::time::interval(DRAIN_INTERVAL);
        while self.bot.queue.is_empty()
            && self.bot.tones.is_empty()
            && self.bot.pending.is_empty()
            && !self.gone()
        {
            tokio::select! {
                event = self.events.recv() => self.on_event(event),
                notice = self.media.notices.recv() => self.on_notice(notice),
                msg = self.control.recv() => self.on_control(msg),
                _ = drain.tick() => self.drain_idle(),
                _ = self.shutdown.changed() => {}
            }
        }
    }

    async fn play_prompt(&mut self, id: &str, request: &PlayPrompt) {
        for uri in &request.prompt_uris {
            match self.play_uri(uri).await {
                Ok(()) => {}
                Err(outcome) => {
                    self.finish_operation(id, "failed", outcome, None);
                    return self.flush_notifications();
                }
            }
        }
        self.finish_operation(
            id,
            "completed",
            result(200, 0, "Action completed, prompt played"),
            None,
        );
        self.flush_notifications();
    }

    /// Plays one prompt; the error is the operation's outcome.
    async fn play_uri(&mut self, uri: &str) -> Result<(), ResultInfo> {
        let audio = self.shared.audio.clone();
        let loaded = self
            .wait(audio.load(uri))
            .await
            .map_err(|i| self.interrupted_outcome(i))?;
        let samples = loaded.map_err(|e| {
            tracing::warn!(uri, error = %e, "bot prompt unusable");
            result(500, 8511, &format!("Prompt failed: {e}"))
        })?;
        self.play(samples, 1)
            .await
            .map_err(|i| self.interrupted_outcome(i))
    }

    fn interrupted_outcome(&self, _why: Interrupt) -> ResultInfo {
        if self.hung_up() {
            result(410, 8528, "Call hung up")
        } else {
            result(400, 8508, "Operation canceled")
        }
    }

    async fn record_response(&mut self, id: &str, request: &RecordResponse) {
        if let Some(uri) = &request.prompt_uri {
            if let Err(outcome) = self.play_uri(uri).await {
                self.finish_operation(id, "failed", outcome, None);
                return self.flush_notifications();
            }
        }
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
            source: RECORDING_SOURCE,
        };
        let Some(captured) = self.capture(&verb, &options).await else {
            self.finish_operation(id, "failed", result(400, 8508, "Operation canceled"), None);
            return self.flush_notifications();
        };
        let sid = captured.result.recording_sid.clone();
        let heard = captured.samples > 0;
        let (status, info) = match captured.reason {
            StopReason::MaxLength => (
                "completed",
                result(200, 8515, "Action completed, max record duration reached"),
            ),
            StopReason::Silence => (
                "completed",
                result(200, 8509, "Action completed, silence detected after speech"),
            ),
            StopReason::FinishKey(_) => (
                "completed",
                result(200, 8514, "Action completed, stop tone detected"),
            ),
            StopReason::NoSpeech => (
                "failed",
                result(
                    400,
                    8510,
                    "Action failed, no speech before the initial silence timeout",
                ),
            ),
            StopReason::Hangup if self.rtp_timed_out && !heard => (
                "failed",
                result(500, 8513, "Action failed, no media received"),
            ),
            StopReason::Hangup if self.rtp_timed_out => {
                ("failed", result(500, 8588, "Action failed, media stopped"))
            }
            StopReason::Hangup => ("failed", result(410, 8528, "Action failed, call hung up")),
            StopReason::Redirected => (
                "failed",
                result(400, 8508, "Action failed, operation canceled"),
            ),
        };
        // The audio is kept even when the operation failed; the bot gets it if there is any.
        let recording = heard.then_some(sid);
        self.finish_operation(id, status, info, recording.as_deref());
        self.flush_notifications();
    }

    fn start_operation(&mut self, id: &str) {
        if let Some(mut op) = self.entry.operation(id) {
            op.status = "running".into();
            self.entry.put_operation(op);
        }
    }

    /// Records the outcome and queues its notification.
    fn finish_operation(
        &mut self,
        id: &str,
        status: &str,
        info: ResultInfo,
        recording_sid: Option<&str>,
    ) {
        let Some(mut op) = self.entry.operation(id) else {
            return;
        };
        op.status = status.into();
        op.result_info = Some(info);
        if let Some(sid) = recording_sid {
            let expires = chrono::Utc::now().timestamp()
                + self.shared.config.recording_token_ttl.as_secs() as i64;
            op.recording_location =
                Some(recording_location(&self.shared.config.http_public_url, sid));
            op.recording_access_token = Some(recording_access_token(
                &self.shared.bot_token_secret,
                sid,
                expires,
            ));
        }
        tracing::info!(operation = %op.id, kind = %op.kind, status = %op.status, result = ?op.result_info, "bot operation finished");
        self.entry.put_operation(op.clone());
        self.bot.pending.push_back(op);
    }

    fn flush_notifications(&mut self) {
        while let Some(op) = self.bot.pending.pop_front() {
            let resource = format!("/communications/calls/{}/operations/{}", op.call_id, op.id);
            self.notify(comms_notification(
                "deleted",
                &resource,
                operation_json(&op),
            ));
        }
    }

    /// Sends finished operations and heard tones to the bot now.
    pub(crate) fn flush_tones(&mut self) {
        self.flush_notifications();
        while let Some(key) = self.bot.tones.pop_front() {
            self.bot.tone_sequence += 1;
            let tone = match key {
                '*' => "tone*".to_string(),
                '#' => "tone#".to_string(),
                k => format!("tone{k}"),
            };
            let data = serde_json::json!({
                "@odata.type": "#microsoft.graph.call",
                "id": self.info.call_sid,
                "toneInfo": {"@odata.type": "#microsoft.graph.toneInfo", "tone": tone, "sequenceId": self.bot.tone_sequence},
            });
            let resource = format!("/communications/calls/{}", self.info.call_sid);
            self.notify(comms_notification("updated", &resource, data));
        }
    }

    pub(crate) fn notify_call_state(&mut self, state: &str) {
        if state == "terminated" {
            if self.bot.terminated_sent {
                return;
            }
            self.bot.terminated_sent = true;
        }
        let data = serde_json::json!({
            "@odata.type": "#microsoft.graph.call",
            "id": self.info.call_sid,
            "state": state,
            "source": {"identity": {"phone": {"id": self.info.from}}},
            "targets": [{"identity": {"phone": {"id": self.info.to}}}],
        });
        let change = if state == "terminated" {
            "deleted"
        } else {
            "updated"
        };
        let resource = format!("/communications/calls/{}", self.info.call_sid);
        self.notify(comms_notification(change, &resource, data));
    }

    /// Queues a notification to the bot (JSON POST). They leave in order, each retried a few
    /// times, and never hold up the call.
    fn notify(&mut self, body: serde_json::Value) {
        let Some(url) = self.app.bot_callback_uri.clone() else {
            return;
        };
        let notifier = self.bot.notifier.get_or_insert_with(|| {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
            let webhooks = self.shared.webhooks.clone();
            tokio::spawn(async move {
                while let Some(body) = rx.recv().await {
                    for attempt in 0..3u32 {
                        match webhooks.post_json(&url, &body).await {
                            Ok(()) => break,
                            Err(e) => {
                                tracing::warn!(url = %url, error = %e, attempt, "bot notification failed");
                                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt + 1))).await;
                            }
                        }
                    }
                }
            });
            tx
        });
        let _ = notifier.send(body);
    }
}

impl BotState {
    fn running(&self) -> Option<&str> {
        self.running.as_deref()
    }
}
