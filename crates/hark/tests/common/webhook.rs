//! The application side: an HTTP server that records every webhook Hark sends, verifies
//! `X-Twilio-Signature` with its own implementation of SPEC §5, and answers per path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use hmac::{Hmac, Mac};

/// What the handler saw when it fetched `RecordingUrl` while handling the request.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    pub wav_status: u16,
    pub wav_content_type: String,
    pub wav_len: usize,
}

/// One request Hark made.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    /// Form body (POST) or query (GET) parameters, in the order sent.
    pub params: Vec<(String, String)>,
    pub at: Instant,
    pub signature_ok: bool,
    pub signature_problem: Option<String>,
    pub fetched: Option<Fetched>,
}

impl Recorded {
    /// The single value of `name` (panics when missing or repeated: Hark never repeats a param).
    pub fn param(&self, name: &str) -> &str {
        let v: Vec<&str> = self
            .params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            v.len(),
            1,
            "param {name} on {} {}: {:?}",
            self.method,
            self.path,
            self.params
        );
        v[0]
    }

    /// A parameter of the URL's own query string (for POSTs, separate from the form).
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    pub fn opt_param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How to answer a path.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    pub delay: Duration,
    pub fetch_recording: bool,
}

impl Reply {
    pub fn twiml(body: &str) -> Reply {
        Reply {
            status: 200,
            content_type: "text/xml".into(),
            body: body.into(),
            delay: Duration::ZERO,
            fetch_recording: false,
        }
    }

    pub fn empty() -> Reply {
        Reply {
            content_type: "text/plain".into(),
            ..Reply::twiml("")
        }
    }

    pub fn status(mut self, code: u16) -> Reply {
        self.status = code;
        self
    }

    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }

    /// Fetch `RecordingUrl` (and `.wav`) inside the handler before answering.
    pub fn fetch_recording(mut self) -> Reply {
        self.fetch_recording = true;
        self
    }
}

struct Shared {
    base: String,
    auth_token: String,
    routes: Mutex<HashMap<String, Reply>>,
    log: Mutex<Vec<Recorded>>,
    client: reqwest::Client,
}

pub struct WebhookServer {
    server: crate::common::LocalServer,
    shared: Arc<Shared>,
}

impl WebhookServer {
    pub fn start() -> WebhookServer {
        Self::start_with_token(crate::common::AUTH_TOKEN)
    }

    pub fn start_with_token(auth_token: &str) -> WebhookServer {
        let mut server = crate::common::LocalServer::bind(0, 2);
        let shared = Arc::new(Shared {
            base: server.base.clone(),
            auth_token: auth_token.into(),
            routes: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("reqwest client"),
        });
        server.serve(Router::new().fallback(handle).with_state(shared.clone()));
        WebhookServer { server, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.server.base, path)
    }

    pub fn route(&self, path: &str, reply: Reply) {
        self.shared
            .routes
            .lock()
            .expect("routes")
            .insert(path.into(), reply);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.log.lock().expect("log").clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `path` has received at least `n` requests; panics after `timeout`.
    pub fn wait_for(&self, path: &str, n: usize, timeout: Duration) -> Vec<Recorded> {
        crate::common::wait_until(timeout, || {
            let r = self.requests_to(path);
            (r.len() >= n).then_some(r)
        })
        .unwrap_or_else(|| {
            panic!(
                "expected {n} request(s) to {path} within {timeout:?}; all requests so far: {:#?}",
                self.requests()
                    .iter()
                    .map(|r| format!("{} {}?{} {:?}", r.method, r.path, r.query, r.params))
                    .collect::<Vec<_>>()
            )
        })
    }

    /// Every request carried a valid X-Twilio-Signature.
    pub fn assert_signatures_ok(&self) {
        let bad: Vec<String> = self
            .requests()
            .iter()
            .filter(|r| !r.signature_ok)
            .map(|r| {
                format!(
                    "{} {}: {}",
                    r.method,
                    r.path,
                    r.signature_problem.clone().unwrap_or_default()
                )
            })
            .collect();
        assert!(bad.is_empty(), "bad X-Twilio-Signature on: {bad:#?}");
    }
}

/// SPEC §5 / twilio-python RequestValidator: base64(HMAC-SHA1(token, url + sorted name+value
/// pairs)), identical pairs counted once.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.sort();
    pairs.dedup();
    let mut s = url.to_string();
    for (k, v) in pairs {
        s.push_str(k);
        s.push_str(v);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).expect("hmac key");
    mac.update(s.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn parse_form(s: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn handle(
    State(sh): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let hdrs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let form = if method == Method::POST {
        parse_form(&body)
    } else {
        Vec::new()
    };
    let params = if method == Method::POST {
        form.clone()
    } else {
        parse_form(query.as_bytes())
    };
    // The URL Hark requested: our base + path + query (Hark must sign exactly that).
    let full_url = format!(
        "{}{}",
        sh.base,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let expected = twilio_signature(&sh.auth_token, &full_url, &form);
    let got = headers
        .get("x-twilio-signature")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let (signature_ok, signature_problem) = match &got {
        Some(g) if *g == expected => (true, None),
        Some(g) => (
            false,
            Some(format!(
                "got {g}, expected {expected} over {full_url} + {form:?}"
            )),
        ),
        None => (false, Some("header missing".into())),
    };
    let reply = sh
        .routes
        .lock()
        .expect("routes")
        .get(&path)
        .cloned()
        .unwrap_or_else(|| Reply::twiml("<Response/>"));
    let mut rec = Recorded {
        method: method.to_string(),
        path,
        query,
        headers: hdrs,
        params,
        at,
        signature_ok,
        signature_problem,
        fetched: None,
    };
    if reply.fetch_recording && signature_ok {
        if let Some(url) = rec.opt_param("RecordingUrl").map(str::to_string) {
            rec.fetched = Some(fetch(&sh.client, &url).await);
        }
    }
    sh.log.lock().expect("log").push(rec);
    if !signature_ok {
        return (StatusCode::FORBIDDEN, "bad signature").into_response();
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(axum::http::header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response()
}

async fn fetch(client: &reqwest::Client, url: &str) -> Fetched {
    let (status, content_type, body) = get(client, url).await;
    let (wav_status, wav_content_type, wav_body) = get(client, &format!("{url}.wav")).await;
    Fetched {
        status,
        content_type,
        body,
        wav_status,
        wav_content_type,
        wav_len: wav_body.len(),
    }
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, String, Vec<u8>) {
    // Recording media needs the account's credentials (http.media_auth = basic, the default).
    let request = client
        .get(url)
        .basic_auth(super::ACCOUNT_SID, Some(super::AUTH_TOKEN));
    match request.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let ct = r
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            (status, ct, body)
        }
        Err(e) => (0, format!("request error: {e}"), Vec::new()),
    }
}
