//! re-INVITEs during `<Record>` (hold a=sendonly, unhold, a new media address) are answered
//! and the recording continues as ONE file with exactly the audio sent, finished by '#'.

mod common;

use common::rtp::dtmf_event;
use common::sip::{pcmu_offer, sdp_offer, RawUac};
use common::*;
use std::net::UdpSocket;
use std::time::Duration;

fn app(wh: &WebhookServer) -> App {
    wh.route(
        "/action",
        Reply::twiml("<Response><Hangup/></Response>").fetch_recording(),
    );
    App::Twiml(format!(
        r##"<Response><Record action="{}" finishOnKey="#" maxLength="60" timeout="10"/></Response>"##,
        wh.url("/action")
    ))
}

#[test]
fn sipp_hold_unhold_then_pound_gives_one_exact_recording() {
    let wh = WebhookServer::start();
    let d = Daemon::start(&[], app(&wh));
    Sipp::new("uac_reinvite_hold.xml", d.sip_addr())
        .run(&d.tmp, Duration::from_secs(40))
        .assert_success();
    let actions = wh.wait_for("/action", 1, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(wh.requests_to("/action").len(), 1);
    assert_eq!(actions[0].param("Digits"), "#");
    let speech = decode_all(&speech_ulaw());
    let rec = check_recording(&d, &actions[0], &speech, true);
    let (_, speech_end) = speech_span(&speech, -45.0).expect("speech");
    assert_near("recording end", rec.end(), speech_end + 1600, 480);
    assert!(
        rec.samples.len() > 6 * 8000,
        "the recording spans the hold period"
    );
    assert_eq!(d.recordings().len(), 1);
    wh.assert_signatures_ok();
}

#[test]
fn reinvite_to_new_media_port_keeps_recording_exact() {
    let wh = WebhookServer::start();
    let mut d = Daemon::start(&[], app(&wh));
    let mut uac = RawUac::new(d.sip_addr());
    let ok = uac.invite("rec", &pcmu_offer(uac.rtp_port), Duration::from_secs(5));
    assert_eq!(ok.status(), Some(200));
    uac.ack();
    let hark_rtp = uac.remote_rtp(&ok);
    let c = composite(1.0, 3.4, 1.6);
    let mut rtp = RtpSender::spawn(
        &uac.rtp,
        hark_rtp,
        vec![
            RtpPlan::Audio(c.ulaw[..8000 * 5].to_vec()),
            RtpPlan::Dtmf(dtmf_event('#')),
        ],
        true,
    );
    // 2.5 s in: hold, then move the media to a new local port.
    std::thread::sleep(Duration::from_millis(2500));
    let hold = sdp_offer(
        uac.rtp_port,
        &[(0, "PCMU/8000"), (101, "telephone-event/8000")],
        "sendonly",
        2,
    );
    let r = uac.invite("rec", &hold, Duration::from_secs(3));
    assert_eq!(r.status(), Some(200), "hold re-INVITE: {}", r.first_line);
    uac.ack();
    std::thread::sleep(Duration::from_millis(500));
    let new_sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let new_port = new_sock.local_addr().expect("addr").port();
    rtp.pause();
    let moved = sdp_offer(
        new_port,
        &[(0, "PCMU/8000"), (101, "telephone-event/8000")],
        "sendrecv",
        3,
    );
    let r = uac.invite("rec", &moved, Duration::from_secs(3));
    assert_eq!(r.status(), Some(200), "move re-INVITE: {}", r.first_line);
    uac.ack();
    let new_hark_rtp = uac.remote_rtp(&r);
    rtp.switch(&new_sock, new_hark_rtp);
    rtp.resume();
    let bye = uac.wait_request("BYE", Duration::from_secs(15));
    rtp.stop();
    assert!(
        bye.is_some(),
        "Hark hangs up after '#' and the action's <Hangup/>"
    );
    let actions = wh.wait_for("/action", 1, Duration::from_secs(5));
    assert_eq!(actions[0].param("Digits"), "#");
    // The sender stops its RTP clock for ~50 ms around the move (same SSRC, continuous
    // timestamps). No sample may be lost, changed or inserted: Hark keeps the stream's
    // timestamp mapping across the move.
    let (rec, inserted) =
        check_recording_tolerant(&d, &actions[0], &decode_all(&c.ulaw[..8000 * 5]), true, 0);
    assert_eq!(inserted, 0, "silence inserted at the media move");
    assert_near("recording end", rec.end_minus(0), c.speech_end + 1600, 480);
    assert_eq!(d.recordings().len(), 1);
    wh.assert_signatures_ok();
    d.assert_alive();
}
