//! Mono (or, for conversations, interleaved multi-channel) WAV that stays playable while it is written (SPEC §9): 16-bit PCM, or G.711 µ-law
//! (`record.wav_codec = "ulaw"`, SPEC §6.3: half the size, and lossless for PCMU callers).
//!
//! Layout is always the canonical 44-byte header followed by the samples, so the two size
//! fields sit at fixed offsets (4 and 40) and can be rewritten in place. hound is not used for
//! writing because it can neither truncate nor shift the data in place at the end.
//!
//! Reading any WAV, not only what this writer wrote, is [`Wav`] and [`read_header`] (the one WAV
//! reader of the workspace).

mod read;

pub use read::{read_header, ReadError, SampleFormat, Wav, WavHeader};

use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;

use audio_codec_algorithms::encode_ulaw;
use thiserror::Error;

/// How samples are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WavEncoding {
    /// 16-bit little-endian linear PCM (format tag 1).
    #[default]
    Pcm16,
    /// G.711 µ-law, one byte per sample (format tag 7).
    Ulaw,
}

impl WavEncoding {
    pub const fn bytes_per_sample(self) -> u64 {
        match self {
            WavEncoding::Pcm16 => 2,
            WavEncoding::Ulaw => 1,
        }
    }
    const fn format_tag(self) -> u16 {
        match self {
            WavEncoding::Pcm16 => 1,
            WavEncoding::Ulaw => 7,
        }
    }
}

#[derive(Debug, Error)]
pub enum WavError {
    #[error("I/O on the recording: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a PCM WAV file Hark wrote: {0}")]
    NotOurWav(&'static str),
    #[error("not a PCM WAV file Hark wrote: {0}")]
    Unreadable(#[from] ReadError),
    /// The RIFF/data size fields are 32-bit.
    #[error("recording data size exceeds the WAV 32-bit size field ({bytes} bytes)")]
    TooLong { bytes: u64 },
}

/// What a recording is written to: a file in the daemon, memory in tests.
pub trait WavStorage: Read + Write + Seek {
    fn set_len(&mut self, len: u64) -> std::io::Result<()>;
}

impl WavStorage for std::fs::File {
    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        std::fs::File::set_len(self, len)
    }
}

impl WavStorage for std::io::Cursor<Vec<u8>> {
    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        let len =
            usize::try_from(len).map_err(|_| std::io::Error::other("length exceeds memory"))?;
        self.get_mut().resize(len, 0);
        Ok(())
    }
}

/// Bytes before the samples.
pub const HEADER_BYTES: u64 = 44;

/// Largest data chunk the 32-bit RIFF size (`36 + data`) can describe, in whole samples.
const MAX_DATA_BYTES: u64 = (u32::MAX as u64 - 36) & !1;

/// Write buffer size: 8 KiB is ~0.5 s at 8 kHz, so a file sees a few syscalls per second.
const BUFFER_BYTES: usize = 8192;

/// The canonical header for `samples` mono 16-bit samples at `sample_rate`.
pub fn header_bytes(sample_rate: u32, samples: u64) -> Result<[u8; 44], WavError> {
    encoded_header_bytes(WavEncoding::Pcm16, sample_rate, samples)
}

fn data_bytes(encoding: WavEncoding, samples: u64) -> Result<u32, WavError> {
    let bps = encoding.bytes_per_sample();
    let data = samples.checked_mul(bps).filter(|&b| b <= MAX_DATA_BYTES);
    Ok(data.ok_or(WavError::TooLong {
        bytes: samples.saturating_mul(bps),
    })? as u32)
}

/// The canonical header for `samples` mono samples at `sample_rate` stored as `encoding`.
pub fn encoded_header_bytes(
    encoding: WavEncoding,
    sample_rate: u32,
    samples: u64,
) -> Result<[u8; 44], WavError> {
    layout_header(encoding, 1, sample_rate, samples)
}

