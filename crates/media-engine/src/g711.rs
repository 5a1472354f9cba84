//! G.711 µ-law and A-law (ITU-T G.711) via audio-codec-algorithms.

use audio_codec_algorithms::{decode_alaw, decode_ulaw, encode_alaw, encode_ulaw};

use crate::Codec;

/// Decodes `payload.len()` bytes into `out[..payload.len()]`. `out` must be at least as long;
/// if it is shorter, only `out.len()` bytes are decoded.
pub fn decode(codec: Codec, payload: &[u8], out: &mut [i16]) {
    let pairs = out.iter_mut().zip(payload);
    match codec {
        Codec::Pcmu => pairs.for_each(|(o, &b)| *o = decode_ulaw(b)),
        Codec::Pcma => pairs.for_each(|(o, &b)| *o = decode_alaw(b)),
    }
}

/// Encodes `pcm.len()` samples into `out[..pcm.len()]`; if `out` is shorter, only `out.len()`
/// samples are encoded.
pub fn encode(codec: Codec, pcm: &[i16], out: &mut [u8]) {
    let pairs = out.iter_mut().zip(pcm);
    match codec {
        Codec::Pcmu => pairs.for_each(|(o, &s)| *o = encode_ulaw(s)),
        Codec::Pcma => pairs.for_each(|(o, &s)| *o = encode_alaw(s)),
    }
}

/// The byte that decodes to silence.
pub fn silence_byte(codec: Codec) -> u8 {
    match codec {
        Codec::Pcmu => 0xFF,
        Codec::Pcma => 0xD5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_reference_values_decode() {
        // G.711 µ-law: 0xFF and 0x7F are ±0, 0x80 is +32124, 0x00 is -32124.
        let mut out = [1i16; 4];
        decode(Codec::Pcmu, &[0xFF, 0x7F, 0x80, 0x00], &mut out);
        assert_eq!(out, [0, 0, 32124, -32124]);
    }

    #[test]
    fn alaw_reference_values_decode() {
        // G.711 A-law: 0xD5 is +8, 0x55 is -8, 0xAA is +32256, 0x2A is -32256.
        let mut out = [0i16; 4];
        decode(Codec::Pcma, &[0xD5, 0x55, 0xAA, 0x2A], &mut out);
        assert_eq!(out, [8, -8, 32256, -32256]);
    }

    #[test]
    fn silence_byte_decodes_to_near_zero() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut out = [100i16; 1];
            decode(codec, &[silence_byte(codec)], &mut out);
            assert!(out[0].abs() <= 8, "{codec:?} -> {}", out[0]);
        }
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let codes: Vec<u8> = (0..=255).collect();
            let mut pcm = [0i16; 256];
            decode(codec, &codes, &mut pcm);
            let mut back = [0u8; 256];
            encode(codec, &pcm, &mut back);
            for (i, (&c, &b)) in codes.iter().zip(back.iter()).enumerate() {
                // µ-law has two zeros (0x7F, 0xFF); both encode to 0xFF.
                let expect = if codec == Codec::Pcmu && c == 0x7F {
                    0xFF
                } else {
                    c
                };
                assert_eq!(b, expect, "{codec:?} code {i}");
            }
        }
    }

    #[test]
    fn mismatched_lengths_use_the_shorter_and_do_not_panic() {
        let mut short = [7i16; 2];
        decode(Codec::Pcmu, &[0x80, 0x80, 0x80, 0x80], &mut short);
        assert_eq!(short, [32124, 32124]);
        let mut long = [7i16; 4];
        decode(Codec::Pcmu, &[0x80], &mut long);
        assert_eq!(long, [32124, 7, 7, 7]);
        let mut bytes = [0u8; 1];
        encode(Codec::Pcma, &[0, 0, 0], &mut bytes);
        assert_eq!(bytes, [0xD5]);
        let mut bytes = [0u8; 3];
        encode(Codec::Pcmu, &[0], &mut bytes);
        assert_eq!(bytes, [0xFF, 0, 0]);
    }
}
