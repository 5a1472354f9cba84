//! SIPp uac_rfc2833.xml (our pcaps: speech then '#' continuing the same RTP stream) against
//! Hark: one recording, exact audio, Digits=#, Hark hangs up.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn sipp_speech_then_rfc2833_pound_is_recorded_exactly() {
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
    Sipp::new("uac_rfc2833.xml", d.sip_addr())
        .run(&d.tmp, Duration::from_secs(40))
        .assert_success();
    let actions = wh.wait_for("/action", 1, Duration::from_secs(5));
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].param("Digits"), "#");
    let speech = decode_all(&speech_ulaw());
    let rec = check_recording(&d, &actions[0], &speech, true);
    let (_, speech_end) = speech_span(&speech, -45.0).expect("speech");
    assert_near("recording end", rec.end(), speech_end + 1600, 480);
    assert_eq!(d.recordings().len(), 1);
    wh.assert_signatures_ok();
}
