//! Malformed input: a 400 naming the problem (505 for another SIP version) or, when nothing
//! says where an answer would go, a silent drop; never a panic.

use super::*;

const GOOD_HEAD: &str = "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-m\r\n\
From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:rec@127.0.0.1>\r\nCall-ID: m-1\r\n";

fn msg(start: &str, extra: &str, body: &str) -> Vec<u8> {
    format!("{start}\r\n{GOOD_HEAD}{extra}\r\n{body}").into_bytes()
}

/// (name, bytes, expected: Some(the final response's reason) or None for a drop).
fn corpus() -> Vec<(&'static str, Vec<u8>, Option<&'static str>)> {
    let inv = "INVITE sip:rec@127.0.0.1 SIP/2.0";
    let bye = "BYE sip:rec@127.0.0.1 SIP/2.0";
    let mut huge = msg(bye, "CSeq: 1 BYE\r\nContent-Length: 0\r\n", "");
    huge.extend(vec![b'x'; 70_000]);
    vec![
        ("empty", vec![], None),
        ("crlf only", b"\r\n\r\n".to_vec(), None),
        ("binary junk", (0u8..=255).collect(), None),
        ("nul bytes", vec![0; 64], None),
        ("nul in header", msg(bye, "CSeq: 1 BYE\r\nX-Bad: a\0b\r\nContent-Length: 0\r\n", ""), Some("Bad Request (Malformed Header Line)")),
        ("70 KB", huge, None),
        ("two-token request line", b"INVITE sip:rec@127.0.0.1\r\n\r\n".to_vec(), None),
        ("one token", b"HELLO\r\n\r\n".to_vec(), None),
        ("wrong version", msg("INVITE sip:rec@127.0.0.1 SIP/3.0", "CSeq: 1 INVITE\r\n", ""), Some("Version Not Supported")),
        ("lowercase junk", b"hello world how are you\r\n\r\n".to_vec(), None),
        ("http", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), None),
        ("missing via", b"BYE sip:a@b SIP/2.0\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: x\r\nCSeq: 1 BYE\r\n\r\n".to_vec(), None),
        ("missing call-id", b"BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCSeq: 1 BYE\r\n\r\n".to_vec(), Some("Bad Request (Missing Call-ID)")),
        ("missing cseq", msg(bye, "", ""), Some("Bad Request (Missing CSeq)")),
        ("missing from", b"BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b@c>\r\nCall-ID: x\r\nCSeq: 1 BYE\r\n\r\n".to_vec(), Some("Bad Request (Missing From)")),
        ("bad via", b"BYE sip:a@b SIP/2.0\r\nVia: nonsense\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: x\r\nCSeq: 1 BYE\r\n\r\n".to_vec(), Some("Bad Request (Invalid Via)")),
        ("bad cseq number", msg(bye, "CSeq: abc BYE\r\n", ""), Some("Bad Request (Invalid CSeq)")),
        ("cseq without method", msg(bye, "CSeq: 1\r\n", ""), Some("Bad Request (Invalid CSeq)")),
        ("bad from", b"BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: garbage\r\nTo: <sip:b@c>\r\nCall-ID: x\r\nCSeq: 1 BYE\r\n\r\n".to_vec(), Some("Bad Request (Invalid From)")),
        ("cseq method mismatch", msg(bye, "CSeq: 1 INVITE\r\n", ""), Some("Bad Request (CSeq Method Mismatch)")),
        ("negative content-length", msg(bye, "CSeq: 1 BYE\r\nContent-Length: -5\r\n", ""), Some("Bad Request (Invalid Content-Length)")),
        ("huge content-length", msg(bye, "CSeq: 1 BYE\r\nContent-Length: 99999999999999999999999\r\n", ""), Some("Bad Request (Invalid Content-Length)")),
        ("content-length exceeds body", msg(inv, "CSeq: 1 INVITE\r\nContent-Length: 500\r\n", "v=0\r\n"), Some("Bad Request (Content-Length exceeds body)")),
        ("header without colon", msg(bye, "CSeq: 1 BYE\r\nThis is not a header\r\n", ""), Some("Bad Request (Malformed Header Line)")),
        ("unterminated headers", format!("{bye}\r\n{GOOD_HEAD}CSeq: 1 BYE\r\n").into_bytes(), Some("Bad Request (Header Section Not Terminated)")),
        ("non-utf8 header", [format!("{bye}\r\n{GOOD_HEAD}CSeq: 1 BYE\r\nX: ").as_bytes(), b"\xff\xfe\r\n\r\n"].concat(), Some("Bad Request (Header Not UTF-8)")),
        ("space in header name", msg(bye, "CSeq: 1 BYE\r\nBad Header: x\r\n", ""), Some("Bad Request (Malformed Header Line)")),
        ("bad response", b"SIP/2.0 abc OK\r\n\r\n".to_vec(), None),
        ("stray response", b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKzz\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n".to_vec(), None),
        ("ack with junk", msg("ACK sip:rec@127.0.0.1 SIP/2.0", "CSeq: 1 ACK\r\nContent-Length: 99\r\n", ""), None),
        ("invite garbage sdp", msg(inv, "CSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1>\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n", "\0\0\0\0"), Some("Bad Request (Invalid SDP)")),
    ]
}

