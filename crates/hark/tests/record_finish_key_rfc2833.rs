//! `<Record finishOnKey="#">` ended by an RFC 4733 '#' from `hark call`: Digits=#, the file is
//! fetchable before the action request, holds exactly the audio sent (trimmed to speech ±200 ms
//! with trim-silence; cut where the tone began with do-not-trim) and no tone.

mod common;

use common::*;
use std::time::Duration;

const DTMF_AT: f64 = 5.0;

fn run(trim: &str) -> (Daemon, WebhookServer, Composite, RecordingCheck) {
    let wh = WebhookServer::start();
    wh.route(
        "/action",
        Reply::twiml("<Response><Hangup/></Response>").fetch_recording(),
    );
    let twiml = format!(
        r##"<Response><Record action="{}" finishOnKey="#" maxLength="30" timeout="10" trim="{trim}"/></Response>"##,
        wh.url("/action")
    );
    let d = Daemon::start(&[], App::Twiml(twiml));
    // 1 s silence (covers the beep), speech 1.02–4.30 s, silence; '#' at 5.0 s.
    let c = composite(1.0, 3.4, 1.6);
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &c.ulaw);
    let call = HarkCall::new(&d.uri("rec"))
        .play(&wav)
        .dtmf("#", DTMF_AT)
        .run(&d.tmp, Duration::from_secs(30));
    call.assert_success();
    let actions = wh.wait_for("/action", 1, Duration::from_secs(5));
    assert_eq!(actions.len(), 1, "one action request");
    let action = &actions[0];
    assert_eq!(action.method, "POST");
    assert_eq!(action.param("Digits"), "#");
    check_standard_params(action, "in-progress");
    let rec = check_recording(&d, action, &decode_all(&c.ulaw), true);
    let tail = &rec.samples[rec.samples.len().saturating_sub(800)..];
    assert!(
        !tail.chunks(160).any(|f| has_dtmf(f, 941.0, 1477.0)),
        "'#' tone energy in the last 100 ms"
    );
    wh.assert_signatures_ok();
    (d, wh, c, rec)
}

#[test]
fn rfc2833_pound_trim_silence_keeps_speech_plus_200ms_exactly() {
    let (_d, _wh, c, rec) = run("trim-silence");
    assert_near("recording start", rec.offset, c.speech_start - 1600, 480);
    assert_near("recording end", rec.end(), c.speech_end + 1600, 480);
}

#[test]
fn rfc2833_pound_do_not_trim_ends_where_the_tone_began() {
    let (_d, _wh, _c, rec) = run("do-not-trim");
    // The tone starts at 5.0 s of the caller's stream; 40 ms guard before it.
    assert_near(
        "recording end",
        rec.end(),
        (DTMF_AT * 8000.0) as usize - 320,
        480,
    );
    // Capture starts after the ~0.5 s beep: everything up to the tone is kept.
    assert!(
        rec.samples.len() >= 3 * 8000,
        "do-not-trim kept only {:.2} s",
        secs(rec.samples.len())
    );
}
