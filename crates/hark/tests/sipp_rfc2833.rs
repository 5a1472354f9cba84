//! SIPp scenarios that speak then press '#' over RFC 4733, against Hark: one recording, exact
//! audio up to 200 ms after the speech, Digits=#, Hark hangs up.
//! - uac_rfc2833.xml: our pcaps, '#' continuing the speech's RTP stream;
//! - uac_rfc2833_shipped_pcap.xml: '#' from sip-tester's shipped
//!   /usr/share/sip-tester/dtmf_2833_pound.pcap — a different SSRC from the speech and end
//!   packets that reuse one sequence number. Hark must still finish.

mod common;

use common::*;
use std::time::Duration;

/// Runs `scenario` against a `<Record finishOnKey="#">` daemon and checks the recording.
fn speech_then_pound_is_recorded_exactly(scenario: &str) -> Daemon {
    let wh = WebhookServer::start();
    wh.route(
        "/action",
        Reply::twiml("<Response><Hangup/></Response>").fetch_recording(),
    );
    let d = Daemon::start(
        &[],
        App::Twiml(format!(
            r##"<Response><Record action="{}" finishOnKey="#" maxLength="30"/></Response>"##,
            wh.url("/action")
        )),
    );
    Sipp::new(scenario, d.sip_addr())
        .run(&d.tmp, Duration::from_secs(40))
        .assert_success();
    let actions = wh.wait_for("/action", 1, Duration::from_secs(5));
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].param("Digits"), "#");
    let speech = decode_all(&speech_ulaw());
    let rec = check_recording(&d, &actions[0], &speech, true);
    let (_, speech_end) = speech_span(&speech, -45.0).expect("speech");
    assert_near("recording end", rec.end(), speech_end + 1600, 480);
    wh.assert_signatures_ok();
    d
}

#[test]
fn sipp_speech_then_rfc2833_pound_is_recorded_exactly() {
    let d = speech_then_pound_is_recorded_exactly("uac_rfc2833.xml");
    assert_eq!(d.recordings().len(), 1);
}

#[test]
fn sipp_shipped_pound_pcap_finishes_recording() {
    require_sipp();
    assert!(
        std::path::Path::new("/usr/share/sip-tester/dtmf_2833_pound.pcap").exists(),
        "/usr/share/sip-tester/dtmf_2833_pound.pcap missing: run scripts/setup.sh (sip-tester)"
    );
    speech_then_pound_is_recorded_exactly("uac_rfc2833_shipped_pcap.xml");
}