#[test]
fn malformed_corpus_gets_400_or_is_dropped() {
    for (name, bytes, expected) in corpus() {
        let mut s = Sim::new();
        let out = s.send(&bytes);
        let finals: Vec<&Response> = out
            .responses()
            .into_iter()
            .filter(|r| r.status >= 200)
            .collect();
        match expected {
            Some(reason) => {
                assert_eq!(finals.len(), 1, "{name}: {:?}", out.statuses());
                let status = if reason == "Version Not Supported" {
                    505
                } else {
                    400
                };
                assert_eq!(
                    (finals[0].status, finals[0].reason.as_str()),
                    (status, reason),
                    "{name}"
                );
            }
            None => {
                assert!(out.sent.is_empty(), "{name}: {:?}", out.statuses());
            }
        }
        assert!(out.events.is_empty(), "{name}: {:?}", out.events);
        assert_eq!(s.ep.call_count(), 0, "{name}");
    }
}

#[test]
fn dropped_and_answered_garbage_is_reported_for_the_log() {
    let mut s = Sim::new();
    let out = s.send(b"\x00\x01garbage");
    assert_eq!(out.rejected.len(), 1);
    let out = s.send(&msg(
        "BYE sip:rec@127.0.0.1 SIP/2.0",
        "CSeq: 1 INVITE\r\n",
        "",
    ));
    assert_eq!(out.rejected.len(), 1);
    assert!(out.rejected[0].contains("CSeq"), "{:?}", out.rejected);
}

#[test]
fn truncated_and_corrupted_invites_never_panic() {
    let full = invite("z9hG4bK-inv", SIPP_SDP).into_bytes();
    let mut s = Sim::new();
    for n in 0..=full.len() {
        s.send(&full[..n]);
        let mut flipped = full.clone();
        if let Some(b) = flipped.get_mut(n) {
            *b ^= 0x5A;
        }
        s.send(&flipped);
        s.advance_to(n as f64 * 0.01);
    }
    // Every variant got at most one real call (the complete INVITE, or ones whose flipped byte
    // is harmless), and time runs out cleanly.
    s.advance_to(1_000.0);
    assert!(s.ep.state_size().1 == 0);
}

#[test]
fn stray_ack_and_responses_are_silent() {
    let mut s = Sim::new();
    assert!(s.send_str(&ack("z9hG4bK-x", "nope", 1)).sent.is_empty());
    let resp = "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKnothing\r\n\
                CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let out = s.send_str(resp);
    assert!(out.sent.is_empty() && out.events.is_empty() && out.rejected.is_empty());
}

#[test]
fn an_invite_whose_target_is_no_sip_uri_is_400_and_makes_no_call() {
    // Found by fuzzing: an RFC 2543 INVITE (no Contact) whose From URI was `1sip:…` became a
    // call whose BYE had that as its Request-URI, which no parser reads.
    for (contact, from) in [
        ("", "1sip:caller@example.net"),
        (
            "Contact: <1sip:caller@example.net>\r\n",
            "sip:caller@example.net",
        ),
        ("Contact: <tel:+15550100>\r\n", "sip:caller@example.net"),
    ] {
        let mut s = Sim::new();
        let invite = with_length(
            &format!(
                "INVITE sip:rec@127.0.0.1:5070 SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-t1\r\n\
                 From: <{from}>;tag=f1\r\nTo: <sip:rec@127.0.0.1:5070>\r\n\
                 Call-ID: target-1\r\nCSeq: 1 INVITE\r\n{contact}Max-Forwards: 70\r\n\
                 Content-Type: application/sdp\r\n"
            ),
            SIPP_SDP,
        );
        let out = s.send_str(&invite);
        assert!(out.incoming().is_empty(), "{contact:?} {from:?}");
        assert_eq!(out.statuses().last(), Some(&400), "{contact:?} {from:?}");
        assert_eq!(
            out.last_response().reason,
            "Bad Request (Missing or Invalid Contact)"
        );
        let later = s.advance_to(60.0);
        assert!(later.events.is_empty());
        assert_eq!(s.ep.call_count(), 0);
    }
}

#[test]
fn an_invite_with_a_record_route_that_is_no_sip_uri_is_400() {
    // Found by fuzzing: a strict router's Record-Route (no `lr`) whose URI was junk became our
    // BYE's Request-URI.
    for rr in [
        "Record-Route: mmmmmmmample.com>\r\n",
        "Record-Route: <sip:proxy.example.com;lr>, <1sip:x@y>\r\n",
        "Record-Route: <tel:+15550100>\r\n",
    ] {
        let mut s = Sim::new();
        let invite = with_length(
            &format!(
                "INVITE sip:rec@127.0.0.1:5070 SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-rr1\r\n\
                 From: <sip:caller@example.net>;tag=f1\r\nTo: <sip:rec@127.0.0.1:5070>\r\n\
                 Call-ID: rr-1\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.1:5061>\r\n\
                 {rr}Max-Forwards: 70\r\nContent-Type: application/sdp\r\n"
            ),
            SIPP_SDP,
        );
        let out = s.send_str(&invite);
        assert!(out.incoming().is_empty(), "{rr:?}");
        assert_eq!(out.statuses().last(), Some(&400), "{rr:?}");
        assert_eq!(
            out.last_response().reason,
            "Bad Request (Invalid Record-Route)"
        );
    }
    // A well-formed route set still makes a call.
    let mut s = Sim::new();
    let invite = with_length(
        "INVITE sip:rec@127.0.0.1:5070 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-rr2\r\n\
         From: <sip:caller@example.net>;tag=f1\r\nTo: <sip:rec@127.0.0.1:5070>\r\n\
         Call-ID: rr-2\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.1:5061>\r\n\
         Record-Route: <sip:127.0.0.1:25060;lr>\r\nMax-Forwards: 70\r\n\
         Content-Type: application/sdp\r\n",
        SIPP_SDP,
    );
    assert_eq!(s.send_str(&invite).incoming().len(), 1);
}
