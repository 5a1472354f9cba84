//! Outgoing HTTP: TwiML fetches and webhooks, every one signed with `X-Twilio-Signature`.

use std::time::Duration;

use control::signature::{compute_signature, form_encode, url_with_query};
use control::urls::strip_fragment;
use control::HttpMethod;
use thiserror::Error;

const USER_AGENT: &str = concat!("Hark/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Error)]
pub enum WebhookError {
    #[error("request to {url} failed: {message}")]
    Transport { url: String, message: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("reading the answer of {url} failed: {message}")]
    Body { url: String, message: String },
}

impl WebhookError {
    /// Worth another try later (status callbacks): transport errors, 5xx and 429.
    fn is_transient(&self) -> bool {
        match self {
            WebhookError::Transport { .. } | WebhookError::Body { .. } => true,
            WebhookError::Status { status, .. } => *status >= 500 || *status == 429,
        }
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
}

#[derive(Clone)]
pub struct Webhooks {
    client: reqwest::Client,
    auth_token: String,
}

impl Webhooks {
    pub fn new(
        auth_token: String,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, WebhookError> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(10))
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| WebhookError::Transport {
                url: String::new(),
                message: e.to_string(),
            })?;
        Ok(Self { client, auth_token })
    }

    /// One signed request; the answer must be 2xx.
    pub async fn request(
        &self,
        url: &str,
        method: HttpMethod,
        params: &[(String, String)],
    ) -> Result<Answer, WebhookError> {
        let url = strip_fragment(url);
        let request = match method {
            HttpMethod::Post => {
                let signature = compute_signature(&self.auth_token, url, params);
                self.client
                    .post(url)
                    .header(
                        "Content-Type",
                        "application/x-www-form-urlencoded; charset=UTF-8",
                    )
                    .header("X-Twilio-Signature", signature)
                    .header("I-Twilio-Idempotency-Token", crate::sids::new_sid("ID"))
                    .body(form_encode(params))
            }
            HttpMethod::Get => {
                let full = url_with_query(url, params);
                let signature = compute_signature(&self.auth_token, &full, &[]);
                self.client
                    .get(full)
                    .header("X-Twilio-Signature", signature)
                    .header("I-Twilio-Idempotency-Token", crate::sids::new_sid("ID"))
            }
        };
        let response = request.send().await.map_err(|e| WebhookError::Transport {
            url: url.to_string(),
            message: error_chain(&e),
        })?;
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
        let body = response.text().await.map_err(|e| WebhookError::Body {
            url: url.to_string(),
            message: error_chain(&e),
        })?;
        Ok(Answer {
            url: final_url,
            status,
            content_type,
            body,
        })
    }

    /// Fire-and-forget with retries (1 s, 5 s, 30 s) on transient failures; never delays the
    /// call. `on_done(delivered)` runs once at the end.
    pub fn spawn_callback<F>(
        &self,
        url: String,
        method: HttpMethod,
        params: Vec<(String, String)>,
        on_done: F,
    ) where
        F: FnOnce(bool) + Send + 'static,
    {
        let this = self.clone();
        tokio::spawn(async move {
            let backoff = [
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ];
            let mut attempt = 0;
            let delivered = loop {
                match this.request(&url, method, &params).await {
                    Ok(answer) => {
                        tracing::debug!(url = %url, status = answer.status, "status callback delivered");
                        break true;
                    }
                    Err(e) => {
                        let retry = e.is_transient() && attempt < backoff.len();
                        tracing::warn!(url = %url, error = %e, retry, "status callback failed");
                        if !retry {
                            break false;
                        }
                        tokio::time::sleep(backoff[attempt]).await;
                        attempt += 1;
                    }
                }
            };
            on_done(delivered);
        });
    }
}

/// reqwest hides the useful part (connection refused, timed out) in the source chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
