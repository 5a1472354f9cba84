//! MP3 on first request (SPEC §6.3): the WAV is streamed through LAME into `{sid}.mp3.tmp`,
//! renamed to `{sid}.mp3` beside the WAV, and concurrent first requests share one encode.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use mp3lame_encoder::{Bitrate, Builder, FlushGap, InterleavedPcm, Mode, MonoPcm, Quality};
use record_engine::wav::{read_header, ReadError, WavHeader};
use thiserror::Error;
use tokio::sync::watch;

use crate::metrics::Metrics;

#[derive(Debug, Error)]
pub enum Mp3Error {
    #[error("I/O while encoding: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a WAV file: {0}")]
    NotWav(ReadError),
    #[error("WAV {field} {value} is not supported")]
    Unsupported { field: &'static str, value: u32 },
    #[error("LAME: {0}")]
    Lame(String),
}

impl From<ReadError> for Mp3Error {
    /// A failed read is the disk's fault, not the file's.
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io(e) => Mp3Error::Io(e),
            e => Mp3Error::NotWav(e),
        }
    }
}

/// Reads the header (through the workspace's WAV reader) up to the start of the samples, and
/// checks that LAME can take the layout.
fn read_wav_header<R: Read>(r: &mut R) -> Result<WavHeader, Mp3Error> {
    let header = read_header(r)?;
    if !(1..=2).contains(&header.channels) {
        return Err(Mp3Error::Unsupported {
            field: "channel count",
            value: u32::from(header.channels),
        });
    }
    if !(8_000..=48_000).contains(&header.sample_rate) {
        return Err(Mp3Error::Unsupported {
            field: "sample rate",
            value: header.sample_rate,
        });
    }
    Ok(header)
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
    let fmt = read_wav_header(&mut input)?;
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

    let frame = fmt.frame_bytes();
    let mut raw = vec![0u8; frame * 8192];
    let mut pcm: Vec<i16> = Vec::with_capacity(2 * 8192);
    let mut mp3: Vec<u8> = Vec::new();
    // A header never finalised (crash, streaming writer) does not know: read to the end.
    let mut data = input.take(fmt.data_len.map_or(u64::MAX, u64::from));
    let mut frames: u64 = 0;
    loop {
        let n = fill(&mut data, &mut raw)?;
        // A truncated last frame (crash mid-write) is dropped.
        let whole = n - n % frame;
        if whole == 0 {
            break;
        }
        pcm.clear();
        fmt.format.decode_into(&raw[..whole], &mut pcm);
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
