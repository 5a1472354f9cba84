//! The workspace's one WAV reader: RIFF/WAVE chunks walked from any `Read` (a file streamed to
//! LAME, a 64 KiB prefix, bytes in memory), samples decoded to 16-bit linear PCM.
//!
//! Formats: PCM 8/16/24/32-bit, IEEE float 32/64-bit, A-law (tag 6) and µ-law (tag 7), any
//! rate and channel count, WAVE_FORMAT_EXTENSIBLE (the real tag opens the sub-format GUID).
//! Every input is untrusted: a header is never believed over the bytes actually present. A
//! data size of 0 or 0xFFFFFFFF means "not known" (a recording left open by a crash, a writer
//! that streamed to a pipe): the samples run to the end of the input. Other declared sizes are
//! clamped to what is there, and a trailing partial frame is dropped.

use std::io::Read;

use audio_codec_algorithms::{decode_alaw, decode_ulaw};
use thiserror::Error;

/// Why bytes are not a WAV this reader can decode. The texts say what was found.
#[derive(Debug, Error)]
pub enum ReadError {
    #[error("not a RIFF/WAVE file")]
    NotWav,
    #[error("fmt chunk shorter than 16 bytes ({found} bytes)")]
    ShortFmt { found: usize },
    #[error("WAVE_FORMAT_EXTENSIBLE without a sub-format")]
    NoSubFormat,
    #[error("data chunk before fmt chunk")]
    DataBeforeFmt,
    /// The chunks end (or one runs past the end of the input) before a data chunk.
    #[error("WAV without a data chunk")]
    NoData,
    #[error(
        "WAV format tag {tag} with {bits} bits per sample (Hark reads PCM, float, µ-law and \
         A-law)"
    )]
    Unsupported {
        tag: u16,
        bits: u16,
        channels: u16,
        sample_rate: u32,
    },
    #[error("0 channels")]
    NoChannels,
    #[error("sample rate 0 Hz")]
    NoSampleRate,
    #[error("reading the WAV: {0}")]
    Io(#[from] std::io::Error),
}

/// How one sample is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    /// Unsigned 8-bit PCM (format tag 1), 128 is zero.
    U8,
    /// Little-endian signed PCM (format tag 1).
    S16,
    S24,
    S32,
    /// IEEE float (format tag 3), full scale ±1.0.
    F32,
    F64,
    /// G.711 A-law (format tag 6).
    Alaw,
    /// G.711 µ-law (format tag 7).
    Ulaw,
}

impl SampleFormat {
    /// The format a fmt chunk's tag and bits per sample describe, if it is one of ours.
    pub const fn from_tag(tag: u16, bits: u16) -> Option<Self> {
        Some(match (tag, bits) {
            (1, 8) => SampleFormat::U8,
            (1, 16) => SampleFormat::S16,
            (1, 24) => SampleFormat::S24,
            (1, 32) => SampleFormat::S32,
            (3, 32) => SampleFormat::F32,
            (3, 64) => SampleFormat::F64,
            (6, 8) => SampleFormat::Alaw,
            (7, 8) => SampleFormat::Ulaw,
            _ => return None,
        })
    }

    /// The fmt chunk's format tag and bits per sample for this format.
    pub const fn tag_and_bits(self) -> (u16, u16) {
        match self {
            SampleFormat::U8 => (1, 8),
            SampleFormat::S16 => (1, 16),
            SampleFormat::S24 => (1, 24),
            SampleFormat::S32 => (1, 32),
            SampleFormat::F32 => (3, 32),
            SampleFormat::F64 => (3, 64),
            SampleFormat::Alaw => (6, 8),
            SampleFormat::Ulaw => (7, 8),
        }
    }

    /// Bytes per sample.
    pub const fn bytes(self) -> usize {
        match self {
            SampleFormat::U8 | SampleFormat::Alaw | SampleFormat::Ulaw => 1,
            SampleFormat::S16 => 2,
            SampleFormat::S24 => 3,
            SampleFormat::S32 | SampleFormat::F32 => 4,
            SampleFormat::F64 => 8,
        }
    }

