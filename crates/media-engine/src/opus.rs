//! Opus (RFC 6716, RTP RFC 7587) through libopus (audiopus): decoded to 16 kHz mono for
//! wideband recording; encoded from the 8 kHz prompt audio. The RTP clock is always 48 kHz.

use audiopus::coder::{Decoder, Encoder};
use audiopus::packet::Packet;
use audiopus::{Application, Channels, MutSignals, SampleRate};

/// Decoded sample rate: wideband, what the recordings and the transcriber get.
pub const DECODE_RATE: u32 = 16_000;
/// RTP timestamp units per sample of the 8 kHz call timeline.
pub const TS_PER_TIMELINE_SAMPLE: u32 = 6;
/// Longest Opus packet: 120 ms at 16 kHz.
pub const MAX_DECODED: usize = 1920;
/// Largest encoded 20 ms packet we produce (libopus recommends 4000 as a safe bound).
pub const MAX_PACKET: usize = 1500;

#[derive(Debug, thiserror::Error)]
pub enum OpusError {
    #[error("opus decoder: {0}")]
    Decoder(audiopus::Error),
    #[error("opus encoder: {0}")]
    Encoder(audiopus::Error),
}

/// One stream's decoder (Opus keeps state between packets).
pub struct OpusDecoder {
    decoder: Decoder,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpusDecoder")
    }
}

impl OpusDecoder {
    pub fn new() -> Result<Self, OpusError> {
        let decoder =
            Decoder::new(SampleRate::Hz16000, Channels::Mono).map_err(OpusError::Decoder)?;
        Ok(Self { decoder })
    }

    /// Decodes one packet into `out` (16 kHz mono); returns the samples written. A malformed
    /// packet is an error, and nothing is written.
    pub fn decode(
        &mut self,
        packet: &[u8],
        out: &mut [i16; MAX_DECODED],
    ) -> Result<usize, OpusError> {
        let packet = Packet::try_from(packet).map_err(OpusError::Decoder)?;
        let signals = MutSignals::try_from(&mut out[..]).map_err(OpusError::Decoder)?;
        self.decoder
            .decode(Some(packet), signals, false)
            .map_err(OpusError::Decoder)
    }
}

/// Encodes 20 ms frames of 8 kHz audio for an Opus leg (prompts, the beep), or of 16 kHz
/// audio ([`OpusEncoder::wideband`]).
pub struct OpusEncoder {
    encoder: Encoder,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpusEncoder")
    }
}

impl OpusEncoder {
    pub fn new() -> Result<Self, OpusError> {
        let encoder = Encoder::new(SampleRate::Hz8000, Channels::Mono, Application::Voip)
            .map_err(OpusError::Encoder)?;
        Ok(Self { encoder })
    }

    /// An encoder of 16 kHz input (320-sample frames: [`encode_wide`](Self::encode_wide)).
    pub fn wideband() -> Result<Self, OpusError> {
        let encoder = Encoder::new(SampleRate::Hz16000, Channels::Mono, Application::Voip)
            .map_err(OpusError::Encoder)?;
        Ok(Self { encoder })
    }

    /// One 20 ms frame of 16 kHz audio into `out` (a [`wideband`](Self::wideband) encoder).
    pub fn encode_wide(
        &mut self,
        pcm: &[i16; crate::WIDE_FRAME_SAMPLES],
        out: &mut [u8; MAX_PACKET],
    ) -> Result<usize, OpusError> {
        self.encoder
            .encode(pcm, &mut out[..])
            .map_err(OpusError::Encoder)
    }

    /// One 20 ms frame (160 samples at 8 kHz) into `out`; returns the packet's length.
    pub fn encode(
        &mut self,
        pcm: &[i16; crate::FRAME_SAMPLES],
        out: &mut [u8; MAX_PACKET],
    ) -> Result<usize, OpusError> {
        self.encoder
            .encode(pcm, &mut out[..])
            .map_err(OpusError::Encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 440 Hz tone encoded at 8 kHz comes back at 16 kHz with the same pitch and level.
    #[test]
    fn tone_survives_an_encode_decode_round_trip() {
        let mut enc = OpusEncoder::new().unwrap();
        let mut dec = OpusDecoder::new().unwrap();
        let mut decoded = Vec::new();
        for f in 0..50u32 {
            let mut pcm = [0i16; crate::FRAME_SAMPLES];
            for (i, s) in pcm.iter_mut().enumerate() {
                let t = (f * 160 + i as u32) as f64 / 8000.0;
                *s = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
            }
            let mut packet = [0u8; MAX_PACKET];
            let n = enc.encode(&pcm, &mut packet).unwrap();
            assert!(n > 2 && n < 400, "packet of {n} bytes");
            let mut out = [0i16; MAX_DECODED];
            let got = dec.decode(&packet[..n], &mut out).unwrap();
            assert_eq!(got, 320, "20 ms at 16 kHz");
            decoded.extend_from_slice(&out[..got]);
        }
        // Skip the codec's start-up; then count zero crossings over 0.5 s: 440 Hz → 440.
        let tail = &decoded[8000..16000];
        let crossings = tail.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!((430..=450).contains(&crossings), "{crossings} crossings");
        let rms =
            (tail.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / tail.len() as f64).sqrt();
        assert!((4000.0..7000.0).contains(&rms), "rms {rms}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut dec = OpusDecoder::new().unwrap();
        let mut out = [0i16; MAX_DECODED];
        assert!(dec.decode(&[], &mut out).is_err());
        // TOC code 3 with a frame count of 0 is invalid.
        assert!(dec.decode(&[0x03, 0x00], &mut out).is_err());
    }
}
