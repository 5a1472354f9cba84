//! The action URL fails (HTTP 500, or no answer before the webhook timeout): the recording is
//! still on disk and served, the call ends with Hark's BYE, and the daemon keeps working.

mod common;

use common::*;
use std::time::Duration;

fn run(reply: Reply, overrides: &[(&str, &str)], call_timeout: Duration) {
    let wh = WebhookServer::start();
    wh.route("/action", reply);
    let mut d = Daemon::start(
        overrides,
        App::Twiml(format!(
            r##"<Response><Record action="{}" finishOnKey="#" maxLength="30"/></Response>"##,
            wh.url("/action")
        )),
    );
    let c = composite(1.0, 3.4, 1.6);
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &c.ulaw);
    // Without --hangup-after the caller only exits 0 when Hark sends BYE.
    HarkCall::new(&d.uri("rec"))
        .play(&wav)
        .dtmf("#", 5.0)
        .run(&d.tmp, call_timeout)
        .assert_success();
    let action = wh.wait_for("/action", 1, Duration::from_secs(1)).remove(0);
    assert_eq!(action.param("Digits"), "#");
    let rec = check_recording(&d, &action, &decode_all(&c.ulaw), false);
    let url = d.recording_url(&rec.sid);
    let body = http_get(&url);
    assert_eq!(body.0, 200, "GET {url} after the failed webhook");
    assert_eq!(body.1, std::fs::read(&rec.path).expect("file"));
    d.assert_alive();
    wh.assert_signatures_ok();
}

fn http_get(url: &str) -> (u16, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let r = reqwest::Client::new()
            .get(url)
            .basic_auth(common::ACCOUNT_SID, Some(common::AUTH_TOKEN))
            .send()
            .await
            .expect("GET recording");
        let s = r.status().as_u16();
        (s, r.bytes().await.expect("body").to_vec())
    })
}

#[test]
fn action_500_keeps_recording_and_hangs_up() {
    run(
        Reply::twiml("<Response><Hangup/></Response>").status(500),
        &[],
        Duration::from_secs(30),
    );
}

#[test]
fn action_timeout_keeps_recording_and_hangs_up() {
    // webhook.timeout_ms = 2 s; the handler answers after 8 s.
    run(
        Reply::twiml("<Response><Hangup/></Response>").delay(Duration::from_secs(8)),
        &[("webhook.timeout_ms", "2000")],
        Duration::from_secs(30),
    );
}
