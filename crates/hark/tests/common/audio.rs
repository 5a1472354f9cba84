//! Audio helpers: G.711 µ-law, WAV read/write, exact segment search, Goertzel, RMS, speech span.

use std::path::Path;

pub const RATE: usize = 8000;
/// Samples per 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;

/// ITU-T G.711 µ-law decode (the standard table: ±32124 full scale).
pub fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// ITU-T G.711 µ-law encode. `ulaw_decode(ulaw_encode(ulaw_decode(x))) == ulaw_decode(x)`.
pub fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    if s > CLIP {
        s = CLIP;
    }
    s += BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && (s & mask) == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !((sign | (exponent << 4) | mantissa) as u8)
}

pub fn decode_all(u: &[u8]) -> Vec<i16> {
    u.iter().map(|&b| ulaw_decode(b)).collect()
}

/// µ-law digital silence.
pub const ULAW_SILENCE: u8 = 0xFF;

/// Where the sample data of a RIFF/WAVE file is: (format tag, channels, rate, bits, data offset,
/// data length declared in the header).
#[derive(Debug, Clone, Copy)]
pub struct WavLayout {
    pub format: u16,
    pub channels: u16,
    pub rate: u32,
    pub bits: u16,
    pub data_offset: usize,
    pub data_len_declared: u32,
    pub riff_len_declared: u32,
}

pub fn wav_layout(bytes: &[u8]) -> Result<WavLayout, String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let le16 = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
    let le32 = |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let riff_len_declared = le32(4);
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = le32(pos + 4);
        let body = pos + 8;
        if id == b"fmt " {
            if body + 16 > bytes.len() {
                return Err("truncated fmt chunk".into());
            }
            fmt = Some((le16(body), le16(body + 2), le32(body + 4), le16(body + 14)));
        } else if id == b"data" {
            let (format, channels, rate, bits) = fmt.ok_or("data chunk before fmt chunk")?;
            return Ok(WavLayout {
                format,
                channels,
                rate,
                bits,
                data_offset: body,
                data_len_declared: len,
                riff_len_declared,
            });
        }
        pos = body + len as usize + (len as usize & 1);
    }
    Err("no data chunk".into())
}

/// Reads a mono 8 kHz WAV in PCM16 (format 1) or µ-law (format 7) as linear samples, using the
/// bytes actually present (not the header's length).
pub fn read_wav_any(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let l = wav_layout(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(l.channels, 1, "{}: channels", path.display());
    assert_eq!(l.rate, 8000, "{}: sample rate", path.display());
    let data = &bytes[l.data_offset..];
    let data = &data[..data.len().min(l.data_len_declared as usize)];
    match (l.format, l.bits) {
        (1, 16) => data
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect(),
        (7, 8) => decode_all(data),
        other => panic!("{}: unsupported WAV format {other:?}", path.display()),
    }
}

/// Raw µ-law bytes of a format-7 WAV.
pub fn read_ulaw_wav(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let l = wav_layout(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!((l.format, l.bits, l.channels, l.rate), (7, 8, 1, 8000));
    let end = (l.data_offset + l.data_len_declared as usize).min(bytes.len());
    bytes[l.data_offset..end].to_vec()
}

/// Writes 8 kHz mono µ-law WAV (format 7) — hound cannot write µ-law.
pub fn write_ulaw_wav(path: &Path, data: &[u8]) {
    let mut out = Vec::with_capacity(58 + data.len());
    let n = data.len() as u32;
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(4 + 26 + 12 + 8 + n + (n & 1)).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&18u32.to_le_bytes());
    out.extend_from_slice(&7u16.to_le_bytes()); // WAVE_FORMAT_MULAW
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(b"fact");
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(data);
    if n & 1 == 1 {
        out.push(0);
    }
    std::fs::write(path, out).expect("write µ-law wav");
}

/// Writes 8 kHz mono PCM16 WAV with hound.
pub fn write_pcm_wav(path: &Path, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for &s in samples {
        w.write_sample(s).expect("write sample");
    }
    w.finalize().expect("finalize wav");
}

/// Opens a recording with hound (which validates the header) and checks Hark's format: 16-bit
/// PCM mono 8 kHz. Returns the samples the header declares.
pub fn read_recording(path: &Path) -> Vec<i16> {
    let (rate, samples) = read_recording_at(path);
    assert_eq!(rate, 8000, "recording sample rate");
    samples
}

/// A recording of either rate (16 kHz for an Opus caller): its rate and samples.
pub fn read_recording_at(path: &Path) -> (u32, Vec<i16>) {
    let r = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("hound cannot open {}: {e}", path.display()));
    let spec = r.spec();
    assert_eq!(spec.channels, 1, "recording channels");
    assert!(
        [8000, 16000].contains(&spec.sample_rate),
        "recording sample rate {}",
        spec.sample_rate
    );
    assert_eq!(spec.bits_per_sample, 16, "recording bits per sample");
    assert_eq!(
        spec.sample_format,
        hound::SampleFormat::Int,
        "recording sample format"
    );
    let rate = spec.sample_rate;
    let samples = r
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("hound read {}: {e}", path.display()));
    (rate, samples)
}

