//! Caller hangs up while `<Record>` captures: the audio is kept, the action URL is still
//! requested with Digits=hangup and CallStatus=completed, and its answer is ignored.

mod common;

use common::*;
use std::time::Duration;

fn app(wh: &WebhookServer) -> App {
    // The answer is ignored after a hangup; a <Play> of a missing file would show up as an
    // error in the log if Hark tried to run it.
    wh.route(
        "/action",
        Reply::twiml("<Response><Play>/nonexistent/e2e.wav</Play></Response>").fetch_recording(),
    );
    App::Twiml(format!(
        r##"<Response><Record action="{}" maxLength="30" timeout="10" playBeep="false" trim="do-not-trim"/><Hangup/></Response>"##,
        wh.url("/action")
    ))
}

fn check_hangup_action(wh: &WebhookServer) -> Recorded {
    let actions = wh.wait_for("/action", 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        wh.requests_to("/action").len(),
        1,
        "exactly one action request"
    );
    let a = actions[0].clone();
    assert_eq!(a.param("Digits"), "hangup");
    assert_eq!(a.param("CallStatus"), "completed");
    a
}

#[test]
fn hark_call_hangup_after_3s_keeps_audio_and_sends_digits_hangup() {
    let wh = WebhookServer::start();
    let mut d = Daemon::start(&[], app(&wh));
    let speech = speech_ulaw();
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &speech);
    HarkCall::new(&d.uri("rec"))
        .play(&wav)
        .hangup_after(3.0)
        .run(&d.tmp, Duration::from_secs(20))
        .assert_success();
    let a = check_hangup_action(&wh);
    let rec = check_recording(&d, &a, &decode_all(&speech), true);
    // No beep, no trim: capture runs from answer to BYE, i.e. the 3 s the caller sent.
    assert_near("recording start", rec.offset, 0, 800);
    assert_near("recording end", rec.end(), 3 * 8000, 800);
    wh.assert_signatures_ok();
    d.assert_alive();
}

#[test]
fn sipp_bye_midstream_keeps_audio_and_sends_digits_hangup() {
    let wh = WebhookServer::start();
    let mut d = Daemon::start(&[], app(&wh));
    Sipp::new("uac_hangup_midstream.xml", d.sip_addr())
        .run(&d.tmp, Duration::from_secs(30))
        .assert_success();
    let a = check_hangup_action(&wh);
    let rec = check_recording(&d, &a, &decode_all(&speech_ulaw()), true);
    // SIPp's pcap thread starts 4–170 ms after ACK and stops at BYE (3.0 s).
    assert_near("recording start", rec.offset, 0, 800);
    assert_near("recording end", rec.end(), 3 * 8000 - 800, 1600);
    wh.assert_signatures_ok();
    d.assert_alive();
}
