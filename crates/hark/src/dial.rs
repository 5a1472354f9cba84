//! `<Dial>` legs at the edge: one task per dialled party, speaking SIP as a UAC from a socket of
//! its own (the sans-IO [`sip_core::uac::Uac`]), with its RTP set up when the party answers.
//! The call task owns the legs' media sessions and wires bridges between them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use call_core::{DialRequest, LegId};
use control::DialTarget;
use sip_core::uac::{Uac, UacConfig, UacEvent, UacOutput};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::call_env::{media_addresses, CallEnv};
use crate::client_call::{ClientCommand, ClientEvent};
use crate::media::{self, MediaCommand, MediaSession, RELAY_CAPACITY};

/// What a dialled leg's task reports to the call task.
pub(crate) enum LegEvent {
    /// The party answered; its media runs in `session`.
    Answered { session: MediaSession },
    /// A final non-2xx, or why the party could not be called at all.
    Refused { status: u16, reason: String },
    /// The dialog is over (BYE either way).
    Ended(String),
    /// A key by SIP INFO.
    Dtmf { digit: char, duration_ms: u32 },
    /// The party re-INVITEd (hold, a new address); answered already.
    MediaChanged(sip_core::sdp::Negotiated),
}

/// The call task's side of the dialled legs.
pub(crate) struct DialLegs {
    legs: HashMap<LegId, DialLeg>,
    tx: mpsc::Sender<(LegId, LegEvent)>,
    pub rx: mpsc::Receiver<(LegId, LegEvent)>,
}

struct DialLeg {
    /// Dropping it (or sending) ends the leg: CANCEL before the answer, BYE after.
    hangup: Option<oneshot::Sender<()>>,
    media: Option<MediaSession>,
}

impl Drop for DialLeg {
    fn drop(&mut self) {
        if let Some(hangup) = self.hangup.take() {
            let _ = hangup.send(());
        }
    }
}

impl Default for DialLegs {
    fn default() -> Self {
        // Each leg sends a handful of events in its life.
        let (tx, rx) = mpsc::channel(64);
        Self {
            legs: HashMap::new(),
            tx,
            rx,
        }
    }
}

impl DialLegs {
    pub fn start(&mut self, shared: Arc<CallEnv>, leg: LegId, request: DialRequest) {
        let (hangup, hangup_rx) = oneshot::channel();
        let events = self.tx.clone();
        // Detached: a leg outlives the call only to see its BYE or CANCEL answered (bounded).
        tokio::spawn(async move {
            let outcome = run_leg(&shared, leg, request, hangup_rx, &events).await;
            if let Err((status, reason)) = outcome {
                tracing::info!(leg = leg.0, status, %reason, "the dialled party was not reached");
                let _ = events
                    .send((leg, LegEvent::Refused { status, reason }))
                    .await;
            }
        });
        self.legs.insert(
            leg,
            DialLeg {
                hangup: Some(hangup),
                media: None,
            },
        );
    }

    /// CANCEL or BYE, whichever fits.
    pub fn hang_up(&mut self, leg: LegId) {
        if let Some(l) = self.legs.get_mut(&leg) {
            if let Some(hangup) = l.hangup.take() {
                let _ = hangup.send(());
            }
        }
    }

    pub fn answered(&mut self, leg: LegId, session: MediaSession) {
        if let Some(l) = self.legs.get_mut(&leg) {
            l.media = Some(session);
        }
    }

    /// The leg's task is over (its last event came): its media stops.
    pub fn ended(&mut self, leg: LegId) {
        if let Some(l) = self.legs.get_mut(&leg) {
            l.media = None;
        }
    }

    pub fn media(&self, leg: LegId) -> Option<&MediaSession> {
        self.legs.get(&leg).and_then(|l| l.media.as_ref())
    }

