//! `[app] voice_url`: the first document is fetched with the standard params (POST form or GET
//! query), relative `action` resolves against the document URL, and the action answer replaces
//! the document (its `<Hangup/>` runs instead of the `<Pause>` left in the first one).

mod common;

use common::*;
use std::time::{Duration, Instant};

fn run(voice_method: &'static str, record_method: &str) {
    let wh = WebhookServer::start();
    wh.route(
        "/app/voice.xml",
        Reply::twiml(&format!(
            r##"<Response><Record action="next?step=2" method="{record_method}" finishOnKey="#" maxLength="30"/><Pause length="20"/><Hangup/></Response>"##
        )),
    );
    wh.route(
        "/app/next",
        Reply::twiml("<Response><Hangup/></Response>").fetch_recording(),
    );
    let d = Daemon::start(
        &[],
        App::VoiceUrl {
            url: wh.url("/app/voice.xml"),
            method: voice_method,
        },
    );
    let c = composite(1.0, 3.4, 1.6);
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &c.ulaw);
    let call = HarkCall::new(&format!("sip:+15551234567@127.0.0.1:{}", d.sip_port))
        .play(&wav)
        .dtmf("#", 5.0)
        .spawn(&d.tmp);
    let first = wh.wait_for("/app/voice.xml", 1, Duration::from_secs(10));
    let action = wh
        .wait_for("/app/next", 1, Duration::from_secs(15))
        .remove(0);
    let out = call.wait(Duration::from_secs(10));
    out.assert_success();
    let hung_up = Instant::now();
    assert!(
        hung_up.duration_since(action.at) < Duration::from_secs(4),
        "Hark must hang up on the action's <Hangup/>, not run the first document's <Pause>"
    );

    assert_eq!(first.len(), 1, "the voice URL is fetched once");
    let v = &first[0];
    assert_eq!(v.method, voice_method);
    check_standard_params(v, "ringing");
    assert_eq!(
        v.param("To"),
        "+15551234567",
        "a phone-number user part is E.164"
    );
    if voice_method == "GET" {
        assert!(v.query.contains("CallSid="), "GET params in the query");
    } else {
        assert_eq!(
            v.header("content-type")
                .map(|c| c.split(';').next().unwrap_or("")),
            Some("application/x-www-form-urlencoded")
        );
    }

    assert_eq!(action.method, record_method.to_uppercase());
    assert_eq!(
        action.query_param("step").as_deref(),
        Some("2"),
        "relative action keeps its query"
    );
    check_standard_params(&action, "in-progress");
    assert_eq!(action.param("CallSid"), v.param("CallSid"));
    assert_eq!(action.param("Digits"), "#");
    check_recording(&d, &action, &decode_all(&c.ulaw), true);
    wh.assert_signatures_ok();
}

#[test]
fn voice_url_post_relative_action_post() {
    run("POST", "POST");
}

#[test]
fn voice_url_get_relative_action_get() {
    run("GET", "GET");
}
