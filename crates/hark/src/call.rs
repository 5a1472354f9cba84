//! One task per call: drives the call's sans-IO core ([`call_core::Call`]) with the SIP
//! dialog's events, the media ring, the API's control messages and the results of the I/O the
//! core asks for (webhooks, prompt audio, speech, recording files, rows, callbacks).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use call_core::{
    ControlInput, FetchRequest, FetchResult, IoId, LegId, LiveUpdate, MediaInput, Output, Persist,
    PlaybackId, RecordingIo, SipInput,
};
use http_api::control::CallState;
use sip_core::{CallEvent, CallKey, IncomingCall};
use store::CallSid;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tracing::Instrument;

use crate::call_env::{media_addresses, CallEnv, CallSetup};
use crate::config::AppConfig;
use crate::media::{self, MediaCommand, MediaSession};
use crate::sip_task::SipCommand;

/// How often the call task empties the media ring. Stop positions come from the media
/// timeline, not from when the ring is read, so this only sets latency (and wake-ups).
pub(crate) const DRAIN_INTERVAL: Duration = Duration::from_millis(100);

type Core = call_core::Call<std::fs::File>;

pub fn spawn(shared: Arc<CallEnv>, incoming: IncomingCall, events: mpsc::Receiver<CallEvent>) {
    let call_sid = CallSid::new_random();
    let span = tracing::info_span!("call", sid = %call_sid);
    tokio::spawn(
        async move {
            shared.active_calls.fetch_add(1, Ordering::Relaxed);
            shared.metrics.active_calls.fetch_add(1, Ordering::Relaxed);
            shared.metrics.calls_total.fetch_add(1, Ordering::Relaxed);
            run(shared.clone(), call_sid, incoming, events).await;
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
    key: CallKey,
    app: AppConfig,
    call_sid: CallSid,
    entry: Arc<crate::live::CallEntry>,
    offer_remote: SocketAddr,
    media: Option<MediaSession>,
    tasks: JoinSet<Completion>,
    fetches: HashMap<IoId, AbortHandle>,
    bot: crate::bot_notify::BotNotifier,
}

async fn run(
    shared: Arc<CallEnv>,
    call_sid: CallSid,
    incoming: IncomingCall,
    mut events: mpsc::Receiver<CallEvent>,
) {
    let CallSetup {
        info,
        app,
        request_id,
    } = shared.call_setup(&incoming, &call_sid);
    let (entry, mut control) = shared.registry.register(http_api::control::CallView {
        id: call_sid.to_string(),
        state: CallState::Establishing,
        from: info.from.clone(),
        to: info.to.clone(),
        bot: app.bot_callback_uri.is_some(),
    });
    let _registered = Registered {
        shared: shared.clone(),
        entry: entry.clone(),
        sid: call_sid.to_string(),
    };
    let config = shared.call_config(&app);
    let bot = crate::bot_notify::BotNotifier::new(
        &shared.webhooks,
        &shared.config,
        &shared.bot_token_secret,
        &app,
        (call_sid.as_str(), &info.from, &info.to),
    );
    let mut driver = Driver {
        shared: shared.clone(),
        key: incoming.call,
        app,
        call_sid,
        entry,
        offer_remote: incoming.media.remote_rtp,
        media: None,
        tasks: JoinSet::new(),
        fetches: HashMap::new(),
        bot,
    };
    let mut core = Core::new(
        Instant::now().into_std(),
        config,
        info,
        incoming.media,
        request_id,
        Box::new(rand::random::<u128>),
    );
    let mut shutdown = shared.shutdown.clone();
    let mut drain = tokio::time::interval(DRAIN_INTERVAL);
    let (mut events_open, mut control_open, mut shutdown_open) = (true, true, true);
    let caller = LegId::CALLER;
    if *shutdown.borrow() {
        core.handle_control(Instant::now().into_std(), ControlInput::Shutdown);
    }
    loop {
        driver.execute(&mut core).await;
        if core.is_done() {
            break;
        }
        let deadline = core
            .poll_timeout()
            .map(|(at, _)| Instant::from_std(at))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let media_notice = async {
            match driver.media.as_mut() {
                Some(m) => m.notices.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = events.recv(), if events_open => {
                let now = driver.drain(&mut core);
                let input = match event {
                    Some(CallEvent::Ended { reason, .. }) => SipInput::Ended(format!("{reason:?}")),
                    Some(CallEvent::Dtmf { digit, duration_ms, .. }) => SipInput::Dtmf { digit, duration_ms },
                    Some(CallEvent::MediaChanged { media, .. }) => SipInput::MediaChanged(media),
                    Some(CallEvent::Confirmed { .. }) | Some(CallEvent::Incoming(_)) => SipInput::Confirmed,
                    None => {
                        events_open = false;
                        SipInput::Ended("dialog gone".into())
                    }
                };
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
                if changed.is_err() {
                    shutdown_open = false;
                } else if *shutdown.borrow() {
                    let now = driver.drain(&mut core);
                    core.handle_control(now, ControlInput::Shutdown);
                }
            }
            Some(done) = driver.tasks.join_next() => {
                let now = driver.drain(&mut core);
                match done {
                    Ok(Completion::Fetch(id, result)) => {
                        driver.fetches.remove(&id);
                        driver.count_finalized(&result);
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
    if driver.app.bot_callback_uri.is_some()
        && shared.config.bot_recording_retention == crate::config::BotRecordingRetention::Call
    {
        // A grace period: the completion of an operation cut by the hangup (8528) still hands
        // the bot a recordingLocation, and its notification may be on its way.
        tokio::spawn(crate::retention::discard_bot_recordings_after(
            crate::retention::BOT_DISCARD_GRACE,
            shared.services.clone(),
            driver.call_sid.clone(),
        ));
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
        while let Some(output) = core.poll_output() {
            match output {
                Output::Sip { command, .. } => self.shared.sip.send(match command {
                    call_core::SipCommand::Ring => SipCommand::Ring(self.key),
                    call_core::SipCommand::Answer { local_rtp } => {
                        SipCommand::Answer(self.key, local_rtp)
                    }
                    call_core::SipCommand::Reject { status } => {
                        SipCommand::Reject(self.key, status)
                    }
                    call_core::SipCommand::Hangup => SipCommand::Hangup(self.key),
                }),
                Output::Media { command, .. } => self.media_command(core, command).await,
                Output::Fetch { id, request } => self.fetch(id, request),
                Output::CancelFetch(id) => {
                    if let Some(task) = self.fetches.remove(&id) {
                        task.abort();
                    }
                }
                Output::Recording { id, io } => self.recording(core, id, io),
                Output::Persist(Persist::QueueTranscription(job)) => {
                    self.shared.transcriber.queue(&self.shared, job).await
                }
                Output::Persist(p) => self.shared.persist(p).await,
                Output::Callback {
                    group,
                    url,
                    method,
                    params,
                } => {
                    self.shared
                        .outbox
                        .enqueue(&group, &url, method, params)
                        .await
                }
                Output::Live(LiveUpdate::BotMode) => self.entry.set_bot(true),
                Output::Live(LiveUpdate::Established) => {
                    self.entry.set_state(CallState::Established)
                }
                Output::Live(LiveUpdate::Terminated) => self.entry.set_state(CallState::Terminated),
                Output::Bot(event) => self.bot.event(event, &self.entry),
            }
        }
    }

    async fn media_command(&mut self, core: &mut Core, command: call_core::MediaCommand) {
        use call_core::MediaCommand as C;
        let command = match command {
            C::Allocate { offer } => return self.allocate(core, offer).await,
            C::Play { id, audio, loops } => {
                let (done, played) = oneshot::channel();
                self.tasks.spawn(async move {
                    let _ = played.await;
                    Completion::Played(id)
                });
                MediaCommand::Play { audio, loops, done }
            }
            C::PlayDigits { id, digits } => {
                let (done, played) = oneshot::channel();
                self.tasks.spawn(async move {
                    let _ = played.await;
                    Completion::Played(id)
                });
                MediaCommand::PlayDigits { digits, done }
            }
            C::Stop => MediaCommand::Stop,
            C::InjectDtmf(digit) => MediaCommand::InjectDtmf(digit),
            C::Renegotiate(media) => MediaCommand::Renegotiate(media),
        };
        if let Some(media) = &self.media {
            media.send(command);
        }
    }

    async fn allocate(&mut self, core: &mut Core, offer: sip_core::sdp::Negotiated) {
        let shared = self.shared.clone();
        let now = || Instant::now().into_std();
        let failed = |status: u16, reason: String| MediaInput::SetupFailed { status, reason };
        let Some((bind_ip, advertised_ip)) = media_addresses(&shared.config, self.offer_remote)
        else {
            // sip-core refuses offers in a family we have no media address for; never reached.
            let reason = format!("no RTP address of the family of {}", self.offer_remote);
            return core.handle_media(now(), LegId::CALLER, failed(488, reason));
        };
        let socket = match shared.ports.bind(bind_ip).await {
            Ok(s) => s,
            Err(e) => {
                let reason = format!("no RTP port: {e}");
                return core.handle_media(now(), LegId::CALLER, failed(503, reason));
            }
        };
        match media::start(
            socket,
            offer,
            shared.config.rtp_timeout,
            shared.metrics.clone(),
        ) {
            Ok(session) => {
                let ready = MediaInput::Ready {
                    origin: session.origin.into_std(),
                    advertised: SocketAddr::new(advertised_ip, session.local_rtp.port()),
                };
                self.media = Some(session);
                core.handle_media(now(), LegId::CALLER, ready);
            }
            Err(e) => {
                let reason = format!("RTP socket unusable: {e}");
                core.handle_media(now(), LegId::CALLER, failed(503, reason));
            }
        }
    }

    fn fetch(&mut self, id: IoId, request: FetchRequest) {
        let shared = self.shared.clone();
        let task = self
            .tasks
            .spawn(async move { Completion::Fetch(id, shared.fetch(request).await) });
        self.fetches.insert(id, task);
    }

    fn recording(&mut self, core: &mut Core, id: IoId, io: RecordingIo<std::fs::File>) {
        let shared = self.shared.clone();
        match io {
            RecordingIo::Open { sid } => {
                let opened = shared
                    .files
                    .create_wav(sid.as_str(), shared.config.record.wav_encoding);
                match &opened {
                    Ok(_) => {
                        shared
                            .metrics
                            .recordings_in_progress
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => http_api::Metrics::add(&shared.metrics.disk_errors, 1),
                }
                let now = Instant::now().into_std();
                core.handle_fetch_result(now, id, FetchResult::RecordingOpened(opened));
            }
            RecordingIo::Finalize { sid, recorder } => {
                let finalized =
                    async move { Completion::Fetch(id, shared.finalize(sid, *recorder).await) };
                self.tasks.spawn(finalized);
            }
        }
    }

    fn count_finalized(&self, result: &FetchResult<std::fs::File>) {
        if let FetchResult::RecordingFinalized { .. } = result {
            self.shared
                .metrics
                .recordings_in_progress
                .fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Keeps the call in the registry for as long as its task runs.
struct Registered {
    shared: Arc<CallEnv>,
    entry: Arc<crate::live::CallEntry>,
    sid: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.entry.set_state(CallState::Terminated);
        self.shared.registry.remove(&self.sid);
    }
}
