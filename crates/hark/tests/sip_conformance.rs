//! SIP behaviour seen from the wire, with hand-written messages (no SIP library): OPTIONS,
//! 405 (501 for unknown methods) + Allow, INVITE retransmissions, CANCEL (SIPp), 488, malformed input over UDP and TCP,
//! and a recorded call over TCP (SIPp -t t1).

mod common;

use common::sip::{options_request, pcmu_offer, sdp_offer, tcp_exchange, udp_exchange, RawUac};
use common::*;
use std::net::SocketAddr;
use std::time::Duration;

fn record_app(wh: &WebhookServer) -> App {
    wh.route(
        "/action",
        Reply::twiml("<Response><Hangup/></Response>").fetch_recording(),
    );
    App::Twiml(format!(
        r##"<Response><Record action="{}" finishOnKey="#" maxLength="30"/></Response>"##,
        wh.url("/action")
    ))
}

fn plain_daemon() -> Daemon {
    Daemon::start(
        &[],
        App::Twiml("<Response><Record maxLength=\"30\"/></Response>".into()),
    )
}

fn allow_set(m: &SipMsg) -> Vec<String> {
    m.headers_named("allow")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn options_over_udp_gets_200_with_allow_and_echoed_headers() {
    let d = plain_daemon();
    let mut req = String::new();
    let rs = udp_exchange(
        d.sip_addr(),
        |local| {
            req = options_request(local, d.sip_addr(), "UDP");
            req.clone().into_bytes()
        },
        Duration::from_millis(800),
    );
    assert_eq!(rs.len(), 1, "exactly one response: {rs:?}");
    let r = &rs[0];
    assert_eq!(r.status(), Some(200));
    let sent = SipMsg::parse(req.as_bytes(), d.sip_addr()).expect("parse own request");
    for h in ["via", "call-id", "cseq", "from"] {
        assert_eq!(r.header(h), sent.header(h), "{h} copied into the response");
    }
    assert!(r.to_tag().is_some(), "UAS adds a To tag");
    let allow = allow_set(r);
    for m in ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO"] {
        assert!(allow.contains(&m.to_string()), "Allow lacks {m}: {allow:?}");
    }
}

#[test]
fn register_and_other_methods_get_405_and_unknown_ones_501_with_allow() {
    let d = plain_daemon();
    for method in ["REGISTER", "SUBSCRIBE", "MESSAGE", "PUBLISH", "FROBNICATE"] {
        let rs = udp_exchange(
            d.sip_addr(),
            |local| {
                options_request(local, d.sip_addr(), "UDP")
                    .replace("OPTIONS sip:", &format!("{method} sip:"))
                    .replace("CSeq: 1 OPTIONS", &format!("CSeq: 1 {method}"))
                    .into_bytes()
            },
            Duration::from_millis(800),
        );
        let finals: Vec<&SipMsg> = rs.iter().filter(|m| m.status() >= Some(200)).collect();
        assert_eq!(finals.len(), 1, "{method}: {rs:?}");
        // RFC 3261 §8.2.1 / §21.5.2: known and not served 405, unknown 501 (RFC 4475 intmeth).
        let expected = if method == "FROBNICATE" { 501 } else { 405 };
        assert_eq!(finals[0].status(), Some(expected), "{method}");
        let allow = allow_set(finals[0]);
        assert!(
            allow.contains(&"INVITE".to_string()),
            "{method}: Allow {allow:?}"
        );
        assert!(
            !allow.contains(&method.to_string()),
            "{method} listed in Allow"
        );
    }
}

