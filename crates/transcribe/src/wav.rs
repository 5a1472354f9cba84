//! How long a job's recording is (for RTF and timeouts), and a WAV writer for tests and tools.
//! Reading is the workspace's one WAV reader, `record_engine::wav`.

use std::path::Path;

use record_engine::wav::read_header;

use crate::EngineError;

/// The header of a WAV is in its first bytes; 64 KiB leaves room for metadata chunks.
const HEADER_PREFIX_BYTES: u64 = 64 * 1024;

/// Seconds of audio in the WAV at `path`: its header (read from the first 64 KiB) and its length
/// (a file cut short by a crash declares more than it holds).
pub async fn duration_secs(path: &Path) -> Result<f64, EngineError> {
    use tokio::io::AsyncReadExt;
    let err = |reason: String| EngineError::Wav {
        path: path.to_path_buf(),
        reason,
    };
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| err(e.to_string()))?;
    let len = file.metadata().await.map_err(|e| err(e.to_string()))?.len();
    let mut prefix = Vec::with_capacity(4096);
    file.take(HEADER_PREFIX_BYTES)
        .read_to_end(&mut prefix)
        .await
        .map_err(|e| err(e.to_string()))?;
    let header = read_header(&mut &prefix[..]).map_err(|e| err(e.to_string()))?;
    Ok(header.duration_secs(len))
}

/// A 16-bit mono PCM WAV with a canonical 44-byte header (tests and tools).
///
/// # Panics
/// If the samples do not fit the 4 GiB a WAV's 32-bit sizes describe.
pub fn pcm16_wav(rate: u32, samples: &[i16]) -> Vec<u8> {
    let header = record_engine::wav::header_bytes(rate, samples.len() as u64)
        .expect("test WAVs are smaller than 4 GiB");
    let mut v = Vec::with_capacity(header.len() + samples.len() * 2);
    v.extend_from_slice(&header);
    for s in samples {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn duration_comes_from_the_header_and_the_file_length() {
        let path = std::env::temp_dir().join(format!("transcribe-wav-{}.wav", std::process::id()));
        let mut wav = pcm16_wav(8000, &vec![0i16; 12_000]);
        std::fs::write(&path, &wav).unwrap();
        assert_eq!(duration_secs(&path).await.unwrap(), 1.5);
        // Cut short by a crash: the header declares 1.5 s, the file holds 0.25 s.
        wav.truncate(44 + 4000);
        std::fs::write(&path, &wav).unwrap();
        assert_eq!(duration_secs(&path).await.unwrap(), 0.25);
        std::fs::write(&path, b"OggS\0\0\0\0").unwrap();
        let err = duration_secs(&path).await.unwrap_err();
        assert!(err.to_string().contains("not a RIFF/WAVE file"), "{err}");
        std::fs::remove_file(&path).unwrap();
        let err = duration_secs(&path).await.unwrap_err();
        assert!(matches!(err, EngineError::Wav { .. }), "{err}");
    }

    #[test]
    fn pcm16_wav_reads_back() {
        let bytes = pcm16_wav(16000, &[1, -2, 32767, -32768]);
        let wav = record_engine::wav::Wav::parse(&bytes).unwrap();
        assert_eq!(wav.header.sample_rate, 16000);
        assert_eq!(wav.samples(), [1, -2, 32767, -32768]);
    }
}
