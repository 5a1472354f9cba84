//! The one audio codec a leg uses.
//!
//! The answer carries only the chosen codec and telephone-event: with two codecs in it the
//! Twilio Voice SDK re-sorts the answer's payload types by its own `codecPreferences`, and
//! Chrome could then send a codec other than the one we expect. So the codec is chosen from
//! the offer *before* the `Rtc` is built, by the offer's m-line order (the SDK writes its
//! preference order there).

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::{Codec, CodecConfig, FormatParams, PayloadParams};
use str0m::media::{Frequency, Mid, Pt};
use str0m::Rtc;

use crate::error::{SdpKind, WebRtcError};

/// Payload types we offer for telephone-event (the answerer's are taken from its offer).
const EVENT_PT_8K: u8 = 126;
const EVENT_PT_48K: u8 = 110;
/// RFC 4733 §3.2 DTMF events: keys 0-9 * # A-D and flash.
const EVENT_RANGE: &str = "0-16";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Pcmu,
    Pcma,
    /// Negotiated when [`LegConfig::opus`](crate::LegConfig::opus) is on; decoded to 16 kHz.
    Opus,
}

impl AudioCodec {
    /// RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            Self::Pcmu | Self::Pcma => 8000,
            Self::Opus => 48000,
        }
    }

    fn of(codec: Codec, opus: bool) -> Option<Self> {
        match codec {
            Codec::PCMU => Some(Self::Pcmu),
            Codec::PCMA => Some(Self::Pcma),
            Codec::Opus if opus => Some(Self::Opus),
            _ => None,
        }
    }

    fn str0m(self) -> Codec {
        match self {
            Self::Pcmu => Codec::PCMU,
            Self::Pcma => Codec::PCMA,
            Self::Opus => Codec::Opus,
        }
    }

    /// The media engine's codec, for the G.711 codecs it decodes.
    pub fn media_engine(self) -> Option<media_engine::Codec> {
        match self {
            Self::Pcmu => Some(media_engine::Codec::Pcmu),
            Self::Pcma => Some(media_engine::Codec::Pcma),
            Self::Opus => None,
        }
    }
}

/// What a negotiation settled on, with the payload types on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chosen {
    pub codec: AudioCodec,
    pub pt: u8,
    /// telephone-event at the codec's clock rate, when both sides have it. Chrome may send its
    /// keys on another negotiated telephone-event type (the 8 kHz one beside Opus, timed on the
    /// audio's clock): treat every event type as this one.
    pub telephone_event_pt: Option<u8>,
}

impl Chosen {
    /// A receiver configuration for the synthesized RTP of [`ReceivedMedia`](crate::ReceivedMedia).
    pub fn receiver_config(&self) -> media_engine::receiver::ReceiverConfig {
        use media_engine::receiver::ReceiverConfig;
        match self.codec.media_engine() {
            Some(codec) => ReceiverConfig::new(codec, self.pt, self.telephone_event_pt),
            None => ReceiverConfig::opus(self.pt, self.telephone_event_pt),
        }
    }

    /// The rate received audio is recorded at: Opus is decoded wideband.
    pub fn sample_rate(&self) -> u32 {
        match self.codec {
            AudioCodec::Opus => media_engine::opus::DECODE_RATE,
            AudioCodec::Pcmu | AudioCodec::Pcma => media_engine::SAMPLE_RATE,
        }
    }

    /// Reads what str0m negotiated for `mid`: the codec's payload type and the event payload
    /// type of the same clock, both among the remote's payload types.
    pub(crate) fn negotiated(rtc: &Rtc, mid: Mid, codec: AudioCodec) -> Option<Self> {
        let remote = rtc.media(mid)?.remote_pts();
        let agreed = |p: &&PayloadParams| remote.contains(&p.pt());
        let config = rtc.codec_config();
        let pt = config
            .params()
            .iter()
            .filter(agreed)
            .find(|p| p.spec().codec == codec.str0m())?
            .pt();
        let telephone_event_pt = config
            .params()
            .iter()
            .filter(agreed)
            .find(|p| p.spec().codec.is_tele() && p.spec().clock_rate.get() == codec.clock_rate())
            .map(|p| *p.pt());
        Some(Self {
            codec,
            pt: *pt,
            telephone_event_pt,
        })
    }
}

/// The first codec we take in the order of the offer's first audio m-line.
pub(crate) fn choose(offer: &SdpOffer, opus: bool) -> Result<AudioCodec, WebRtcError> {
    // str0m does not name its m-line type, so the fields are copied out here (once per call).
    let lines = offer
        .media_lines
        .iter()
        .filter(|m| !m.disabled)
        .map(|m| (m.pts.clone(), m.rtp_params()));
    pick(lines, opus, SdpKind::Offer)
}

/// For the offerer: the answerer's first codec (it can only pick among what we offered).
pub(crate) fn choose_answered(answer: &SdpAnswer, opus: bool) -> Result<AudioCodec, WebRtcError> {
    let lines = answer
        .media_lines
        .iter()
        .filter(|m| !m.disabled)
        .map(|m| (m.pts.clone(), m.rtp_params()));
    pick(lines, opus, SdpKind::Answer)
}

fn pick(
    mut lines: impl Iterator<Item = (Vec<Pt>, Vec<PayloadParams>)>,
    opus: bool,
    kind: SdpKind,
) -> Result<AudioCodec, WebRtcError> {
    let (pts, params) = lines
        .find(|(_, params)| params.iter().any(|p| p.spec().codec.is_audio()))
        .ok_or(WebRtcError::NoAudio(kind))?;
    pts.iter()
        .filter_map(|pt| params.iter().find(|p| p.pt() == *pt))
        .find_map(|p| AudioCodec::of(p.spec().codec, opus))
        .ok_or_else(|| WebRtcError::NoCommonCodec {
            kind,
            offered: pts.iter().map(|pt| **pt).collect(),
        })
}

/// Configures `codecs` for one leg: the chosen codec (or, offering, all we take) plus
/// telephone-event at each needed clock rate.
pub(crate) fn configure(codecs: &mut CodecConfig, audio: &[AudioCodec]) {
    for &codec in audio {
        match codec {
            AudioCodec::Pcmu => codecs.enable_pcmu(true, false),
            AudioCodec::Pcma => codecs.enable_pcma(true, false),
            AudioCodec::Opus => codecs.enable_opus(true, false),
        }
    }
    let events = [
        (EVENT_PT_8K, Frequency::EIGHT_KHZ),
        (EVENT_PT_48K, Frequency::FORTY_EIGHT_KHZ),
    ];
    for (pt, rate) in events {
        // 8 kHz always (Chrome pairs it with PCMU; some stacks send it with Opus too), 48 kHz
        // only beside Opus.
        if rate == Frequency::EIGHT_KHZ || audio.iter().any(|c| c.clock_rate() == rate.get()) {
            codecs.add_config(
                pt.into(),
                None,
                Codec::Tele,
                rate,
                None,
                FormatParams::parse_line(EVENT_RANGE),
            );
        }
    }
}