/// Level (dBFS) of the `hz` component of `samples` at `rate` (Goertzel over the whole signal).
pub fn tone_dbfs(samples: &[i16], rate: u32, hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // Amplitude of a sine: 2 * sqrt(power) / N; its RMS is that over sqrt(2).
    let amplitude = 2.0 * power.max(0.0).sqrt() / samples.len().max(1) as f64;
    20.0 * (amplitude / std::f64::consts::SQRT_2).max(1e-9).log10()
}

/// The speech fixture (espeak, 8.16 s) as µ-law bytes; it is also what pcap/speech_pcmu.pcap
/// carries.
pub fn speech_ulaw() -> Vec<u8> {
    read_ulaw_wav(&crate::common::data_dir().join("speech_8k_ulaw.wav"))
}

/// A caller signal for finish-key tests: `lead` s of digital silence, speech fixture
/// [0, `speech_secs`), then `tail` s of silence. In µ-law.
pub struct Composite {
    pub ulaw: Vec<u8>,
    /// First and one-past-last sample above the speech threshold (20 ms frames, −45 dBFS).
    pub speech_start: usize,
    pub speech_end: usize,
}

pub fn composite(lead: f64, speech_secs: f64, tail: f64) -> Composite {
    let speech = speech_ulaw();
    let n = ((speech_secs * RATE as f64) as usize).min(speech.len());
    let mut ulaw = vec![ULAW_SILENCE; (lead * RATE as f64) as usize];
    ulaw.extend_from_slice(&speech[..n]);
    ulaw.extend(std::iter::repeat_n(
        ULAW_SILENCE,
        (tail * RATE as f64) as usize,
    ));
    let (speech_start, speech_end) =
        speech_span(&decode_all(&ulaw), -45.0).expect("fixture has speech");
    Composite {
        ulaw,
        speech_start,
        speech_end,
    }
}

/// Root-mean-square of `s` (0 for empty input).
pub fn rms(s: &[i16]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    (s.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>() / s.len() as f64).sqrt()
}

pub fn dbfs(rms: f64) -> f64 {
    if rms <= 0.0 {
        -200.0
    } else {
        20.0 * (rms / 32768.0).log10()
    }
}

/// First and one-past-last sample of the 20 ms frames whose RMS exceeds `threshold_dbfs`.
pub fn speech_span(s: &[i16], threshold_dbfs: f64) -> Option<(usize, usize)> {
    let loud: Vec<usize> = s
        .chunks(FRAME)
        .enumerate()
        .filter(|(_, f)| dbfs(rms(f)) > threshold_dbfs)
        .map(|(i, _)| i)
        .collect();
    let first = *loud.first()?;
    let last = *loud.last()?;
    Some((first * FRAME, ((last + 1) * FRAME).min(s.len())))
}

