//! Crash repair of recordings (record-engine `repair_wav_file`) on a temp file holding the
//! fuzz input, plus the in-memory reader (`Wav::parse`) on the same bytes.
//!
//! Invariants:
//! - neither panics;
//! - repair fails only without changing the file;
//! - after `Ok`, the file is whole frames after the 44-byte header, its RIFF size is
//!   `len - 8` and its data size `len - 44`, the header is otherwise untouched and the
//!   samples are the input's (truncated to whole frames, never altered);
//! - a 16-bit PCM result opens in hound with the same channels, 16 bits, the same rate, and
//!   exactly `samples * channels` samples, all readable; a µ-law result (hound cannot read
//!   µ-law) opens in the crate's reader with the same frames;
//! - repairing again says `Intact` with the same sample count;
//! - the reader's sample and frame counts are consistent.
#![no_main]

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use record_engine::wav::{check_layout, Wav};
use record_engine::{repair_wav_file, RepairOutcome, WavEncoding};

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("hark-fuzz-wav-{}.wav", std::process::id()))
    })
}

fn check_reader(bytes: &[u8]) {
    let Ok(w) = Wav::parse(bytes) else { return };
    let fb = w.header.frame_bytes();
    assert!(fb >= 1 && w.header.channels >= 1 && w.header.sample_rate >= 1);
    assert_eq!(w.frames(), w.data.len() / fb);
    assert_eq!(
        w.samples().len(),
        w.frames() * usize::from(w.header.channels)
    );
    assert_eq!(w.mono().count(), w.frames());
    assert!(w.header.data_offset as usize + w.data.len() <= bytes.len());
    let _ = w.header.duration_secs(bytes.len() as u64);
}

fuzz_target!(|data: &[u8]| {
    check_reader(data);

    let p = path();
    {
        let mut f = std::fs::File::create(p).expect("temp file");
        f.write_all(data).expect("write temp file");
    }
    let outcome = repair_wav_file(p);
    let after = std::fs::read(p).expect("read back");
    let samples = match outcome {
        Err(_) => {
            assert_eq!(after, data, "a failed repair changed the file");
            return;
        }
        Ok(RepairOutcome::Intact { samples }) => {
            assert_eq!(after, data, "an intact file was changed");
            samples
        }
        Ok(RepairOutcome::Repaired { samples }) => samples,
    };
    let h: [u8; 44] = after[..44].try_into().expect("44-byte header");
    let (encoding, channels) = check_layout(&h).expect("repaired header is ours");
    let frame = encoding.bytes_per_sample() as usize * usize::from(channels);
    let len = after.len();
    assert_eq!(
        len,
        44 + samples as usize * frame,
        "file is not header + whole frames"
    );
    assert!(
        len <= data.len() && data.len() - len < frame,
        "more than a partial frame cut"
    );
    assert_eq!(&after[44..], &data[44..len], "samples changed");
    assert_eq!(&after[..4], &data[..4]);
    assert_eq!(
        &after[8..40],
        &data[8..40],
        "header changed beyond the sizes"
    );
    let riff = u32::from_le_bytes(after[4..8].try_into().unwrap());
    let size = u32::from_le_bytes(after[40..44].try_into().unwrap());
    assert_eq!(riff as usize, len - 8, "RIFF size");
    assert_eq!(size as usize, len - 44, "data size");

    let rate = u32::from_le_bytes(after[24..28].try_into().unwrap());
    // Known: check_layout compares the byte rate with `sample_rate * block_align` in wrapping
    // u32 arithmetic, so a sample rate ≥ 2^31 (16-bit) passes with the wrapped byte rate and
    // the file is "repaired"; hound (checked arithmetic) calls it inconsistent. Bug
    // wav-rate-overflow in fuzz/README.md.
    let overflow = u64::from(rate) * frame as u64 > u64::from(u32::MAX);
    if !common::check_known(!overflow, "wav-rate-overflow", || {
        format!("repaired a WAV whose byte rate overflows: sample rate {rate}, {frame}-byte frames")
    }) {
        return;
    }
    match encoding {
        WavEncoding::Pcm16 => {
            let r = hound::WavReader::new(std::io::Cursor::new(&after[..]))
                .unwrap_or_else(|e| panic!("hound cannot open the repaired file: {e}"));
            let spec = r.spec();
            assert_eq!(spec.channels, channels);
            assert_eq!(spec.bits_per_sample, 16);
            assert_eq!(spec.sample_rate, rate);
            assert_eq!(spec.sample_format, hound::SampleFormat::Int);
            assert_eq!(
                u64::from(r.len()),
                samples * u64::from(channels),
                "hound's sample count"
            );
            assert_eq!(u64::from(r.duration()), samples);
            let read: Result<Vec<i16>, _> = r.into_samples::<i16>().collect();
            let read = read.unwrap_or_else(|e| panic!("hound cannot read the samples: {e}"));
            assert_eq!(read.len() as u64, samples * u64::from(channels));
        }
        WavEncoding::Ulaw => {}
    }
    let w = Wav::parse(&after).expect("the crate's reader opens the repaired file");
    assert_eq!(w.frames() as u64, samples);
    assert_eq!(w.header.channels, channels);

    // Idempotent.
    match repair_wav_file(p) {
        Ok(RepairOutcome::Intact { samples: s }) => assert_eq!(s, samples),
        other => panic!("second repair: {other:?}"),
    }
    assert_eq!(std::fs::read(p).unwrap(), after);
});
