//! One task per call: runs the TwiML flow ([`control::CallFlow`]) against the call's SIP
//! dialog and media session.

use std::collections::VecDeque;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use control::params::{party, standard_params};
use control::{CallFlow, CallInfo, CallStatus, Document, HttpMethod, Step};
use media_engine::{AudioFrame, MediaItem};
use sip_core::{CallEvent, CallKey, IncomingCall};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::audio::AudioCache;
use crate::config::Config;
use crate::media::{self, MediaCommand, MediaNotice, MediaSession, PortAllocator};
use crate::sids::new_sid;
use crate::sip_task::{SipCommand, SipHandle};
use crate::storage::RecordingStore;
use crate::webhook::Webhooks;

/// How often the call task empties the media ring.
pub(crate) const DRAIN_INTERVAL: Duration = Duration::from_millis(40);

/// What every call task shares.
pub struct Shared {
    pub config: Config,
    pub webhooks: Webhooks,
    pub store: RecordingStore,
    pub sip: SipHandle,
    pub ports: PortAllocator,
    pub audio: AudioCache,
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
            run(shared.clone(), call_sid, incoming, events).await;
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
    tracing::info!(from = %info.from, to = %info.to, peer = %incoming.peer.addr, sip_call_id = %incoming.call_id, "incoming call");
    shared.sip.send(SipCommand::Ring(key));

    let (bind_ip, advertised_ip) = media_addresses(&shared.config, incoming.media.remote_rtp);
    let socket = match shared.ports.bind(bind_ip).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "no RTP port; answering 503");
            shared.sip.send(SipCommand::Reject(key, 503));
            return;
        }
    };
    let media = match media::start(socket, incoming.media, shared.config.rtp_timeout) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "RTP socket unusable; answering 503");
            shared.sip.send(SipCommand::Reject(key, 503));
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
        events,
        media,
        advertised_rtp,
        answered: false,
        remote_ended: false,
        rtp_timed_out: false,
        preroll: VecDeque::with_capacity(preroll_frames.max(1)),
        preroll_frames,
        timeline_end: 0,
    };
    call.execute().await;
}

/// The RTP socket binds the SIP listen IP; when that is a wildcard, the SDP names the local
/// address that routes to the caller (or `sip.public_ip`).
fn media_addresses(config: &Config, remote: SocketAddr) -> (IpAddr, IpAddr) {
    let bind_ip = config.sip_listen.ip();
    let advertised = config.sip_public_ip.unwrap_or_else(|| {
        if bind_ip.is_unspecified() {
            route_to(remote).unwrap_or(bind_ip)
        } else {
            bind_ip
        }
    });
    (bind_ip, advertised)
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
    pub(crate) events: mpsc::UnboundedReceiver<CallEvent>,
    pub(crate) media: MediaSession,
    advertised_rtp: SocketAddr,
    answered: bool,
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
}

/// Why the flow stopped waiting.
pub(crate) enum Interrupt {
    Gone,
}