/// Goertzel power of `freq` in `s`, normalised so a full-band sine of amplitude A gives ≈ A²/4.
pub fn goertzel(s: &[i16], freq: f64) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * freq / RATE as f64;
    let coeff = 2.0 * w.cos();
    let (mut q1, mut q2) = (0.0f64, 0.0f64);
    for &x in s {
        let q0 = coeff * q1 - q2 + x as f64;
        q2 = q1;
        q1 = q0;
    }
    let power = q1 * q1 + q2 * q2 - coeff * q1 * q2;
    power / (s.len() as f64 * s.len() as f64)
}

/// Share of the frame's energy at `freq` (≈0.5 for a pure tone at that frequency, since the
/// Goertzel power of a sine is A²/4 and its mean square is A²/2).
pub fn tone_share(s: &[i16], freq: f64) -> f64 {
    let ms = rms(s).powi(2);
    if ms < 1.0 {
        return 0.0;
    }
    goertzel(s, freq) / ms
}

/// True when `s` holds a DTMF pair with real energy (both tones over 10% of the energy and the
/// frame louder than −45 dBFS).
pub fn has_dtmf(s: &[i16], low: f64, high: f64) -> bool {
    dbfs(rms(s)) > -45.0 && tone_share(s, low) > 0.1 && tone_share(s, high) > 0.1
}

/// A sine tone.
pub fn tone(freq: f64, secs: f64, amplitude: f64) -> Vec<i16> {
    let n = (secs * RATE as f64) as usize;
    (0..n)
        .map(|i| {
            (amplitude * (2.0 * std::f64::consts::PI * freq * i as f64 / RATE as f64).sin()) as i16
        })
        .collect()
}

/// Finds `rec` as a contiguous, sample-exact segment of `src`; returns its offset in `src`.
/// G.711 decode is deterministic, so what Hark kept must equal what was sent, bit for bit.
pub fn find_segment(rec: &[i16], src: &[i16]) -> Result<usize, String> {
    if rec.is_empty() {
        return Err("recording is empty".into());
    }
    if rec.len() > src.len() {
        return Err(format!(
            "recording has {} samples, more than the {} sent",
            rec.len(),
            src.len()
        ));
    }
    // Anchor on the loudest 50 ms of the recording so silence runs do not match everywhere.
    let w = rec.len().min(400);
    let mut anchor = 0;
    let mut best = -1.0;
    let mut a = 0;
    while a + w <= rec.len() {
        let e = rms(&rec[a..a + w]);
        if e > best {
            best = e;
            anchor = a;
        }
        a += 80;
    }
    let needle = &rec[anchor..anchor + w];
    let mut best_partial: Option<(usize, usize)> = None;
    for p in 0..=(src.len() - w) {
        if src[p..p + w] != *needle || p < anchor {
            continue;
        }
        let off = p - anchor;
        // Samples past the end of what was sent count as differences.
        let overrun = (off + rec.len()).saturating_sub(src.len());
        let mismatches = overrun + rec.iter().zip(&src[off..]).filter(|(a, b)| a != b).count();
        if mismatches == 0 {
            return Ok(off);
        }
        if best_partial.is_none_or(|(_, m)| mismatches < m) {
            best_partial = Some((off, mismatches));
        }
    }
    match best_partial {
        Some((off, m)) => {
            let first = rec
                .iter()
                .zip(&src[off..])
                .position(|(a, b)| a != b)
                .unwrap_or(src.len() - off);
            let what = match src.get(off + first) {
                Some(s) => format!("{} vs {s} sent", rec[first]),
                None => format!(
                    "{:.3} s of it lie past the end of the audio sent",
                    secs(off + rec.len() - src.len())
                ),
            };
            Err(format!(
                "recording ({} samples) matches the sent audio at offset {off} except {m} \
                 samples; first difference at recording sample {first}: {what}",
                rec.len(),
            ))
        }
        None => {
            let peak = rec.iter().map(|&x| (x as i32).abs()).max().unwrap_or(0);
            Err(format!(
                "no 50 ms of the recording ({} samples, peak {peak}) appears in the sent audio \
                 (wrong codec, gain or resampling?)",
                rec.len()
            ))
        }
    }
}

