//! kill -9 during a recording: the WAV on disk is already playable (header rewritten at least
//! every 5 s), and the next start repairs it and sends the `completed` recordingStatusCallback
//! exactly once (a second restart sends nothing more). SPEC §9, §11 item 16.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn kill_9_mid_recording_leaves_playable_wav_and_restart_completes_it_once() {
    let wh = WebhookServer::start();
    wh.route("/action", Reply::twiml("<Response><Hangup/></Response>"));
    wh.route("/rsc", Reply::empty());
    let mut d = Daemon::start(
        &[],
        App::Twiml(format!(
            r##"<Response><Record action="{}" maxLength="120" timeout="10" recordingStatusCallback="{}" recordingStatusCallbackEvent="in-progress completed"/></Response>"##,
            wh.url("/action"),
            wh.url("/rsc")
        )),
    );
    // 16 s of speech (the fixture twice), no DTMF: the call is still recording when killed.
    let mut sent = speech_ulaw();
    sent.extend(speech_ulaw());
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &sent);
    let caller = HarkCall::new(&d.uri("rec")).play(&wav).spawn(&d.tmp);
    let started = wh.wait_for("/rsc", 1, Duration::from_secs(10));
    assert_eq!(started[0].param("RecordingStatus"), "in-progress");
    let sid = started[0].param("RecordingSid").to_string();
    // 7 s of capture: at least one header rewrite (≤ 5 s apart) has happened.
    std::thread::sleep(Duration::from_secs(7));
    d.kill_9();
    drop(caller.kill());

    let path = d.recording_path(&sid);
    let bytes = std::fs::read(&path).expect("the WAV exists after kill -9");
    let layout = wav_layout(&bytes).expect("RIFF header");
    let actual = (bytes.len() - layout.data_offset) as u64;
    let declared = layout.data_len_declared as u64;
    assert!(
        declared <= actual && actual - declared <= 5 * 16_000 + 3_200,
        "header declares {declared} data bytes, file holds {actual}: more than 5 s behind"
    );
    assert!(
        declared >= 16_000,
        "header declares under 1 s after 7 s of capture"
    );
    let crashed = read_recording(&path);
    let src = decode_all(&sent);
    find_segment(&crashed, &src).unwrap_or_else(|e| panic!("crashed file: {e}"));

    d.restart();
    let rsc = wh.wait_for("/rsc", 2, Duration::from_secs(10));
    let done = &rsc[1];
    assert_eq!(done.param("RecordingStatus"), "completed");
    assert_eq!(done.param("RecordingSid"), sid);
    assert_eq!(done.param("RecordingUrl"), d.recording_url(&sid));
    assert_eq!(done.param("AccountSid"), ACCOUNT_SID);

    let bytes = std::fs::read(&path).expect("repaired WAV");
    let layout = wav_layout(&bytes).expect("RIFF header");
    let data = bytes.len() - layout.data_offset;
    assert_eq!(
        layout.data_len_declared as usize, data,
        "data size repaired"
    );
    assert_eq!(
        layout.riff_len_declared as usize,
        bytes.len() - 8,
        "RIFF size repaired"
    );
    let repaired = read_recording(&path);
    assert!(repaired.len() >= crashed.len());
    find_segment(&repaired, &src).unwrap_or_else(|e| panic!("repaired file: {e}"));
    assert_eq!(
        done.param("RecordingDuration"),
        rounded_seconds(repaired.len()).to_string()
    );

    d.restart();
    std::thread::sleep(Duration::from_secs(3));
    let completed = wh
        .requests_to("/rsc")
        .iter()
        .filter(|r| r.opt_param("RecordingStatus") == Some("completed"))
        .count();
    assert_eq!(completed, 1, "completed is sent once, not on every start");
    assert!(
        wh.requests_to("/action").is_empty(),
        "no action request for a call that died with the daemon"
    );
    d.assert_alive();
    wh.assert_signatures_ok();
}
