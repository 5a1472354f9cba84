//! Streaming a media file with single-range `Range` support (RFC 7233).

use std::io::SeekFrom;
use std::path::Path;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

/// What a `Range` header asks of a file of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send everything (RFC 7233 §3.1 lets a server ignore ranges it does not
    /// support, so multi-range and malformed headers land here instead of failing).
    Full,
    /// Inclusive byte bounds.
    Partial(u64, u64),
    /// 416.
    Unsatisfiable,
}

pub fn parse_range(value: Option<&str>, total: u64) -> RangeRequest {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // Suffix range: the last `n` bytes.
        return match b.parse::<u64>() {
            Ok(0) => RangeRequest::Unsatisfiable,
            Ok(_) if total == 0 => RangeRequest::Unsatisfiable,
            Ok(n) => RangeRequest::Partial(total.saturating_sub(n), total - 1),
            Err(_) => RangeRequest::Full,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeRequest::Full;
    };
    let end = match b {
        "" => None,
        e => match e.parse::<u64>() {
            Ok(e) if e >= start => Some(e),
            // `last < first` makes the header invalid, which means "ignore it" (§2.1).
            _ => return RangeRequest::Full,
        },
    };
    if start >= total {
        return RangeRequest::Unsatisfiable;
    }
    let last = total - 1;
    RangeRequest::Partial(start, end.map_or(last, |e| e.min(last)))
}

/// Why a file could not be served.
#[derive(Debug)]
pub enum ServeError {
    NotFound,
    Io(std::io::Error),
    /// The object storage failed (not a missing object).
    Remote(media_store::StorageError),
}

/// Status, first byte and length of the answer; `None` for 416.
fn range_head(total: u64, headers: &HeaderMap) -> Option<(StatusCode, u64, u64)> {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    match parse_range(range, total) {
        RangeRequest::Full => Some((StatusCode::OK, 0, total)),
        RangeRequest::Partial(s, e) => Some((StatusCode::PARTIAL_CONTENT, s, e - s + 1)),
        RangeRequest::Unsatisfiable => None,
    }
}

fn unsatisfiable(total: u64) -> Response {
    (
        StatusCode::RANGE_NOT_SATISFIABLE,
        [
            (header::CONTENT_RANGE, format!("bytes */{total}")),
            (header::ACCEPT_RANGES, "bytes".to_string()),
        ],
    )
        .into_response()
}

fn media_response(
    body: Body,
    status: StatusCode,
    content_type: &'static str,
    (start, len, total): (u64, u64, u64),
) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if status == StatusCode::PARTIAL_CONTENT {
        let cr = format!("bytes {start}-{}/{total}", start + len - 1);
        if let Ok(v) = HeaderValue::from_str(&cr) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    resp
}

/// 200 / 206 / 416 for object `key` of the object storage: the same answers as
/// [`serve_file`], read with one ranged GET.
pub async fn serve_object(
    storage: &media_store::ObjectStorage,
    key: &str,
    content_type: &'static str,
    headers: &HeaderMap,
) -> Result<Response, ServeError> {
    let total = match storage.size(key).await {
        Ok(Some(total)) => total,
        Ok(None) => return Err(ServeError::NotFound),
        Err(e) => return Err(ServeError::Remote(e)),
    };
    let Some((status, start, len)) = range_head(total, headers) else {
        return Ok(unsatisfiable(total));
    };
    let bytes = if len == 0 {
        bytes::Bytes::new()
    } else {
        match storage.read_range(key, start..start + len).await {
            Ok(b) => b,
            Err(media_store::StorageError::NotFound { .. }) => return Err(ServeError::NotFound),
            Err(e) => return Err(ServeError::Remote(e)),
        }
    };
    if bytes.len() as u64 != len {
        // Replaced between HEAD and GET: the length we promised is no longer the object's.
        return Err(ServeError::Io(std::io::Error::other(format!(
            "object {key} changed while read"
        ))));
    }
    Ok(media_response(
        Body::from(bytes),
        status,
        content_type,
        (start, len, total),
    ))
}

/// 200 / 206 / 416 for `path`, streamed in chunks.
pub async fn serve_file(
    path: &Path,
    content_type: &'static str,
    headers: &HeaderMap,
) -> Result<Response, ServeError> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ServeError::NotFound),
        Err(e) => return Err(ServeError::Io(e)),
    };
    let total = file.metadata().await.map_err(ServeError::Io)?.len();
    let Some((status, start, len)) = range_head(total, headers) else {
        return Ok(unsatisfiable(total));
    };
    if start > 0 {
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(ServeError::Io)?;
    }
    // `take` keeps a file that grows meanwhile from overrunning Content-Length.
    let body = Body::from_stream(ReaderStream::with_capacity(file.take(len), 64 * 1024));
    Ok(media_response(
        body,
        status,
        content_type,
        (start, len, total),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeRequest::*;

    #[test]
    fn rfc7233_byte_ranges() {
        assert_eq!(parse_range(Some("bytes=0-43"), 100), Partial(0, 43));
        assert_eq!(parse_range(Some("bytes=44-"), 100), Partial(44, 99));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Partial(90, 99));
        assert_eq!(parse_range(Some("bytes=-1000"), 100), Partial(0, 99));
        assert_eq!(parse_range(Some("bytes=90-200"), 100), Partial(90, 99));
        assert_eq!(parse_range(Some("bytes=99-99"), 100), Partial(99, 99));
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        assert_eq!(parse_range(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=100-150"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-5"), 0), Unsatisfiable);
    }

    #[test]
    fn unsupported_or_invalid_ranges_are_ignored() {
        assert_eq!(parse_range(None, 100), Full);
        assert_eq!(parse_range(Some("items=0-1"), 100), Full);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 100), Full);
        assert_eq!(parse_range(Some("bytes=5-1"), 100), Full);
        assert_eq!(parse_range(Some("bytes=a-b"), 100), Full);
        assert_eq!(parse_range(Some("bytes=5"), 100), Full);
        assert_eq!(parse_range(Some("bytes=-x"), 100), Full);
    }
}
