//! The web console (issue 16): its embedded page at `/console/`, sign-in sessions (an HttpOnly,
//! SameSite=Strict cookie plus a CSRF token for every state change), the live-call stream (SSE)
//! and the few JSON views Twilio's REST API has no resource for (a recording's transcript with
//! its utterances, callback deliveries, the system summary). Lists, call control and media are
//! Twilio's REST API, which accepts the session cookie too (see [`Sessions::cookie_auth`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Value};
use store::RecordingSid;

use crate::auth::constant_time_eq;
use crate::control::LiveCallView;
use crate::rest::db;
use crate::Inner;

mod assets {
    include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));
}

pub const PREFIX: &str = "/console";
/// The session cookie's name over HTTP…
pub const COOKIE: &str = "hark_console";
/// …and over HTTPS.
pub const SECURE_COOKIE: &str = "__Host-hark_console";
/// The header carrying the session's CSRF token on POST and DELETE.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session ends this long after sign-in whatever happens…
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// …or after this long unused.
const SESSION_IDLE: Duration = Duration::from_secs(2 * 3600);
/// Sessions kept at most (the oldest go first): memory stays bounded whatever signs in.
const MAX_SESSIONS: usize = 10_000;
/// Failed sign-ins allowed per window before sign-in answers 429 until the window ends.
const MAX_FAILURES: u32 = 20;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// A live stream ends after this long (the browser's EventSource reconnects at once): no
/// connection outlives a revoked session or a restart by much.
const STREAM_LIFETIME: Duration = Duration::from_secs(300);
/// Changes arriving together go out as one event: at most ten a second.
const STREAM_COALESCE: Duration = Duration::from_millis(100);
/// An event even when nothing changed (fresh `now_ms` for the durations).
const STREAM_REFRESH: Duration = Duration::from_secs(5);

/// `Content-Security-Policy` of every console response: only our own files run. Styles may be
/// inline: the waveform player puts its styles in its shadow root.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; \
                   worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; \
                   form-action 'self'";

struct Session {
    username: String,
    csrf: String,
    created: Instant,
    last_seen: Instant,
    expires_ms: i64,
}

/// Signed-in console sessions (in memory: a restart signs everyone out).
#[derive(Default)]
pub struct Sessions {
    /// The API is reached over HTTPS: the cookie is `Secure` and named `__Host-…` (a sibling
    /// subdomain cannot plant one).
    secure: bool,
    by_id: Mutex<HashMap<String, Session>>,
    /// Per client address (`None`: the address is not known), `(window start, failures in it)`.
    failures: Mutex<HashMap<Option<IpAddr>, (Instant, u32)>>,
}

/// Addresses whose failures are remembered at most: beyond, the oldest windows go.
const MAX_FAILURE_SOURCES: usize = 10_000;

/// The client's address, when the daemon puts it in the request's extensions (the HTTP API
/// alone does not know how the connection was accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// What a signed-in request knows.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: String,
    pub username: String,
    pub csrf: String,
    pub expires_ms: i64,
}

/// How the session cookie authenticates a request.
#[derive(Debug)]
pub enum CookieAuth {
    /// No cookie, or no live session behind it.
    None,
    Ok(SessionInfo),
    /// A live session, but a state change without its CSRF token.
    CsrfRefused,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

impl Sessions {
    pub fn new(secure: bool) -> Sessions {
        Sessions {
            secure,
            ..Sessions::default()
        }
    }

    /// The cookie's name: `__Host-` prefixed when it is `Secure`.
    fn cookie_name(&self) -> &'static str {
        if self.secure {
            SECURE_COOKIE
        } else {
            COOKIE
        }
    }

    fn start(&self, username: String) -> SessionInfo {
        let id = random_token();
        let csrf = random_token();
        let now = Instant::now();
        let expires_ms = unix_ms().saturating_add(SESSION_LIFETIME.as_millis() as i64);
        let mut map = lock(&self.by_id);
        map.retain(|_, s| Self::alive(s, now));
        while map.len() >= MAX_SESSIONS {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Session {
                username: username.clone(),
                csrf: csrf.clone(),
                created: now,
                last_seen: now,
                expires_ms,
            },
        );
        SessionInfo {
            id,
            username,
            csrf,
            expires_ms,
        }
    }

    fn alive(s: &Session, now: Instant) -> bool {
        now.duration_since(s.created) < SESSION_LIFETIME
            && now.duration_since(s.last_seen) < SESSION_IDLE
    }

