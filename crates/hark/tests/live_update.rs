//! Twilio's live call update (issue 6): `POST /2010-04-01/Accounts/{AC}/Calls/{CallSid}.json`
//! with `Twiml`, `Url` (+ `Method`) or `Status=completed` on real SIP/RTP calls, TwiML and bot.

mod bot_support;
mod common;

use bot_support::*;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

const HANGUP: &str = "<Response><Hangup/></Response>";

/// A TwiML call whose voice URL answers `doc`; returns the caller and its CallSid.
fn twiml_call(doc: &str) -> (WebhookServer, Daemon, Running, String, Vec<u8>) {
    let wh = WebhookServer::start();
    wh.route("/voice", Reply::twiml(doc));
    let d = Daemon::start(
        &[],
        App::VoiceUrl {
            url: wh.url("/voice"),
            method: "POST",
        },
    );
    let speech = speech_ulaw();
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &speech);
    let caller = HarkCall::new(&d.uri("live")).play(&wav).spawn(&d.tmp);
    let voice = wh.wait_for("/voice", 1, Duration::from_secs(10));
    let sid = voice[0].param("CallSid").to_string();
    (wh, d, caller, sid, speech)
}

/// Waits for the caller to see the server's BYE; returns seconds from `since` to its exit.
fn ended_by_server(caller: Running, from: Instant) -> f64 {
    let out = caller.wait(Duration::from_secs(15));
    let t = from.elapsed().as_secs_f64();
    out.assert_success();
    assert!(
        out.stdout.contains("ended by the server"),
        "caller: {}",
        out.stdout
    );
    t
}

/// The update answers the Call resource.
fn check_call_json(r: &Resp, sid: &str) {
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["sid"], sid);
    assert_eq!(v["account_sid"], ACCOUNT_SID);
}

#[test]
fn twiml_hangup_ends_a_pause_at_once() {
    let (_wh, mut d, caller, sid, _) = twiml_call(r#"<Response><Pause length="30"/></Response>"#);
    std::thread::sleep(Duration::from_millis(1000));
    let bot = Bot::start();
    let r = twilio_update(&bot, &d, &sid, &[("Twiml", HANGUP)]);
    check_call_json(&r, &sid);
    let t = ended_by_server(caller, r.sent);
    assert!(t < 1.0, "BYE {t:.2} s after the update");
    d.assert_alive();
}

#[test]
fn twiml_hangup_during_record_keeps_the_audio_and_skips_the_action() {
    let wh = WebhookServer::start();
    let doc = format!(
        r#"<Response><Record action="{}" maxLength="60" timeout="30" playBeep="false" trim="do-not-trim"/></Response>"#,
        wh.url("/action")
    );
    wh.route("/voice", Reply::twiml(&doc));
    let mut d = Daemon::start(
        &[],
        App::VoiceUrl {
            url: wh.url("/voice"),
            method: "POST",
        },
    );
    let speech = speech_ulaw();
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &speech);
    let caller = HarkCall::new(&d.uri("live")).play(&wav).spawn(&d.tmp);
    let sid = wh.wait_for("/voice", 1, Duration::from_secs(10))[0]
        .param("CallSid")
        .to_string();
    std::thread::sleep(Duration::from_millis(3000));
    let bot = Bot::start();
    let r = twilio_update(&bot, &d, &sid, &[("Twiml", HANGUP)]);
    check_call_json(&r, &sid);
    let t = ended_by_server(caller, r.sent);
    assert!(t < 1.0, "BYE {t:.2} s after the update");
    // SPEC §3.2: stop_reason redirected → no action request; the audio is kept.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(wh.requests_to("/action").is_empty(), "action requested");
    let files = d.recordings();
    assert_eq!(files.len(), 1, "{files:?}");
    let samples = read_recording(&files[0]);
    let offset = find_segment(&samples, &decode_all(&speech)).expect("caller's audio");
    assert_near("recording end", offset + samples.len(), 3 * 8000, 1600);
    d.assert_alive();
}

