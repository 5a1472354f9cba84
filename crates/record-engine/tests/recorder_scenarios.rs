//! `<Record>` scenarios from SPEC §3.2–3.5 and §11, with exact sample counts.
//!
//! The test signals and helpers are in `common` (speech from the first frame is checked below).

use std::cell::RefCell;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::rc::Rc;

use record_engine::wav::WavStorage;
use record_engine::{AbsentReason, Recorder, SpeechConfig, SpeechDetector, StopReason, WavWriter};

mod common;
use common::*;

#[test]
fn test_speech_signal_is_speech_from_first_frame_in_every_mode() {
    let audio = timeline(&[(RATE, false), (RATE, true), (RATE, false)]);
    for mode in 0..=3 {
        let mut d = SpeechDetector::new(SpeechConfig {
            threshold_dbfs: -45.0,
            vad_mode: mode,
        });
        let decisions: Vec<bool> = audio.chunks(FRAME).map(|f| d.is_speech(f)).collect();
        let want: Vec<bool> = (0..150).map(|i| (50..100).contains(&i)).collect();
        assert_eq!(decisions, want, "mode {mode}");
    }
}

#[test]
fn silent_caller_with_timeout_5_stops_at_exactly_5s_and_is_silent() {
    let mut r = recorder(params(), 0);
    let audio = timeline(&[(10 * RATE, false)]);
    let (pos, reason) = feed(&mut r, &audio, 0, FRAME).unwrap();
    assert_eq!(reason, StopReason::Silence);
    assert_eq!(pos + FRAME as u64, 5 * RATE);
    assert_eq!(r.captured_samples(), 5 * RATE);
    let (s, samples) = finish(r);
    assert_eq!(s.stop_reason, StopReason::Silence);
    assert_eq!(s.absent, Some(AbsentReason::Silent));
    assert_eq!(s.absent.map(|a| a.error_code()), Some(16102));
    assert_eq!(
        (s.samples, s.duration_secs, s.captured_samples),
        (0, 0, 5 * RATE)
    );
    assert!(samples.is_empty());
}

#[test]
fn digital_silence_with_odd_frames_stops_at_exact_sample() {
    let mut p = params();
    p.silence_timeout_secs = Some(1);
    p.trim_silence = false;
    let mut r = recorder(p, 0);
    let audio = vec![0i16; 3 * RATE as usize];
    let (_, reason) = feed(&mut r, &audio, 0, 170).unwrap();
    assert_eq!(reason, StopReason::Silence);
    assert_eq!(
        r.captured_samples(),
        RATE,
        "last 170-sample frame cut at the timeout"
    );
    let (s, _) = finish(r);
    assert_eq!(s.absent, Some(AbsentReason::Silent));
}

#[test]
fn speech_then_silence_stops_5s_after_last_speech_and_trims_to_padding() {
    let mut r = recorder(params(), 0);
    let audio = timeline(&[(RATE, false), (2 * RATE, true), (10 * RATE, false)]);
    let (pos, reason) = feed(&mut r, &audio, 0, FRAME).unwrap();
    assert_eq!(reason, StopReason::Silence);
    assert_eq!(pos + FRAME as u64, 3 * RATE + 5 * RATE);
    let (s, samples) = finish(r);
    assert_eq!(s.stop_reason, StopReason::Silence);
    assert_eq!(s.absent, None);
    assert_eq!(s.captured_samples, 8 * RATE);
    // [1 s − 200 ms, 3 s + 200 ms)
    let keep = (RATE - ms(200)) as usize..(3 * RATE + ms(200)) as usize;
    assert_eq!(s.samples, ms(2400));
    assert_eq!(s.duration_secs, 2);
    assert_eq!(
        s.kept_start_offset,
        (RATE - ms(200)) as i64,
        "trimmed lead-in"
    );
    assert_same(&samples, &audio[keep], "file");
}

#[test]
fn kept_start_offset_places_the_file_on_the_capture_clock() {
    // do-not-trim keeps everything from capture start.
    let mut p = params();
    p.trim_silence = false;
    let mut r = recorder(p, 0);
    let audio = timeline(&[(RATE, false), (RATE, true), (6 * RATE, false)]);
    assert!(feed(&mut r, &audio, 0, FRAME).is_some());
    assert_eq!(finish(r).0.kept_start_offset, 0);
    // Speech over the beep: kept pre-roll starts before capture start.
    let capture_start = ms(300);
    let mut r = recorder(params(), capture_start);
    let audio = timeline(&[(ms(1000), true), (6 * RATE, false)]);
    assert!(feed(&mut r, &audio, 0, FRAME).is_some());
    let (s, _) = finish(r);
    assert_eq!(
        s.kept_start_offset,
        -(ms(300) as i64),
        "pre-roll kept from its first sample"
    );
}

