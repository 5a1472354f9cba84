use super::*;

/// A canonical 44-byte-header WAV.
pub(crate) fn wav(tag: u16, bits: u16, rate: u32, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    let block = bits / 8;
    v.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    v.extend_from_slice(&block.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// `secs` of a 440 Hz tone plus a little noise, 8 kHz 16-bit mono PCM.
pub(crate) fn tone_pcm(secs: u32) -> Vec<u8> {
    let mut seed: u32 = 1;
    (0..secs * 8000)
        .flat_map(|i| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let noise = ((seed >> 16) as i32 & 0x3FF) - 512;
            let s = (f64::from(i) * 440.0 * std::f64::consts::TAU / 8000.0).sin() * 8000.0;
            ((s as i32 + noise) as i16).to_le_bytes()
        })
        .collect()
}

/// Walks MPEG audio frame headers; returns (frames, samples per channel, sample rate).
pub(crate) fn mp3_frames(b: &[u8]) -> Option<(usize, u64, u32)> {
    const BR1: [u32; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const BR2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let (mut at, mut frames, mut samples, mut rate) = (0usize, 0usize, 0u64, 0u32);
    while at + 4 <= b.len() {
        let h = &b[at..at + 4];
        if h[0] != 0xFF || h[1] & 0xE0 != 0xE0 || (h[1] >> 1) & 3 != 1 {
            return None; // not a Layer III frame where one must start
        }
        let version = (h[1] >> 3) & 3;
        let br_idx = usize::from(h[2] >> 4);
        let sr_idx = usize::from((h[2] >> 2) & 3);
        let pad = u32::from((h[2] >> 1) & 1);
        let (rates, br, per_frame, k) = match version {
            3 => ([44_100, 48_000, 32_000], BR1.get(br_idx)?, 1152, 144),
            2 => ([22_050, 24_000, 16_000], BR2.get(br_idx)?, 576, 72),
            0 => ([11_025, 12_000, 8_000], BR2.get(br_idx)?, 576, 72),
            _ => return None,
        };
        rate = *rates.get(sr_idx)?;
        let len = (k * br * 1000 / rate + pad) as usize;
        if len < 4 {
            return None;
        }
        at += len;
        frames += 1;
        samples += per_frame;
    }
    Some((frames, samples, rate))
}

#[test]
fn header_reader_skips_unknown_chunks_and_finds_data() {
    let mut v = wav(1, 16, 8000, &[1, 0, 2, 0]);
    // Insert a LIST chunk with an odd size (padded) between fmt and data.
    let list = [b"LIST".as_slice(), &3u32.to_le_bytes(), b"abc\0"].concat();
    v.splice(36..36, list);
    let mut r = &v[..];
    let h = read_wav_header(&mut r).unwrap();
    assert_eq!(
        (h.channels, h.sample_rate, h.data_len, h.data_offset),
        (1, 8000, Some(4), 56)
    );
    assert_eq!(r, &[1, 0, 2, 0]);
}

#[test]
fn unsupported_wavs_name_the_field() {
    let e = read_wav_header(&mut &wav(2, 4, 8000, &[])[..]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "not a WAV file: WAV format tag 2 with 4 bits per sample (Hark reads PCM, float, µ-law \
         and A-law)"
    );
    let e = read_wav_header(&mut &wav(1, 16, 4000, &[])[..]).unwrap_err();
    assert_eq!(e.to_string(), "WAV sample rate 4000 is not supported");
    let mut surround = wav(1, 16, 8000, &[]);
    surround[22] = 6;
    let e = read_wav_header(&mut &surround[..]).unwrap_err();
    assert_eq!(e.to_string(), "WAV channel count 6 is not supported");
    assert!(matches!(
        read_wav_header(&mut &b"RIFF\0\0\0\0WAVX"[..]),
        Err(Mp3Error::NotWav(ReadError::NotWav))
    ));
    // Truncated in the middle of a chunk header: an error, not a panic.
    let v = wav(1, 16, 8000, &[0; 8]);
    assert!(read_wav_header(&mut &v[..30]).is_err());
}

#[test]
fn a_read_failure_is_an_io_error_not_a_bad_file() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("EIO"))
        }
    }
    assert!(matches!(read_wav_header(&mut Broken), Err(Mp3Error::Io(_))));
}

#[test]
fn float_and_8_bit_wavs_encode_too() {
    // Every format the WAV reader decodes reaches LAME as 16-bit samples.
    let f32s: Vec<u8> = (0..8000)
        .flat_map(|i| ((f64::from(i) * 0.3).sin() as f32 * 0.5).to_le_bytes())
        .collect();
    let (frames, mp3) = encode(&wav(3, 32, 8000, &f32s));
    assert_eq!(frames, 8000);
    assert!(mp3_frames(&mp3).is_some());
    let (frames, _) = encode(&wav(1, 8, 8000, &[0x80; 4000]));
    assert_eq!(frames, 4000);
}

/// Encodes into memory.
fn encode(input: &[u8]) -> (u64, Vec<u8>) {
    let mut out = std::io::Cursor::new(Vec::new());
    let frames = encode_wav(input, &mut out).unwrap();
    (frames, out.into_inner())
}

