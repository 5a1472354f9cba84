//! A node among several sharing one PostgreSQL database (`storage.database_url`): it announces
//! itself (`nodes`: where its API is, whether it drains) every few seconds, takes over the
//! transcription jobs of nodes whose lease ran out, and sends live call control of a call another
//! node runs to that node's API (the call's row names its node).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

use crate::outbox::now_ms;
use crate::services::Services;

/// How often a node announces itself.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A node silent this long is taken for dead: its calls are not forwarded to.
pub const NODE_STALE: Duration = Duration::from_secs(30);

/// Announces the node until `shutdown`, and puts back in the queue the transcription jobs of
/// nodes that stopped renewing them.
pub async fn run(
    services: Arc<Services>,
    api_url: String,
    drain: http_api::DrainSwitch,
    mut shutdown: watch::Receiver<bool>,
) {
    let node = services.config.node_id.clone();
    let started = now_ms();
    loop {
        let (node_id, url, draining) = (node.clone(), api_url.clone(), drain.is_draining());
        services
            .db(move |s| s.announce_node(&node_id, &url, started, now_ms(), draining))
            .await;
        if let Some(n) = services
            .db(|s| s.requeue_expired_transcriptions(now_ms()))
            .await
            .filter(|n| *n > 0)
        {
            tracing::warn!(
                jobs = n,
                "took over transcription jobs of a node that stopped"
            );
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
}

/// How often a node asks the others what calls they run (the console's live page).
pub const PEER_CALLS_POLL: Duration = Duration::from_secs(1);

/// Keeps `registry`'s view of the other nodes' running calls current until `shutdown`: every
/// [`PEER_CALLS_POLL`], each live node's `GET /console/api/live.json?scope=node` with the
/// account's credentials. A node that does not answer in time shows no calls until it does.
pub async fn watch_peer_calls(
    services: Arc<Services>,
    registry: Arc<crate::live::Registry>,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_millis(900))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client: the live page shows this node's calls only");
            return;
        }
    };
    let me = services.config.node_id.clone();
    let (account, token) = (
        services.config.account_sid.to_string(),
        services.config.auth_token.clone(),
    );
    loop {
        let nodes = services.db(|s| s.nodes()).await.unwrap_or_default();
        let now = now_ms();
        let mut calls = Vec::new();
        for node in nodes
            .iter()
            .filter(|n| n.node_id != me && now - n.heartbeat_ms <= NODE_STALE.as_millis() as i64)
        {
            let url = format!(
                "{}/console/api/live.json?scope=node",
                node.api_url.trim_end_matches('/')
            );
            let answer = client
                .get(&url)
                .basic_auth(&account, Some(&token))
                .header(http_api::FORWARDED_HEADER, me.as_str())
                .send()
                .await;
            let body = match answer {
                Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok(),
                Ok(r) => {
                    tracing::debug!(node = %node.node_id, status = r.status().as_u16(), "peer's live calls refused");
                    None
                }
                Err(e) => {
                    tracing::debug!(node = %node.node_id, error = %e, "peer's live calls unavailable");
                    None
                }
            };
            if let Some(list) = body.as_ref().and_then(|b| b["calls"].as_array()) {
                calls.extend(list.iter().filter_map(|c| peer_call(c, &node.node_id)));
            }
        }
        registry.set_peer_calls(calls);
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(PEER_CALLS_POLL) => {}
        }
    }
}

/// One call of another node's `live.json`; `None` if it is not shaped as ours are.
fn peer_call(c: &serde_json::Value, node: &str) -> Option<http_api::control::LiveCallView> {
    let text = |k: &str| c[k].as_str().map(str::to_owned);
    Some(http_api::control::LiveCallView {
        sid: text("sid")?,
        from: text("from")?,
        to: text("to")?,
        direction: text("direction")?,
        state: c["state"].as_str()?.parse().ok()?,
        started_ms: c["started_ms"].as_i64()?,
        legs: u32::try_from(c["legs"].as_u64()?).ok()?,
        verb: text("verb")?,
        recording: text("recording")?,
        bot: c["bot"].as_bool()?,
        node: node.to_owned(),
    })
}

/// [`http_api::CallForwarder`] over the shared database and HTTP.
pub struct Forwarder {
    store: Arc<store::Store>,
    node_id: String,
    client: reqwest::Client,
}

impl Forwarder {
    pub fn new(store: Arc<store::Store>, node_id: String) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            store,
            node_id,
            client,
        })
    }

    async fn send(
        &self,
        call: &store::CallSid,
        request: http_api::ForwardRequest,
    ) -> Option<Response> {
        let (store, sid) = (self.store.clone(), call.clone());
        let node = match tokio::task::spawn_blocking(move || store.call_node(&sid)).await {
            Ok(Ok(node)) => node?,
            Ok(Err(e)) => {
                tracing::error!(call = %call, error = %e, "looking up the call's node");
                return None;
            }
            Err(_) => return None,
        };
        let me = &self.node_id;
        if &node.node_id == me {
            return None;
        }
        if now_ms() - node.heartbeat_ms > NODE_STALE.as_millis() as i64 {
            tracing::warn!(call = %call, node = %node.node_id, "call's node is silent; answering here");
            return None;
        }
        let url = format!(
            "{}{}",
            node.api_url.trim_end_matches('/'),
            request.path_and_query
        );
        let mut out = self.client.request(request.method.clone(), &url);
        for name in [
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
        ] {
            if let Some(v) = request.headers.get(&name) {
                out = out.header(name, v);
            }
        }
        let sent = out
            .header(http_api::FORWARDED_HEADER, me.as_str())
            .body(request.body)
            .send()
            .await;
        let answer = match sent {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(call = %call, node = %node.node_id, url, error = %e, "forwarding live call control failed");
                return Some(unreachable(&node.node_id));
            }
        };
        let status =
            StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let content_type = answer.headers().get(reqwest::header::CONTENT_TYPE).cloned();
        let body = match answer.bytes().await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(call = %call, node = %node.node_id, error = %e, "reading the forwarded answer failed");
                return Some(unreachable(&node.node_id));
            }
        };
        tracing::info!(call = %call, node = %node.node_id, status = status.as_u16(), "live call control forwarded to the call's node");
        let mut response = (status, body).into_response();
        if let Some(ct) = content_type.and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
            response
                .headers_mut()
                .insert(axum::http::header::CONTENT_TYPE, ct);
        }
        Some(response)
    }
}

fn unreachable(node: &str) -> Response {
    let body = serde_json::json!({
        "code": 20500,
        "message": format!("The node running this call ({node}) cannot be reached"),
        "more_info": "https://www.twilio.com/docs/errors/20500",
        "status": 502,
    });
    (
        StatusCode::BAD_GATEWAY,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

impl http_api::CallForwarder for Forwarder {
    fn forward<'a>(
        &'a self,
        call: &'a store::CallSid,
        request: http_api::ForwardRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Response>> + Send + 'a>> {
        Box::pin(self.send(call, request))
    }
}
