//! What a call task is given: the shared [`Services`] (through `Deref`) and the handles only
//! calls use — SIP, RTP ports, webhooks, prompts, the live registry, the transcription queue.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use call_core::{CallConfig, FetchRequest, FetchResult, LegOffer, MediaInput};
use control::params::party;
use control::CallInfo;
use prompts::AudioCache;
use sip_core::IncomingCall;
use store::{CallSid, RecordingSid};
use tokio::time::Instant;

use crate::config::{AppConfig, Config};
use crate::media::{self, MediaSession, PortAllocator};
use crate::services::Services;
use crate::sip_task::SipHandle;
use crate::webhook::Webhooks;

/// What every call task shares: the [`Services`] (through `Deref`) and the call-only handles.
pub struct CallEnv {
    pub services: Arc<Services>,
    pub webhooks: Webhooks,
    pub transcriber: crate::transcription::Transcriber,
    /// Running calls, for the live call-control API.
    pub registry: Arc<crate::live::Registry>,
    /// Key of recording access tokens given to bots.
    pub bot_token_secret: Vec<u8>,
    pub sip: SipHandle,
    pub ports: PortAllocator,
    /// Where `<Play>` may fetch from (the SSRF guard; the audio client resolves through it).
    pub egress: Arc<crate::egress::Egress>,
    /// Prompt audio and speech.
    pub audio: Arc<AudioCache>,
    pub tts: Arc<prompts::Tts>,
    pub beep: Arc<[i16]>,
    pub silence_second: Arc<[i16]>,
    pub shutdown: watch::Receiver<bool>,
    /// The DTLS certificate and settings every browser leg shares.
    pub webrtc: webrtc_endpoint::LegConfig,
    /// Registered Voice SDK clients, for calls placed to them.
    pub clients: Arc<crate::signal::ClientRegistry>,
    pub active_calls: AtomicUsize,
}

