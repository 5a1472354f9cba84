//! G.711 µ-law and A-law (ITU-T G.711) via audio-codec-algorithms.

use crate::Codec;

/// Decodes `payload.len()` bytes into `out[..payload.len()]`. `out` must be at least as long.
pub fn decode(codec: Codec, payload: &[u8], out: &mut [i16]) {
    todo!()
}

/// Encodes `pcm.len()` samples into `out[..pcm.len()]`.
pub fn encode(codec: Codec, pcm: &[i16], out: &mut [u8]) {
    todo!()
}

/// The byte that decodes to silence.
pub fn silence_byte(codec: Codec) -> u8 {
    match codec {
        Codec::Pcmu => 0xFF,
        Codec::Pcma => 0xD5,
    }
}
