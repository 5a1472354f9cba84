//! A bot call's notifications (SPEC §7): the call core's [`BotEvent`]s become Graph
//! `commsNotifications` POSTed to the application's `bot_callback_uri`, in order, each retried a
//! few times, never holding up the call.

use std::sync::Arc;
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
    queue: Option<mpsc::Sender<serde_json::Value>>,
    metrics: Arc<http_api::Metrics>,
}

/// `hark_channel_overflow_total` label of a call's notification queue.
pub const CHANNEL_BOT_NOTIFICATIONS: &str = "bot_notifications";
/// A call makes a few notifications per operation; 256 waiting means the bot's endpoint has
/// stopped answering for minutes (each try waits for its timeout).
const QUEUE_CAPACITY: usize = 256;

impl BotNotifier {
    /// `token_secret` signs the recording access tokens handed to the bot.
    pub fn new(
        webhooks: &Webhooks,
        config: &Config,
        token_secret: &[u8],
        app: &AppConfig,
        (call_sid, from, to): (&str, &str, &str),
        metrics: Arc<http_api::Metrics>,
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
            metrics,
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
            let (tx, mut rx) = mpsc::channel::<serde_json::Value>(QUEUE_CAPACITY);
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
        // The call never waits for its bot: a full queue drops the notification, logged and
        // counted.
        if let Err(mpsc::error::TrySendError::Full(_)) = queue.try_send(body) {
            let n = self
                .metrics
                .channel_overflows
                .count(CHANNEL_BOT_NOTIFICATIONS);
            tracing::error!(
                call = %self.call_sid,
                overflows = n,
                capacity = QUEUE_CAPACITY,
                "bot notification queue full; notification dropped"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bot endpoint that accepts connections and never answers: notifications pile up in the
    /// call's queue, and the ones past its capacity are dropped and counted, not waited for.
    #[tokio::test]
    async fn a_bot_that_never_answers_fills_the_queue_and_overflow_is_counted() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (connected_tx, connected) = tokio::sync::oneshot::channel();
        let held = tokio::spawn(async move {
            let (first, _) = listener.accept().await.expect("accept");
            let _ = connected_tx.send(());
            let mut open = vec![first];
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let config = Config::load(None).expect("default config");
        let webhooks = Webhooks::new(
            String::new(),
            Duration::from_secs(5),
            Duration::from_secs(60),
            Arc::new(crate::egress::Egress::allow_all()),
        )
        .expect("client");
        let app = AppConfig {
            bot_callback_uri: Some(format!("http://{addr}/notify")),
            ..config.app.clone()
        };
        let metrics = Arc::new(http_api::Metrics::default());
        let mut notifier = BotNotifier::new(
            &webhooks,
            &config,
            b"secret",
            &app,
            ("CA00000000000000000000000000000001", "from", "to"),
            metrics.clone(),
        );
        let overflows = || metrics.channel_overflows.get(CHANNEL_BOT_NOTIFICATIONS);
        notifier.send(serde_json::json!({ "n": 0 }));
        // The sending task has taken the first notification and waits for its answer.
        tokio::time::timeout(Duration::from_secs(10), connected)
            .await
            .expect("the bot endpoint is dialled")
            .expect("accept loop");
        for i in 1..=QUEUE_CAPACITY {
            notifier.send(serde_json::json!({ "n": i }));
        }
        assert_eq!(overflows(), 0, "{QUEUE_CAPACITY} wait in the queue");
        for _ in 0..3 {
            notifier.send(serde_json::json!({ "n": "late" }));
        }
        assert_eq!(overflows(), 3);
        held.abort();
    }
}
