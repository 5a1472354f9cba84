//! Recording a live call over the REST API (Twilio's `Calls/{CallSid}/Recordings`): what the
//! API asks of the call.

use store::{RecordingSid, StatusCallbackSpec};

use crate::twiml::RecordingTrack;

/// `POST …/Calls/{CallSid}/Recordings.json`: start recording the call now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRecordingRequest {
    /// Minted by the API, which answers with it at once.
    pub sid: RecordingSid,
    /// `RecordingChannels=dual`: the caller and the other party on channels 1 and 2.
    pub dual: bool,
    pub track: RecordingTrack,
    pub status_callback: Option<StatusCallbackSpec>,
    /// `Trim=trim-silence`.
    pub trim: bool,
}

/// `POST …/Calls/{CallSid}/Recordings/{Sid}.json` with `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingChange {
    /// `paused`; `silence` (`PauseBehavior=silence`, Twilio's default) keeps the paused time as
    /// silence, else (`skip`) it is left out.
    Pause { silence: bool },
    /// `in-progress`.
    Resume,
    /// `stopped`: the recording is finished now.
    Stop,
}
