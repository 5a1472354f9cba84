//! Recording files: `{storage.dir}/{RecordingSid}.wav` (and the API's `.mp3` beside it). The
//! metadata lives in the database (`store`).

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct RecordingFiles {
    dir: PathBuf,
}

impl RecordingFiles {
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The WAV's name inside the directory (stored with the recording's row).
    pub fn wav_name(sid: &str) -> String {
        format!("{sid}.wav")
    }

    pub fn wav_path(&self, sid: &str) -> PathBuf {
        self.dir.join(Self::wav_name(sid))
    }

    pub fn path_of(&self, file_name: &str) -> PathBuf {
        self.dir.join(file_name)
    }
}
