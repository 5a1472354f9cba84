//! MP3 on first request (SPEC §6.3): the WAV is streamed through LAME into `{sid}.mp3.tmp`,
//! renamed to `{sid}.mp3` beside the WAV, and concurrent first requests share one encode.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use mp3lame_encoder::{Bitrate, Builder, FlushGap, InterleavedPcm, Mode, MonoPcm, Quality};
use thiserror::Error;
use tokio::sync::watch;

use crate::metrics::Metrics;

#[derive(Debug, Error)]
pub enum Mp3Error {
    #[error("I/O while encoding: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a WAV file: {0}")]
    NotWav(&'static str),
    #[error("WAV {field} {value} is not supported")]
    Unsupported { field: &'static str, value: u32 },
    #[error("LAME: {0}")]
    Lame(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Pcm16,
    Ulaw,
    Alaw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WavFormat {
    encoding: Encoding,
    channels: u16,
    sample_rate: u32,
    /// Bytes of samples; `u64::MAX` when the header does not know (read to end of file).
    data_len: u64,
}

impl WavFormat {
    fn bytes_per_frame(&self) -> usize {
        let per_sample = if self.encoding == Encoding::Pcm16 {
            2
        } else {
            1
        };
        per_sample * usize::from(self.channels)
    }
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn read_u16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_le_bytes)
}

fn skip<R: Read>(r: &mut R, n: u64) -> Result<(), Mp3Error> {
    let skipped = std::io::copy(&mut r.take(n), &mut std::io::sink())?;
    if skipped < n {
        return Err(Mp3Error::NotWav("chunk runs past the end of the file"));
    }
    Ok(())
}

/// Reads the RIFF header up to the start of the `data` samples.
fn read_header<R: Read>(r: &mut R) -> Result<WavFormat, Mp3Error> {
    let mut riff = [0u8; 12];
    r.read_exact(&mut riff)
        .map_err(|_| Mp3Error::NotWav("shorter than a RIFF header"))?;
    if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Err(Mp3Error::NotWav("no RIFF/WAVE signature"));
    }
    let mut fmt: Option<(Encoding, u16, u32)> = None;
    loop {
        let mut ch = [0u8; 8];
        r.read_exact(&mut ch)
            .map_err(|_| Mp3Error::NotWav("no data chunk"))?;
        let size = read_u32(&ch, 4);
        match &ch[0..4] {
            b"fmt " => {
                let mut body = vec![0u8; (size as usize).min(64)];
                r.read_exact(&mut body)
                    .map_err(|_| Mp3Error::NotWav("fmt chunk truncated"))?;
                skip(r, u64::from(size) - body.len() as u64 + u64::from(size & 1))?;
                fmt = Some(parse_fmt(&body)?);
            }
            b"data" => {
                let (encoding, channels, sample_rate) =
                    fmt.ok_or(Mp3Error::NotWav("data chunk before fmt chunk"))?;
                // A header never finalised says 0 (or the streaming placeholder 0xFFFFFFFF).
                let data_len = match size {
                    0 | u32::MAX => u64::MAX,
                    n => u64::from(n),
                };
                return Ok(WavFormat {
                    encoding,
                    channels,
                    sample_rate,
                    data_len,
                });
            }
            _ => skip(r, u64::from(size) + u64::from(size & 1))?,
        }
    }
}

fn parse_fmt(b: &[u8]) -> Result<(Encoding, u16, u32), Mp3Error> {
    if b.len() < 16 {
        return Err(Mp3Error::NotWav("fmt chunk shorter than 16 bytes"));
    }
    let mut tag = read_u16(b, 0);
    if tag == 0xFFFE {
        // WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID.
        tag = read_u16(b, 24);
    }
    let channels = read_u16(b, 2);
    let sample_rate = read_u32(b, 4);
    let bits = read_u16(b, 14);
    let encoding = match (tag, bits) {
        (1, 16) => Encoding::Pcm16,
        (7, 8) => Encoding::Ulaw,
        (6, 8) => Encoding::Alaw,
        (1 | 6 | 7, b) => {
            return Err(Mp3Error::Unsupported {
                field: "bits per sample",
                value: u32::from(b),
            })
        }
        (t, _) => {
            return Err(Mp3Error::Unsupported {
                field: "format tag",
                value: u32::from(t),
            })
        }
    };
    if !(1..=2).contains(&channels) {
        return Err(Mp3Error::Unsupported {
            field: "channel count",
            value: u32::from(channels),
        });
    }
    if !(8_000..=48_000).contains(&sample_rate) {
        return Err(Mp3Error::Unsupported {
            field: "sample rate",
            value: sample_rate,
        });
    }
    Ok((encoding, channels, sample_rate))
}

/// G.711 µ-law to linear (ITU-T G.711 table; 0x80 → 32124).
fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let exponent = (u >> 4) & 0x07;
    let magnitude = ((i32::from(u & 0x0F) << 3) + 0x84) << exponent;
    let sample = magnitude - 0x84;
    (if u & 0x80 != 0 { -sample } else { sample }) as i16
}

/// G.711 A-law to linear.
fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mut t = (i32::from(a & 0x0F) << 4) + 8;
    if exponent != 0 {
        t = (t + 0x100) << (exponent - 1);
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// Reads until `buf` is full or the input ends.
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

/// LAME output rates (MPEG 1, 2, 2.5); other inputs are resampled by LAME.
fn output_rate(rate: u32) -> Option<std::num::NonZeroU32> {
    const RATES: [u32; 9] = [
        8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000,
    ];
    RATES
        .contains(&rate)
        .then(|| std::num::NonZeroU32::new(rate))
        .flatten()
}

/// 32 kbps per channel for narrowband (SPEC §6.3: 8 kHz mono → 32 kbps), more for wider bands.
fn bitrate(rate: u32, channels: u16) -> Bitrate {
    match (rate <= 12_000, channels) {
        (true, 1) => Bitrate::Kbps32,
        (true, _) => Bitrate::Kbps64,
        (false, 1) => Bitrate::Kbps64,
        (false, _) => Bitrate::Kbps128,
    }
}

/// Encodes a WAV stream to MP3 (CBR, no ID3 tag); returns the sample frames encoded.
///
/// The first frame is LAME's "Info" tag (written over LAME's placeholder once the stream is
/// flushed, hence `Seek`): it carries the frame count and the encoder delay and padding, so
/// gapless decoders (ffmpeg, mpg123, LAME's own) give back exactly the WAV's duration.
pub fn encode_wav<R: Read, W: Write + Seek>(mut input: R, out: &mut W) -> Result<u64, Mp3Error> {
    let stream_start = out.stream_position()?;
    let fmt = read_header(&mut input)?;
    let lame = |e: mp3lame_encoder::BuildError| Mp3Error::Lame(e.to_string());
    let mut b = Builder::new().ok_or(Mp3Error::Lame("cannot allocate encoder".into()))?;
    b.set_num_channels(fmt.channels as u8).map_err(lame)?;
    b.set_sample_rate(fmt.sample_rate).map_err(lame)?;
    b.set_output_sample_rate(output_rate(fmt.sample_rate))
        .map_err(lame)?;
    b.set_brate(bitrate(fmt.sample_rate, fmt.channels))
        .map_err(lame)?;
    let mode = if fmt.channels == 1 {
        Mode::Mono
    } else {
        Mode::JointStereo
    };
    b.set_mode(mode).map_err(lame)?;
    b.set_quality(Quality::Good).map_err(lame)?;
    b.set_to_write_vbr_tag(true).map_err(lame)?;
    let mut enc = b.build().map_err(lame)?;

    let frame = fmt.bytes_per_frame();
    let mut raw = vec![0u8; frame * 8192];
    let mut pcm: Vec<i16> = Vec::with_capacity(2 * 8192);
    let mut mp3: Vec<u8> = Vec::new();
    let mut data = input.take(fmt.data_len);
    let mut frames: u64 = 0;
    loop {
        let n = fill(&mut data, &mut raw)?;
        // A truncated last frame (crash mid-write) is dropped.
        let whole = n - n % frame;
        if whole == 0 {
            break;
        }
        pcm.clear();
        match fmt.encoding {
            Encoding::Pcm16 => pcm.extend(
                raw[..whole]
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]])),
            ),
            Encoding::Ulaw => pcm.extend(raw[..whole].iter().map(|&u| ulaw_to_linear(u))),
            Encoding::Alaw => pcm.extend(raw[..whole].iter().map(|&a| alaw_to_linear(a))),
        }
        let per_channel = pcm.len() / usize::from(fmt.channels);
        frames += per_channel as u64;
        mp3.clear();
        mp3.reserve(mp3lame_encoder::max_required_buffer_size(per_channel));
        let written = if fmt.channels == 1 {
            enc.encode_to_vec(MonoPcm(&pcm), &mut mp3)
        } else {
            enc.encode_to_vec(InterleavedPcm(&pcm), &mut mp3)
        };
        written.map_err(|e| Mp3Error::Lame(e.to_string()))?;
        out.write_all(&mp3)?;
        if n < raw.len() {
            break;
        }
    }
    mp3.clear();
    mp3.reserve(7200);
    enc.flush_to_vec::<FlushGap>(&mut mp3)
        .map_err(|e| Mp3Error::Lame(e.to_string()))?;
    out.write_all(&mp3)?;
    mp3.clear();
    mp3.reserve(enc.lame_tag_size());
    if enc.lame_tag_encode_to_vec(&mut mp3).is_some() {
        let end = out.stream_position()?;
        out.seek(SeekFrom::Start(stream_start))?;
        out.write_all(&mp3)?;
        out.seek(SeekFrom::Start(end))?;
    }
    out.flush()?;
    Ok(frames)
}