    /// The live session the request's cookie names (and marks it used).
    pub fn session(&self, headers: &HeaderMap) -> Option<SessionInfo> {
        let id = cookie(headers, self.cookie_name())?;
        self.by_id(id, true)
    }

    /// The session `id` if it is live; `touch`: it counts as used now (a request), not a
    /// stream's own check.
    fn by_id(&self, id: &str, touch: bool) -> Option<SessionInfo> {
        let now = Instant::now();
        let mut map = lock(&self.by_id);
        let s = map.get_mut(id)?;
        if !Self::alive(s, now) {
            map.remove(id);
            return None;
        }
        if touch {
            s.last_seen = now;
        }
        Some(SessionInfo {
            id: id.to_string(),
            username: s.username.clone(),
            csrf: s.csrf.clone(),
            expires_ms: s.expires_ms,
        })
    }

    fn end(&self, id: &str) {
        lock(&self.by_id).remove(id);
    }

    /// The session cookie as credentials: reads need a live session; POST, PUT, PATCH and
    /// DELETE also need its CSRF token in `X-CSRF-Token` (a cross-site page can make the
    /// browser send the cookie, never that header).
    pub fn cookie_auth(&self, headers: &HeaderMap, method: &Method) -> CookieAuth {
        let Some(session) = self.session(headers) else {
            return CookieAuth::None;
        };
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return CookieAuth::Ok(session);
        }
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
            CookieAuth::Ok(session)
        } else {
            CookieAuth::CsrfRefused
        }
    }

    /// Counts a failed sign-in from `source` (`add`); true while sign-in from there is refused
    /// (too many failures lately).
    fn too_many_failures(&self, source: Option<IpAddr>, add: bool) -> bool {
        let now = Instant::now();
        let mut f = lock(&self.failures);
        if f.len() >= MAX_FAILURE_SOURCES && !f.contains_key(&source) {
            f.retain(|_, (start, _)| now.duration_since(*start) < FAILURE_WINDOW);
            while f.len() >= MAX_FAILURE_SOURCES {
                let Some(oldest) = f
                    .iter()
                    .min_by_key(|(_, (start, _))| *start)
                    .map(|(k, _)| *k)
                else {
                    break;
                };
                f.remove(&oldest);
            }
        }
        let entry = f.entry(source).or_insert((now, 0));
        if now.duration_since(entry.0) >= FAILURE_WINDOW {
            *entry = (now, 0);
        }
        if add {
            entry.1 = entry.1.saturating_add(1);
        }
        entry.1 > MAX_FAILURES
    }
}

/// Whose failures count together: an IPv4 address, or an IPv6 /64 (one site's addresses).
fn failure_source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The console's security headers on any response.
fn secured(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn json_response(status: StatusCode, body: Value) -> Response {
    secured(
        (
            status,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body.to_string(),
        )
            .into_response(),
    )
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        json!({ "error": message, "status": status.as_u16() }),
    )
}

/// 403 for a state change without the session's CSRF token (also the REST API's answer).
pub fn csrf_refused() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "missing or wrong X-CSRF-Token: reload the console and try again",
    )
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    }
}

/// A file of the page: from `HARK_CONSOLE_DIR` when set (working on the page without a
/// rebuild), else the copy embedded at build time.
fn asset(name: &str) -> Response {
    if let Some(dir) = std::env::var_os("HARK_CONSOLE_DIR") {
        // The same kinds of file the build embeds, and nothing above the directory.
        let served = matches!(
            name.rsplit_once('.').map(|(_, e)| e),
            Some("html" | "js" | "css" | "svg" | "txt" | "md")
        );
        let safe = served
            && name
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\\'));
        if safe {
            if let Ok(bytes) = std::fs::read(std::path::Path::new(&dir).join(name)) {
                return file_response(name, bytes.into());
            }
        }
    } else if let Some((_, bytes)) = assets::ASSETS.iter().find(|(n, _)| *n == name) {
        return file_response(name, Body::from(*bytes));
    }
    error(StatusCode::NOT_FOUND, "no such console file")
}

