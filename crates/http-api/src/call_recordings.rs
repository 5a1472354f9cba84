//! Recording a live call (Twilio's Call Recordings resource):
//! `POST …/Calls/{CallSid}/Recordings.json` starts one (`RecordingChannels` mono|dual,
//! `RecordingTrack` inbound|outbound|both, `RecordingStatusCallback` + `Event`/`Method`,
//! `Trim`); `POST …/Calls/{CallSid}/Recordings/{Sid|Twilio.CURRENT}.json` with
//! `Status=paused|in-progress|stopped` (and `PauseBehavior=skip|silence`) changes it.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use control::recording_control::{LiveRecordingRequest, RecordingChange};
use control::twiml::RecordingTrack;
use store::{
    CallSid, HttpMethod, RecordingRecord, RecordingSid, RecordingSource, RecordingStatus,
    StatusCallbackSpec,
};

use crate::call_update::{read_form, CODE_CALL_STATE};
use crate::control::ControlError;
use crate::error::{ApiError, CODE_INVALID_PARAM};
use crate::graph_body::is_http_url;
use crate::resources::recording_json;
use crate::rest::{db, json};
use crate::Inner;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, CODE_INVALID_PARAM, message)
}

/// The form fields, last one winning, empty ones absent.
fn fields(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.trim().to_string()))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

fn field<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `POST …/Calls/{CallSid}/Recordings.json`'s form, validated (the SID is minted here).
pub fn parse_start(body: &[u8]) -> Result<LiveRecordingRequest, ApiError> {
    let f = fields(body);
    let dual = match field(&f, "RecordingChannels")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("mono") => false,
        Some("dual") => true,
        Some(other) => {
            return Err(invalid(format!(
                "RecordingChannels must be mono or dual, got {other:?}"
            )))
        }
    };
    let track = match field(&f, "RecordingTrack") {
        None => RecordingTrack::Both,
        Some(t) => RecordingTrack::parse(t).ok_or_else(|| {
            invalid(format!(
                "RecordingTrack must be inbound, outbound or both, got {t:?}"
            ))
        })?,
    };
    let trim = match field(&f, "Trim") {
        None | Some("do-not-trim") => false,
        Some("trim-silence") => true,
        Some(other) => {
            return Err(invalid(format!(
                "Trim must be trim-silence or do-not-trim, got {other:?}"
            )))
        }
    };
    let status_callback = match field(&f, "RecordingStatusCallback") {
        None => None,
        Some(url) if !is_http_url(url) => {
            return Err(invalid(format!(
                "RecordingStatusCallback is not a valid URL: {url}"
            )))
        }
        Some(url) => {
            let method = match field(&f, "RecordingStatusCallbackMethod") {
                None => HttpMethod::Post,
                Some(m) => m.parse().map_err(|_| {
                    invalid(format!(
                        "RecordingStatusCallbackMethod must be GET or POST, got {m:?}"
                    ))
                })?,
            };
            // Twilio's default is `completed`; the events may be repeated or space-separated.
            let events: Vec<String> = f
                .iter()
                .filter(|(k, _)| k == "RecordingStatusCallbackEvent")
                .flat_map(|(_, v)| v.split([' ', ',']).map(str::to_string).collect::<Vec<_>>())
                .filter(|e| !e.is_empty())
                .collect();
            for e in &events {
                if !["in-progress", "completed", "absent"].contains(&e.as_str()) {
                    return Err(invalid(format!(
                        "RecordingStatusCallbackEvent {e:?} is not in-progress, completed or absent"
                    )));
                }
            }
            let has = |e: &str| events.iter().any(|x| x == e);
            Some(StatusCallbackSpec {
                url: url.to_string(),
                method,
                in_progress: has("in-progress"),
                completed: events.is_empty() || has("completed"),
                absent: has("absent"),
            })
        }
    };
    Ok(LiveRecordingRequest {
        sid: RecordingSid::new_random(),
        dual,
        track,
        status_callback,
        trim,
    })
}

/// `Status` (+ `PauseBehavior`) of a change.
pub fn parse_change(body: &[u8]) -> Result<RecordingChange, ApiError> {
    let f = fields(body);
    let silence = match field(&f, "PauseBehavior") {
        None | Some("silence") => true,
        Some("skip") => false,
        Some(other) => {
            return Err(invalid(format!(
                "PauseBehavior must be skip or silence, got {other:?}"
            )))
        }
    };
    match field(&f, "Status") {
        Some("paused") => Ok(RecordingChange::Pause { silence }),
        Some("in-progress") => Ok(RecordingChange::Resume),
        Some("stopped") => Ok(RecordingChange::Stop),
        Some(other) => Err(invalid(format!(
            "Status must be paused, in-progress or stopped, got {other:?}"
        ))),
        None => Err(invalid("Status is required")),
    }
}

fn not_in_progress() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        CODE_CALL_STATE,
        "Requested resource is not eligible for recording: the call is not in progress",
    )
}