    /// Every leg's media ring, for the call task's drain.
    pub fn rings(&mut self) -> impl Iterator<Item = (LegId, &mut MediaSession)> {
        self.legs
            .iter_mut()
            .filter_map(|(id, l)| l.media.as_mut().map(|m| (*id, m)))
    }
}

/// Starts one direction of a bridge: what `from` receives, `to` sends.
pub(crate) fn relay(from: &MediaSession, to: &MediaSession) {
    let (tx, rx) = mpsc::channel(RELAY_CAPACITY);
    from.send(MediaCommand::RelayOut(Some(tx)));
    to.send(MediaCommand::RelayIn(Some(rx)));
}

pub(crate) fn unrelay(session: &MediaSession) {
    session.send(MediaCommand::RelayOut(None));
    session.send(MediaCommand::RelayIn(None));
}

/// Where one noun's INVITE goes.
struct Route {
    uri: String,
    remote: SocketAddr,
    from_user: String,
    credentials: Option<(String, String)>,
}

/// How a noun is reached: a SIP INVITE, or the Voice SDK clients registered as an identity.
enum Reach {
    Sip(Route),
    Browser {
        identity: String,
        parameters: Vec<(String, String)>,
        devices: Vec<(u64, mpsc::Sender<ClientCommand>)>,
    },
}

/// Who the noun is reached as: a SIP URI, the newest phone registered as the identity (else its
/// browsers), or a number through the first `[[trunk]]` that takes it.
async fn resolve(shared: &CallEnv, request: &DialRequest) -> Result<Reach, (u16, String)> {
    let from_user = request.from.trim_start_matches("sip:");
    let from_user = from_user
        .split('@')
        .next()
        .unwrap_or_default()
        .trim_start_matches("client:")
        .to_string();
    let route = match &request.target {
        DialTarget::Sip {
            uri,
            username,
            password,
        } => Route {
            uri: uri.clone(),
            remote: host_of(uri).await?,
            from_user,
            credentials: username.clone().zip(password.clone()),
        },
        DialTarget::Client {
            identity,
            parameters,
        } => {
            let (reply, bindings) = oneshot::channel();
            shared.sip.send(crate::sip_task::SipCommand::Lookup {
                user: identity.clone(),
                reply,
            });
            let bindings = bindings.await.unwrap_or_default();
            let Some(binding) = bindings.iter().max_by_key(|b| b.cseq) else {
                let devices = shared.clients.connections(identity);
                if devices.is_empty() {
                    return Err((480, format!("client {identity} is not registered")));
                }
                return Ok(Reach::Browser {
                    identity: identity.clone(),
                    parameters: parameters.clone(),
                    devices,
                });
            };
            Route {
                uri: binding.contact.clone(),
                remote: host_of(&binding.contact).await?,
                from_user,
                credentials: None,
            }
        }
        DialTarget::Number { number, .. } => {
            let Some(trunk) = shared.config.trunks.iter().find(|t| t.matches(number)) else {
                return Err((404, format!("no [[trunk]] takes {number}")));
            };
            let from_user = trunk
                .caller_id
                .clone()
                .unwrap_or(from_user)
                .trim()
                .to_string();
            Route {
                uri: trunk.uri(number),
                remote: trunk.address,
                from_user,
                credentials: trunk.username.clone().zip(trunk.password.clone()),
            }
        }
    };
    Ok(Reach::Sip(route))
}

/// The address a SIP URI's host and port name (IP literal or a name to look up; 5060 default).
async fn host_of(uri: &str) -> Result<SocketAddr, (u16, String)> {
    let Some((host, port)) = sip_core::message::uri_host_port(uri) else {
        return Err((400, format!("{uri:?} is not a SIP URI")));
    };
    let port = port.unwrap_or(5060);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse() {
        return Ok(SocketAddr::new(ip, port));
    }
    let found = tokio::net::lookup_host((host, port)).await;
    found
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or((404, format!("cannot resolve {host}")))
}

/// How long the leg waits, after its end, for the BYE or CANCEL it sent to be answered.
const LINGER: Duration = Duration::from_secs(32);

