//! One signalling WebSocket as a sans-IO state machine.
//!
//! What the SDK needs from the server (research brief §2.5, `device.ts`, `call.ts`):
//! - `connected{token:{identity, ttl}}` after **every** valid `listen`; a refused token gets
//!   `error{error:{code,message}}`, no `connected`, and the socket stays open so a later `listen`
//!   (`device.updateToken()`) can succeed. Closing it would make the SDK reconnect with the same
//!   token in a loop.
//! - `ready`/`offline` answering `register{media:{audio}}` (sent again every 30 s).
//! - a `"\n"` at least every 10 s: after 15 s without any frame the SDK drops the socket. The
//!   client echoes each one and sends nothing else unprompted, so the echoes are its liveness.
//! - `error` 31205 when the token expires while listening.
//!
//! Call frames become [`SessionEvent`]s; the daemon answers through [`Session::ringing`],
//! [`Session::answer`], [`Session::hangup`], [`Session::invite_client`], [`Session::cancel`].
//!
//! Call ids: an outgoing call starts with the client's temporary `TJS…` id. Once the daemon
//! names its CA sid (in `ringing` or `answer`) the session maps the temporary id to it, and every
//! later event for that call carries the CA sid whichever id the client used.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::frame::{
    CallMessage, ClientFrame, ClientInvite, ClientText, IncomingParameters, ServerFrame,
    SignalError, HEARTBEAT,
};
use crate::token::{verify, VerifiedToken, VoiceGrant};

/// An API key (`[[api_key]]`) that may sign access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// `SK…`
    pub sid: String,
    /// The HMAC key is this string's UTF-8 bytes, as twilio-python uses it.
    pub secret: String,
}

/// What a session checks tokens and grants against, and its timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Tokens must name this account in `sub`.
    pub account_sid: String,
    pub api_keys: Vec<ApiKey>,
    /// The `[[application]]` sids an outgoing grant may name.
    pub application_sids: Vec<String>,
    /// Clock skew allowed on `exp`/`nbf`.
    pub token_leeway: Duration,
    /// Period of the `"\n"` heartbeat; the SDK drops the socket after 15 s without a frame.
    pub heartbeat_interval: Duration,
    /// The client echoes every heartbeat; this long without any frame ends the session.
    pub client_silence_timeout: Duration,
}

impl SessionConfig {
    /// Defaults: 30 s leeway, heartbeat every 10 s, 30 s of client silence (three missed echoes).
    pub fn new(account_sid: impl Into<String>) -> Self {
        Self {
            account_sid: account_sid.into(),
            api_keys: Vec::new(),
            application_sids: Vec::new(),
            token_leeway: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            client_silence_timeout: Duration::from_secs(30),
        }
    }
}

/// What the daemon must do for the session.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionOutput {
    /// Write this WebSocket text frame (a PStream frame or the `"\n"` heartbeat).
    Send(String),
    Event(SessionEvent),
}

/// What happened on the connection, for the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// A valid `listen` (first one or a token update); `connected` was sent.
    Listened {
        identity: String,
        grants: VoiceGrant,
    },
    /// The identity can now be called (`ready` was sent).
    Registered,
    /// The identity can no longer be called: unregister, token expiry, identity change or close.
    Unregistered,
    /// The client places a call. `params` are its `connect({params})` pairs (URL-decoded, order
    /// kept) followed by the token's outgoing params, which win over a client pair of the same
    /// name.
    Invite {
        temp_callsid: String,
        sdp: String,
        params: Vec<(String, String)>,
        application_sid: String,
    },
    /// The client rebinds a call after a signalling drop with our `answer{reconnect}` token.
    Reconnect {
        callsid: String,
        reconnect: String,
        sdp: String,
    },
    /// The client accepted our incoming call.
    Answer { callsid: String, sdp: String },
    Hangup {
        callsid: String,
        message: Option<String>,
    },
    /// The client declined our incoming call.
    Reject { callsid: String },
    /// Digits in signalling (only when telephone-event was not negotiated).
    Dtmf { callsid: String, digits: String },
    /// ICE restart: answer with [`Session::answer`] and the new SDP.
    Reinvite { callsid: String, sdp: String },
    /// `call.sendMessage()`: acknowledge with [`Session::ack_message`].
    Message(CallMessage),
    /// The token expired while listening; `error` 31205 was sent.
    TokenExpired,
    /// The session is over (client silent too long, or [`Session::handle_close`]).
    Closed,
}

