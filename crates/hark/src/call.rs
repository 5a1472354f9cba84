//! One task per call: runs the TwiML flow ([`control::CallFlow`]) against the call's SIP
//! dialog and media session.

use std::collections::VecDeque;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use control::params::{party, standard_params};
use control::{CallInfo, CallStatus};
use media_engine::{AudioFrame, MediaItem};
use sip_core::{CallEvent, CallKey, IncomingCall};
use store::CallRecord;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::audio::AudioCache;
use crate::config::{AppConfig, Config};
use crate::media::{self, MediaCommand, MediaNotice, MediaSession, PortAllocator};
use crate::progress::Progress;
use crate::sids::new_sid;
use crate::sip_task::{SipCommand, SipHandle};
use crate::storage::RecordingFiles;
use crate::webhook::Webhooks;

/// How often the call task empties the media ring. Stop positions come from the media
/// timeline, not from when the ring is read, so this only sets latency (and wake-ups).
pub(crate) const DRAIN_INTERVAL: Duration = Duration::from_millis(100);

/// What every call task shares.
pub struct Shared {
    pub config: Config,
    pub webhooks: Webhooks,
    /// Recording files.
    pub files: RecordingFiles,
    /// Metadata: calls, recordings, the outbox.
    pub store: Arc<store::Store>,
    pub outbox: crate::outbox::Outbox,
    pub transcriber: crate::transcription::Transcriber,
    /// Running calls, for the live call-control API.
    pub registry: Arc<crate::live::Registry>,
    /// Key of recording access tokens given to bots.
    pub bot_token_secret: Vec<u8>,
    pub metrics: Arc<http_api::Metrics>,
    /// Deletes recordings as the REST API does (bot recordings discarded with their call).
    pub recording_deleter: http_api::RecordingDeleter,
    pub sip: SipHandle,
    pub ports: PortAllocator,
    pub audio: Arc<AudioCache>,
    pub tts: Arc<crate::tts::Tts>,
    pub beep: Arc<[i16]>,
    pub silence_second: Arc<[i16]>,
    pub shutdown: watch::Receiver<bool>,
    pub active_calls: AtomicUsize,
}

