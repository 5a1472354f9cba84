//! Per-call transcript API (SPEC §8, BIZTEL 通話テキスト取得API-style):
//! `GET /public/api/v1/monitor/voice_log/{request_id}` with `Authorization: Token <token>`.
//!
//! Checks, in this order:
//! 1. no `Token` credentials, or none of the configured tokens → 401;
//! 2. the token is restricted to another account than this server's → 403;
//! 3. the token's per-minute rate (sliding window, in memory) or monthly quota (persisted,
//!    calendar month UTC) is spent → 429 with `Retry-After` seconds; every request that gets
//!    this far counts, whatever its outcome, so probing for ids costs quota too;
//! 4. `request_id` outside 1–255 characters → 404; it names no call (CallSid, RecordingSid or
//!    `X-Request-Id`) → 404; the call belongs to another account than the token's → 403;
//!    a transcription of the call is queued or running, or none completed → 404;
//! 5. store failure → 500.
//!
//! Success: `text/plain; charset=utf-8`, one `speaker : text` line per utterance (each ends
//! in `\n`; line breaks inside a text become spaces), or with `?format=json`
//! `application/json` `{"utterances":[{"order","speak_start_sec","speaker_type","text",
//! "voice_duration_sec"}]}`, seconds rounded to one decimal. Any other `format` is text.
//!
//! Errors: `application/json` `{"error": "<message>", "status": <code>}`.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde_json::{json, Value};
use store::TimedUtterance;

use crate::auth::constant_time_eq;
use crate::rest::db;
use crate::Inner;

/// Path prefix of the API.
pub const PATH: &str = "/public/api/v1/monitor/voice_log";
/// Longest accepted `request_id`, in characters.
pub const MAX_REQUEST_ID_CHARS: usize = 255;
const WINDOW: Duration = Duration::from_secs(60);

/// Who may read per-call transcripts (`transcripts.api_token` plus the config file's list).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VoiceLogConfig {
    pub tokens: Vec<VoiceLogToken>,
}

/// One API token. An empty `token` never authenticates.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct VoiceLogToken {
    /// Names the token in logs and in the persisted monthly counts; unique.
    pub id: String,
    pub token: String,
    /// Requests per minute (sliding window); `None`: unlimited.
    pub rate_per_minute: Option<u32>,
    /// Requests per calendar month (UTC); `None`: unlimited.
    pub monthly_quota: Option<u64>,
    /// Restricts the token to this account; `None`: the server's account.
    pub account_sid: Option<String>,
}

impl fmt::Debug for VoiceLogToken {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VoiceLogToken")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .field("rate_per_minute", &self.rate_per_minute)
            .field("monthly_quota", &self.monthly_quota)
            .field("account_sid", &self.account_sid)
            .finish()
    }
}

/// Recent request times per token id (sliding one-minute window).
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimiter {
    /// Admits one request at `now` if fewer than `per_minute` were admitted in the minute
    /// before; otherwise the whole seconds until a slot frees (at least 1).
    pub fn admit(&self, id: &str, per_minute: u32, now: Instant) -> Result<(), u64> {
        if per_minute == 0 {
            return Err(WINDOW.as_secs());
        }
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let window = windows.entry(id.to_string()).or_default();
        while window
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            window.pop_front();
        }
        if window.len() < per_minute as usize {
            window.push_back(now);
            return Ok(());
        }
        let oldest = window.front().copied().unwrap_or(now);
        let wait = WINDOW.saturating_sub(now.saturating_duration_since(oldest));
        Err(ceil_secs(wait))
    }
}

fn ceil_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// `YYYY-MM` of `now` and the seconds until the next month starts (at least 1).
fn month_and_rest(now: DateTime<Utc>) -> (String, u64) {
    let month = now.format("%Y-%m").to_string();
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    let next = Utc
        .with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .map_or(1, |n| (n - now).num_milliseconds());
    let secs = u64::try_from(next).unwrap_or(0).div_ceil(1000).max(1);
    (month, secs)
}

struct VlError {
    status: StatusCode,
    message: &'static str,
    retry_after: Option<u64>,
}

