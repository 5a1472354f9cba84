//! Issue 12 item 3: a call from the unchanged Voice SDK in headless Chromium (its microphone
//! plays the test speech) into a TwiML application that records. The voice webhook gets
//! Twilio's client-call parameters (From/Caller `client:alice`, To from the params, Called
//! empty, ApplicationSid, each custom param); the recording holds the browser's speech; the
//! page's hang-up ends the recording with the action webhook.

mod common;
mod twilio_app;

use common::browser::{client_daemon, fake_audio_48k_with_tone, PageRun, StaticServer};
use common::*;
use std::time::Duration;

const KEY_SID: &str = "SKabcdef0123456789abcdef0123456789";
const KEY_SECRET: &str = "browser-call-secret-9e2a";
const APP_SID: &str = "AP0123456789abcdef0123456789abcdef";

/// Hark with TLS, the API key and an application whose voice URL is `wh`'s `/voice`.
fn daemon(wh: &WebhookServer, certs: &TempDir) -> Daemon {
    let voice_url = format!("voice_url = \"{}\"", wh.url("/voice"));
    client_daemon(certs, (KEY_SID, KEY_SECRET), APP_SID, &voice_url)
}

/// Mixed into the browser's microphone: above 4 kHz, so only a wideband call carries it.
const TONE_HZ: f64 = 6000.0;

/// Runs call.html (the browser's microphone plays the test speech with a 6 kHz tone) and
/// returns its result.
fn browser_call(d: &Daemon, dir: &TempDir, params: &str, extra: &str) -> serde_json::Value {
    let fake = dir.path.join("speech_48k.wav");
    fake_audio_48k_with_tone(&data_dir().join("speech_8k_ulaw.wav"), &fake, 10.0, TONE_HZ);
    let server = StaticServer::page_with_sdk("call.html");
    let params = url::form_urlencoded::byte_serialize(params.as_bytes()).collect::<String>();
    let url = format!(
        "{}?token={}&chunderw=127.0.0.1:{}&params={params}{extra}",
        server.url("/call.html"),
        twilio_app::access_token(KEY_SID, KEY_SECRET, APP_SID, "alice", 600),
        d.http_port
    );
    let out = PageRun::new(&url)
        .fake_audio(&fake)
        .timeout(Duration::from_secs(40))
        .run();
    out.expect_result().clone()
}

/// The record-then-hang-up application on `wh`.
fn record_app(wh: &WebhookServer) {
    wh.route(
        "/voice",
        Reply::twiml(&format!(
            "<Response><Record playBeep=\"false\" maxLength=\"20\" timeout=\"0\" action=\"{}\"/></Response>",
            wh.url("/action")
        )),
    );
    wh.route("/action", Reply::twiml("<Response><Hangup/></Response>"));
}

