//! Call flows from SIPp-like callers.

use super::*;
use crate::sdp::{AudioCodec, Direction};

#[test]
fn invite_ring_answer_ack_then_caller_bye() {
    let mut s = Sim::new();
    let out = s.send_str(&invite("z9hG4bK-inv", SIPP_SDP));
    assert_eq!(out.statuses(), vec![100]);
    let trying = out.last_response();
    assert_eq!(
        trying.headers.get("To"),
        Some("<sip:rec@127.0.0.1:5070>"),
        "no tag on 100"
    );
    let inc = out.incoming();
    assert_eq!(inc.len(), 1);
    let call = inc[0].call;
    assert_eq!(inc[0].call_id, "1-42@127.0.0.1");
    assert_eq!(inc[0].from.user(), Some("sipp"));
    assert_eq!(inc[0].request_uri, "sip:rec@127.0.0.1:5070");
    assert_eq!(
        (inc[0].media.codec, inc[0].media.telephone_event_pt),
        (AudioCodec::Pcmu, Some(101))
    );
    assert_eq!(inc[0].media.remote_rtp, addr("127.0.0.1:26000"));
    assert_eq!(s.ep.call_count(), 1);

    let ringing = s.call_op(|ep, now| ep.ring(now, call).unwrap());
    let r = ringing.last_response();
    assert_eq!(r.status, 180);
    assert_eq!(r.headers.get("Contact"), Some("<sip:hark@127.0.0.1:5070>"));
    let tag = s.tag().to_string();
    assert_eq!(
        r.headers.get("To"),
        Some(format!("<sip:rec@127.0.0.1:5070>;tag={tag}").as_str())
    );

    let ok = s.call_op(|ep, now| ep.answer(now, call, addr("127.0.0.1:30000")).unwrap());
    let r = ok.last_response();
    assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
    assert_eq!(r.headers.get("Contact"), Some("<sip:hark@127.0.0.1:5070>"));
    assert_eq!(
        r.headers.get("Allow"),
        Some("INVITE, ACK, BYE, CANCEL, OPTIONS, INFO")
    );
    assert_eq!(r.headers.get("Content-Type"), Some("application/sdp"));
    assert_eq!(r.headers.get("CSeq"), Some("1 INVITE"));
    let body = String::from_utf8(r.body.clone()).unwrap();
    assert!(body.contains("m=audio 30000 RTP/AVP 0 101\r\n"), "{body}");
    assert!(body.ends_with("a=sendrecv\r\n"));

    let acked = s.send_str(&ack("z9hG4bK-ack", &tag, 1));
    assert!(acked.sent.is_empty(), "ACK gets no response");
    assert!(matches!(acked.events[..], [CallEvent::Confirmed { call: c }] if c == call));

    let bye_out = s.send_str(&bye("z9hG4bK-bye", &tag, 2));
    assert_eq!(bye_out.statuses(), vec![200]);
    assert_eq!(bye_out.last_response().headers.get("CSeq"), Some("2 BYE"));
    assert_eq!(bye_out.ended(), vec![EndReason::RemoteBye]);
    assert_eq!(s.ep.call_count(), 0);

    // A retransmitted BYE gets the same 200 and no second event.
    let again = s.send_str(&bye("z9hG4bK-bye", &tag, 2));
    assert_eq!(again.statuses(), vec![200]);
    assert!(again.events.is_empty());

    // Nothing is kept after the linger (64*T1) and Timer J.
    let later = s.advance_to(40.0);
    assert!(later.sent.is_empty() && later.events.is_empty());
    assert_eq!(s.ep.state_size(), (0, 0));
    assert_eq!(s.ep.poll_timeout(), None);
}

#[test]
fn responses_carry_received_and_rport_when_asked() {
    let mut s = Sim::new();
    s.peer.addr = addr("192.0.2.9:40000");
    let inv =
        invite("z9hG4bK-inv", SIPP_SDP).replace("branch=z9hG4bK-inv", "rport;branch=z9hG4bK-inv");
    let out = s.send_str(&inv);
    assert_eq!(
        out.last_response().headers.get("Via"),
        Some("SIP/2.0/UDP 127.0.0.1:5061;rport=40000;branch=z9hG4bK-inv;received=192.0.2.9")
    );
    assert_eq!(
        out.sent[0].1.addr,
        addr("192.0.2.9:40000"),
        "response goes to the source"
    );
}

