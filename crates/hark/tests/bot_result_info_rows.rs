//! Each `resultInfo` row of SPEC §7 provoked over real SIP/RTP with `hark call` as the caller and
//! the test as the bot: no speech before the initial timeout (400/8510), silence after speech
//! (200/8509), max duration (200/8515), barge-in (8508 for the running and queued prompts), and
//! the caller hanging up mid-operation (410/8528).

mod bot_support;
mod common;

use bot_support::*;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// A bot daemon and a caller streaming `ulaw`; returns them with the call id.
fn call(ulaw: &[u8], hangup_after: Option<f64>) -> (Bot, Daemon, Running, String) {
    let bot = Bot::start();
    let d = bot_daemon(&bot);
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, ulaw);
    let mut c = HarkCall::new(&d.uri("bot")).play(&wav);
    if let Some(s) = hangup_after {
        c = c.hangup_after(s);
    }
    let caller = c.spawn(&d.tmp);
    let id = bot.wait_established(Duration::from_secs(10));
    (bot, d, caller, id)
}

fn hang_up(bot: &Bot, d: &Daemon, id: &str, caller: Running) {
    let del = bot.request(
        "DELETE",
        &call_url(d, id, ""),
        Auth::Bearer(API_TOKEN),
        None,
        Vec::new(),
    );
    assert_eq!(del.status, 204, "{}", del.text());
    caller.wait(Duration::from_secs(10)).assert_success();
    bot.wait_terminated(id, Duration::from_secs(10));
    bot.assert_no_bad_bodies();
}

/// The recording a completed operation points at, downloaded with its token.
fn download(bot: &Bot, n: &Note) -> Vec<i16> {
    let location = n.data["recordingLocation"]
        .as_str()
        .unwrap_or_else(|| panic!("no recordingLocation: {}", n.data));
    let token = n.data["recordingAccessToken"]
        .as_str()
        .expect("recordingAccessToken");
    let r = get_bearer(bot, location, token);
    assert_eq!(r.status, 200, "{}", r.text());
    wav_samples(&r.body)
}

#[test]
fn silence_before_speech_fails_400_8510_after_the_initial_timeout() {
    let (bot, d, caller, id) = call(&vec![ULAW_SILENCE; 20 * 8000], None);
    let body = json!({
        "initialSilenceTimeoutInSeconds": 2,
        "maxSilenceTimeoutInSeconds": 10,
        "maxRecordDurationInSeconds": 20,
    });
    let sent = Instant::now();
    let op = start_op(&bot, &d, &id, "recordResponse", &body);
    let n = bot.wait_op(&id, &op, Duration::from_secs(10));
    assert_eq!(n.status(), Some("failed"), "{}", n.data);
    assert_eq!(n.result(), (400, 8510), "{}", n.data);
    assert_eq!(n.data["completionReason"], "initialSilenceTimeout");
    // Beep (0.5 s) then 2 s of silence; not the 10 s after-speech timer.
    let t = since(sent, n.at);
    assert!((2.3..3.5).contains(&t), "ended {t:.2} s after the request");
    hang_up(&bot, &d, &id, caller);
}

#[test]
fn silence_after_speech_completes_200_8509_with_the_speech() {
    // Speech 1.0–3.0 s (after the beep), then silence.
    let c = composite(1.0, 2.0, 20.0);
    let (bot, d, caller, id) = call(&c.ulaw, None);
    // The initial timer (5 s) would not fire: speech starts 1 s in. After it, 2 s of silence.
    let body = json!({
        "initialSilenceTimeoutInSeconds": 5,
        "maxSilenceTimeoutInSeconds": 2,
        "maxRecordDurationInSeconds": 20,
    });
    let op = start_op(&bot, &d, &id, "recordResponse", &body);
    let n = bot.wait_op(&id, &op, Duration::from_secs(15));
    assert_eq!(n.status(), Some("completed"), "{}", n.data);
    assert_eq!(n.result(), (200, 8509), "{}", n.data);
    let samples = download(&bot, &n);
    let offset = find_segment(&samples, &decode_all(&c.ulaw)).expect("caller's audio");
    let end = offset + samples.len();
    assert!(offset <= c.speech_start, "starts at {:.2} s", secs(offset));
    // Stopped by 2 s of silence after the last speech frame.
    assert_near("recording end", end, c.speech_end + 2 * 8000, 1600);
    hang_up(&bot, &d, &id, caller);
}

