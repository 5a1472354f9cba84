//! The `/2010-04-01` handlers: authentication first, then the route (SPEC §6).

use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use store::{CallSid, Page, RecordingSid, Store, StoreError};

use crate::console::CookieAuth;
use crate::error::ApiError;
use crate::media::{serve_file, serve_object, ServeError};
use crate::mp3::Mp3Failure;
use crate::paging::{ListKind, ListQuery};
use crate::resources::{call_json, recording_json};
use crate::route::{self, Format, Route};
use crate::{auth, call_update, transcriptions, Inner, MediaAuth, Metrics};

pub async fn dispatch(
    inner: &Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let mut response = match handle(inner, method, uri, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    // A console page's answer (cookie, no Authorization): never kept by a shared cache.
    if !headers.contains_key(header::AUTHORIZATION) && headers.contains_key(header::COOKIE) {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("private, no-store"),
        );
    }
    response
}

async fn handle(
    inner: &Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let api = &inner.api;
    let path = uri.path();
    let (path_account, route) = route::parse(path);
    let mut by_cookie = false;
    // Nothing below may run for an unauthenticated client, so that no answer depends on
    // whether a SID exists.
    if route.is_media() && api.media_auth == MediaAuth::None {
        if path_account != Some(api.account_sid.as_str()) {
            return Err(ApiError::not_found(path));
        }
    } else {
        let basic = auth::authenticated(
            headers,
            api.account_sid.as_str(),
            &api.auth_token,
            &api.api_keys,
        );
        // The console's session cookie authenticates too; its state changes need the
        // session's CSRF token.
        if !basic {
            match inner.console.cookie_auth(headers, method) {
                CookieAuth::Ok(_) => by_cookie = true,
                CookieAuth::CsrfRefused => return Ok(crate::console::csrf_refused()),
                CookieAuth::None => return Err(ApiError::unauthorized()),
            }
        }
        match path_account {
            Some(a) if api.account_sid == a => {}
            Some(_) => return Err(ApiError::forbidden()),
            None => return Err(ApiError::not_found(path)),
        }
    }
    let read = *method == Method::GET || *method == Method::HEAD;
    let delete = *method == Method::DELETE;
    let query = uri.query();
    let mut body = body;
    if *method == Method::POST {
        if let Some(call_sid) = route.live_call() {
            let bytes = call_update::read_form(body).await?;
            // Another node knows no console session of ours: forward with the account's
            // credentials instead.
            let forwarded_headers;
            let headers = if by_cookie {
                forwarded_headers = with_account_credentials(headers, api);
                &forwarded_headers
            } else {
                headers
            };
            if let Some(answer) = elsewhere(inner, call_sid, method, uri, headers, &bytes).await {
                return Ok(answer);
            }
            body = Body::from(bytes);
        }
    }
    match route {
        Route::Unknown => Err(ApiError::not_found(path)),
        // Live call update (issue 6); without call control it does not exist.
        Route::Call { sid } if *method == Method::POST => {
            call_update::update(inner, &sid, body).await
        }
        Route::CallList if *method == Method::POST => crate::call_create::create(inner, body).await,
        Route::CallRecordingList { call_sid } if *method == Method::POST => {
            crate::call_recordings::start(inner, &call_sid, body).await
        }
        Route::CallRecording { call_sid, sid } if *method == Method::POST => {
            crate::call_recordings::change(inner, &call_sid, Some(sid), body).await
        }
        Route::CallRecordingCurrent { call_sid } if *method == Method::POST => {
            crate::call_recordings::change(inner, &call_sid, None, body).await
        }
        Route::CallRecordingCurrent { .. } => Err(ApiError::method_not_allowed("POST")),
        _ if !(read || delete && route.deletable()) => {
            Err(ApiError::method_not_allowed(if route.deletable() {
                "GET, HEAD, DELETE"
            } else if matches!(route, Route::Call { .. } | Route::CallList)
                && inner.api.bot.is_some()
            {
                "GET, HEAD, POST"
            } else {
                "GET, HEAD"
            }))
        }
        Route::RecordingList => list_recordings(inner, path, query, None).await,
        Route::CallRecordingList { call_sid } => {
            list_recordings(inner, path, query, Some(call_sid)).await
        }
        Route::Recording {
            sid,
            format: Format::Json,
        } if delete => delete_recording(inner, &sid, None).await,
        Route::CallRecording { call_sid, sid } if delete => {
            delete_recording(inner, &sid, Some(&call_sid)).await
        }
        Route::Recording {
            sid,
            format: Format::Json,
        } => fetch_recording(inner, &sid, None, include_soft_deleted(query)?).await,
        Route::CallRecording { call_sid, sid } => {
            fetch_recording(inner, &sid, Some(&call_sid), include_soft_deleted(query)?).await
        }
        Route::Recording { sid, format } => media(inner, &sid, format, headers).await,
        Route::CallList => list_calls(inner, path, query).await,
        Route::Call { sid } => fetch_call(inner, &sid).await,
        Route::TranscriptionList => transcriptions::list(inner, path, query, None).await,
        Route::RecordingTranscriptionList { recording_sid } => {
            transcriptions::list(inner, path, query, Some(recording_sid)).await
        }
        Route::Transcription { sid, text: false } if delete => {
            transcriptions::delete(inner, &sid, None).await
        }
        Route::RecordingTranscription { recording_sid, sid } if delete => {
            transcriptions::delete(inner, &sid, Some(&recording_sid)).await
        }
        Route::Transcription { sid, text } => transcriptions::fetch(inner, &sid, None, text).await,
        Route::RecordingTranscription { recording_sid, sid } => {
            transcriptions::fetch(inner, &sid, Some(&recording_sid), false).await
        }
    }
}

