//! The record path, one 20 ms frame per iteration: VAD, WAV write, the recorder, and the
//! whole chain from RTP datagram to WAV bytes.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Cursor;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hark_benches::{
    arrivals, audio_stream, recorder, recycle, speech, timed_chunks, PEER, RING_CAPACITY,
    TELEPHONE_EVENT_PT,
};
use media_engine::receiver::{MediaReceiver, ReceiverConfig};
use media_engine::ring::media_ring;
use media_engine::{Codec, MediaItem, FRAME_SAMPLES};
use record_engine::speech::rms_dbfs;
use record_engine::{SpeechConfig, SpeechDetector, WavWriter};

/// Frames per recording before it is finished and a new one started (untimed): 5 minutes.
const RECORDING_FRAMES: usize = 15_000;
/// Packets per call in the full pipeline before everything is rebuilt: 33 minutes.
const PIPELINE_PACKETS: usize = 100_000;

/// Storage already big enough for `frames` of audio, so the first chunk does not time growth.
fn wav_capacity(frames: usize) -> Vec<u8> {
    Vec::with_capacity(44 + frames * 2 * FRAME_SAMPLES)
}

/// Line hiss around -60 dBFS: below the default -45 dBFS gate, so the VAD is never asked.
fn hiss_frames() -> Vec<[i16; FRAME_SAMPLES]> {
    let mut x: u32 = 0x1234_5678;
    (0..50)
        .map(|_| {
            std::array::from_fn(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((x >> 16) % 61) as i16 - 30
            })
        })
        .collect()
}

fn vad_20ms(c: &mut Criterion) {
    let s = speech();
    let gate = SpeechConfig::default().threshold_dbfs;
    let loud: Vec<_> = s
        .pcm
        .iter()
        .copied()
        .filter(|f| rms_dbfs(f) >= gate)
        .collect();
    let hiss = hiss_frames();
    assert!(hiss.iter().all(|f| rms_dbfs(f) < gate));
    let mut g = c.benchmark_group("vad_20ms");
    g.throughput(Throughput::Elements(1));
    // Every frame of the capture loud enough to reach webrtc-vad.
    g.bench_function("speech", |b| {
        let mut det = SpeechDetector::new(SpeechConfig::default());
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % loud.len();
            det.is_speech(black_box(&loud[i]))
        })
    });
    g.bench_function("silence", |b| {
        let mut det = SpeechDetector::new(SpeechConfig::default());
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % hiss.len();
            det.is_speech(black_box(&hiss[i]))
        })
    });
    g.finish();
}

fn wav_write_160(c: &mut Criterion) {
    let s = speech();
    let mut g = c.benchmark_group("wav_write_160");
    g.throughput(Throughput::Elements(1));
    // Header sizes rewritten every 5 s of audio (the writer's default, SPEC §9).
    g.bench_function("cursor", |b| {
        b.iter_custom(|iters| {
            timed_chunks(
                iters,
                RECORDING_FRAMES,
                |old: Option<WavWriter<Cursor<Vec<u8>>>>| {
                    let mut buf = match old {
                        Some(w) => w.finalize(0..0).expect("in-memory WAV").into_inner(),
                        None => wav_capacity(RECORDING_FRAMES),
                    };
                    buf.clear();
                    WavWriter::create(Cursor::new(buf), 8000).expect("in-memory WAV")
                },
                |w, i| w.write(black_box(&s.pcm[i % s.pcm.len()])).expect("write"),
            )
        })
    });
    // The daemon's storage: a file (page cache; the writer never fsyncs).
    let path = std::env::temp_dir().join(format!("hark-bench-{}.wav", std::process::id()));
    g.bench_function("file", |b| {
        b.iter_custom(|iters| {
            timed_chunks(
                iters,
                RECORDING_FRAMES,
                |old: Option<WavWriter<File>>| {
                    let file = match old {
                        Some(w) => w.finalize(0..0).expect("temp WAV"),
                        None => OpenOptions::new()
                            .read(true)
                            .write(true)
                            .create(true)
                            .truncate(true)
                            .open(&path)
                            .expect("temp file"),
                    };
                    WavWriter::create(file, 8000).expect("temp WAV")
                },
                |w, i| w.write(black_box(&s.pcm[i % s.pcm.len()])).expect("write"),
            )
        })
    });
    let _ = std::fs::remove_file(&path);
    g.finish();
}

fn recorder_push_audio_20ms(c: &mut Criterion) {
    let s = speech();
    let mut g = c.benchmark_group("recorder_push_audio_20ms");
    g.throughput(Throughput::Elements(1));
    g.bench_function("speech", |b| {
        b.iter_custom(|iters| {
            timed_chunks(
                iters,
                RECORDING_FRAMES,
                |old| {
                    recorder(
                        old.map(recycle)
                            .unwrap_or_else(|| wav_capacity(RECORDING_FRAMES)),
                    )
                },
                |rec, i| {
                    let pos = (i * FRAME_SAMPLES) as u64;
                    let r = rec.push_audio(pos, black_box(&s.pcm[i % s.pcm.len()]));
                    black_box(r.expect("write"));
                },
            )
        })
    });
    g.finish();
}

fn pipeline_packet_to_wav(c: &mut Criterion) {
    let s = speech();
    let packets = audio_stream(&s.pcmu, 0, PIPELINE_PACKETS);
    let times = arrivals(PIPELINE_PACKETS);
    let config = ReceiverConfig::new(Codec::Pcmu, 0, Some(TELEPHONE_EVENT_PT));
    let mut g = c.benchmark_group("pipeline_packet_to_wav");
    g.throughput(Throughput::Elements(1));
    g.bench_function("pcmu_speech", |b| {
        b.iter_custom(|iters| {
            timed_chunks(
                iters,
                PIPELINE_PACKETS,
                |old| {
                    let storage = old
                        .map(|(_, _, _, rec)| recycle(rec))
                        .unwrap_or_else(|| wav_capacity(PIPELINE_PACKETS));
                    let (tx, rx) = media_ring(RING_CAPACITY);
                    (
                        MediaReceiver::new(config, times[0]),
                        tx,
                        rx,
                        recorder(storage),
                    )
                },
                |(receiver, tx, rx, rec), i| {
                    let verdict = receiver.handle_packet(times[i], PEER, &packets[i], |item| {
                        tx.push(item);
                    });
                    black_box(verdict).ok();
                    while let Some(item) = rx.pop() {
                        match item {
                            MediaItem::Audio(f) => {
                                black_box(rec.push_audio(f.position, f.pcm()).expect("write"));
                            }
                            MediaItem::Dtmf(d) => {
                                black_box(rec.push_dtmf(d.digit, d.position));
                            }
                        }
                    }
                },
            )
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    vad_20ms,
    wav_write_160,
    recorder_push_audio_20ms,
    pipeline_packet_to_wav
);
criterion_main!(benches);
