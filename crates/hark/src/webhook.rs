//! Outgoing HTTP: TwiML fetches and webhooks, every one signed with `X-Twilio-Signature`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use control::signature::{compute_signature, form_encode, url_with_query};
use control::urls::{parse_overrides, strip_fragment, ConnectionOverrides, FetchFailure};
use control::HttpMethod;
use thiserror::Error;

const USER_AGENT: &str = concat!("Hark/", env!("CARGO_PKG_VERSION"));

/// Bodies longer than this are not read further (TwiML over the limit is refused as 12100).
pub const MAX_BODY: usize = 256 * 1024;

#[derive(Debug, Error)]
pub enum WebhookError {
    #[error("request to {url} failed: {message}")]
    Transport { url: String, message: String },
    #[error("could not connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("{url} did not answer in time: {message}")]
    Timeout { url: String, message: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
}

impl WebhookError {
    /// Worth another try later (status callbacks): transport errors, 5xx and 429.
    pub fn is_transient(&self) -> bool {
        match self {
            WebhookError::Transport { .. }
            | WebhookError::Connect { .. }
            | WebhookError::Timeout { .. } => true,
            WebhookError::Status { status, .. } => *status >= 500 || *status == 429,
        }
    }

    /// The kind of failure, for a connection-override retry policy.
    fn failure(&self) -> Option<FetchFailure> {
        match self {
            WebhookError::Connect { .. } => Some(FetchFailure::Connect),
            WebhookError::Timeout { .. } => Some(FetchFailure::ReadTimeout),
            WebhookError::Status { status, .. } => Some(FetchFailure::Status(*status)),
            WebhookError::Transport { .. } => None,
        }
    }
}

fn transport_error(url: &str, e: &reqwest::Error) -> WebhookError {
    let url = url.to_string();
    let message = prompts::error_chain(e);
    if e.is_connect() {
        WebhookError::Connect { url, message }
    } else if e.is_timeout() {
        WebhookError::Timeout { url, message }
    } else {
        WebhookError::Transport { url, message }
    }
}

/// A successful (2xx) answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The URL the answer came from after redirects (relative URLs resolve against it).
    pub url: String,
    pub status: u16,
    pub content_type: String,
    pub body: String,
    /// The body was longer than [`MAX_BODY`] and was cut there.
    pub oversized: bool,
}

#[derive(Clone)]
pub struct Webhooks {
    client: reqwest::Client,
    /// Where requests may go (the SSRF guard); also the clients' resolver and redirects.
    egress: Arc<crate::egress::Egress>,
    /// Clients for connection overrides, by (connect, read) timeout in ms.
    clients: Arc<Mutex<HashMap<(u32, u32), reqwest::Client>>>,
    auth_token: String,
}

fn build_client(
    egress: &Arc<crate::egress::Egress>,
    connect_timeout: Duration,
    read_timeout: Option<Duration>,
    total_timeout: Option<Duration>,
) -> Result<reqwest::Client, WebhookError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .redirect(egress.redirect_policy(10))
        .dns_resolver(egress.resolver())
        .user_agent(USER_AGENT);
    if let Some(t) = read_timeout {
        builder = builder.read_timeout(t);
    }
    if let Some(t) = total_timeout {
        builder = builder.timeout(t);
    }
    builder.build().map_err(|e| WebhookError::Transport {
        url: String::new(),
        message: e.to_string(),
    })
}

impl Webhooks {
    pub fn new(
        auth_token: String,
        connect_timeout: Duration,
        timeout: Duration,
        egress: Arc<crate::egress::Egress>,
    ) -> Result<Self, WebhookError> {
        Ok(Self {
            client: build_client(&egress, connect_timeout, None, Some(timeout))?,
            clients: Arc::default(),
            auth_token,
            egress,
        })
    }

    /// The URL may be requested (an IP literal is checked here; names when they resolve).
    fn check(&self, url: &str) -> Result<(), WebhookError> {
        self.egress
            .check_url(url)
            .map_err(|e| WebhookError::Transport {
                url: url.to_string(),
                message: e.to_string(),
            })
    }

