//! Two silence timers (SPEC §7, Graph `recordResponse`): `initialSilenceTimeoutInSeconds` until
//! the first speech (stop `NoSpeech`, subcode 8510), then `maxSilenceTimeoutInSeconds` from the
//! last speech frame (stop `Silence`, 8509). Exact sample counts throughout.

use record_engine::{AbsentReason, RecordParams, StopReason};

mod common;
use common::*;

/// Graph-style parameters: initial and max silence timeouts, no finish keys.
fn graph_params(initial: u32, max_silence: Option<u32>) -> RecordParams {
    let mut p = params();
    p.initial_silence_timeout_secs = Some(initial);
    p.silence_timeout_secs = max_silence;
    p.finish_on_key = "#".into();
    p
}

#[test]
fn silent_caller_with_initial_3_stops_no_speech_at_exactly_3s_not_silence_at_2s() {
    let mut r = recorder(graph_params(3, Some(2)), 0);
    let audio = timeline(&[(10 * RATE, false)]);
    let (pos, reason) = feed(&mut r, &audio, 0, FRAME).unwrap();
    assert_eq!(reason, StopReason::NoSpeech);
    assert_eq!(pos + FRAME as u64, 3 * RATE);
    assert_eq!(r.captured_samples(), 3 * RATE);
    let (s, samples) = finish(r);
    assert_eq!(s.stop_reason, StopReason::NoSpeech);
    assert_eq!(s.stop_reason.digits(), "");
    assert!(!s.speech_detected);
    assert_eq!(s.captured_samples, 3 * RATE, "stop position");
    assert_eq!(s.absent, Some(AbsentReason::Silent));
    assert!(samples.is_empty());
}

#[test]
fn speech_at_1s_for_1s_then_max_silence_2_stops_silence_at_exactly_4s() {
    let mut r = recorder(graph_params(3, Some(2)), 0);
    let audio = timeline(&[(RATE, false), (RATE, true), (10 * RATE, false)]);
    let (pos, reason) = feed(&mut r, &audio, 0, FRAME).unwrap();
    assert_eq!(reason, StopReason::Silence);
    assert_eq!(pos + FRAME as u64, 4 * RATE);
    let (s, samples) = finish(r);
    assert_eq!(s.stop_reason, StopReason::Silence);
    assert!(s.speech_detected);
    assert_eq!((s.captured_samples, s.absent), (4 * RATE, None));
    let keep = (RATE - ms(200)) as usize..(2 * RATE + ms(200)) as usize;
    assert_same(&samples, &audio[keep], "trimmed file");
}

#[test]
fn speech_starting_at_2_5s_with_initial_3_is_not_no_speech() {
    // With Twilio semantics a 2 s silence timeout would have stopped this at 2 s.
    let mut r = recorder(graph_params(3, Some(2)), 0);
    let audio = timeline(&[(ms(2500), false), (RATE, true), (10 * RATE, false)]);
    let (pos, reason) = feed(&mut r, &audio, 0, FRAME).unwrap();
    assert_eq!(reason, StopReason::Silence);
    assert_eq!(pos + FRAME as u64, ms(3500) + 2 * RATE);
    let (s, _) = finish(r);
    assert!(s.speech_detected);
    assert_eq!((s.captured_samples, s.absent), (ms(5500), None));
}

#[test]
fn speech_in_last_frame_before_initial_timeout_counts_speech_at_timeout_does_not() {
    let last_frame = 3 * RATE - FRAME as u64;
    let audio = timeline(&[(last_frame, false), (RATE, true), (5 * RATE, false)]);
    let mut r = recorder(graph_params(3, Some(2)), 0);
    let (pos, reason) = feed(&mut r, &audio, 0, FRAME).unwrap();
    assert_eq!(
        (pos + FRAME as u64, reason),
        (last_frame + 3 * RATE, StopReason::Silence)
    );

    let audio = timeline(&[(3 * RATE, false), (RATE, true)]);
    let mut r = recorder(graph_params(3, Some(2)), 0);
    let (pos, reason) = feed(&mut r, &audio, 0, FRAME).unwrap();
    assert_eq!(
        (pos + FRAME as u64, reason),
        (3 * RATE, StopReason::NoSpeech)
    );
    let after = &audio[3 * RATE as usize..][..FRAME];
    assert_eq!(
        r.push_audio(3 * RATE, after).unwrap(),
        None,
        "ignored after stop"
    );
    let (s, _) = finish(r);
    assert!(!s.speech_detected);
    assert_eq!(
        s.captured_samples,
        3 * RATE,
        "the speech after 3 s is not captured"
    );
}