#[test]
fn trim_never_removes_interior_silence() {
    let mut r = recorder(params(), 0);
    let audio = timeline(&[(RATE, true), (3 * RATE, false), (RATE, true), (RATE, false)]);
    assert_eq!(feed(&mut r, &audio, 0, FRAME), None);
    r.stop(StopReason::Hangup);
    let (s, samples) = finish(r);
    assert_same(&samples, &audio[..(5 * RATE + ms(200)) as usize], "file");
    assert_eq!(s.duration_secs, 5);
}

#[test]
fn no_silence_timeout_and_max_length_3_stops_at_exactly_3s() {
    for trim in [true, false] {
        let mut p = params();
        p.silence_timeout_secs = None;
        p.max_length_secs = 3;
        p.trim_silence = trim;
        let mut r = recorder(p, 0);
        // Long silence would have stopped a 5 s timeout; 170-sample frames force a cut frame.
        // 510 ms = 24 frames of 170, so the energy-judged speech ends on a frame boundary.
        let audio = timeline(&[(ms(510), true), (6 * RATE, false)]);
        let (_, reason) = feed(&mut r, &audio, 0, 170).unwrap();
        assert_eq!(reason, StopReason::MaxLength);
        assert_eq!(r.captured_samples(), 3 * RATE);
        assert_eq!(
            r.push_audio(3 * RATE, &[0; 160]).unwrap(),
            None,
            "ignored after stop"
        );
        let (s, samples) = finish(r);
        assert_eq!(s.stop_reason, StopReason::MaxLength);
        assert_eq!(s.stop_reason.digits(), "");
        assert_eq!(s.captured_samples, 3 * RATE);
        if trim {
            assert_same(&samples, &audio[..ms(710) as usize], "trimmed");
        } else {
            assert_same(&samples, &audio[..3 * RATE as usize], "file");
            assert_eq!(s.duration_secs, 3);
        }
    }
}

#[test]
fn some_zero_timeout_means_never() {
    let mut p = params();
    p.silence_timeout_secs = Some(0);
    p.max_length_secs = 2;
    let mut r = recorder(p, 0);
    let audio = timeline(&[(4 * RATE, false)]);
    let (pos, reason) = feed(&mut r, &audio, 0, FRAME).unwrap();
    assert_eq!(
        (pos + FRAME as u64, reason),
        (2 * RATE, StopReason::MaxLength)
    );
}

#[test]
fn finish_key_cuts_40ms_before_tone_start_even_if_tone_audio_was_written() {
    for trim in [true, false] {
        let mut p = params();
        p.trim_silence = trim;
        let mut r = recorder(p, 0);
        let p_key = 3 * RATE;
        // Speech runs right up to the key, then 160 ms of tone audio arrives before the event.
        let mut audio = timeline(&[(p_key, true)]);
        audio.extend((0..ms(160)).map(|i| {
            let t = (p_key + i) as f64 / RATE as f64;
            let w = |f: f64| (2.0 * std::f64::consts::PI * f * t).sin();
            ((w(941.0) + w(1477.0)) * 8000.0) as i16
        }));
        assert_eq!(feed(&mut r, &audio, 0, FRAME), None);
        assert_eq!(r.push_dtmf('#', p_key), Some(StopReason::FinishKey('#')));
        assert_eq!(r.push_dtmf('*', p_key + 800), None, "first stop wins");
        let (s, samples) = finish(r);
        assert_eq!(s.stop_reason, StopReason::FinishKey('#'));
        assert_eq!(s.stop_reason.digits(), "#");
        let end = (p_key - ms(40)) as usize;
        assert_eq!(samples.len(), end, "trim={trim}: nothing from p − 40 ms on");
        assert_same(&samples, &audio[..end], "file");
        assert_eq!(s.captured_samples, p_key + ms(160));
    }
}

#[test]
fn finish_key_ahead_of_written_audio_ends_at_written_audio() {
    let mut r = recorder(params(), 0);
    let audio = timeline(&[(2 * RATE, true)]);
    assert_eq!(feed(&mut r, &audio, 0, FRAME), None);
    assert_eq!(r.push_dtmf('5', 3 * RATE), Some(StopReason::FinishKey('5')));
    let (_, samples) = finish(r);
    assert_same(&samples, &audio, "file");
}

