//! Issue 12 item 4: Hark calls a registered Voice SDK client. The unchanged SDK in headless
//! Chromium registers as `bob`; the official Twilio helper library places the call
//! (`calls.create(to="client:bob")`); the page accepts (its microphone's speech is recorded by
//! the call's TwiML), rejects (`busy`) or ignores it (Hark cancels at `Timeout`:
//! `no-answer`); either side hangs up. Status callbacks carry Twilio's outbound-api progress.

mod common;
mod twilio_app;
mod twilio_client;

use common::browser::{client_daemon, fake_audio_48k, PageRun, StaticServer};
use common::*;
use serde_json::Value;
use std::time::Duration;

const KEY_SID: &str = "SKabcdef0123456789abcdef0123456789";
const KEY_SECRET: &str = "browser-incoming-secret-41c7";
const APP_SID: &str = "AP0123456789abcdef0123456789abcdef";
const FROM: &str = "+15550001234";

struct Setup {
    wh: WebhookServer,
    /// The page's "registered" request (unsigned: kept off `wh`, whose requests are all checked).
    notify: WebhookServer,
    dir: TempDir,
    d: Daemon,
}

fn setup(name: &str) -> Setup {
    let wh = WebhookServer::start();
    let notify = WebhookServer::start();
    notify.route("/registered", Reply::empty());
    wh.route("/status", Reply::empty());
    let dir = TempDir::new(name);
    let d = client_daemon(
        &dir,
        (KEY_SID, KEY_SECRET),
        APP_SID,
        "twiml = \"<Response/>\"",
    );
    Setup { wh, notify, dir, d }
}

/// Opens incoming.html as `bob` in a thread (`answer`: accept, reject or ignore; `extra`: more
/// query) and waits until it has registered.
fn bob(s: &Setup, answer: &str, extra: &str) -> std::thread::JoinHandle<Value> {
    let fake = s.dir.path.join("speech_48k.wav");
    fake_audio_48k(&data_dir().join("speech_8k_ulaw.wav"), &fake, 10.0);
    let token = twilio_app::access_token(KEY_SID, KEY_SECRET, APP_SID, "bob", 600);
    let notify: String =
        url::form_urlencoded::byte_serialize(s.notify.url("/registered").as_bytes()).collect();
    let http_port = s.d.http_port;
    let extra = extra.to_string();
    let answer = answer.to_string();
    let page = std::thread::spawn(move || {
        let server = StaticServer::page_with_sdk("incoming.html");
        let url = format!(
            "{}?token={token}&chunderw=127.0.0.1:{http_port}&notify={notify}&answer={answer}{extra}",
            server.url("/incoming.html"),
        );
        let out = PageRun::new(&url)
            .fake_audio(&fake)
            .timeout(Duration::from_secs(45))
            .run();
        out.expect_result().clone()
    });
    s.notify.wait_for("/registered", 1, Duration::from_secs(20));
    page
}

/// `calls.create(to="client:bob", …)` with the official helper; returns its report.
fn place_call(s: &Setup, program: &[&str], more: &[&str]) -> Value {
    let mut args: Vec<String> = vec![
        "--base-url".into(),
        format!("https://127.0.0.1:{}", s.d.http_port),
        "--account-sid".into(),
        ACCOUNT_SID.into(),
        "--auth-token".into(),
        AUTH_TOKEN.into(),
        "--ca-bundle".into(),
        s.dir.join("hark-cert.pem").display().to_string(),
        "--to".into(),
        "client:bob".into(),
        "--from".into(),
        FROM.into(),
        "--status-callback".into(),
        s.wh.url("/status"),
    ];
    args.extend(program.iter().chain(more).map(|a| a.to_string()));
    let out = TempDir::new("place-call");
    let run = twilio_client::run_script("place_call.py", &args, &out, Duration::from_secs(60));
    run.assert_success();
    serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("report is not JSON ({e}): {}", run.stdout))
}

/// The CallStatus of each progress callback, in order, once `completed` (the last) arrived.
fn progress(s: &Setup, n: usize) -> Vec<Recorded> {
    let got = s.wh.wait_for("/status", n, Duration::from_secs(30));
    s.wh.assert_signatures_ok();
    got
}

fn statuses(events: &[Recorded]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.param("CallStatus").to_string())
        .collect()
}