impl Call {
    /// The caller is gone or the daemon is stopping.
    pub(crate) fn gone(&self) -> bool {
        self.remote_ended || self.rtp_timed_out || *self.shutdown.borrow()
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

    async fn execute(&mut self) {
        let Some((document, url)) = self.initial_document().await else {
            self.end().await;
            return;
        };
        let mut flow = CallFlow::new(document, url);
        loop {
            if self.gone() && !self.hung_up() {
                break; // shutdown
            }
            let step = flow.next_step();
            tracing::debug!(?step, "step");
            match step.clone() {
                Step::Play { url, loops, digits: _ } => {
                    if self.hung_up() {
                        break;
                    }
                    self.answer();
                    match self.shared.audio.load(&url).await {
                        Ok(audio) => {
                            let _ = self.play(audio, loops).await;
                        }
                        Err(e) => {
                            tracing::warn!(code = 11200, url = %url, error = %e, "<Play> skipped")
                        }
                    }
                }
                Step::Pause { secs } => {
                    if self.hung_up() {
                        break;
                    }
                    self.answer();
                    let second = self.shared.silence_second.clone();
                    let _ = self.play(second, secs.max(1)).await;
                }
                Step::Record(verb) => {
                    if self.hung_up() {
                        break;
                    }
                    self.answer();
                    match self.record(&verb).await {
                        Some(result) => flow.record_finished(result),
                        None => break,
                    }
                }
                Step::Fetch {
                    url,
                    method,
                    extra,
                    discard_answer,
                } => {
                    let mut params = self.standard_params();
                    params.extend(extra);
                    match self.fetch(&url, method, &params).await {
                        Ok(answer) if discard_answer => {
                            tracing::debug!(url = %answer.url, "answer ignored (call is over)");
                        }
                        Ok(answer) => match self.parse(&answer.body, &answer.url) {
                            Some(doc) => flow.document_fetched(doc, answer.url),
                            None => break,
                        },
                        Err(e) => {
                            tracing::error!(code = 11200, url = %url, error = %e, "TwiML request failed");
                            break;
                        }
                    }
                }
                Step::Hangup => {
                    if !self.hung_up() {
                        self.answer(); // <Hangup> answers first (SPEC §4)
                    }
                    break;
                }
                Step::Reject { status } => {
                    if !self.answered && !self.hung_up() {
                        self.shared.sip.send(SipCommand::Reject(self.key, status));
                        self.remote_ended = true;
                    }
                    break;
                }
                Step::Say { .. } | Step::Gather(_) | Step::AppError { .. } => {
                    tracing::warn!(?step, "verb not supported yet; ending the call");
                    break;
                }
                Step::End => break,
            }
        }
        self.end().await;
    }

    async fn initial_document(&mut self) -> Option<(Document, Option<String>)> {
        let app = self.shared.config.app.clone();
        match app.voice_url {
            Some(url) => {
                let params = self.standard_params();
                match self.fetch(&url, app.voice_method, &params).await {
                    Ok(answer) => {
                        let doc = self.parse(&answer.body, &answer.url)?;
                        Some((doc, Some(answer.url)))
                    }
                    Err(e) => {
                        tracing::error!(code = 11200, url = %url, error = %e, "voice_url request failed");
                        None
                    }
                }
            }
            None => self
                .parse(&app.twiml, "config:app.twiml")
                .map(|doc| (doc, None)),
        }
    }

    fn parse(&self, body: &str, url: &str) -> Option<Document> {
        match control::twiml::parse_document(body, &self.shared.config.parse_limits()) {
            Ok(doc) => {
                for w in &doc.warnings {
                    tracing::warn!(url, verb = w.verb, attribute = w.attribute, value = %w.value, reason = %w.reason, "TwiML attribute replaced by its default");
                }
                Some(doc)
            }
            Err(e) => {
                let excerpt: String = body.chars().take(120).collect();
                tracing::error!(code = e.code(), url, error = %e, excerpt = %excerpt, "TwiML rejected");
                None
            }
        }
    }

    async fn fetch(
        &mut self,
        url: &str,
        method: HttpMethod,
        params: &[(String, String)],
    ) -> Result<crate::webhook::Answer, crate::webhook::WebhookError> {
        let webhooks = self.shared.webhooks.clone();
        let request = webhooks.request(url, method, params);
        // Keep serving SIP events and the ring while the application thinks.
        match self.wait_allowing_hangup(request).await {
            Some(result) => result,
            None => Err(crate::webhook::WebhookError::Transport {
                url: url.to_string(),
                message: "daemon shutting down".into(),
            }),
        }
    }

    pub(crate) fn answer(&mut self) {
        if !self.answered && !self.gone() {
            self.shared
                .sip
                .send(SipCommand::Answer(self.key, self.advertised_rtp));
            self.answered = true;
        }
    }

    /// Plays `audio` `loops` times; returns early if the call goes away.
    pub(crate) async fn play(&mut self, audio: Arc<[i16]>, loops: u32) -> Result<(), Interrupt> {
        let (done_tx, done_rx) = oneshot::channel();
        self.media.send(MediaCommand::Play {
            audio,
            loops,
            done: done_tx,
        });
        match self.wait(done_rx).await {
            Some(_) => Ok(()),
            None => {
                self.media.send(MediaCommand::Stop);
                Err(Interrupt::Gone)
            }
        }
    }

    /// Runs `fut` while handling SIP events and draining the ring; `None` if the call went away.
    pub(crate) async fn wait<T>(&mut self, fut: impl Future<Output = T>) -> Option<T> {
        self.wait_inner(fut, false).await
    }

    /// Like [`Call::wait`] but lets `fut` finish after a hangup (the hangup action request).
    async fn wait_allowing_hangup<T>(&mut self, fut: impl Future<Output = T>) -> Option<T> {
        self.wait_inner(fut, true).await
    }

    async fn wait_inner<T>(
        &mut self,
        fut: impl Future<Output = T>,
        allow_hangup: bool,
    ) -> Option<T> {
        tokio::pin!(fut);
        let mut drain = tokio::time::interval(DRAIN_INTERVAL);
        loop {
            let stop = if allow_hangup {
                *self.shutdown.borrow()
            } else {
                self.gone()
            };
            if stop {
                return None;
            }
            tokio::select! {
                value = &mut fut => return Some(value),
                event = self.events.recv() => self.on_event(event),
                notice = self.media.notices.recv() => self.on_notice(notice),
                _ = drain.tick() => self.drain_idle(),
                _ = self.shutdown.changed() => {}
            }
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

    /// Outside `<Record>`: keep only the pre-roll; keys are not queued (SPEC §3.5).
    pub(crate) fn drain_idle(&mut self) {
        while let Some(item) = self.media.ring.pop() {
            if let MediaItem::Audio(frame) = item {
                self.timeline_end = frame.position + u64::from(frame.len);
                if self.preroll_frames == 0 {
                    continue;
                }
                if self.preroll.len() == self.preroll_frames {
                    self.preroll.pop_front();
                }
                self.preroll.push_back(frame);
            }
        }
    }

    async fn end(&mut self) {
        if self.remote_ended {
            return;
        }
        if !self.answered {
            // Nothing was ever answered: refuse rather than answer only to hang up.
            self.shared.sip.send(SipCommand::Reject(
                self.key,
                if *self.shutdown.borrow() { 503 } else { 500 },
            ));
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
}