impl VlError {
    fn new(status: StatusCode, message: &'static str) -> Self {
        VlError {
            status,
            message,
            retry_after: None,
        }
    }
    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing or invalid token: send Authorization: Token <token>",
        )
    }
    fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "this token has no access to this account's calls",
        )
    }
    fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "no transcript for this request_id (unknown, or not transcribed yet)",
        )
    }
    fn too_many(message: &'static str, retry_after: u64) -> Self {
        VlError {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, message)
        }
    }
    fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl IntoResponse for VlError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.message, "status": self.status.as_u16()});
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        let headers = resp.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// The `Token` credential of the request, if well-formed.
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("token") && !token.is_empty()).then_some(token)
}

/// The configured token equal to `presented`; every token is compared, in constant time.
fn find_token<'a>(tokens: &'a [VoiceLogToken], presented: &str) -> Option<&'a VoiceLogToken> {
    let mut found = None;
    for t in tokens {
        let equal = constant_time_eq(t.token.as_bytes(), presented.as_bytes());
        if equal && !t.token.is_empty() && found.is_none() {
            found = Some(t);
        }
    }
    found
}

/// Percent-decodes a path segment; `None` for a bad escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn one_decimal(x: f64) -> f64 {
    if x.is_finite() {
        (x * 10.0).round() / 10.0
    } else {
        0.0
    }
}

pub(crate) fn text_body(lines: &[TimedUtterance]) -> String {
    let mut out = String::new();
    for l in lines {
        let clean = |s: &str| s.replace(['\r', '\n'], " ");
        out.push_str(&clean(&l.speaker));
        out.push_str(" : ");
        out.push_str(&clean(&l.text));
        out.push('\n');
    }
    out
}

pub(crate) fn json_body(lines: &[TimedUtterance]) -> Value {
    let utterances: Vec<Value> = lines
        .iter()
        .map(|l| {
            json!({
                "order": l.order,
                "speak_start_sec": one_decimal(l.start_sec),
                "speaker_type": l.speaker,
                "text": l.text,
                "voice_duration_sec": one_decimal(l.duration_sec),
            })
        })
        .collect();
    json!({ "utterances": utterances })
}

fn wants_json(query: Option<&str>) -> bool {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "format")
        .last()
        .is_some_and(|(_, v)| v.eq_ignore_ascii_case("json"))
}

