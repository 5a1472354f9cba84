//! Call progress events to the application's `status_callback` (`initiated`, `ringing`,
//! `answered`, `completed`), through the outbox: ordered per call, retried, signed.

use control::params::standard_params;
use control::{CallInfo, CallStatus, HttpMethod};

use crate::config::AppConfig;
use crate::outbox::Outbox;
use crate::sids::rfc2822_now;

pub struct Progress {
    outbox: Outbox,
    url: Option<String>,
    method: HttpMethod,
    sequence: u32,
}

impl Progress {
    pub fn new(outbox: Outbox, app: &AppConfig) -> Self {
        Self {
            outbox,
            url: app.status_callback.clone(),
            method: app.status_callback_method,
            sequence: 0,
        }
    }

    /// `initiated`, `ringing`, `answered` (or `failed` when the call could not be set up).
    pub async fn send(&mut self, event: &str, info: &CallInfo) {
        let status = match event {
            "answered" => "in-progress",
            other => other,
        };
        self.post(event, status, info, None).await;
    }

    /// The `completed` event, with the call's final status (`completed`, `busy`, `no-answer`,
    /// `canceled`, `failed`).
    pub async fn send_final(&mut self, status: &str, info: &CallInfo, duration: Option<u64>) {
        self.post("completed", status, info, duration).await;
    }

    async fn post(&mut self, event: &str, status: &str, info: &CallInfo, duration: Option<u64>) {
        let Some(url) = self.url.clone() else { return };
        let mut params = standard_params(info, CallStatus::Ringing);
        for (name, value) in params.iter_mut() {
            if name == "CallStatus" {
                *value = status.to_string();
            }
        }
        params.push(("CallbackSource".into(), "call-progress-events".into()));
        params.push(("SequenceNumber".into(), self.sequence.to_string()));
        params.push(("Timestamp".into(), rfc2822_now()));
        if event == "completed" {
            params.push(("CallDuration".into(), duration.unwrap_or(0).to_string()));
        }
        self.sequence += 1;
        tracing::debug!(event, status, url = %url, "call progress");
        self.outbox
            .enqueue(&info.call_sid, &url, self.method, params)
            .await;
    }
}
