//! Recording files: `{storage.dir}/{RecordingSid}.wav` (and the API's `.mp3` beside it). The
//! metadata lives in the database (`store`).

use std::io;
use std::path::{Path, PathBuf};

use media_store::{fetched_name, FETCHED_SUFFIX};

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

    /// A new name for a temporary copy of recording `sid` fetched from the object storage:
    /// `{sid}.{unique}.fetched.wav`, never shared by two fetches.
    pub fn fetched_path(&self, sid: &str) -> PathBuf {
        self.dir.join(fetched_name(sid))
    }

    /// Removes the temporary copies a crash left (at start-up); returns how many.
    pub fn remove_fetched(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(FETCHED_SUFFIX))
            .filter(|e| std::fs::remove_file(e.path()).is_ok())
            .count()
    }

    /// A new recording's WAV. Read access too: finalizing moves the kept audio to the front of
    /// the file. The header is rewritten every second of audio, so a crash leaves a file that
    /// plays that far.
    /// Creates a recording's WAV at `sample_rate`, synced to disk every second of audio.
    pub fn create_wav(
        &self,
        sid: &str,
        encoding: record_engine::WavEncoding,
        sample_rate: u32,
        channels: u16,
    ) -> Result<record_engine::WavWriter<std::fs::File>, String> {
        let path = self.wav_path(sid);
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(record_engine::WavError::from)
            .and_then(|f| {
                record_engine::WavWriter::create_channels(f, sample_rate, encoding, channels)
                    .map(|w| w.with_sync_every(u64::from(sample_rate) * u64::from(channels)))
            })
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Finishes a recording (trim, cut, header); if that fails, repairs what reached the disk
    /// and says how many samples it holds. Blocking.
    pub fn finish_or_repair(
        &self,
        sid: &str,
        recorder: record_engine::Recorder<std::fs::File>,
    ) -> Result<record_engine::RecordSummary, (record_engine::WavError, u64)> {
        match recorder.finish() {
            Ok((summary, _file)) => Ok(summary),
            Err(e) => {
                let samples = match record_engine::repair_wav_file(&self.wav_path(sid)) {
                    Ok(
                        record_engine::RepairOutcome::Intact { samples }
                        | record_engine::RepairOutcome::Repaired { samples },
                    ) => samples,
                    Err(_) => 0,
                };
                Err((e, samples))
            }
        }
    }
}
