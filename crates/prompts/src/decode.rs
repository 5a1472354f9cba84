//! Audio bytes → 8 kHz mono i16: WAV (PCM 8/16/24/32-bit, float, µ-law, A-law; any rate and
//! channel count), Sun AU, MP3 and raw µ-law. Every input is untrusted: sizes come from the
//! bytes actually present, never from header fields alone.

use std::io::Cursor;

use media_engine::{g711, Codec};
use record_engine::wav::Wav;

use crate::resample::resample_to_8k;

/// What the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Wav,
    /// Sun/NeXT `.au` (`.snd` magic), often served as `audio/basic`.
    Au,
    Mp3,
    /// Headerless 8 kHz mono µ-law (`audio/basic`, `audio/x-mulaw`, `.ulaw`).
    RawUlaw,
}

/// Picks the container: unmistakable magic first (servers mislabel files), then the
/// Content-Type, then the URL's extension, then an MPEG frame sync. Raw µ-law silence is 0xFF,
/// which looks like a frame sync, so the sync is only trusted when nothing else decides.
pub fn detect(bytes: &[u8], content_type: Option<&str>, path: &str) -> Option<Container> {
    if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
        return Some(Container::Wav);
    }
    if bytes.starts_with(b".snd") {
        return Some(Container::Au);
    }
    if bytes.starts_with(b"ID3") {
        return Some(Container::Mp3);
    }
    if let Some(kind) = content_type.and_then(by_mime) {
        return Some(kind);
    }
    if let Some(kind) = by_extension(path) {
        return Some(kind);
    }
    match bytes {
        [0xFF, b, ..] if b & 0xE0 == 0xE0 => Some(Container::Mp3),
        _ => None,
    }
}

fn by_mime(content_type: &str) -> Option<Container> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => Some(Container::Wav),
        "audio/mpeg" | "audio/mp3" | "audio/mpeg3" | "audio/x-mpeg-3" | "audio/x-mp3" => {
            Some(Container::Mp3)
        }
        "audio/basic" | "audio/x-mulaw" | "audio/mulaw" | "audio/ulaw" | "audio/x-ulaw"
        | "audio/pcmu" => Some(Container::RawUlaw),
        "audio/au" | "audio/x-au" => Some(Container::Au),
        _ => None,
    }
}

fn by_extension(path: &str) -> Option<Container> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let name = path.rsplit('/').next().unwrap_or("");
    let (_, ext) = name.rsplit_once('.')?;
    match ext.to_ascii_lowercase().as_str() {
        "wav" | "wave" => Some(Container::Wav),
        "mp3" => Some(Container::Mp3),
        "ulaw" | "mulaw" | "ul" | "pcmu" => Some(Container::RawUlaw),
        "au" | "snd" => Some(Container::Au),
        _ => None,
    }
}

/// Decoded audio before rate conversion.
struct Pcm {
    rate: u32,
    samples: Vec<i16>,
    truncated: bool,
}

/// What was decoded.
pub struct Decoded {
    /// 8 kHz mono.
    pub samples: Vec<i16>,
    /// The input was longer than `max_seconds` and was cut.
    pub truncated: bool,
}

/// Decodes to 8 kHz mono, keeping at most `max_seconds` of audio. The error says what was
/// found.
pub fn decode(bytes: &[u8], kind: Container, max_seconds: u32) -> Result<Decoded, String> {
    let pcm = match kind {
        Container::Wav => decode_wav(bytes, max_seconds)?,
        Container::Au => decode_au(bytes, max_seconds)?,
        Container::Mp3 => decode_mp3(bytes, max_seconds)?,
        Container::RawUlaw => {
            let frames = max_frames(8000, max_seconds);
            let take = bytes.len().min(frames);
            let mut samples = vec![0i16; take];
            g711::decode(Codec::Pcmu, &bytes[..take], &mut samples);
            Pcm {
                rate: 8000,
                samples,
                truncated: take < bytes.len(),
            }
        }
    };
    Ok(Decoded {
        samples: resample_to_8k(&pcm.samples, pcm.rate),
        truncated: pcm.truncated,
    })
}

fn max_frames(rate: u32, max_seconds: u32) -> usize {
    usize::try_from(u64::from(rate) * u64::from(max_seconds)).unwrap_or(usize::MAX)
}

/// How an AU file stores a sample (big-endian, unlike WAV).
#[derive(Debug, Clone, Copy)]
enum AuFormat {
    S8,
    S16Be,
    F32Be,
    Ulaw,
    Alaw,
}