#[test]
fn two_xx_is_retransmitted_at_t1_doubling_to_t2_until_ack() {
    let mut s = Sim::new();
    let out = s.send_str(&invite("z9hG4bK-inv", SIPP_SDP));
    let call = out.incoming()[0].call;
    s.call_op(|ep, now| ep.answer(now, call, addr("127.0.0.1:30000")).unwrap());
    let re = s.advance_to(12.0);
    let times: Vec<f64> = re.sent.iter().map(|(t, _, _)| t.as_secs_f64()).collect();
    assert_eq!(times, vec![0.5, 1.5, 3.5, 7.5, 11.5]);
    assert!(re.statuses().iter().all(|&st| st == 200));
    let tag = s.tag().to_string();
    let acked = s.send_str(&ack("z9hG4bK-ack", &tag, 1));
    assert_eq!(acked.events.len(), 1);
    let after = s.advance_to(60.0);
    assert!(
        after.sent.is_empty(),
        "no retransmission after ACK: {:?}",
        after.statuses()
    );
    assert_eq!(s.ep.call_count(), 1);
}

#[test]
fn lost_ack_ends_call_with_bye_at_timer_h() {
    let mut s = Sim::new();
    let out = s.send_str(&invite("z9hG4bK-inv", SIPP_SDP));
    let call = out.incoming()[0].call;
    s.call_op(|ep, now| ep.answer(now, call, addr("127.0.0.1:30000")).unwrap());
    let before = s.advance_to(31.9);
    assert!(before.events.is_empty());
    let h = s.advance_to(32.0);
    let byes = h.requests();
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].method, crate::message::Method::Bye);
    assert_eq!(h.sent[0].0, Duration::from_secs(32));
    assert_eq!(h.ended(), vec![EndReason::AckTimeout]);
    assert_eq!(s.ep.call_count(), 0);
    // Our BYE is answered: no second Ended.
    let branch = byes[0]
        .headers
        .get("Via")
        .unwrap()
        .split("branch=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let resp = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\nFrom: x <sip:a@b>;tag=1\r\n\
         To: y <sip:c@d>;tag=2\r\nCall-ID: 1-42@127.0.0.1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let done = s.send_str(&resp);
    assert!(done.events.is_empty());
    s.advance_to(100.0);
    assert_eq!(s.ep.state_size(), (0, 0));
}

