//! One task per call: drives the call's sans-IO core ([`call_core::Call`]) with the SIP
//! dialog's events, the media ring, the API's control messages and the results of the I/O the
//! core asks for (webhooks, prompt audio, speech, recording files, rows, callbacks).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use call_core::{
    ControlInput, FetchResult, IoId, LegId, LegOffer, MediaInput, Output, Persist, PlaybackId,
    RecordingIo, SipInput,
};
use http_api::control::{CallState, CallView};
use sip_core::{CallEvent, CallKey, IncomingCall};
use store::CallSid;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tracing::Instrument;

use crate::bot_notify::BotNotifier;
use crate::call_env::{CallEnv, CallSetup};
use crate::client_call::{ClientCommand, ClientEvent, ClientIncoming, ClientOutgoing};
use crate::live::Registration;
use crate::media::{MediaCommand, MediaSession};
use crate::sip_task::{core_input, SipCommand};

/// How often the call task empties the media ring. Stop positions come from the media
/// timeline, not from when the ring is read, so this only sets latency (and wake-ups).
pub(crate) const DRAIN_INTERVAL: Duration = Duration::from_millis(100);

type Core = call_core::Call<std::fs::File>;

pub fn spawn(shared: Arc<CallEnv>, incoming: IncomingCall, events: mpsc::Receiver<CallEvent>) {
    spawn_call(shared, CallSid::new_random(), Origin::Sip(incoming, events));
}

/// Starts a Voice SDK client's call; its CallSid names it to the client's connection.
pub fn spawn_client(shared: Arc<CallEnv>, client: ClientIncoming) -> CallSid {
    let call_sid = CallSid::new_random();
    spawn_call(shared, call_sid.clone(), Origin::Client(client));
    call_sid
}

/// Places a call to a registered client; its row goes to `outgoing.started` once written.
pub fn spawn_to_client(shared: Arc<CallEnv>, outgoing: ClientOutgoing) -> CallSid {
    let call_sid = CallSid::new_random();
    spawn_call(shared, call_sid.clone(), Origin::ToClient(outgoing));
    call_sid
}

/// Where a call came from.
enum Origin {
    Sip(IncomingCall, mpsc::Receiver<CallEvent>),
    Client(ClientIncoming),
    /// We call a client (REST `Calls.json`).
    ToClient(ClientOutgoing),
}

/// The caller leg's signalling, as the driver speaks it.
enum Signalling {
    Sip(CallKey),
    Client {
        temp_callsid: String,
        /// The connection the call is bound to (it changes on a reconnect) and its frames.
        connection: u64,
        commands: mpsc::Sender<ClientCommand>,
        /// Our SDP answer, made when media is set up, sent with the answer frame.
        answer_sdp: Option<String>,
        reconnect: String,
        /// The answer (with the reconnect token) went out: a drop may be rebound from now on.
        answered: bool,
    },
    ToClient(ToClient),
}

/// A call we place to a client identity: every connection it registered from rings; the first
/// to answer takes the call and the others are canceled.
struct ToClient {
    identity: String,
    parameters: client_signal::IncomingParameters,
    reconnect: String,
    /// Our offer, made when media is set up.
    offer_sdp: Option<String>,
    /// Handed to each ringing connection, then dropped: the events close when they are gone.
    events: Option<mpsc::Sender<ClientEvent>>,
    ringing: Vec<(u64, mpsc::Sender<ClientCommand>)>,
    answered: Option<(u64, mpsc::Sender<ClientCommand>)>,
}

impl ToClient {
    fn command(&self, frame: impl Fn() -> ClientCommand) {
        // A connection that is gone ends its part by its events closing.
        for (_, connection) in &self.ringing {
            let _ = connection.try_send(frame());
        }
    }

    /// Stops every ringing connection but `except`.
    fn cancel_ringing(&mut self, call_sid: &str, except: Option<u64>) {
        for (id, connection) in self.ringing.drain(..) {
            if Some(id) != except {
                let _ = connection.try_send(ClientCommand::Cancel {
                    call_sid: call_sid.to_string(),
                });
            }
        }
    }
}

/// The caller leg's events: a SIP dialog's, or a client connection's.
enum Events {
    Sip(mpsc::Receiver<CallEvent>),
    Client(mpsc::Receiver<ClientEvent>),
}