    /// One sample as 16-bit linear PCM: wider integers keep their top 16 bits, floats are
    /// clamped to ±1.0 and scaled by 32767. `b` holds `self.bytes()` bytes (missing ones read
    /// as 0).
    pub fn sample(self, b: &[u8]) -> i16 {
        let at = |i: usize| b.get(i).copied().unwrap_or(0);
        let float = |f: f64| (f.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        match self {
            SampleFormat::U8 => i16::from_le_bytes([0, at(0) ^ 0x80]),
            SampleFormat::S16 => i16::from_le_bytes([at(0), at(1)]),
            SampleFormat::S24 => i16::from_le_bytes([at(1), at(2)]),
            SampleFormat::S32 => i16::from_le_bytes([at(2), at(3)]),
            SampleFormat::F32 => float(f64::from(f32::from_le_bytes([at(0), at(1), at(2), at(3)]))),
            SampleFormat::F64 => {
                let mut a = [0u8; 8];
                for (i, x) in a.iter_mut().enumerate() {
                    *x = at(i);
                }
                float(f64::from_le_bytes(a))
            }
            SampleFormat::Alaw => decode_alaw(at(0)),
            SampleFormat::Ulaw => decode_ulaw(at(0)),
        }
    }

    /// Appends the whole samples in `bytes` to `out` (a trailing partial sample is dropped).
    pub fn decode_into(self, bytes: &[u8], out: &mut Vec<i16>) {
        out.extend(bytes.chunks_exact(self.bytes()).map(|b| self.sample(b)));
    }
}

/// What a WAV's header says, read up to the first sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavHeader {
    pub format: SampleFormat,
    /// At least 1.
    pub channels: u16,
    /// At least 1 Hz.
    pub sample_rate: u32,
    /// As declared: the reader computes frames from `format` and `channels`, not from these.
    pub byte_rate: u32,
    pub block_align: u16,
    /// Offset of the first sample from the start of the input.
    pub data_offset: u64,
    /// The data chunk's size; `None` when it says 0 or 0xFFFFFFFF (not known: to the end).
    pub data_len: Option<u32>,
}

impl WavHeader {
    /// Bytes per frame (one sample of every channel).
    pub fn frame_bytes(&self) -> usize {
        self.format.bytes() * usize::from(self.channels)
    }

    /// Bytes of samples in a file of `file_len` bytes: the declared size clamped to what is
    /// there, or everything after the header when the size is not known.
    pub fn data_bytes(&self, file_len: u64) -> u64 {
        let present = file_len.saturating_sub(self.data_offset);
        self.data_len
            .map_or(present, |declared| present.min(u64::from(declared)))
    }

    /// Whole frames in a file of `file_len` bytes.
    pub fn frames(&self, file_len: u64) -> u64 {
        self.data_bytes(file_len) / self.frame_bytes() as u64
    }

    /// Seconds of audio in a file of `file_len` bytes.
    pub fn duration_secs(&self, file_len: u64) -> f64 {
        self.frames(file_len) as f64 / f64::from(self.sample_rate)
    }
}

/// The fmt chunk fields the reader needs; the extensible tag already replaced.
#[derive(Debug, Clone, Copy)]
struct Fmt {
    tag: u16,
    channels: u16,
    sample_rate: u32,
    byte_rate: u32,
    block_align: u16,
    bits: u16,
}

/// The fmt chunk bytes kept: 16 plus the 2-byte extension size, 2 valid bits, 4 channel mask
/// and the 16-byte sub-format GUID of WAVE_FORMAT_EXTENSIBLE.
const FMT_KEPT: usize = 40;

impl Fmt {
    fn parse(b: &[u8]) -> Result<Self, ReadError> {
        let u16_at = |i: usize| b.get(i..i + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
        let u32_at = |i: usize| {
            b.get(i..i + 4)
                .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        };
        let (
            Some(tag),
            Some(channels),
            Some(sample_rate),
            Some(byte_rate),
            Some(block_align),
            Some(bits),
        ) = (
            u16_at(0),
            u16_at(2),
            u32_at(4),
            u32_at(8),
            u16_at(12),
            u16_at(14),
        )
        else {
            return Err(ReadError::ShortFmt { found: b.len() });
        };
        let tag = if tag == 0xFFFE {
            u16_at(24).ok_or(ReadError::NoSubFormat)?
        } else {
            tag
        };
        Ok(Fmt {
            tag,
            channels,
            sample_rate,
            byte_rate,
            block_align,
            bits,
        })
    }
}

/// Reads the RIFF header and every chunk before the samples; `r` is left at the first sample.
/// Unknown chunks (LIST, fact, JUNK, …) are skipped.
pub fn read_header<R: Read>(r: &mut R) -> Result<WavHeader, ReadError> {
    let mut riff = [0u8; 12];
    if fill(r, &mut riff)? < riff.len() || &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Err(ReadError::NotWav);
    }
    let mut offset = riff.len() as u64;
    let mut fmt: Option<Fmt> = None;
    loop {
        let mut chunk = [0u8; 8];
        if fill(r, &mut chunk)? < chunk.len() {
            return Err(ReadError::NoData);
        }
        offset += chunk.len() as u64;
        let size = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        // Chunks are padded to an even length.
        let padded = u64::from(size) + u64::from(size & 1);
        match &chunk[0..4] {
            b"fmt " => {
                let mut body = [0u8; FMT_KEPT];
                let kept = (size as usize).min(FMT_KEPT);
                let got = fill(r, &mut body[..kept])?;
                fmt = Some(Fmt::parse(&body[..got])?);
                skip(r, padded - got as u64)?;
            }
            b"data" => {
                let fmt = fmt.ok_or(ReadError::DataBeforeFmt)?;
                return header(fmt, offset, size);
            }
            _ => skip(r, padded)?,
        }
        offset += padded;
    }
}