#[test]
fn our_bye_follows_the_dialog_and_is_retransmitted_until_200() {
    let mut s = Sim::new();
    let inv = invite("z9hG4bK-inv", SIPP_SDP).replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nRecord-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n",
    );
    let call = s.send_str(&inv).incoming()[0].call;
    let ok = s.call_op(|ep, now| ep.answer(now, call, addr("127.0.0.1:30000")).unwrap());
    assert_eq!(
        ok.last_response().headers.get_all("Record-Route"),
        vec!["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    );
    let tag = s.tag().to_string();
    s.send_str(&ack("z9hG4bK-ack", &tag, 1));
    let out = s.call_op(|ep, now| ep.hangup(now, call).unwrap());
    let byes = out.requests();
    let b = byes[0];
    assert_eq!(b.uri, "sip:sipp@127.0.0.1:5061;transport=UDP");
    assert_eq!(
        b.headers.get_all("Route"),
        vec!["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    );
    assert_eq!(
        b.headers.get("From"),
        Some(format!("<sip:rec@127.0.0.1:5070>;tag={tag}").as_str())
    );
    assert_eq!(
        b.headers.get("To"),
        Some("\"SIPp\" <sip:sipp@127.0.0.1:5061>;tag=1SIPpTag001")
    );
    assert_eq!(b.headers.get("Call-ID"), Some("1-42@127.0.0.1"));
    assert_eq!(b.headers.get("CSeq"), Some("1 BYE"));
    assert_eq!(b.headers.get("Max-Forwards"), Some("70"));
    let via = crate::message::Via::parse(b.headers.get("Via").unwrap()).unwrap();
    assert_eq!(
        (via.transport.as_str(), via.sent_by.as_str()),
        ("UDP", "127.0.0.1:5070")
    );
    let branch = via.branch().unwrap().to_string();
    assert!(branch.starts_with("z9hG4bK") && branch.len() > 10);
    assert_eq!(out.sent[0].1.addr, addr(CALLER));

    let re = s.advance_to(0.5);
    assert_eq!(re.requests().len(), 1, "Timer E fires at T1");
    assert_eq!(
        re.sent[0].2.to_bytes(),
        out.sent[0].2.to_bytes(),
        "identical retransmission"
    );

    let resp = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: 1-42@127.0.0.1\r\nCSeq: 1 BYE\r\n\
         Content-Length: 0\r\n\r\n",
        b.headers.get("Via").unwrap(),
        b.headers.get("From").unwrap(),
        b.headers.get("To").unwrap()
    );
    let done = s.send_str(&resp);
    assert_eq!(done.ended(), vec![EndReason::LocalBye]);
    assert!(s.advance_to(10.0).sent.is_empty());
    assert_eq!(s.ep.hangup(s.now, call), Err(CallError::UnknownCall(call)));
}

#[test]
fn our_bye_without_answer_ends_at_timer_f() {
    let mut s = Sim::new();
    let call = s.confirmed_call();
    s.call_op(|ep, now| ep.hangup(now, call).unwrap());
    let out = s.advance_to(40.0);
    let times: Vec<f64> = out.sent.iter().map(|(t, _, _)| t.as_secs_f64()).collect();
    assert_eq!(
        times,
        vec![0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    );
    assert_eq!(out.ended(), vec![EndReason::LocalBye]);
}

#[test]
fn retransmitted_invite_creates_exactly_one_call() {
    let mut s = Sim::new();
    let inv = invite("z9hG4bK-inv", SIPP_SDP);
    let first = s.send_str(&inv);
    let call = first.incoming()[0].call;
    let again = s.send_str(&inv);
    assert_eq!((again.statuses(), again.events.len()), (vec![100], 0));
    s.call_op(|ep, now| ep.ring(now, call).unwrap());
    assert_eq!(s.send_str(&inv).statuses(), vec![180]);
    // RFC 2543 style: same Call-ID/From tag/CSeq, different branch.
    let other_branch = s.send_str(&invite("old-style-branch", SIPP_SDP));
    assert_eq!(
        (other_branch.statuses(), other_branch.events.len()),
        (vec![180], 0)
    );
    s.call_op(|ep, now| ep.answer(now, call, addr("127.0.0.1:30000")).unwrap());
    let after = s.send_str(&inv);
    assert_eq!((after.statuses(), after.events.len()), (vec![200], 0));
    let tag = s.tag().to_string();
    s.send_str(&ack("z9hG4bK-ack", &tag, 1));
    let late = s.send_str(&inv);
    assert!(late.sent.is_empty() && late.events.is_empty());
    assert_eq!(s.ep.call_count(), 1);
}

#[test]
fn cancel_before_answer_gets_200_and_487_until_ack() {
    let mut s = Sim::new();
    let call = s.send_str(&invite("z9hG4bK-inv", SIPP_SDP)).incoming()[0].call;
    s.call_op(|ep, now| ep.ring(now, call).unwrap());
    let cancel = with_length(
        "CANCEL sip:rec@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-inv\r\n\
         From: \"SIPp\" <sip:sipp@127.0.0.1:5061>;tag=1SIPpTag001\r\nTo: <sip:rec@127.0.0.1:5070>\r\n\
         Call-ID: 1-42@127.0.0.1\r\nCSeq: 1 CANCEL\r\nMax-Forwards: 70\r\n",
        "",
    );
    let out = s.send_str(&cancel);
    assert_eq!(out.statuses(), vec![200, 487]);
    assert_eq!(out.responses()[0].headers.get("CSeq"), Some("1 CANCEL"));
    assert_eq!(out.responses()[1].headers.get("CSeq"), Some("1 INVITE"));
    assert_eq!(out.ended(), vec![EndReason::Cancelled]);
    assert_eq!(s.ep.call_count(), 0);
    assert_eq!(s.advance_to(0.5).statuses(), vec![487]);
    let tag = s.tag().to_string();
    // SIPp's ACK for the 487 reuses the INVITE branch.
    let ack487 = in_dialog("ACK", "z9hG4bK-inv", &tag, 1, "", "");
    assert!(s.send_str(&ack487).sent.is_empty());
    assert!(s.advance_to(20.0).sent.is_empty());
    // CANCEL after the final response: 200 only; unknown CANCEL: 481.
    assert_eq!(s.send_str(&cancel).statuses(), vec![200]);
    let stray = cancel.replace("z9hG4bK-inv", "z9hG4bK-other");
    assert_eq!(s.send_str(&stray).statuses(), vec![481]);
    s.advance_to(100.0);
    assert_eq!(s.ep.state_size(), (0, 0));
}

#[test]
fn reject_is_retransmitted_until_ack_and_hangup_before_answer_is_480() {
    let mut s = Sim::new();
    let call = s.send_str(&invite("z9hG4bK-inv", SIPP_SDP)).incoming()[0].call;
    let out = s.call_op(|ep, now| ep.hangup(now, call).unwrap());
    assert_eq!(out.statuses(), vec![480]);
    assert_eq!(out.last_response().reason, "Temporarily Unavailable");
    assert_eq!(out.ended(), vec![EndReason::Rejected]);
    assert_eq!(
        s.ep.reject(s.now, call, 486),
        Err(CallError::UnknownCall(call))
    );
    assert_eq!(s.advance_to(1.6).statuses(), vec![480, 480]);
    let tag = s.tag().to_string();
    s.send_str(&in_dialog("ACK", "z9hG4bK-inv", &tag, 1, "", ""));
    assert!(s.advance_to(40.0).sent.is_empty());

    let mut s = Sim::new();
    let call = s.send_str(&invite("z9hG4bK-inv", SIPP_SDP)).incoming()[0].call;
    assert!(matches!(
        s.ep.reject(s.now, call, 200),
        Err(CallError::WrongState(..))
    ));
    let out = s.call_op(|ep, now| ep.reject(now, call, 486).unwrap());
    assert_eq!(out.last_response().reason, "Busy Here");
    // No ACK: Timer H gives up quietly at 32 s.
    let h = s.advance_to(33.0);
    assert!(h.events.is_empty() && h.requests().is_empty());
    assert_eq!(h.statuses().len(), 10);
}

#[test]
fn options_gets_allow_and_accept() {
    let mut s = Sim::new();
    let opt = with_length(
        "OPTIONS sip:rec@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-o\r\n\
         From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:rec@127.0.0.1:5070>\r\nCall-ID: opt-1\r\n\
         CSeq: 5 OPTIONS\r\n",
        "",
    );
    let out = s.send_str(&opt);
    let r = out.last_response();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("Allow"),
        Some("INVITE, ACK, BYE, CANCEL, OPTIONS, INFO")
    );
    assert_eq!(
        r.headers.get("Accept"),
        Some("application/sdp, application/dtmf-relay, application/dtmf")
    );
    assert!(NameAddr::parse(r.headers.get("To").unwrap())
        .unwrap()
        .tag
        .is_some());
    // In dialog too.
    let mut s = Sim::new();
    s.confirmed_call();
    let tag = s.tag().to_string();
    let out = s.send_str(&in_dialog("OPTIONS", "z9hG4bK-o2", &tag, 2, "", ""));
    assert_eq!(out.statuses(), vec![200]);
}

#[test]
fn info_dtmf_variants_give_200_and_dtmf() {
    let mut s = Sim::new();
    let call = s.confirmed_call();
    let tag = s.tag().to_string();
    let cases: [(&str, &str, char, u32); 5] = [
        (
            "application/dtmf-relay",
            "Signal=#\r\nDuration=160\r\n",
            '#',
            160,
        ),
        (
            "application/dtmf-relay",
            "Signal=1\r\nDuration=250",
            '1',
            250,
        ),
        ("application/dtmf-relay", "Signal= 5\r\n", '5', 250),
        ("application/dtmf", "#", '#', 250),
        ("application/dtmf", "11\r\n", '#', 250),
    ];
    for (i, (ct, body, digit, dur)) in cases.iter().enumerate() {
        let cseq = 2 + i as u32;
        let info = in_dialog(
            "INFO",
            &format!("z9hG4bK-i{i}"),
            &tag,
            cseq,
            &format!("Content-Type: {ct}\r\n"),
            body,
        );
        let out = s.send_str(&info);
        assert_eq!(out.statuses(), vec![200], "{body:?}");
        match out.events[..] {
            [CallEvent::Dtmf {
                call: c,
                digit: d,
                duration_ms,
            }] => {
                assert_eq!((c, d, duration_ms), (call, *digit, *dur), "{body:?}");
            }
            _ => panic!("expected one Dtmf for {body:?}: {:?}", out.events),
        }
    }
    // Other INFO packages: 200, no event, call goes on.
    let other = in_dialog(
        "INFO",
        "z9hG4bK-x",
        &tag,
        10,
        "Content-Type: application/media_control+xml\r\n",
        "<x/>",
    );
    let out = s.send_str(&other);
    assert_eq!((out.statuses(), out.events.len()), (vec![200], 0));
    // Outside a dialog: 481.
    let stray = in_dialog(
        "INFO",
        "z9hG4bK-y",
        "nosuchtag",
        11,
        "Content-Type: application/dtmf\r\n",
        "5",
    );
    assert_eq!(s.send_str(&stray).statuses(), vec![481]);
    assert_eq!(s.ep.call_count(), 1);
}

#[test]
fn unsupported_methods_get_405_and_unknown_ones_501_with_allow() {
    let mut s = Sim::new();
    for method in [
        "REGISTER",
        "SUBSCRIBE",
        "MESSAGE",
        "UPDATE",
        "PRACK",
        "REFER",
        "NOTIFY",
        "PUBLISH",
        "FOO",
    ] {
        let known = method != "FOO";
        let req = with_length(
            &format!(
                "{method} sip:127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{method}\r\n\
                 From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: {method}-1\r\nCSeq: 1 {method}\r\n"
            ),
            "",
        );
        let out = s.send_str(&req);
        let r = out.last_response();
        // Known methods Hark does not serve are 405; unknown ones 501 (RFC 3261 §8.2.1).
        let expected = if known {
            (405, "Method Not Allowed")
        } else {
            (501, "Not Implemented")
        };
        assert_eq!((r.status, r.reason.as_str()), expected, "{method}");
        assert_eq!(
            r.headers.get("Allow"),
            Some("INVITE, ACK, BYE, CANCEL, OPTIONS, INFO")
        );
    }
}

#[test]
fn bye_for_unknown_dialog_is_481() {
    let mut s = Sim::new();
    let out = s.send_str(&bye("z9hG4bK-b", "unknown", 2));
    assert_eq!(out.statuses(), vec![481]);
    assert!(out.events.is_empty());
}

#[test]
fn reinvite_sendonly_with_new_address_is_answered_recvonly() {
    let mut s = Sim::new();
    let call = s.confirmed_call();
    let tag = s.tag().to_string();
    let hold = SIPP_SDP
        .replace("c=IN IP4 127.0.0.1", "c=IN IP4 10.9.9.9")
        .replace("a=sendrecv", "a=sendonly");
    let out = s.send_str(&invite_with(
        "z9hG4bK-re",
        "1-42@127.0.0.1",
        2,
        Some(&tag),
        &hold,
    ));
    assert_eq!(out.statuses(), vec![100, 200]);
    let body = String::from_utf8(out.last_response().body.clone()).unwrap();
    assert!(body.ends_with("a=recvonly\r\n"), "{body}");
    assert!(
        body.contains(" 2 IN IP4 127.0.0.1\r\n"),
        "o= version incremented: {body}"
    );
    assert!(body.contains("m=audio 30000 "), "same local RTP: {body}");
    match out.events[..] {
        [CallEvent::MediaChanged { call: c, media }] => {
            assert_eq!(c, call);
            assert_eq!(media.remote_rtp, addr("10.9.9.9:26000"));
            assert_eq!(media.remote_direction, Direction::SendOnly);
        }
        _ => panic!("{:?}", out.events),
    }
    assert_eq!(s.advance_to(0.5).statuses(), vec![200]);
    let acked = s.send_str(&ack("z9hG4bK-ack2", &tag, 2));
    assert!(acked.events.is_empty(), "no second Confirmed");
    assert!(s.advance_to(40.0).sent.is_empty());
    // Without SDP: our current answer, same version.
    let out = s.send_str(&invite_with(
        "z9hG4bK-re2",
        "1-42@127.0.0.1",
        3,
        Some(&tag),
        "",
    ));
    let body = String::from_utf8(out.last_response().body.clone()).unwrap();
    assert!(
        body.contains(" 2 IN IP4 127.0.0.1\r\n") && body.ends_with("a=recvonly\r\n"),
        "{body}"
    );
}

#[test]
fn reinvite_with_only_g729_is_488_and_the_call_survives() {
    let mut s = Sim::new();
    let call = s.confirmed_call();
    let tag = s.tag().to_string();
    let g729 = "v=0\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 26000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let out = s.send_str(&invite_with(
        "z9hG4bK-re",
        "1-42@127.0.0.1",
        2,
        Some(&tag),
        g729,
    ));
    assert_eq!(out.statuses(), vec![100, 488]);
    assert!(out
        .last_response()
        .headers
        .get("Warning")
        .unwrap()
        .starts_with("305 "));
    assert!(out.events.is_empty());
    s.send_str(&in_dialog("ACK", "z9hG4bK-re", &tag, 2, "", ""));
    assert!(s.advance_to(40.0).sent.is_empty());
    assert_eq!(s.ep.call_count(), 1);
    let out = s.send_str(&bye("z9hG4bK-bye", &tag, 3));
    assert_eq!(
        (out.statuses(), out.ended()),
        (vec![200], vec![EndReason::RemoteBye])
    );
    let _ = call;
}