#[test]
fn finish_key_within_guard_of_capture_start_keeps_only_pre_roll() {
    let mut r = recorder(params(), 800);
    let audio = timeline(&[(800 + ms(100), true)]);
    assert_eq!(feed(&mut r, &audio, 0, FRAME), None);
    assert_eq!(
        r.push_dtmf('#', 800 + ms(20)),
        Some(StopReason::FinishKey('#'))
    );
    let (s, samples) = finish(r);
    // Cut is clamped to capture start; the pre-roll speech before it may still be kept by trim.
    assert_same(&samples, &audio[..800], "file");
    assert_eq!(s.absent, Some(AbsentReason::TooShort));
}

#[test]
fn key_not_in_finish_on_key_does_not_stop() {
    let mut p = params();
    p.finish_on_key = "#*".into();
    let mut r = recorder(p, 0);
    let audio = timeline(&[(2 * RATE, true)]);
    assert_eq!(feed(&mut r, &audio[..RATE as usize], 0, FRAME), None);
    assert_eq!(r.push_dtmf('1', ms(500)), None);
    assert_eq!(r.stop_reason(), None);
    assert_eq!(feed(&mut r, &audio, RATE, FRAME), None);
    assert_eq!(r.captured_samples(), 2 * RATE);
    assert_eq!(r.push_dtmf('*', 2 * RATE), Some(StopReason::FinishKey('*')));
}

#[test]
fn key_during_beep_is_ignored_not_queued() {
    let capture_start = 4000;
    let mut r = recorder(params(), capture_start);
    assert_eq!(r.push_dtmf('#', capture_start - 1), None);
    let audio = timeline(&[(capture_start + RATE, true)]);
    assert_eq!(feed(&mut r, &audio, capture_start - ms(300), FRAME), None);
    assert_eq!(r.stop_reason(), None);
    assert_eq!(
        r.push_dtmf('#', capture_start),
        Some(StopReason::FinishKey('#'))
    );
}

#[test]
fn empty_finish_on_key_ignores_all_keys() {
    let mut p = params();
    p.finish_on_key = String::new();
    let mut r = recorder(p, 0);
    for k in "0123456789*#ABCD".chars() {
        assert_eq!(r.push_dtmf(k, 100), None);
    }
    assert_eq!(r.stop_reason(), None);
}

#[test]
fn hangup_keeps_audio_and_first_reason_wins() {
    let mut r = recorder(params(), 0);
    let audio = timeline(&[(ms(500), false), (2 * RATE, true)]);
    assert_eq!(feed(&mut r, &audio, 0, FRAME), None);
    r.stop(StopReason::Hangup);
    r.stop(StopReason::Redirected);
    assert_eq!(r.stop_reason(), Some(StopReason::Hangup));
    assert_eq!(r.push_audio(ms(2500), &[1000; 160]).unwrap(), None);
    assert_eq!(r.push_dtmf('#', ms(2500)), None);
    let (s, samples) = finish(r);
    assert_eq!(s.stop_reason, StopReason::Hangup);
    assert_eq!(s.stop_reason.digits(), "hangup");
    assert_same(&samples, &audio[ms(300) as usize..], "file");
    assert_eq!((s.duration_secs, s.absent), (2, None));
}

#[test]
fn silent_caller_hangs_up_is_absent() {
    let mut r = recorder(params(), 0);
    let audio = timeline(&[(2 * RATE, false)]);
    assert_eq!(feed(&mut r, &audio, 0, FRAME), None);
    r.stop(StopReason::Hangup);
    let (s, samples) = finish(r);
    assert_eq!(
        (s.stop_reason, s.absent),
        (StopReason::Hangup, Some(AbsentReason::Silent))
    );
    assert!(samples.is_empty());
}

#[test]
fn hangup_before_any_audio_is_absent_with_empty_wav() {
    let mut r = recorder(params(), 0);
    r.stop(StopReason::Hangup);
    let (s, samples) = finish(r);
    assert_eq!(
        (s.samples, s.captured_samples, s.absent),
        (0, 0, Some(AbsentReason::Silent))
    );
    assert!(samples.is_empty());
}