fn header(fmt: Fmt, data_offset: u64, size: u32) -> Result<WavHeader, ReadError> {
    if fmt.channels == 0 {
        return Err(ReadError::NoChannels);
    }
    if fmt.sample_rate == 0 {
        return Err(ReadError::NoSampleRate);
    }
    let format = SampleFormat::from_tag(fmt.tag, fmt.bits).ok_or(ReadError::Unsupported {
        tag: fmt.tag,
        bits: fmt.bits,
        channels: fmt.channels,
        sample_rate: fmt.sample_rate,
    })?;
    Ok(WavHeader {
        format,
        channels: fmt.channels,
        sample_rate: fmt.sample_rate,
        byte_rate: fmt.byte_rate,
        block_align: fmt.block_align,
        data_offset,
        data_len: match size {
            0 | u32::MAX => None,
            n => Some(n),
        },
    })
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn fill<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Skips a chunk body; one that runs past the end of the input hides any data chunk.
fn skip<R: Read>(r: &mut R, n: u64) -> Result<(), ReadError> {
    let skipped = std::io::copy(&mut r.take(n), &mut std::io::sink())?;
    if skipped < n {
        return Err(ReadError::NoData);
    }
    Ok(())
}

/// A WAV in memory: its header and the bytes of its samples.
#[derive(Debug, Clone, Copy)]
pub struct Wav<'a> {
    pub header: WavHeader,
    /// The sample bytes present (see [`WavHeader::data_bytes`]); may end in a partial frame.
    pub data: &'a [u8],
}