async fn run_leg(
    shared: &CallEnv,
    leg: LegId,
    request: DialRequest,
    hangup: oneshot::Receiver<()>,
    events: &mpsc::Sender<(LegId, LegEvent)>,
) -> Result<(), (u16, String)> {
    match resolve(shared, &request).await? {
        Reach::Sip(route) => run_sip_leg(shared, leg, request, route, hangup, events).await,
        Reach::Browser {
            identity,
            parameters,
            devices,
        } => {
            let browser = Browser {
                identity,
                parameters,
                devices,
            };
            run_browser_leg(shared, leg, request, browser, hangup, events).await
        }
    }
}

/// The Voice SDK clients a `<Client>` noun rings.
struct Browser {
    identity: String,
    parameters: Vec<(String, String)>,
    devices: Vec<(u64, mpsc::Sender<ClientCommand>)>,
}

/// Rings every device of the identity with our WebRTC offer; the first to accept takes the leg
/// (the others are canceled), as Twilio's `<Dial><Client>` does.
async fn run_browser_leg(
    shared: &CallEnv,
    leg: LegId,
    request: DialRequest,
    browser: Browser,
    mut hangup: oneshot::Receiver<()>,
    events: &mpsc::Sender<(LegId, LegEvent)>,
) -> Result<(), (u16, String)> {
    let Browser {
        identity,
        parameters,
        devices,
    } = browser;
    let peer = shared.clients.peer(&identity);
    let Some((bind_ip, advertised_ip)) = media_addresses(&shared.config, peer) else {
        return Err((488, format!("no media address of the family of {peer}")));
    };
    let socket = shared
        .ports
        .bind(bind_ip)
        .await
        .map_err(|e| (503, format!("no RTP port: {e}")))?;
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    let (session, offer) = crate::webrtc_media::start(
        socket,
        SocketAddr::new(advertised_ip, port),
        &shared.webrtc,
        crate::webrtc_media::Negotiation::Offer,
        shared.config.rtp_timeout,
        shared.metrics.clone(),
    )
    .map_err(|reason| (488, reason))?;
    let call_sid = request.call_sid.to_string();
    let reconnect = crate::signal::reconnect_token();
    let (client_events, mut from_client) = mpsc::channel(64);
    shared
        .clients
        .track_call(&call_sid, &reconnect, client_events.clone());
    let incoming = client_signal::IncomingParameters {
        call_sid: call_sid.clone(),
        account_sid: shared.config.account_sid.to_string(),
        from: request.from.clone(),
        to: format!("client:{identity}"),
        params: parameters,
    };
    tracing::info!(leg = leg.0, child = %call_sid, %identity, devices = devices.len(), "ringing the browser client");
    let mut ringing = devices;
    for (_, device) in &ringing {
        let _ = device.try_send(ClientCommand::Invite {
            call_sid: call_sid.clone(),
            sdp: offer.clone(),
            parameters: incoming.clone(),
            events: client_events.clone(),
            reconnect: reconnect.clone(),
        });
    }
    drop(client_events);
    let cancel = |devices: &mut Vec<(u64, mpsc::Sender<ClientCommand>)>, except: Option<u64>| {
        for (id, device) in devices.drain(..) {
            if Some(id) != except {
                let _ = device.try_send(ClientCommand::Cancel {
                    call_sid: call_sid.clone(),
                });
            }
        }
    };
    let mut session = Some(session);
    let mut answered: Option<(u64, mpsc::Sender<ClientCommand>)> = None;
    let outcome = loop {
        tokio::select! {
            event = from_client.recv() => match event {
                Some(ClientEvent::Answered { connection, sdp }) if answered.is_none() => {
                    let Some(at) = ringing.iter().position(|(id, _)| *id == connection) else {
                        continue;
                    };
                    let device = ringing.remove(at);
                    cancel(&mut ringing, None);
                    let (result, accepted) = oneshot::channel();
                    if let Some(media) = session.as_ref() {
                        media.send(MediaCommand::AcceptAnswer { sdp, result });
                    }
                    match accepted.await {
                        Ok(Ok(rate)) => {
                            tracing::info!(leg = leg.0, connection, rate, "the browser client answered");
                            answered = Some(device);
                            if let Some(mut media) = session.take() {
                                media.sample_rate = rate;
                                let _ = events.send((leg, LegEvent::Answered { session: media })).await;
                            }
                        }
                        other => {
                            let reason = match other {
                                Ok(Err(e)) => e,
                                _ => "the media task is gone".into(),
                            };
                            let _ = device.1.try_send(ClientCommand::Hangup { call_sid: call_sid.clone() });
                            break Err((488, format!("the browser's answer is unusable: {reason}")));
                        }
                    }
                }
                Some(ClientEvent::Rejected { connection }) if answered.is_none() => {
                    if ringing.iter().any(|(id, _)| *id == connection) {
                        cancel(&mut ringing, Some(connection));
                        break Err((486, "the browser client declined".into()));
                    }
                }
                Some(
                    ClientEvent::HungUp { connection }
                    | ClientEvent::Gone { connection }
                    | ClientEvent::SignallingLost { connection },
                ) => {
                    if answered.as_ref().is_some_and(|(id, _)| *id == connection) {
                        let _ = events.send((leg, LegEvent::Ended("the browser client hung up".into()))).await;
                        break Ok(());
                    }
                    ringing.retain(|(id, _)| *id != connection);
                    if ringing.is_empty() && answered.is_none() {
                        break Err((480, "no browser device answered".into()));
                    }
                }
                Some(ClientEvent::Rebound { connection, commands }) => {
                    if answered.is_some() {
                        answered = Some((connection, commands));
                    }
                }
                Some(ClientEvent::Input(call_core::SipInput::Ended(reason))) if answered.is_some() => {
                    let _ = events.send((leg, LegEvent::Ended(reason))).await;
                    break Ok(());
                }
                Some(_) => {}
                None => {
                    if answered.is_some() {
                        let _ = events.send((leg, LegEvent::Ended("signalling gone".into()))).await;
                    }
                    break Ok(());
                }
            },
            _ = &mut hangup => {
                match &answered {
                    Some((_, device)) => {
                        let _ = device.try_send(ClientCommand::Hangup { call_sid: call_sid.clone() });
                    }
                    None => cancel(&mut ringing, None),
                }
                break Ok(());
            }
        }
    };
    shared.clients.forget_call(&call_sid);
    outcome
}

