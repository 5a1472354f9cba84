//! Webhook parameters and status mappings of a call, defined once.

use control::params::standard_params;
use control::{CallInfo, CallStatus};
use store::{CallRecord, RecordingRecord, RecordingStatus};

/// RFC 2822 time as Twilio writes it: `Fri, 14 Oct 2016 21:56:34 +0000`.
pub fn rfc2822(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

/// Recording status callback parameters (SPEC §3.6).
pub fn status_params(
    row: &RecordingRecord,
    status: RecordingStatus,
    url: &str,
) -> Vec<(String, String)> {
    let duration = match status {
        RecordingStatus::Completed => row.duration_secs.unwrap_or(0).to_string(),
        _ => "0".to_string(),
    };
    vec![
        ("AccountSid".into(), row.account_sid.to_string()),
        ("CallSid".into(), row.call_sid.to_string()),
        ("RecordingSid".into(), row.sid.to_string()),
        ("RecordingUrl".into(), url.to_string()),
        ("RecordingStatus".into(), status.as_str().into()),
        ("RecordingDuration".into(), duration),
        ("RecordingChannels".into(), row.channels.to_string()),
        // Not Twilio's: 16000 for a wideband (Opus) recording, else 8000.
        ("RecordingSampleRate".into(), row.sample_rate.to_string()),
        ("RecordingSource".into(), row.source.as_str().into()),
        ("RecordingStartTime".into(), rfc2822(row.start_time_ms)),
        ("ErrorCode".into(), row.error_code.unwrap_or(0).to_string()),
    ]
}

/// A call progress event (`statusCallbackEvent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressEvent {
    Initiated,
    Ringing,
    Answered,
    /// With the call's final status.
    Completed(CallStatus),
}

impl ProgressEvent {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProgressEvent::Initiated => "initiated",
            ProgressEvent::Ringing => "ringing",
            ProgressEvent::Answered => "answered",
            ProgressEvent::Completed(_) => "completed",
        }
    }

    /// The `CallStatus` sent with it: `initiated` (Twilio's progress-only status),
    /// `ringing`, `in-progress`, or the final status.
    pub fn call_status(&self) -> &'static str {
        match self {
            ProgressEvent::Initiated => "initiated",
            ProgressEvent::Ringing => CallStatus::Ringing.as_str(),
            ProgressEvent::Answered => CallStatus::InProgress.as_str(),
            ProgressEvent::Completed(status) => status.as_str(),
        }
    }
}

/// A call progress event's parameters; `CallDuration` (from `duration_secs`) with
/// [`ProgressEvent::Completed`].
pub fn progress_params(
    info: &CallInfo,
    event: ProgressEvent,
    sequence: u32,
    unix_ms: i64,
    duration_secs: Option<u64>,
) -> Vec<(String, String)> {
    let mut params = standard_params(info, CallStatus::Ringing);
    for (name, value) in params.iter_mut() {
        if name == "CallStatus" {
            *value = event.call_status().to_string();
        }
    }
    params.push(("CallbackSource".into(), "call-progress-events".into()));
    params.push(("SequenceNumber".into(), sequence.to_string()));
    params.push(("Timestamp".into(), rfc2822(unix_ms)));
    if let ProgressEvent::Completed(_) = event {
        params.push((
            "CallDuration".into(),
            duration_secs.unwrap_or(0).to_string(),
        ));
    }
    params
}

/// The call's final status: the final answer we sent instead of answering, else whether the
/// caller gave up before answer.
pub fn final_status(rejected_with: Option<u16>, answered: bool, remote_ended: bool) -> CallStatus {
    match rejected_with {
        None if !answered && remote_ended => CallStatus::Canceled,
        None => CallStatus::Completed,
        Some(486) | Some(600) => CallStatus::Busy,
        Some(487) => CallStatus::Canceled,
        Some(603) | Some(480) => CallStatus::NoAnswer,
        Some(_) => CallStatus::Failed,
    }
}

/// A new call's row (ringing), created at `unix_ms`.
pub fn new_call_row(info: &CallInfo, unix_ms: i64) -> CallRecord {
    CallRecord {
        sid: info.call_sid.clone(),
        account_sid: info.account_sid.clone(),
        from: info.from.clone(),
        to: info.to.clone(),
        direction: info.direction,
        status: CallStatus::Ringing,
        date_created_ms: unix_ms,
        date_updated_ms: unix_ms,
        start_time_ms: None,
        end_time_ms: None,
        duration_secs: None,
        parent_call_sid: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2822_of_unix_ms() {
        assert_eq!(
            rfc2822(1_476_482_194_000),
            "Fri, 14 Oct 2016 21:56:34 +0000"
        );
    }

    #[test]
    fn final_status_of_rejections_and_cancels() {
        assert_eq!(final_status(None, true, true), CallStatus::Completed);
        assert_eq!(final_status(None, false, true), CallStatus::Canceled);
        assert_eq!(final_status(Some(486), false, false), CallStatus::Busy);
        assert_eq!(final_status(Some(603), false, false), CallStatus::NoAnswer);
        assert_eq!(final_status(Some(500), false, false), CallStatus::Failed);
        assert_eq!(final_status(Some(487), false, false), CallStatus::Canceled);
    }
}