fn file_response(name: &str, body: Body) -> Response {
    secured(
        (
            [
                (header::CONTENT_TYPE, content_type(name)),
                // Revalidated each time: a new binary's page is picked up at once.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
    )
}

/// Every route under `/console`.
pub(crate) fn router() -> axum::Router<Arc<Inner>> {
    use axum::routing::{any, get};
    axum::Router::new()
        .route(
            PREFIX,
            get(|| async {
                secured(
                    (
                        StatusCode::PERMANENT_REDIRECT,
                        [(header::LOCATION, "/console/")],
                    )
                        .into_response(),
                )
            }),
        )
        .route(&format!("{PREFIX}/"), get(|| async { asset("index.html") }))
        .route(
            &format!("{PREFIX}/assets/{{*path}}"),
            get(|Path(path): Path<String>| async move { asset(&path) }),
        )
        .route(&format!("{PREFIX}/api/session"), any(session))
        .route(&format!("{PREFIX}/api/live"), get(live_stream))
        .route(&format!("{PREFIX}/api/live.json"), get(live_once))
        .route(
            &format!("{PREFIX}/api/recordings/{{sid}}/transcript"),
            get(transcript),
        )
        .route(&format!("{PREFIX}/api/webhooks"), get(webhooks))
        .route(&format!("{PREFIX}/api/system"), get(system))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such console resource") })
}

fn session_body(inner: &Inner, s: &SessionInfo) -> Value {
    json!({
        "account_sid": inner.api.account_sid,
        "username": s.username,
        "csrf_token": s.csrf,
        "expires_ms": s.expires_ms,
    })
}

/// `Set-Cookie` for `value` (empty: cleared); `Secure` over HTTPS.
fn set_cookie(inner: &Inner, value: &str, max_age: u64) -> HeaderValue {
    let sessions = &inner.console;
    let secure = if sessions.secure { "; Secure" } else { "" };
    let name = sessions.cookie_name();
    let text =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[derive(serde::Deserialize)]
struct SignIn {
    username: String,
    password: String,
}

async fn session(
    State(inner): State<Arc<Inner>>,
    client: Option<axum::Extension<ClientAddr>>,
    method: Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let sessions = &inner.console;
    let source = client.map(|c| failure_source(c.0 .0.ip()));
    let shown_source = source.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    match method {
        Method::GET | Method::HEAD => match sessions.session(&headers) {
            Some(s) => json_response(StatusCode::OK, session_body(&inner, &s)),
            None => error(StatusCode::UNAUTHORIZED, "not signed in"),
        },
        Method::POST => {
            let json_body = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim_start().starts_with("application/json"));
            if !json_body {
                return error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "sign-in takes application/json: {\"username\", \"password\"}",
                );
            }
            let Ok(form) = serde_json::from_slice::<SignIn>(&body) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "sign-in needs JSON with string fields username and password",
                );
            };
            if sessions.too_many_failures(source, false) {
                return error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many failed sign-ins; wait a minute",
                );
            }
            let api = &inner.api;
            let ok = crate::auth::credentials_match(
                &form.username,
                &form.password,
                api.account_sid.as_str(),
                &api.auth_token,
                &api.api_keys,
            );
            if !ok {
                sessions.too_many_failures(source, true);
                // One line per failure, in the fail2ban-friendly form of the SIP ones.
                // Debug-quoted and cut: a username cannot forge another log line.
                let shown: String = form.username.chars().take(64).collect();
                tracing::warn!(
                    username = ?shown,
                    "console sign-in failed source={shown_source}"
                );
                return error(StatusCode::UNAUTHORIZED, "wrong credentials");
            }
            let s = sessions.start(form.username);
            tracing::info!(username = ?s.username, source = %shown_source, "console sign-in");
            let mut response = json_response(StatusCode::OK, session_body(&inner, &s));
            response.headers_mut().insert(
                header::SET_COOKIE,
                set_cookie(&inner, &s.id, SESSION_LIFETIME.as_secs()),
            );
            response
        }
        Method::DELETE => match sessions.cookie_auth(&headers, &method) {
            CookieAuth::Ok(s) => {
                sessions.end(&s.id);
                tracing::info!(username = ?s.username, "console sign-out");
                let mut response = secured(StatusCode::NO_CONTENT.into_response());
                response
                    .headers_mut()
                    .insert(header::SET_COOKIE, set_cookie(&inner, "", 0));
                response
            }
            CookieAuth::CsrfRefused => csrf_refused(),
            CookieAuth::None => error(StatusCode::UNAUTHORIZED, "not signed in"),
        },
        _ => {
            let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "GET, POST or DELETE");
            r.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, POST, DELETE"),
            );
            r
        }
    }
}