#[test]
fn do_not_trim_with_3s_leading_silence_includes_it() {
    let mut p = params();
    p.trim_silence = false;
    let mut r = recorder(p, 0);
    let audio = timeline(&[(3 * RATE, false), (2 * RATE, true)]);
    assert_eq!(feed(&mut r, &audio, 0, FRAME), None);
    r.stop(StopReason::Hangup);
    let (s, samples) = finish(r);
    assert_eq!((s.samples, s.duration_secs), (5 * RATE, 5));
    assert_same(&samples, &audio, "file");
}

#[test]
fn pre_roll_speech_kept_by_trim_dropped_by_do_not_trim() {
    let capture_start = 10_000;
    let pre = ms(300);
    // Caller talks over the end of the beep: speech from capture_start − 300 ms for 1.3 s.
    let audio = timeline(&[
        (capture_start - pre, false),
        (pre + RATE, true),
        (RATE, false),
    ]);
    for trim in [true, false] {
        let mut p = params();
        p.trim_silence = trim;
        let mut r = recorder(p, capture_start);
        assert_eq!(feed(&mut r, &audio, capture_start - pre, FRAME), None);
        assert_eq!(
            r.captured_samples(),
            2 * RATE,
            "pre-roll is not captured audio"
        );
        r.stop(StopReason::Hangup);
        let (s, samples) = finish(r);
        let from = if trim {
            capture_start - pre
        } else {
            capture_start
        };
        let to = if trim {
            capture_start + RATE + ms(200)
        } else {
            capture_start + 2 * RATE
        };
        assert_same(&samples, &audio[from as usize..to as usize], "trim={trim}");
        assert_eq!(s.captured_samples, 2 * RATE);
    }
}

#[test]
fn do_not_trim_with_speech_only_in_pre_roll_is_silent() {
    // The kept audio (from capture start) holds no speech: the file would be pure silence.
    let capture_start = 10_000;
    let audio = timeline(&[(capture_start, true), (2 * RATE, false)]);
    // With trim the pre-roll speech is kept: padding before it is clipped at the file start,
    // so 300 ms + 200 ms after = 500 ms, which rounds half-up to 1 s.
    for (trim, absent, samples) in [
        (false, Some(AbsentReason::Silent), 0),
        (true, None, ms(500)),
    ] {
        let mut p = params();
        p.trim_silence = trim;
        let mut r = recorder(p, capture_start);
        assert_eq!(feed(&mut r, &audio, capture_start - ms(300), FRAME), None);
        r.stop(StopReason::Hangup);
        let (s, _) = finish(r);
        assert_eq!((s.absent, s.samples), (absent, samples), "trim={trim}");
    }
}

#[test]
fn pre_roll_does_not_count_toward_silence_timer_or_max_length() {
    let capture_start = 5000;
    let mut p = params();
    p.silence_timeout_secs = Some(1);
    let mut r = recorder(p, capture_start);
    let audio = timeline(&[(capture_start + 3 * RATE, false)]);
    let (pos, reason) = feed(&mut r, &audio, capture_start - ms(300), FRAME).unwrap();
    assert_eq!(reason, StopReason::Silence);
    assert_eq!(pos + FRAME as u64, capture_start + RATE);
    assert_eq!(r.captured_samples(), RATE);
    let (s, samples) = finish(r);
    assert_eq!((s.absent, s.samples), (Some(AbsentReason::Silent), 0));
    assert!(samples.is_empty());

    let mut p = params();
    p.silence_timeout_secs = None;
    p.max_length_secs = 2;
    p.trim_silence = false;
    let mut r = recorder(p, capture_start);
    let audio = timeline(&[(capture_start + 3 * RATE, true)]);
    assert!(feed(&mut r, &audio, capture_start - ms(300), FRAME).is_some());
    let (s, samples) = finish(r);
    assert_eq!(s.captured_samples, 2 * RATE);
    assert_same(
        &samples,
        &audio[capture_start as usize..(capture_start + 2 * RATE) as usize],
        "file",
    );
}

#[test]
fn short_speech_rounding_to_zero_seconds_is_too_short_but_kept() {
    let mut r = recorder(params(), 0);
    let audio = timeline(&[(ms(300), true)]);
    assert_eq!(feed(&mut r, &audio, 0, FRAME), None);
    r.stop(StopReason::Hangup);
    let (s, samples) = finish(r);
    assert_eq!(s.absent, Some(AbsentReason::TooShort));
    assert_eq!(s.absent.map(|a| a.error_code()), Some(16101));
    assert_eq!((s.samples, s.duration_secs), (ms(300), 0));
    assert_same(&samples, &audio, "file");
}