pub fn spawn(
    shared: Arc<Shared>,
    incoming: IncomingCall,
    events: mpsc::UnboundedReceiver<CallEvent>,
) {
    let call_sid = new_sid("CA");
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

async fn run(
    shared: Arc<Shared>,
    call_sid: String,
    incoming: IncomingCall,
    events: mpsc::UnboundedReceiver<CallEvent>,
) {
    let key = incoming.call;
    let info = CallInfo {
        call_sid,
        account_sid: shared.config.account_sid.clone(),
        from: party(incoming.from.user(), &incoming.from.uri),
        to: party(incoming.to.user(), &incoming.to.uri),
        forwarded_from: forwarded_from(&incoming),
        caller_name: incoming.from.display_name.clone().filter(|n| !n.is_empty()),
    };
    let dialed = sip_core::message::uri_user(&incoming.request_uri)
        .or(incoming.to.user())
        .unwrap_or("")
        .to_string();
    let app = shared
        .config
        .routes
        .iter()
        .find(|r| r.matches(&dialed))
        .map(|r| r.app.clone())
        .unwrap_or_else(|| shared.config.app.clone());
    tracing::info!(from = %info.from, to = %info.to, dialed = %dialed, peer = %incoming.peer.addr, sip_call_id = %incoming.call_id, "incoming call");
    let record = CallRecord::default_for(&info);
    let row = record.clone();
    // A client-supplied id the per-call transcript API can be asked by (SPEC §8).
    let request_id = incoming
        .headers
        .get("X-Request-Id")
        .map(|v| v.trim().chars().take(255).collect::<String>())
        .filter(|v| !v.is_empty());
    shared
        .db(move |s| s.insert_call_with_request_id(&row, request_id.as_deref()))
        .await;
    let (entry, control) = shared.registry.register(http_api::control::CallView {
        id: info.call_sid.clone(),
        state: "establishing".into(),
        from: info.from.clone(),
        to: info.to.clone(),
        bot: app.bot_callback_uri.is_some(),
    });
    let _registered = Registered {
        shared: shared.clone(),
        entry: entry.clone(),
        sid: info.call_sid.clone(),
    };
    let mut progress = Progress::new(shared.outbox.clone(), &app);
    progress.send("initiated", &info).await;
    shared.sip.send(SipCommand::Ring(key));
    progress.send("ringing", &info).await;

    let Some((bind_ip, advertised_ip)) = media_addresses(&shared.config, incoming.media.remote_rtp)
    else {
        // sip-core refuses offers in a family we have no media address for; never reached.
        tracing::error!(remote = %incoming.media.remote_rtp, "no RTP address of this family; answering 488");
        shared.sip.send(SipCommand::Reject(key, 488));
        finish_record(&shared, record, "failed", None).await;
        progress.send_final("failed", &info, None).await;
        return;
    };
    let socket = match shared.ports.bind(bind_ip).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "no RTP port; answering 503");
            shared.sip.send(SipCommand::Reject(key, 503));
            finish_record(&shared, record, "failed", None).await;
            progress.send_final("failed", &info, None).await;
            return;
        }
    };
    let media = match media::start(
        socket,
        incoming.media,
        shared.config.rtp_timeout,
        shared.metrics.clone(),
    ) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "RTP socket unusable; answering 503");
            shared.sip.send(SipCommand::Reject(key, 503));
            finish_record(&shared, record, "failed", None).await;
            progress.send_final("failed", &info, None).await;
            return;
        }
    };
    let advertised_rtp = SocketAddr::new(advertised_ip, media.local_rtp.port());
    let preroll_frames = (shared.config.record.pre_roll_ms / 20) as usize;
    let mut call = Call {
        shutdown: shared.shutdown.clone(),
        shared,
        key,
        info,
        app,
        progress,
        record,
        entry,
        control,
        hangup_requested: false,
        redirect: None,
        bot: crate::bot::BotState::default(),
        answered_at: None,
        rejected_with: None,
        keys: VecDeque::new(),
        interrupt_on_key: false,
        events,
        media,
        advertised_rtp,
        answered: false,
        remote_ended: false,
        rtp_timed_out: false,
        preroll: VecDeque::with_capacity(preroll_frames.max(1)),
        preroll_frames,
        timeline_end: 0,
        heard_audio: false,
    };
    call.execute().await;
    call.end().await;
    // From here on the API treats the call as ended (a live update is 21220, not accepted and
    // dropped while the task still reports).
    call.entry.set_state("terminated");
    if call.app.bot_callback_uri.is_some() && call.entry_is_bot() {
        // Also after a bot call was redirected to TwiML: the bot learns that it ended.
        call.notify_call_state("terminated");
    }
    call.report_completed().await;
    if call.app.bot_callback_uri.is_some()
        && call.shared.config.bot_recording_retention == crate::config::BotRecordingRetention::Call
    {
        // A grace period: the completion of an operation cut by the hangup (8528) still hands
        // the bot a recordingLocation, and its notification may be on its way.
        tokio::spawn(crate::retention::discard_bot_recordings_after(
            crate::retention::BOT_DISCARD_GRACE,
            call.shared.clone(),
            call.info.call_sid.clone(),
        ));
    }
}

trait NewCall {
    fn default_for(info: &CallInfo) -> CallRecord;
}

impl NewCall for CallRecord {
    /// A ringing inbound call created now.
    fn default_for(info: &CallInfo) -> CallRecord {
        let now = crate::outbox::now_ms();
        CallRecord {
            sid: info.call_sid.clone(),
            account_sid: info.account_sid.clone(),
            from: info.from.clone(),
            to: info.to.clone(),
            direction: "inbound".into(),
            status: "ringing".into(),
            date_created_ms: now,
            date_updated_ms: now,
            start_time_ms: None,
            end_time_ms: None,
            duration_secs: None,
        }
    }
}

/// The call's row at its end.
async fn finish_record(
    shared: &Shared,
    mut record: CallRecord,
    status: &str,
    duration: Option<u32>,
) {
    let now = crate::outbox::now_ms();
    record.status = status.to_string();
    record.date_updated_ms = now;
    record.end_time_ms = Some(now);
    record.duration_secs = Some(duration.unwrap_or(0));
    shared.db(move |s| s.update_call(&record)).await;
}

impl Shared {
    /// Runs a store operation on a blocking thread; failures are logged and counted, never
    /// fatal to the call (the audio on disk is what matters).
    pub(crate) async fn db<T, F>(&self, op: F) -> Option<T>
    where
        F: FnOnce(&store::Store) -> Result<T, store::StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || op(&store)).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                http_api::Metrics::add(&self.metrics.db_errors, 1);
                tracing::error!(error = %e, "database");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "database task failed");
                None
            }
        }
    }
}