fn live_json(inner: &Inner, calls: &[LiveCallView]) -> Value {
    let calls: Vec<Value> = calls
        .iter()
        .map(|c| {
            let node = if c.node.is_empty() {
                inner.api.node_id.as_str()
            } else {
                c.node.as_str()
            };
            json!({
                "node": node,
                "sid": c.sid,
                "from": c.from,
                "to": c.to,
                "direction": c.direction,
                "state": c.state.as_str(),
                "started_ms": c.started_ms,
                "legs": c.legs,
                "verb": c.verb,
                "recording": c.recording,
                "bot": c.bot,
            })
        })
        .collect();
    json!({ "now_ms": unix_ms(), "calls": calls })
}

fn live_calls(inner: &Inner, everywhere: bool) -> Vec<LiveCallView> {
    inner
        .api
        .bot
        .as_ref()
        .map(|b| b.control.live_calls(everywhere))
        .unwrap_or_default()
}

/// The live calls once: for the page (session), and for the other nodes of a cluster, which
/// ask with the account's credentials for this node's own calls (`scope=node`).
async fn live_once(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let api = &inner.api;
    let basic = crate::auth::authenticated(
        &headers,
        api.account_sid.as_str(),
        &api.auth_token,
        &api.api_keys,
    );
    if !basic && inner.console.session(&headers).is_none() {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    }
    let everywhere = q.get("scope").map(String::as_str) != Some("node");
    json_response(
        StatusCode::OK,
        live_json(&inner, &live_calls(&inner, everywhere)),
    )
}

/// Where a live stream is.
struct Stream {
    inner: Arc<Inner>,
    session_id: String,
    changes: Option<tokio::sync::watch::Receiver<u64>>,
    first: bool,
    ends: tokio::time::Instant,
}

