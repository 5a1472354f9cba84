//! `hark drain`: asks a running node (`POST /admin/drain`) to stop taking calls, and optionally
//! waits until its calls are over. The credentials are the node's: its config's account SID and
//! auth token (read from `account.auth_token_file` when the config leaves it empty).

use std::time::Duration;

use crate::config::Config;

pub struct DrainRequest {
    /// The node's API base URL; `None`: the config's.
    pub url: Option<String>,
    /// `false`: take calls again.
    pub draining: bool,
    /// Wait for the node to have no calls up, at most this long.
    pub wait: Option<Duration>,
}

/// The node's API base URL from its config: `http.public_url`, else `http.listen` (a wildcard
/// listen address reached on loopback).
fn base_url(config: &Config) -> String {
    if !config.http_public_url.is_empty() {
        return config.http_public_url.trim_end_matches('/').to_owned();
    }
    let mut addr = config.http_listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    format!("http://{addr}")
}

fn token(config: &Config) -> Result<String, String> {
    if !config.auth_token.is_empty() {
        return Ok(config.auth_token.clone());
    }
    let path = crate::secrets::token_path(config);
    std::fs::read_to_string(&path)
        .map(|t| t.trim().to_owned())
        .map_err(|e| format!("auth token file {}: {e}", path.display()))
}

/// Sets the node's state; returns its JSON state and whether it has no calls up (always true
/// without `wait`).
pub async fn run(config: &Config, request: DrainRequest) -> Result<(String, bool), String> {
    let base = request.url.clone().unwrap_or_else(|| base_url(config));
    let url = format!("{}{}", base.trim_end_matches('/'), "/admin/drain");
    let token = token(config)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let account = config.account_sid.as_str();
    let sent = client
        .post(&url)
        .basic_auth(account, Some(&token))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("Draining={}", request.draining))
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = sent.status();
    let mut state = sent.text().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url}: {status}: {state}"));
    }
    let Some(limit) = request.wait else {
        return Ok((state, true));
    };
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let calls = serde_json::from_str::<serde_json::Value>(&state)
            .ok()
            .and_then(|v| v["active_calls"].as_u64());
        if calls == Some(0) {
            return Ok((state, true));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok((state, false));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        state = client
            .get(&url)
            .basic_auth(account, Some(&token))
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .text()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
    }
}