impl Route {
    fn deletable(&self) -> bool {
        matches!(
            self,
            Route::Recording {
                format: Format::Json,
                ..
            } | Route::CallRecording { .. }
                | Route::Transcription { text: false, .. }
                | Route::RecordingTranscription { .. }
        )
    }
}

pub(crate) fn json(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// Runs a store call on a blocking thread; failures count as DB errors and answer 500.
pub(crate) async fn db<T, F>(inner: &Inner, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
{
    let store = inner.api.store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            Metrics::add(&inner.api.metrics.db_errors, 1);
            tracing::error!(error = %e, "API store call failed");
            Err(ApiError::internal("database error"))
        }
        Err(e) => {
            tracing::error!(error = %e, "API store task failed");
            Err(ApiError::internal("database task failed"))
        }
    }
}

fn include_soft_deleted(query: Option<&str>) -> Result<bool, ApiError> {
    let mut include = false;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == "IncludeSoftDeleted" {
            include = match v.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ApiError::invalid_param(
                        "IncludeSoftDeleted",
                        "must be true or false",
                    ))
                }
            };
        }
    }
    Ok(include)
}

async fn list_recordings(
    inner: &Inner,
    path: &str,
    query: Option<&str>,
    call_sid: Option<CallSid>,
) -> Result<Response, ApiError> {
    let kind = match call_sid {
        Some(_) => ListKind::CallRecordings,
        None => ListKind::Recordings,
    };
    let q = ListQuery::parse(query, kind)?;
    let mut filter = q.filter.clone();
    if let Some(c) = call_sid {
        filter.call_sid = Some(c);
    }
    let page = if q.matches_nothing {
        Page {
            items: Vec::new(),
            has_more: false,
        }
    } else {
        let account = inner.api.account_sid.clone();
        let (size, n, after) = (q.page_size, q.page, q.after.clone());
        db(inner, move |s| match &after {
            Some((ms, sid)) => s.list_recordings_after(&account, &filter, size, Some((*ms, sid))),
            None => s.list_recordings(&account, &filter, size, n),
        })
        .await?
    };
    let next = page.has_more.then(|| {
        let last = page.items.last();
        q.next_token(last.map(|r| (r.date_created_ms, r.sid.as_str())))
    });
    let items = page
        .items
        .iter()
        .map(|r| recording_json(r, &inner.api.public_url))
        .collect();
    let body = q.envelope(path, "recordings", items, next);
    Ok(json(StatusCode::OK, &body))
}

