//! A Twilio-style IVR written with the official Python helper library (tests/twilio_app/app.py):
//! `<Gather numDigits=1>` around a `<Say>` prompt, the key selects `/menu` which answers
//! `<Record>`, the recording ends on silence and `/done` answers `<Hangup/>`. Every request
//! must pass twilio-python's `RequestValidator`.

mod common;
mod twilio_app;

use common::*;
use serde_json::json;
use std::time::Duration;
use twilio_app::*;

/// When the caller presses 1, in seconds after answer (the prompt lasts about 2 s).
const KEY_AT: f64 = 2.5;

#[test]
fn say_gather_then_record_ends_on_silence_and_done_hangs_up() {
    let app = TwilioApp::start(json!({
        "/voice": {"say_gather": {
            "say": "Press one to leave a message",
            "num_digits": 1, "action": "/menu", "timeout": 5
        }},
        "/menu": {"record": {
            "max_length": 10, "action": "/done", "finish_on_key": "#", "timeout": 2
        }},
        "/done": {"hangup": {}},
    }));
    let d = Daemon::start(
        &[],
        App::VoiceUrl {
            url: app.url("/voice"),
            method: "POST",
        },
    );
    // Silence through the prompt and the beep, speech, then silence that ends <Record timeout=2>.
    let c = composite(4.0, 3.4, 4.0);
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &c.ulaw);
    let heard = d.tmp.join("heard.wav");
    let out = HarkCall::new(&d.uri("ivr"))
        .play(&wav)
        .dtmf("1", KEY_AT)
        .save_received(&heard)
        .run(&d.tmp, Duration::from_secs(40));
    out.assert_success();
    assert!(
        out.stdout.contains("ended by the server"),
        "Hark hangs up on /done's <Hangup/>: {}",
        out.stdout
    );

    // Webhooks: order, params, signatures.
    let voice = app.wait_for("/voice", 1, Duration::from_secs(5)).remove(0);
    let menu = app.wait_for("/menu", 1, Duration::from_secs(5)).remove(0);
    let done = app.wait_for("/done", 1, Duration::from_secs(5)).remove(0);
    app.assert_all_valid(&[]);
    assert_eq!(
        app.requests().len(),
        3,
        "one request each: {}",
        app.summary()
    );
    assert!(
        voice.t < menu.t && menu.t < done.t,
        "voice, menu, done in order"
    );
    assert_eq!(voice.param("CallStatus"), "ringing");
    assert_eq!(menu.param("Digits"), "1", "/menu gets the key pressed");
    assert_eq!(menu.param("CallSid"), voice.param("CallSid"));
    assert_eq!(done.param("CallSid"), voice.param("CallSid"));
    assert!(is_sid(&done.param("RecordingSid"), "RE"));
    assert!(!done.param("RecordingUrl").is_empty());
    // Ended by silence: Digits is present but is no key.
    let digits = done.param("Digits");
    assert!(
        !digits.contains('#') && digits != "hangup",
        "Digits on a silence timeout: {digits:?}"
    );

    // The recording: the caller's speech, sample-exact, over 1 s.
    let rec = check_recording(&d, &done.to_recorded(), &decode_all(&c.ulaw), false);
    assert!(
        rec.samples.len() > RATE,
        "recording lasts {:.2} s",
        secs(rec.samples.len())
    );
    let dur: u64 = done
        .param("RecordingDuration")
        .parse()
        .expect("RecordingDuration");
    assert!(dur >= 2, "RecordingDuration {dur}");

    // What the caller heard. Its timeline starts at the first packet Hark sent (the prompt, once
    // espeak-ng rendered it), so times relative to the key get a 1 s allowance.
    let heard = read_wav_any(&heard);
    let p = profile(&heard);
    let said = speech_share(&heard, 0.0, 1.4);
    assert!(
        said > 0.6,
        "speech during the prompt: {:.0}% of frames; profile (100 ms/char, B = 1 kHz): {p}",
        said * 100.0
    );
    let beep = tone_run_start(&heard, 1000.0, 0.0, 10)
        .unwrap_or_else(|| panic!("no 1 kHz beep; profile: {p}"));
    assert!(
        beep > KEY_AT - 1.0 && beep < KEY_AT + 2.0,
        "the beep starts at {beep:.2} s, the key was pressed {KEY_AT} s after answer; profile: {p}"
    );
    assert!(
        speech_share(&heard, beep - 0.5, beep) == 0.0,
        "the prompt ended before the key: silence before the beep; profile: {p}"
    );
    let n = tone_frames(&heard, 1000.0, beep, beep + 0.6);
    assert!(
        (22..=26).contains(&n),
        "the beep lasts 500 ms: {n} frames of 20 ms; profile: {p}"
    );
    assert!(
        speech_share(&heard, beep + 0.5, heard.len() as f64 / RATE as f64) < 0.05,
        "nothing is played while recording; profile: {p}"
    );
}