#[test]
fn initial_invite_with_only_g729_is_488() {
    let mut s = Sim::new();
    let sdp = "v=0\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\n";
    let out = s.send_str(&invite("z9hG4bK-inv", sdp));
    assert_eq!(out.statuses(), vec![100, 488]);
    let w = out.last_response().headers.get("Warning").unwrap();
    assert!(
        w.starts_with("305 127.0.0.1:5070 \"Incompatible media format"),
        "{w}"
    );
    assert!(out.events.is_empty());
    assert_eq!(s.ep.call_count(), 0);
    let tag = s.tag().to_string();
    s.send_str(&in_dialog("ACK", "z9hG4bK-inv", &tag, 1, "", ""));
    s.advance_to(40.0);
    assert_eq!(s.ep.state_size(), (0, 0));
}

#[test]
fn invite_without_or_with_bad_sdp_is_400_naming_it() {
    let mut s = Sim::new();
    let out = s.send_str(&invite("z9hG4bK-a", ""));
    assert_eq!(out.statuses(), vec![100, 400]);
    assert_eq!(
        out.last_response().reason,
        "Bad Request (Missing SDP Offer)"
    );
    let out = s.send_str(&invite_with(
        "z9hG4bK-b",
        "other-call",
        1,
        None,
        "v=0\r\nbogus\r\n",
    ));
    assert_eq!(out.last_response().reason, "Bad Request (Invalid SDP)");
    assert!(out
        .last_response()
        .headers
        .get("Warning")
        .unwrap()
        .contains("line 2"));
    assert!(out.events.is_empty());
}