pub(crate) async fn handler(
    State(inner): State<std::sync::Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match handle(&inner, &method, &uri, &headers).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    inner: &Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, VlError> {
    let api = &inner.api;
    let token = presented_token(headers)
        .and_then(|p| find_token(&api.voice_log.tokens, p))
        .ok_or_else(VlError::unauthorized)?;
    let account = token
        .account_sid
        .as_deref()
        .unwrap_or(api.account_sid.as_str());
    if api.account_sid != account {
        return Err(VlError::forbidden());
    }
    if *method != Method::GET && *method != Method::HEAD {
        let mut resp =
            VlError::new(StatusCode::METHOD_NOT_ALLOWED, "only GET is allowed").into_response();
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(resp);
    }
    if let Some(rate) = token.rate_per_minute {
        inner
            .voice_log_rate
            .admit(&token.id, rate, Instant::now())
            .map_err(|secs| VlError::too_many("request rate limit exceeded", secs))?;
    }
    if let Some(quota) = token.monthly_quota {
        let (month, rest) = month_and_rest(Utc::now());
        let id = token.id.clone();
        let counted = db(inner, move |s| {
            s.record_token_use_within(&id, &month, quota)
        })
        .await
        .map_err(|_| VlError::internal())?;
        if counted.is_none() {
            return Err(VlError::too_many("monthly request quota exceeded", rest));
        }
    }
    let raw = uri
        .path()
        .strip_prefix(PATH)
        .map(|r| r.strip_prefix('/').unwrap_or(r))
        .unwrap_or("");
    let request_id = percent_decode(raw).ok_or_else(VlError::not_found)?;
    if !(1..=MAX_REQUEST_ID_CHARS).contains(&request_id.chars().count()) {
        return Err(VlError::not_found());
    }
    let transcript = db(inner, move |s| s.call_transcript_of(&request_id))
        .await
        .map_err(|_| VlError::internal())?
        .ok_or_else(VlError::not_found)?;
    if transcript.account_sid != account {
        return Err(VlError::forbidden());
    }
    let lines = transcript.utterances.ok_or_else(VlError::not_found)?;
    Ok(if wants_json(uri.query()) {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json_body(&lines).to_string(),
        )
            .into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text_body(&lines),
        )
            .into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, secret: &str) -> VoiceLogToken {
        VoiceLogToken {
            id: id.into(),
            token: secret.into(),
            ..Default::default()
        }
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn token_scheme_is_case_insensitive_and_needs_a_value() {
        assert_eq!(presented_token(&headers("Token abc")), Some("abc"));
        assert_eq!(presented_token(&headers("token  abc ")), Some("abc"));
        assert_eq!(presented_token(&headers("Bearer abc")), None);
        assert_eq!(presented_token(&headers("Token ")), None);
        assert_eq!(presented_token(&headers("Token")), None);
        assert_eq!(presented_token(&HeaderMap::new()), None);
    }

    #[test]
    fn only_an_exact_non_empty_token_matches() {
        let tokens = [token("empty", ""), token("a", "alpha"), token("b", "beta")];
        assert_eq!(
            find_token(&tokens, "beta").map(|t| t.id.as_str()),
            Some("b")
        );
        assert_eq!(
            find_token(&tokens, "alpha").map(|t| t.id.as_str()),
            Some("a")
        );
        assert!(find_token(&tokens, "alph").is_none());
        assert!(find_token(&tokens, "alphaa").is_none());
        assert!(find_token(&tokens, "").is_none());
        assert!(find_token(&[], "alpha").is_none());
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let shown = format!("{:?}", token("ops", "hunter2"));
        assert!(
            shown.contains("ops") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn sliding_window_admits_rate_per_minute_and_says_when_a_slot_frees() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(limiter.admit("a", 2, at(0)), Ok(()));
        assert_eq!(limiter.admit("a", 2, at(10_000)), Ok(()));
        // Oldest admitted at 0: a slot frees at 60 s.
        assert_eq!(limiter.admit("a", 2, at(30_000)), Err(30));
        assert_eq!(limiter.admit("a", 2, at(59_500)), Err(1));
        // Another token has its own window.
        assert_eq!(limiter.admit("b", 2, at(30_000)), Ok(()));
        assert_eq!(limiter.admit("a", 2, at(60_000)), Ok(()));
        assert_eq!(limiter.admit("a", 2, at(60_001)), Err(10), "10 s → 70 s");
        assert_eq!(limiter.admit("z", 0, at(0)), Err(60));
    }

    #[test]
    fn monthly_quota_resets_at_the_next_utc_month() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            month_and_rest(t("2024-02-29T23:59:00Z")),
            ("2024-02".to_string(), 60)
        );
        assert_eq!(
            month_and_rest(t("2024-12-31T23:59:59.500Z")),
            ("2024-12".to_string(), 1)
        );
        assert_eq!(
            month_and_rest(t("2024-03-01T00:00:00Z")),
            ("2024-03".to_string(), 31 * 86_400)
        );
    }

    #[test]
    fn percent_decoding_of_the_request_id() {
        assert_eq!(percent_decode("abc"), Some("abc".into()));
        assert_eq!(percent_decode("a%2Fb%20c+d"), Some("a/b c+d".into()));
        assert_eq!(percent_decode("%E3%81%82"), Some("あ".into()));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%FF"), None);
    }

    #[test]
    fn bodies_round_to_one_decimal_and_keep_one_line_per_utterance() {
        let lines = [
            TimedUtterance {
                order: 1,
                start_sec: 0.44,
                duration_sec: 2.06,
                speaker: "system".into(),
                text: "Leave a message.".into(),
            },
            TimedUtterance {
                order: 2,
                start_sec: 3.96,
                duration_sec: f64::NAN,
                speaker: "caller".into(),
                text: "two\nlines".into(),
            },
        ];
        assert_eq!(
            text_body(&lines),
            "system : Leave a message.\ncaller : two lines\n"
        );
        assert_eq!(
            json_body(&lines).to_string(),
            r#"{"utterances":[{"order":1,"speak_start_sec":0.4,"speaker_type":"system","text":"Leave a message.","voice_duration_sec":2.1},{"order":2,"speak_start_sec":4.0,"speaker_type":"caller","text":"two\nlines","voice_duration_sec":0.0}]}"#
        );
    }

    #[test]
    fn format_json_is_the_only_alternative() {
        assert!(wants_json(Some("format=json")));
        assert!(wants_json(Some("x=1&format=JSON")));
        assert!(!wants_json(Some("format=text")));
        assert!(!wants_json(Some("format=xml")));
        assert!(!wants_json(None));
    }
}
