//! The WAV to play (8 kHz mono: 16-bit PCM, µ-law or A-law) and the one `--save-received`
//! writes.

use std::path::Path;

use media_engine::SAMPLE_RATE;
use record_engine::wav::{ReadError, SampleFormat, Wav};

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

/// Any WAV the workspace reader decodes, accepted when it is what RTP carries without
/// resampling: 8 kHz mono 16-bit PCM, µ-law or A-law.
fn parse_wav(path: &Path, bytes: &[u8]) -> Result<Vec<i16>, CallerError> {
    let unsupported = |(tag, bits): (u16, u16), rate: u32, channels: u16| {
        let name = match tag {
            1 => "PCM".to_string(),
            3 => "IEEE float".to_string(),
            6 => "A-law".to_string(),
            7 => "µ-law".to_string(),
            t => format!("format tag {t:#06x}"),
        };
        CallerError::UnsupportedWav {
            path: path.to_path_buf(),
            found: format!("{name} {bits}-bit, {rate} Hz, {channels} channel(s)"),
        }
    };
    let wav = match Wav::parse(bytes) {
        Ok(wav) => wav,
        Err(ReadError::Unsupported {
            tag,
            bits,
            channels,
            sample_rate,
        }) => return Err(unsupported((tag, bits), sample_rate, channels)),
        Err(source) => {
            return Err(CallerError::BadWav {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let h = wav.header;
    let playable = matches!(
        h.format,
        SampleFormat::S16 | SampleFormat::Ulaw | SampleFormat::Alaw
    );
    if !playable || h.channels != 1 || h.sample_rate != SAMPLE_RATE {
        return Err(unsupported(
            h.format.tag_and_bits(),
            h.sample_rate,
            h.channels,
        ));
    }
    Ok(wav.samples())
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
