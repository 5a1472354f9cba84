//! `/signal`: the Voice SDK's signalling WebSocket (PStream 1.6) on the HTTP listener, WSS when
//! `http.tls_cert`/`http.tls_key` are set. One task per connection drives a sans-IO
//! [`client_signal::Session`] (tokens, grants, heartbeats, frames); this module owns the socket,
//! the clock and the registry of identities that can be called.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use call_core::SipInput;
use client_signal::{Session, SessionConfig, SessionEvent, SessionOutput, SignalError};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use crate::call_env::CallEnv;
use crate::client_call::{ClientCommand, ClientEvent, ClientIncoming};
use crate::config::Config;

/// Frames are JSON with one SDP at most (a few KB); anything far larger is not the SDK.
const MAX_FRAME_BYTES: usize = 256 * 1024;

/// Identities with at least one registered connection (`device.register()`), for calls to
/// `client:<identity>`. An identity may register from several tabs or devices.
#[derive(Default)]
pub struct ClientRegistry {
    by_identity: Mutex<HashMap<String, HashMap<u64, Registered>>>,
    /// Client calls by CallSid, while they run: what a reconnect (`invite{reconnect}`, on any
    /// connection) needs to rebind one.
    live_calls: Mutex<HashMap<String, LiveCall>>,
}

/// A running client call as a reconnect finds it.
struct LiveCall {
    reconnect: String,
    events: mpsc::Sender<ClientEvent>,
}

/// A fresh reconnect token: opaque to the client, checked on `invite{reconnect}`.
pub fn reconnect_token() -> String {
    format!("rc{:032x}", rand::random::<u128>())
}

/// A connection on which an identity can be called.
#[derive(Clone)]
struct Registered {
    commands: mpsc::Sender<ClientCommand>,
    peer: SocketAddr,
}

