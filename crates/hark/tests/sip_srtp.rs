//! Issue 14 item 4: SRTP keyed by SDES (RFC 4568) for trunks that offer `RTP/SAVP`. The caller
//! offers `a=crypto` (AES_CM_128_HMAC_SHA1_80), protects its speech and RFC 4733 '#' with its
//! key; Hark answers `RTP/SAVP` with a key of its own. The recording is sample-exact, the beep
//! Hark sends authenticates and decrypts with Hark's answered key (and not with the caller's),
//! and forged packets from a stranger are refused without touching the recording. An SAVP
//! offer without a usable crypto line is 488.

mod common;

use base64::Engine;
use common::rtp::rtp_packet;
use common::sip::{RawUac, SipMsg};
use common::*;
use media_engine::srtp::{SrtpContext, SrtpKey, SrtpSuite};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const CALLER_KEY: [u8; 30] = [
    0x0b, 0x51, 0x3c, 0x92, 0x7a, 0x14, 0xe6, 0x21, 0x9f, 0x40, 0x88, 0x2d, 0x6e, 0xc3, 0x57, 0x01,
    0xa9, 0x3e, 0x72, 0x1b, 0xd4, 0x66, 0x0f, 0x95, 0x2a, 0xc8, 0x3d, 0x71, 0xe2, 0x44,
];

fn key_of(bytes: &[u8]) -> SrtpKey {
    let mut k = SrtpKey {
        master_key: [0; 16],
        master_salt: [0; 14],
    };
    k.master_key.copy_from_slice(&bytes[..16]);
    k.master_salt.copy_from_slice(&bytes[16..30]);
    k
}

fn savp_offer(rtp_port: u16, crypto: &str) -> String {
    format!(
        "v=0\r\no=trunk 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n{crypto}a=ptime:20\r\na=sendrecv\r\n"
    )
}

/// Hark's key and suite from its SDP answer.
fn answered_key(ok: &SipMsg) -> Vec<u8> {
    assert!(ok.body.contains("RTP/SAVP"), "{}", ok.body);
    let line = ok
        .body
        .lines()
        .find(|l| l.starts_with("a=crypto:"))
        .unwrap_or_else(|| panic!("no a=crypto in the answer: {}", ok.body));
    assert!(
        line.starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{line}"
    );
    let b64 = line.rsplit("inline:").next().unwrap_or("").trim();
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64 key");
    assert_eq!(key.len(), 30);
    key
}

#[test]
fn an_sdes_srtp_call_is_recorded_exactly_and_hark_answers_in_srtp() {
    let wh = WebhookServer::start();
    wh.route(
        "/action",
        Reply::twiml("<Response><Hangup/></Response>").fetch_recording(),
    );
    let d = Daemon::start(
        &[],
        App::Twiml(format!(
            r##"<Response><Record action="{}" finishOnKey="#" maxLength="30" timeout="10"/></Response>"##,
            wh.url("/action")
        )),
    );
    let mut uac = RawUac::new(d.sip_addr());
    let inline = base64::engine::general_purpose::STANDARD.encode(CALLER_KEY);
    let crypto = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{inline}|2^31\r\n");
    let ok = uac.invite(
        "rec",
        &savp_offer(uac.rtp_port, &crypto),
        Duration::from_secs(5),
    );
    assert_eq!(ok.status(), Some(200), "{}", ok.raw);
    uac.ack();
    let hark_key = answered_key(&ok);
    assert_ne!(hark_key, CALLER_KEY.to_vec(), "Hark keys its own direction");
    let hark_rtp = uac.remote_rtp(&ok);

    // Hark's beep arrives as SRTP: it opens with Hark's key and not with the caller's.
    let mut opened = 0;
    let mut with_wrong_key_failed = 0;
    let mut theirs = SrtpContext::new(SrtpSuite::AesCm128HmacSha1_80, &key_of(&hark_key));
    let mut wrong = SrtpContext::new(SrtpSuite::AesCm128HmacSha1_80, &key_of(&CALLER_KEY));
    uac.rtp
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline && opened < 10 {
        if let Ok((n, _)) = uac.rtp.recv_from(&mut buf) {
            let mut copy = buf[..n].to_vec();
            if wrong.unprotect_rtp(&mut copy).is_err() {
                with_wrong_key_failed += 1;
            }
            let mut packet = buf[..n].to_vec();
            let len = theirs
                .unprotect_rtp(&mut packet)
                .expect("Hark's SRTP authenticates");
            assert_eq!(len, 12 + 160, "a 20 ms PCMU packet under its tag");
            opened += 1;
        }
    }
    assert!(
        opened >= 10,
        "Hark's RTP arrived protected ({opened} packets)"
    );
    assert_eq!(with_wrong_key_failed, opened);

    // Forged packets (right shape, no valid tag) from a stranger change nothing.
    let stranger = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for i in 0..20u16 {
        let mut p = rtp_packet(
            0,
            false,
            2000 + i,
            320_000 + 160 * u32::from(i),
            0xBAD,
            &[0u8; 160],
        );
        p.extend_from_slice(&[0u8; 10]);
        let _ = stranger.send_to(&p, hark_rtp);
    }

    let c = composite(1.0, 3.4, 1.6);
    let audio = c.ulaw[..8000 * 5].to_vec();
    let mut ours = SrtpContext::new(SrtpSuite::AesCm128HmacSha1_80, &key_of(&CALLER_KEY));
    let protect: common::rtp::PacketTransform = Box::new(move |p: &mut Vec<u8>| {
        ours.protect_rtp(p).expect("protect");
    });
    talk_then_pound_with(&d, &uac, &uac.rtp, hark_rtp, &audio, Some(protect));
    let actions = wh.wait_for("/action", 1, Duration::from_secs(5));
    assert_eq!(actions[0].param("Digits"), "#");
    let rec = check_recording(&d, &actions[0], &decode_all(&audio), true);
    assert_near("recording end", rec.end(), c.speech_end + 1600, 480);
}

#[test]
fn an_savp_offer_without_a_usable_crypto_line_is_488() {
    let d = Daemon::start(&[], App::Twiml("<Response><Record/></Response>".into()));
    let mut uac = RawUac::new(d.sip_addr());
    // A suite Hark lacks, and an MKI it does not take.
    let crypto = "a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj\r\n\
                  a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n";
    let r = uac.invite(
        "rec",
        &savp_offer(uac.rtp_port, crypto),
        Duration::from_secs(5),
    );
    assert_eq!(r.status(), Some(488), "{}", r.raw);
    assert!(
        r.header("Warning").is_some_and(|w| w.starts_with("306 ")),
        "{}",
        r.raw
    );
    uac.ack_failure(&r);
    assert!(d.recordings().is_empty());
}