async fn list_calls(inner: &Inner, path: &str, query: Option<&str>) -> Result<Response, ApiError> {
    let q = ListQuery::parse(query, ListKind::Calls)?;
    let account = inner.api.account_sid.clone();
    let (size, n, after) = (q.page_size, q.page, q.after.clone());
    let filter = store::CallFilter {
        parent: q.parent_call_sid.clone(),
        from: q.call_from.clone(),
        to: q.call_to.clone(),
        status: q.call_status,
        created_on_or_after_ms: q.filter.created_on_or_after_ms,
        created_before_ms: q.filter.created_before_ms,
    };
    let page = if q.matches_nothing {
        store::Page {
            items: Vec::new(),
            has_more: false,
        }
    } else {
        db(inner, move |s| {
            let after = after.as_ref().map(|(ms, sid)| (*ms, sid.as_str()));
            s.list_calls_filtered(&account, &filter, size, n, after)
        })
        .await?
    };
    let next = page.has_more.then(|| {
        let last = page.items.last();
        q.next_token(last.map(|c| (c.date_created_ms, c.sid.as_str())))
    });
    let items = page.items.iter().map(call_json).collect();
    let body = q.envelope(path, "calls", items, next);
    Ok(json(StatusCode::OK, &body))
}

async fn fetch_call(inner: &Inner, sid: &CallSid) -> Result<Response, ApiError> {
    let (account, owned) = (inner.api.account_sid.clone(), sid.clone());
    match db(inner, move |s| s.get_call(&account, &owned)).await? {
        Some(c) => Ok(json(StatusCode::OK, &call_json(&c))),
        None => Err(ApiError::not_found(sid.as_str())),
    }
}

/// The recording, if it exists, is visible, and belongs to `call_sid` when one is given.
pub(crate) async fn find_recording(
    inner: &Inner,
    sid: &RecordingSid,
    call_sid: Option<&CallSid>,
    include_deleted: bool,
) -> Result<store::RecordingRecord, ApiError> {
    let (account, owned) = (inner.api.account_sid.clone(), sid.clone());
    let rec = db(inner, move |s| {
        s.get_recording(&account, &owned, include_deleted)
    })
    .await?;
    match rec {
        Some(r) if call_sid.is_none_or(|c| *c == r.call_sid) => Ok(r),
        _ => Err(ApiError::not_found(sid.as_str())),
    }
}

async fn fetch_recording(
    inner: &Inner,
    sid: &RecordingSid,
    call_sid: Option<&CallSid>,
    include_deleted: bool,
) -> Result<Response, ApiError> {
    let rec = find_recording(inner, sid, call_sid, include_deleted).await?;
    Ok(json(
        StatusCode::OK,
        &recording_json(&rec, &inner.api.public_url),
    ))
}

/// Soft delete in the store, then the media files (SPEC §6.2: media goes immediately).
async fn delete_recording(
    inner: &Inner,
    sid: &RecordingSid,
    call_sid: Option<&CallSid>,
) -> Result<Response, ApiError> {
    let rec = find_recording(inner, sid, call_sid, false).await?;
    if !remove_recording(inner, &rec).await? {
        // Deleted by a concurrent request between the lookup and now.
        return Err(ApiError::not_found(sid.as_str()));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Deletes a recording as `DELETE` does (REST, retention, bot recordings discarded after the
/// call): metadata marked deleted, transcripts and media files removed. False when it was
/// already deleted.
pub(crate) async fn remove_recording(
    inner: &Inner,
    rec: &store::RecordingRecord,
) -> Result<bool, ApiError> {
    let (account, owned) = (rec.account_sid.clone(), rec.sid.clone());
    let now_ms = chrono::Utc::now().timestamp_millis();
    let deleted = db(inner, move |s| {
        s.soft_delete_recording(&account, &owned, now_ms)
    })
    .await?;
    if !deleted {
        return Ok(false);
    }
    // SPEC §9: deleting a recording removes its transcripts too.
    let (account, owned) = (rec.account_sid.clone(), rec.sid.clone());
    db(inner, move |s| {
        s.delete_transcriptions_of_recording(&account, &owned)
    })
    .await?;
    // An encode that already read the WAV would otherwise leave an orphan MP3 behind.
    inner.mp3.wait_idle(rec.sid.as_str()).await;
    if let Some(storage) = &inner.api.remote_media {
        if let Err(e) = storage.delete(&rec.media_file).await {
            tracing::error!(recording = %rec.sid, error = %e, "deleting recording media from object storage");
        }
    }
    if let Some((wav, mp3)) = media_paths(&inner.api.storage_dir, rec) {
        for file in [wav, mp3] {
            match tokio::fs::remove_file(&file).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    Metrics::add(&inner.api.metrics.disk_errors, 1);
                    tracing::error!(path = %file.display(), error = %e, "deleting recording media");
                }
            }
        }
    }
    Ok(true)
}

/// `headers` with the session cookie and CSRF token replaced by the account's Basic
/// credentials.
fn with_account_credentials(headers: &HeaderMap, api: &crate::ApiState) -> HeaderMap {
    use base64::Engine;
    let mut h = headers.clone();
    h.remove(header::COOKIE);
    h.remove(crate::console::CSRF_HEADER);
    let raw = format!("{}:{}", api.account_sid, api.auth_token);
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
        h.insert(header::AUTHORIZATION, v);
    }
    h
}