/// The RTP socket binds the address of the caller's family (`rtp_ip4`: the SIP listen IP;
/// `rtp.ip6`); when that is a wildcard, the SDP names `sip.public_ip` if it is of that family,
/// else the local address that routes to the caller. `None` when we have no address of the
/// caller's family.
fn media_addresses(config: &Config, remote: SocketAddr) -> Option<(IpAddr, IpAddr)> {
    let bind_ip = if remote.is_ipv4() {
        config.rtp_ip4
    } else {
        config.rtp_ip6
    }?;
    let public = config
        .sip_public_ip
        .filter(|ip| ip.is_ipv4() == remote.is_ipv4());
    let advertised = public.unwrap_or_else(|| {
        if bind_ip.is_unspecified() {
            route_to(remote).unwrap_or(bind_ip)
        } else {
            bind_ip
        }
    });
    Some((bind_ip, advertised))
}

/// The local address the kernel would use to reach `remote` (no packet is sent).
fn route_to(remote: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = if remote.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .ok()?;
    let probe = std::net::UdpSocket::bind(any).ok()?;
    probe.connect(remote).ok()?;
    let ip = probe.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

fn forwarded_from(incoming: &IncomingCall) -> Option<String> {
    let value = incoming
        .headers
        .get("Diversion")
        .or_else(|| incoming.headers.get("History-Info"))?;
    let addr = sip_core::NameAddr::parse(value).ok()?;
    Some(party(addr.user(), &addr.uri))
}

pub(crate) struct Call {
    pub(crate) shared: Arc<Shared>,
    pub(crate) key: CallKey,
    pub(crate) info: CallInfo,
    /// The application this call runs (`[app]` or a matching `[[route]]`).
    pub(crate) app: AppConfig,
    progress: Progress,
    /// The call's row in the database, as last written.
    record: CallRecord,
    answered_at: Option<Instant>,
    /// The final non-2xx status we sent instead of answering.
    pub(crate) rejected_with: Option<u16>,
    /// Keys collected while a `<Gather>` runs.
    pub(crate) keys: VecDeque<char>,
    /// This call in the live-control registry, and the API's messages to it.
    pub(crate) entry: Arc<crate::live::CallEntry>,
    pub(crate) control: mpsc::UnboundedReceiver<crate::live::ControlMsg>,
    /// The API asked to hang up (Graph DELETE, Twilio `Status=completed`).
    pub(crate) hangup_requested: bool,
    /// The API asked to run other TwiML now (Twilio's live update).
    pub(crate) redirect: Option<crate::live::Redirect>,
    /// Bot mode: queued operations and tone subscription.
    pub(crate) bot: crate::bot::BotState,
    /// Waiting stops when a key arrives (`<Gather>` prompts barge-in).
    pub(crate) interrupt_on_key: bool,
    pub(crate) events: mpsc::UnboundedReceiver<CallEvent>,
    pub(crate) media: MediaSession,
    advertised_rtp: SocketAddr,
    pub(crate) answered: bool,
    /// The caller ended the dialog (BYE, CANCEL, lost ACK): nothing more to send.
    pub(crate) remote_ended: bool,
    /// No RTP for `rtp.timeout`: a hangup for the flow, and we send the BYE.
    pub(crate) rtp_timed_out: bool,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// The last few hundred ms heard while not recording (SPEC §3.2 step 2).
    pub(crate) preroll: VecDeque<AudioFrame>,
    preroll_frames: usize,
    /// End of the last audio frame taken from the ring.
    pub(crate) timeline_end: u64,
    /// Some RTP audio of the caller has come through the ring (not only filled silence).
    pub(crate) heard_audio: bool,
}

/// Why the flow stopped waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupt {
    /// The caller hung up, or the daemon is stopping.
    Gone,
    /// A key arrived while `interrupt_on_key` was set.
    Key,
}

impl Call {
    /// The caller is gone, the daemon is stopping, or the API took the call elsewhere: whatever
    /// runs must stop.
    pub(crate) fn gone(&self) -> bool {
        self.remote_ended || self.rtp_timed_out || self.interrupted()
    }

    /// Stopped from our side: shutdown, an API hangup or redirect, a bot's barge-in.
    pub(crate) fn interrupted(&self) -> bool {
        *self.shutdown.borrow()
            || self.hangup_requested
            || self.redirect.is_some()
            || self.bot.barge_in
    }