/// The LAME "Info" tag of the first frame: (frames in the stream after it, encoder delay,
/// padding), read at the offsets the LAME tag format fixes.
fn lame_info(b: &[u8]) -> Option<(u32, u32, u32)> {
    let at = b.windows(4).take(64).position(|w| w == b"Info")?;
    let flags = u32::from_be_bytes(b.get(at + 4..at + 8)?.try_into().ok()?);
    if flags & 1 == 0 {
        return None;
    }
    let frames = u32::from_be_bytes(b.get(at + 8..at + 12)?.try_into().ok()?);
    // Info(4) flags(4) frames(4) bytes(4) toc(100) quality(4) = 120, then the LAME extension:
    // version(9) revision(1) lowpass(1) replay gain(8) ath(1) bitrate(1), then 24 bits.
    let lame = at + 120;
    if b.get(lame..lame + 4)? != b"LAME" {
        return None;
    }
    let d = b.get(lame + 21..lame + 24)?;
    let delay = (u32::from(d[0]) << 4) | (u32::from(d[1]) >> 4);
    let padding = (u32::from(d[1] & 0x0F) << 8) | u32::from(d[2]);
    Some((frames, delay, padding))
}

#[test]
fn eight_khz_mono_encodes_to_32kbps_mpeg25_frames_of_the_right_duration() {
    let input = wav(1, 16, 8000, &tone_pcm(3));
    let (frames, out) = encode(&input);
    assert_eq!(frames, 24_000);
    // No ID3 tag: the file opens with a frame sync.
    assert_eq!((out[0], out[1] & 0xE0), (0xFF, 0xE0));
    // MPEG 2.5 (version bits 00), Layer III, 32 kbps (index 4), 8 kHz (index 2).
    assert_eq!((out[1] >> 3) & 3, 0);
    assert_eq!(out[2] >> 4, 4);
    assert_eq!((out[2] >> 2) & 3, 2);
    let (n, samples, rate) = mp3_frames(&out).expect("a clean chain of frames");
    assert_eq!(rate, 8000);
    // LAME adds encoder delay and padding: at most a few frames of 576 samples (plus the
    // Info frame).
    assert!(
        (24_000..=24_000 + 5 * 576).contains(&samples),
        "{samples} samples in {n} frames"
    );
    // The Info frame says what a gapless decoder trims: exactly the WAV's samples remain.
    let (tag_frames, delay, padding) = lame_info(&out).expect("a LAME Info tag");
    assert_eq!(tag_frames as usize, n - 1, "audio frames after the tag");
    assert!((529..2000).contains(&delay), "delay {delay}");
    assert_eq!(
        u64::from(tag_frames) * 576 - u64::from(delay + padding),
        24_000
    );
    // 32 kbps ≈ 4000 bytes per second.
    assert!(
        (11_000..=13_500).contains(&out.len()),
        "{} bytes",
        out.len()
    );
}

#[test]
fn ulaw_wav_encodes_and_unfinalised_data_size_reads_to_eof() {
    let mut input = wav(7, 8, 8000, &[0x7Fu8; 8000]);
    input[40..44].copy_from_slice(&0u32.to_le_bytes()); // as a crash leaves it
    let (frames, out) = encode(&input);
    assert_eq!(frames, 8000);
    assert!(mp3_frames(&out).is_some());
}

#[test]
fn truncated_last_sample_is_dropped() {
    let input = wav(1, 16, 8000, &[0, 0, 0, 0, 7]);
    assert_eq!(encode(&input).0, 2);
}

#[tokio::test]
async fn cache_encodes_once_then_serves_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let wav_path = dir.path().join("RE1.wav");
    std::fs::write(&wav_path, wav(1, 16, 8000, &tone_pcm(1))).unwrap();
    let mp3_path = dir.path().join("RE1.mp3");
    let cache = Mp3Cache::default();
    let metrics = Arc::new(Metrics::default());
    let jobs: Vec<_> = (0..8)
        .map(|_| {
            let (c, w, m, x) = (
                cache.clone(),
                wav_path.clone(),
                mp3_path.clone(),
                metrics.clone(),
            );
            tokio::spawn(async move { c.ensure("RE1", w, m, x).await })
        })
        .collect();
    for j in jobs {
        assert_eq!(j.await.unwrap(), Ok(()));
    }
    assert_eq!(
        metrics
            .mp3_encodes
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert!(mp3_path.exists() && !dir.path().join("RE1.mp3.tmp").exists());
    assert!(cache.lock().is_empty());
    let missing = cache
        .ensure(
            "RE2",
            dir.path().join("RE2.wav"),
            dir.path().join("RE2.mp3"),
            metrics.clone(),
        )
        .await;
    assert_eq!(missing, Err(Mp3Failure::WavMissing));
}

/// `cargo test --release -p http-api -- --ignored --nocapture mp3_encode_speed`
#[test]
#[ignore]
fn mp3_encode_speed_per_minute_of_audio() {
    let input = wav(1, 16, 8000, &tone_pcm(600));
    let mut out = std::io::Cursor::new(Vec::with_capacity(3_000_000));
    let t = std::time::Instant::now();
    encode_wav(&input[..], &mut out).unwrap();
    let out = out.into_inner();
    let per_minute = t.elapsed() / 10;
    println!(
        "MP3 encode: {per_minute:?} per minute of 8 kHz mono audio ({} bytes for 10 min)",
        out.len()
    );
}
