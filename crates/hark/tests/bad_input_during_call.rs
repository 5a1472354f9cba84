//! Hostile input while a call records: malformed SIP on the SIP port, bad in-dialog requests
//! (re-INVITE with broken SDP, INFO with junk, BYE for other dialogs) and bad RTP on the call's
//! own RTP port (truncated, wrong version, RTCP, random, wrong payload type, duplicates, a
//! foreign source). The recording must stay sample-exact, the call must go on to '#', and the
//! daemon must still answer OPTIONS and take a second call.

mod common;

use common::rtp::{dtmf_event, rtp_packet};
use common::sip::{pcmu_offer, udp_exchange, RawUac};
use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

fn bad_rtp(ssrc: u32, seq_now: u16, ts_now: u32) -> Vec<Vec<u8>> {
    let old_seq = seq_now.wrapping_sub(10);
    let old_ts = ts_now.wrapping_sub(1600);
    let loud = [0x00u8; 160];
    let mut v = vec![
        vec![],
        vec![0x80],
        vec![0x80, 0x00, 0x01, 0x02, 0x03],
        // Version 1 and version 0 headers with a loud payload.
        {
            let mut p = rtp_packet(0, false, old_seq, old_ts, ssrc, &loud);
            p[0] = 0x40;
            p
        },
        {
            let mut p = rtp_packet(0, false, old_seq, old_ts, ssrc, &loud);
            p[0] = 0x00;
            p
        },
        // CSRC count 15 on a 20-byte packet.
        {
            let mut p = rtp_packet(0, false, old_seq, old_ts, ssrc, &[0xFF; 8]);
            p[0] = 0x8F;
            p
        },
        // Extension header claiming 65535 words.
        {
            let mut p = rtp_packet(0, false, old_seq, old_ts, ssrc, &[0xBE, 0xDE, 0xFF, 0xFF]);
            p[0] = 0x90;
            p
        },
        // Padding count larger than the payload.
        {
            let mut p = rtp_packet(0, false, old_seq, old_ts, ssrc, &loud);
            p[0] = 0xA0;
            if let Some(last) = p.last_mut() {
                *last = 255;
            }
            p
        },
        // RTCP SR and BYE on the RTP port (no rtcp-mux negotiated).
        {
            let mut p = vec![0x80, 200, 0, 6];
            p.extend_from_slice(&ssrc.to_be_bytes());
            p.extend_from_slice(&[0u8; 20]);
            p
        },
        {
            let mut p = vec![0x81, 203, 0, 1];
            p.extend_from_slice(&ssrc.to_be_bytes());
            p
        },
        // Payload types that were not negotiated (96, PCMA 8), loud, with an old seq.
        rtp_packet(96, false, old_seq, old_ts, ssrc, &loud),
        rtp_packet(8, false, old_seq, old_ts, ssrc, &loud),
        // A duplicate of an old sequence number with different (loud) content.
        rtp_packet(0, false, old_seq, old_ts, ssrc, &loud),
        // Telephone-event with a truncated payload.
        rtp_packet(101, true, old_seq, old_ts, ssrc, &[11]),
        // A jumbo datagram.
        rtp_packet(0, false, old_seq, old_ts, ssrc, &[0x00; 8000]),
    ];
    // Random bytes with a version field that is not 2.
    let mut seed = 0xC0FF_EE11u32;
    for _ in 0..20 {
        let mut p = Vec::with_capacity(172);
        for _ in 0..172 {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            p.push((seed >> 24) as u8);
        }
        p[0] &= 0x3F;
        v.push(p);
    }
    v
}