async fn live_stream(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let Some(session) = inner.console.session(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    };
    let changes = inner
        .api
        .bot
        .as_ref()
        .and_then(|b| b.control.live_changes());
    let state = Stream {
        inner,
        session_id: session.id,
        changes,
        first: true,
        ends: tokio::time::Instant::now() + STREAM_LIFETIME,
    };
    let events = futures_util::stream::unfold(state, |mut st| async move {
        if !st.first {
            let wait = tokio::time::sleep(STREAM_REFRESH);
            let lifetime = tokio::time::sleep_until(st.ends);
            let changed = async {
                match st.changes.as_mut() {
                    Some(rx) => {
                        if rx.changed().await.is_err() {
                            // The daemon is going: nothing will change any more.
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = changed => tokio::time::sleep(STREAM_COALESCE).await,
                () = wait => {}
                () = lifetime => return None,
            }
            if let Some(rx) = st.changes.as_mut() {
                rx.borrow_and_update();
            }
        }
        // A signed-out session's stream ends with its next event.
        // An open page alone does not keep the session from its idle end.
        st.inner.console.by_id(&st.session_id, false)?;
        let mut event = Event::default()
            .event("calls")
            .data(live_json(&st.inner, &live_calls(&st.inner, true)).to_string());
        if st.first {
            event = event.retry(Duration::from_secs(1));
            st.first = false;
        }
        Some((Ok::<_, std::convert::Infallible>(event), st))
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secured(response)
}

async fn transcript(
    State(inner): State<Arc<Inner>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> Response {
    if inner.console.session(&headers).is_none() {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    }
    let Ok(sid) = sid.parse::<RecordingSid>() else {
        return error(StatusCode::NOT_FOUND, "no such recording");
    };
    let account = inner.api.account_sid.clone();
    let found = db(&inner, move |s| {
        let Some(rec) = s.get_recording(&account, &sid, false)? else {
            return Ok(None);
        };
        let newest = s
            .list_transcriptions(&account, Some(&rec.sid), 1, None)?
            .items
            .into_iter()
            .next();
        let utterances = match &newest {
            Some(t) if t.status == store::TranscriptionStatus::Completed => s.utterances(&t.sid)?,
            _ => Vec::new(),
        };
        Ok(Some((newest, utterances)))
    })
    .await;
    match found {
        Err(e) => e.into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such recording"),
        Ok(Some((job, utterances))) => {
            let utterances: Vec<Value> = utterances
                .iter()
                .map(|u| {
                    json!({
                        "start_sec": u.start_sec,
                        "duration_sec": u.duration_sec,
                        "speaker": u.speaker,
                        "text": u.text,
                    })
                })
                .collect();
            json_response(
                StatusCode::OK,
                json!({
                    "status": job.as_ref().map_or("none", |t| t.status.as_str()),
                    "transcription_sid": job.as_ref().map(|t| t.sid.to_string()),
                    "error": job.as_ref().and_then(|t| t.error.clone()),
                    "utterances": utterances,
                }),
            )
        }
    }
}

/// What a callback reports, from its parameters: `recording completed`, `call ringing`, …
fn delivery_event(params: &[(String, String)]) -> String {
    for (key, what) in [
        ("TranscriptionStatus", "transcription"),
        ("RecordingStatus", "recording"),
        ("CallStatus", "call"),
    ] {
        if let Some((_, v)) = params.iter().find(|(k, _)| k == key) {
            return format!("{what} {v}");
        }
    }
    String::new()
}

async fn webhooks(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if inner.console.session(&headers).is_none() {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    }
    let size = match q.get("PageSize").map(|v| v.parse::<u32>()) {
        None => 50,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "PageSize must be an integer from 1 to 500",
            )
        }
    };
    let state = match q.get("State").map(String::as_str) {
        None | Some("") | Some("any") => None,
        Some(s @ ("pending" | "delivered" | "failed")) => Some(s.to_string()),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "State must be pending, delivered or failed",
            )
        }
    };
    let before = match q.get("Before").map(|v| v.parse::<i64>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "Before must be a delivery id"),
    };
    let page = db(&inner, move |s| {
        s.list_deliveries(state.as_deref(), before, size + 1)
    })
    .await;
    let mut items = match page {
        Ok(items) => items,
        Err(e) => return e.into_response(),
    };
    let more = items.len() > size as usize;
    items.truncate(size as usize);
    let next_before = if more {
        items.last().map(|d| d.id)
    } else {
        None
    };
    let deliveries: Vec<Value> = items
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "url": d.url,
                "method": d.method,
                "group": d.group_key,
                "event": delivery_event(&d.params),
                "state": d.state,
                "attempts": d.attempts,
                "last_status": d.last_status,
                "last_error": d.last_error,
                "created_ms": d.created_ms,
                "last_attempt_ms": d.last_attempt_ms,
                "last_duration_ms": d.last_duration_ms,
                "next_attempt_ms": d.next_attempt_ms,
            })
        })
        .collect();
    json_response(
        StatusCode::OK,
        json!({ "deliveries": deliveries, "next_before": next_before }),
    )
}