#[test]
fn no_speech_cuts_an_odd_frame_at_the_exact_sample() {
    let mut p = graph_params(1, Some(5));
    p.trim_silence = false;
    let mut r = recorder(p, 0);
    let audio = vec![0i16; 3 * RATE as usize];
    let (pos, reason) = feed(&mut r, &audio, 0, 170).unwrap();
    assert_eq!(reason, StopReason::NoSpeech);
    assert_eq!(pos, 47 * 170, "the 48th frame crosses 8000");
    assert_eq!(r.captured_samples(), RATE);
    let (s, samples) = finish(r);
    assert_eq!((s.samples, s.absent), (0, Some(AbsentReason::Silent)));
    assert!(samples.is_empty());
}

#[test]
fn initial_none_or_zero_keeps_twilio_timer_from_capture_start() {
    for initial in [None, Some(0)] {
        let mut p = params();
        p.silence_timeout_secs = Some(2);
        p.initial_silence_timeout_secs = initial;
        let mut r = recorder(p, 0);
        let audio = timeline(&[(10 * RATE, false)]);
        let (pos, reason) = feed(&mut r, &audio, 0, FRAME).unwrap();
        assert_eq!(
            (pos + FRAME as u64, reason),
            (2 * RATE, StopReason::Silence),
            "initial={initial:?}"
        );
        let (s, _) = finish(r);
        assert!(!s.speech_detected);
    }
}

#[test]
fn max_length_wins_over_no_speech_on_the_same_sample() {
    let mut p = graph_params(3, Some(2));
    p.max_length_secs = 3;
    let mut r = recorder(p, 0);
    let audio = timeline(&[(5 * RATE, false)]);
    let (pos, reason) = feed(&mut r, &audio, 0, FRAME).unwrap();
    assert_eq!(
        (pos + FRAME as u64, reason),
        (3 * RATE, StopReason::MaxLength)
    );
}

#[test]
fn after_speech_without_max_silence_never_stops_on_silence() {
    let mut r = recorder(graph_params(3, None), 0);
    let audio = timeline(&[(RATE, true), (10 * RATE, false)]);
    assert_eq!(feed(&mut r, &audio, 0, FRAME), None);
    assert_eq!(r.captured_samples(), 11 * RATE);
    r.stop(StopReason::Hangup);
    let (s, _) = finish(r);
    assert_eq!(s.stop_reason, StopReason::Hangup);
    assert!(s.speech_detected);
}

#[test]
fn speech_only_in_pre_roll_does_not_end_initial_phase() {
    let capture_start = 10_000;
    let audio = timeline(&[(capture_start, true), (5 * RATE, false)]);
    let mut r = recorder(graph_params(3, Some(2)), capture_start);
    let (pos, reason) = feed(&mut r, &audio, capture_start - ms(300), FRAME).unwrap();
    assert_eq!(reason, StopReason::NoSpeech);
    assert_eq!(pos + FRAME as u64, capture_start + 3 * RATE);
    let (s, _) = finish(r);
    assert!(!s.speech_detected);
    // Trim may still keep the pre-roll speech (300 ms + 200 ms padding): the file is not
    // absent, but the stop reason and `speech_detected` say nobody spoke after the beep.
    assert_eq!((s.absent, s.samples), (None, ms(500)));
}

#[test]
fn timeline_hole_counts_toward_initial_timeout() {
    let mut r = recorder(graph_params(3, Some(2)), 0);
    assert_eq!(r.push_audio(0, &[0; 160]).unwrap(), None);
    // Next audio arrives at 2.9 s: the hole is silence and 100 ms more reaches 3 s.
    assert_eq!(
        r.push_audio(ms(2900), &[0; 4000]).unwrap(),
        Some(StopReason::NoSpeech)
    );
    assert_eq!(r.captured_samples(), 3 * RATE);
}

#[test]
fn finish_key_before_any_speech_is_finish_key_without_speech() {
    let mut r = recorder(graph_params(3, Some(2)), 0);
    let audio = timeline(&[(RATE, false)]);
    assert_eq!(feed(&mut r, &audio, 0, FRAME), None);
    assert_eq!(r.push_dtmf('#', RATE), Some(StopReason::FinishKey('#')));
    let (s, _) = finish(r);
    assert_eq!(s.stop_reason.digits(), "#");
    assert!(!s.speech_detected);
}

#[test]
fn speech_detected_ignores_speech_after_the_finish_key_cut() {
    // Speech that arrives after the key's cut point (e.g. tone audio called speech) is not
    // kept, so it does not count as speech either.
    let mut r = recorder(graph_params(3, Some(2)), 0);
    let audio = timeline(&[(RATE, false), (ms(100), true)]);
    assert_eq!(feed(&mut r, &audio, 0, FRAME), None);
    assert_eq!(r.push_dtmf('#', RATE), Some(StopReason::FinishKey('#')));
    let (s, samples) = finish(r);
    assert!(!s.speech_detected);
    assert_eq!((s.absent, samples.len()), (Some(AbsentReason::Silent), 0));
}
