//! Audio files for `<Play>`: 8 kHz mono WAV, 16-bit PCM or G.711 (µ-law/A-law).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AudioError {
    #[error("{url}: only file:// URLs and absolute paths can be played yet")]
    UnsupportedUrl { url: String },
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}: {found}; Hark plays 8 kHz mono WAV (16-bit PCM, µ-law or A-law)")]
    Format { path: PathBuf, found: String },
}

/// Decoded prompts by path; prompts are small and reused across calls.
#[derive(Default)]
pub struct AudioCache {
    entries: Mutex<HashMap<PathBuf, Arc<[i16]>>>,
}

impl AudioCache {
    pub async fn load(&self, url: &str) -> Result<Arc<[i16]>, AudioError> {
        let path = local_path(url)?;
        if let Some(hit) = self.entries.lock().ok().and_then(|m| m.get(&path).cloned()) {
            return Ok(hit);
        }
        let owned = path.clone();
        let samples = tokio::task::spawn_blocking(move || read_wav(&owned))
            .await
            .map_err(|e| AudioError::Read {
                path: path.clone(),
                message: e.to_string(),
            })??;
        let samples: Arc<[i16]> = samples.into();
        if let Ok(mut map) = self.entries.lock() {
            map.insert(path, samples.clone());
        }
        Ok(samples)
    }
}

fn local_path(url: &str) -> Result<PathBuf, AudioError> {
    if let Some(rest) = url.strip_prefix("file://") {
        let decoded = url::Url::parse(url)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .unwrap_or_else(|| PathBuf::from(rest));
        return Ok(decoded);
    }
    if url.starts_with('/') {
        return Ok(PathBuf::from(url));
    }
    Err(AudioError::UnsupportedUrl {
        url: url.to_string(),
    })
}

/// Reads an 8 kHz mono WAV into linear PCM.
pub fn read_wav(path: &Path) -> Result<Vec<i16>, AudioError> {
    let bytes = std::fs::read(path).map_err(|e| AudioError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let format_err = |found: String| AudioError::Format {
        path: path.to_path_buf(),
        found,
    };
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(format_err("not a RIFF/WAVE file".into()));
    }
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        let body_start = pos + 8;
        let body_end = body_start.saturating_add(size).min(bytes.len());
        let body = &bytes[body_start..body_end];
        if id == b"fmt " && body.len() >= 16 {
            let tag = u16::from_le_bytes([body[0], body[1]]);
            let channels = u16::from_le_bytes([body[2], body[3]]);
            let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            let bits = u16::from_le_bytes([body[14], body[15]]);
            fmt = Some((tag, channels, rate, bits));
        } else if id == b"data" {
            let Some((tag, channels, rate, bits)) = fmt else {
                return Err(format_err("data chunk before fmt chunk".into()));
            };
            if channels != 1 || rate != 8000 {
                return Err(format_err(format!("{channels} channel(s) at {rate} Hz")));
            }
            return match (tag, bits) {
                (1, 16) | (0xFFFE, 16) => Ok(body
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect()),
                (7, 8) | (6, 8) => {
                    let codec = if tag == 7 {
                        media_engine::Codec::Pcmu
                    } else {
                        media_engine::Codec::Pcma
                    };
                    let mut out = vec![0i16; body.len()];
                    media_engine::g711::decode(codec, body, &mut out);
                    Ok(out)
                }
                _ => Err(format_err(format!(
                    "format tag {tag} with {bits} bits per sample"
                ))),
            };
        }
        pos = body_start.saturating_add(size + (size & 1));
    }
    Err(format_err("no data chunk".into()))
}