/// `name value` lines of the Prometheus text, summed over labels: the system page's summary.
fn metrics_summary(text: &str) -> serde_json::Map<String, Value> {
    let mut sums: std::collections::BTreeMap<String, f64> = std::collections::BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((name_part, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = name_part.split('{').next().unwrap_or(name_part).trim();
        if let Ok(v) = value.trim().parse::<f64>() {
            *sums.entry(name.to_string()).or_default() += v;
        }
    }
    sums.into_iter()
        .map(|(k, v)| {
            let value = if v.fract() == 0.0 && v.abs() < 9.0e15 {
                json!(v as i64)
            } else {
                json!(v)
            };
            (k, value)
        })
        .collect()
}

async fn system(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    if inner.console.session(&headers).is_none() {
        return error(StatusCode::UNAUTHORIZED, "not signed in");
    }
    let (code, health) = crate::health(&inner).await;
    let metrics = metrics_summary(&inner.api.metrics.render());
    json_response(
        StatusCode::OK,
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "node_id": inner.api.node_id,
            "account_sid": inner.api.account_sid,
            "live_calls": live_calls(&inner, true).len(),
            "health": Value::Object(health),
            "health_status": code.as_u16(),
            "metrics": Value::Object(metrics),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn cookie_is_found_among_others_and_across_headers() {
        let h = headers(&[("cookie", "a=1; hark_console=abc ; b=2")]);
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "hark_console=x")]);
        assert_eq!(cookie(&h, COOKIE), Some("x"));
        assert_eq!(
            cookie(&headers(&[("cookie", "xhark_console=1")]), COOKIE),
            None
        );
        assert_eq!(cookie(&HeaderMap::new(), COOKIE), None);
    }

    #[test]
    fn reads_need_a_session_and_changes_need_its_csrf_token() {
        let sessions = Sessions::default();
        let s = sessions.start("AC1".into());
        let c = format!("{COOKIE}={}", s.id);
        assert!(matches!(
            sessions.cookie_auth(&headers(&[("cookie", &c)]), &Method::GET),
            CookieAuth::Ok(_)
        ));
        for method in [Method::POST, Method::DELETE, Method::PUT] {
            assert!(matches!(
                sessions.cookie_auth(&headers(&[("cookie", &c)]), &method),
                CookieAuth::CsrfRefused
            ));
            assert!(matches!(
                sessions.cookie_auth(&headers(&[("cookie", &c), (CSRF_HEADER, "wrong")]), &method),
                CookieAuth::CsrfRefused
            ));
            assert!(matches!(
                sessions.cookie_auth(&headers(&[("cookie", &c), (CSRF_HEADER, &s.csrf)]), &method),
                CookieAuth::Ok(_)
            ));
        }
        // Another session's token is not this one's.
        let other = sessions.start("AC1".into());
        assert!(matches!(
            sessions.cookie_auth(
                &headers(&[("cookie", &c), (CSRF_HEADER, &other.csrf)]),
                &Method::POST
            ),
            CookieAuth::CsrfRefused
        ));
        sessions.end(&s.id);
        assert!(matches!(
            sessions.cookie_auth(&headers(&[("cookie", &c)]), &Method::GET),
            CookieAuth::None
        ));
        assert!(matches!(
            sessions.cookie_auth(&headers(&[("cookie", "hark_console=forged")]), &Method::GET),
            CookieAuth::None
        ));
    }

    #[test]
    fn failed_sign_ins_are_refused_after_the_limit_within_the_window_per_source() {
        let sessions = Sessions::default();
        let a = Some(IpAddr::from([192, 0, 2, 1]));
        let b = Some(IpAddr::from([192, 0, 2, 2]));
        for _ in 0..MAX_FAILURES {
            assert!(!sessions.too_many_failures(a, true));
        }
        assert!(sessions.too_many_failures(a, true));
        assert!(sessions.too_many_failures(a, false));
        // Another address is not locked out by the first one's failures.
        assert!(!sessions.too_many_failures(b, false));
        assert!(!sessions.too_many_failures(None, true));
    }

    #[test]
    fn failures_count_per_ipv4_address_and_per_ipv6_64() {
        let v6 = |s: &str| failure_source(s.parse().unwrap());
        assert_eq!(v6("2001:db8:1:2:aaaa::1"), v6("2001:db8:1:2:bbbb::9"));
        assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
        assert_eq!(v6("::ffff:192.0.2.7"), v6("192.0.2.7"));
        assert_ne!(v6("192.0.2.7"), v6("192.0.2.8"));
    }

    #[test]
    fn over_https_the_cookie_is_host_prefixed_and_the_plain_name_is_ignored() {
        let sessions = Sessions::new(true);
        let s = sessions.start("AC1".into());
        let plain = format!("{COOKIE}={}", s.id);
        assert!(sessions.session(&headers(&[("cookie", &plain)])).is_none());
        let prefixed = format!("{SECURE_COOKIE}={}", s.id);
        assert!(sessions
            .session(&headers(&[("cookie", &prefixed)]))
            .is_some());
    }

    #[test]
    fn metrics_summary_sums_labelled_series() {
        let text = "# HELP a x\n# TYPE a counter\na 3\nb{x=\"1\"} 2\nb{x=\"2\"} 5\nc 0.5\n";
        let m = metrics_summary(text);
        assert_eq!(m["a"], json!(3));
        assert_eq!(m["b"], json!(7));
        assert_eq!(m["c"], json!(0.5));
    }

    #[test]
    fn every_embedded_page_file_is_served_with_its_type() {
        let names: Vec<&str> = assets::ASSETS.iter().map(|(n, _)| *n).collect();
        assert!(names.contains(&"index.html"), "{names:?}");
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("vendor/x.css"), "text/css; charset=utf-8");
    }

    #[test]
    fn delivery_events_name_what_the_callback_reports() {
        let p = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert_eq!(
            delivery_event(&p("RecordingStatus", "completed")),
            "recording completed"
        );
        assert_eq!(delivery_event(&p("CallStatus", "ringing")), "call ringing");
        assert_eq!(delivery_event(&[]), "");
    }
}
