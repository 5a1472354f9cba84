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
use crate::client_call::{ClientCommand, ClientIncoming};
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

/// Where a call came from.
enum Origin {
    Sip(IncomingCall, mpsc::Receiver<CallEvent>),
    Client(ClientIncoming),
}

/// The caller leg's signalling, as the driver speaks it.
enum Signalling {
    Sip(CallKey),
    Client {
        temp_callsid: String,
        commands: mpsc::Sender<ClientCommand>,
        /// Our SDP answer, made when media is set up, sent with the answer frame.
        answer_sdp: Option<String>,
    },
}

/// The caller leg's events: a SIP dialog's, or a client connection's (already core inputs).
enum Events {
    Sip(mpsc::Receiver<CallEvent>),
    Client(mpsc::Receiver<SipInput>),
}

impl Events {
    /// The next input, and whether the source is still open (a closed one is reported once,
    /// as the end of the call).
    async fn recv(&mut self) -> (SipInput, bool) {
        match self {
            Events::Sip(rx) => {
                let event = rx.recv().await;
                let open = event.is_some();
                (core_input(event), open)
            }
            Events::Client(rx) => match rx.recv().await {
                Some(input) => (input, true),
                None => (SipInput::Ended("signalling connection gone".into()), false),
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
}

async fn run(shared: Arc<CallEnv>, call_sid: CallSid, origin: Origin) {
    let (setup, offer, offer_remote, signalling, mut events) = match origin {
        Origin::Sip(incoming, events) => (
            shared.call_setup(&incoming, &call_sid),
            LegOffer::Rtp(incoming.media),
            incoming.media.remote_rtp,
            Signalling::Sip(incoming.call),
            Events::Sip(events),
        ),
        Origin::Client(client) => (
            shared.client_setup(&client, &call_sid),
            LegOffer::WebRtc {
                sdp: client.offer_sdp.clone(),
            },
            client.peer,
            Signalling::Client {
                temp_callsid: client.temp_callsid,
                commands: client.commands,
                answer_sdp: None,
            },
            Events::Client(client.events),
        ),
    };
    let CallSetup {
        info,
        app,
        request_id,
    } = setup;
    let (registration, mut control) = shared.registry.register(CallView {
        id: call_sid.to_string(),
        state: CallState::Establishing,
        from: info.from.clone(),
        to: info.to.clone(),
        bot: app.bot_callback_uri.is_some(),
    });
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
    let config = shared.call_config(&app);
    let mut core = Core::new(
        now,
        config,
        info,
        offer,
        request_id,
        Box::new(rand::random::<u128>),
    );
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
            (input, open) = events.recv(), if events_open => {
                events_open = open;
                let now = driver.drain(&mut core);
                core.handle_sip(now, caller, input);
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
            Some(_) = media_notice => {
                let now = driver.drain(&mut core);
                core.handle_media(now, caller, MediaInput::RtpTimeout);
            }
            _ = drain.tick() => {
                driver.drain(&mut core);
            }
            _ = tokio::time::sleep_until(deadline) => {
                let now = driver.drain(&mut core);
                core.handle_timeout(now);
            }
        }
    }
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
        now
    }

    /// Carries out what the core asks, in order: rows and callbacks are written before the
    /// next output (a recording's row before its file, its file final before its callback).
    async fn execute(&mut self, core: &mut Core) {
        let shared = self.shared.clone();
        while let Some(output) = core.poll_output() {
            match output {
                Output::Sip { command, .. } => self.signal(command),
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
                    io: RecordingIo::Open { sid },
                } => {
                    let now = Instant::now().into_std();
                    core.handle_fetch_result(now, id, shared.open_recording(&sid));
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
                if let Signalling::Client { answer_sdp, .. } = &mut self.signalling {
                    *answer_sdp = answer;
                }
                return core.handle_media(Instant::now().into_std(), LegId::CALLER, input);
            }
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
        };
        if let Some(media) = &self.media {
            media.send(command);
        }
    }

    fn signal(&mut self, command: call_core::SipCommand) {
        use call_core::SipCommand as C;
        let call_sid = self.call_sid.to_string();
        match &mut self.signalling {
            Signalling::Sip(key) => self.shared.sip.send(SipCommand::from_core(*key, command)),
            Signalling::Client {
                temp_callsid,
                commands,
                answer_sdp,
            } => {
                let temp_callsid = temp_callsid.clone();
                let frame = match command {
                    C::Ring => ClientCommand::Ringing {
                        temp_callsid,
                        call_sid,
                    },
                    C::Answer { .. } => ClientCommand::Answer {
                        temp_callsid,
                        call_sid,
                        sdp: answer_sdp.take().unwrap_or_default(),
                    },
                    C::Reject { status } => ClientCommand::Reject {
                        temp_callsid,
                        status,
                    },
                    C::Hangup => ClientCommand::Hangup { call_sid },
                };
                // The connection may be gone; the call then ends by its events closing.
                let _ = commands.try_send(frame);
            }
        }
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
