//! A bot call's notifications (SPEC §7): the call core's [`BotEvent`]s become Graph
//! `commsNotifications` POSTed to the application's `bot_callback_uri`, in order, each retried a
//! few times, never holding up the call.

use std::time::Duration;

use call_core::{BotEvent, OperationStatus};
use http_api::control::{
    comms_notification, operation_json, recording_access_token, recording_location, CallState,
};
use tokio::sync::mpsc;

use crate::config::{AppConfig, Config};
use crate::live::CallEntry;
use crate::webhook::Webhooks;

pub struct BotNotifier {
    url: Option<String>,
    webhooks: Webhooks,
    public_url: String,
    token_secret: Vec<u8>,
    token_ttl: Duration,
    call_sid: String,
    from: String,
    to: String,
    /// Notifications leave through one task per call, so the bot sees them in order.
    queue: Option<mpsc::UnboundedSender<serde_json::Value>>,
}

impl BotNotifier {
    /// `token_secret` signs the recording access tokens handed to the bot.
    pub fn new(
        webhooks: &Webhooks,
        config: &Config,
        token_secret: &[u8],
        app: &AppConfig,
        (call_sid, from, to): (&str, &str, &str),
    ) -> Self {
        BotNotifier {
            url: app.bot_callback_uri.clone(),
            webhooks: webhooks.clone(),
            public_url: config.http_public_url.clone(),
            token_secret: token_secret.to_vec(),
            token_ttl: config.recording_token_ttl,
            call_sid: call_sid.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            queue: None,
        }
    }

    /// Updates the call's operations in the API's view and notifies the bot.
    pub fn event(&mut self, event: BotEvent, entry: &CallEntry) {
        let call = format!("/communications/calls/{}", self.call_sid);
        let body = match event {
            BotEvent::CallState(state) => {
                let data = serde_json::json!({
                    "@odata.type": "#microsoft.graph.call",
                    "id": self.call_sid,
                    "state": state.as_str(),
                    "source": {"identity": {"phone": {"id": self.from}}},
                    "targets": [{"identity": {"phone": {"id": self.to}}}],
                });
                let change = if state == CallState::Terminated {
                    "deleted"
                } else {
                    "updated"
                };
                comms_notification(change, &call, data)
            }
            BotEvent::Tone { key, sequence } => {
                let data = serde_json::json!({
                    "@odata.type": "#microsoft.graph.call",
                    "id": self.call_sid,
                    "toneInfo": {"@odata.type": "#microsoft.graph.toneInfo", "tone": format!("tone{key}"), "sequenceId": sequence},
                });
                comms_notification("updated", &call, data)
            }
            BotEvent::Operation {
                id,
                status,
                result,
                recording_sid,
            } => {
                let Some(mut op) = entry.operation(&id) else {
                    return;
                };
                op.status = status;
                if status == OperationStatus::Running {
                    return entry.put_operation(op);
                }
                op.result_info = result;
                if let Some(sid) = recording_sid {
                    let expires = chrono::Utc::now().timestamp() + self.token_ttl.as_secs() as i64;
                    op.recording_location =
                        Some(recording_location(&self.public_url, sid.as_str()));
                    op.recording_access_token = Some(recording_access_token(
                        &self.token_secret,
                        sid.as_str(),
                        expires,
                    ));
                }
                entry.put_operation(op.clone());
                let resource = format!("{call}/operations/{}", op.id);
                comms_notification("deleted", &resource, operation_json(&op))
            }
        };
        self.send(body);
    }

    fn send(&mut self, body: serde_json::Value) {
        let Some(url) = self.url.clone() else {
            return;
        };
        let webhooks = self.webhooks.clone();
        let queue = self.queue.get_or_insert_with(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<serde_json::Value>();
            tokio::spawn(async move {
                while let Some(body) = rx.recv().await {
                    for attempt in 0..3u32 {
                        match webhooks.post_json(&url, &body).await {
                            Ok(()) => break,
                            Err(e) => {
                                tracing::warn!(url = %url, error = %e, attempt, "bot notification failed");
                                let pause = Duration::from_millis(500 * u64::from(attempt + 1));
                                tokio::time::sleep(pause).await;
                            }
                        }
                    }
                }
            });
            tx
        });
        let _ = queue.send(body);
    }
}