/// A recorded browser call (`extra`: more page query); the recording's rate and samples, after
/// checking it holds 2–6 s of the browser's speech.
fn recorded_call(name: &str, extra: &str) -> (u32, Vec<i16>) {
    common::browser::require_browser();
    let wh = WebhookServer::start();
    record_app(&wh);
    let dir = TempDir::new(name);
    let d = daemon(&wh, &dir);
    let r = browser_call(&d, &dir, r#"{"To":"rec"}"#, &format!("&hold=5000{extra}"));
    assert_eq!(r["accepted"], true, "{r}");
    let action = wh.wait_for("/action", 1, Duration::from_secs(15));
    let path = d.recording_path(action[0].param("RecordingSid"));
    assert_speech_recorded(&path, 2.0..=6.0);
    read_recording_at(&path)
}

/// The SDK prefers Opus: the call is wideband end to end, so the recording is 16 kHz and holds
/// the microphone's 6 kHz tone, which no 8 kHz codec can carry.
#[test]
fn opus_call_is_recorded_wideband_at_16k() {
    let (rate, samples) = recorded_call("browser-opus", "");
    assert_eq!(rate, 16_000, "Opus is recorded wideband");
    let tone = tone_dbfs(&samples, rate, TONE_HZ);
    assert!(
        tone > -36.0,
        "the 6 kHz tone is in the recording: {tone:.1} dBFS"
    );
}

/// With PCMU preferred (`codecPreferences`), the same call is recorded at 8 kHz.
#[test]
fn pcmu_call_is_recorded_at_8k() {
    let (rate, _) = recorded_call("browser-pcmu", "&codecs=pcmu,opus");
    assert_eq!(rate, 8000, "G.711 is recorded at 8 kHz");
}

#[test]
fn browser_call_runs_the_application_and_records_its_speech() {
    common::browser::require_browser();
    let wh = WebhookServer::start();
    record_app(&wh);
    let dir = TempDir::new("browser-call");
    let d = daemon(&wh, &dir);
    let r = browser_call(&d, &dir, r#"{"To":"rec","Lang":"de"}"#, "&hold=5000");
    assert_eq!(r["accepted"], true, "{r}");
    assert_eq!(r["disconnected"], true, "{r}");
    let call_sid = r["callSid"].as_str().expect("CallSid").to_string();
    assert!(call_sid.starts_with("CA"), "{r}");

    let voice = wh.wait_for("/voice", 1, Duration::from_secs(5));
    let v = &voice[0];
    assert_eq!(v.param("CallSid"), call_sid);
    assert_eq!(v.param("From"), "client:alice");
    assert_eq!(v.param("Caller"), "client:alice");
    assert_eq!(v.param("To"), "rec");
    assert_eq!(v.param("Called"), "");
    assert_eq!(v.param("ApplicationSid"), APP_SID);
    assert_eq!(v.param("Lang"), "de");
    wh.assert_signatures_ok();

    let action = wh.wait_for("/action", 1, Duration::from_secs(15));
    let a = &action[0];
    assert_eq!(a.param("CallSid"), call_sid);
    assert_speech_recorded(&d.recording_path(a.param("RecordingSid")), 2.0..=6.0);
}

/// `call.sendDigits('1')` goes out as RFC 4733 (telephone-event negotiated with the browser)
/// and ends a `<Gather numDigits="1">`.
#[test]
fn browser_send_digits_reaches_a_gather() {
    common::browser::require_browser();
    let wh = WebhookServer::start();
    wh.route(
        "/voice",
        Reply::twiml(&format!(
            "<Response><Gather numDigits=\"1\" timeout=\"15\" action=\"{}\"/></Response>",
            wh.url("/gather")
        )),
    );
    wh.route("/gather", Reply::twiml("<Response><Hangup/></Response>"));
    let dir = TempDir::new("browser-gather");
    let d = daemon(&wh, &dir);
    let r = browser_call(&d, &dir, r#"{"To":"menu"}"#, "&hold=8000&digits=1");
    assert_eq!(r["accepted"], true, "{r}");
    let gather = wh.wait_for("/gather", 1, Duration::from_secs(15));
    assert_eq!(gather[0].param("Digits"), "1");
    assert_eq!(
        gather[0].param("CallSid"),
        r["callSid"].as_str().expect("CallSid")
    );
    assert_eq!(
        r["disconnected"], true,
        "Hark's hang-up reached the page: {r}"
    );
}

/// `device.updateToken()` two seconds into a recorded call: the SDK sends a new `listen` and
/// then the call's `invite{reconnect}` on the same socket; Hark answers it and the call goes on
/// to the page's hang-up five seconds later, recorded throughout.
#[test]
fn token_update_mid_call_keeps_the_call() {
    common::browser::require_browser();
    let wh = WebhookServer::start();
    record_app(&wh);
    let dir = TempDir::new("browser-token-update");
    let d = daemon(&wh, &dir);
    let token2 = twilio_app::access_token(KEY_SID, KEY_SECRET, APP_SID, "alice", 900);
    let extra = format!("&hold=6000&update=2000&token2={token2}");
    let r = browser_call(&d, &dir, r#"{"To":"rec"}"#, &extra);
    assert_eq!(r["accepted"], true, "{r}");
    assert_eq!(r["updated"], true, "{r}");
    assert_eq!(r["disconnected"], true, "{r}");
    assert!(r["errors"].as_array().is_some_and(|e| e.is_empty()), "{r}");
    let action = wh.wait_for("/action", 1, Duration::from_secs(15));
    let duration: u32 = action[0]
        .param("RecordingDuration")
        .parse()
        .expect("duration");
    assert!(
        duration >= 5,
        "recorded past the update to the hang-up: {duration} s"
    );
    assert_eq!(action[0].param("Digits"), "hangup");
}

/// The SDK's WebSocket drops mid-call (closed under it): the SDK reconnects, re-listens and
/// sends `invite{reconnect}` with the same CallSid; Hark rebinds the call to the new
/// connection, so the page's hang-up over it ends the call at once, recorded throughout.
#[test]
fn signalling_drop_mid_call_reconnects_with_the_same_call_sid() {
    common::browser::require_browser();
    let wh = WebhookServer::start();
    record_app(&wh);
    let dir = TempDir::new("browser-ws-drop");
    let d = daemon(&wh, &dir);
    let started = std::time::Instant::now();
    let r = browser_call(&d, &dir, r#"{"To":"rec"}"#, "&hold=7000&dropws=2000");
    assert_eq!(r["accepted"], true, "{r}");
    assert_eq!(r["dropped"], true, "{r}");
    assert_eq!(r["disconnected"], true, "{r}");
    let action = wh.wait_for("/action", 1, Duration::from_secs(15));
    assert_eq!(
        action[0].param("CallSid"),
        r["callSid"].as_str().expect("CallSid")
    );
    assert_eq!(action[0].param("Digits"), "hangup");
    let duration: u32 = action[0]
        .param("RecordingDuration")
        .parse()
        .expect("duration");
    assert!(
        (6..=8).contains(&duration),
        "recorded across the drop to the hang-up: {duration} s"
    );
    // The hang-up came over the new connection: no wait for a grace or a media timeout.
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "the call ended with the page's hang-up: {took:?}"
    );
    let log = d.log();
    assert!(
        log.contains("client call rebound to this connection"),
        "no rebind in the log"
    );
}