#[test]
fn telephone_event_is_taken_at_96_or_101() {
    for pt in [96u8, 101] {
        let mut s = Sim::new();
        let sdp = SIPP_SDP.replace("101", &pt.to_string());
        let out = s.send_str(&invite("z9hG4bK-inv", &sdp));
        assert_eq!(out.incoming()[0].media.telephone_event_pt, Some(pt));
        let call = out.incoming()[0].call;
        let ok = s.call_op(|ep, now| ep.answer(now, call, addr("127.0.0.1:30000")).unwrap());
        let body = String::from_utf8(ok.last_response().body.clone()).unwrap();
        assert!(body.contains(&format!("a=fmtp:{pt} 0-16\r\n")), "{body}");
    }
}

#[test]
fn tcp_has_no_retransmissions_but_keeps_timer_h() {
    let mut s = Sim::with_transport(Transport::Tcp);
    let inv = invite("z9hG4bK-inv", SIPP_SDP).replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    let call = s.send_str(&inv).incoming()[0].call;
    let ok = s.call_op(|ep, now| ep.answer(now, call, addr("127.0.0.1:30000")).unwrap());
    assert_eq!(
        ok.last_response().headers.get("Contact"),
        Some("<sip:hark@127.0.0.1:5070;transport=tcp>")
    );
    assert_eq!(ok.sent[0].1.conn, 9, "same TCP connection");
    let h = s.advance_to(33.0);
    assert_eq!(h.requests().len(), 1, "only the BYE, no 2xx retransmission");
    assert!(h.requests()[0]
        .headers
        .get("Via")
        .unwrap()
        .starts_with("SIP/2.0/TCP "));
    assert_eq!(h.sent[0].1.conn, 9);
    assert_eq!(h.ended(), vec![EndReason::AckTimeout]);
    let f = s.advance_to(70.0);
    assert!(f.sent.is_empty(), "no BYE retransmission on TCP");
    assert_eq!(s.ep.state_size(), (0, 0));
}