impl<'a> Wav<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ReadError> {
        let mut rest = bytes;
        let header = read_header(&mut rest)?;
        let len = usize::try_from(header.data_bytes(bytes.len() as u64)).unwrap_or(usize::MAX);
        Ok(Wav {
            header,
            data: rest.get(..len).unwrap_or(rest),
        })
    }

    /// Whole frames present.
    pub fn frames(&self) -> usize {
        self.data.len() / self.header.frame_bytes()
    }

    /// Every sample of every whole frame, interleaved, as 16-bit linear PCM.
    pub fn samples(&self) -> Vec<i16> {
        let whole = self.frames() * self.header.frame_bytes();
        let mut out = Vec::with_capacity(self.frames() * usize::from(self.header.channels));
        self.header
            .format
            .decode_into(&self.data[..whole], &mut out);
        out
    }

    /// One sample per whole frame: the channels' mean, rounded toward zero.
    pub fn mono(&self) -> impl Iterator<Item = i16> + 'a {
        let format = self.header.format;
        let channels = i32::from(self.header.channels);
        self.data
            .chunks_exact(self.header.frame_bytes())
            .map(move |frame| {
                let sum: i32 = frame
                    .chunks_exact(format.bytes())
                    .map(|s| i32::from(format.sample(s)))
                    .sum();
                (sum / channels) as i16
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A canonical WAV: a 16-byte fmt chunk, then `data`.
    fn wav_with(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let align = channels * bits.div_ceil(8);
        let mut fmt = Vec::new();
        fmt.extend_from_slice(&tag.to_le_bytes());
        fmt.extend_from_slice(&channels.to_le_bytes());
        fmt.extend_from_slice(&rate.to_le_bytes());
        fmt.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
        fmt.extend_from_slice(&align.to_le_bytes());
        fmt.extend_from_slice(&bits.to_le_bytes());
        chunks(&[(b"fmt ", &fmt), (b"data", data)])
    }

    /// RIFF/WAVE around `chunks`, each padded to an even length.
    fn chunks(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut body = b"WAVE".to_vec();
        for (id, bytes) in chunks {
            body.extend_from_slice(*id);
            body.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            body.extend_from_slice(bytes);
            if bytes.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn samples(bytes: &[u8]) -> Vec<i16> {
        Wav::parse(bytes).expect("parses").samples()
    }

    fn le(samples: impl IntoIterator<Item = i32>, width: usize) -> Vec<u8> {
        samples
            .into_iter()
            .flat_map(|s| s.to_le_bytes()[..width].to_vec())
            .collect()
    }

    #[test]
    fn pcm16_mono_is_bit_exact_and_the_header_is_read() {
        let pcm = [0i32, 1, -1, 1234, -32768, 32767];
        let bytes = wav_with(1, 1, 8000, 16, &le(pcm, 2));
        let wav = Wav::parse(&bytes).unwrap();
        assert_eq!(
            wav.header,
            WavHeader {
                format: SampleFormat::S16,
                channels: 1,
                sample_rate: 8000,
                byte_rate: 16000,
                block_align: 2,
                data_offset: 44,
                data_len: Some(12),
            }
        );
        assert_eq!(wav.samples(), pcm.map(|s| s as i16));
        assert_eq!(wav.header.duration_secs(bytes.len() as u64), 6.0 / 8000.0);
    }

    #[test]
    fn pcm_8_24_32_bit_keep_the_top_16_bits() {
        assert_eq!(
            samples(&wav_with(1, 1, 8000, 8, &[0x80, 0xFF, 0x00, 0x81])),
            [0, 127 << 8, -128 << 8, 1 << 8]
        );
        let s24 = le([0x12_3456, -0x12_3456, 0x7F_FFFF, -0x80_0000], 3);
        assert_eq!(
            samples(&wav_with(1, 1, 8000, 24, &s24)),
            [0x1234, -0x1235, 0x7FFF, -0x8000]
        );
        let s32 = le([0x1234_5678, -0x1234_5678, i32::MAX, i32::MIN], 4);
        assert_eq!(
            samples(&wav_with(1, 1, 8000, 32, &s32)),
            [0x1234, -0x1235, 0x7FFF, -0x8000]
        );
    }

    #[test]
    fn float_32_and_64_bit_are_clamped_and_scaled() {
        let f32s: Vec<u8> = [0.0f32, 0.5, -1.0, 2.0, -3.5]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        let want = [0, 16384, -32767, 32767, -32767];
        assert_eq!(samples(&wav_with(3, 1, 8000, 32, &f32s)), want);
        let f64s: Vec<u8> = [0.0f64, 0.5, -1.0, 2.0, -3.5]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        assert_eq!(samples(&wav_with(3, 1, 8000, 64, &f64s)), want);
    }

    /// ITU-T G.711 decoding written out independently of `audio_codec_algorithms`.
    fn g711_reference(byte: u8, alaw: bool) -> i16 {
        if alaw {
            let a = byte ^ 0x55;
            let exponent = (a >> 4) & 0x07;
            let mut t = (i32::from(a & 0x0F) << 4) + 8;
            if exponent != 0 {
                t = (t + 0x100) << (exponent - 1);
            }
            (if a & 0x80 != 0 { t } else { -t }) as i16
        } else {
            let u = !byte;
            let exponent = (u >> 4) & 0x07;
            let magnitude = ((i32::from(u & 0x0F) << 3) + 0x84) << exponent;
            let sample = magnitude - 0x84;
            (if u & 0x80 != 0 { -sample } else { sample }) as i16
        }
    }

    #[test]
    fn ulaw_and_alaw_decode_per_g711_for_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let ulaw = samples(&wav_with(7, 1, 8000, 8, &all));
        let alaw = samples(&wav_with(6, 1, 8000, 8, &all));
        for b in 0..=255u8 {
            assert_eq!(
                ulaw[usize::from(b)],
                g711_reference(b, false),
                "µ-law {b:#04x}"
            );
            assert_eq!(
                alaw[usize::from(b)],
                g711_reference(b, true),
                "A-law {b:#04x}"
            );
        }
        assert_eq!((ulaw[0xFF], ulaw[0x80], ulaw[0x00]), (0, 32124, -32124));
        assert_eq!((alaw[0xD5], alaw[0xAA], alaw[0x2A]), (8, 32256, -32256));
    }

    #[test]
    fn stereo_is_interleaved_and_mono_is_the_mean() {
        let bytes = wav_with(1, 2, 44100, 16, &le([100, 300, -5, 2, 7], 2));
        let wav = Wav::parse(&bytes).unwrap();
        assert_eq!(wav.frames(), 2, "the half frame at the end is dropped");
        assert_eq!(wav.samples(), [100, 300, -5, 2]);
        assert_eq!(wav.mono().collect::<Vec<_>>(), [200, -1]);
    }

    #[test]
    fn extensible_uses_the_sub_format_tag() {
        let mut fmt = wav_with(0xFFFE, 1, 8000, 16, &[])[20..36].to_vec();
        fmt.extend_from_slice(&22u16.to_le_bytes());
        fmt.extend_from_slice(&16u16.to_le_bytes());
        fmt.extend_from_slice(&4u32.to_le_bytes());
        fmt.extend_from_slice(&[
            1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71,
        ]);
        let bytes = chunks(&[(b"fmt ", &fmt), (b"data", &[0x10, 0x00, 0xF0, 0xFF])]);
        assert_eq!(samples(&bytes), [16, -16]);
        let short = chunks(&[(b"fmt ", &fmt[..18]), (b"data", &[0, 0])]);
        assert!(matches!(Wav::parse(&short), Err(ReadError::NoSubFormat)));
    }

    #[test]
    fn unknown_and_odd_sized_chunks_are_skipped() {
        // sox -e mu-law: an 18-byte fmt, then fact; a LIST with an odd size and its pad byte.
        let mut fmt = wav_with(7, 1, 8000, 8, &[])[20..36].to_vec();
        fmt.extend_from_slice(&[0, 0]);
        let bytes = chunks(&[
            (b"fmt ", &fmt),
            (b"fact", &3u32.to_le_bytes()),
            (b"LIST", b"abc"),
            (b"data", &[0xFF, 0x80, 0x00]),
        ]);
        let wav = Wav::parse(&bytes).unwrap();
        assert_eq!(wav.header.data_offset, 12 + 26 + 12 + 12 + 8);
        assert_eq!(wav.samples(), [0, 32124, -32124]);
    }

    #[test]
    fn unknown_data_size_runs_to_the_end_and_known_sizes_are_clamped() {
        let mut bytes = wav_with(1, 1, 8000, 16, &le([1, 2, 3], 2));
        // What a crash leaves (the writer's header says 0) and what a pipe writer leaves.
        for unknown in [0u32, u32::MAX] {
            bytes[40..44].copy_from_slice(&unknown.to_le_bytes());
            let wav = Wav::parse(&bytes).unwrap();
            assert_eq!((wav.header.data_len, wav.samples()), (None, vec![1, 2, 3]));
        }
        // espeak-ng --stdout: placeholder sizes larger than the file.
        bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        bytes[40..44].copy_from_slice(&0x7FFF_F000u32.to_le_bytes());
        assert_eq!(samples(&bytes), [1, 2, 3]);
        // A declared size shorter than the file: what follows is another chunk.
        bytes[40..44].copy_from_slice(&4u32.to_le_bytes());
        assert_eq!(samples(&bytes), [1, 2]);
        let header = Wav::parse(&bytes).unwrap().header;
        assert_eq!(header.data_bytes(1 << 20), 4);
        assert_eq!(header.data_bytes(46), 2);
        assert_eq!(header.data_bytes(10), 0);
    }

    #[test]
    fn a_prefix_gives_the_header_and_the_file_length_the_duration() {
        // What transcription does: the first bytes of a file and its length.
        let bytes = wav_with(1, 1, 8000, 16, &vec![0; 24_000]);
        let header = read_header(&mut &bytes[..64]).unwrap();
        assert_eq!(header.duration_secs(bytes.len() as u64), 1.5);
        let mut crashed = bytes.clone();
        crashed[40..44].copy_from_slice(&0u32.to_le_bytes());
        let header = read_header(&mut &crashed[..64]).unwrap();
        assert_eq!(header.duration_secs(44 + 4000), 0.25);
    }

    #[test]
    fn a_recording_left_open_by_a_crash_reads_to_the_end_of_what_is_on_disk() {
        use crate::wav::{WavEncoding, WavWriter};
        let pcm: Vec<i16> = (0..10_000).map(|i| (i * 7 % 20_000) as i16).collect();
        for encoding in [WavEncoding::Pcm16, WavEncoding::Ulaw] {
            let storage = std::io::Cursor::new(Vec::new());
            let mut w = WavWriter::create_encoded(storage, 8000, encoding)
                .unwrap()
                .with_sync_every(u64::MAX);
            w.write(&pcm).unwrap();
            // No sync, no finalize: full buffers are on disk, the header still says 0.
            let bytes = w.storage.get_ref().clone();
            assert_eq!(&bytes[40..44], &[0; 4], "{encoding:?}");
            let on_disk = (bytes.len() - 44) / encoding.bytes_per_sample() as usize;
            assert!(on_disk > 0 && on_disk < pcm.len(), "{on_disk}");
            let expect: Vec<i16> = match encoding {
                WavEncoding::Pcm16 => pcm[..on_disk].to_vec(),
                WavEncoding::Ulaw => pcm[..on_disk]
                    .iter()
                    .map(|&s| decode_ulaw(audio_codec_algorithms::encode_ulaw(s)))
                    .collect(),
            };
            let wav = Wav::parse(&bytes).unwrap();
            assert_eq!(wav.header.data_len, None);
            assert_eq!(wav.samples(), expect, "{encoding:?}");
        }
    }

    #[test]
    fn read_header_leaves_the_reader_at_the_first_sample() {
        let bytes = wav_with(1, 1, 8000, 16, &[1, 0, 2, 0]);
        let mut r = &bytes[..];
        read_header(&mut r).unwrap();
        assert_eq!(r, &[1, 0, 2, 0]);
    }

    #[test]
    fn damaged_headers_are_typed_errors() {
        let err = |bytes: &[u8]| Wav::parse(bytes).err();
        assert!(matches!(err(b"RIFF\0\0\0\0WAVX"), Some(ReadError::NotWav)));
        assert!(matches!(err(b"RIFX\0\0\0\0WAVE"), Some(ReadError::NotWav)));
        assert!(matches!(err(b""), Some(ReadError::NotWav)));
        assert!(matches!(err(b"RIFF\0\0\0\0WAVE"), Some(ReadError::NoData)));
        assert!(matches!(
            err(b"RIFF\0\0\0\0WAVEfmt \x04\0\0\0\x01\0\x01\0"),
            Some(ReadError::ShortFmt { found: 4 })
        ));
        assert!(matches!(
            err(b"RIFF\0\0\0\0WAVEdata\x02\0\0\0\0\0fmt "),
            Some(ReadError::DataBeforeFmt)
        ));
        assert!(matches!(
            err(&wav_with(1, 0, 8000, 16, &[0; 4])),
            Some(ReadError::NoChannels)
        ));
        assert!(matches!(
            err(&wav_with(1, 1, 0, 16, &[0; 4])),
            Some(ReadError::NoSampleRate)
        ));
        let adpcm = err(&wav_with(2, 1, 8000, 4, &[0; 4])).unwrap();
        assert!(matches!(
            adpcm,
            ReadError::Unsupported {
                tag: 2,
                bits: 4,
                channels: 1,
                sample_rate: 8000
            }
        ));
        assert!(
            adpcm.to_string().contains("format tag 2 with 4 bits"),
            "{adpcm}"
        );
        // A chunk whose size runs past the end hides any data chunk.
        let mut lying = wav_with(1, 1, 8000, 16, &[0; 4]);
        lying.splice(12..12, *b"JUNK\xFF\xFF\xFF\x7F");
        assert!(matches!(err(&lying), Some(ReadError::NoData)));
    }

    #[test]
    fn input_errors_are_kept() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let err = read_header(&mut Broken).unwrap_err();
        assert_eq!(err.to_string(), "reading the WAV: disk on fire");
    }

    #[test]
    fn every_prefix_and_every_corrupted_byte_parses_or_errors_without_panicking() {
        let good = [
            wav_with(1, 2, 22050, 16, &[7; 64]),
            wav_with(3, 1, 8000, 64, &[0x40; 64]),
            wav_with(7, 3, 8000, 8, &[0x55; 63]),
        ];
        for bytes in &good {
            for end in 0..=bytes.len() {
                if let Ok(wav) = Wav::parse(&bytes[..end]) {
                    assert!(wav.samples().len() <= wav.data.len());
                    let _ = wav.mono().count();
                }
            }
            for at in 0..bytes.len() {
                for value in [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF] {
                    let mut bad = bytes.clone();
                    bad[at] = value;
                    if let Ok(wav) = Wav::parse(&bad) {
                        let _ = (wav.samples(), wav.mono().count());
                        let _ = wav.header.duration_secs(u64::MAX);
                    }
                }
            }
        }
    }
}