impl ClientRegistry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<u64, Registered>>> {
        self.by_identity.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, identity: &str, connection: u64, registered: Registered) {
        self.lock()
            .entry(identity.to_string())
            .or_default()
            .insert(connection, registered);
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

    /// The connections on which `identity` can be called now, by id.
    pub fn connections(&self, identity: &str) -> Vec<(u64, mpsc::Sender<ClientCommand>)> {
        let mut found: Vec<_> = self
            .lock()
            .get(identity)
            .map(|c| c.iter().map(|(id, r)| (*id, r.commands.clone())).collect())
            .unwrap_or_default();
        found.sort_by_key(|(id, _)| *id);
        found
    }

    fn live(&self) -> MutexGuard<'_, HashMap<String, LiveCall>> {
        self.live_calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A client call that may be rebound with `reconnect` until [`forget_call`](Self::forget_call).
    pub fn track_call(&self, call_sid: &str, reconnect: &str, events: mpsc::Sender<ClientEvent>) {
        let reconnect = reconnect.to_string();
        self.live()
            .insert(call_sid.to_string(), LiveCall { reconnect, events });
    }

    pub fn forget_call(&self, call_sid: &str) {
        self.live().remove(call_sid);
    }

    /// The events of `call_sid` when `reconnect` is its token.
    fn rebind(&self, call_sid: &str, reconnect: &str) -> Option<mpsc::Sender<ClientEvent>> {
        self.live()
            .get(call_sid)
            .filter(|c| http_api::constant_time_eq(c.reconnect.as_bytes(), reconnect.as_bytes()))
            .map(|c| c.events.clone())
    }

    /// Where `identity` registered from last (its media address family), else IPv4 loopback.
    pub fn peer(&self, identity: &str) -> SocketAddr {
        self.lock()
            .get(identity)
            .and_then(|c| c.iter().max_by_key(|(id, _)| **id).map(|(_, r)| r.peer))
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

/// What every signalling connection shares.
pub struct SignalState {
    session: SessionConfig,
    /// `client.dev_tokens`: the key and application the demo page's tokens use.
    dev: Option<DevTokens>,
    /// Without TLS, tokens would cross the network in clear: only loopback peers may connect.
    tls: bool,
    pub clients: Arc<ClientRegistry>,
    next_connection: std::sync::atomic::AtomicU64,
    /// Set once the call machinery is up (the HTTP listener starts first).
    pub calls: OnceLock<Arc<CallEnv>>,
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
        let dev = config.client.dev_tokens.then(|| {
            let key = DevTokens {
                key_sid: format!("SK{:032x}", rand::random::<u128>()),
                secret: format!("{:032x}", rand::random::<u128>()),
                // The first configured application, else one standing for `[app]`.
                application_sid: config
                    .applications
                    .first()
                    .map(|a| a.sid.to_string())
                    .unwrap_or_else(|| format!("AP{:032x}", rand::random::<u128>())),
            };
            tracing::warn!("client.dev_tokens is on: /client/token hands out access tokens to anyone who can reach it");
            session.api_keys.push(client_signal::ApiKey {
                sid: key.key_sid.clone(),
                secret: key.secret.clone(),
            });
            if !session.application_sids.contains(&key.application_sid) {
                session.application_sids.push(key.application_sid.clone());
            }
            key
        });
        SignalState {
            session,
            dev,
            tls: config.http_tls.is_some(),
            clients,
            next_connection: Default::default(),
            calls: OnceLock::new(),
        }
    }
}

/// The client's address, for both the plain and the TLS listener.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// What `/client/token` signs with.
struct DevTokens {
    key_sid: String,
    secret: String,
    application_sid: String,
}

/// A dev token's lifetime.
const DEV_TOKEN_TTL_SECS: u64 = 3600;

/// `/signal`, and the demo page with its SDK and token endpoint under `/client/`.
pub fn router(state: Arc<SignalState>) -> axum::Router {
    axum::Router::new()
        .route("/signal", get(upgrade))
        .route(
            "/client",
            get(|| async { axum::response::Redirect::permanent("/client/") }),
        )
        .route("/client/", get(demo_page))
        .route("/client/twilio.min.js", get(sdk))
        .route("/client/token", get(dev_token))
        .with_state(state)
}

async fn demo_page() -> impl IntoResponse {
    axum::response::Html(include_str!("../assets/client/index.html"))
}

/// The vendored `@twilio/voice-sdk` (see assets/client/README.md), so the page needs no CDN.
async fn sdk() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/javascript")],
        include_bytes!("../assets/client/twilio.min.js").as_slice(),
    )
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    identity: Option<String>,
}