/// Like `find_segment`, but tolerates one run of at most `max_inserted` zero samples inserted
/// into an otherwise exact copy (no sample lost or changed). Returns (offset, inserted).
pub fn find_segment_with_inserted_silence(
    rec: &[i16],
    src: &[i16],
    max_inserted: usize,
) -> Result<(usize, usize), String> {
    let strict = match find_segment(rec, src) {
        Ok(off) => return Ok((off, 0)),
        Err(e) => e,
    };
    // Locate by the first third, then find where the copy breaks.
    let off = find_segment(&rec[..rec.len() / 3], src)
        .map_err(|e| format!("{strict}; and its first third: {e}"))?;
    let split = rec
        .iter()
        .zip(&src[off..])
        .position(|(a, b)| a != b)
        .unwrap_or(rec.len());
    let mut z = 0;
    loop {
        let rest = &rec[split + z..];
        let from = off + split;
        if from + rest.len() <= src.len() && *rest == src[from..from + rest.len()] {
            return Ok((off, z));
        }
        if z >= max_inserted || rec.get(split + z) != Some(&0) {
            return Err(format!(
                "{strict}; not explained by ≤ {max_inserted} inserted zero samples at \
                 recording sample {split}"
            ));
        }
        z += 1;
    }
}

pub fn secs(samples: usize) -> f64 {
    samples as f64 / RATE as f64
}

/// `text` spoken by espeak-ng (en-us, 150 wpm) at telephone quality: an 8 kHz µ-law WAV (sox,
/// no dither, so runs repeat exactly) with `lead` and `tail` seconds of silence, in `dir`.
pub fn espeak_ulaw_wav(
    dir: &Path,
    name: &str,
    text: &str,
    lead: f64,
    tail: f64,
) -> std::path::PathBuf {
    let wide = dir.join(format!("{name}.22k.wav"));
    let narrow = dir.join(format!("{name}.ulaw.wav"));
    let run = |cmd: &mut std::process::Command| {
        let st = cmd
            .status()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/setup.sh installs it)"));
        assert!(st.success(), "{cmd:?} failed");
    };
    run(std::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&wide)
        .arg(text));
    run(std::process::Command::new("sox")
        .arg("-D")
        .arg(&wide)
        .args(["-r", "8000", "-c", "1", "-e", "mu-law"])
        .arg(&narrow)
        .args(["pad", &lead.to_string(), &tail.to_string()]));
    narrow
}

/// Words of a transcript, lowercased, punctuation dropped.
pub fn transcript_words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Share of the words of `said` found in `heard`.
pub fn words_heard(said: &str, heard: &str) -> f64 {
    let heard = transcript_words(heard);
    let said = transcript_words(said);
    let hits = said.iter().filter(|w| heard.contains(w)).count();
    hits as f64 / said.len().max(1) as f64
}

/// The recording at `path` lasts `secs` and is speech-loud (above −40 dBFS): what a browser's
/// fake microphone playing the test speech leaves in it.
pub fn assert_speech_recorded(path: &Path, secs: std::ops::RangeInclusive<f64>) {
    let (rate, samples) = read_recording_at(path);
    let got = samples.len() as f64 / f64::from(rate);
    assert!(
        secs.contains(&got),
        "recorded {got:.2} s, expected {secs:?}"
    );
    let level = dbfs(rms(&samples));
    assert!(
        level > -40.0,
        "the browser's speech is in the recording: {level:.1} dBFS"
    );
}