async fn run_sip_leg(
    shared: &CallEnv,
    leg: LegId,
    request: DialRequest,
    route: Route,
    mut hangup: oneshot::Receiver<()>,
    events: &mpsc::Sender<(LegId, LegEvent)>,
) -> Result<(), (u16, String)> {
    let Some((bind_ip, advertised_ip)) = media_addresses(&shared.config, route.remote) else {
        return Err((
            488,
            format!("no RTP address of the family of {}", route.remote),
        ));
    };
    let rtp = shared
        .ports
        .bind(bind_ip)
        .await
        .map_err(|e| (503, format!("no RTP port: {e}")))?;
    let rtp_port = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
    let sip_ip = match shared.config.sip_listen.ip() {
        ip if ip.is_unspecified() => bind_ip,
        ip => ip,
    };
    let socket = UdpSocket::bind(SocketAddr::new(sip_ip, 0))
        .await
        .map_err(|e| (503, format!("no SIP socket: {e}")))?;
    let local_sip = socket
        .local_addr()
        .map_err(|e| (503, format!("no SIP socket: {e}")))?;
    let seed: u64 = rand::random();
    let offer = sip_core::sdp::build_offer(SocketAddr::new(advertised_ip, rtp_port), seed >> 16);
    let mut config = UacConfig::new(local_sip, route.remote, route.uri.clone());
    config.from_user = if route.from_user.is_empty() {
        "hark".into()
    } else {
        route.from_user.clone()
    };
    config.seed = seed;
    config.local_rtp = Some(SocketAddr::new(advertised_ip, rtp_port));
    config.user_agent = concat!("Hark/", env!("CARGO_PKG_VERSION")).to_string();
    tracing::info!(leg = leg.0, child = %request.call_sid, uri = %route.uri, remote = %route.remote, "INVITE to the dialled party");
    let mut uac = Uac::invite(Instant::now().into_std(), config, offer);
    if let Some((user, password)) = &route.credentials {
        uac.set_credentials(user, password);
    }
    let mut rtp = Some(rtp);
    // SIP over UDP from one party: 16 KiB is ample (RFC 3261 §18.1.1 keeps UDP requests under
    // 1300 bytes unless they must not be), and a thousand legs stay small.
    let mut buf = vec![0u8; 16 * 1024];
    let mut hung_up = false;
    let mut ended_at: Option<Instant> = None;
    loop {
        while let Some(output) = uac.poll_output() {
            match output {
                UacOutput::Transmit { to, bytes } => {
                    if let Err(e) = socket.send_to(&bytes, to).await {
                        tracing::warn!(to = %to, error = %e, "SIP send to the dialled party failed");
                    }
                }
                UacOutput::Event(event) => {
                    let report = match event {
                        UacEvent::Answered {
                            media: negotiated, ..
                        } => {
                            let Some(socket) = rtp.take() else { continue };
                            match media::start(
                                socket,
                                negotiated,
                                shared.config.rtp_timeout,
                                shared.metrics.clone(),
                            ) {
                                Ok(session) => Some(LegEvent::Answered { session }),
                                Err(e) => {
                                    uac.hangup(Instant::now().into_std());
                                    Some(LegEvent::Refused {
                                        status: 503,
                                        reason: format!("RTP socket unusable: {e}"),
                                    })
                                }
                            }
                        }
                        UacEvent::UnusableAnswer { error, .. } => Some(LegEvent::Refused {
                            status: 488,
                            reason: error,
                        }),
                        UacEvent::Failed { status, reason } => {
                            Some(LegEvent::Refused { status, reason })
                        }
                        UacEvent::Ended { reason } => Some(LegEvent::Ended(format!("{reason:?}"))),
                        UacEvent::Provisional { status, .. } => {
                            tracing::debug!(leg = leg.0, status, "dialled party progress");
                            None
                        }
                        UacEvent::InfoAnswered { .. } => None,
                        UacEvent::Dtmf { digit, duration_ms } => {
                            Some(LegEvent::Dtmf { digit, duration_ms })
                        }
                        UacEvent::MediaChanged(media) => Some(LegEvent::MediaChanged(media)),
                        UacEvent::Ignored { reason } => {
                            tracing::debug!(leg = leg.0, %reason, "SIP from the dialled party ignored");
                            None
                        }
                    };
                    if let Some(report) = report {
                        if events.send((leg, report)).await.is_err() {
                            // The call is gone: end the leg.
                            uac.hangup(Instant::now().into_std());
                        }
                    }
                }
            }
        }
        if uac.is_ended() {
            let linger = *ended_at.get_or_insert_with(|| Instant::now() + LINGER);
            if uac.poll_timeout().is_none() || Instant::now() >= linger {
                return Ok(());
            }
        }
        let wake = uac
            .poll_timeout()
            .map(Instant::from_std)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = received {
                    uac.handle_input(Instant::now().into_std(), from, &buf[..n]);
                }
            }
            _ = &mut hangup, if !hung_up => {
                hung_up = true;
                uac.hangup(Instant::now().into_std());
            }
            _ = tokio::time::sleep_until(wake) => {
                uac.handle_timeout(Instant::now().into_std());
            }
        }
    }
}
