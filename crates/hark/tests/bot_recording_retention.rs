//! Bots' recordings and their retention (issue 6, SPEC §7): with
//! `bot.recording_retention = "call"` a recording made by `recordResponse` is downloadable with
//! its access token while the call lasts and deleted (file, metadata) 10 s after the call ends,
//! as Microsoft Graph discards them; by default ("keep") it stays, listed by the REST API.

mod bot_support;
mod common;

use bot_support::*;
use common::*;
use serde_json::json;
use std::time::Duration;

/// Places a bot call, records the caller until '#', downloads the recording, hangs up with
/// DELETE; returns the recording SID and its location.
fn record_then_hang_up(bot: &Bot, d: &mut Daemon) -> (String, String, String) {
    let c = composite(1.0, 2.0, 10.0);
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &c.ulaw);
    let caller = HarkCall::new(&d.uri("bot"))
        .play(&wav)
        .dtmf("#", 3.5)
        .spawn(&d.tmp);
    let id = bot.wait_established(Duration::from_secs(10));
    let op = start_op(
        bot,
        d,
        &id,
        "recordResponse",
        &json!({"stopTones": ["#"], "maxRecordDurationInSeconds": 20}),
    );
    let done = bot.wait_op(&id, &op, Duration::from_secs(15));
    assert_eq!(done.result(), (200, 8514), "{}", done.data);
    let location = done.data["recordingLocation"]
        .as_str()
        .expect("recordingLocation")
        .to_string();
    let token = done.data["recordingAccessToken"]
        .as_str()
        .expect("recordingAccessToken")
        .to_string();
    let sid = location.rsplit('/').next().expect("sid").to_string();
    // During the call the bot downloads it, whatever the retention.
    let got = get_bearer(bot, &location, &token);
    assert_eq!(got.status, 200, "{}", got.text());
    assert!(wav_samples(&got.body).len() > 8000, "a real recording");
    assert!(d.recording_path(&sid).exists());
    let del = bot.request(
        "DELETE",
        &call_url(d, &id, ""),
        Auth::Bearer(API_TOKEN),
        None,
        Vec::new(),
    );
    assert_eq!(del.status, 204, "{}", del.text());
    caller.wait(Duration::from_secs(10)).assert_success();
    bot.wait_terminated(&id, Duration::from_secs(10));
    (sid, location, token)
}

fn rest_fetch(bot: &Bot, d: &Daemon, sid: &str) -> u16 {
    bot.request(
        "GET",
        &format!("{}.json", d.recording_url(sid)),
        Auth::Basic(ACCOUNT_SID, AUTH_TOKEN),
        None,
        Vec::new(),
    )
    .status
}

#[test]
fn retention_call_deletes_the_bot_recording_when_the_call_ends() {
    let bot = Bot::start();
    let mut d = Daemon::start(
        &[
            ("app.bot_callback_uri", bot.callback_url().as_str()),
            ("bot.api_token", API_TOKEN),
            ("bot.recording_retention", "call"),
        ],
        App::Twiml("<Response><Hangup/></Response>".into()),
    );
    let (sid, location, token) = record_then_hang_up(&bot, &mut d);
    // A grace period (10 s) lets a bot whose operation the hangup cut still fetch it.
    let ended = std::time::Instant::now();
    assert_eq!(
        get_bearer(&bot, &location, &token).status,
        200,
        "just after the call"
    );
    let gone = wait_until(Duration::from_secs(20), || {
        (!d.recording_path(&sid).exists()).then_some(())
    });
    assert!(
        gone.is_some(),
        "{sid}.wav still on disk 20 s after the call"
    );
    let after = ended.elapsed();
    assert!(
        after >= Duration::from_secs(9),
        "deleted {after:?} after the call, before the grace period"
    );
    assert_eq!(rest_fetch(&bot, &d, &sid), 404, "REST still lists {sid}");
    let r = get_bearer(&bot, &location, &token);
    assert_eq!(r.status, 404, "download after the call: {}", r.text());
    d.assert_alive();
}

#[test]
fn retention_keep_is_the_default_and_lists_the_bot_recording_after_the_call() {
    let bot = Bot::start();
    let mut d = bot_daemon(&bot);
    let (sid, location, token) = record_then_hang_up(&bot, &mut d);
    // Past the 10 s grace after which "call" retention deletes.
    std::thread::sleep(Duration::from_secs(12));
    assert!(d.recording_path(&sid).exists(), "{sid}.wav deleted");
    assert_eq!(rest_fetch(&bot, &d, &sid), 200);
    assert_eq!(get_bearer(&bot, &location, &token).status, 200);
    d.assert_alive();
}