pub async fn start(inner: &Inner, call_sid: &CallSid, body: Body) -> Result<Response, ApiError> {
    let Some(bot) = inner.api.bot.as_ref() else {
        return Err(ApiError::not_found(call_sid.as_str()));
    };
    let request = parse_start(&read_form(body).await?)?;
    let (account, owned) = (inner.api.account_sid.clone(), call_sid.clone());
    if db(inner, move |s| s.get_call(&account, &owned))
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(call_sid.as_str()));
    }
    let now = chrono::Utc::now().timestamp_millis();
    let row = RecordingRecord {
        sid: request.sid.clone(),
        account_sid: inner.api.account_sid.clone(),
        call_sid: call_sid.clone(),
        status: RecordingStatus::InProgress,
        source: RecordingSource::StartCallRecordingApi,
        channels: if request.dual && request.track == RecordingTrack::Both {
            2
        } else {
            1
        },
        sample_rate: 8000,
        date_created_ms: now,
        date_updated_ms: now,
        start_time_ms: now,
        duration_secs: None,
        error_code: None,
        media_file: format!("{}.wav", request.sid),
        transcribe: false,
        transcribe_callback: None,
        status_callback: request.status_callback.clone(),
        deleted_at_ms: None,
    };
    match bot
        .control
        .start_recording(call_sid.as_str(), request)
        .await
    {
        Ok(()) => Ok(json(
            StatusCode::CREATED,
            &recording_json(&row, &inner.api.public_url),
        )),
        Err(ControlError::UnknownCall) => Err(not_in_progress()),
        Err(ControlError::Conflict(msg)) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, CODE_CALL_STATE, msg))
        }
    }
}

pub async fn change(
    inner: &Inner,
    call_sid: &CallSid,
    sid: Option<RecordingSid>,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(bot) = inner.api.bot.as_ref() else {
        return Err(ApiError::not_found(call_sid.as_str()));
    };
    let change = parse_change(&read_form(body).await?)?;
    let (account, owned_call) = (inner.api.account_sid.clone(), call_sid.clone());
    let row = match &sid {
        Some(sid) => {
            let owned = sid.clone();
            db(inner, move |s| s.get_recording(&account, &owned, false))
                .await?
                .filter(|r| r.call_sid == *call_sid)
        }
        None => db(inner, move |s| s.current_recording(&account, &owned_call)).await?,
    };
    let what = sid.as_ref().map_or("Twilio.CURRENT", |s| s.as_str());
    let Some(mut row) = row else {
        return Err(ApiError::not_found(what));
    };
    // A `<Record>` verb's (or a bot's) capture ends with its verb; only recordings started over
    // the API or by `<Dial record>` are paused, resumed or stopped here.
    if matches!(
        row.source,
        store::RecordingSource::RecordVerb | store::RecordingSource::RecordResponse
    ) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            CODE_CALL_STATE,
            format!(
                "Recording {} is a <Record> verb's ({}) and cannot be paused, resumed or stopped over the API",
                row.sid,
                row.source.as_str()
            ),
        ));
    }
    if !row.status.is_unfinished() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            CODE_CALL_STATE,
            format!(
                "Recording {} is {} and cannot be changed",
                row.sid,
                row.status.as_str()
            ),
        ));
    }
    match bot
        .control
        .change_recording(call_sid.as_str(), row.sid.clone(), change)
        .await
    {
        Ok(()) => {}
        Err(ControlError::UnknownCall) => return Err(not_in_progress()),
        Err(ControlError::Conflict(msg)) => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, CODE_CALL_STATE, msg))
        }
    }
    row.status = match change {
        RecordingChange::Pause { .. } => RecordingStatus::Paused,
        RecordingChange::Resume => RecordingStatus::InProgress,
        RecordingChange::Stop => RecordingStatus::Stopped,
    };
    Ok(json(
        StatusCode::OK,
        &recording_json(&row, &inner.api.public_url),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_form_defaults_and_values() {
        let r = parse_start(b"").unwrap();
        assert!(!r.dual && !r.trim);
        assert_eq!(r.track, RecordingTrack::Both);
        assert!(r.status_callback.is_none());
        assert!(r.sid.as_str().starts_with("RE"));
        let r = parse_start(
            b"RecordingChannels=dual&RecordingTrack=inbound&Trim=trim-silence&RecordingStatusCallback=http%3A%2F%2Fa%2Fb&RecordingStatusCallbackEvent=in-progress+completed",
        )
        .unwrap();
        assert!(r.dual && r.trim);
        assert_eq!(r.track, RecordingTrack::Inbound);
        let cb = r.status_callback.unwrap();
        assert!(cb.in_progress && cb.completed && !cb.absent);
        assert!(parse_start(b"RecordingChannels=quad").is_err());
        assert!(parse_start(b"RecordingStatusCallback=ftp%3A%2F%2Fx").is_err());
        assert!(parse_start(
            b"RecordingStatusCallback=http%3A%2F%2Fa&RecordingStatusCallbackEvent=done"
        )
        .is_err());
    }

    #[test]
    fn change_form() {
        assert_eq!(
            parse_change(b"Status=paused").unwrap(),
            RecordingChange::Pause { silence: true }
        );
        assert_eq!(
            parse_change(b"Status=paused&PauseBehavior=skip").unwrap(),
            RecordingChange::Pause { silence: false }
        );
        assert_eq!(
            parse_change(b"Status=in-progress").unwrap(),
            RecordingChange::Resume
        );
        assert_eq!(
            parse_change(b"Status=stopped").unwrap(),
            RecordingChange::Stop
        );
        assert!(parse_change(b"").is_err());
        assert!(parse_change(b"Status=completed").is_err());
        assert!(parse_change(b"Status=paused&PauseBehavior=later").is_err());
    }
}