/// Why [`Session::poll_timeout`] wants to be woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerReason {
    Heartbeat,
    TokenExpiry,
    ClientSilence,
}

/// A daemon request the session cannot carry out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("no call {0:?} on this signalling session")]
    UnknownCall(String),
    #[error("the client is not registered")]
    NotRegistered,
    #[error("call {0:?} is already on this signalling session")]
    DuplicateCall(String),
    #[error("the signalling session is closed")]
    Closed,
}

/// Code for a frame we cannot read or that names no call of ours ("Bad Request").
const BAD_REQUEST: u32 = 31400;
/// Code for a grant that does not allow what the client asked ("Authentication failed").
const NOT_ALLOWED: u32 = 31201;

/// A call this connection carries.
#[derive(Debug, Clone)]
struct CallEntry {
    /// The id the client chose (`TJS…`) or, for calls we named first, the CA sid.
    client_id: String,
    /// The CA sid once the daemon named it.
    call_sid: Option<String>,
}

impl CallEntry {
    /// The id events and frames use: the CA sid when known.
    fn id(&self) -> &str {
        self.call_sid.as_deref().unwrap_or(&self.client_id)
    }

    fn is(&self, callsid: &str) -> bool {
        self.client_id == callsid || self.call_sid.as_deref() == Some(callsid)
    }
}

/// Whether the client holds a usable token.
#[derive(Debug, Clone)]
enum Auth {
    /// No valid `listen` yet.
    None,
    Listening {
        token: VerifiedToken,
        expires: Instant,
    },
    /// The token ran out; frames get 31205 until a new `listen`.
    Expired,
}

/// One signalling connection. See the module docs for the protocol.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    /// `started` and `unix_at_start` tie the monotonic clock to token time (Unix seconds).
    started: Instant,
    unix_at_start: u64,
    auth: Auth,
    registered: bool,
    calls: Vec<CallEntry>,
    /// Heartbeats go out on a fixed beat even while other frames flow: their echoes are the only
    /// proof that the client is alive (it sends nothing unprompted).
    last_heartbeat: Instant,
    last_received: Instant,
    closed: bool,
    outputs: VecDeque<SessionOutput>,
}

impl Session {
    /// A session for a socket that opened at `now`; `unix_now` is the wall clock (seconds) at
    /// that instant, so tokens can be checked in simulated time.
    pub fn new(now: Instant, unix_now: u64, config: SessionConfig) -> Self {
        Self {
            config,
            started: now,
            unix_at_start: unix_now,
            auth: Auth::None,
            registered: false,
            calls: Vec::new(),
            last_heartbeat: now,
            last_received: now,
            closed: false,
            outputs: VecDeque::new(),
        }
    }

    /// The identity of the current token.
    pub fn identity(&self) -> Option<&str> {
        self.token().map(|t| t.identity.as_str())
    }

    /// The current valid token.
    pub fn token(&self) -> Option<&VerifiedToken> {
        match &self.auth {
            Auth::Listening { token, .. } => Some(token),
            Auth::None | Auth::Expired => None,
        }
    }