#[test]
fn accepted_call_runs_its_twiml_records_the_browser_and_the_page_hangs_up() {
    common::browser::require_browser();
    let s = setup("incoming-accept");
    s.wh.route(
        "/voice",
        Reply::twiml(&format!(
            "<Response><Record playBeep=\"false\" maxLength=\"20\" timeout=\"0\" action=\"{}\"/></Response>",
            s.wh.url("/action")
        )),
    );
    s.wh.route("/action", Reply::twiml("<Response><Hangup/></Response>"));
    let page = bob(&s, "accept", "&hold=5000");
    let report = place_call(&s, &["--url", &s.wh.url("/voice")], &[]);
    let created = &report["created"];
    let call_sid = created["sid"].as_str().expect("sid").to_string();
    assert!(call_sid.starts_with("CA"), "{report}");
    assert_eq!(created["status"], "queued", "{report}");
    assert_eq!(created["direction"], "outbound-api", "{report}");
    assert_eq!(created["to"], "client:bob", "{report}");

    let r = page.join().expect("page thread");
    assert_eq!(r["accepted"], true, "{r}");
    assert_eq!(r["disconnected"], true, "{r}");
    assert_eq!(r["incoming"]["CallSid"], call_sid.as_str(), "{r}");
    assert_eq!(r["incoming"]["From"], FROM, "{r}");
    assert_eq!(r["incoming"]["To"], "client:bob", "{r}");
    assert_eq!(r["incoming"]["AccountSid"], ACCOUNT_SID, "{r}");

    let voice = s.wh.wait_for("/voice", 1, Duration::from_secs(5));
    let v = &voice[0];
    assert_eq!(v.param("CallSid"), call_sid);
    assert_eq!(v.param("Direction"), "outbound-api");
    assert_eq!(v.param("To"), "client:bob");
    assert_eq!(v.param("From"), FROM);
    assert_eq!(v.param("CallStatus"), "in-progress");
    let action = s.wh.wait_for("/action", 1, Duration::from_secs(15));
    assert_speech_recorded(
        &s.d.recording_path(action[0].param("RecordingSid")),
        2.0..=6.0,
    );

    let events = progress(&s, 4);
    assert_eq!(
        statuses(&events),
        ["initiated", "ringing", "in-progress", "completed"]
    );
    assert!(events.iter().all(|e| e.param("CallSid") == call_sid));
    let duration: u64 = events[3]
        .param("CallDuration")
        .parse()
        .expect("CallDuration");
    assert!(
        (4..=7).contains(&duration),
        "answered for about 5 s: {duration}"
    );
}

#[test]
fn hark_hangs_up_an_accepted_call_and_the_page_sees_it() {
    common::browser::require_browser();
    let s = setup("incoming-server-hangup");
    let page = bob(&s, "accept", "");
    let twiml = "<Response><Pause length=\"2\"/><Hangup/></Response>";
    let report = place_call(&s, &["--twiml", twiml], &[]);
    let r = page.join().expect("page thread");
    assert_eq!(r["accepted"], true, "{r}");
    assert_eq!(
        r["disconnected"], true,
        "Hark's hang-up reached the page: {r}"
    );
    assert_eq!(r["incoming"]["CallSid"], report["created"]["sid"], "{r}");
    let events = progress(&s, 4);
    assert_eq!(events[3].param("CallStatus"), "completed");
}

#[test]
fn rejected_call_is_busy() {
    common::browser::require_browser();
    let s = setup("incoming-reject");
    let page = bob(&s, "reject", "");
    place_call(
        &s,
        &["--twiml", "<Response><Say>never</Say></Response>"],
        &[],
    );
    let r = page.join().expect("page thread");
    assert_eq!(r["rejected"], true, "{r}");
    assert_eq!(r["accepted"], false, "{r}");
    let events = progress(&s, 3);
    assert_eq!(statuses(&events), ["initiated", "ringing", "busy"]);
    assert_eq!(events[2].param("CallDuration"), "0");
}

#[test]
fn ignored_call_is_canceled_at_the_timeout_and_no_answer() {
    common::browser::require_browser();
    let s = setup("incoming-ignore");
    let page = bob(&s, "ignore", "");
    let started = std::time::Instant::now();
    place_call(
        &s,
        &["--twiml", "<Response><Say>never</Say></Response>"],
        &["--timeout", "3"],
    );
    let r = page.join().expect("page thread");
    assert_eq!(r["canceled"], true, "the page got Hark's cancel: {r}");
    let events = progress(&s, 3);
    assert_eq!(statuses(&events), ["initiated", "ringing", "no-answer"]);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3),
        "canceled only at the timeout: {waited:?}"
    );
}

#[test]
fn call_canceled_over_the_api_while_ringing_stops_the_ringing() {
    common::browser::require_browser();
    let s = setup("incoming-api-cancel");
    let page = bob(&s, "ignore", "");
    let twiml = "<Response><Say>never</Say></Response>";
    let more = [
        "--timeout",
        "30",
        "--hangup-after",
        "1.5",
        "--hangup-status",
        "canceled",
    ];
    let report = place_call(&s, &["--twiml", twiml], &more);
    assert_eq!(
        report["updated"]["sid"], report["created"]["sid"],
        "{report}"
    );
    let r = page.join().expect("page thread");
    assert_eq!(r["canceled"], true, "{r}");
    let events = progress(&s, 3);
    assert_eq!(statuses(&events), ["initiated", "ringing", "canceled"]);
}

#[test]
fn a_client_that_is_not_registered_is_no_answer_at_once() {
    let s = setup("incoming-nobody");
    let started = std::time::Instant::now();
    let report = place_call(&s, &["--twiml", "<Response/>"], &["--timeout", "30"]);
    assert_eq!(report["created"]["status"], "queued", "{report}");
    let events = progress(&s, 3);
    assert_eq!(statuses(&events), ["initiated", "ringing", "no-answer"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "did not ring for the timeout"
    );
}