/// How an encode ended, as every waiter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mp3Failure {
    /// The WAV is gone (deleted meanwhile).
    WavMissing,
    Failed,
}

type Outcome = Option<Result<(), Mp3Failure>>;

/// Encodes in flight, by recording SID.
#[derive(Clone, Default)]
pub struct Mp3Cache {
    inflight: Arc<Mutex<HashMap<String, watch::Receiver<Outcome>>>>,
}

impl Mp3Cache {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, watch::Receiver<Outcome>>> {
        // The map stays consistent even if a holder panicked: entries are whole values.
        self.inflight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes sure `mp3` exists, encoding `wav` at most once at a time per SID. The encode runs
    /// in its own task, so a client that hangs up does not abandon it half-way.
    pub async fn ensure(
        &self,
        sid: &str,
        wav: PathBuf,
        mp3: PathBuf,
        metrics: Arc<Metrics>,
    ) -> Result<(), Mp3Failure> {
        if tokio::fs::try_exists(&mp3).await.unwrap_or(false) {
            return Ok(());
        }
        let mut rx = {
            let mut map = self.lock();
            match map.get(sid) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    map.insert(sid.to_string(), rx.clone());
                    let this = self.clone();
                    let sid = sid.to_string();
                    tokio::spawn(async move {
                        let job =
                            tokio::task::spawn_blocking(move || encode_file(&wav, &mp3, &metrics));
                        let outcome = job.await.unwrap_or(Err(Mp3Failure::Failed));
                        tx.send_replace(Some(outcome));
                        this.lock().remove(&sid);
                    });
                    rx
                }
            }
        };
        let outcome = rx.wait_for(Option::is_some).await.map(|v| *v);
        match outcome {
            Ok(Some(r)) => r,
            _ => Err(Mp3Failure::Failed),
        }
    }

    /// Waits for the encode of `sid` that is running now, if any (DELETE must not race it).
    pub async fn wait_idle(&self, sid: &str) {
        let rx = self.lock().get(sid).cloned();
        if let Some(mut rx) = rx {
            let _ = rx.wait_for(Option::is_some).await;
        }
    }
}