impl AuFormat {
    fn bytes(self) -> usize {
        match self {
            AuFormat::S8 | AuFormat::Ulaw | AuFormat::Alaw => 1,
            AuFormat::S16Be => 2,
            AuFormat::F32Be => 4,
        }
    }

    /// One sample; `b` has exactly `self.bytes()` bytes.
    fn read(self, b: &[u8]) -> i32 {
        let at = |i: usize| b.get(i).copied().unwrap_or(0);
        match self {
            AuFormat::S8 => i32::from(at(0) as i8) << 8,
            AuFormat::S16Be => i32::from(i16::from_be_bytes([at(0), at(1)])),
            AuFormat::F32Be => {
                let f = f64::from(f32::from_be_bytes([at(0), at(1), at(2), at(3)]));
                (f.clamp(-1.0, 1.0) * 32767.0).round() as i32
            }
            AuFormat::Ulaw => i32::from(media_engine_sample(Codec::Pcmu, at(0))),
            AuFormat::Alaw => i32::from(media_engine_sample(Codec::Pcma, at(0))),
        }
    }
}

fn media_engine_sample(codec: Codec, byte: u8) -> i16 {
    let mut out = [0i16; 1];
    g711::decode(codec, &[byte], &mut out);
    out[0]
}

/// Interleaved frames → mono by averaging the channels; a trailing partial frame is dropped.
fn mix_to_mono(data: &[u8], channels: usize, format: AuFormat, rate: u32, max_seconds: u32) -> Pcm {
    let width = format.bytes();
    let frame = channels.max(1) * width;
    let limit = max_frames(rate, max_seconds);
    let total = data.len() / frame;
    let samples = data
        .chunks_exact(frame)
        .take(limit)
        .map(|f| {
            let sum: i32 = f.chunks_exact(width).map(|s| format.read(s)).sum();
            (sum / channels.max(1) as i32) as i16
        })
        .collect();
    Pcm {
        rate,
        samples,
        truncated: total > limit,
    }
}