#[test]
fn tls_is_reliable_with_a_tls_contact_and_via_on_its_own_port() {
    for (ruri, contact) in [
        (
            "sip:rec@127.0.0.1:5071",
            "<sip:hark@127.0.0.1:5071;transport=tls>",
        ),
        ("sips:rec@127.0.0.1:5071", "<sips:hark@127.0.0.1:5071>"),
    ] {
        let mut s = Sim::with_config(Transport::Tls, |c| {
            c.tls_addr = Some(addr("127.0.0.1:5071"));
        });
        let inv = invite("z9hG4bK-inv", SIPP_SDP)
            .replace("SIP/2.0/UDP", "SIP/2.0/TLS")
            .replace("INVITE sip:rec@127.0.0.1:5070", &format!("INVITE {ruri}"));
        let call = s.send_str(&inv).incoming()[0].call;
        let ok = s.call_op(|ep, now| ep.answer(now, call, addr("127.0.0.1:30000")).unwrap());
        assert_eq!(ok.last_response().headers.get("Contact"), Some(contact));
        let h = s.advance_to(33.0);
        assert_eq!(h.requests().len(), 1, "only the BYE, no 2xx retransmission");
        assert!(h.requests()[0]
            .headers
            .get("Via")
            .unwrap()
            .starts_with("SIP/2.0/TLS 127.0.0.1:5071;"));
        let f = s.advance_to(70.0);
        assert!(f.sent.is_empty(), "no BYE retransmission on TLS");
        assert_eq!(s.ep.state_size(), (0, 0));
    }
}

