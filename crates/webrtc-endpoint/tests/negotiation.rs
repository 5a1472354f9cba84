//! Codec choice by the offer's order, the answer's contents, and bad input as typed errors.

mod common;

use std::time::Instant;

use common::{addr, LEG_ADDR};
use webrtc_endpoint::error::SdpKind;
use webrtc_endpoint::{AudioCodec, LegConfig, WebRtcError, WebRtcLeg};

/// An offer as Chrome writes it for the Voice SDK (no candidates: no trickle), with the
/// payload types of the m-line in `order`.
fn chrome_offer(order: &str) -> String {
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS 5d2c",
        &format!("m=audio 9 UDP/TLS/RTP/SAVPF {order}"),
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:Xq2p",
        "a=ice-pwd:0HwfDmxrUXsK3b5b7dU0y6Ay",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 8B:1F:4A:6E:2D:74:C5:0B:33:9A:1E:77:5F:62:0C:D4:9E:21:3B:88:46:AF:10:5C:E2:71:99:03:BD:6A:4F:2E",
        "a=setup:actpass",
        "a=mid:0",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendrecv",
        "a=msid:5d2c 0b7e",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:63 red/48000/2",
        "a=fmtp:63 111/111",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:13 CN/8000",
        "a=rtpmap:110 telephone-event/48000",
        "a=rtpmap:126 telephone-event/8000",
        "a=ssrc:3735928559 cname:n3xX0bQ9",
        "a=ssrc:3735928559 msid:5d2c 0b7e",
        "",
    ]
    .join("\r\n")
}

fn answer(opus: bool, order: &str) -> Result<(WebRtcLeg, webrtc_endpoint::Answer), WebRtcError> {
    let config = LegConfig::new(opus).expect("certificate");
    WebRtcLeg::accept_offer(
        &config,
        Instant::now(),
        &chrome_offer(order),
        addr(LEG_ADDR),
    )
}

/// The payload types of the answer's m-line.
fn answered_pts(sdp: &str) -> Vec<u8> {
    let line = sdp
        .lines()
        .find(|l| l.starts_with("m=audio "))
        .expect("audio m-line");
    line.split(' ')
        .skip(3)
        .map(|pt| pt.parse().expect("pt"))
        .collect()
}

#[test]
fn chrome_default_order_without_opus_support_chooses_pcmu() {
    let (_, answer) = answer(false, "111 63 9 0 8 13 110 126").expect("answer");
    assert_eq!(answer.chosen.codec, AudioCodec::Pcmu);
    assert_eq!(
        (answer.chosen.pt, answer.chosen.telephone_event_pt),
        (0, Some(126))
    );
    // Only the codec and its telephone-event: the SDK cannot re-sort us onto Opus.
    assert_eq!(answered_pts(&answer.sdp), [0, 126]);
    assert!(answer.sdp.contains("a=ice-lite"));
    assert!(answer.sdp.contains("a=setup:passive"));
    assert!(answer.sdp.contains("a=candidate:"));
    assert!(answer.sdp.contains(" 127.0.0.1 40000 typ host"));
    assert!(answer.sdp.contains("a=fingerprint:sha-256 "));
    assert!(answer.sdp.contains("a=rtcp-mux"));
}

#[test]
fn opus_first_is_chosen_when_enabled() {
    let (leg, answer) = answer(true, "111 63 9 0 8 13 110 126").expect("answer");
    assert_eq!(answer.chosen.codec, AudioCodec::Opus);
    assert_eq!(
        (answer.chosen.pt, answer.chosen.telephone_event_pt),
        (111, Some(110))
    );
    // Chrome's DTMF sender takes the 48 kHz event beside Opus; 8 kHz stays for senders that
    // pair it with any codec.
    assert_eq!(answered_pts(&answer.sdp), [111, 126, 110]);
    // Decoded wideband, events on the 48 kHz clock.
    let config = answer.chosen.receiver_config();
    assert_eq!(config.payload, media_engine::receiver::AudioPayload::Opus);
    assert_eq!(
        (config.codec_pt, config.telephone_event_pt),
        (111, Some(110))
    );
    assert_eq!(answer.chosen.sample_rate(), 16_000);
    assert_eq!(leg.chosen(), Some(answer.chosen));
}

#[test]
fn sdk_order_pcmu_first_wins_over_opus() {
    let (_, answer) = answer(true, "0 111 63 9 8 13 110 126").expect("answer");
    assert_eq!(answer.chosen.codec, AudioCodec::Pcmu);
    assert_eq!(answered_pts(&answer.sdp), [0, 126]);
    let config = answer.chosen.receiver_config();
    assert_eq!((config.codec_pt, config.telephone_event_pt), (0, Some(126)));
}

#[test]
fn pcma_before_pcmu_is_chosen() {
    let (_, answer) = answer(false, "111 8 0 110 126").expect("answer");
    assert_eq!(answer.chosen.codec, AudioCodec::Pcma);
    assert_eq!(answered_pts(&answer.sdp), [8, 126]);
}

#[test]
fn offer_without_telephone_event_answers_the_codec_alone() {
    let (_, answer) = answer(false, "0 8").expect("answer");
    assert_eq!(answer.chosen.codec, AudioCodec::Pcmu);
    assert_eq!(answer.chosen.telephone_event_pt, None);
    assert_eq!(answered_pts(&answer.sdp), [0]);
}

