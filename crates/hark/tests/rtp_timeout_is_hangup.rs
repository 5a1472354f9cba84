//! Media loss during `<Record>`: the caller stops sending RTP and never sends BYE. After
//! `rtp.timeout` (2 s here) Hark treats it as a hangup: keeps the audio, requests the action with
//! Digits=hangup, and sends BYE.

mod common;

use common::sip::{pcmu_offer, RawUac};
use common::*;
use std::time::Duration;

#[test]
fn rtp_silence_of_the_network_ends_call_as_hangup() {
    let wh = WebhookServer::start();
    wh.route(
        "/action",
        Reply::twiml("<Response><Hangup/></Response>").fetch_recording(),
    );
    let mut d = Daemon::start(
        &[("rtp.timeout", "2")],
        App::Twiml(format!(
            r##"<Response><Record action="{}" maxLength="60" timeout="10"/></Response>"##,
            wh.url("/action")
        )),
    );
    let mut uac = RawUac::new(d.sip_addr());
    let ok = uac.invite("rec", &pcmu_offer(uac.rtp_port), Duration::from_secs(5));
    assert_eq!(ok.status(), Some(200));
    uac.ack();
    // 1 s silence, 3.4 s of speech, 0.5 s silence (so the 200 ms trim padding is audio that
    // was sent), then nothing at all.
    let c = composite(1.0, 3.4, 0.5);
    let mut rtp = RtpSender::spawn(
        &uac.rtp,
        uac.remote_rtp(&ok),
        vec![RtpPlan::Audio(c.ulaw.clone())],
        false,
    );
    rtp.join(Duration::from_secs(10));
    let stopped = std::time::Instant::now();
    let bye = uac
        .wait_request("BYE", Duration::from_secs(10))
        .expect("Hark sends BYE after the RTP timeout");
    let after = bye.at.duration_since(stopped);
    assert!(
        after >= Duration::from_millis(1800) && after <= Duration::from_secs(6),
        "BYE {:.2} s after the last RTP packet; rtp.timeout is 2 s",
        after.as_secs_f64()
    );
    let actions = wh.wait_for("/action", 1, Duration::from_secs(5));
    assert_eq!(actions[0].param("Digits"), "hangup");
    let rec = check_recording(&d, &actions[0], &decode_all(&c.ulaw), true);
    assert_near("recording end", rec.end(), c.speech_end + 1600, 480);
    wh.assert_signatures_ok();
    d.assert_alive();
}