#[test]
fn retransmitted_invite_makes_exactly_one_call() {
    let wh = WebhookServer::start();
    wh.route(
        "/voice",
        Reply::twiml(&format!(
            r##"<Response><Record action="{}" finishOnKey="#" maxLength="30"/></Response>"##,
            wh.url("/action")
        )),
    );
    wh.route("/action", Reply::twiml("<Response><Hangup/></Response>"));
    let d = Daemon::start(
        &[],
        App::VoiceUrl {
            url: wh.url("/voice"),
            method: "POST",
        },
    );
    let mut uac = RawUac::new(d.sip_addr());
    let invite = uac.build_invite("rec", &pcmu_offer(uac.rtp_port));
    for _ in 0..3 {
        uac.send(&invite);
        std::thread::sleep(Duration::from_millis(100));
    }
    let ok = uac
        .wait_final("INVITE", 1, Duration::from_secs(10))
        .expect("final response to INVITE");
    assert_eq!(ok.status(), Some(200));
    uac.to_tag = ok.to_tag();
    uac.remote_target = ok.contact_uri();
    // A late retransmission after the 200 must not start anything either.
    uac.send(&invite);
    std::thread::sleep(Duration::from_millis(200));
    uac.ack();
    let c = composite(0.8, 2.0, 0.4);
    let mut rtp = RtpSender::spawn(
        &uac.rtp,
        uac.remote_rtp(&ok),
        vec![RtpPlan::Audio(c.ulaw.clone()), RtpPlan::Dtmf(11)],
        true,
    );
    let bye = uac.wait_request("BYE", Duration::from_secs(15));
    rtp.stop();
    assert!(bye.is_some(), "Hark hangs up after the action's <Hangup/>");
    std::thread::sleep(Duration::from_millis(500));

    let oks = uac
        .responses("INVITE", 1)
        .into_iter()
        .filter(|m| m.status() == Some(200))
        .collect::<Vec<_>>();
    let tags: std::collections::BTreeSet<_> = oks.iter().map(|m| m.to_tag()).collect();
    assert_eq!(
        tags.len(),
        1,
        "one dialog (one To tag) for all 200s: {tags:?}"
    );
    assert_eq!(
        wh.requests_to("/voice").len(),
        1,
        "one call → one voice fetch"
    );
    assert_eq!(
        wh.requests_to("/action").len(),
        1,
        "one recording → one action"
    );
    assert_eq!(d.recordings().len(), 1, "one WAV: {:?}", d.recordings());
    wh.assert_signatures_ok();
}

#[test]
fn cancel_before_answer_gets_200_and_487() {
    let wh = WebhookServer::start();
    // The voice URL answers slowly, so the call is still ringing when SIPp cancels it.
    wh.route(
        "/voice",
        Reply::twiml("<Response><Record maxLength=\"30\"/></Response>")
            .delay(Duration::from_secs(3)),
    );
    let mut d = Daemon::start(
        &[],
        App::VoiceUrl {
            url: wh.url("/voice"),
            method: "POST",
        },
    );
    Sipp::new("uac_cancel.xml", d.sip_addr())
        .run(&d.tmp, Duration::from_secs(20))
        .assert_success();
    // Let the slow document arrive: it must not resurrect the cancelled call.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        d.recordings().is_empty(),
        "no recording for a cancelled call"
    );
    d.assert_alive();
}

#[test]
fn g729_only_offer_gets_488() {
    let mut d = plain_daemon();
    let mut uac = RawUac::new(d.sip_addr());
    let offer = sdp_offer(uac.rtp_port, &[(18, "G729/8000")], "sendrecv", 1);
    let r = uac.invite("rec", &offer, Duration::from_secs(5));
    assert_eq!(r.status(), Some(488), "{}", r.first_line);
    uac.ack_failure(&r);
    std::thread::sleep(Duration::from_millis(300));
    assert!(d.recordings().is_empty());
    d.assert_alive();
}

type Build = Box<dyn Fn(SocketAddr, SocketAddr) -> Vec<u8>>;

/// A malformed input; `allowed` = response codes tolerated (silence is always fine).
struct Case {
    name: &'static str,
    allowed: &'static [u16],
    build: Build,
}

fn case(
    name: &'static str,
    allowed: &'static [u16],
    f: impl Fn(SocketAddr, SocketAddr) -> Vec<u8> + 'static,
) -> Case {
    Case {
        name,
        allowed,
        build: Box::new(f),
    }
}