/// `GET /client/token[?identity=…]`: a token for the demo page (404 unless
/// `client.dev_tokens = true`). Identities are 1–121 of `A-Z a-z 0-9 _ - .`, as Twilio allows.
async fn dev_token(
    State(state): State<Arc<SignalState>>,
    axum::extract::Query(query): axum::extract::Query<TokenQuery>,
) -> Response {
    use axum::http::StatusCode;
    let Some(dev) = &state.dev else {
        return (StatusCode::NOT_FOUND, "client.dev_tokens is off\n").into_response();
    };
    let identity = query
        .identity
        .unwrap_or_else(|| format!("browser-{:04x}", rand::random::<u16>()));
    let valid = (1..=121).contains(&identity.len())
        && identity
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !valid {
        return (
            StatusCode::BAD_REQUEST,
            "identity: 1-121 characters of A-Z a-z 0-9 _ - .\n",
        )
            .into_response();
    }
    let voice = client_signal::VoiceGrant {
        incoming_allow: true,
        outgoing: Some(client_signal::OutgoingGrant {
            application_sid: dev.application_sid.clone(),
            params: Vec::new(),
        }),
    };
    let token = client_signal::mint(
        &dev.key_sid,
        &dev.secret,
        &state.session.account_sid,
        &identity,
        &voice,
        unix_now(),
        DEV_TOKEN_TTL_SECS,
    );
    let body = serde_json::json!({ "identity": identity, "token": token }).to_string();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn upgrade(
    ws: WebSocketUpgrade,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    State(state): State<Arc<SignalState>>,
) -> Response {
    if !state.tls && !peer.ip().is_loopback() {
        tracing::warn!(%peer, "plain-WebSocket /signal refused from a non-loopback peer (set http.tls_cert/http.tls_key)");
        return (
            axum::http::StatusCode::FORBIDDEN,
            "/signal needs TLS (http.tls_cert, http.tls_key) for peers other than loopback\n",
        )
            .into_response();
    }
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| {
            let id = state
                .next_connection
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            connection(socket, state, id, peer)
                .instrument(tracing::info_span!("signal", connection = id))
        })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One client connection, until it closes or its session ends it.
/// A connection's calls: the event queue of each, by the client's id and by our CallSid.
struct Calls {
    by_sid: HashMap<String, mpsc::Sender<ClientEvent>>,
    commands: mpsc::Sender<ClientCommand>,
    peer: SocketAddr,
}

async fn connection(mut socket: WebSocket, state: Arc<SignalState>, id: u64, peer: SocketAddr) {
    let (commands, mut command_rx) = mpsc::channel(64);
    let mut calls = Calls {
        by_sid: HashMap::new(),
        commands,
        peer,
    };
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
                    on_event(&state, &mut session, id, &mut registered, &mut calls, event)
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
            Some(command) = command_rx.recv() => on_command(&mut session, &mut calls, id, command),
            _ = tokio::time::sleep_until(deadline) => session.handle_timeout(Instant::now().into_std()),
        }
    }
    if let Some(identity) = registered.take() {
        state.clients.remove(&identity, id);
    }
    // Each call on this connection learns it once (it is mapped by two ids until answered).
    let mut told: Vec<&mpsc::Sender<ClientEvent>> = Vec::new();
    for events in calls.by_sid.values() {
        if !told.iter().any(|t| t.same_channel(events)) {
            send_reliably(events, ClientEvent::SignallingLost { connection: id });
            told.push(events);
        }
    }
    tracing::debug!("signalling connection closed");
}

/// A call's request for the browser.
fn on_command(session: &mut Session, calls: &mut Calls, id: u64, command: ClientCommand) {
    let now = Instant::now().into_std();
    let result = match &command {
        ClientCommand::Invite {
            call_sid,
            sdp,
            parameters,
            events,
            reconnect,
        } => {
            let invited =
                session.invite_client(now, call_sid, sdp, parameters.clone(), Some(reconnect));
            match &invited {
                Ok(()) => {
                    calls.by_sid.insert(call_sid.clone(), events.clone());
                }
                // Unregistered meanwhile: this device is out of the call.
                Err(_) => {
                    let _ = events.try_send(ClientEvent::Gone { connection: id });
                }
            }
            invited
        }
        ClientCommand::Cancel { call_sid } => {
            calls.by_sid.remove(call_sid);
            session.cancel(now, call_sid)
        }
        ClientCommand::Ringing {
            temp_callsid,
            call_sid,
        } => session.ringing(now, temp_callsid, call_sid),
        ClientCommand::Answer {
            temp_callsid,
            call_sid,
            sdp,
            reconnect,
        } => session.answer(now, temp_callsid, call_sid, sdp, Some(reconnect)),
        ClientCommand::Hangup { call_sid } => {
            calls.by_sid.remove(call_sid);
            session.hangup(now, call_sid, None)
        }
        ClientCommand::Reject {
            temp_callsid,
            status,
        } => {
            calls.by_sid.remove(temp_callsid);
            // As Twilio reports a call the application refused: 31486 busy, else 31603.
            let code = if *status == 486 { 31486 } else { 31603 };
            let error = SignalError {
                code,
                message: format!("call refused ({status})"),
            };
            session.hangup(now, temp_callsid, Some(error))
        }
    };
    if let Err(e) = result {
        tracing::debug!(?command, error = ?e, "frame for a call the client no longer has");
    }
}

/// Tells a call what its client did.
fn deliver(calls: &mut Calls, callsid: &str, input: ClientEvent) {
    if let Some(tx) = calls.by_sid.get(callsid) {
        send_reliably(tx, input);
    }
}

