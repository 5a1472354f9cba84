//! Issue 13: `<Dial><Client>` reaches a browser. The unchanged Voice SDK in headless Chromium
//! registers as `bob`; a SIP caller (`hark call`) runs `<Dial record="record-from-answer-dual">
//! <Client>bob<Parameter …/></Client></Dial>`; the page accepts (with the custom parameter)
//! and hangs up 6 s later. The bridge relays G.711 to Opus and back; the recording holds the
//! caller's sentence exactly on channel 1 and the browser's microphone on channel 2.

mod common;
mod twilio_app;

use common::browser::{fake_audio_48k, PageRun, StaticServer};
use common::*;
use std::path::PathBuf;
use std::time::Duration;

const KEY_SID: &str = "SKabcdef0123456789abcdef0123456789";
const KEY_SECRET: &str = "dial-browser-secret-8d2e";
const APP_SID: &str = "AP0123456789abcdef0123456789abcdef";

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn dial_client_rings_the_browser_bridges_and_records_both_sides() {
    let wh = WebhookServer::start();
    let notify = WebhookServer::start();
    notify.route("/registered", Reply::empty());
    wh.route("/dialed", Reply::twiml("<Response><Hangup/></Response>"));
    let dir = TempDir::new("dial-browser");
    let (cert, key) = common::tls::self_signed_cert(&dir, "hark");
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let mut d = Daemon::prepare(
        &[("http.tls_cert", &cert), ("http.tls_key", &key)],
        App::Twiml(format!(
            r#"<Response><Dial action="{}" record="record-from-answer-dual" timeout="20"><Client><Identity>bob</Identity><Parameter name="ticket" value="T-42"/></Client></Dial></Response>"#,
            wh.url("/dialed")
        )),
    );
    d.append_config(&format!(
        "\n[[api_key]]\nsid = \"{KEY_SID}\"\nsecret = \"{KEY_SECRET}\"\n\
         \n[[application]]\nsid = \"{APP_SID}\"\ntwiml = \"<Response/>\"\n"
    ));
    d.launch();

    // Bob's browser: speaks the speech fixture into its microphone.
    let fake = dir.path.join("speech_48k.wav");
    fake_audio_48k(&data_dir().join("speech_8k_ulaw.wav"), &fake, 10.0);
    let token = twilio_app::access_token(KEY_SID, KEY_SECRET, APP_SID, "bob", 600);
    let notify_url: String =
        url::form_urlencoded::byte_serialize(notify.url("/registered").as_bytes()).collect();
    let http_port = d.http_port;
    let page = std::thread::spawn(move || {
        let server = StaticServer::page_with_sdk("incoming.html");
        let url = format!(
            "{}?token={token}&chunderw=127.0.0.1:{http_port}&notify={notify_url}&answer=accept&hold=6000",
            server.url("/incoming.html"),
        );
        PageRun::new(&url)
            .fake_audio(&fake)
            .timeout(Duration::from_secs(45))
            .run()
            .expect_result()
            .clone()
    });
    notify.wait_for("/registered", 1, Duration::from_secs(20));

    let caller_wav = data("agent_8k_ulaw.wav");
    HarkCall::new(&d.uri("support"))
        .play(&caller_wav)
        .hangup_after(15.0)
        .run(&d.tmp, Duration::from_secs(40))
        .assert_success();
    let r = page.join().expect("page thread");
    assert_eq!(r["accepted"], true, "{r}");
    assert_eq!(r["disconnected"], true, "{r}");
    assert_eq!(r["errors"].as_array().map(Vec::len), Some(0), "{r}");
    assert_eq!(r["incoming"]["To"], "client:bob", "{r}");
    assert_eq!(r["incoming"]["custom"]["ticket"], "T-42", "{r}");

    let action = wh.wait_for("/dialed", 1, Duration::from_secs(10))[0].clone();
    assert_eq!(action.param("DialCallStatus"), "completed");
    assert_eq!(action.param("DialBridged"), "true");
    assert_eq!(
        action.param("DialCallSid"),
        r["incoming"]["CallSid"].as_str().unwrap()
    );
    let bridged: u32 = action.param("DialCallDuration").parse().expect("duration");
    assert!(
        (5..=7).contains(&bridged),
        "bridged {bridged} s (the page hung up after 6 s)"
    );

    let path = d.recording_path(action.param("RecordingSid"));
    let rd = hound::WavReader::open(&path).expect("wav");
    assert_eq!(rd.spec().channels, 2);
    let s: Vec<i16> = rd
        .into_samples::<i16>()
        .map(|x| x.expect("sample"))
        .collect();
    let caller: Vec<i16> = s.iter().step_by(2).copied().collect();
    let browser: Vec<i16> = s.iter().skip(1).step_by(2).copied().collect();
    // The caller's sentence, sample for sample (G.711 all the way).
    let sent = decode_all(&read_ulaw_wav(&caller_wav));
    let (a, b) = speech_span(&caller, -40.0).expect("caller speech");
    find_segment(&caller[a..b], &sent).unwrap_or_else(|e| panic!("channel 1: {e}"));
    // The browser's microphone (Opus, decoded and brought to 8 kHz): speech most of the time.
    let loud = browser.chunks(800).filter(|c| dbfs(rms(c)) > -40.0).count();
    let blocks = browser.len() / 800;
    assert!(
        loud * 2 > blocks,
        "channel 2 is the browser's speech: {loud} of {blocks} 100 ms blocks are loud"
    );
    wh.assert_signatures_ok();
    d.assert_alive();
}
