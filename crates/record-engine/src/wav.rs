//! 16-bit PCM mono WAV that stays playable while it is written (SPEC §9).

use std::io::{Read, Seek, Write};
use std::ops::Range;
use std::path::Path;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum WavError {
    #[error("I/O on the recording: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a PCM WAV file Hark wrote: {0}")]
    NotOurWav(&'static str),
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
        self.get_mut().resize(len as usize, 0);
        Ok(())
    }
}

/// Bytes before the samples.
pub const HEADER_BYTES: u64 = 44;

pub struct WavWriter<S: WavStorage> {
    storage: S,
}

impl<S: WavStorage> WavWriter<S> {
    /// Writes a header for an empty file (sizes valid from the start).
    pub fn create(storage: S, sample_rate: u32) -> Result<Self, WavError> {
        todo!()
    }
    /// Appends samples (buffered); the header is rewritten at least every `sync_every` samples.
    pub fn write(&mut self, pcm: &[i16]) -> Result<(), WavError> {
        todo!()
    }
    /// Writes the buffer and the header sizes now.
    pub fn sync(&mut self) -> Result<(), WavError> {
        todo!()
    }
    pub fn samples_written(&self) -> u64 {
        todo!()
    }
    /// Keeps only samples `keep` (moving them to the front), fixes the header, returns storage.
    pub fn finalize(self, keep: Range<u64>) -> Result<S, WavError> {
        todo!()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairOutcome {
    /// The header already matched the file.
    Intact { samples: u64 },
    /// Sizes were rewritten from the file length.
    Repaired { samples: u64 },
}

/// Fixes RIFF and data sizes of a WAV left open by a crash (`kill -9`).
pub fn repair_wav_file(path: &Path) -> Result<RepairOutcome, WavError> {
    todo!()
}