/// The canonical header for `values` interleaved samples (`values / channels` frames).
pub fn layout_header(
    encoding: WavEncoding,
    channels: u16,
    sample_rate: u32,
    values: u64,
) -> Result<[u8; 44], WavError> {
    let data = data_bytes(encoding, values)?;
    let channels = channels.max(1);
    let block = encoding.bytes_per_sample() as u16 * channels;
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&encoding.format_tag().to_le_bytes());
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&sample_rate.to_le_bytes());
    let byte_rate = sample_rate.wrapping_mul(u32::from(block));
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&block.to_le_bytes()); // block align
    h[34..36].copy_from_slice(&(encoding.bytes_per_sample() as u16 * 8).to_le_bytes()); // bits
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data.to_le_bytes());
    Ok(h)
}

/// Rewrites the two size fields; leaves the position unspecified.
fn write_sizes<S: Write + Seek>(
    storage: &mut S,
    encoding: WavEncoding,
    samples: u64,
) -> Result<(), WavError> {
    let data = data_bytes(encoding, samples)?;
    storage.seek(SeekFrom::Start(4))?;
    storage.write_all(&(36 + data).to_le_bytes())?;
    storage.seek(SeekFrom::Start(40))?;
    storage.write_all(&data.to_le_bytes())?;
    Ok(())
}

pub struct WavWriter<S: WavStorage> {
    storage: S,
    sample_rate: u32,
    encoding: WavEncoding,
    /// Interleaved channels; the counters below count values (frames * channels).
    channels: u16,
    /// Fixed capacity (allocated once): `write` never reallocates.
    buf: Vec<u8>,
    /// Samples accepted by `write` (on disk + buffered).
    samples: u64,
    /// Samples on disk; the storage position is at their end.
    on_disk: u64,
    /// Sample count the header currently states.
    in_header: u64,
    sync_every: u64,
}

impl<S: WavStorage> WavWriter<S> {
    /// Writes a header for an empty 16-bit PCM file (sizes valid from the start).
    pub fn create(storage: S, sample_rate: u32) -> Result<Self, WavError> {
        Self::create_encoded(storage, sample_rate, WavEncoding::Pcm16)
    }

    /// Writes a header for an empty file storing `encoding` (sizes valid from the start).
    pub fn create_encoded(
        storage: S,
        sample_rate: u32,
        encoding: WavEncoding,
    ) -> Result<Self, WavError> {
        Self::create_channels(storage, sample_rate, encoding, 1)
    }

    /// A file of `channels` interleaved channels: [`WavWriter::write`] takes whole frames
    /// (`channels` values each) and `finalize` keeps frames.
    pub fn create_channels(
        mut storage: S,
        sample_rate: u32,
        encoding: WavEncoding,
        channels: u16,
    ) -> Result<Self, WavError> {
        let channels = channels.max(1);
        storage.seek(SeekFrom::Start(0))?;
        storage.write_all(&layout_header(encoding, channels, sample_rate, 0)?)?;
        storage.set_len(HEADER_BYTES)?;
        storage.flush()?;
        Ok(Self {
            storage,
            sample_rate,
            encoding,
            channels,
            buf: Vec::with_capacity(BUFFER_BYTES),
            samples: 0,
            on_disk: 0,
            in_header: 0,
            // SPEC §9: sizes rewritten at least every 5 s of audio.
            sync_every: u64::from(sample_rate) * 5 * u64::from(channels),
        })
    }