#[test]
fn max_duration_completes_200_8515_with_exactly_that_much_audio() {
    let speech = speech_ulaw();
    let (bot, d, caller, id) = call(&speech, None);
    let body = json!({"maxRecordDurationInSeconds": 2, "playBeep": false});
    let op = start_op(&bot, &d, &id, "recordResponse", &body);
    let n = bot.wait_op(&id, &op, Duration::from_secs(10));
    assert_eq!(n.status(), Some("completed"), "{}", n.data);
    assert_eq!(n.result(), (200, 8515), "{}", n.data);
    assert_eq!(n.data["completionReason"], "maxRecordDurationReached");
    let samples = download(&bot, &n);
    find_segment(&samples, &decode_all(&speech)).expect("caller's audio");
    assert_near("recording length", samples.len(), 2 * 8000, 160);
    hang_up(&bot, &d, &id, caller);
}

#[test]
fn barge_in_cancels_running_and_queued_prompts_with_8508_and_records() {
    let speech = speech_ulaw();
    let mut looped = speech.clone();
    looped.extend_from_slice(&speech);
    let (bot, d, caller, id) = call(&looped, None);
    let long = bot.serve_wav("long.wav", &tone(440.0, 10.0, 8000.0));
    let short = bot.serve_wav("short.wav", &tone(600.0, 1.0, 8000.0));
    let running = start_op(
        &bot,
        &d,
        &id,
        "playPrompt",
        &json!({"prompts": [prompt(&long)]}),
    );
    let queued = start_op(
        &bot,
        &d,
        &id,
        "playPrompt",
        &json!({"prompts": [prompt(&short)]}),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let r = post_action(
        &bot,
        &d,
        &id,
        "recordResponse",
        &json!({"bargeInAllowed": true, "maxRecordDurationInSeconds": 2, "playBeep": false}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let rec = r.json()["id"].as_str().expect("id").to_string();
    for op in [&running, &queued] {
        let n = bot.wait_op(&id, op, Duration::from_secs(5));
        assert_eq!(n.status(), Some("failed"), "{}", n.data);
        assert_eq!(n.result(), (400, 8508), "{}", n.data);
        assert_eq!(n.data["completionReason"], "mediaOperationCanceled");
        let t = since(r.sent, n.at);
        assert!(t < 1.0, "prompt {op} canceled {t:.2} s after the barge-in");
    }
    let n = bot.wait_op(&id, &rec, Duration::from_secs(10));
    assert_eq!(n.status(), Some("completed"), "{}", n.data);
    assert_eq!(n.result(), (200, 8515), "{}", n.data);
    let samples = download(&bot, &n);
    let offset = find_segment(&samples, &decode_all(&looped)).expect("caller's audio");
    // Recording began right after the barge-in (~1.5 s into the call), not after the 10 s prompt.
    assert!(
        secs(offset) < 3.0,
        "record started {:.2} s into the call",
        secs(offset)
    );
    hang_up(&bot, &d, &id, caller);
}

#[test]
fn caller_hangup_mid_operation_fails_410_8528_and_keeps_the_audio() {
    let speech = speech_ulaw();
    let (bot, d, caller, id) = call(&speech, Some(3.0));
    let rec = start_op(
        &bot,
        &d,
        &id,
        "recordResponse",
        &json!({"maxRecordDurationInSeconds": 30, "maxSilenceTimeoutInSeconds": 30, "playBeep": false}),
    );
    let prompt_url = bot.serve_wav("p.wav", &tone(440.0, 1.0, 8000.0));
    let queued = start_op(
        &bot,
        &d,
        &id,
        "playPrompt",
        &json!({"prompts": [prompt(&prompt_url)]}),
    );
    caller.wait(Duration::from_secs(10)).assert_success();
    let n = bot.wait_op(&id, &rec, Duration::from_secs(5));
    assert_eq!(n.status(), Some("failed"), "{}", n.data);
    assert_eq!(n.result(), (410, 8528), "{}", n.data);
    // What was heard before the BYE is the caller's audio up to ~3 s.
    let samples = download(&bot, &n);
    let offset = find_segment(&samples, &decode_all(&speech)).expect("caller's audio");
    assert_near("recording end", offset + samples.len(), 3 * 8000, 800);
    let q = bot.wait_op(&id, &queued, Duration::from_secs(5));
    assert_eq!(q.status(), Some("failed"), "{}", q.data);
    assert_eq!(q.result(), (410, 8528), "{}", q.data);
    bot.wait_terminated(&id, Duration::from_secs(5));
    // Operations done, then the call: in that order.
    let last = bot.notes().last().cloned().expect("notes");
    assert_eq!(last.state(), Some("terminated"), "{}", bot.describe());
    bot.assert_no_bad_bodies();
    let mut d = d;
    d.assert_alive();
}

/// A bot daemon with `rtp.timeout = 2` and a raw caller that answers SDP but streams only `ulaw`
/// (possibly nothing), then goes quiet without a BYE.
fn media_loss(ulaw: Option<Vec<u8>>) -> (Bot, Daemon, RawUac, String) {
    let bot = Bot::start();
    let cb = bot.callback_url();
    let d = Daemon::start(
        &[
            ("app.bot_callback_uri", cb.as_str()),
            ("bot.api_token", API_TOKEN),
            ("rtp.timeout", "2"),
        ],
        App::Twiml("<Response><Hangup/></Response>".into()),
    );
    let mut uac = RawUac::new(d.sip_addr());
    let ok = uac.invite(
        "bot",
        &common::sip::pcmu_offer(uac.rtp_port),
        Duration::from_secs(5),
    );
    assert_eq!(ok.status(), Some(200));
    uac.ack();
    let id = bot.wait_established(Duration::from_secs(10));
    if let Some(ulaw) = ulaw {
        let mut rtp = RtpSender::spawn(
            &uac.rtp,
            uac.remote_rtp(&ok),
            vec![RtpPlan::Audio(ulaw)],
            false,
        );
        rtp.join(Duration::from_secs(20));
    }
    (bot, d, uac, id)
}

#[test]
fn no_media_at_all_fails_500_8513() {
    let (bot, mut d, uac, id) = media_loss(None);
    let op = start_op(
        &bot,
        &d,
        &id,
        "recordResponse",
        &json!({"initialSilenceTimeoutInSeconds": 20, "maxRecordDurationInSeconds": 30, "playBeep": false}),
    );
    let n = bot.wait_op(&id, &op, Duration::from_secs(10));
    assert_eq!(n.status(), Some("failed"), "{}", n.data);
    assert_eq!(n.result(), (500, 8513), "{}", n.data);
    uac.wait_request("BYE", Duration::from_secs(5))
        .expect("Hark hangs up a call without media");
    bot.wait_terminated(&id, Duration::from_secs(5));
    d.assert_alive();
}

#[test]
fn media_stopping_after_speech_fails_500_8588_with_the_audio() {
    let (bot, mut d, uac, id) = media_loss(None);
    let op = start_op(
        &bot,
        &d,
        &id,
        "recordResponse",
        &json!({"maxSilenceTimeoutInSeconds": 20, "maxRecordDurationInSeconds": 30, "playBeep": false}),
    );
    let ok = uac
        .find_response("INVITE", 1, 200)
        .expect("the 200 to the INVITE");
    let speech = speech_ulaw()[..3 * 8000].to_vec();
    let mut rtp = RtpSender::spawn(
        &uac.rtp,
        uac.remote_rtp(&ok),
        vec![RtpPlan::Audio(speech.clone())],
        false,
    );
    rtp.join(Duration::from_secs(10));
    let n = bot.wait_op(&id, &op, Duration::from_secs(10));
    assert_eq!(n.status(), Some("failed"), "{}", n.data);
    assert_eq!(n.result(), (500, 8588), "{}", n.data);
    // The audio sent, then the silence Hark fills RTP gaps with (SPEC §3.3) until the timeout.
    let samples = download(&bot, &n);
    let heard = samples.len() - samples.iter().rev().take_while(|&&s| s == 0).count();
    let offset = find_segment(&samples[..heard], &decode_all(&speech)).expect("the audio sent");
    assert_near("end of the audio", offset + heard, speech.len(), 160);
    assert!(
        samples.len() - heard <= 2 * 8000 + 1600,
        "{:.2} s of filler after the last packet; rtp.timeout is 2 s",
        secs(samples.len() - heard)
    );
    uac.wait_request("BYE", Duration::from_secs(5))
        .expect("Hark hangs up a call without media");
    d.assert_alive();
}