#[test]
fn unsupported_require_is_420() {
    let mut s = Sim::new();
    let inv =
        invite("z9hG4bK-inv", SIPP_SDP).replace("Max-Forwards: 70\r\n", "Require: 100rel\r\n");
    let out = s.send_str(&inv);
    assert_eq!(out.statuses(), vec![420]);
    assert_eq!(
        out.last_response().headers.get("Unsupported"),
        Some("100rel")
    );
    assert!(out.events.is_empty());
}

#[test]
fn hangup_before_ack_sends_bye_and_stops_the_2xx() {
    let mut s = Sim::new();
    let call = s.send_str(&invite("z9hG4bK-inv", SIPP_SDP)).incoming()[0].call;
    s.call_op(|ep, now| ep.answer(now, call, addr("127.0.0.1:30000")).unwrap());
    assert_eq!(
        s.ep.poll_timeout_reason(),
        Some((
            s.start + Duration::from_millis(500),
            TimerReason::ResponseRetransmit
        ))
    );
    let out = s.call_op(|ep, now| ep.hangup(now, call).unwrap());
    assert_eq!(out.requests().len(), 1);
    assert_eq!(
        s.ep.poll_timeout_reason().map(|(_, why)| why),
        Some(TimerReason::ByeRetransmit)
    );
    assert!(matches!(
        s.ep.hangup(s.now, call),
        Err(CallError::WrongState(..))
    ));
    let re = s.advance_to(0.6);
    assert_eq!((re.requests().len(), re.responses().len()), (1, 0));
    let tag = s.tag().to_string();
    let late_ack = s.send_str(&ack("z9hG4bK-ack", &tag, 1));
    assert!(late_ack.events.is_empty() && late_ack.sent.is_empty());
}

#[test]
fn retransmitted_info_gets_the_same_200_and_no_second_dtmf() {
    let mut s = Sim::new();
    s.confirmed_call();
    let tag = s.tag().to_string();
    let info = in_dialog(
        "INFO",
        "z9hG4bK-i",
        &tag,
        2,
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=#\r\nDuration=160\r\n",
    );
    let first = s.send_str(&info);
    let again = s.send_str(&info);
    assert_eq!((first.events.len(), again.events.len()), (1, 0));
    assert_eq!(first.sent[0].2.to_bytes(), again.sent[0].2.to_bytes());
    // Timer J forgets it after 64*T1.
    s.advance_to(33.0);
    assert_eq!(s.ep.state_size().1, 0);
}