#[test]
fn status_completed_hangs_up() {
    let (_wh, mut d, caller, sid, _) = twiml_call(r#"<Response><Pause length="30"/></Response>"#);
    std::thread::sleep(Duration::from_millis(1000));
    let bot = Bot::start();
    let r = twilio_update(&bot, &d, &sid, &[("Status", "completed")]);
    check_call_json(&r, &sid);
    let t = ended_by_server(caller, r.sent);
    assert!(t < 1.0, "BYE {t:.2} s after the update");
    d.assert_alive();
}

#[test]
fn url_redirects_fetch_and_run_the_document_post_then_get() {
    let (wh, mut d, caller, sid, _) = twiml_call(r#"<Response><Pause length="30"/></Response>"#);
    wh.route(
        "/next",
        Reply::twiml(r#"<Response><Pause length="30"/></Response>"#),
    );
    wh.route(
        "/last",
        Reply::twiml(r#"<Response><Pause length="1"/><Hangup/></Response>"#),
    );
    std::thread::sleep(Duration::from_millis(800));
    let bot = Bot::start();
    let next = wh.url("/next");
    let r = twilio_update(&bot, &d, &sid, &[("Url", next.as_str())]);
    check_call_json(&r, &sid);
    let n = wh.wait_for("/next", 1, Duration::from_secs(3));
    assert_eq!(n[0].method, "POST", "Method defaults to POST");
    assert_eq!(n[0].param("CallSid"), sid);
    check_standard_params(&n[0], "in-progress");
    std::thread::sleep(Duration::from_millis(500));
    let last = wh.url("/last");
    let r = twilio_update(&bot, &d, &sid, &[("Url", last.as_str()), ("Method", "GET")]);
    check_call_json(&r, &sid);
    let l = wh.wait_for("/last", 1, Duration::from_secs(3));
    assert_eq!(l[0].method, "GET");
    assert_eq!(l[0].param("CallSid"), sid);
    // The fetched document runs: 1 s of pause, then the hangup.
    let t = ended_by_server(caller, r.sent);
    assert!((0.9..2.0).contains(&t), "BYE {t:.2} s after the update");
    wh.assert_signatures_ok();
    d.assert_alive();
}

#[test]
fn unknown_call_404_ended_call_21220_bad_auth_401_bad_form_400() {
    let (_wh, mut d, caller, sid, _) = twiml_call(r#"<Response><Pause length="30"/></Response>"#);
    std::thread::sleep(Duration::from_millis(500));
    let bot = Bot::start();
    let ghost = "CA0123456789abcdef0123456789abcdef";
    let r = twilio_update(&bot, &d, ghost, &[("Twiml", HANGUP)]);
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["code"], 20404);
    let r = bot.request(
        "POST",
        &format!(
            "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json",
            d.public_url()
        ),
        Auth::Basic(ACCOUNT_SID, "wrong"),
        Some("application/x-www-form-urlencoded"),
        b"Status=completed".to_vec(),
    );
    assert_eq!(r.status, 401, "{}", r.text());
    let r = twilio_update(&bot, &d, &sid, &[("Method", "POST")]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["code"], 21400);
    let r = twilio_update(&bot, &d, &sid, &[("Url", "ftp://x/y")]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["code"], 21205);
    // None of those touched the call; a real update still works.
    let r = twilio_update(&bot, &d, &sid, &[("Status", "completed")]);
    check_call_json(&r, &sid);
    ended_by_server(caller, r.sent);
    // Over now: as Twilio, a redirect is 21220; hanging up again answers the ended call.
    std::thread::sleep(Duration::from_millis(300));
    let r = twilio_update(&bot, &d, &sid, &[("Twiml", HANGUP)]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["code"], 21220);
    let r = twilio_update(&bot, &d, &sid, &[("Status", "completed")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "completed");
    assert_eq!(r.json()["sid"], sid.as_str());
    d.assert_alive();
}

#[test]
fn bot_call_redirected_to_twiml_cancels_its_operation_and_ends() {
    let bot = Bot::start();
    let mut d = bot_daemon(&bot);
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &speech_ulaw());
    let caller = HarkCall::new(&d.uri("bot")).play(&wav).spawn(&d.tmp);
    let id = bot.wait_established(Duration::from_secs(10));
    let op = start_op(
        &bot,
        &d,
        &id,
        "recordResponse",
        &json!({"maxRecordDurationInSeconds": 30, "maxSilenceTimeoutInSeconds": 30}),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let r = twilio_update(&bot, &d, &id, &[("Twiml", HANGUP)]);
    check_call_json(&r, &id);
    let n = bot.wait_op(&id, &op, Duration::from_secs(5));
    assert_eq!(n.status(), Some("failed"), "{}", n.data);
    assert_eq!(n.result(), (400, 8508), "{}", n.data);
    let t = ended_by_server(caller, r.sent);
    assert!(t < 1.0, "BYE {t:.2} s after the update");
    bot.assert_no_bad_bodies();
    d.assert_alive();
}