fn encode_file(wav: &Path, mp3: &Path, metrics: &Metrics) -> Result<(), Mp3Failure> {
    // A request that looked just before the previous encode renamed its file.
    if mp3.exists() {
        return Ok(());
    }
    let disk_error = |what: &str, e: &dyn std::fmt::Display| {
        Metrics::add(&metrics.disk_errors, 1);
        tracing::error!(path = %mp3.display(), error = %e, "{what}");
        Mp3Failure::Failed
    };
    let input = match std::fs::File::open(wav) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Mp3Failure::WavMissing),
        Err(e) => return Err(disk_error("opening the WAV to encode", &e)),
    };
    let tmp = mp3.with_extension("mp3.tmp");
    let out = std::fs::File::create(&tmp).map_err(|e| disk_error("creating the MP3", &e))?;
    Metrics::add(&metrics.mp3_encodes, 1);
    let started = std::time::Instant::now();
    let mut writer = BufWriter::new(out);
    match encode_wav(BufReader::new(input), &mut writer) {
        Ok(frames) => {
            drop(writer);
            std::fs::rename(&tmp, mp3).map_err(|e| disk_error("renaming the MP3", &e))?;
            tracing::info!(path = %mp3.display(), frames, ms = started.elapsed().as_millis() as u64, "MP3 encoded");
            Ok(())
        }
        Err(e) => {
            drop(writer);
            let _ = std::fs::remove_file(&tmp);
            match e {
                Mp3Error::Io(e) => Err(disk_error("encoding the MP3", &e)),
                e => {
                    tracing::error!(path = %wav.display(), error = %e, "WAV cannot be encoded");
                    Err(Mp3Failure::Failed)
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "mp3_tests.rs"]
mod tests;
