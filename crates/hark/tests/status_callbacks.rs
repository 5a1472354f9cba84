//! recordingStatusCallback (SPEC §3.6): `in-progress` then `completed`, with the documented
//! params, `completed` only once the WAV is fetchable; GET method; default event = completed.

mod common;

use common::*;
use std::time::Duration;

fn call_with_pound(d: &Daemon) -> Composite {
    let c = composite(1.0, 3.4, 1.6);
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &c.ulaw);
    HarkCall::new(&d.uri("rec"))
        .play(&wav)
        .dtmf("#", 5.0)
        .run(&d.tmp, Duration::from_secs(30))
        .assert_success();
    c
}

fn check_common(r: &Recorded, action: &Recorded, status: &str) {
    assert_eq!(r.param("AccountSid"), ACCOUNT_SID);
    assert_eq!(r.param("CallSid"), action.param("CallSid"));
    assert_eq!(r.param("RecordingSid"), action.param("RecordingSid"));
    assert_eq!(r.param("RecordingUrl"), action.param("RecordingUrl"));
    assert_eq!(r.param("RecordingStatus"), status);
    assert_eq!(r.param("RecordingChannels"), "1");
    assert_eq!(r.param("RecordingSampleRate"), "8000");
    assert_eq!(r.param("RecordingSource"), "RecordVerb");
    let start = r.param("RecordingStartTime");
    assert!(
        is_rfc2822(start),
        "RecordingStartTime {start:?} is not RFC 2822"
    );
    assert!(
        r.opt_param("ErrorCode").is_none_or(|e| e == "0"),
        "ErrorCode on {status}: {:?}",
        r.opt_param("ErrorCode")
    );
}

#[test]
fn in_progress_then_completed_with_spec_params_and_fetchable_wav() {
    let wh = WebhookServer::start();
    wh.route("/action", Reply::twiml("<Response><Hangup/></Response>"));
    wh.route("/rsc", Reply::empty().fetch_recording());
    let d = Daemon::start(
        &[],
        App::Twiml(format!(
            r##"<Response><Record action="{}" finishOnKey="#" recordingStatusCallback="{}" recordingStatusCallbackEvent="in-progress completed"/></Response>"##,
            wh.url("/action"),
            wh.url("/rsc")
        )),
    );
    let c = call_with_pound(&d);
    let action = wh.wait_for("/action", 1, Duration::from_secs(5)).remove(0);
    let rsc = wh.wait_for("/rsc", 2, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        wh.requests_to("/rsc").len(),
        2,
        "in-progress + completed only"
    );
    assert!(rsc.iter().all(|r| r.method == "POST"));
    check_common(&rsc[0], &action, "in-progress");
    check_common(&rsc[1], &action, "completed");
    assert!(
        rsc[0].at <= action.at,
        "in-progress is sent when capture starts"
    );
    let done = &rsc[1];
    assert_eq!(
        done.param("RecordingDuration"),
        action.param("RecordingDuration")
    );
    check_recording(&d, done, &decode_all(&c.ulaw), true);
    wh.assert_signatures_ok();
}

#[test]
fn get_method_and_default_event_sends_only_completed_in_query() {
    let wh = WebhookServer::start();
    wh.route("/action", Reply::twiml("<Response><Hangup/></Response>"));
    wh.route("/rsc", Reply::empty().fetch_recording());
    let d = Daemon::start(
        &[],
        App::Twiml(format!(
            r##"<Response><Record action="{}" finishOnKey="#" recordingStatusCallback="{}?tenant=e2e" recordingStatusCallbackMethod="GET"/></Response>"##,
            wh.url("/action"),
            wh.url("/rsc")
        )),
    );
    let c = call_with_pound(&d);
    let action = wh.wait_for("/action", 1, Duration::from_secs(5)).remove(0);
    let rsc = wh.wait_for("/rsc", 1, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        wh.requests_to("/rsc").len(),
        1,
        "default event is completed only"
    );
    let r = &rsc[0];
    assert_eq!(r.method, "GET");
    assert_eq!(
        r.param("tenant"),
        "e2e",
        "the callback URL's own query is kept"
    );
    check_common(r, &action, "completed");
    check_recording(&d, r, &decode_all(&c.ulaw), true);
    wh.assert_signatures_ok();
}