    /// Header sizes are rewritten at least every `samples` samples (minimum 1).
    pub fn with_sync_every(mut self, samples: u64) -> Self {
        self.sync_every = samples.max(1);
        self
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Appends samples (buffered); the header is rewritten at least every `sync_every` samples.
    pub fn write(&mut self, pcm: &[i16]) -> Result<(), WavError> {
        let bps = self.encoding.bytes_per_sample();
        let bytes = self
            .samples
            .saturating_add(pcm.len() as u64)
            .saturating_mul(bps);
        if bytes > MAX_DATA_BYTES {
            return Err(WavError::TooLong { bytes });
        }
        let mut rest = pcm;
        while !rest.is_empty() {
            let room = BUFFER_BYTES.saturating_sub(self.buf.len()) / bps as usize;
            if room == 0 {
                self.flush_buffer()?;
                continue;
            }
            let (now, later) = rest.split_at(room.min(rest.len()));
            match self.encoding {
                WavEncoding::Pcm16 => {
                    for s in now {
                        self.buf.extend_from_slice(&s.to_le_bytes());
                    }
                }
                WavEncoding::Ulaw => self.buf.extend(now.iter().map(|&s| encode_ulaw(s))),
            }
            self.samples += now.len() as u64;
            rest = later;
        }
        if self.samples - self.in_header >= self.sync_every {
            self.sync()?;
        }
        Ok(())
    }

    /// Writes the buffer and the header sizes now.
    pub fn sync(&mut self) -> Result<(), WavError> {
        self.flush_buffer()?;
        if self.in_header != self.on_disk {
            write_sizes(&mut self.storage, self.encoding, self.on_disk)?;
            self.storage.seek(SeekFrom::Start(
                HEADER_BYTES + self.on_disk * self.encoding.bytes_per_sample(),
            ))?;
            self.in_header = self.on_disk;
        }
        self.storage.flush()?;
        Ok(())
    }

    /// Frames accepted (samples per channel).
    pub fn samples_written(&self) -> u64 {
        self.samples / u64::from(self.channels)
    }

    /// Keeps only samples `keep` (moving them to the front), fixes the header, returns storage.
    /// `keep` is clamped to what was written. The storage is left positioned at offset 0.
    pub fn finalize(mut self, keep: Range<u64>) -> Result<S, WavError> {
        self.flush_buffer()?;
        let ch = u64::from(self.channels);
        let keep = keep.start.saturating_mul(ch)..keep.end.saturating_mul(ch);
        let bps = self.encoding.bytes_per_sample();
        let end = keep.end.min(self.on_disk);
        let start = keep.start.min(end);
        let len = end - start;
        if start > 0 && len > 0 {
            // Destination is always before the source, so a forward chunked copy is safe.
            self.buf.clear();
            self.buf.resize(BUFFER_BYTES, 0);
            let mut moved = 0u64;
            while moved < len {
                let n = (len - moved).min(self.buf.len() as u64 / bps) as usize;
                let chunk = &mut self.buf[..n * bps as usize];
                self.storage
                    .seek(SeekFrom::Start(HEADER_BYTES + (start + moved) * bps))?;
                self.storage.read_exact(chunk)?;
                self.storage
                    .seek(SeekFrom::Start(HEADER_BYTES + moved * bps))?;
                self.storage.write_all(chunk)?;
                moved += n as u64;
            }
        }
        self.storage.set_len(HEADER_BYTES + len * bps)?;
        write_sizes(&mut self.storage, self.encoding, len)?;
        self.storage.flush()?;
        self.storage.seek(SeekFrom::Start(0))?;
        Ok(self.storage)
    }

    fn flush_buffer(&mut self) -> Result<(), WavError> {
        if !self.buf.is_empty() {
            self.storage.write_all(&self.buf)?;
            self.on_disk += self.buf.len() as u64 / self.encoding.bytes_per_sample();
            self.buf.clear();
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairOutcome {
    /// The header already matched the file.
    Intact { samples: u64 },
    /// Sizes were rewritten from the file length.
    Repaired { samples: u64 },
}

/// Checks that `h` is our 44-byte mono layout (the one the writer keeps: its size fields at
/// offsets 4 and 40); returns how the samples are stored.
pub fn check_header(h: &[u8; 44]) -> Result<WavEncoding, WavError> {
    check_layout(h).map(|(encoding, _)| encoding)
}

/// [`check_header`] for mono or stereo files: the encoding and the channel count.
pub fn check_layout(h: &[u8; 44]) -> Result<(WavEncoding, u16), WavError> {
    // Within 44 bytes the reader can only find a data chunk at offset 36, after a 16-byte fmt
    // chunk at 12: the layout whose size fields `write_sizes` rewrites.
    let header = read_header(&mut &h[..])?;
    let encoding = match header.format {
        SampleFormat::S16 => WavEncoding::Pcm16,
        SampleFormat::Ulaw => WavEncoding::Ulaw,
        _ => {
            return Err(WavError::NotOurWav(
                "fmt audio format is not 16-bit PCM (1) or µ-law (7)",
            ))
        }
    };
    if !(1..=2).contains(&header.channels) {
        return Err(WavError::NotOurWav("fmt channels is not 1 or 2"));
    }
    let block = encoding.bytes_per_sample() as u16 * header.channels;
    if header.block_align != block {
        return Err(WavError::NotOurWav(
            "fmt block align does not fit the format",
        ));
    }
    if Some(header.byte_rate) != header.sample_rate.checked_mul(u32::from(block)) {
        return Err(WavError::NotOurWav(
            "fmt byte rate is not sample rate * block align",
        ));
    }
    Ok((encoding, header.channels))
}

/// Fixes RIFF and data sizes of a WAV left open by a crash (`kill -9`).
pub fn repair_wav_file(path: &Path) -> Result<RepairOutcome, WavError> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let len = f.metadata()?.len();
    if len < HEADER_BYTES {
        return Err(WavError::NotOurWav("file shorter than the 44-byte header"));
    }
    let mut h = [0u8; 44];
    f.read_exact(&mut h)?;
    let (encoding, channels) = check_layout(&h)?;
    let frame_bytes = encoding.bytes_per_sample() * u64::from(channels);
    // A crash can leave half a frame at the end: drop it.
    let samples = (len - HEADER_BYTES) / frame_bytes;
    let values = samples * u64::from(channels);
    let riff = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let data = u32::from_le_bytes([h[40], h[41], h[42], h[43]]);
    let want = layout_header(encoding, channels, 0, values)?;
    let sizes_ok = riff.to_le_bytes() == want[4..8] && data.to_le_bytes() == want[40..44];
    let odd_tail = !(len - HEADER_BYTES).is_multiple_of(frame_bytes);
    if sizes_ok && !odd_tail {
        return Ok(RepairOutcome::Intact { samples });
    }
    if odd_tail {
        f.set_len(HEADER_BYTES + samples * frame_bytes)?;
    }
    write_sizes(&mut f, encoding, values)?;
    f.flush()?;
    f.sync_all()?;
    Ok(RepairOutcome::Repaired { samples })
}

#[cfg(test)]
mod tests {

    use super::*;
    use audio_codec_algorithms::decode_ulaw;
    use std::io::Cursor;

    /// cargo-fuzz `wav_repair`: a sample rate whose byte rate overflows u32 wrapped to a match,
    /// and the "repaired" file was one no WAV reader takes.
    #[test]
    fn a_byte_rate_that_overflows_is_not_our_layout() {
        let mut h = [0u8; 44];
        h[..4].copy_from_slice(b"RIFF");
        h[8..16].copy_from_slice(b"WAVEfmt ");
        h[16..20].copy_from_slice(&16u32.to_le_bytes());
        h[20..22].copy_from_slice(&1u16.to_le_bytes());
        h[22..24].copy_from_slice(&1u16.to_le_bytes());
        h[24..28].copy_from_slice(&0x8000_1F40u32.to_le_bytes());
        h[28..32].copy_from_slice(&0x0000_3E80u32.to_le_bytes());
        h[32..34].copy_from_slice(&2u16.to_le_bytes());
        h[34..36].copy_from_slice(&16u16.to_le_bytes());
        h[36..40].copy_from_slice(b"data");
        assert!(check_layout(&h).is_err());
        // The same layout at 8 kHz is ours.
        h[24..28].copy_from_slice(&8000u32.to_le_bytes());
        assert!(check_layout(&h).is_ok());
    }

    fn ramp(start: i32, len: usize) -> Vec<i16> {
        (0..len as i32)
            .map(|i| ((start + i) % 30000) as i16)
            .collect()
    }

    fn read_back(bytes: &[u8]) -> (hound::WavSpec, Vec<i16>) {
        let r = hound::WavReader::new(Cursor::new(bytes.to_vec())).unwrap();
        let spec = r.spec();
        let s = r.into_samples::<i16>().map(|s| s.unwrap()).collect();
        (spec, s)
    }

    fn data_size(bytes: &[u8]) -> u32 {
        u32::from_le_bytes(bytes[40..44].try_into().unwrap())
    }
    fn riff_size(bytes: &[u8]) -> u32 {
        u32::from_le_bytes(bytes[4..8].try_into().unwrap())
    }

    #[test]
    fn created_file_is_valid_empty_wav() {
        let w = WavWriter::create(Cursor::new(Vec::new()), 8000).unwrap();
        let bytes = w.storage.get_ref().clone();
        assert_eq!(bytes.len(), 44);
        assert_eq!(riff_size(&bytes), 36);
        assert_eq!(data_size(&bytes), 0);
        let (spec, s) = read_back(&bytes);
        assert_eq!(spec.channels, 1);
        assert_eq!(spec.sample_rate, 8000);
        assert_eq!(spec.bits_per_sample, 16);
        assert_eq!(spec.sample_format, hound::SampleFormat::Int);
        assert!(s.is_empty());
    }

    #[test]
    fn stereo_frames_are_interleaved_and_trimmed_by_frame() {
        let mut w =
            WavWriter::create_channels(Cursor::new(Vec::new()), 8000, WavEncoding::Pcm16, 2)
                .unwrap();
        let frames: Vec<i16> = (0..20).flat_map(|i| [i, -i]).collect();
        w.write(&frames).unwrap();
        assert_eq!(w.samples_written(), 20);
        let bytes = w.finalize(5..15).unwrap().into_inner();
        let (spec, s) = read_back(&bytes);
        assert_eq!(spec.channels, 2);
        assert_eq!(s.len(), 20);
        assert_eq!(&s[..4], &[5, -5, 6, -6]);
        assert_eq!(&s[18..], &[14, -14]);
        let h: [u8; 44] = bytes[..44].try_into().unwrap();
        assert_eq!(check_layout(&h).unwrap(), (WavEncoding::Pcm16, 2));
    }

    #[test]
    fn a_crashed_stereo_file_is_repaired_to_whole_frames() {
        let dir = std::env::temp_dir().join(format!("hark-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stereo.wav");
        let f = std::fs::File::create(&path).unwrap();
        let mut w = WavWriter::create_channels(f, 8000, WavEncoding::Pcm16, 2).unwrap();
        w.write(&[1; 200]).unwrap();
        w.sync().unwrap();
        drop(w);
        // Half a frame more, as a crash mid-write leaves it.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&[7, 0]).unwrap();
        drop(f);
        assert_eq!(
            repair_wav_file(&path).unwrap(),
            RepairOutcome::Repaired { samples: 100 }
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 44 + 400);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn header_matches_canonical_bytes() {
        let h = header_bytes(8000, 3).unwrap();
        let mut want = Vec::new();
        want.extend_from_slice(b"RIFF");
        want.extend_from_slice(&42u32.to_le_bytes());
        want.extend_from_slice(b"WAVEfmt ");
        want.extend_from_slice(&[16, 0, 0, 0, 1, 0, 1, 0]);
        want.extend_from_slice(&8000u32.to_le_bytes());
        want.extend_from_slice(&16000u32.to_le_bytes());
        want.extend_from_slice(&[2, 0, 16, 0]);
        want.extend_from_slice(b"data");
        want.extend_from_slice(&6u32.to_le_bytes());
        assert_eq!(h.to_vec(), want);
    }

    #[test]
    fn write_buffers_until_capacity_then_writes() {
        let mut w = WavWriter::create(Cursor::new(Vec::new()), 8000).unwrap();
        let cap = w.buf.capacity();
        w.write(&[1; 160]).unwrap();
        assert_eq!(
            w.storage.get_ref().len(),
            44,
            "160 samples stay in the buffer"
        );
        w.write(&[1; 4096]).unwrap(); // 4256 samples > 4096-sample buffer
        assert_eq!(w.storage.get_ref().len(), 44 + BUFFER_BYTES);
        assert_eq!(w.samples_written(), 4256);
        assert_eq!(w.buf.capacity(), cap, "buffer never reallocates");
    }

    #[test]
    fn header_rewritten_every_sync_every_samples() {
        let mut w = WavWriter::create(Cursor::new(Vec::new()), 8000)
            .unwrap()
            .with_sync_every(1600);
        for i in 0..9 {
            w.write(&ramp(i * 160, 160)).unwrap();
        }
        // 1440 samples: not yet synced
        assert_eq!(data_size(w.storage.get_ref()), 0);
        w.write(&ramp(1440, 160)).unwrap();
        let bytes = w.storage.get_ref().clone();
        assert_eq!(data_size(&bytes), 3200);
        assert_eq!(riff_size(&bytes), 3236);
        assert_eq!(bytes.len(), 44 + 3200);
        let (_, s) = read_back(&bytes);
        assert_eq!(s, ramp(0, 1600));
    }

    #[test]
    fn default_sync_every_is_five_seconds() {
        let mut w = WavWriter::create(Cursor::new(Vec::new()), 8000).unwrap();
        for i in 0..249 {
            w.write(&ramp(i * 160, 160)).unwrap();
        }
        assert_eq!(
            data_size(w.storage.get_ref()),
            0,
            "4.98 s: header not rewritten yet"
        );
        w.write(&ramp(249 * 160, 160)).unwrap();
        assert_eq!(data_size(w.storage.get_ref()), 80000);
    }

    #[test]
    fn header_valid_after_every_sync_mid_recording() {
        let mut w = WavWriter::create(Cursor::new(Vec::new()), 8000).unwrap();
        let mut written = 0u64;
        for round in 0..5 {
            let n = 160 * (round + 1) + 7;
            w.write(&ramp(written as i32, n)).unwrap();
            written += n as u64;
            w.sync().unwrap();
            let bytes = w.storage.get_ref().clone();
            assert_eq!(u64::from(data_size(&bytes)), written * 2);
            assert_eq!(bytes.len() as u64, 44 + written * 2);
            let (_, s) = read_back(&bytes);
            assert_eq!(s, ramp(0, written as usize));
        }
    }

    #[test]
    fn finalize_whole_range_keeps_everything() {
        let mut w = WavWriter::create(Cursor::new(Vec::new()), 8000).unwrap();
        w.write(&ramp(0, 10_000)).unwrap();
        let c = w.finalize(0..u64::MAX).unwrap();
        let (_, s) = read_back(c.get_ref());
        assert_eq!(s, ramp(0, 10_000));
    }

    #[test]
    fn finalize_moves_kept_range_to_front_sample_exact() {
        let mut w = WavWriter::create(Cursor::new(Vec::new()), 8000).unwrap();
        // 3 buffers and a bit, so the move runs over several chunks.
        let all = ramp(0, 20_000);
        w.write(&all).unwrap();
        let c = w.finalize(1_234..17_001).unwrap();
        let bytes = c.into_inner();
        assert_eq!(bytes.len(), 44 + 2 * (17_001 - 1_234));
        assert_eq!(data_size(&bytes) as usize, 2 * (17_001 - 1_234));
        let (_, s) = read_back(&bytes);
        assert_eq!(s, all[1_234..17_001].to_vec());
    }

    #[test]
    fn finalize_clamps_keep_to_written() {
        let mut w = WavWriter::create(Cursor::new(Vec::new()), 8000).unwrap();
        w.write(&ramp(0, 500)).unwrap();
        let (_, s) = read_back(w.finalize(400..9_000).unwrap().get_ref());
        assert_eq!(s, ramp(400, 100));
        let mut w = WavWriter::create(Cursor::new(Vec::new()), 8000).unwrap();
        w.write(&ramp(0, 500)).unwrap();
        let c = w.finalize(700..900).unwrap();
        assert_eq!(c.get_ref().len(), 44);
        assert_eq!(data_size(c.get_ref()), 0);
    }

    #[test]
    fn finalize_empty_range_leaves_valid_empty_wav() {
        let mut w = WavWriter::create(Cursor::new(Vec::new()), 8000).unwrap();
        w.write(&ramp(0, 3000)).unwrap();
        let c = w.finalize(0..0).unwrap();
        assert_eq!(c.get_ref().len(), 44);
        let (_, s) = read_back(c.get_ref());
        assert!(s.is_empty());
    }

    #[test]
    fn write_beyond_32_bit_size_is_refused() {
        let mut w = WavWriter::create(Cursor::new(Vec::new()), 8000).unwrap();
        w.samples = MAX_DATA_BYTES / 2; // pretend the file is full
        assert!(matches!(w.write(&[0; 1]), Err(WavError::TooLong { .. })));
    }

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("record-engine-{}-{name}.wav", std::process::id()))
    }

    #[test]
    fn repair_rewrites_sizes_from_file_length() {
        let p = temp_path("repair");
        let mut bytes = header_bytes(8000, 0).unwrap().to_vec();
        let samples = ramp(5, 8000);
        for s in &samples {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(
            repair_wav_file(&p).unwrap(),
            RepairOutcome::Repaired { samples: 8000 }
        );
        let r = hound::WavReader::open(&p).unwrap();
        assert_eq!(r.len(), 8000);
        let back: Vec<i16> = r.into_samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(back, samples);
        // Second run: nothing to do.
        assert_eq!(
            repair_wav_file(&p).unwrap(),
            RepairOutcome::Intact { samples: 8000 }
        );
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn repair_drops_trailing_half_sample() {
        let p = temp_path("odd");
        let mut bytes = header_bytes(8000, 2).unwrap().to_vec();
        bytes.extend_from_slice(&[1, 0, 2, 0, 9]);
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(
            repair_wav_file(&p).unwrap(),
            RepairOutcome::Repaired { samples: 2 }
        );
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 48);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn repair_of_file_left_by_writer_without_final_sync() {
        // What a kill -9 leaves: header synced at 1600 samples, more data flushed after it.
        let p = temp_path("crash");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        let mut w = WavWriter::create(f, 8000).unwrap().with_sync_every(6000);
        w.write(&ramp(0, 1600)).unwrap();
        w.sync().unwrap();
        // 4400 more: 4096 overflow the buffer to disk, 304 stay buffered, header not due yet.
        w.write(&ramp(1600, 4400)).unwrap();
        drop(w); // no finalize, buffer lost: the process died
        let r = hound::WavReader::open(&p).unwrap();
        assert_eq!(r.len(), 1600, "header is playable before repair");
        drop(r);
        let on_disk = (std::fs::metadata(&p).unwrap().len() - 44) / 2;
        assert_eq!(on_disk, 1600 + 4096);
        assert_eq!(
            repair_wav_file(&p).unwrap(),
            RepairOutcome::Repaired { samples: on_disk }
        );
        let back: Vec<i16> = hound::WavReader::open(&p)
            .unwrap()
            .into_samples::<i16>()
            .map(|s| s.unwrap())
            .collect();
        assert_eq!(back, ramp(0, on_disk as usize));
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn repair_rejects_foreign_files() {
        let p = temp_path("foreign");
        std::fs::write(&p, b"short").unwrap();
        assert!(matches!(repair_wav_file(&p), Err(WavError::NotOurWav(_))));
        let mut three = header_bytes(8000, 0).unwrap();
        three[22] = 3;
        std::fs::write(&p, three).unwrap();
        assert!(matches!(
            repair_wav_file(&p),
            Err(WavError::NotOurWav("fmt channels is not 1 or 2"))
        ));
        let mut stereo_mono_block = header_bytes(8000, 0).unwrap();
        stereo_mono_block[22] = 2;
        std::fs::write(&p, stereo_mono_block).unwrap();
        assert!(matches!(
            repair_wav_file(&p),
            Err(WavError::NotOurWav(
                "fmt block align does not fit the format"
            ))
        ));
        let mut list = header_bytes(8000, 0).unwrap();
        list[36..40].copy_from_slice(b"LIST");
        std::fs::write(&p, list).unwrap();
        assert!(matches!(
            repair_wav_file(&p),
            Err(WavError::Unreadable(ReadError::NoData))
        ));
        let mut long_fmt = header_bytes(8000, 0).unwrap();
        long_fmt[16] = 18;
        std::fs::write(&p, long_fmt).unwrap();
        assert!(matches!(
            repair_wav_file(&p),
            Err(WavError::Unreadable(ReadError::NoData))
        ));
        let mut float = header_bytes(8000, 0).unwrap();
        float[20] = 3;
        std::fs::write(&p, float).unwrap();
        assert!(matches!(
            repair_wav_file(&p),
            Err(WavError::Unreadable(ReadError::Unsupported {
                tag: 3,
                bits: 16,
                ..
            }))
        ));
        let mut pcm8 = header_bytes(8000, 0).unwrap();
        pcm8[34] = 8;
        std::fs::write(&p, pcm8).unwrap();
        assert!(matches!(
            repair_wav_file(&p),
            Err(WavError::NotOurWav(
                "fmt audio format is not 16-bit PCM (1) or µ-law (7)"
            ))
        ));
        let mut ulaw16 = encoded_header_bytes(WavEncoding::Ulaw, 8000, 0).unwrap();
        ulaw16[34] = 16;
        std::fs::write(&p, ulaw16).unwrap();
        assert!(matches!(
            repair_wav_file(&p),
            Err(WavError::Unreadable(ReadError::Unsupported {
                tag: 7,
                bits: 16,
                ..
            }))
        ));
        let mut align = header_bytes(8000, 0).unwrap();
        align[32] = 4;
        std::fs::write(&p, align).unwrap();
        assert!(matches!(
            repair_wav_file(&p),
            Err(WavError::NotOurWav(
                "fmt block align does not fit the format"
            ))
        ));
        let mut byte_rate = header_bytes(8000, 0).unwrap();
        byte_rate[28] ^= 1;
        std::fs::write(&p, byte_rate).unwrap();
        assert!(matches!(
            repair_wav_file(&p),
            Err(WavError::NotOurWav(
                "fmt byte rate is not sample rate * block align"
            ))
        ));
        std::fs::remove_file(&p).unwrap();
    }

    /// A µ-law WAV's header fields and samples, read independently of the writer.
    fn ulaw_back(bytes: &[u8]) -> Vec<i16> {
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        assert_eq!(&bytes[0..4], b"RIFF");
        assert_eq!((u16_at(20), u16_at(22)), (7, 1), "µ-law, mono");
        assert_eq!((u32_at(24), u32_at(28)), (8000, 8000), "rate, byte rate");
        assert_eq!((u16_at(32), u16_at(34)), (1, 8), "block align, bits");
        assert_eq!(u32_at(40) as usize, bytes.len() - 44, "data size");
        assert_eq!(u32_at(4) as usize, bytes.len() - 8, "RIFF size");
        bytes[44..].iter().map(|&b| decode_ulaw(b)).collect()
    }

    #[test]
    fn ulaw_writer_stores_one_byte_per_sample_and_trims_sample_exact() {
        let pcm = ramp(-3000, 20_000);
        let expect: Vec<i16> = pcm.iter().map(|&s| decode_ulaw(encode_ulaw(s))).collect();
        let mut w =
            WavWriter::create_encoded(Cursor::new(Vec::new()), 8000, WavEncoding::Ulaw).unwrap();
        for chunk in pcm.chunks(160) {
            w.write(chunk).unwrap();
        }
        assert_eq!(w.samples_written(), 20_000);
        let out = w.finalize(1234..19_001).unwrap().into_inner();
        assert_eq!(out.len(), 44 + 17_767);
        assert_eq!(ulaw_back(&out), expect[1234..19_001]);
        // µ-law in, µ-law out: a PCMU caller's bytes survive the decode/encode round trip
        // (but for µ-law's negative zero, 0x7F, which comes back as positive zero, 0xFF).
        for b in 0..=255u8 {
            let want = if b == 0x7F { 0xFF } else { b };
            assert_eq!(encode_ulaw(decode_ulaw(b)), want, "byte {b:#04x}");
        }
        assert_eq!(Wav::parse(&out).unwrap().samples(), expect[1234..19_001]);
    }

    #[test]
    fn ulaw_file_left_open_by_a_crash_is_repaired() {
        let p = temp_path("ulaw-crash");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        let mut w = WavWriter::create_encoded(f, 8000, WavEncoding::Ulaw)
            .unwrap()
            .with_sync_every(20_000);
        w.write(&ramp(0, 1600)).unwrap();
        w.sync().unwrap();
        // 9000 more: 8192 overflow the buffer to disk, the rest is lost with the process.
        w.write(&ramp(1600, 9000)).unwrap();
        drop(w);
        let on_disk = std::fs::metadata(&p).unwrap().len() - 44;
        assert_eq!(on_disk, 1600 + 8192);
        assert_eq!(
            repair_wav_file(&p).unwrap(),
            RepairOutcome::Repaired { samples: on_disk }
        );
        let back = ulaw_back(&std::fs::read(&p).unwrap());
        let expect: Vec<i16> = ramp(0, on_disk as usize)
            .iter()
            .map(|&s| decode_ulaw(encode_ulaw(s)))
            .collect();
        assert_eq!(back, expect);
        assert_eq!(
            repair_wav_file(&p).unwrap(),
            RepairOutcome::Intact { samples: on_disk }
        );
        std::fs::remove_file(&p).unwrap();
    }
}
