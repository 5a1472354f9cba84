//! Hark's HTTP listener: recording media at Twilio's paths (the full REST API is a later issue).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::config::is_sid;
use crate::storage::RecordingStore;

pub struct HttpState {
    pub account_sid: String,
    pub store: RecordingStore,
}

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Recordings/{file}",
            get(recording_media),
        )
        .with_state(state)
}

fn not_found(what: &str) -> Response {
    let body = format!(
        "{{\"code\": 20404, \"message\": \"The requested resource {what} was not found\", \"more_info\": \"https://www.twilio.com/docs/errors/20404\", \"status\": 404}}"
    );
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn recording_media(
    State(state): State<Arc<HttpState>>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let sid = file.strip_suffix(".wav").unwrap_or(&file);
    if account != state.account_sid || !is_sid(sid, "RE") {
        return not_found(&file);
    }
    let store = state.store.clone();
    let sid_owned = sid.to_string();
    let meta = match tokio::task::spawn_blocking(move || store.read_meta(&sid_owned)).await {
        Ok(Ok(Some(meta))) => meta,
        Ok(Ok(None)) => return not_found(&file),
        Ok(Err(e)) => {
            tracing::error!(sid, error = %e, "recording sidecar unreadable");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "recording metadata unreadable",
            )
                .into_response();
        }
        Err(_) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "recording lookup failed").into_response()
        }
    };
    // Twilio serves a recording once it is finished; ours are finished before any webhook.
    if meta.status == "in-progress" {
        return not_found(&file);
    }
    let bytes = match tokio::fs::read(state.store.wav_path(sid)).await {
        Ok(b) => b,
        Err(_) => return not_found(&file),
    };
    serve_bytes(bytes, "audio/x-wav", &headers)
}

/// Whole body, or one `Range: bytes=a-b` as 206.
fn serve_bytes(bytes: Vec<u8>, content_type: &'static str, headers: &HeaderMap) -> Response {
    let total = bytes.len();
    if let Some(range) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        match parse_range(range, total) {
            Some((start, end)) => {
                let body = bytes[start..=end].to_vec();
                return (
                    StatusCode::PARTIAL_CONTENT,
                    [
                        (header::CONTENT_TYPE, content_type.to_string()),
                        (header::ACCEPT_RANGES, "bytes".to_string()),
                        (
                            header::CONTENT_RANGE,
                            format!("bytes {start}-{end}/{total}"),
                        ),
                    ],
                    body,
                )
                    .into_response();
            }
            None => {
                return (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{total}"))],
                )
                    .into_response()
            }
        }
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::ACCEPT_RANGES, "bytes".to_string()),
        ],
        bytes,
    )
        .into_response()
}

/// One `bytes=` range, inclusive bounds within `total`.
fn parse_range(value: &str, total: usize) -> Option<(usize, usize)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || total == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: usize = suffix.parse().ok()?;
            if n == 0 {
                return None;
            }
            (total.saturating_sub(n), total - 1)
        }
        (s, "") => (s.parse().ok()?, total - 1),
        (s, e) => (s.parse().ok()?, e.parse::<usize>().ok()?.min(total - 1)),
    };
    (start <= end && start < total).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn rfc7233_ranges() {
        assert_eq!(parse_range("bytes=0-43", 100), Some((0, 43)));
        assert_eq!(parse_range("bytes=44-", 100), Some((44, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=90-200", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,4-5", 100), None);
    }
}