fn u32_be(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn check_layout(channels: u32, rate: u32) -> Result<(), String> {
    if channels == 0 || channels > 32 {
        return Err(format!("{channels} channels"));
    }
    if !(1000..=384_000).contains(&rate) {
        return Err(format!("sample rate {rate} Hz"));
    }
    Ok(())
}

/// Through the workspace's WAV reader (`record_engine::wav`), which says what it found.
fn decode_wav(bytes: &[u8], max_seconds: u32) -> Result<Pcm, String> {
    let wav = Wav::parse(bytes).map_err(|e| e.to_string())?;
    let rate = wav.header.sample_rate;
    check_layout(u32::from(wav.header.channels), rate)?;
    let limit = max_frames(rate, max_seconds);
    Ok(Pcm {
        rate,
        samples: wav.mono().take(limit).collect(),
        truncated: wav.frames() > limit,
    })
}

fn decode_au(bytes: &[u8], max_seconds: u32) -> Result<Pcm, String> {
    let (Some(offset), Some(size), Some(encoding), Some(rate), Some(channels)) = (
        u32_be(bytes, 4),
        u32_be(bytes, 8),
        u32_be(bytes, 12),
        u32_be(bytes, 16),
        u32_be(bytes, 20),
    ) else {
        return Err("AU header shorter than 24 bytes".into());
    };
    check_layout(channels, rate)?;
    let start = (offset as usize).min(bytes.len());
    let end = if size == u32::MAX {
        bytes.len()
    } else {
        start.saturating_add(size as usize).min(bytes.len())
    };
    let format = match encoding {
        1 => AuFormat::Ulaw,
        2 => AuFormat::S8,
        3 => AuFormat::S16Be,
        6 => AuFormat::F32Be,
        27 => AuFormat::Alaw,
        _ => return Err(format!("AU encoding {encoding}")),
    };
    Ok(mix_to_mono(
        bytes.get(start..end).unwrap_or(&[]),
        channels as usize,
        format,
        rate,
        max_seconds,
    ))
}

fn decode_mp3(bytes: &[u8], max_seconds: u32) -> Result<Pcm, String> {
    use symphonia::core::codecs::audio::AudioDecoderOptions;
    use symphonia::core::errors::Error;
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::formats::{FormatOptions, TrackType};
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;

    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let mut reader = symphonia::default::get_probe()
        .probe(
            &hint,
            source,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| format!("not an MP3 stream ({e})"))?;
    let track = reader
        .default_track(TrackType::Audio)
        .ok_or("MP3 without an audio track")?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or("MP3 track without audio parameters")?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(
            params,
            // Drop the encoder delay and padding the LAME tag declares.
            &AudioDecoderOptions::default().gapless(true),
        )
        .map_err(|e| format!("MP3 decoder: {e}"))?;

    let mut rate: Option<u32> = None;
    let mut mono: Vec<i16> = Vec::new();
    let mut interleaved: Vec<i16> = Vec::new();
    let mut limit = usize::MAX;
    let mut truncated = false;
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // A damaged tail still leaves the audio before it playable.
            Err(_) if !mono.is_empty() => break,
            Err(e) => return Err(format!("MP3 stream: {e}")),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buffer = match decoder.decode(&packet) {
            Ok(buffer) => buffer,
            Err(Error::DecodeError(_)) => continue, // one corrupt frame
            Err(_) if !mono.is_empty() => break,
            Err(e) => return Err(format!("MP3 frame: {e}")),
        };
        let spec = buffer.spec();
        let channels = spec.channels().count().max(1);
        match rate {
            None => {
                check_layout(channels as u32, spec.rate())?;
                rate = Some(spec.rate());
                limit = max_frames(spec.rate(), max_seconds);
            }
            Some(r) if r != spec.rate() => {
                return Err(format!("MP3 changes rate from {r} to {} Hz", spec.rate()))
            }
            Some(_) => {}
        }
        buffer.copy_to_vec_interleaved(&mut interleaved);
        mono.extend(interleaved.chunks_exact(channels).map(|f| {
            let sum: i32 = f.iter().map(|&s| i32::from(s)).sum();
            (sum / channels as i32) as i16
        }));
        if mono.len() >= limit {
            truncated = true;
            mono.truncate(limit);
            break;
        }
    }
    let rate = rate.ok_or("MP3 without a decodable frame")?;
    Ok(Pcm {
        rate,
        samples: mono,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resample::tests::{rms, sine, tone_frequency};
    use base64::Engine;

    /// 5512 samples (0.25 s) of a 1 kHz half-scale sine, 22050 Hz mono, 64 kb/s, with an ID3v2
    /// tag and a LAME tag (delay 1105, padding 295), from lame 3.100.
    const MP3_1KHZ: &[&str] = &[
        "SUQzAwAAAAAAXFRTU0UAAAAvAAAATEFNRSA2NGJpdHMgdmVyc2lvbiAzLjEwMCAoaHR0cDovL2xhbWUuc2YubmV0KVRJVDIA",
        "AAALAAAB//5oAGEAcgBrAFRMRU4AAAAEAAAAMjQ5//OAxAAAAAAAAAAAAEluZm8AAAAPAAAADAAACpsAFRUVFRUVFRUqKioq",
        "KioqKkBAQEBAQEBAVVVVVVVVVVVVampqampqamqAgICAgICAgJWVlZWVlZWVlaqqqqqqqqqqwMDAwMDAwMDV1dXV1dXV1dXq",
        "6urq6urq6v//////////AAAAOUxBTUUzLjEwMAFuAAAAAC5JAAAUQCQDOCIAAEAAAAqbZygaWQAAAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAP/zgMQAIeDShAVZyAABl3rvXeu9d672dtfd9yGcLsWEVIsRiDXHca2pmXfLxp1xpAQY",
        "yhxSH/2fOZ0umiOW/WOzty4flkohh/H8jEspMP3Xp6e3m94gBCDjsQA/rBwMYIA++JwcBCUBAHw+sHwcBAEAQBAHwfB8HwcB",
        "AEAQBAHwficCAhkAffo9/+D4Ph+j/9wHB8H1MTNDOTyrZ/zTWoxpFrVv805bN6raaU/4GEcQwGJclgG2MJwJggAwJjRAwYcv",
        "AYAYBhTBCBt2dIBrFRP/84LEOzVzbmgBm7AAAYtw9AYfRBAb1hLAYbgFg4CQGIo/IGDUFAWigYEgbgYNgYgYMAbgAgWMnRX4",
        "GBkCgGBcDQCADgYCAEgYCAGspX8LEgMAIAAMAIAg2UG4QbVD9v/8LhguGFIhq0MijHCCwgsOT//+KBFAkOFzC5iGjmjmlIgR",
        "FjEiv///+TpkXi8iXTVSTrRakv/////1aKkjJFExSSMkUS6kkXnQKNO5///P7+///glAK12khsGACJgNAGmYG4A0mAAgQRg9",
        "YfYYpCKeGf/zgsQpHbiiKNPf8AACLaYdqicAmL64CaMpEhijjdGO2JwYP4HRgRgNmCsCCEAOiMBAeAFa0wbtde81vf/koXHs",
        "OPc+6GC10lZ+vycX/VbwP/Y1PU2v+9Df0dAf7uN3UMU7TYMuBNkYOyzMCSAWDBAQJcwhQEUMdvF+T6+RDgxGgaVMB5CkjAYg",
        "P8wC0B8MAUAQzABwCIEAB6CJmcDvLIjv///rryHq9RH////s9Pr/9/7fYlFMQU1FMy4xMDBVVVVVVVVVVVVVVVVVVVVVVVVV",
        "//OCxHYWeJ4oCAa+aFVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVqBZWApprNbCNLTEX+MADGoTXQjq8TAigLowO0FPMHMDED",
        "F14JM61cvAMRcD0TF8gYAwPUCBMBkAMjAKwBEwA4AABwAOgooO1uHKfb60/YKC8QSKrmac+rjOqruCK7a69JIy95uKf9n/p/",
        "1e25PTqVTEFNRTMuMTAwVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVX/84LEqxvQ",
        "nilUFr6EVVVVVVVVVf///9b5l/65YcdJgMDgKNCFDMUbjNa8wFoEeMCPCETA2hSYwQPuvMiaTrDNYPWO+gV8yVQnDEYBVMJk",
        "DAwWAFzAzACFgMRIAdVdn0pfFmuyG1uxBtNKa102NjnlFN7mOnNTSJC6h7mjaMX2NVFF3tahjm47IsfsbQit9Sa2xdDlW0JM",
        "QU1FMy4xMDCqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqv/zgsS9IGieHADf/MCq",
        "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqADN7MvZ7bfWTQs0PiCwoAAIGdAHLJgFYB0YC8BFmB7g2hiEy7KcfENn",
        "GM2lsagA5ZiGhaGD0CyYH4FhgPAKmAWAIXZdaIv9LcmfT7n7ffODiVSa33jwkekmu+n/Tr26qf/92xCf3bLtdUxBTUUzLjEw",
        "MFVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV//OCxKUaWKIxdJ/8wFVVVVVVVVVV",
        "VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVUFv/bmYtAcWJEF3ADLANmTA6yowI8BNMD6AfjCDwNMx2oGwPsaDPzRTauM",
        "UQp0wfxAjA6B/MB0EQwCgJQKAcX1Z5CHmkPZrSlt23pmlWVUxfUvWdihYRnf0TP//R///0/R/3fUTEFNRTMuMTAwqqqqqqqq",
        "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqr/84LEnxj4oigQp/zAqqqqqqqqqqqqqqqqqqqq",
        "qqqqqqqqqm/N6wmuQu+nwIQcxwwNHXTeJgwMMD1MFCBsDCcw98x/ChmPswOxTFzRW4x1EIpMEqAxDAfQFcwDYAmMAXADzABg",
        "AIs2gEXY4848Zv5Kw4npQ/WjZrQz+prErbkEnVdt3t0on6VfKFGdSLSL5zpcr9CvylVMQU1FMy4xMDBVVVVVVVVVVVVVVVVV",
        "VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVf/zgsSuHIieIAAu/oRVVVVVYAJ/8/X//ef/5PQrhNMwBcA5",
        "MBgANDAEgAowCsCxMD1AyTAhwFcwSAPqMbwI+jMpNs4wfFXlN2w7Q6GTzzQxRhMvMREHARGDsGYYTwF0VLRqB5K2QhFDH37I",
        "EryTSb3H181hbtd1v054gvriJlSWCjK1NeP2N2Wzy1t1/592hVxF3aim9bN5fKAADnPd7vf99uNexA3mBEyYtx/wJqAYw8WR",
        "BKBI3DHSQNGD3zuoM58WdrsgMi+aEXUJY8piT0hk//OCxMAhIKIhSV/wAOo+IltYdRkLJYCedwIoyQQAkuS16dLxIBnnfZub",
        "ztPrYGhGoCAx2YAcJCBUCY4mFg40JMCQvyicfiJy+HzAAkbQMPRtFgaRBMCT2LXJ+y5VVOlaNyxhhycr25eXIe1DRZaOa+2b",
        "JgMGTUMKQL7BgYLCXpLuuIympYsf/M87dSxSbBQRpYsICoFLsu+tIIAKrJmJjpMoB2eFsk0lvAwGyFH1ZVlaTBmBO/3//uuY",
        "b7n///xZCtQxHBVRpqKaxUr2sJ5peN7/84LE/1UsFr5fmdACKCM9SvLqrxXqjdASxn3hp6VSshexDJuTBl4/////////////",
        "/sZY+povZMCZT4Wmvdc7lJ0MqXoztcKgcHq7Z4pZulvVakamrURq0tzGtTVrcM1Z2VIIMqYlQmwmxClUuSCj0qJtNEnJcUJm",
        "66G6DlFhM4AuAFQpQ7QDUcS7JyPSQkyYhfidKluVzNuuoT7T5XK59uCrVbthQ1WvdQmJXahPn1vWtd///1r6wYtdYhPtWfPr",
        "dBUoK7/6CsBSIKOii4or5f/zgsRuJtl98A3PeAH///yCvBegpuR0I7///6bFBfCsgo7E2K7/+KbCGBQU2Ctgpv////Ao7E2K",
        "C+FVTEFNRTMuMTAwVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV",
        "VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV",
        "VVVVVVVVVVVV",
    ];

    fn mp3_fixture() -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(MP3_1KHZ.concat())
            .expect("fixture is valid base64")
    }

    fn hound_wav(spec: hound::WavSpec, frames: &[Vec<f64>]) -> Vec<u8> {
        let mut cursor = Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
            for frame in frames {
                for &x in frame {
                    match (spec.sample_format, spec.bits_per_sample) {
                        (hound::SampleFormat::Float, _) => w.write_sample(x as f32).unwrap(),
                        (_, 8) => w.write_sample((x * 127.0).round() as i8).unwrap(),
                        (_, 16) => w.write_sample((x * 32767.0).round() as i16).unwrap(),
                        (_, bits) => w
                            .write_sample((x * f64::from((1i32 << (bits - 1)) - 1)).round() as i32)
                            .unwrap(),
                    }
                }
            }
            w.finalize().unwrap();
        }
        cursor.into_inner()
    }

    /// A WAV hound cannot write (G.711): 16-byte fmt chunk, then data.
    fn raw_wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        let align = channels * bits / 8;
        b.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
        b.extend_from_slice(&align.to_le_bytes());
        b.extend_from_slice(&bits.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
        b
    }

    fn mono_frames(samples: &[i16]) -> Vec<Vec<f64>> {
        samples
            .iter()
            .map(|&s| vec![f64::from(s) / 32767.0])
            .collect()
    }

    fn decode_ok(bytes: &[u8], kind: Container) -> Vec<i16> {
        decode(bytes, kind, 3600).expect("decodes").samples
    }

    #[test]
    fn wav_16bit_8k_mono_is_bit_exact() {
        let input: Vec<i16> = vec![0, 1, -1, 1234, i16::MIN, i16::MAX, -300];
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let bytes = hound_wav(spec, &mono_frames(&input));
        assert_eq!(decode_ok(&bytes, Container::Wav), input);
    }

    #[test]
    fn wav_stereo_44k_is_mixed_to_mono_and_resampled() {
        // Left 1 kHz, right silent: the mix keeps 1 kHz at half amplitude.
        let left = sine(1000.0, 44100, 44100, 16000.0);
        let frames: Vec<Vec<f64>> = left
            .iter()
            .map(|&l| vec![f64::from(l) / 32767.0, 0.0])
            .collect();
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let out = decode_ok(&hound_wav(spec, &frames), Container::Wav);
        assert_eq!(out.len(), 8000);
        let mid = &out[2000..6000];
        assert!((tone_frequency(mid, 8000) - 1000.0).abs() < 5.0);
        let expected = 8000.0 / 2f64.sqrt();
        assert!((rms(mid) / expected - 1.0).abs() < 0.03, "rms {}", rms(mid));
    }

    #[test]
    fn wav_8bit_24bit_and_float_decode_to_the_same_tone() {
        let tone = sine(1000.0, 16000, 16000, 16000.0);
        for (bits, format) in [
            (8, hound::SampleFormat::Int),
            (24, hound::SampleFormat::Int),
            (32, hound::SampleFormat::Float),
        ] {
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 16000,
                bits_per_sample: bits,
                sample_format: format,
            };
            let out = decode_ok(&hound_wav(spec, &mono_frames(&tone)), Container::Wav);
            assert_eq!(out.len(), 8000, "{bits} bits");
            let mid = &out[2000..6000];
            assert!(
                (tone_frequency(mid, 8000) - 1000.0).abs() < 5.0,
                "{bits} bits"
            );
            let r = rms(mid) / (16000.0 / 2f64.sqrt());
            assert!((r - 1.0).abs() < 0.03, "{bits} bits: gain {r}");
        }
    }

    #[test]
    fn wav_ulaw_and_alaw_decode_per_g711() {
        // µ-law 0xFF and A-law 0xD5 are zero; µ-law 0x80 is +32124, A-law 0xAA is +32256.
        let ulaw = raw_wav(7, 1, 8000, 8, &[0xFF, 0x80, 0x00]);
        assert_eq!(decode_ok(&ulaw, Container::Wav), vec![0, 32124, -32124]);
        let alaw = raw_wav(6, 1, 8000, 8, &[0xD5, 0xAA]);
        assert_eq!(decode_ok(&alaw, Container::Wav), vec![8, 32256]);
    }

    #[test]
    fn wav_extensible_uses_the_sub_format_tag() {
        let mut b = raw_wav(1, 1, 8000, 16, &[0x10, 0x00, 0xF0, 0xFF]);
        // Rewrite fmt as WAVE_FORMAT_EXTENSIBLE (40 bytes) with sub-format PCM.
        let mut fmt = b[20..36].to_vec();
        fmt[0..2].copy_from_slice(&0xFFFEu16.to_le_bytes());
        fmt.extend_from_slice(&22u16.to_le_bytes());
        fmt.extend_from_slice(&16u16.to_le_bytes());
        fmt.extend_from_slice(&4u32.to_le_bytes());
        fmt.extend_from_slice(&[
            1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71,
        ]);
        let data = b.split_off(36);
        let mut out = b[..12].to_vec();
        out.extend_from_slice(b"fmt ");
        out.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
        out.extend_from_slice(&fmt);
        out.extend_from_slice(&data);
        assert_eq!(decode_ok(&out, Container::Wav), vec![16, -16]);
    }

    #[test]
    fn wav_with_streaming_placeholder_sizes_decodes_what_is_present() {
        // espeak-ng --stdout cannot seek back: its sizes are placeholders.
        let mut b = raw_wav(1, 1, 8000, 16, &[1, 0, 2, 0, 3, 0]);
        b[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        b[40..44].copy_from_slice(&0x7FFF_F000u32.to_le_bytes());
        assert_eq!(decode_ok(&b, Container::Wav), vec![1, 2, 3]);
    }

    #[test]
    fn damaged_wavs_are_errors_that_say_what_was_found() {
        let cases: [(Vec<u8>, &str); 5] = [
            (b"RIFF\0\0\0\0WAVE".to_vec(), "without a data chunk"),
            (
                b"RIFF\0\0\0\0WAVEfmt \x04\0\0\0\x01\0\x01\0".to_vec(),
                "shorter than 16",
            ),
            (raw_wav(1, 0, 8000, 16, &[0; 4]), "0 channels"),
            (raw_wav(1, 1, 0, 16, &[0; 4]), "sample rate 0 Hz"),
            (raw_wav(2, 1, 8000, 4, &[0; 4]), "format tag 2 with 4 bits"),
        ];
        for (bytes, needle) in cases {
            let err = decode(&bytes, Container::Wav, 60).err().unwrap_or_default();
            assert!(err.contains(needle), "{err:?} lacks {needle:?}");
        }
        // Data before fmt.
        let mut b = b"RIFF\0\0\0\0WAVEdata\x02\0\0\0\0\0".to_vec();
        b.extend_from_slice(b"fmt ");
        let err = decode(&b, Container::Wav, 60).err().unwrap_or_default();
        assert!(err.contains("data chunk before fmt"), "{err}");
    }

    #[test]
    fn every_prefix_of_a_wav_decodes_or_errors_without_panicking() {
        let bytes = raw_wav(1, 2, 22050, 16, &[7u8; 64]);
        for end in 0..bytes.len() {
            let _ = decode(&bytes[..end], Container::Wav, 60);
            let _ = decode(&bytes[..end], Container::Au, 60);
            let _ = decode(&bytes[..end], Container::Mp3, 60);
        }
    }

    #[test]
    fn max_seconds_cuts_long_audio_and_says_so() {
        let bytes = raw_wav(1, 1, 8000, 16, &vec![0u8; 3 * 16000]);
        let d = decode(&bytes, Container::Wav, 1).unwrap();
        assert_eq!(d.samples.len(), 8000);
        assert!(d.truncated);
        let d = decode(&bytes, Container::Wav, 3).unwrap();
        assert_eq!(d.samples.len(), 24000);
        assert!(!d.truncated);
        let d = decode(&[0xFF; 20000], Container::RawUlaw, 2).unwrap();
        assert_eq!((d.samples.len(), d.truncated), (16000, true));
    }

    #[test]
    fn raw_ulaw_is_8k_mono_g711() {
        let out = decode_ok(&[0xFF, 0x80, 0x7F, 0x00], Container::RawUlaw);
        assert_eq!(out, vec![0, 32124, 0, -32124]);
    }

    #[test]
    fn au_ulaw_and_16bit_big_endian() {
        let au = |encoding: u32, rate: u32, data: &[u8]| {
            let mut b = b".snd".to_vec();
            for v in [28u32, data.len() as u32, encoding, rate, 1, 0] {
                b.extend_from_slice(&v.to_be_bytes());
            }
            b.extend_from_slice(data);
            b
        };
        assert_eq!(
            decode_ok(&au(1, 8000, &[0xFF, 0x80]), Container::Au),
            vec![0, 32124]
        );
        assert_eq!(
            decode_ok(&au(3, 8000, &[0x01, 0x00, 0xFF, 0xFE]), Container::Au),
            vec![256, -2]
        );
        let err = decode(&au(23, 8000, &[0]), Container::Au, 60).err();
        assert_eq!(err.as_deref(), Some("AU encoding 23"));
    }

    #[test]
    fn mp3_decodes_to_a_1khz_tone_of_the_right_length() {
        let out = decode_ok(&mp3_fixture(), Container::Mp3);
        // Gapless: the encoder delay and padding are dropped, so 5512 × 8000 / 22050.
        assert_eq!(out.len(), 1999);
        let mid = &out[500..1500];
        assert!((tone_frequency(mid, 8000) - 1000.0).abs() < 10.0);
        // sox wrote the sine at half scale.
        let r = rms(mid) / (16384.0 / 2f64.sqrt());
        assert!((r - 1.0).abs() < 0.1, "gain {r}");
    }

    #[test]
    fn garbage_labelled_mp3_is_an_error() {
        let err = decode(&[0x55; 3000], Container::Mp3, 60)
            .err()
            .unwrap_or_default();
        assert!(err.contains("MP3"), "{err}");
    }

    #[test]
    fn detect_prefers_magic_then_mime_then_extension_then_frame_sync() {
        let wav = raw_wav(1, 1, 8000, 16, &[0; 2]);
        let mp3 = mp3_fixture();
        assert_eq!(
            detect(&wav, Some("audio/mpeg"), "/a.mp3"),
            Some(Container::Wav)
        );
        assert_eq!(
            detect(&mp3, Some("audio/wav"), "/a.wav"),
            Some(Container::Mp3)
        );
        assert_eq!(
            detect(b".snd....", Some("audio/basic"), "/a"),
            Some(Container::Au)
        );
        // µ-law silence looks like an MPEG sync word: the label decides.
        let ulaw = [0xFFu8; 16];
        assert_eq!(
            detect(&ulaw, Some("audio/basic; rate=8000"), "/x"),
            Some(Container::RawUlaw)
        );
        assert_eq!(
            detect(&ulaw, Some("Audio/X-MULAW"), "/x"),
            Some(Container::RawUlaw)
        );
        assert_eq!(
            detect(&ulaw, None, "/p/greeting.ULAW?v=2"),
            Some(Container::RawUlaw)
        );
        assert_eq!(
            detect(&ulaw, Some("application/octet-stream"), "/a.mulaw"),
            Some(Container::RawUlaw)
        );
        assert_eq!(
            detect(&[0xFF, 0xFB, 0x90], None, "/x"),
            Some(Container::Mp3)
        );
        assert_eq!(detect(b"hello", Some("text/html"), "/x.txt"), None);
        assert_eq!(detect(b"", None, "/dir.v2/file"), None);
    }
}