    /// The inbound timeline's present: samples since the media session's origin.
    pub(crate) fn media_clock(&self) -> u64 {
        let elapsed = self.media.origin.elapsed();
        (elapsed.as_micros() * u128::from(media_engine::SAMPLE_RATE) / 1_000_000) as u64
    }

    pub(crate) fn hung_up(&self) -> bool {
        self.remote_ended || self.rtp_timed_out
    }

    pub(crate) fn status(&self) -> CallStatus {
        if self.hung_up() {
            CallStatus::Completed
        } else if self.answered {
            CallStatus::InProgress
        } else {
            CallStatus::Ringing
        }
    }

    pub(crate) fn standard_params(&self) -> Vec<(String, String)> {
        standard_params(&self.info, self.status())
    }

    pub(crate) async fn answer(&mut self) {
        if !self.answered && !self.gone() {
            self.shared
                .sip
                .send(SipCommand::Answer(self.key, self.advertised_rtp));
            self.answered = true;
            self.answered_at = Some(Instant::now());
            let now = crate::outbox::now_ms();
            self.record.status = "in-progress".into();
            self.record.start_time_ms = Some(now);
            self.record.date_updated_ms = now;
            let record = self.record.clone();
            self.shared.db(move |s| s.update_call(&record)).await;
            self.progress.send("answered", &self.info).await;
        }
    }

    /// Plays `audio` `loops` times (0 = until interrupted).
    pub(crate) async fn play(&mut self, audio: Arc<[i16]>, loops: u32) -> Result<(), Interrupt> {
        let (done_tx, done_rx) = oneshot::channel();
        self.media.send(MediaCommand::Play {
            audio,
            loops,
            done: done_tx,
        });
        self.until_sent(done_rx).await
    }

    /// Sends `digits` as RFC 4733 events (`w` = 0.5 s pause).
    pub(crate) async fn play_digits(&mut self, digits: &str) -> Result<(), Interrupt> {
        let (done_tx, done_rx) = oneshot::channel();
        self.media.send(MediaCommand::PlayDigits {
            digits: digits.to_string(),
            done: done_tx,
        });
        self.until_sent(done_rx).await
    }

    async fn until_sent(&mut self, done: oneshot::Receiver<()>) -> Result<(), Interrupt> {
        match self.wait(done).await {
            Ok(_) => Ok(()),
            Err(interrupt) => {
                self.media.send(MediaCommand::Stop);
                Err(interrupt)
            }
        }
    }

    /// Runs `fut` while handling SIP events and draining the ring.
    pub(crate) async fn wait<T>(&mut self, fut: impl Future<Output = T>) -> Result<T, Interrupt> {
        self.wait_inner(fut, false).await
    }

    /// Like [`Call::wait`] but lets `fut` finish after a hangup (the hangup action request).
    pub(crate) async fn wait_allowing_hangup<T>(
        &mut self,
        fut: impl Future<Output = T>,
    ) -> Result<T, Interrupt> {
        self.wait_inner(fut, true).await
    }

    async fn wait_inner<T>(
        &mut self,
        fut: impl Future<Output = T>,
        allow_hangup: bool,
    ) -> Result<T, Interrupt> {
        tokio::pin!(fut);
        let mut drain = tokio::time::interval(DRAIN_INTERVAL);
        loop {
            let stop = if allow_hangup {
                *self.shutdown.borrow() || self.hangup_requested
            } else {
                self.gone()
            };
            if stop {
                return Err(Interrupt::Gone);
            }
            if self.interrupt_on_key && !self.keys.is_empty() {
                return Err(Interrupt::Key);
            }
            tokio::select! {
                value = &mut fut => return Ok(value),
                event = self.events.recv() => self.on_event(event),
                notice = self.media.notices.recv() => self.on_notice(notice),
                _ = drain.tick() => self.drain_idle(),
                msg = self.control.recv() => self.on_control(msg),
                _ = self.shutdown.changed() => {}
            }
        }
    }

    pub(crate) fn on_control(&mut self, msg: Option<crate::live::ControlMsg>) {
        use crate::live::ControlMsg;
        match msg {
            None => {}
            Some(ControlMsg::HangUp) => {
                tracing::info!("hang-up requested over the API");
                self.hangup_requested = true;
            }
            Some(ControlMsg::Redirect(to)) => {
                tracing::info!(?to, "call redirected over the API");
                self.redirect = Some(to);
            }
            Some(ControlMsg::Operation { id, request }) => self.queue_operation(id, request),
        }
    }