/// The answer of the node that runs `call`, when that is another node of the cluster.
pub(crate) async fn elsewhere(
    inner: &Inner,
    call: &CallSid,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &axum::body::Bytes,
) -> Option<Response> {
    let forwarder = inner.api.forwarder.as_ref()?;
    if headers.contains_key(crate::FORWARDED_HEADER) {
        return None;
    }
    if let Some(bot) = &inner.api.bot {
        // Known here as `terminated` is only the database speaking: not a call of ours.
        let here = bot.control.call(call.as_str()).await;
        if here.is_some_and(|v| v.state != crate::control::CallState::Terminated) {
            return None;
        }
    }
    let request = crate::ForwardRequest {
        method: method.clone(),
        path_and_query: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: headers.clone(),
        body: body.clone(),
    };
    forwarder.forward(call, request).await
}

/// WAV and MP3 paths, if the stored file name stays inside the storage directory.
pub(crate) fn media_paths(dir: &Path, rec: &store::RecordingRecord) -> Option<(PathBuf, PathBuf)> {
    let rel = Path::new(&rec.media_file);
    let inside =
        rel.components().count() > 0 && rel.components().all(|c| matches!(c, Component::Normal(_)));
    if !inside {
        tracing::error!(sid = %rec.sid, file = %rec.media_file, "recording media_file outside the storage directory");
        return None;
    }
    let wav = dir.join(rel);
    let mp3 = wav.with_file_name(format!("{}.mp3", rec.sid));
    Some((wav, mp3))
}

async fn media(
    inner: &Inner,
    sid: &RecordingSid,
    format: Format,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let rec = find_recording(inner, sid, None, false).await?;
    let sid = sid.as_str();
    if rec.status.is_unfinished() {
        return Err(ApiError::not_found(sid));
    }
    let (wav, mp3) =
        media_paths(&inner.api.storage_dir, &rec).ok_or_else(|| ApiError::not_found(sid))?;
    let served = match format {
        Format::Mp3 => {
            let metrics = inner.api.metrics.clone();
            let fetched = fetch_remote_wav(inner, &rec, &wav).await?;
            let source = fetched.clone().unwrap_or_else(|| wav.clone());
            let mut encoded = inner
                .mp3
                .ensure(sid, source, mp3.clone(), metrics.clone())
                .await;
            if let Some(tmp) = fetched {
                let _ = tokio::fs::remove_file(tmp).await;
            } else if matches!(encoded, Err(Mp3Failure::WavMissing))
                && inner.api.remote_media.is_some()
            {
                // The local WAV went (its upload was checked) between the look and the read.
                if let Some(tmp) = fetch_remote_wav(inner, &rec, &wav).await? {
                    encoded = inner
                        .mp3
                        .ensure(sid, tmp.clone(), mp3.clone(), metrics)
                        .await;
                    let _ = tokio::fs::remove_file(tmp).await;
                }
            }
            match encoded {
                Ok(()) => {}
                Err(Mp3Failure::WavMissing) => return Err(ApiError::not_found(sid)),
                Err(Mp3Failure::Failed) => return Err(ApiError::internal("MP3 encoding failed")),
            }
            serve_file(&mp3, "audio/mpeg", headers).await
        }
        Format::Wav | Format::Json => {
            serve_recording_wav(inner, &rec, &wav, "audio/x-wav", headers).await
        }
    };
    match served {
        Ok(r) => Ok(r),
        Err(ServeError::NotFound) => Err(ApiError::not_found(sid)),
        Err(ServeError::Io(e)) => {
            Metrics::add(&inner.api.metrics.disk_errors, 1);
            tracing::error!(recording = %sid, error = %e, "reading recording media");
            Err(ApiError::internal("recording media unreadable"))
        }
        Err(ServeError::Remote(e)) => {
            tracing::error!(recording = %sid, error = %e, "reading recording media from object storage");
            Err(ApiError::internal("recording media unreadable"))
        }
    }
}

