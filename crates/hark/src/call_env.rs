//! What a call task is given: the shared [`Services`] (through `Deref`) and the handles only
//! calls use — SIP, RTP ports, webhooks, prompts, the live registry, the transcription queue.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use tokio::sync::watch;

use crate::audio::AudioCache;
use crate::config::Config;
use crate::media::PortAllocator;
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
    /// Prompt audio and speech.
    pub audio: Arc<AudioCache>,
    pub tts: Arc<crate::tts::Tts>,
    pub beep: Arc<[i16]>,
    pub silence_second: Arc<[i16]>,
    pub shutdown: watch::Receiver<bool>,
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
