//! A caller whose first RTP arrives late (a phone muted at answer, silence suppression at the
//! start, a gateway that opens media late) loses nothing: every packet sent after capture start
//! is in the recording, sample-exact, placed at its arrival time. The caller starts sending
//! 0.5, 2.5 and 5 s after the 200 OK: 0.2 s of silence, 3.4 s of speech, 1 s of silence, then '#'.

mod common;

use common::sip::{pcmu_offer, RawUac};
use common::*;
use std::time::{Duration, Instant};

struct LateCall {
    d: Daemon,
    action: Recorded,
    sent: Composite,
}

/// One call whose media starts `delay` after the ACK, recorded by `<Record {attrs}>`.
fn late_call(delay: Duration, attrs: &str) -> LateCall {
    let wh = WebhookServer::start();
    wh.route("/action", Reply::twiml("<Response><Hangup/></Response>"));
    let d = Daemon::start(
        &[],
        App::Twiml(format!(
            r##"<Response><Record action="{}" finishOnKey="#" maxLength="60" timeout="15" {attrs}/></Response>"##,
            wh.url("/action")
        )),
    );
    let mut uac = RawUac::new(d.sip_addr());
    let ok = uac.invite("rec", &pcmu_offer(uac.rtp_port), Duration::from_secs(5));
    assert_eq!(ok.status(), Some(200));
    let answered = Instant::now();
    uac.ack();
    let hark_rtp = uac.remote_rtp(&ok);
    std::thread::sleep(delay.saturating_sub(answered.elapsed()));
    let sent = composite(0.2, 3.4, 1.0);
    talk_then_pound(&d, &uac, &uac.rtp, hark_rtp, &sent.ulaw);
    let action = wh.wait_for("/action", 1, Duration::from_secs(5)).remove(0);
    assert_eq!(action.param("Digits"), "#");
    LateCall { d, action, sent }
}

/// Trimmed (the default): the recording is an exact slice of what was sent, holding all of the
/// speech.
fn trimmed_recording_holds_all_speech(delay_ms: u64) {
    let call = late_call(Duration::from_millis(delay_ms), "");
    let sent = decode_all(&call.sent.ulaw);
    let rec = check_recording(&call.d, &call.action, &sent, false);
    assert!(
        rec.offset <= call.sent.speech_start && rec.end() >= call.sent.speech_end,
        "first RTP {delay_ms} ms late: the recording covers {:.3}..{:.3} s of what was sent, the \
         speech is at {:.3}..{:.3} s",
        secs(rec.offset),
        secs(rec.end()),
        secs(call.sent.speech_start),
        secs(call.sent.speech_end)
    );
}

#[test]
fn first_rtp_half_a_second_late_loses_nothing() {
    trimmed_recording_holds_all_speech(500);
}

#[test]
fn first_rtp_two_and_a_half_seconds_late_loses_nothing() {
    trimmed_recording_holds_all_speech(2500);
}

#[test]
fn first_rtp_five_seconds_late_loses_nothing() {
    trimmed_recording_holds_all_speech(5000);
}

/// Untrimmed: silence from capture start (just after the 0.5 s beep) until the first packet
/// arrived, then every sample sent up to 40 ms before the '#'.
#[test]
fn untrimmed_recording_places_late_audio_at_its_arrival() {
    let delay = Duration::from_millis(2500);
    let call = late_call(delay, r#"trim="do-not-trim""#);
    let sent = decode_all(&call.sent.ulaw);
    let path = call.d.recording_path(call.action.param("RecordingSid"));
    let rec = read_recording(&path);
    let guard = 320; // finish_key_guard_ms = 40
    let kept = &sent[..sent.len() - guard];
    assert!(
        rec.len() >= kept.len() && rec.ends_with(kept),
        "the recording ({:.3} s) does not end with all {:.3} s sent",
        secs(rec.len()),
        secs(kept.len())
    );
    let waited = rec.len() - kept.len();
    assert!(
        rec[..waited].iter().all(|&s| s == 0),
        "silence before the first packet"
    );
    // Capture starts 0.5–1.5 s after the 200 OK (beep); the first packet came `delay` after it.
    let lo = delay.as_millis() as usize * 8 - 1500 * 8;
    let hi = delay.as_millis() as usize * 8 - 400 * 8;
    assert!(
        (lo..=hi).contains(&waited),
        "{:.3} s of silence before the first packet; want {:.3}..{:.3} s",
        secs(waited),
        secs(lo),
        secs(hi)
    );
    assert_eq!(
        call.action.param("RecordingDuration"),
        rounded_seconds(rec.len()).to_string()
    );
}

/// A muted phone (no RTP at all) presses '#' by SIP INFO: the key counts now, not at the stale
/// start of a timeline that never moved, so the empty recording ends at once (absent, 16102)
/// and the next verb runs, long before the 20 s silence timeout.
#[test]
fn sip_info_key_from_a_phone_that_never_sent_rtp_ends_the_recording() {
    let wh = WebhookServer::start();
    wh.route("/rsc", Reply::empty());
    let d = Daemon::start(
        &[],
        App::Twiml(format!(
            r##"<Response><Record finishOnKey="#" timeout="20" recordingStatusCallback="{}" recordingStatusCallbackEvent="absent completed"/><Hangup/></Response>"##,
            wh.url("/rsc")
        )),
    );
    let mut uac = RawUac::new(d.sip_addr());
    let ok = uac.invite("rec", &pcmu_offer(uac.rtp_port), Duration::from_secs(5));
    assert_eq!(ok.status(), Some(200));
    uac.ack();
    std::thread::sleep(Duration::from_millis(2000));
    let pressed = Instant::now();
    let cseq = uac.request(
        "INFO",
        Some("application/dtmf-relay"),
        "Signal=#\r\nDuration=160\r\n",
    );
    let info_ok = uac.wait_final("INFO", cseq, Duration::from_secs(3));
    assert_eq!(info_ok.and_then(|r| r.status()), Some(200));
    let rsc = wh.wait_for("/rsc", 1, Duration::from_secs(10)).remove(0);
    assert!(
        pressed.elapsed() < Duration::from_secs(5),
        "the recording ended {:.1} s after the key",
        pressed.elapsed().as_secs_f64()
    );
    assert_eq!(rsc.param("RecordingStatus"), "absent");
    assert_eq!(rsc.param("ErrorCode"), "16102");
    assert!(
        uac.wait_request("BYE", Duration::from_secs(5)).is_some(),
        "<Hangup/> after the recording"
    );
}