#[test]
fn short_speech_with_padding_rounds_to_one_second() {
    // 300 ms of speech + 2 × 200 ms padding = 700 ms → rounds half-up to 1 s: not absent.
    let mut r = recorder(params(), 0);
    let audio = timeline(&[(RATE, false), (ms(300), true), (RATE, false)]);
    assert_eq!(feed(&mut r, &audio, 0, FRAME), None);
    r.stop(StopReason::Hangup);
    let (s, _) = finish(r);
    assert_eq!((s.samples, s.duration_secs, s.absent), (ms(700), 1, None));
}

#[test]
fn timeline_hole_is_written_as_silence_and_counts_toward_timeout() {
    let mut p = params();
    p.silence_timeout_secs = Some(2);
    p.trim_silence = false;
    let mut r = recorder(p, 0);
    let audio = timeline(&[(RATE, true)]);
    assert_eq!(feed(&mut r, &audio, 0, FRAME), None);
    // Next frame arrives 1.5 s late: the hole is silence; 0.5 s more silence stops it.
    assert_eq!(r.push_audio(RATE + ms(1500), &[0; 160]).unwrap(), None);
    let more = vec![0i16; 4000];
    assert_eq!(
        r.push_audio(RATE + ms(1520), &more).unwrap(),
        Some(StopReason::Silence)
    );
    let (s, samples) = finish(r);
    assert_eq!(s.captured_samples, 3 * RATE);
    assert_same(&samples[..RATE as usize], &audio, "speech before the hole");
    assert!(samples[RATE as usize..].iter().all(|&x| x == 0));
    assert_eq!(samples.len() as u64, 3 * RATE);
}

#[test]
fn huge_position_jump_is_bounded_by_max_length() {
    let mut p = params();
    p.silence_timeout_secs = None;
    p.max_length_secs = 2;
    let mut r = recorder(p, 0);
    assert_eq!(r.push_audio(0, &[1000; 160]).unwrap(), None);
    assert_eq!(
        r.push_audio(u64::MAX / 4, &[1000; 160]).unwrap(),
        Some(StopReason::MaxLength)
    );
    assert_eq!(r.captured_samples(), 2 * RATE);
}

#[test]
fn first_frame_after_capture_start_fills_the_gap_with_silence() {
    let mut p = params();
    p.trim_silence = false;
    let mut r = recorder(p, 1000);
    let audio = timeline(&[(1000 + ms(500), false), (RATE, true)]);
    assert_eq!(feed(&mut r, &audio, 1000 + ms(500), FRAME), None);
    r.stop(StopReason::Hangup);
    let (s, samples) = finish(r);
    assert_eq!(s.samples, ms(1500));
    assert!(samples[..ms(500) as usize].iter().all(|&x| x == 0));
    assert_same(
        &samples[ms(500) as usize..],
        &audio[(1000 + ms(500)) as usize..],
        "after the gap",
    );
}

#[test]
fn overlapping_frames_are_not_written_twice() {
    let mut p = params();
    p.trim_silence = false;
    let mut r = recorder(p, 0);
    let audio = timeline(&[(RATE, true)]);
    assert_eq!(r.push_audio(0, &audio[..160]).unwrap(), None);
    assert_eq!(r.push_audio(80, &audio[80..320]).unwrap(), None); // half overlaps
    assert_eq!(r.push_audio(100, &audio[100..200]).unwrap(), None); // fully old
    assert_eq!(r.captured_samples(), 320);
    r.stop(StopReason::Redirected);
    let (s, samples) = finish(r);
    assert_eq!(s.stop_reason, StopReason::Redirected);
    assert_same(&samples, &audio[..320], "file");
}

#[test]
fn pre_roll_older_than_one_second_is_dropped() {
    let capture_start = 3 * RATE;
    let mut r = recorder(params(), capture_start);
    let audio = timeline(&[(capture_start + RATE, true)]);
    assert_eq!(feed(&mut r, &audio, 0, FRAME), None);
    r.stop(StopReason::Hangup);
    let (_, samples) = finish(r);
    assert_same(&samples, &audio[(capture_start - RATE) as usize..], "file");
}

#[test]
fn finish_without_stop_counts_as_hangup() {
    let mut r = recorder(params(), 0);
    let audio = timeline(&[(RATE, true)]);
    assert_eq!(feed(&mut r, &audio, 0, FRAME), None);
    let (s, _) = finish(r);
    assert_eq!(s.stop_reason, StopReason::Hangup);
}