#[test]
fn hostile_sip_and_rtp_during_recording_leave_it_intact() {
    let wh = WebhookServer::start();
    wh.route(
        "/action",
        Reply::twiml("<Response><Hangup/></Response>").fetch_recording(),
    );
    let mut d = Daemon::start(
        &[],
        App::Twiml(format!(
            r##"<Response><Record action="{}" finishOnKey="#" maxLength="60" timeout="10"/></Response>"##,
            wh.url("/action")
        )),
    );
    let mut uac = RawUac::new(d.sip_addr());
    let ok = uac.invite("rec", &pcmu_offer(uac.rtp_port), Duration::from_secs(5));
    assert_eq!(ok.status(), Some(200));
    uac.ack();
    let hark_rtp: SocketAddr = uac.remote_rtp(&ok);
    let c = composite(1.0, 3.4, 1.6);
    let audio = c.ulaw[..8000 * 5].to_vec();
    let mut rtp = RtpSender::spawn(
        &uac.rtp,
        hark_rtp,
        vec![
            RtpPlan::Audio(audio.clone()),
            RtpPlan::Dtmf(dtmf_event('#')),
        ],
        true,
    );
    std::thread::sleep(Duration::from_millis(1500));

    // RTP junk from the caller's own RTP address, interleaved with the real stream.
    let n = rtp.packets_sent() as u16;
    for p in bad_rtp(rtp.ssrc, 1000u16.wrapping_add(n), 160_000 + 160 * n as u32) {
        let _ = uac.rtp.send_to(&p, hark_rtp);
        std::thread::sleep(Duration::from_millis(3));
    }
    // Loud PCMU from a foreign source port: other SSRC, then our SSRC with old seqs.
    let foreign = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let n = rtp.packets_sent() as u16;
    for i in 0..25u16 {
        let seq = 1000u16.wrapping_add(n).wrapping_sub(30).wrapping_add(i);
        let ts = 160_000u32.wrapping_add(160 * (n as u32).saturating_sub(30) + 160 * i as u32);
        let _ = foreign.send_to(
            &rtp_packet(
                0,
                i == 0,
                7000 + i,
                99_000 + 160 * i as u32,
                0xBAD0_0001,
                &[0x00; 160],
            ),
            hark_rtp,
        );
        let _ = foreign.send_to(
            &rtp_packet(0, false, seq, ts, rtp.ssrc, &[0x00; 160]),
            hark_rtp,
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // Malformed SIP on the SIP port.
    for junk in [
        b"\x00\x01\x02garbage".to_vec(),
        b"BYE sip:x SIP/2.0\r\n\r\n".to_vec(),
        vec![b'Z'; 60_000],
    ] {
        let _ = udp_exchange(d.sip_addr(), |_| junk, Duration::from_millis(100));
    }
    // In-dialog: re-INVITE with broken SDP → 4xx, the call goes on.
    let broken = "v=0\r\no=e2e 4242 2 IN IP4 127.0.0.1\r\ns=e2e\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio notaport RTP/AVP 0\r\n";
    let r = uac.invite("rec", broken, Duration::from_secs(3));
    let code = r.status().unwrap_or(0);
    assert!(
        (400..500).contains(&code),
        "re-INVITE with broken SDP got {}",
        r.first_line
    );
    uac.ack_failure(&r);
    // INFO with junk bodies: answered, but never a finish key.
    for (ct, body) in [
        ("application/dtmf-relay", "Signal=\r\nDuration=abc\r\n"),
        ("application/dtmf-relay", "Signal=ZZ\r\n"),
        ("application/dtmf", "\u{1}\u{2}"),
        ("text/plain", "#"),
    ] {
        let cseq = uac.request("INFO", Some(ct), body);
        let r = uac.wait_final("INFO", cseq, Duration::from_secs(2));
        assert!(r.is_some(), "INFO {ct} {body:?} unanswered");
    }
    // BYE for a dialog that does not exist (other Call-ID, other tag) → 481, call unaffected.
    for (from, to) in [
        ("Call-ID: ", "Call-ID: nosuchcall-"),
        (";tag=", ";tag=other"),
    ] {
        let msg = uac.build_request("BYE", None, "").replacen(from, to, 1);
        let cseq = uac.cseq;
        uac.send(&msg);
        let r = uac.wait_final("BYE", cseq, Duration::from_secs(2));
        assert_eq!(
            r.as_ref().and_then(|m| m.status()),
            Some(481),
            "BYE outside the dialog: {r:?}"
        );
    }
    assert!(
        uac.messages().iter().all(|m| m.method() != Some("BYE")),
        "Hark hung up during the hostile input"
    );

    let bye = uac.wait_request("BYE", Duration::from_secs(15));
    rtp.stop();
    assert!(bye.is_some(), "the call reaches '#' and Hark hangs up");
    let actions = wh.wait_for("/action", 1, Duration::from_secs(5));
    assert_eq!(actions[0].param("Digits"), "#");
    let rec = check_recording(&d, &actions[0], &decode_all(&audio), true);
    assert_near("recording end", rec.end(), c.speech_end + 1600, 480);
    d.assert_alive();

    // A second call works.
    let wav = d.tmp.join("caller.wav");
    write_ulaw_wav(&wav, &c.ulaw);
    HarkCall::new(&d.uri("rec"))
        .play(&wav)
        .dtmf("#", 5.0)
        .run(&d.tmp, Duration::from_secs(30))
        .assert_success();
    let actions = wh.wait_for("/action", 2, Duration::from_secs(5));
    assert_eq!(actions[1].param("Digits"), "#");
    check_recording(&d, &actions[1], &decode_all(&c.ulaw), true);
    assert_eq!(d.recordings().len(), 2);
    wh.assert_signatures_ok();
}