    /// One signed request; the answer must be 2xx.
    pub async fn request(
        &self,
        url: &str,
        method: HttpMethod,
        params: &[(String, String)],
    ) -> Result<Answer, WebhookError> {
        self.request_with_key(url, method, params, &crate::sids::new_sid("ID"))
            .await
    }

    /// A JSON POST (bot notifications); the answer must be 2xx.
    pub async fn post_json(&self, url: &str, body: &serde_json::Value) -> Result<(), WebhookError> {
        self.check(url)?;
        let request = self
            .client
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        send(url, request).await.map(|_| ())
    }

    /// [`Webhooks::request`] with a given `I-Twilio-Idempotency-Token` (the same on every retry
    /// of one callback).
    pub async fn request_with_key(
        &self,
        url: &str,
        method: HttpMethod,
        params: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<Answer, WebhookError> {
        let url = strip_fragment(url);
        self.check(url)?;
        let request = self.build(&self.client, url, method, params, idempotency_key);
        send(url, request).await
    }

    /// A TwiML fetch (SPEC §2.1): the URL's `#ct=…&rt=…&tt=…&rc=…&rp=…` overrides set timeouts
    /// and retries; the fragment is neither sent nor signed.
    pub async fn fetch(
        &self,
        url: &str,
        method: HttpMethod,
        params: &[(String, String)],
    ) -> Result<Answer, WebhookError> {
        let (clean, overrides, warnings) = parse_overrides(url);
        for w in warnings {
            tracing::warn!(url = %clean, warning = %w, "connection override ignored");
        }
        self.check(&clean)?;
        let client = self.client_for(&overrides)?;
        let total = Duration::from_millis(u64::from(overrides.total_timeout_ms));
        let started = tokio::time::Instant::now();
        let mut attempt = 0;
        loop {
            let remaining = total
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(1));
            let request = self
                .build(&client, &clean, method, params, &crate::sids::new_sid("ID"))
                .timeout(remaining);
            match send(&clean, request).await {
                Err(e)
                    if attempt < overrides.retry_count
                        && e.failure()
                            .is_some_and(|f| overrides.retry_policy.allows(f))
                        && started.elapsed() < total =>
                {
                    attempt += 1;
                    tracing::warn!(url = %clean, error = %e, attempt, "TwiML fetch failed; retrying");
                }
                other => return other,
            }
        }
    }

    fn client_for(&self, o: &ConnectionOverrides) -> Result<reqwest::Client, WebhookError> {
        let key = (o.connect_timeout_ms, o.read_timeout_ms);
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let client = build_client(
            &self.egress,
            Duration::from_millis(u64::from(o.connect_timeout_ms)),
            Some(Duration::from_millis(u64::from(o.read_timeout_ms))),
            None,
        )?;
        // Distinct overrides are few in practice; bound the cache anyway.
        if clients.len() >= 32 {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }

    fn build(
        &self,
        client: &reqwest::Client,
        url: &str,
        method: HttpMethod,
        params: &[(String, String)],
        idempotency: &str,
    ) -> reqwest::RequestBuilder {
        match method {
            HttpMethod::Post => client
                .post(url)
                .header(
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=UTF-8",
                )
                .header(
                    "X-Twilio-Signature",
                    compute_signature(&self.auth_token, url, params),
                )
                .header("I-Twilio-Idempotency-Token", idempotency)
                .body(form_encode(params)),
            HttpMethod::Get => {
                let full = url_with_query(url, params);
                let signature = compute_signature(&self.auth_token, &full, &[]);
                client
                    .get(full)
                    .header("X-Twilio-Signature", signature)
                    .header("I-Twilio-Idempotency-Token", idempotency)
            }
        }
    }
}

async fn send(url: &str, request: reqwest::RequestBuilder) -> Result<Answer, WebhookError> {
    let mut response = request.send().await.map_err(|e| transport_error(url, &e))?;
    let status = response.status().as_u16();
    let final_url = response.url().to_string();
    if !response.status().is_success() {
        return Err(WebhookError::Status {
            url: url.to_string(),
            status,
        });
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut bytes = Vec::new();
    let mut oversized = false;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(url, &e))?
    {
        let room = MAX_BODY - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            oversized = true;
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Answer {
        url: final_url,
        status,
        content_type,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        oversized,
    })
}
