//! Sans-IO RTP media for Hark.
//!
//! # Layout
//! - [`rtp`]: RTP header view over a datagram (rtp-rs), no copies.
//! - [`g711`]: PCMU/PCMA decode and encode.
//! - [`opus`]: Opus decode (to 16 kHz, wideband) and encode (libopus).
//! - [`rfc4733`]: telephone-event payloads and de-duplication of events.
//! - [`receiver`]: one call's inbound stream: symmetric-RTP latch, reorder window, gap fill,
//!   decode, DTMF; emits [`MediaItem`]s on the call's timeline.
//! - [`ring`]: the lock-free SPSC ring that carries [`MediaItem`]s to the recorder.
//! - [`sender`]: packetizer for outbound 20 ms G.711 with timestamps and marker bit.
//! - [`playout`]: what to send each 20 ms tick: prompt audio, or keys as RFC 4733 events or
//!   in-band tones.
//! - [`tone`]: generated audio (the beep).
//! - [`pcap`]: reads RTP out of capture files (tests, benches, replay tools).
//! - [`srtp`]: SRTP/SRTCP (RFC 3711, AES-CM + HMAC-SHA1-80/32) for SDES-keyed trunks (RFC 4568).
//!
//! Per packet: no allocation, no locks, no clock reads (time is an argument).

pub mod g711;
pub mod opus;
pub mod pcap;
pub mod playout;
pub mod receiver;
pub mod rfc4733;
pub mod ring;
pub mod rtp;
pub mod sender;
pub mod srtp;
pub mod tone;

/// Samples in one 20 ms frame at 8 kHz: the call timeline's unit is an 8 kHz sample.
pub const FRAME_SAMPLES: usize = 160;
/// Samples in one 20 ms wideband (16 kHz) frame.
pub const WIDE_FRAME_SAMPLES: usize = 2 * FRAME_SAMPLES;
/// G.711 clock rate.
pub const SAMPLE_RATE: u32 = 8000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

/// Up to 20 ms of decoded audio placed on the call's timeline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AudioFrame {
    /// Timeline index of `samples[0]`: samples since the media session's origin.
    pub position: u64,
    /// Samples of the timeline the frame covers: 1..=160 valid samples in `samples`; a filled
    /// frame may span a longer gap, all of it silence.
    pub len: u16,
    /// True when the frame was synthesised to fill a gap (loss, silence suppression, media
    /// that started late): silence.
    pub filled: bool,
    /// Wideband audio (Opus): `samples` holds 16 kHz samples, two per timeline sample.
    pub wide: bool,
    pub samples: [i16; WIDE_FRAME_SAMPLES],
}

impl AudioFrame {
    /// A narrowband frame of `len` timeline samples, all zero (fill `samples[..len]`).
    pub fn narrow(position: u64, len: u16, filled: bool) -> Self {
        Self {
            position,
            len,
            filled,
            wide: false,
            samples: [0; WIDE_FRAME_SAMPLES],
        }
    }

    /// The decoded samples (at 16 kHz for a wide frame); of a filled frame longer than 20 ms,
    /// only its first 20 ms (zeros): use `len` for the span.
    pub fn pcm(&self) -> &[i16] {
        let per_sample = if self.wide { 2 } else { 1 };
        let n = usize::from(self.len).min(FRAME_SAMPLES) * per_sample;
        &self.samples[..n]
    }

    /// One past the last timeline index the frame covers.
    pub fn end(&self) -> u64 {
        self.position + u64::from(self.len)
    }
}

impl std::fmt::Debug for AudioFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioFrame")
            .field("position", &self.position)
            .field("len", &self.len)
            .field("filled", &self.filled)
            .field("wide", &self.wide)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSource {
    Rfc4733,
    SipInfo,
}

/// One key press, reported once, when it begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// `0-9`, `*`, `#`, `A-D`.
    pub digit: char,
    /// Timeline index where the tone began.
    pub position: u64,
    pub source: DtmfSource,
}

/// What travels through the ring, in timeline order.
// Inline on purpose: boxing the frame would allocate per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaItem {
    Audio(AudioFrame),
    Dtmf(DtmfEvent),
}