impl std::ops::Deref for CallEnv {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

/// The RTP socket binds the address of the caller's family (`rtp_ip4`: the SIP listen IP;
/// `rtp.ip6`); when that is a wildcard, the SDP names `sip.public_ip` if it is of that family,
/// else the local address that routes to the caller. `None` when we have no address of the
/// caller's family.
pub(crate) fn media_addresses(config: &Config, remote: SocketAddr) -> Option<(IpAddr, IpAddr)> {
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

/// Who called whom, which application runs, and the client's request id.
pub(crate) struct CallSetup {
    pub info: CallInfo,
    pub app: AppConfig,
    pub request_id: Option<String>,
}

impl CallEnv {
    pub(crate) fn call_setup(&self, incoming: &IncomingCall, call_sid: &CallSid) -> CallSetup {
        let info = CallInfo {
            call_sid: call_sid.clone(),
            account_sid: self.config.account_sid.clone(),
            from: party(incoming.from.user(), &incoming.from.uri),
            to: party(incoming.to.user(), &incoming.to.uri),
            forwarded_from: forwarded_from(incoming),
            caller_name: incoming.from.display_name.clone().filter(|n| !n.is_empty()),
            client: None,
            direction: store::Direction::Inbound,
        };
        let dialed = sip_core::message::uri_user(&incoming.request_uri)
            .or(incoming.to.user())
            .unwrap_or("")
            .to_string();
        let app = self
            .config
            .routes
            .iter()
            .find(|r| r.matches(&dialed))
            .map(|r| r.app.clone())
            .unwrap_or_else(|| self.config.app.clone());
        tracing::info!(from = %info.from, to = %info.to, dialed = %dialed, peer = %incoming.peer.addr, sip_call_id = %incoming.call_id, "incoming call");
        // A client-supplied id the per-call transcript API can be asked by (SPEC §8).
        let request_id = incoming
            .headers
            .get("X-Request-Id")
            .map(|v| v.trim().chars().take(255).collect::<String>())
            .filter(|v| !v.is_empty());
        CallSetup {
            info,
            app,
            request_id,
        }
    }

    /// What a call needs to know, fixed when it starts.
    pub(crate) fn call_config(&self, app: &AppConfig) -> CallConfig {
        let shared = self;
        let config = &shared.config;
        CallConfig {
            account_sid: config.account_sid.clone(),
            http_public_url: config.http_public_url.clone(),
            app: call_core::AppSpec {
                voice_url: app.voice_url.clone(),
                voice_method: app.voice_method,
                twiml: app.twiml.clone(),
                fallback_url: app.fallback_url.clone(),
                fallback_method: app.fallback_method,
                status_callback: app.status_callback.clone(),
                status_callback_method: app.status_callback_method,
                status_callback_events: None,
                bot: app.bot_callback_uri.is_some(),
            },
            parse_limits: config.parse_limits(),
            record: call_core::RecordDefaults {
                pre_roll_ms: config.record.pre_roll_ms,
                trim_padding_ms: config.record.trim_padding_ms,
                finish_key_guard_ms: config.record.finish_key_guard_ms,
                silence_threshold_dbfs: config.record.silence_threshold_dbfs,
                vad_mode: config.record.vad_mode,
            },
            transcription_language: config.transcription.language.clone(),
            rtp_timeout: config.rtp_timeout,
            beep: shared.beep.clone(),
            silence_second: shared.silence_second.clone(),
            wall_clock: (Instant::now().into_std(), crate::outbox::now_ms()),
        }
    }

    /// A document, prompt audio or speech, as the core asked.
    pub(crate) async fn fetch(&self, request: FetchRequest) -> FetchResult<std::fs::File> {
        match request {
            FetchRequest::Twiml {
                url,
                method,
                params,
            } => FetchResult::Twiml(
                self.webhooks
                    .fetch(&url, method, &params)
                    .await
                    .map(|a| call_core::HttpAnswer {
                        url: a.url,
                        content_type: a.content_type,
                        body: a.body,
                        oversized: a.oversized,
                    })
                    .map_err(|e| e.to_string()),
            ),
            FetchRequest::Audio { url } => match self.egress.check_url(&url) {
                Ok(()) => {
                    FetchResult::Audio(self.audio.load(&url).await.map_err(|e| e.to_string()))
                }
                Err(refused) => {
                    tracing::warn!(%refused, "<Play> refused");
                    FetchResult::Audio(Err(refused.to_string()))
                }
            },
            FetchRequest::Speech {
                text,
                voice,
                language,
            } => FetchResult::Audio(
                self.tts
                    .render(&text, &voice, &language)
                    .await
                    .map_err(|e| e.to_string()),
            ),
        }
    }

    /// An RTP port of the caller's family and the media task on it: the session and the input
    /// that tells the core (ready, or the status to refuse the call with).
    pub(crate) async fn start_media(
        &self,
        offer: LegOffer,
        offer_remote: SocketAddr,
    ) -> (Option<MediaSession>, Option<String>, MediaInput) {
        let failed =
            |status: u16, reason: String| (None, None, MediaInput::SetupFailed { status, reason });
        let Some((bind_ip, advertised_ip)) = media_addresses(&self.config, offer_remote) else {
            // sip-core refuses offers in a family we have no media address for; never reached.
            return failed(
                488,
                format!("no RTP address of the family of {offer_remote}"),
            );
        };
        let socket = match self.ports.bind(bind_ip).await {
            Ok(s) => s,
            Err(e) => return failed(503, format!("no RTP port: {e}")),
        };
        let started = match &offer {
            LegOffer::Rtp(offer) => media::start(
                socket,
                *offer,
                self.config.rtp_timeout,
                self.metrics.clone(),
            )
            .map(|session| (session, None))
            .map_err(|e| (503, format!("RTP socket unusable: {e}"))),
            LegOffer::WebRtc { .. } | LegOffer::WebRtcOffer => {
                use crate::webrtc_media::Negotiation;
                let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
                let negotiation = match &offer {
                    LegOffer::WebRtc { sdp } => Negotiation::Answer { offer_sdp: sdp },
                    _ => Negotiation::Offer,
                };
                crate::webrtc_media::start(
                    socket,
                    SocketAddr::new(advertised_ip, port),
                    &self.webrtc,
                    negotiation,
                    self.config.rtp_timeout,
                    self.metrics.clone(),
                )
                .map(|(session, sdp)| (session, Some(sdp)))
                .map_err(|reason| (488, reason))
            }
        };
        match started {
            Ok((session, answer)) => {
                let ready = MediaInput::Ready {
                    origin: session.origin.into_std(),
                    advertised: SocketAddr::new(advertised_ip, session.local_rtp.port()),
                    sample_rate: session.sample_rate,
                };
                (Some(session), answer, ready)
            }
            Err((status, reason)) => failed(status, reason),
        }
    }

    /// Creates a recording's file (counted in progress until [`CallEnv::finalize`]).
    pub(crate) fn open_recording(
        &self,
        sid: &RecordingSid,
        sample_rate: u32,
        channels: u16,
    ) -> FetchResult<std::fs::File> {
        let opened = self.files.create_wav(
            sid.as_str(),
            self.config.record.wav_encoding,
            sample_rate,
            channels,
        );
        match &opened {
            Ok(_) => {
                self.metrics
                    .recordings_in_progress
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => http_api::Metrics::add(&self.metrics.disk_errors, 1),
        }
        FetchResult::RecordingOpened(opened)
    }

    /// Closes a conversation's recording (keeping frames `keep`) off the async threads; if that
    /// fails, repairs what reached the disk.
    pub(crate) async fn close_recording(
        &self,
        sid: RecordingSid,
        writer: record_engine::WavWriter<std::fs::File>,
        keep: std::ops::Range<u64>,
    ) -> FetchResult<std::fs::File> {
        let files = self.files.clone();
        let name = sid.clone();
        let closed = tokio::task::spawn_blocking(move || {
            let total = writer.samples_written();
            let kept = keep.end.min(total).saturating_sub(keep.start.min(total));
            match writer.finalize(keep) {
                Ok(file) => {
                    drop(file);
                    Ok(kept)
                }
                Err(e) => {
                    let repaired =
                        match record_engine::repair_wav_file(&files.wav_path(name.as_str())) {
                            Ok(
                                record_engine::RepairOutcome::Intact { samples }
                                | record_engine::RepairOutcome::Repaired { samples },
                            ) => samples,
                            Err(_) => 0,
                        };
                    Err((e.to_string(), repaired))
                }
            }
        })
        .await
        .unwrap_or_else(|e| Err((format!("close task failed: {e}"), 0)));
        if closed.is_err() {
            http_api::Metrics::add(&self.metrics.disk_errors, 1);
        }
        self.metrics
            .recordings_in_progress
            .fetch_sub(1, Ordering::Relaxed);
        // Before the result reaches the call: its action request follows it.
        self.services.recording_written(&sid).await;
        FetchResult::RecordingClosed(closed)
    }

    /// Finishes a recording off the async threads; if that fails, keeps what reached the disk.
    pub(crate) async fn finalize(
        &self,
        sid: RecordingSid,
        recorder: record_engine::Recorder<std::fs::File>,
    ) -> FetchResult<std::fs::File> {
        let files = self.files.clone();
        let name = sid.clone();
        let finished =
            tokio::task::spawn_blocking(move || files.finish_or_repair(name.as_str(), recorder))
                .await;
        // Before the result reaches the call: its action request follows it.
        self.services.recording_written(&sid).await;
        let (summary, repaired_samples) = match finished {
            Ok(Ok(summary)) => (Some(summary), 0),
            Ok(Err((e, samples))) => {
                http_api::Metrics::add(&self.metrics.disk_errors, 1);
                tracing::error!(recording = %sid, error = %e, samples, "finalizing the recording failed; repaired what was written");
                (None, samples)
            }
            Err(e) => {
                tracing::error!(recording = %sid, error = %e, "finalize task failed");
                (None, 0)
            }
        };
        self.metrics
            .recordings_in_progress
            .fetch_sub(1, Ordering::Relaxed);
        FetchResult::RecordingFinalized {
            summary,
            repaired_samples,
        }
    }
}

fn forwarded_from(incoming: &IncomingCall) -> Option<String> {
    let value = incoming
        .headers
        .get("Diversion")
        .or_else(|| incoming.headers.get("History-Info"))?;
    let addr = sip_core::NameAddr::parse(value).ok()?;
    Some(party(addr.user(), &addr.uri))
}