/// Queues `event` for a call; a full queue (a call task busy for a moment) gets it from a task
/// of its own rather than losing it: a lost hang-up or signalling loss would leave the call up.
fn send_reliably(tx: &mpsc::Sender<ClientEvent>, event: ClientEvent) {
    match tx.try_send(event) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full(event)) => {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(event).await;
            });
        }
    }
}

fn on_event(
    state: &SignalState,
    session: &mut Session,
    id: u64,
    registered: &mut Option<String>,
    calls: &mut Calls,
    event: SessionEvent,
) {
    let now = Instant::now().into_std();
    match event {
        SessionEvent::Listened { identity, .. } => {
            tracing::info!(%identity, "client listening");
        }
        SessionEvent::Registered => {
            if let Some(identity) = session.identity().map(str::to_string) {
                let registered_at = Registered {
                    commands: calls.commands.clone(),
                    peer: calls.peer,
                };
                state.clients.add(&identity, id, registered_at);
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
        SessionEvent::Invite {
            temp_callsid,
            sdp,
            params,
            application_sid,
        } => {
            let (Some(env), Some(identity)) = (state.calls.get(), session.identity()) else {
                let error = SignalError {
                    code: 31005,
                    message: "Hark is not ready for calls".into(),
                };
                let _ = session.hangup(now, &temp_callsid, Some(error));
                return;
            };
            let (events_tx, events) = mpsc::channel(64);
            let reconnect = reconnect_token();
            let incoming = ClientIncoming {
                temp_callsid: temp_callsid.clone(),
                offer_sdp: sdp,
                identity: identity.to_string(),
                params,
                application_sid,
                peer: calls.peer,
                commands: calls.commands.clone(),
                connection: id,
                events,
                reconnect,
                rebind: events_tx.clone(),
            };
            let call_sid = crate::call::spawn_client(env.clone(), incoming);
            calls.by_sid.insert(temp_callsid, events_tx.clone());
            calls.by_sid.insert(call_sid.to_string(), events_tx);
        }
        SessionEvent::Hangup { callsid, .. } => {
            deliver(calls, &callsid, ClientEvent::HungUp { connection: id });
            calls.by_sid.remove(&callsid);
        }
        SessionEvent::Reject { callsid } => {
            deliver(calls, &callsid, ClientEvent::Rejected { connection: id });
            calls.by_sid.remove(&callsid);
        }
        SessionEvent::Answer { callsid, sdp } => {
            deliver(
                calls,
                &callsid,
                ClientEvent::Answered {
                    connection: id,
                    sdp,
                },
            );
        }
        SessionEvent::Dtmf { callsid, digits } => {
            for digit in digits.chars() {
                let key = SipInput::Dtmf {
                    digit,
                    duration_ms: 160,
                };
                deliver(calls, &callsid, ClientEvent::Input(key));
            }
        }
        SessionEvent::Reconnect {
            callsid, reconnect, ..
        } => match state.clients.rebind(&callsid, &reconnect) {
            Some(events) => {
                tracing::info!(call = %callsid, "client call rebound to this connection");
                let rebound = ClientEvent::Rebound {
                    connection: id,
                    commands: calls.commands.clone(),
                };
                if events.try_send(rebound).is_ok() {
                    calls.by_sid.insert(callsid.clone(), events);
                    let _ = session.reconnected(now, &callsid, &reconnect);
                } else {
                    let _ = session.hangup(now, &callsid, None);
                }
            }
            None => {
                tracing::info!(call = %callsid, "reconnect for a call that is over or not ours");
                let error = SignalError {
                    code: 31404,
                    message: "no such call to reconnect".into(),
                };
                let _ = session.hangup(now, &callsid, Some(error));
            }
        },
        // ICE restart is not offered (ICE-lite, host candidates): the call goes on, or its
        // media times out.
        SessionEvent::Reinvite { callsid, .. } => {
            let _ = session.hangup(now, &callsid, None);
        }
        SessionEvent::Message(_) => {}
    }
}
