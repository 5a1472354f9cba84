//! `/signal`: the Voice SDK's signalling WebSocket (PStream 1.6) on the HTTP listener, WSS when
//! `http.tls_cert`/`http.tls_key` are set. One task per connection drives a sans-IO
//! [`client_signal::Session`] (tokens, grants, heartbeats, frames); this module owns the socket,
//! the clock and the registry of identities that can be called.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use client_signal::{Session, SessionConfig, SessionEvent, SessionOutput, SignalError};
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::Config;

/// Frames are JSON with one SDP at most (a few KB); anything far larger is not the SDK.
const MAX_FRAME_BYTES: usize = 256 * 1024;

/// Identities with at least one registered connection (`device.register()`), for calls to
/// `client:<identity>`. An identity may register from several tabs or devices.
#[derive(Default)]
pub struct ClientRegistry {
    by_identity: Mutex<HashMap<String, HashMap<u64, ()>>>,
}

impl ClientRegistry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<u64, ()>>> {
        self.by_identity.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, identity: &str, connection: u64) {
        self.lock()
            .entry(identity.to_string())
            .or_default()
            .insert(connection, ());
    }

    fn remove(&self, identity: &str, connection: u64) {
        let mut map = self.lock();
        if let Some(connections) = map.get_mut(identity) {
            connections.remove(&connection);
            if connections.is_empty() {
                map.remove(identity);
            }
        }
    }

    /// Connections on which `identity` can be called now.
    pub fn registered(&self, identity: &str) -> usize {
        self.lock().get(identity).map_or(0, HashMap::len)
    }
}

/// What every signalling connection shares.
pub struct SignalState {
    session: SessionConfig,
    pub clients: Arc<ClientRegistry>,
    next_connection: std::sync::atomic::AtomicU64,
}

impl SignalState {
    pub fn new(config: &Config, clients: Arc<ClientRegistry>) -> Self {
        let mut session = SessionConfig::new(config.account_sid.to_string());
        session.api_keys = config
            .api_keys
            .iter()
            .map(|k| client_signal::ApiKey {
                sid: k.sid.to_string(),
                secret: k.secret.clone(),
            })
            .collect();
        session.application_sids = config
            .applications
            .iter()
            .map(|a| a.sid.to_string())
            .collect();
        SignalState {
            session,
            clients,
            next_connection: Default::default(),
        }
    }
}

/// The `/signal` route.
pub fn router(state: Arc<SignalState>) -> axum::Router {
    axum::Router::new()
        .route("/signal", get(upgrade))
        .with_state(state)
}

async fn upgrade(ws: WebSocketUpgrade, State(state): State<Arc<SignalState>>) -> Response {
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| {
            let id = state
                .next_connection
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            connection(socket, state, id).instrument(tracing::info_span!("signal", connection = id))
        })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One client connection, until it closes or its session ends it.
async fn connection(mut socket: WebSocket, state: Arc<SignalState>, id: u64) {
    let mut session = Session::new(Instant::now().into_std(), unix_now(), state.session.clone());
    let mut registered: Option<String> = None;
    loop {
        while let Some(output) = session.poll_output() {
            match output {
                SessionOutput::Send(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        session.handle_close(Instant::now().into_std());
                    }
                }
                SessionOutput::Event(event) => {
                    on_event(&state, &mut session, id, &mut registered, event)
                }
            }
        }
        if session.is_closed() {
            break;
        }
        let deadline = session
            .poll_timeout()
            .map(Instant::from_std)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
        tokio::select! {
            message = socket.recv() => {
                let now = Instant::now().into_std();
                match message {
                    Some(Ok(Message::Text(text))) => session.handle_text(now, text.as_str()),
                    // The SDK sends text only; pings are answered by the WebSocket layer.
                    Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => session.handle_close(now),
                }
            }
            _ = tokio::time::sleep_until(deadline) => session.handle_timeout(Instant::now().into_std()),
        }
    }
    if let Some(identity) = registered.take() {
        state.clients.remove(&identity, id);
    }
    tracing::debug!("signalling connection closed");
}

fn on_event(
    state: &SignalState,
    session: &mut Session,
    id: u64,
    registered: &mut Option<String>,
    event: SessionEvent,
) {
    let now = Instant::now().into_std();
    match event {
        SessionEvent::Listened { identity, .. } => {
            tracing::info!(%identity, "client listening");
        }
        SessionEvent::Registered => {
            if let Some(identity) = session.identity().map(str::to_string) {
                state.clients.add(&identity, id);
                tracing::info!(%identity, "client registered");
                *registered = Some(identity);
            }
        }
        SessionEvent::Unregistered | SessionEvent::Closed | SessionEvent::TokenExpired => {
            if let Some(identity) = registered.take() {
                state.clients.remove(&identity, id);
                tracing::info!(%identity, "client unregistered");
            }
        }
        SessionEvent::Invite { temp_callsid, .. } => {
            // Browser media (WebRTC) is not wired to calls yet: refuse the call cleanly, the
            // way Twilio does for a call it cannot connect.
            tracing::warn!(callsid = %temp_callsid, "client call refused: WebRTC media is not available yet");
            let _ = session.hangup(
                now,
                &temp_callsid,
                Some(SignalError {
                    code: 31005,
                    message: "Hark cannot take browser calls yet".into(),
                }),
            );
        }
        SessionEvent::Reconnect { callsid, .. } | SessionEvent::Reinvite { callsid, .. } => {
            let _ = session.hangup(now, &callsid, None);
        }
        SessionEvent::Answer { .. }
        | SessionEvent::Hangup { .. }
        | SessionEvent::Reject { .. }
        | SessionEvent::Dtmf { .. }
        | SessionEvent::Message(_) => {}
    }
}