impl Events {
    /// The next input, and whether the source is still open (a closed one is reported once,
    /// as the end of the call).
    async fn recv(&mut self) -> (ClientEvent, bool) {
        match self {
            Events::Sip(rx) => {
                let event = rx.recv().await;
                let open = event.is_some();
                (ClientEvent::Input(core_input(event)), open)
            }
            Events::Client(rx) => match rx.recv().await {
                Some(event) => (event, true),
                None => (
                    ClientEvent::Input(SipInput::Ended("signalling connection gone".into())),
                    false,
                ),
            },
        }
    }
}

fn spawn_call(shared: Arc<CallEnv>, call_sid: CallSid, origin: Origin) {
    let span = tracing::info_span!("call", sid = %call_sid);
    tokio::spawn(
        async move {
            shared.active_calls.fetch_add(1, Ordering::Relaxed);
            shared.metrics.active_calls.fetch_add(1, Ordering::Relaxed);
            shared.metrics.calls_total.fetch_add(1, Ordering::Relaxed);
            run(shared.clone(), call_sid, origin).await;
            shared.metrics.active_calls.fetch_sub(1, Ordering::Relaxed);
            shared.active_calls.fetch_sub(1, Ordering::Relaxed);
        }
        .instrument(span),
    );
}

/// What finished off the call task: fetches, playbacks, recording finalization.
enum Completion {
    Fetch(IoId, FetchResult<std::fs::File>),
    Played(PlaybackId),
}

/// The I/O side of one call.
struct Driver {
    shared: Arc<CallEnv>,
    signalling: Signalling,
    call_sid: CallSid,
    offer_remote: std::net::SocketAddr,
    registration: Registration,
    media: Option<MediaSession>,
    tasks: JoinSet<Completion>,
    fetches: HashMap<IoId, AbortHandle>,
    bot: BotNotifier,
    /// A call we place: who waits for its row.
    started: Option<oneshot::Sender<store::CallRecord>>,
    /// The client's signalling dropped: unless it reconnects by then, the call ends.
    signalling_lost: Option<Instant>,
    /// `<Dial>`'s legs.
    dial: crate::dial::DialLegs,
}

/// How long a client call outlives its WebSocket, waiting for `invite{reconnect}`.
const SIGNALLING_GRACE: Duration = Duration::from_secs(30);