    pub fn is_registered(&self) -> bool {
        self.registered
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// One text frame from the client.
    pub fn handle_text(&mut self, now: Instant, text: &str) {
        if self.closed {
            return;
        }
        self.last_received = now;
        match ClientText::parse(text) {
            Ok(ClientText::Heartbeat) => {}
            Ok(ClientText::Frame(frame)) => self.handle_frame(now, frame),
            Err(err) => self.send_frame(
                now,
                ServerFrame::Error {
                    error: SignalError::new(BAD_REQUEST, err.to_string()),
                    callsid: None,
                },
            ),
        }
    }

    /// The socket closed (either side). Ends the session once.
    pub fn handle_close(&mut self, _now: Instant) {
        self.close();
    }

    /// Runs whatever timers are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if now >= self.last_received + self.config.client_silence_timeout {
            self.close();
            return;
        }
        if let Auth::Listening { expires, .. } = &self.auth {
            if now >= *expires {
                self.auth = Auth::Expired;
                self.send_frame(
                    now,
                    ServerFrame::Error {
                        error: SignalError::token_expired(),
                        callsid: None,
                    },
                );
                // Without a token the identity cannot be called; `offline` tells the SDK so.
                if self.registered {
                    self.registered = false;
                    self.send_frame(now, ServerFrame::Offline);
                    self.emit(SessionEvent::Unregistered);
                }
                self.emit(SessionEvent::TokenExpired);
            }
        }
        if now >= self.last_heartbeat + self.config.heartbeat_interval {
            self.last_heartbeat = now;
            self.outputs
                .push_back(SessionOutput::Send(HEARTBEAT.to_owned()));
        }
    }

    pub fn poll_output(&mut self) -> Option<SessionOutput> {
        self.outputs.pop_front()
    }

    /// When [`Session::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.poll_timeout_reason().map(|(at, _)| at)
    }

    /// [`Session::poll_timeout`] with the timer that sets it.
    pub fn poll_timeout_reason(&self) -> Option<(Instant, TimerReason)> {
        if self.closed {
            return None;
        }
        let mut soonest = (
            self.last_heartbeat + self.config.heartbeat_interval,
            TimerReason::Heartbeat,
        );
        let silence = self.last_received + self.config.client_silence_timeout;
        if silence < soonest.0 {
            soonest = (silence, TimerReason::ClientSilence);
        }
        if let Auth::Listening { expires, .. } = &self.auth {
            if *expires < soonest.0 {
                soonest = (*expires, TimerReason::TokenExpiry);
            }
        }
        Some(soonest)
    }

    /// Tells the client its outgoing call `client_callsid` (the `TJS…` id) is ringing as `call_sid`.
    pub fn ringing(
        &mut self,
        now: Instant,
        client_callsid: &str,
        call_sid: &str,
    ) -> Result<(), CallError> {
        self.bind(client_callsid, call_sid)?;
        self.send_frame(
            now,
            ServerFrame::Ringing {
                callsid: call_sid.to_owned(),
            },
        );
        Ok(())
    }

    /// Answers the client's offer: an outgoing call (`client_callsid` = `TJS…`), a `reinvite` or a
    /// reconnect (both by CA sid). `reconnect` lets the client rebind the call after a drop.
    pub fn answer(
        &mut self,
        now: Instant,
        client_callsid: &str,
        call_sid: &str,
        sdp: &str,
        reconnect: Option<&str>,
    ) -> Result<(), CallError> {
        self.bind(client_callsid, call_sid)?;
        self.send_frame(
            now,
            ServerFrame::Answer {
                callsid: call_sid.to_owned(),
                sdp: Some(sdp.to_owned()),
                reconnect: reconnect.map(str::to_owned),
            },
        );
        Ok(())
    }

    /// Confirms a [`SessionEvent::Reconnect`]: the call is bound to this connection again. The
    /// answer carries no SDP (the media never stopped; the SDK would not apply one) and the
    /// reconnect token for the next drop.
    pub fn reconnected(
        &mut self,
        now: Instant,
        call_sid: &str,
        reconnect: &str,
    ) -> Result<(), CallError> {
        self.bind(call_sid, call_sid)?;
        self.send_frame(
            now,
            ServerFrame::Answer {
                callsid: call_sid.to_owned(),
                sdp: None,
                reconnect: Some(reconnect.to_owned()),
            },
        );
        Ok(())
    }

    /// Ends a call from our side; `error` makes the SDK also emit an error on the call.
    pub fn hangup(
        &mut self,
        now: Instant,
        callsid: &str,
        error: Option<SignalError>,
    ) -> Result<(), CallError> {
        let call = self.remove_call(callsid)?;
        self.send_frame(
            now,
            ServerFrame::Hangup {
                callsid: call.id().to_owned(),
                error,
            },
        );
        Ok(())
    }

    /// Offers a call to the registered client; it answers with `answer` or `reject` (or nothing
    /// when ignored: [`Session::cancel`] it then).
    pub fn invite_client(
        &mut self,
        now: Instant,
        call_sid: &str,
        sdp: &str,
        parameters: IncomingParameters,
        reconnect: Option<&str>,
    ) -> Result<(), CallError> {
        if self.closed {
            return Err(CallError::Closed);
        }
        if !self.registered {
            return Err(CallError::NotRegistered);
        }
        if self.calls.iter().any(|call| call.is(call_sid)) {
            return Err(CallError::DuplicateCall(call_sid.to_owned()));
        }
        self.calls.push(CallEntry {
            client_id: call_sid.to_owned(),
            call_sid: Some(call_sid.to_owned()),
        });
        self.send_frame(
            now,
            ServerFrame::Invite {
                callsid: call_sid.to_owned(),
                sdp: sdp.to_owned(),
                parameters,
                reconnect: reconnect.map(str::to_owned),
            },
        );
        Ok(())
    }

    /// Withdraws an incoming call the client has not answered.
    pub fn cancel(&mut self, now: Instant, callsid: &str) -> Result<(), CallError> {
        let call = self.remove_call(callsid)?;
        self.send_frame(
            now,
            ServerFrame::Cancel {
                callsid: call.id().to_owned(),
            },
        );
        Ok(())
    }

    /// Confirms a [`SessionEvent::Message`] was delivered.
    pub fn ack_message(
        &mut self,
        now: Instant,
        callsid: &str,
        voice_event_sid: &str,
    ) -> Result<(), CallError> {
        let id = self.find_call(callsid)?.id().to_owned();
        self.send_frame(
            now,
            ServerFrame::Ack {
                callsid: id,
                voice_event_sid: voice_event_sid.to_owned(),
            },
        );
        Ok(())
    }

    /// Sends a device error (with `callsid`, also routed to that call).
    pub fn send_error(&mut self, now: Instant, error: SignalError, callsid: Option<&str>) {
        if !self.closed {
            self.send_frame(
                now,
                ServerFrame::Error {
                    error,
                    callsid: callsid.map(str::to_owned),
                },
            );
        }
    }

    fn handle_frame(&mut self, now: Instant, frame: ClientFrame) {
        match frame {
            ClientFrame::Listen { token, .. } => self.listen(now, &token),
            ClientFrame::Register { audio } => self.register(now, audio),
            ClientFrame::Invite(invite) => self.invite(now, invite),
            ClientFrame::Answer { callsid, sdp } => self.call_event(now, &callsid, |callsid| {
                SessionEvent::Answer { callsid, sdp }
            }),
            ClientFrame::Dtmf { callsid, digits } => self.call_event(now, &callsid, |callsid| {
                SessionEvent::Dtmf { callsid, digits }
            }),
            ClientFrame::Reinvite { callsid, sdp } => self.call_event(now, &callsid, |callsid| {
                SessionEvent::Reinvite { callsid, sdp }
            }),
            ClientFrame::Message(message) => {
                let callsid = message.callsid.clone();
                self.call_event(now, &callsid, |callsid| {
                    SessionEvent::Message(CallMessage { callsid, ..message })
                })
            }
            // A hangup or reject can cross ours; one for a call already gone is not an error.
            ClientFrame::Hangup { callsid, message } => {
                if let Ok(call) = self.remove_call(&callsid) {
                    self.emit(SessionEvent::Hangup {
                        callsid: call.id().to_owned(),
                        message,
                    });
                }
            }
            ClientFrame::Reject { callsid } => {
                if let Ok(call) = self.remove_call(&callsid) {
                    self.emit(SessionEvent::Reject {
                        callsid: call.id().to_owned(),
                    });
                }
            }
        }
    }

    fn listen(&mut self, now: Instant, token: &str) {
        let unix_now = self.unix_at(now);
        let keys = |sid: &str| {
            self.config
                .api_keys
                .iter()
                .find(|key| key.sid == sid)
                .map(|key| key.secret.clone())
        };
        let verified = verify(
            token,
            &keys,
            &self.config.account_sid,
            unix_now,
            self.config.token_leeway.as_secs(),
        );
        let token = match verified {
            Ok(token) => token,
            Err(err) => {
                // The previous token (if any) stays in force; the socket stays open.
                self.send_frame(
                    now,
                    ServerFrame::Error {
                        error: err.to_signal_error(),
                        callsid: None,
                    },
                );
                return;
            }
        };
        if self.registered && self.identity() != Some(token.identity.as_str()) {
            // Registered under the old name; the SDK re-registers on its 30 s timer.
            self.registered = false;
            self.emit(SessionEvent::Unregistered);
        }
        self.send_frame(
            now,
            ServerFrame::Connected {
                identity: token.identity.clone(),
                ttl_secs: token.ttl_secs(unix_now),
            },
        );
        self.emit(SessionEvent::Listened {
            identity: token.identity.clone(),
            grants: token.voice.clone(),
        });
        let expires = self.instant_at(token.expires_at);
        self.auth = Auth::Listening { token, expires };
    }

    fn register(&mut self, now: Instant, audio: bool) {
        if !audio {
            self.send_frame(now, ServerFrame::Offline);
            if self.registered {
                self.registered = false;
                self.emit(SessionEvent::Unregistered);
            }
            return;
        }
        let incoming_allow = match &self.auth {
            Auth::Listening { token, .. } => token.voice.incoming_allow,
            Auth::None | Auth::Expired => {
                let error = self.no_token_error();
                self.send_frame(
                    now,
                    ServerFrame::Error {
                        error,
                        callsid: None,
                    },
                );
                return;
            }
        };
        if !incoming_allow {
            self.send_frame(
                now,
                ServerFrame::Error {
                    error: SignalError::new(
                        NOT_ALLOWED,
                        "token has no voice grant with incoming.allow",
                    ),
                    callsid: None,
                },
            );
            // `offline` settles the SDK's pending `register()` (it rejects).
            self.send_frame(now, ServerFrame::Offline);
            return;
        }
        self.send_frame(now, ServerFrame::Ready);
        if !self.registered {
            self.registered = true;
            self.emit(SessionEvent::Registered);
        }
    }

    fn invite(&mut self, now: Instant, invite: ClientInvite) {
        let refuse = |session: &mut Self, error: SignalError| {
            session.send_frame(
                now,
                ServerFrame::Hangup {
                    callsid: invite.callsid.clone(),
                    error: Some(error),
                },
            );
        };
        let grant = match &self.auth {
            Auth::Listening { token, .. } => token.voice.outgoing.clone(),
            Auth::None | Auth::Expired => {
                let error = self.no_token_error();
                return refuse(self, error);
            }
        };
        // A reconnect names a call we answered: after a drop it is new to this connection;
        // after `updateToken()` on the same socket the call is already here.
        if let Some(reconnect) = invite.reconnect.clone() {
            if !self.calls.iter().any(|call| call.is(&invite.callsid)) {
                self.calls.push(CallEntry {
                    client_id: invite.callsid.clone(),
                    call_sid: Some(invite.callsid.clone()),
                });
            }
            self.emit(SessionEvent::Reconnect {
                callsid: invite.callsid,
                reconnect,
                sdp: invite.sdp,
            });
            return;
        }
        if self.calls.iter().any(|call| call.is(&invite.callsid)) {
            return refuse(
                self,
                SignalError::new(BAD_REQUEST, "callsid already in use on this connection"),
            );
        }
        let Some(grant) = grant else {
            return refuse(
                self,
                SignalError::new(NOT_ALLOWED, "token has no outgoing voice grant"),
            );
        };
        if !self
            .config
            .application_sids
            .contains(&grant.application_sid)
        {
            return refuse(
                self,
                SignalError::new(
                    NOT_ALLOWED,
                    format!("application {} is not configured", grant.application_sid),
                ),
            );
        }
        // The token's params come from the operator's server: they win over the page's.
        let mut params: Vec<(String, String)> = invite
            .decoded_params()
            .into_iter()
            .filter(|(key, _)| !grant.params.iter().any(|(k, _)| k == key))
            .collect();
        params.extend(grant.params);
        self.calls.push(CallEntry {
            client_id: invite.callsid.clone(),
            call_sid: None,
        });
        self.emit(SessionEvent::Invite {
            temp_callsid: invite.callsid,
            sdp: invite.sdp,
            params,
            application_sid: grant.application_sid,
        });
    }

    /// Emits an event for a known call, or tells the client the call is unknown.
    fn call_event(
        &mut self,
        now: Instant,
        callsid: &str,
        event: impl FnOnce(String) -> SessionEvent,
    ) {
        match self.find_call(callsid) {
            Ok(call) => {
                let id = call.id().to_owned();
                self.emit(event(id));
            }
            Err(_) => self.send_frame(
                now,
                ServerFrame::Error {
                    error: SignalError::new(BAD_REQUEST, "unknown callsid"),
                    callsid: Some(callsid.to_owned()),
                },
            ),
        }
    }

    fn no_token_error(&self) -> SignalError {
        match self.auth {
            Auth::Expired => SignalError::token_expired(),
            Auth::None | Auth::Listening { .. } => SignalError::token_invalid(),
        }
    }

    fn bind(&mut self, client_callsid: &str, call_sid: &str) -> Result<(), CallError> {
        if self.closed {
            return Err(CallError::Closed);
        }
        let call = self
            .calls
            .iter_mut()
            .find(|call| call.is(client_callsid))
            .ok_or_else(|| CallError::UnknownCall(client_callsid.to_owned()))?;
        call.call_sid = Some(call_sid.to_owned());
        Ok(())
    }

    fn find_call(&self, callsid: &str) -> Result<&CallEntry, CallError> {
        if self.closed {
            return Err(CallError::Closed);
        }
        self.calls
            .iter()
            .find(|call| call.is(callsid))
            .ok_or_else(|| CallError::UnknownCall(callsid.to_owned()))
    }

    fn remove_call(&mut self, callsid: &str) -> Result<CallEntry, CallError> {
        if self.closed {
            return Err(CallError::Closed);
        }
        let index = self
            .calls
            .iter()
            .position(|call| call.is(callsid))
            .ok_or_else(|| CallError::UnknownCall(callsid.to_owned()))?;
        Ok(self.calls.remove(index))
    }

    fn close(&mut self) {
        if self.closed {
            return;
        }
        if self.registered {
            self.registered = false;
            self.emit(SessionEvent::Unregistered);
        }
        self.closed = true;
        self.emit(SessionEvent::Closed);
    }

    fn unix_at(&self, now: Instant) -> u64 {
        self.unix_at_start + now.saturating_duration_since(self.started).as_secs()
    }

    fn instant_at(&self, unix: u64) -> Instant {
        self.started + Duration::from_secs(unix.saturating_sub(self.unix_at_start))
    }

    /// `now` is kept in the signature of every sender so timing rules can depend on it.
    fn send_frame(&mut self, _now: Instant, frame: ServerFrame) {
        self.outputs.push_back(SessionOutput::Send(frame.to_text()));
    }

    fn emit(&mut self, event: SessionEvent) {
        self.outputs.push_back(SessionOutput::Event(event));
    }
}

#[cfg(test)]
mod tests;
