//! The WAV to play (8 kHz mono: 16-bit PCM, µ-law or A-law) and the one `--save-received`
//! writes.

use std::path::Path;

use media_engine::{g711, Codec, SAMPLE_RATE};

use crate::CallerError;

const MAX_WAV_BYTES: u64 = 256 << 20;

/// Reads an 8 kHz mono WAV as linear PCM.
pub(crate) async fn load_wav(path: &Path) -> Result<Vec<i16>, CallerError> {
    let read_err = |source| CallerError::ReadWav {
        path: path.to_path_buf(),
        source,
    };
    let len = tokio::fs::metadata(path).await.map_err(read_err)?.len();
    if len > MAX_WAV_BYTES {
        return Err(CallerError::WavTooLarge {
            path: path.to_path_buf(),
            len,
            max: MAX_WAV_BYTES,
        });
    }
    let bytes = tokio::fs::read(path).await.map_err(read_err)?;
    parse_wav(path, &bytes)
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// RIFF/WAVE by hand: hound cannot read G.711 (format tags 6 and 7).
fn parse_wav(path: &Path, bytes: &[u8]) -> Result<Vec<i16>, CallerError> {
    let bad = |reason| CallerError::BadWav {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(bad("no RIFF/WAVE header"));
    }
    let (mut fmt, mut data) = (None, None);
    let mut rest = bytes.get(12..).unwrap_or_default();
    while let (Some(id), Some(size)) = (rest.get(0..4), le32(rest, 4)) {
        // Streaming writers leave sizes at 0xFFFFFFFF: clamp to what is there.
        let end = 8usize.saturating_add(size as usize).min(rest.len());
        let body = rest.get(8..end).unwrap_or_default();
        match id {
            b"fmt " => fmt = Some(body),
            b"data" => data = Some(body),
            _ => {}
        }
        let next = end.saturating_add(size as usize & 1);
        rest = rest.get(next..).unwrap_or_default();
    }
    let fmt = fmt.ok_or_else(|| bad("no fmt chunk"))?;
    let data = data.ok_or_else(|| bad("no data chunk"))?;
    let (Some(mut tag), Some(channels), Some(rate), Some(bits)) =
        (le16(fmt, 0), le16(fmt, 2), le32(fmt, 4), le16(fmt, 14))
    else {
        return Err(bad("fmt chunk shorter than 16 bytes"));
    };
    if tag == 0xFFFE {
        // WAVE_FORMAT_EXTENSIBLE: the real tag opens the SubFormat GUID.
        tag = le16(fmt, 24).ok_or_else(|| bad("extensible fmt chunk shorter than 40 bytes"))?;
    }
    let codec = match (tag, bits) {
        (1, 16) => None,
        (7, 8) => Some(Codec::Pcmu),
        (6, 8) => Some(Codec::Pcma),
        _ => None,
    };
    let supported = (tag == 1 && bits == 16) || codec.is_some();
    if !supported || channels != 1 || rate != SAMPLE_RATE {
        let name = match tag {
            1 => "PCM".to_string(),
            3 => "IEEE float".to_string(),
            6 => "A-law".to_string(),
            7 => "µ-law".to_string(),
            t => format!("format tag {t:#06x}"),
        };
        let found = format!("{name} {bits}-bit, {rate} Hz, {channels} channel(s)");
        return Err(CallerError::UnsupportedWav {
            path: path.to_path_buf(),
            found,
        });
    }
    Ok(match codec {
        None => data
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect(),
        Some(codec) => {
            let mut pcm = vec![0i16; data.len()];
            g711::decode(codec, data, &mut pcm);
            pcm
        }
    })
}

pub(crate) fn write_wav(path: &Path, samples: &[i16]) -> Result<(), hound::Error> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    for &s in samples {
        w.write_sample(s)?;
    }
    w.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_bytes(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut fmt = Vec::new();
        fmt.extend_from_slice(&tag.to_le_bytes());
        fmt.extend_from_slice(&channels.to_le_bytes());
        fmt.extend_from_slice(&rate.to_le_bytes());
        fmt.extend_from_slice(&(rate * u32::from(bits / 8) * u32::from(channels)).to_le_bytes());
        fmt.extend_from_slice(&(bits / 8 * channels).to_le_bytes());
        fmt.extend_from_slice(&bits.to_le_bytes());
        let mut out = b"RIFF\0\0\0\0WAVE".to_vec();
        // An odd-sized unknown chunk first: its pad byte must be skipped.
        out.extend_from_slice(b"LIST\x03\0\0\0abc\0");
        out.extend_from_slice(b"fmt ");
        out.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
        out.extend_from_slice(&fmt);
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn g711_wavs_decode_to_linear_pcm() {
        let p = Path::new("x.wav");
        let ulaw = parse_wav(p, &wav_bytes(7, 1, 8000, 8, &[0xFF, 0x80, 0x00])).unwrap();
        assert_eq!(ulaw, vec![0, 32124, -32124]);
        let alaw = parse_wav(p, &wav_bytes(6, 1, 8000, 8, &[0xD5, 0xAA])).unwrap();
        assert_eq!(alaw, vec![8, 32256]);
        let pcm = parse_wav(
            p,
            &wav_bytes(1, 1, 8000, 16, &[0x01, 0x00, 0xFF, 0xFF, 0x7F]),
        )
        .unwrap();
        assert_eq!(pcm, vec![1, -1], "a trailing odd byte is not a sample");
    }

    #[test]
    fn unsupported_wav_formats_are_named_in_the_error() {
        let p = Path::new("in.wav");
        for (bytes, found) in [
            (
                wav_bytes(1, 2, 8000, 16, &[0; 8]),
                "PCM 16-bit, 8000 Hz, 2 channel(s)",
            ),
            (
                wav_bytes(1, 1, 44100, 16, &[0; 8]),
                "PCM 16-bit, 44100 Hz, 1 channel(s)",
            ),
            (
                wav_bytes(1, 1, 8000, 8, &[0; 8]),
                "PCM 8-bit, 8000 Hz, 1 channel(s)",
            ),
            (
                wav_bytes(3, 1, 8000, 32, &[0; 8]),
                "IEEE float 32-bit, 8000 Hz, 1 channel(s)",
            ),
            (
                wav_bytes(0x55, 1, 8000, 0, &[0; 8]),
                "format tag 0x0055 0-bit, 8000 Hz, 1 channel(s)",
            ),
        ] {
            match parse_wav(p, &bytes) {
                Err(e @ CallerError::UnsupportedWav { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.starts_with(&format!("in.wav is {found};")), "{msg}");
                }
                other => panic!("{found}: {other:?}"),
            }
        }
    }

    #[test]
    fn broken_wavs_are_errors_not_panics() {
        let p = Path::new("b.wav");
        let good = wav_bytes(1, 1, 8000, 16, &[0; 4]);
        for cut in [0, 4, 11, 20, 30, 40] {
            assert!(
                matches!(parse_wav(p, &good[..cut]), Err(CallerError::BadWav { .. })),
                "cut at {cut}"
            );
        }
        assert!(parse_wav(p, b"RIFX\0\0\0\0WAVE").is_err());
    }
}
