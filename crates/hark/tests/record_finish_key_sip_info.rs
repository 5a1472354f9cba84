//! `<Record>` ended by '#' sent as SIP INFO (application/dtmf-relay), from `hark call
//! --dtmf-mode info` and from SIPp's uac_info_dtmf.xml.

mod common;

use common::*;
use std::time::Duration;

fn app(wh: &WebhookServer) -> App {
    wh.route(
        "/action",
        Reply::twiml("<Response><Hangup/></Response>").fetch_recording(),
    );
    App::Twiml(format!(
        r##"<Response><Record action="{}" finishOnKey="#" maxLength="30" timeout="10"/></Response>"##,
        wh.url("/action")
    ))
}

#[test]
fn sip_info_pound_from_hark_call_ends_recording() {
    let wh = WebhookServer::start();
    let d = Daemon::start(&[], app(&wh));
    let c = composite(1.0, 3.4, 1.6);
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &c.ulaw);
    HarkCall::new(&d.uri("rec"))
        .play(&wav)
        .dtmf("#", 5.0)
        .dtmf_mode("info")
        .run(&d.tmp, Duration::from_secs(30))
        .assert_success();
    let actions = wh.wait_for("/action", 1, Duration::from_secs(5));
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].param("Digits"), "#");
    let rec = check_recording(&d, &actions[0], &decode_all(&c.ulaw), true);
    assert_near("recording end", rec.end(), c.speech_end + 1600, 480);
    wh.assert_signatures_ok();
}

#[test]
fn sip_info_pound_from_sipp_ends_recording() {
    let wh = WebhookServer::start();
    let d = Daemon::start(&[], app(&wh));
    Sipp::new("uac_info_dtmf.xml", d.sip_addr())
        .run(&d.tmp, Duration::from_secs(40))
        .assert_success();
    let actions = wh.wait_for("/action", 1, Duration::from_secs(5));
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].param("Digits"), "#");
    let speech = decode_all(&speech_ulaw());
    let rec = check_recording(&d, &actions[0], &speech, true);
    let (_, speech_end) = speech_span(&speech, -45.0).expect("speech");
    // The pcap holds the whole fixture: the INFO comes after its last word.
    assert_near("recording end", rec.end(), speech_end + 1600, 480);
    wh.assert_signatures_ok();
}
