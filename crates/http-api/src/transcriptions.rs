//! The Transcription resource (SPEC §6.4): lists, fetch (JSON or plain text), DELETE.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use store::{RecordingSid, TranscriptionRecord, TranscriptionSid, TranscriptionStatus};

use crate::error::ApiError;
use crate::paging::{ListKind, ListQuery};
use crate::resources::transcription_json;
use crate::rest::{db, json};
use crate::Inner;

/// `Transcriptions.json`, or `Recordings/{RE}/Transcriptions.json` with `recording_sid`
/// (an unknown recording lists nothing, as `Calls/{CA}/Recordings.json` does).
pub async fn list(
    inner: &Inner,
    path: &str,
    query: Option<&str>,
    recording_sid: Option<RecordingSid>,
) -> Result<Response, ApiError> {
    let kind = match recording_sid {
        Some(_) => ListKind::RecordingTranscriptions,
        None => ListKind::Transcriptions,
    };
    let q = ListQuery::parse(query, kind)?;
    let account = inner.api.account_sid.clone();
    let (size, n, after) = (q.page_size, q.page, q.after.clone());
    let page = db(inner, move |s| match &after {
        Some((ms, sid)) => {
            s.list_transcriptions(&account, recording_sid.as_ref(), size, Some((*ms, sid)))
        }
        None => s.list_transcriptions_page(&account, recording_sid.as_ref(), size, n),
    })
    .await?;
    let next = page.has_more.then(|| {
        let last = page.items.last();
        q.next_token(last.map(|t| (t.date_created_ms, t.sid.as_str())))
    });
    let items = page.items.iter().map(transcription_json).collect();
    let body = q.envelope(path, "transcriptions", items, next);
    Ok(json(StatusCode::OK, &body))
}

/// The transcription, if it exists and belongs to `recording_sid` when one is given.
async fn find(
    inner: &Inner,
    sid: &TranscriptionSid,
    recording_sid: Option<&RecordingSid>,
) -> Result<TranscriptionRecord, ApiError> {
    let (account, owned) = (inner.api.account_sid.clone(), sid.clone());
    let found = db(inner, move |s| s.get_transcription(&account, &owned)).await?;
    match found {
        Some(t) if recording_sid.is_none_or(|r| *r == t.recording_sid) => Ok(t),
        _ => Err(ApiError::not_found(sid.as_str())),
    }
}

/// JSON, or with `text` the transcript alone as `text/plain` — 404 until it is completed.
pub async fn fetch(
    inner: &Inner,
    sid: &TranscriptionSid,
    recording_sid: Option<&RecordingSid>,
    text: bool,
) -> Result<Response, ApiError> {
    let t = find(inner, sid, recording_sid).await?;
    if !text {
        return Ok(json(StatusCode::OK, &transcription_json(&t)));
    }
    if t.status != TranscriptionStatus::Completed {
        return Err(ApiError::not_found(sid.as_str()));
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        t.text.unwrap_or_default(),
    )
        .into_response())
}

/// Deletes the transcription and its utterances for good (Twilio: DELETE → 204). A job
/// still running finds its row gone and its result is dropped.
pub async fn delete(
    inner: &Inner,
    sid: &TranscriptionSid,
    recording_sid: Option<&RecordingSid>,
) -> Result<Response, ApiError> {
    find(inner, sid, recording_sid).await?;
    let (account, owned) = (inner.api.account_sid.clone(), sid.clone());
    if !db(inner, move |s| s.delete_transcription(&account, &owned)).await? {
        return Err(ApiError::not_found(sid.as_str()));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
