//! Issue 12 item 7: the demo page works out of the box. With `client.dev_tokens = true` and
//! nothing else (no TLS, no API key or application configured), `http://127.0.0.1:PORT/client/`
//! gets a token from `/client/token`, registers, and calls the application Hark runs for callers
//! with the browser's microphone; the recording holds its speech. With dev tokens off (the
//! default) `/client/token` is 404. Identities outside Twilio's alphabet are 400.

mod common;

use common::browser::{fake_audio_48k, PageRun};
use common::*;
use std::time::Duration;

#[test]
fn demo_page_calls_the_default_application_and_is_recorded() {
    common::browser::require_browser();
    let wh = WebhookServer::start();
    wh.route("/action", Reply::twiml("<Response><Hangup/></Response>"));
    let d = Daemon::start(
        &[("client.dev_tokens", "true")],
        App::Twiml(format!(
            "<Response><Record playBeep=\"false\" maxLength=\"20\" timeout=\"0\" action=\"{}\"/></Response>",
            wh.url("/action")
        )),
    );
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", d.http_port).parse().expect("addr");
    let (status, body) =
        http_get(addr, "/client/token?identity=new%20comer").expect("token endpoint");
    assert_eq!(status, 400, "{body}");

    let dir = TempDir::new("demo-page");
    let fake = dir.path.join("speech_48k.wav");
    fake_audio_48k(&data_dir().join("speech_8k_ulaw.wav"), &fake, 10.0);
    let url = format!(
        "http://127.0.0.1:{}/client/?autocall=1&hold=5000&identity=newcomer",
        d.http_port
    );
    let out = PageRun::new(&url)
        .fake_audio(&fake)
        .timeout(Duration::from_secs(40))
        .run();
    let r = out.expect_result().clone();
    assert_eq!(r["registered"], true, "{r}");
    assert_eq!(r["accepted"], true, "{r}");
    assert_eq!(r["disconnected"], true, "{r}");
    assert_eq!(r["errors"], serde_json::json!([]), "{r}");

    let action = wh.wait_for("/action", 1, Duration::from_secs(15));
    let a = &action[0];
    assert_eq!(a.param("CallSid"), r["callSid"].as_str().expect("CallSid"));
    assert_eq!(a.param("From"), "client:newcomer");
    assert_speech_recorded(&d.recording_path(a.param("RecordingSid")), 2.0..=6.0);
}

#[test]
fn dev_tokens_are_off_by_default() {
    let d = Daemon::start(&[], App::Twiml("<Response><Hangup/></Response>".into()));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", d.http_port).parse().expect("addr");
    let (status, _) = http_get(addr, "/client/token").expect("answer");
    assert_eq!(status, 404);
    // The page itself and the SDK are served either way.
    let (status, page) = http_get(addr, "/client/").expect("page");
    assert_eq!(status, 200);
    assert!(page.contains("/client/twilio.min.js"), "{page}");
    let (status, _) = http_get(addr, "/client/twilio.min.js").expect("sdk");
    assert_eq!(status, 200);
}