#[test]
fn ip6_offer_without_ipv6_media_is_488_with_warning_301() {
    let mut s = Sim::with_config(Transport::Udp, |c| c.media_ipv6 = false);
    let sdp = SIPP_SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP6 fd00::2");
    let out = s.send_str(&invite("z9hG4bK-inv", &sdp));
    assert_eq!(out.statuses(), vec![100, 488]);
    let w = out.last_response().headers.get("Warning").unwrap();
    assert!(
        w.starts_with("301 127.0.0.1:5070 \"Incompatible network address formats"),
        "{w}"
    );
    assert!(w.contains("IP6"), "{w}");
    assert!(out.incoming().is_empty());
    assert_eq!(s.ep.call_count(), 0);
}

#[test]
fn ip6_offer_with_ipv6_media_is_an_incoming_call() {
    let mut s = Sim::new();
    let sdp = SIPP_SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP6 fd00::2");
    let out = s.send_str(&invite("z9hG4bK-inv", &sdp));
    assert_eq!(out.statuses(), vec![100]);
    assert_eq!(out.incoming()[0].media.remote_rtp, addr("[fd00::2]:26000"));
}

#[test]
fn reinvite_to_the_other_address_family_is_488_and_hold_to_0000_is_not() {
    let mut s = Sim::new();
    let _call = s.confirmed_call();
    let tag = s.tag().to_string();
    let v6 = SIPP_SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP6 ::1");
    let out = s.send_str(&invite_with(
        "z9hG4bK-re",
        "1-42@127.0.0.1",
        2,
        Some(&tag),
        &v6,
    ));
    assert_eq!(out.statuses(), vec![100, 488]);
    let w = out.last_response().headers.get("Warning").unwrap();
    assert!(w.starts_with("301 "), "{w}");
    assert!(out.events.is_empty(), "the call's media is unchanged");
    s.send_str(&in_dialog("ACK", "z9hG4bK-re", &tag, 2, "", ""));
    // RFC 2543 hold: c=0.0.0.0 keeps the family question out of it.
    let hold = SIPP_SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    let out = s.send_str(&invite_with(
        "z9hG4bK-re2",
        "1-42@127.0.0.1",
        3,
        Some(&tag),
        &hold,
    ));
    assert_eq!(out.statuses(), vec![100, 200]);
    assert_eq!(s.ep.call_count(), 1);
}

#[test]
fn a_draining_node_refuses_new_calls_and_probes_but_keeps_its_calls() {
    let mut s = Sim::new();
    let out = s.send_str(&invite("z9hG4bK-up", SIPP_SDP));
    let call = out.incoming()[0].call;
    s.call_op(|ep, now| ep.answer(now, call, addr("127.0.0.1:30000")).unwrap());
    let tag = s.tag().to_string();
    s.send_str(&ack("z9hG4bK-ack", &tag, 1));

    s.ep.set_draining(true);
    assert!(s.ep.draining());
    let probe = s.send_str(&with_length(
        "OPTIONS sip:127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-o1\r\n\
         From: <sip:lb@127.0.0.1>;tag=p1\r\nTo: <sip:127.0.0.1:5070>\r\nCall-ID: probe-1\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n",
        "",
    ));
    assert_eq!(probe.statuses(), vec![503]);
    assert_eq!(probe.last_response().headers.get("Retry-After"), Some("1"));
    let refused = s.send_str(&invite_with(
        "z9hG4bK-new",
        "2-42@127.0.0.1",
        1,
        None,
        SIPP_SDP,
    ));
    assert_eq!(refused.statuses(), vec![503]);
    assert!(refused.incoming().is_empty(), "no call for a draining node");
    assert_eq!(
        refused.last_response().reason,
        "Service Unavailable (draining)"
    );

    // The call that was up goes on to its BYE.
    let bye_out = s.send_str(&bye("z9hG4bK-bye", &tag, 2));
    assert_eq!(bye_out.statuses(), vec![200]);
    assert_eq!(bye_out.ended(), vec![EndReason::RemoteBye]);

    s.ep.set_draining(false);
    let probe = s.send_str(&with_length(
        "OPTIONS sip:127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-o2\r\n\
         From: <sip:lb@127.0.0.1>;tag=p2\r\nTo: <sip:127.0.0.1:5070>\r\nCall-ID: probe-2\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n",
        "",
    ));
    assert_eq!(probe.statuses(), vec![200]);
}