/// A valid OPTIONS bent by `f`.
fn edited(name: &'static str, allowed: &'static [u16], f: fn(String) -> String) -> Case {
    case(name, allowed, move |l, t| {
        f(options_request(l, t, "UDP")).into_bytes()
    })
}

fn without(s: String, header: &str) -> String {
    s.split("\r\n")
        .filter(|l| !l.starts_with(header))
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// An INVITE whose SDP body is `body`.
fn bad_sdp(name: &'static str, body: &'static str) -> Case {
    case(name, &[100, 400, 488], move |l, t| {
        options_request(l, t, "UDP")
            .replace("OPTIONS sip:", "INVITE sip:rec@")
            .replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE")
            .replace(
                "Content-Length: 0\r\n\r\n",
                &format!(
                    "Contact: <sip:e2e@{l}>\r\nContent-Type: application/sdp\r\n\
                     Content-Length: {}\r\n\r\n{body}",
                    body.len()
                ),
            )
            .into_bytes()
    })
}

const SDP_HEAD: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n";

fn corpus() -> Vec<Case> {
    let mut seed = 0x1234_5678u32;
    let mut random = Vec::new();
    for _ in 0..600 {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        random.push((seed >> 24) as u8);
    }
    vec![
        case("empty datagram", &[], |_, _| Vec::new()),
        case("CRLF keep-alive", &[], |_, _| b"\r\n\r\n".to_vec()),
        case("random bytes", &[400], move |_, _| random.clone()),
        case("request line only", &[400], |_, _| b"INVITE\r\n\r\n".to_vec()),
        case("no headers at all", &[400], |_, t| {
            format!("OPTIONS sip:{t} SIP/2.0\r\n\r\n").into_bytes()
        }),
        edited("missing Call-ID", &[400], |s| without(s, "Call-ID")),
        edited("missing CSeq", &[400], |s| without(s, "CSeq")),
        edited("missing From", &[400], |s| without(s, "From")),
        edited("Content-Length beyond datagram", &[400], |s| {
            s.replace("Content-Length: 0", "Content-Length: 5000")
        }),
        edited("negative Content-Length", &[400], |s| {
            s.replace("Content-Length: 0", "Content-Length: -1")
        }),
        edited("non-numeric Content-Length", &[400], |s| {
            s.replace("Content-Length: 0", "Content-Length: abc")
        }),
        edited("non-numeric CSeq", &[400], |s| {
            s.replace("CSeq: 1 OPTIONS", "CSeq: x OPTIONS")
        }),
        edited("CSeq method mismatch", &[400], |s| {
            s.replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE")
        }),
        edited("header without colon", &[400], |s| {
            s.replace("Max-Forwards: 70", "Max-Forwards 70")
        }),
        edited("NUL bytes in a header", &[400, 200], |s| {
            s.replace("Accept: application/sdp", "Accept: app\0\0lication/sdp")
        }),
        case("non-UTF-8 header value", &[400, 200], |l, t| {
            let mut b = options_request(l, t, "UDP").into_bytes();
            if let Some(i) = b.windows(7).position(|w| w == b"Accept:") {
                b[i + 8] = 0xFF;
                b[i + 9] = 0xFE;
            }
            b
        }),
        edited("SIP/3.0", &[505], |s| {
            s.replacen("SIP/2.0\r\n", "SIP/3.0\r\n", 1)
        }),
        edited("garbage Request-URI", &[400, 416], |s| match s.find(" SIP/2.0\r\n") {
            Some(i) => format!("OPTIONS :::{}", &s[i..]),
            None => s,
        }),
        edited("10 KB method name", &[400, 405, 501, 513], |s| {
            format!("{}{}", "X".repeat(10_000), &s[7..])
        }),
        edited("65 KB datagram", &[200, 400, 413, 513], |s| {
            s.replace("Accept:", &format!("X-Pad: {}\r\nAccept:", "a".repeat(64_900)))
        }),
        case("stray response", &[], |l, _| {
            format!(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bKstray\r\n\
                 From: <sip:a@{l}>;tag=1\r\nTo: <sip:b@{l}>;tag=2\r\nCall-ID: stray\r\n\
                 CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes()
        }),
        bad_sdp("INVITE with garbage SDP", "this is not SDP\r\n"),
        bad_sdp("INVITE with SDP lacking m=", SDP_HEAD),
        bad_sdp(
            "INVITE with m= port 0 only",
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n",
        ),
        bad_sdp(
            "INVITE with m= port 99999",
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 99999 RTP/AVP 0\r\n",
        ),
    ]
}

#[test]
fn malformed_udp_corpus_gets_400_or_silence_and_daemon_survives() {
    let mut d = plain_daemon();
    let target = d.sip_addr();
    let mut failures = Vec::new();
    for c in corpus() {
        let rs = udp_exchange(target, |l| (c.build)(l, target), Duration::from_millis(400));
        for r in &rs {
            let code = r.status().unwrap_or(0);
            if !c.allowed.contains(&code) {
                failures.push(format!("{}: got {:?}", c.name, r.first_line));
            }
        }
        if !d.is_running() {
            failures.push(format!("{}: hark serve died", c.name));
            break;
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(d.recordings().is_empty(), "no call from malformed input");
    d.assert_alive();
}

#[test]
fn options_over_tcp_gets_200() {
    let d = plain_daemon();
    let local: SocketAddr = "127.0.0.1:5".parse().expect("addr");
    let resp = tcp_exchange(
        d.sip_addr(),
        options_request(local, d.sip_addr(), "TCP").as_bytes(),
        Duration::from_secs(3),
    )
    .expect("TCP connect to the SIP port");
    assert!(
        resp.starts_with("SIP/2.0 200"),
        "TCP OPTIONS answer: {resp:?}"
    );
}

#[test]
fn tcp_oversized_and_garbage_input_never_crash() {
    let mut d = plain_daemon();
    let local: SocketAddr = "127.0.0.1:5".parse().expect("addr");
    let base = options_request(local, d.sip_addr(), "TCP");
    let inputs: Vec<Vec<u8>> = vec![
        base.replace(
            "Accept:",
            &format!("X-Pad: {}\r\nAccept:", "b".repeat(70_000)),
        )
        .into_bytes(),
        base.replace("Content-Length: 0", "Content-Length: 999999999999")
            .into_bytes(),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage-tls-hello".to_vec(),
        vec![b'A'; 100_000],
    ];
    for input in inputs {
        match tcp_exchange(d.sip_addr(), &input, Duration::from_millis(800)) {
            Ok(resp) => assert!(
                resp.is_empty()
                    || ["SIP/2.0 400", "SIP/2.0 413", "SIP/2.0 513"]
                        .iter()
                        .any(|p| resp.starts_with(p)),
                "answer to bad TCP input: {:?}",
                &resp[..resp.len().min(200)]
            ),
            Err(e) => panic!("TCP connect failed: {e}"),
        }
        assert!(d.is_running(), "hark serve died on TCP input");
    }
    d.assert_alive();
    let resp = tcp_exchange(d.sip_addr(), base.as_bytes(), Duration::from_secs(3)).expect("tcp");
    assert!(resp.starts_with("SIP/2.0 200"), "TCP still works: {resp:?}");
}

#[test]
fn invite_over_tcp_is_recorded() {
    let wh = WebhookServer::start();
    let d = Daemon::start(&[], record_app(&wh));
    Sipp::new("uac_rfc2833.xml", d.sip_addr())
        .tcp()
        .run(&d.tmp, Duration::from_secs(40))
        .assert_success();
    let actions = wh.wait_for("/action", 1, Duration::from_secs(5));
    assert_eq!(actions[0].param("Digits"), "#");
    check_recording(&d, &actions[0], &decode_all(&speech_ulaw()), true);
    wh.assert_signatures_ok();
}