/// The recording's WAV from this node's disk (still there while its upload is pending, or
/// with the local backend), or else from the object storage.
pub(crate) async fn serve_recording_wav(
    inner: &Inner,
    rec: &store::RecordingRecord,
    wav: &Path,
    content_type: &'static str,
    headers: &HeaderMap,
) -> Result<Response, ServeError> {
    match serve_file(wav, content_type, headers).await {
        Err(ServeError::NotFound) => match &inner.api.remote_media {
            Some(storage) => serve_object(storage, &rec.media_file, content_type, headers).await,
            None => Err(ServeError::NotFound),
        },
        other => other,
    }
}

/// For an MP3 of a recording whose WAV is only in the object storage: the WAV downloaded to a
/// temporary file beside where it would be (`None` when the local WAV is there, or there is
/// no object storage).
async fn fetch_remote_wav(
    inner: &Inner,
    rec: &store::RecordingRecord,
    wav: &Path,
) -> Result<Option<PathBuf>, ApiError> {
    let Some(storage) = &inner.api.remote_media else {
        return Ok(None);
    };
    if tokio::fs::try_exists(wav).await.unwrap_or(false) {
        return Ok(None);
    }
    let tmp = wav.with_file_name(media_store::fetched_name(rec.sid.as_str()));
    match storage.download(&rec.media_file, &tmp).await {
        Ok(_) => Ok(Some(tmp)),
        Err(media_store::StorageError::NotFound { .. }) => {
            Err(ApiError::not_found(rec.sid.as_str()))
        }
        Err(e) => {
            tracing::error!(recording = %rec.sid, error = %e, "fetching recording media from object storage");
            Err(ApiError::internal("recording media unreadable"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_soft_deleted_parses_booleans_only() {
        assert_eq!(include_soft_deleted(None), Ok(false));
        assert_eq!(
            include_soft_deleted(Some("IncludeSoftDeleted=TRUE")),
            Ok(true)
        );
        assert_eq!(
            include_soft_deleted(Some("x=1&IncludeSoftDeleted=false")),
            Ok(false)
        );
        assert_eq!(
            include_soft_deleted(Some("IncludeSoftDeleted=1")).map_err(|e| e.code),
            Err(21400)
        );
    }

    #[test]
    fn media_paths_stay_inside_the_storage_dir() {
        let re = RecordingSid::from_bits(1);
        let mut rec = store::RecordingRecord {
            media_file: format!("2024/{re}.wav"),
            sid: re.clone(),
            account_sid: store::AccountSid::from_bits(1),
            call_sid: CallSid::from_bits(1),
            status: store::RecordingStatus::Completed,
            source: store::RecordingSource::RecordVerb,
            channels: 1,
            sample_rate: 8000,
            date_created_ms: 0,
            date_updated_ms: 0,
            start_time_ms: 0,
            duration_secs: Some(1),
            error_code: None,
            transcribe: false,
            transcribe_callback: None,
            status_callback: None,
            deleted_at_ms: None,
        };
        let dir = Path::new("/srv/hark");
        assert_eq!(
            media_paths(dir, &rec),
            Some((
                PathBuf::from(format!("/srv/hark/2024/{re}.wav")),
                PathBuf::from(format!("/srv/hark/2024/{re}.mp3"))
            ))
        );
        for bad in ["../etc/passwd", "/etc/passwd", "", "a/../../b"] {
            rec.media_file = bad.into();
            assert_eq!(media_paths(dir, &rec), None, "{bad}");
        }
    }
}
