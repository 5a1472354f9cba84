//! Just enough RIFF/WAVE parsing to know how long a recording is (for RTF and timeouts) and,
//! for PCM files, where its samples are.

/// What the header of a WAV says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WavInfo {
    /// 1 = PCM, 6 = A-law, 7 = µ-law (the real tag for WAVE_FORMAT_EXTENSIBLE files).
    pub format_tag: u16,
    pub channels: u16,
    pub sample_rate: u32,
    pub bits_per_sample: u16,
    /// Byte offset of the sample data.
    pub data_offset: usize,
    /// Bytes of sample data actually present (a crash-truncated file declares more).
    pub data_len: usize,
}

impl WavInfo {
    pub fn duration_secs(&self) -> f64 {
        let bytes_per_frame =
            u64::from(self.channels) * u64::from(self.bits_per_sample.div_ceil(8));
        if bytes_per_frame == 0 || self.sample_rate == 0 {
            return 0.0;
        }
        (self.data_len as u64 / bytes_per_frame) as f64 / f64::from(self.sample_rate)
    }
}

/// Parses the header from the file's first bytes. `file_len` is the whole file's length (the
/// prefix may be shorter); the data chunk is clamped to it.
pub fn parse_header(prefix: &[u8], file_len: usize) -> Result<WavInfo, String> {
    let u16_at = |o: usize| {
        prefix
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        prefix
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if prefix.get(0..4) != Some(b"RIFF") || prefix.get(8..12) != Some(b"WAVE") {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut pos = 12usize;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    loop {
        let (Some(id), Some(size)) = (prefix.get(pos..pos + 4), u32_at(pos + 4)) else {
            return Err("no data chunk in the header".into());
        };
        let size = size as usize;
        let body = pos + 8;
        match id {
            b"fmt " => {
                let (Some(tag), Some(ch), Some(rate), Some(bits)) = (
                    u16_at(body),
                    u16_at(body + 2),
                    u32_at(body + 4),
                    u16_at(body + 14),
                ) else {
                    return Err("fmt chunk is truncated".into());
                };
                // WAVE_FORMAT_EXTENSIBLE keeps the real tag at the start of its GUID.
                let tag = match (tag, u16_at(body + 24)) {
                    (0xFFFE, Some(sub)) if size >= 26 => sub,
                    _ => tag,
                };
                fmt = Some((tag, ch, rate, bits));
            }
            b"data" => {
                let Some((format_tag, channels, sample_rate, bits_per_sample)) = fmt else {
                    return Err("data chunk before fmt chunk".into());
                };
                if channels == 0 || sample_rate == 0 {
                    return Err(format!(
                        "fmt channels {channels} / sample rate {sample_rate} is zero"
                    ));
                }
                let data_len = size.min(file_len.saturating_sub(body));
                return Ok(WavInfo {
                    format_tag,
                    channels,
                    sample_rate,
                    bits_per_sample,
                    data_offset: body,
                    data_len,
                });
            }
            _ => {}
        }
        pos = body
            .checked_add(size)
            .and_then(|p| p.checked_add(size & 1))
            .ok_or("chunk size overflows")?;
    }
}

/// Reads a file's header (first 64 KiB) and length.
pub async fn probe(path: &std::path::Path) -> Result<WavInfo, crate::EngineError> {
    use tokio::io::AsyncReadExt;
    let err = |reason: String| crate::EngineError::Wav {
        path: path.to_path_buf(),
        reason,
    };
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| err(e.to_string()))?;
    let len = file.metadata().await.map_err(|e| err(e.to_string()))?.len();
    let mut prefix = Vec::with_capacity(4096);
    file.take(64 * 1024)
        .read_to_end(&mut prefix)
        .await
        .map_err(|e| err(e.to_string()))?;
    parse_header(&prefix, usize::try_from(len).unwrap_or(usize::MAX)).map_err(err)
}

/// A 16-bit mono PCM WAV with a canonical 44-byte header (tests and tools).
pub fn pcm16_wav(rate: u32, samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut v = Vec::with_capacity(44 + samples.len() * 2);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * 2).to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

/// The samples of a mono 16-bit PCM or µ-law WAV (what the recorder writes), as linear PCM.
pub fn pcm16_samples(bytes: &[u8]) -> Result<(u32, Vec<i16>), String> {
    let info = parse_header(bytes, bytes.len())?;
    let encoding = match (info.format_tag, info.bits_per_sample, info.channels) {
        (1, 16, 1) => record_engine::WavEncoding::Pcm16,
        (7, 8, 1) => record_engine::WavEncoding::Ulaw,
        (tag, bits, channels) => {
            return Err(format!(
                "fmt tag {tag} / {bits} bits / {channels} channels is not 16-bit PCM or µ-law mono"
            ))
        }
    };
    let data = bytes
        .get(info.data_offset..info.data_offset + info.data_len)
        .ok_or("data chunk is out of range")?;
    Ok((info.sample_rate, encoding.decode(data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_pcm_header_gives_exact_duration() {
        let wav = pcm16_wav(8000, &vec![0i16; 12_000]);
        let info = parse_header(&wav, wav.len()).unwrap();
        assert_eq!(info.data_offset, 44);
        assert_eq!(info.data_len, 24_000);
        assert_eq!(info.duration_secs(), 1.5);
    }

    #[test]
    fn truncated_data_chunk_is_clamped_to_file_length() {
        let mut wav = pcm16_wav(8000, &vec![0i16; 8000]);
        wav.truncate(44 + 4000);
        let info = parse_header(&wav, wav.len()).unwrap();
        assert_eq!(info.data_len, 4000);
        assert_eq!(info.duration_secs(), 0.25);
    }

    #[test]
    fn mulaw_header_with_fact_chunk_as_sox_writes_it() {
        // sox -e mu-law: 18-byte fmt, fact chunk, then data.
        let mut h = Vec::new();
        h.extend_from_slice(b"RIFF\0\0\0\0WAVEfmt ");
        h.extend_from_slice(&18u32.to_le_bytes());
        h.extend_from_slice(&[7, 0, 1, 0]);
        h.extend_from_slice(&8000u32.to_le_bytes());
        h.extend_from_slice(&8000u32.to_le_bytes());
        h.extend_from_slice(&[1, 0, 8, 0, 0, 0]);
        h.extend_from_slice(b"fact");
        h.extend_from_slice(&4u32.to_le_bytes());
        h.extend_from_slice(&16000u32.to_le_bytes());
        h.extend_from_slice(b"data");
        h.extend_from_slice(&16000u32.to_le_bytes());
        let header_len = h.len();
        h.resize(header_len + 16000, 0xFF);
        let info = parse_header(&h, h.len()).unwrap();
        assert_eq!(info.format_tag, 7);
        assert_eq!(info.data_offset, header_len);
        assert_eq!(info.duration_secs(), 2.0);
    }

    #[test]
    fn non_wav_and_missing_data_are_errors() {
        assert!(parse_header(b"OggS\0\0\0\0", 8).is_err());
        let wav = pcm16_wav(8000, &[]);
        assert!(parse_header(&wav[..36], 36)
            .unwrap_err()
            .contains("no data chunk"));
        let mut bad = pcm16_wav(8000, &[1, 2]);
        bad[24..28].copy_from_slice(&0u32.to_le_bytes());
        assert!(parse_header(&bad, bad.len())
            .unwrap_err()
            .contains("sample rate"));
    }

    #[test]
    fn pcm16_samples_round_trip() {
        let wav = pcm16_wav(16000, &[1, -2, 32767, -32768]);
        assert_eq!(
            pcm16_samples(&wav).unwrap(),
            (16000, vec![1, -2, 32767, -32768])
        );
    }

    #[test]
    fn ulaw_recordings_decode_to_linear_pcm() {
        let mut wav =
            record_engine::wav::encoded_header_bytes(record_engine::WavEncoding::Ulaw, 8000, 4)
                .unwrap()
                .to_vec();
        wav.extend_from_slice(&[0xFF, 0x7F, 0x80, 0x00]);
        let info = parse_header(&wav, wav.len()).unwrap();
        assert_eq!(info.duration_secs(), 0.0005);
        assert_eq!(
            pcm16_samples(&wav).unwrap(),
            (8000, vec![0, 0, 32124, -32124])
        );
        let mut stereo = wav.clone();
        stereo[22] = 2;
        assert!(pcm16_samples(&stereo).unwrap_err().contains("2 channels"));
    }
}