    pub(crate) fn on_event(&mut self, event: Option<CallEvent>) {
        match event {
            Some(CallEvent::Ended { reason, .. }) => {
                tracing::info!(?reason, "call ended by the network");
                self.remote_ended = true;
            }
            None => self.remote_ended = true,
            Some(CallEvent::Dtmf {
                digit, duration_ms, ..
            }) => {
                tracing::debug!(%digit, duration_ms, "DTMF by SIP INFO");
                self.media.send(MediaCommand::InjectDtmf(digit));
            }
            Some(CallEvent::MediaChanged { media, .. }) => {
                tracing::info!(remote = %media.remote_rtp, direction = ?media.remote_direction, "media renegotiated");
                self.media.send(MediaCommand::Renegotiate(media));
            }
            Some(CallEvent::Confirmed { .. }) | Some(CallEvent::Incoming(_)) => {}
        }
    }

    pub(crate) fn on_notice(&mut self, notice: Option<MediaNotice>) {
        if let Some(MediaNotice::RtpTimeout) = notice {
            tracing::warn!(
                timeout_s = self.shared.config.rtp_timeout.as_secs(),
                "no RTP from the caller; treating as hangup"
            );
            self.rtp_timed_out = true;
        }
    }

    /// Outside `<Record>`: keep only the pre-roll. Keys are kept only while a `<Gather>`
    /// collects them (SPEC §3.5: keys during the beep are not queued).
    pub(crate) fn drain_idle(&mut self) {
        while let Some(item) = self.media.ring.pop() {
            match item {
                MediaItem::Audio(frame) => {
                    self.timeline_end = frame.position + u64::from(frame.len);
                    self.heard_audio |= !frame.filled;
                    if self.preroll_frames == 0 {
                        continue;
                    }
                    if self.preroll.len() == self.preroll_frames {
                        self.preroll.pop_front();
                    }
                    self.preroll.push_back(frame);
                }
                MediaItem::Dtmf(event) => {
                    tracing::debug!(digit = %event.digit, source = ?event.source, "DTMF");
                    if self.collecting_keys() {
                        self.keys.push_back(event.digit);
                    }
                    if self.bot.tones_subscribed {
                        self.bot.tones.push_back(event.digit);
                    }
                }
            }
        }
        if !self.bot.tones.is_empty() {
            self.flush_tones();
        }
    }

    fn entry_is_bot(&self) -> bool {
        self.bot.started
    }

    fn collecting_keys(&self) -> bool {
        self.interrupt_on_key
    }

    /// Ends the dialog from our side unless the caller already did.
    pub(crate) async fn end(&mut self) {
        if self.remote_ended || self.rejected_with.is_some() {
            return;
        }
        if !self.answered {
            // Nothing was ever answered: refuse rather than answer only to hang up.
            let status = if *self.shutdown.borrow() { 503 } else { 500 };
            self.reject(status);
            return;
        }
        self.shared.sip.send(SipCommand::Hangup(self.key));
        // Give the BYE a moment to be answered so the dialog ends cleanly; bounded.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.remote_ended {
            tokio::select! {
                event = self.events.recv() => {
                    if event.is_none() || matches!(event, Some(CallEvent::Ended { .. })) { break; }
                }
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
    }

    pub(crate) fn reject(&mut self, status: u16) {
        if self.answered || self.remote_ended || self.rejected_with.is_some() {
            return;
        }
        self.shared.sip.send(SipCommand::Reject(self.key, status));
        self.rejected_with = Some(status);
    }

    /// The final call progress event and database row.
    async fn report_completed(&mut self) {
        let status = match self.rejected_with {
            None => "completed",
            Some(486) | Some(600) => "busy",
            Some(487) => "canceled",
            Some(603) | Some(480) => "no-answer",
            Some(_) => "failed",
        };
        let status = if !self.answered && self.remote_ended {
            "canceled"
        } else {
            status
        };
        let duration = self.answered_at.map(|t| t.elapsed().as_secs());
        let mut record = self.record.clone();
        if let Some(start) = record.start_time_ms {
            record.end_time_ms = Some(start + duration.unwrap_or(0) as i64 * 1000);
        }
        finish_record(&self.shared, record, status, duration.map(|d| d as u32)).await;
        self.progress.send_final(status, &self.info, duration).await;
    }
}

/// Keeps the call in the registry for as long as its task runs.
struct Registered {
    shared: Arc<Shared>,
    entry: Arc<crate::live::CallEntry>,
    sid: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.entry.set_state("terminated");
        self.shared.registry.remove(&self.sid);
    }
}