async fn run(shared: Arc<CallEnv>, call_sid: CallSid, origin: Origin) {
    let mut started = None;
    let mut placed: Option<(Duration, Vec<String>)> = None;
    let (setup, offer, offer_remote, signalling, mut events) = match origin {
        Origin::Sip(incoming, events) => (
            shared.call_setup(&incoming, &call_sid),
            LegOffer::Rtp(incoming.media),
            incoming.media.remote_rtp,
            Signalling::Sip(incoming.call),
            Events::Sip(events),
        ),
        Origin::Client(client) => {
            // Before anything can end the call: its end forgets it.
            shared
                .clients
                .track_call(call_sid.as_str(), &client.reconnect, client.rebind.clone());
            (
                shared.client_setup(&client, &call_sid),
                LegOffer::WebRtc {
                    sdp: client.offer_sdp.clone(),
                },
                client.peer,
                Signalling::Client {
                    temp_callsid: client.temp_callsid,
                    connection: client.connection,
                    commands: client.commands,
                    answer_sdp: None,
                    reconnect: client.reconnect,
                    answered: false,
                },
                Events::Client(client.events),
            )
        }
        Origin::ToClient(out) => {
            let setup = shared.outgoing_setup(&out, &call_sid);
            let (events_tx, events) = mpsc::channel(64);
            let peer = shared.clients.peer(&out.identity);
            placed = Some((
                Duration::from_secs(u64::from(out.call.timeout_secs)),
                out.call.status_callback_events.clone(),
            ));
            started = Some(out.started);
            let parameters = client_signal::IncomingParameters {
                call_sid: call_sid.to_string(),
                account_sid: shared.config.account_sid.to_string(),
                from: setup.info.from.clone(),
                to: setup.info.to.clone(),
                params: Vec::new(),
            };
            let to_client = ToClient {
                identity: out.identity,
                parameters,
                reconnect: crate::signal::reconnect_token(),
                offer_sdp: None,
                events: Some(events_tx),
                ringing: Vec::new(),
                answered: None,
            };
            (
                setup,
                LegOffer::WebRtcOffer,
                peer,
                Signalling::ToClient(to_client),
                Events::Client(events),
            )
        }
    };
    let CallSetup {
        info,
        app,
        request_id,
    } = setup;
    let (registration, mut control) = shared.registry.register(
        CallView {
            id: call_sid.to_string(),
            state: CallState::Establishing,
            from: info.from.clone(),
            to: info.to.clone(),
            bot: app.bot_callback_uri.is_some(),
        },
        info.direction.as_str(),
    );
    let (from, to) = (info.from.as_str(), info.to.as_str());
    let (env, secret) = (&shared.config, &shared.bot_token_secret);
    let bot = BotNotifier::new(
        &shared.webhooks,
        env,
        secret,
        &app,
        (call_sid.as_str(), from, to),
        shared.metrics.clone(),
    );
    let now = Instant::now().into_std();
    let mut config = shared.call_config(&app);
    let sids = Box::new(rand::random::<u128>);
    let mut core = match placed {
        Some((ring_timeout, events)) => {
            config.app.status_callback_events = Some(events);
            Core::new_outbound(now, config, info, offer, ring_timeout, sids)
        }
        None => Core::new(now, config, info, offer, request_id, sids),
    };
    let mut driver = Driver {
        shared: shared.clone(),
        signalling,
        call_sid: call_sid.clone(),
        offer_remote,
        registration,
        media: None,
        tasks: JoinSet::new(),
        fetches: HashMap::new(),
        bot,
        started,
        signalling_lost: None,
        dial: crate::dial::DialLegs::default(),
    };
    let mut shutdown = shared.shutdown.clone();
    let mut drain = tokio::time::interval(DRAIN_INTERVAL);
    let (mut events_open, mut control_open, mut shutdown_open) = (true, true, true);
    let caller = LegId::CALLER;
    if *shutdown.borrow() {
        core.handle_control(now, ControlInput::Shutdown);
    }
    loop {
        driver.execute(&mut core).await;
        if core.is_done() {
            break;
        }
        let deadline = core.poll_timeout().map(|(at, _)| Instant::from_std(at));
        let deadline = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let media_notice = async {
            match driver.media.as_mut() {
                Some(m) => m.notices.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            (event, open) = events.recv(), if events_open => {
                events_open = open;
                let now = driver.drain(&mut core);
                match event {
                    ClientEvent::Input(input) => core.handle_sip(now, caller, input),
                    ClientEvent::Answered { connection, sdp } => {
                        driver.client_answered(&mut core, connection, sdp).await
                    }
                    ClientEvent::Rejected { connection } => driver.client_rejected(&mut core, connection),
                    ClientEvent::HungUp { connection } => driver.client_hung_up(&mut core, connection),
                    ClientEvent::Gone { connection } => driver.client_gone(&mut core, connection),
                    ClientEvent::SignallingLost { connection } => driver.signalling_lost(&mut core, connection),
                    ClientEvent::Rebound { connection, commands } => driver.rebound(connection, commands),
                }
            }
            msg = control.recv(), if control_open => match msg {
                Some(msg) => {
                    let now = driver.drain(&mut core);
                    core.handle_control(now, msg);
                }
                None => control_open = false,
            },
            changed = shutdown.changed(), if shutdown_open => {
                shutdown_open = changed.is_ok();
                if shutdown_open && *shutdown.borrow() {
                    let now = driver.drain(&mut core);
                    core.handle_control(now, ControlInput::Shutdown);
                }
            }
            Some(done) = driver.tasks.join_next() => {
                let now = driver.drain(&mut core);
                match done {
                    Ok(Completion::Fetch(id, result)) => {
                        driver.fetches.remove(&id);
                        core.handle_fetch_result(now, id, result);
                    }
                    Ok(Completion::Played(id)) => core.handle_media(now, caller, MediaInput::PlayDone(id)),
                    Err(e) if e.is_cancelled() => {}
                    Err(e) => tracing::error!(error = %e, "call I/O task failed"),
                }
            }
            Some((leg, event)) = driver.dial.rx.recv() => {
                let now = driver.drain(&mut core);
                driver.dial_event(&mut core, now, leg, event);
            }
            Some(_) = media_notice => {
                let now = driver.drain(&mut core);
                core.handle_media(now, caller, MediaInput::RtpTimeout);
            }
            _ = drain.tick() => {
                driver.drain(&mut core);
            }
            _ = tokio::time::sleep_until(driver.signalling_lost.unwrap_or(deadline)), if driver.signalling_lost.is_some() => {
                let now = driver.drain(&mut core);
                driver.signalling_lost = None;
                tracing::info!("the client did not reconnect in time");
                core.handle_sip(now, caller, SipInput::Ended("signalling lost".into()));
            }
            _ = tokio::time::sleep_until(deadline) => {
                let now = driver.drain(&mut core);
                core.handle_timeout(now);
            }
        }
    }
    shared.clients.forget_call(call_sid.as_str());
    driver.tasks.abort_all();
    if app.bot_callback_uri.is_some() {
        crate::retention::after_bot_call(&shared.services, &call_sid);
    }
}

impl Driver {
    /// Feeds the core everything in the media ring; returns the instant it was read at, for
    /// the input that woke the task (the clock is read first: a packet that lands after it is
    /// placed after it).
    fn drain(&mut self, core: &mut Core) -> std::time::Instant {
        let now = Instant::now().into_std();
        if let Some(media) = self.media.as_mut() {
            while let Some(item) = media.ring.pop() {
                core.handle_media(now, LegId::CALLER, MediaInput::Item(item));
            }
        }
        for (leg, media) in self.dial.rings() {
            while let Some(item) = media.ring.pop() {
                core.handle_media(now, leg, MediaInput::Item(item));
            }
        }
        now
    }

    /// What a dialled leg's task reported.
    fn dial_event(
        &mut self,
        core: &mut Core,
        now: std::time::Instant,
        leg: LegId,
        event: crate::dial::LegEvent,
    ) {
        use crate::dial::LegEvent;
        match event {
            LegEvent::Answered { session } => {
                let ready = MediaInput::Ready {
                    origin: session.origin.into_std(),
                    advertised: session.local_rtp,
                    sample_rate: session.sample_rate,
                };
                self.dial.answered(leg, session);
                core.handle_media(now, leg, ready);
                core.handle_sip(now, leg, SipInput::Answered);
            }
            LegEvent::Refused { status, reason } => {
                tracing::info!(leg = leg.0, status, %reason, "dialled party refused");
                core.handle_sip(now, leg, SipInput::Refused { status });
            }
            LegEvent::Ended(reason) => {
                self.dial.ended(leg);
                core.handle_sip(now, leg, SipInput::Ended(reason));
            }
            LegEvent::Dtmf { digit, duration_ms } => {
                core.handle_sip(now, leg, SipInput::Dtmf { digit, duration_ms })
            }
            LegEvent::MediaChanged(media) => {
                core.handle_sip(now, leg, SipInput::MediaChanged(media))
            }
        }
    }

    /// The media session of `leg`, the caller's or a dialled party's.
    fn session(&self, leg: LegId) -> Option<&MediaSession> {
        if leg == LegId::CALLER {
            self.media.as_ref()
        } else {
            self.dial.media(leg)
        }
    }

    /// Carries out what the core asks, in order: rows and callbacks are written before the
    /// next output (a recording's row before its file, its file final before its callback).
    async fn execute(&mut self, core: &mut Core) {
        let shared = self.shared.clone();
        while let Some(output) = core.poll_output() {
            match output {
                Output::Sip { leg, command } if leg != LegId::CALLER => match command {
                    call_core::SipCommand::Dial(request) => {
                        self.dial.start(shared.clone(), leg, request)
                    }
                    call_core::SipCommand::Cancel | call_core::SipCommand::Hangup => {
                        self.dial.hang_up(leg)
                    }
                    _ => {}
                },
                Output::Sip { command, .. } => {
                    if let Some(input) = self.signal(command) {
                        core.handle_sip(Instant::now().into_std(), LegId::CALLER, input);
                    }
                }
                Output::Media {
                    leg,
                    command: call_core::MediaCommand::Bridge { peer },
                } => match (self.session(leg), self.session(peer)) {
                    (Some(from), Some(to)) => crate::dial::relay(from, to),
                    _ => tracing::warn!(leg = leg.0, peer = peer.0, "no media to bridge"),
                },
                Output::Media {
                    leg,
                    command: call_core::MediaCommand::Unbridge,
                } => {
                    if let Some(session) = self.session(leg) {
                        crate::dial::unrelay(session);
                    }
                }
                Output::Media { leg, command } if leg != LegId::CALLER => {
                    self.leg_media_command(leg, command)
                }
                Output::Media { command, .. } => self.media_command(core, command).await,
                Output::Fetch { id, request } => {
                    let shared = shared.clone();
                    let fetch = async move { Completion::Fetch(id, shared.fetch(request).await) };
                    self.fetches.insert(id, self.tasks.spawn(fetch));
                }
                Output::CancelFetch(id) => {
                    if let Some(task) = self.fetches.remove(&id) {
                        task.abort();
                    }
                }
                Output::Recording {
                    id,
                    io:
                        RecordingIo::Open {
                            sid,
                            sample_rate,
                            channels,
                        },
                } => {
                    let now = Instant::now().into_std();
                    let opened = shared.open_recording(&sid, sample_rate, channels);
                    core.handle_fetch_result(now, id, opened);
                }
                Output::Recording {
                    id,
                    io: RecordingIo::Close { sid, writer, keep },
                } => {
                    let shared = shared.clone();
                    let closed = async move { shared.close_recording(sid, writer, keep).await };
                    self.tasks
                        .spawn(async move { Completion::Fetch(id, closed.await) });
                }
                Output::Recording {
                    id,
                    io: RecordingIo::Finalize { sid, recorder },
                } => {
                    let shared = shared.clone();
                    let finalized = async move { shared.finalize(sid, *recorder).await };
                    self.tasks
                        .spawn(async move { Completion::Fetch(id, finalized.await) });
                }
                Output::Persist(Persist::QueueTranscription(job)) => {
                    shared.transcriber.queue(&shared, job).await
                }
                Output::Persist(Persist::InsertCall { row, request_id }) => {
                    let inserted = self.started.take().map(|started| (started, row.clone()));
                    shared
                        .persist(Persist::InsertCall { row, request_id })
                        .await;
                    if let Some((started, row)) = inserted {
                        let _ = started.send(row);
                    }
                }
                Output::Persist(p) => shared.persist(p).await,
                Output::Callback {
                    group,
                    url,
                    method,
                    params,
                } => shared.outbox.enqueue(&group, &url, method, params).await,
                Output::Live(update) => self.registration.entry.apply(update),
                Output::Bot(event) => self.bot.event(event, &self.registration.entry),
            }
        }
    }

    async fn media_command(&mut self, core: &mut Core, command: call_core::MediaCommand) {
        use call_core::MediaCommand as C;
        let command = match command {
            C::Allocate { offer } => {
                let (session, answer, input) =
                    self.shared.start_media(offer, self.offer_remote).await;
                self.media = session;
                match &mut self.signalling {
                    Signalling::Client { answer_sdp, .. } => *answer_sdp = answer,
                    Signalling::ToClient(to) => to.offer_sdp = answer,
                    Signalling::Sip(_) => {}
                }
                return core.handle_media(Instant::now().into_std(), LegId::CALLER, input);
            }
            other => match self.media_task_command(other) {
                Some(command) => command,
                None => return,
            },
        };
        if let Some(media) = &self.media {
            media.send(command);
        }
    }

    /// What the media task of a leg is told; `None` for what is not the task's (allocation,
    /// bridges: `execute` handles those with both legs' sessions at hand).
    fn media_task_command(&mut self, command: call_core::MediaCommand) -> Option<MediaCommand> {
        use call_core::MediaCommand as C;
        Some(match command {
            C::Play { id, audio, loops } => MediaCommand::Play {
                audio,
                loops,
                done: self.on_played(id),
            },
            C::PlayDigits { id, digits } => MediaCommand::PlayDigits {
                digits,
                done: self.on_played(id),
            },
            C::Stop => MediaCommand::Stop,
            C::InjectDtmf(digit) => MediaCommand::InjectDtmf(digit),
            C::Renegotiate(media) => MediaCommand::Renegotiate(media),
            C::Allocate { .. } | C::Bridge { .. } | C::Unbridge => return None,
        })
    }

    /// Prompts and keys on a dialled leg (its whisper, relayed keys).
    fn leg_media_command(&mut self, leg: LegId, command: call_core::MediaCommand) {
        let Some(command) = self.media_task_command(command) else {
            return;
        };
        if let Some(media) = self.dial.media(leg) {
            media.send(command);
        }
    }

    /// Carries out a signalling command; a call to a client nobody can answer comes back as
    /// the input that ends it.
    fn signal(&mut self, command: call_core::SipCommand) -> Option<SipInput> {
        use call_core::SipCommand as C;
        let call_sid = self.call_sid.to_string();
        match &mut self.signalling {
            Signalling::Sip(key) => {
                if let Some(command) = SipCommand::from_core(*key, command) {
                    self.shared.sip.send(command);
                }
            }
            Signalling::ToClient(to) => match command {
                C::Invite => {
                    let events = to.events.take()?;
                    let sdp = to.offer_sdp.clone().unwrap_or_default();
                    to.ringing = self.shared.clients.connections(&to.identity);
                    if to.ringing.is_empty() {
                        tracing::info!(identity = %to.identity, "no registered client to call");
                        return Some(SipInput::Refused { status: 480 });
                    }
                    tracing::info!(identity = %to.identity, devices = to.ringing.len(), "ringing the client");
                    self.shared
                        .clients
                        .track_call(&call_sid, &to.reconnect, events.clone());
                    to.command(|| ClientCommand::Invite {
                        call_sid: call_sid.clone(),
                        sdp: sdp.clone(),
                        parameters: to.parameters.clone(),
                        events: events.clone(),
                        reconnect: to.reconnect.clone(),
                    });
                }
                C::Cancel => to.cancel_ringing(&call_sid, None),
                C::Hangup => {
                    if let Some((_, connection)) = &to.answered {
                        let _ = connection.try_send(ClientCommand::Hangup { call_sid });
                    }
                }
                // We answer nothing and refuse nothing on a call we place.
                C::Ring | C::Answer { .. } | C::Reject { .. } | C::Dial(_) => {}
            },
            Signalling::Client {
                temp_callsid,
                commands,
                answer_sdp,
                reconnect,
                answered,
                ..
            } => {
                let temp_callsid = temp_callsid.clone();
                let frame = match command {
                    C::Ring => ClientCommand::Ringing {
                        temp_callsid,
                        call_sid,
                    },
                    C::Answer { .. } => {
                        *answered = true;
                        ClientCommand::Answer {
                            temp_callsid,
                            call_sid,
                            sdp: answer_sdp.take().unwrap_or_default(),
                            reconnect: reconnect.clone(),
                        }
                    }
                    C::Reject { status } => ClientCommand::Reject {
                        temp_callsid,
                        status,
                    },
                    C::Hangup => ClientCommand::Hangup { call_sid },
                    C::Invite | C::Cancel | C::Dial(_) => return None,
                };
                // The connection may be gone; the call then ends by its events closing.
                let _ = commands.try_send(frame);
            }
        }
        None
    }

    /// A client accepted the call we placed: the first one takes it (its answer goes to the
    /// media side), the others stop ringing; a later one is hung up.
    async fn client_answered(&mut self, core: &mut Core, connection: u64, sdp: String) {
        let call_sid = self.call_sid.to_string();
        let Signalling::ToClient(to) = &mut self.signalling else {
            return;
        };
        let Some(at) = to.ringing.iter().position(|(id, _)| *id == connection) else {
            if to.answered.as_ref().is_none_or(|(id, _)| *id != connection) {
                tracing::debug!(connection, "answer from a device that no longer rings");
            }
            return;
        };
        let (id, commands) = to.ringing.remove(at);
        to.cancel_ringing(&call_sid, Some(id));
        let (result, accepted) = oneshot::channel();
        match &self.media {
            Some(media) => media.send(MediaCommand::AcceptAnswer { sdp, result }),
            // No media to take the answer: `accepted` reads as failed.
            None => drop(result),
        }
        let accepted = accepted
            .await
            .unwrap_or_else(|_| Err("no media for the call".into()));
        let now = Instant::now().into_std();
        match accepted {
            Ok(sample_rate) => {
                tracing::info!(connection, sample_rate, "the client answered");
                to.answered = Some((id, commands));
                core.handle_media(now, LegId::CALLER, MediaInput::SampleRate(sample_rate));
                core.handle_sip(now, LegId::CALLER, SipInput::Answered);
            }
            Err(reason) => {
                tracing::warn!(connection, %reason, "the client's answer is unusable");
                let _ = commands.try_send(ClientCommand::Hangup { call_sid });
                core.handle_sip(now, LegId::CALLER, SipInput::Refused { status: 488 });
            }
        }
    }

    /// A device could not ring: the call fails as unanswered once none is left.
    fn client_gone(&mut self, core: &mut Core, connection: u64) {
        let Signalling::ToClient(to) = &mut self.signalling else {
            return;
        };
        to.ringing.retain(|(id, _)| *id != connection);
        if to.ringing.is_empty() && to.answered.is_none() {
            let now = Instant::now().into_std();
            core.handle_sip(now, LegId::CALLER, SipInput::Refused { status: 480 });
        }
    }

    /// A connection of this call closed: a ringing device is out; the connection the call is
    /// bound to gets [`SIGNALLING_GRACE`] to come back.
    fn signalling_lost(&mut self, core: &mut Core, connection: u64) {
        let bound = match &self.signalling {
            // Before our answer the client holds no reconnect token: it cannot come back.
            Signalling::Client {
                connection: c,
                answered: false,
                ..
            } if *c == connection => {
                let now = Instant::now().into_std();
                let gone = SipInput::Ended("client gone before the answer".into());
                return core.handle_sip(now, LegId::CALLER, gone);
            }
            Signalling::Client { connection: c, .. } => *c == connection,
            Signalling::ToClient(to) => {
                if to.answered.is_none() {
                    return self.client_gone(core, connection);
                }
                to.answered.as_ref().is_some_and(|(c, _)| *c == connection)
            }
            Signalling::Sip(_) => false,
        };
        if bound && self.signalling_lost.is_none() {
            tracing::info!(
                connection,
                "client signalling lost; waiting for a reconnect"
            );
            self.signalling_lost = Some(Instant::now() + SIGNALLING_GRACE);
        }
    }

    /// The client came back on `connection`: frames go there from now on.
    fn rebound(&mut self, connection: u64, new_commands: mpsc::Sender<ClientCommand>) {
        match &mut self.signalling {
            Signalling::Client {
                connection: c,
                commands,
                ..
            } => {
                *c = connection;
                *commands = new_commands;
            }
            Signalling::ToClient(to) => match to.answered.as_mut() {
                Some(answered) => *answered = (connection, new_commands),
                // A device rebinding a call nobody answered yet: nothing to rebind.
                None => return,
            },
            Signalling::Sip(_) => return,
        }
        tracing::info!(connection, "client signalling rebound");
        self.signalling_lost = None;
    }

    /// The client hung up: the call ends, unless it was one ringing device of a call we placed
    /// (that device is out; the call ends unanswered once none is left).
    fn client_hung_up(&mut self, core: &mut Core, connection: u64) {
        if let Signalling::ToClient(to) = &self.signalling {
            if to.answered.is_none() {
                return self.client_gone(core, connection);
            }
            if to.answered.as_ref().is_some_and(|(c, _)| *c != connection) {
                return;
            }
        }
        let now = Instant::now().into_std();
        core.handle_sip(now, LegId::CALLER, SipInput::Ended("client hung up".into()));
    }

    /// A client declined the call we placed: the call is busy, other devices stop ringing.
    fn client_rejected(&mut self, core: &mut Core, connection: u64) {
        let call_sid = self.call_sid.to_string();
        let Signalling::ToClient(to) = &mut self.signalling else {
            return;
        };
        if !to.ringing.iter().any(|(id, _)| *id == connection) {
            return;
        }
        to.cancel_ringing(&call_sid, Some(connection));
        let now = Instant::now().into_std();
        core.handle_sip(now, LegId::CALLER, SipInput::Refused { status: 486 });
    }

    /// The sender the media task fires when playback `id` has been sent (or dropped).
    fn on_played(&mut self, id: PlaybackId) -> oneshot::Sender<()> {
        let (done, played) = oneshot::channel();
        self.tasks.spawn(async move {
            let _ = played.await;
            Completion::Played(id)
        });
        done
    }
}
