//! A caller who never speaks: `<Record timeout="2">` ends on silence with an empty recording, so
//! no action request, an `absent` status callback with ErrorCode 16102, and the NEXT verb runs
//! (a 440 Hz `<Play>` the caller hears after the 1 kHz beep), then `<Hangup/>`.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn silent_caller_gets_absent_callback_and_next_verb_runs() {
    let wh = WebhookServer::start();
    wh.route("/action", Reply::twiml("<Response><Hangup/></Response>"));
    wh.route("/rsc", Reply::empty());
    let tmp = TempDir::new("silent");
    let tone_wav = tmp.join("tone440.wav");
    write_pcm_wav(&tone_wav, &tone(440.0, 1.0, 8000.0));
    let twiml = format!(
        r#"<Response><Record action="{}" timeout="2" recordingStatusCallback="{}" recordingStatusCallbackEvent="absent completed"/><Play>{}</Play><Hangup/></Response>"#,
        wh.url("/action"),
        wh.url("/rsc"),
        tone_wav.display()
    );
    let d = Daemon::start(&[], App::Twiml(twiml));
    let silence = d.tmp.join("silence.wav");
    write_pcm_wav(&silence, &vec![0i16; 8000 * 15]);
    let received = d.tmp.join("received.wav");
    HarkCall::new(&d.uri("rec"))
        .play(&silence)
        .save_received(&received)
        .run(&d.tmp, Duration::from_secs(30))
        .assert_success();

    wh.wait_for("/rsc", 1, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    let rsc = wh.requests_to("/rsc");
    assert_eq!(rsc.len(), 1, "only the absent callback: {rsc:?}");
    assert_eq!(rsc[0].param("RecordingStatus"), "absent");
    assert_eq!(rsc[0].param("ErrorCode"), "16102");
    assert_eq!(rsc[0].param("AccountSid"), ACCOUNT_SID);
    assert!(is_sid(rsc[0].param("RecordingSid"), "RE"));
    assert!(
        wh.requests_to("/action").is_empty(),
        "no action request for an empty recording"
    );

    // What the caller heard: the beep, then (after ≥ 2 s of silence) the 440 Hz Play.
    let heard = read_wav_any(&received);
    let frames: Vec<&[i16]> = heard.chunks(160).collect();
    let loud = |f: &[i16]| dbfs(rms(f)) > -40.0;
    let beep = frames
        .iter()
        .position(|f| loud(f) && tone_share(f, 1000.0) > 0.3)
        .expect("a 1 kHz beep in the received audio");
    let play = frames
        .iter()
        .skip(beep)
        .position(|f| loud(f) && tone_share(f, 440.0) > 0.3)
        .map(|p| p + beep)
        .expect("440 Hz from the <Play> after <Record> ended");
    assert!(
        play >= beep + 100,
        "the <Play> began {} ms after the beep; the 2 s silence timeout must come first",
        (play - beep) * 20
    );
    let play_frames = frames[play..]
        .iter()
        .take_while(|f| loud(f) && tone_share(f, 440.0) > 0.3)
        .count();
    assert!(
        play_frames >= 40,
        "only {} ms of the 1 s 440 Hz file were heard",
        play_frames * 20
    );
    wh.assert_signatures_ok();
}