#[test]
fn real_speech_recording_trimmed_to_speech_and_stopped_by_silence() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/speech_8k_s16.wav");
    let speech: Vec<i16> = hound::WavReader::open(path)
        .unwrap()
        .into_samples::<i16>()
        .map(|s| s.unwrap())
        .collect();
    let lead = 2 * RATE;
    let mut audio = timeline(&[(lead, false)]);
    audio.extend_from_slice(&speech);
    let speech_end = audio.len() as u64;
    audio.extend(timeline(&[(speech_end + 8 * RATE, false)])[speech_end as usize..].iter());
    // Independent per-frame decisions, to know where the recorder must stop and trim.
    let mut d = SpeechDetector::new(SpeechConfig::default());
    let voiced: Vec<u64> = audio
        .chunks(FRAME)
        .enumerate()
        .filter(|(_, f)| d.is_speech(f))
        .map(|(i, _)| i as u64 * FRAME as u64)
        .collect();
    let (first, last_end) = (voiced[0], voiced[voiced.len() - 1] + FRAME as u64);
    assert!(
        first >= lead && last_end <= speech_end,
        "speech only inside the clip: {first}..{last_end}"
    );
    assert!(last_end - first > 7 * RATE, "espeak clip is mostly speech");

    let mut r = recorder(params(), 0);
    let (pos, reason) = feed(&mut r, &audio, 0, FRAME).unwrap();
    assert_eq!(reason, StopReason::Silence);
    assert_eq!(pos + FRAME as u64, last_end + 5 * RATE);
    let (s, samples) = finish(r);
    assert_eq!(s.absent, None);
    assert_same(
        &samples,
        &audio[(first - ms(200)) as usize..(last_end + ms(200)) as usize],
        "file",
    );
}

/// Storage shared with the test so the file can be inspected mid-recording.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Cursor<Vec<u8>>>>);

impl Read for Shared {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().read(buf)
    }
}
impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl Seek for Shared {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.borrow_mut().seek(pos)
    }
}
impl WavStorage for Shared {
    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        self.0.borrow_mut().set_len(len)
    }
}

#[test]
fn wav_header_matches_bytes_written_after_every_sync() {
    let shared = Shared::default();
    let w = WavWriter::create(shared.clone(), RATE as u32)
        .unwrap()
        .with_sync_every(RATE);
    let mut r = Recorder::new(params(), SpeechDetector::new(SpeechConfig::default()), w, 0);
    let audio = timeline(&[(3 * RATE, true)]);
    let (mut pos, mut synced) = (0u64, 0u64);
    for (i, chunk) in audio.chunks(FRAME).enumerate() {
        r.push_audio(pos, chunk).unwrap();
        pos += chunk.len() as u64;
        // Automatic sync once a second of audio is past the last header write; explicit
        // syncs at odd places shift that schedule.
        if i % 37 == 5 {
            r.sync().unwrap();
            synced = pos;
        } else if pos - synced >= RATE {
            synced = pos;
        }
        let bytes = shared.0.borrow().get_ref().clone();
        let data = u32::from_le_bytes(bytes[40..44].try_into().unwrap()) as u64;
        assert_eq!(data, 2 * synced, "header data size at {pos}");
        assert!(bytes.len() as u64 >= 44 + 2 * synced);
        if synced == pos {
            assert_eq!(
                bytes.len() as u64,
                44 + 2 * pos,
                "everything flushed at sync"
            );
        }
        // A reader at any moment (e.g. after kill -9) gets exactly the synced prefix.
        assert_same(
            &samples_of(Cursor::new(bytes)),
            &audio[..synced as usize],
            "mid-recording file",
        );
    }
}

#[test]
fn postponed_capture_start_opens_the_file_at_the_first_packet() {
    // Capture began at 1 s, before any media; the first packet lands at 1.05 s.
    let audio = timeline(&[(ms(1050), false), (ms(2000), true), (ms(500), false)]);
    let mut p = params();
    p.trim_silence = false;
    let mut r = recorder(p, ms(1000));
    assert!(!r.postpone_capture_start(ms(900)), "never earlier");
    assert!(r.postpone_capture_start(ms(1050)));
    feed(&mut r, &audio, ms(1050), 160);
    assert!(!r.postpone_capture_start(ms(2000)), "not once audio is in");
    r.stop(StopReason::Hangup);
    let (summary, samples) = finish(r);
    assert_same(
        &samples,
        &audio[ms(1050) as usize..],
        "from the first packet on",
    );
    assert_eq!(summary.captured_samples, ms(2500));
}