#[test]
fn offer_without_a_codec_we_take_is_refused() {
    let err = answer(false, "111 63 9 13 110").expect_err("only Opus and G.722");
    match err {
        WebRtcError::NoCommonCodec { kind, offered } => {
            assert_eq!(kind, SdpKind::Offer);
            assert_eq!(offered, [111, 63, 9, 13, 110]);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn malformed_sdp_is_a_typed_error() {
    let config = LegConfig::new(false).expect("certificate");
    for garbage in ["", "hello", "v=0\r\nm=audio x\r\n", "\u{0}\u{1}\u{2}"] {
        let err = WebRtcLeg::accept_offer(&config, Instant::now(), garbage, addr(LEG_ADDR))
            .expect_err("garbage offer");
        assert!(
            matches!(
                err,
                WebRtcError::Sdp {
                    kind: SdpKind::Offer,
                    ..
                }
            ),
            "{garbage:?}: {err:?}"
        );
    }
    let (mut leg, _) =
        WebRtcLeg::create_offer(&config, Instant::now(), addr(LEG_ADDR)).expect("offer");
    let err = leg.accept_answer("not sdp").expect_err("garbage answer");
    assert!(matches!(
        err,
        WebRtcError::Sdp {
            kind: SdpKind::Answer,
            ..
        }
    ));
}

#[test]
fn garbage_datagrams_and_stray_sources_are_typed_errors() {
    let (mut leg, _) = answer(false, "0 126").expect("answer");
    let now = Instant::now();
    let from = addr("127.0.0.1:50000");
    for garbage in [
        &[][..],
        &[0xFF; 3][..],
        &[0x42; 200][..],
        b"INVITE sip:x SIP/2.0\r\n",
    ] {
        let err = leg
            .handle_datagram(now, from, garbage)
            .expect_err("garbage");
        assert!(matches!(err, WebRtcError::Datagram { .. }), "{err:?}");
    }
    // Well-formed RTP from an address ICE never saw.
    let mut rtp = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
    rtp.extend_from_slice(&[0xFF; 160]);
    let err = leg
        .handle_datagram(now, addr("192.0.2.7:4000"), &rtp)
        .expect_err("stray RTP");
    assert!(matches!(err, WebRtcError::ForeignSource(_)), "{err:?}");
    // Still a working leg afterwards.
    assert!(matches!(
        leg.poll_output(),
        Ok(webrtc_endpoint::Output::Timeout(_))
    ));
    assert!(matches!(
        leg.send_digit(now, 'x'),
        Err(WebRtcError::NotDtmf('x'))
    ));
}

#[test]
fn unusable_local_address_is_refused() {
    let config = LegConfig::new(false).expect("certificate");
    let err = WebRtcLeg::accept_offer(
        &config,
        Instant::now(),
        &chrome_offer("0 126"),
        addr("0.0.0.0:40000"),
    )
    .expect_err("unspecified address");
    assert!(matches!(err, WebRtcError::Candidate { .. }), "{err:?}");
}

#[test]
fn an_answer_without_an_offer_is_refused() {
    let (mut leg, _) = answer(false, "0 126").expect("answer");
    let err = leg
        .accept_answer(&chrome_offer("0 126"))
        .expect_err("nothing pending");
    assert!(matches!(err, WebRtcError::NoOfferPending), "{err:?}");
}

#[test]
fn media_before_the_answer_is_refused() {
    let config = LegConfig::new(false).expect("certificate");
    let now = Instant::now();
    let (mut leg, offer) = WebRtcLeg::create_offer(&config, now, addr(LEG_ADDR)).expect("offer");
    // Offering: every codec we take, telephone-event at 8 kHz.
    assert!(offer.contains("a=rtpmap:0 PCMU/8000"));
    assert!(offer.contains("a=rtpmap:8 PCMA/8000"));
    assert!(offer.contains("telephone-event/8000"));
    assert!(!offer.contains("opus"));
    assert!(leg.chosen().is_none());
    assert!(matches!(
        leg.write_audio(now, 0, &[0xFF; 160]),
        Err(WebRtcError::NotNegotiated)
    ));
    assert!(matches!(
        leg.send_digit(now, '1'),
        Err(WebRtcError::NotNegotiated)
    ));
}

#[test]
fn legs_of_one_config_share_the_dtls_certificate() {
    let config = LegConfig::new(false).expect("certificate");
    let fingerprint = |sdp: &str| {
        sdp.lines()
            .find(|l| l.starts_with("a=fingerprint:"))
            .map(str::to_owned)
            .expect("fingerprint")
    };
    let offer = chrome_offer("0 126");
    let (_, a) =
        WebRtcLeg::accept_offer(&config, Instant::now(), &offer, addr(LEG_ADDR)).expect("answer");
    let (_, b) =
        WebRtcLeg::accept_offer(&config, Instant::now(), &offer, addr(LEG_ADDR)).expect("answer");
    assert_eq!(fingerprint(&a.sdp), fingerprint(&b.sdp));
    // ICE credentials stay per leg.
    let ufrag = |sdp: &str| {
        sdp.lines()
            .find(|l| l.starts_with("a=ice-ufrag:"))
            .map(str::to_owned)
    };
    assert_ne!(ufrag(&a.sdp), ufrag(&b.sdp));
}
