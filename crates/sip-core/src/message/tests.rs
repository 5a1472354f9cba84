use super::*;

pub(crate) const SIPP_INVITE: &str = "INVITE sip:rec@127.0.0.1:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1234-1-0\r\n\
From: \"SIPp\" <sip:sipp@127.0.0.1:5061>;tag=1234SIPpTag001\r\n\
To: <sip:rec@127.0.0.1:5070>\r\n\
Call-ID: 1-1234@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:sipp@127.0.0.1:5061;transport=UDP>\r\n\
Max-Forwards: 70\r\n\
User-Agent: SIPp record-test\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 109\r\n\
\r\n\
v=0\r\n\
o=sipp 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=SIPp\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n";

fn request(bytes: &[u8]) -> Request {
    match parse_message(bytes) {
        Ok(Message::Request(r)) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

#[test]
fn parses_sipp_invite() {
    let r = request(SIPP_INVITE.as_bytes());
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.uri, "sip:rec@127.0.0.1:5070");
    assert_eq!(r.headers.get("call-id"), Some("1-1234@127.0.0.1"));
    assert_eq!(r.headers.get("i"), Some("1-1234@127.0.0.1"));
    assert_eq!(r.body.len(), 109);
    assert!(r.body.ends_with(b"RTP/AVP 0\r\n"));
}

#[test]
fn print_roundtrips_exactly() {
    let bytes = SIPP_INVITE.as_bytes();
    let r = request(bytes);
    assert_eq!(r.to_bytes(), bytes);
    let resp =
        b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nContent-Length: 0\r\n\r\n";
    let Ok(Message::Response(p)) = parse_message(resp) else {
        panic!("response")
    };
    assert_eq!((p.status, p.reason.as_str()), (180, "Ringing"));
    assert_eq!(p.to_bytes(), resp);
}

#[test]
fn print_rewrites_content_length_from_body() {
    let mut r = Request::new(Method::Info, "sip:a@b");
    r.headers.push("l", "999");
    r.body = b"Signal=1\r\n".to_vec();
    assert_eq!(
        r.to_bytes(),
        b"INFO sip:a@b SIP/2.0\r\nl: 10\r\n\r\nSignal=1\r\n"
    );
    let empty = Response::new(200, "OK");
    assert_eq!(
        empty.to_bytes(),
        b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"
    );
}

#[test]
fn compact_forms_and_folding() {
    let msg = "OPTIONS sip:x@y SIP/2.0\r\nv: SIP/2.0/UDP a;branch=z9hG4bK1\r\nf: <sip:a@b>\r\n\
                \t;tag=7\r\nt: <sip:x@y>\r\ni: abc\r\nSubject: first\r\n\tsecond  \r\nl: 0\r\n\r\n";
    let r = request(msg.as_bytes());
    assert_eq!(r.headers.get("Via"), Some("SIP/2.0/UDP a;branch=z9hG4bK1"));
    assert_eq!(r.headers.get("FROM"), Some("<sip:a@b> ;tag=7"));
    assert_eq!(r.headers.get("subject"), Some("first second"));
    assert_eq!(
        NameAddr::parse(r.headers.get("f").unwrap())
            .unwrap()
            .tag
            .as_deref(),
        Some("7")
    );
}

#[test]
fn get_all_splits_comma_lists_but_not_inside_quotes() {
    let mut h = Headers::new();
    h.push(
        "Via",
        "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2",
    );
    h.push("v", "SIP/2.0/TCP c;branch=z9hG4bK3");
    h.push("Record-Route", "<sip:p1;lr>, \"a, b\" <sip:p2;lr>");
    h.push("Date", "Sat, 13 Nov 2010 23:29:00 GMT");
    assert_eq!(h.get_all("via").len(), 3);
    assert_eq!(
        h.get_all("Record-Route"),
        vec!["<sip:p1;lr>", "\"a, b\" <sip:p2;lr>"]
    );
    assert_eq!(h.get_all("Date"), vec!["Sat, 13 Nov 2010 23:29:00 GMT"]);
}

#[test]
fn set_replaces_all_and_remove_understands_compact() {
    let mut h = Headers::new();
    h.push("Contact", "<sip:a@b>");
    h.push("X", "1");
    h.push("m", "<sip:c@d>");
    h.set("contact", "<sip:e@f>");
    assert_eq!(
        h.iter().collect::<Vec<_>>(),
        vec![("Contact", "<sip:e@f>"), ("X", "1")]
    );
    h.remove("m");
    assert_eq!(h.len(), 1);
}

#[test]
fn extra_bytes_after_body_are_ignored() {
    let msg = "BYE sip:a@b SIP/2.0\r\nContent-Length: 2\r\n\r\nokJUNK";
    assert_eq!(request(msg.as_bytes()).body, b"ok");
}

#[test]
fn leading_crlf_is_ignored_and_bare_lf_accepted() {
    let msg = "\r\n\r\nOPTIONS sip:a@b SIP/2.0\nCall-ID: x\n\n";
    assert_eq!(request(msg.as_bytes()).headers.get("Call-ID"), Some("x"));
}

#[test]
fn content_length_errors_name_the_field() {
    let short = "BYE sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nabc";
    assert_eq!(
        parse_message(short.as_bytes()),
        Err(ParseError::Truncated {
            declared: 10,
            actual: 3
        })
    );
    assert_eq!(
        parse_message(short.as_bytes()).unwrap_err().reason_phrase(),
        "Content-Length exceeds body"
    );
    for bad in ["-1", "abc", "99999999999999999999", "70000"] {
        let msg = format!("BYE sip:a@b SIP/2.0\r\nContent-Length: {bad}\r\n\r\n");
        assert!(
            matches!(
                parse_message(msg.as_bytes()),
                Err(ParseError::InvalidHeader {
                    name: "Content-Length",
                    ..
                })
            ),
            "{bad}"
        );
    }
}

#[test]
fn start_line_errors() {
    assert!(matches!(
        parse_message(b"INVITE sip:a@b\r\n\r\n"),
        Err(ParseError::StartLine(_))
    ));
    assert!(matches!(
        parse_message(b"INVITE sip:a@b SIP/3.0\r\n\r\n"),
        Err(ParseError::Version(_))
    ));
    assert!(matches!(
        parse_message(b"SIP/2.0 99 x\r\n\r\n"),
        Err(ParseError::StartLine(_))
    ));
    assert!(matches!(
        parse_message(b"\xff\xfe\r\n\r\n"),
        Err(ParseError::NotUtf8)
    ));
    assert!(matches!(
        parse_message(&[b'a'; 70_000]),
        Err(ParseError::TooLarge(_))
    ));
    assert!(matches!(
        parse_message(b"BYE sip:a@b SIP/2.0\r\nno colon here\r\n\r\n"),
        Err(ParseError::HeaderLine(_))
    ));
    assert_eq!(
        parse_message(b"BYE sip:a@b SIP/2.0\r\nX: y\r\n"),
        Err(ParseError::Unterminated)
    );
}

#[test]
fn lenient_parse_keeps_headers_when_body_is_short() {
    let cut = &SIPP_INVITE.as_bytes()[..SIPP_INVITE.len() - 10];
    let l = parse_lenient(cut).unwrap();
    assert!(matches!(
        l.error,
        Some(ParseError::Truncated {
            declared: 109,
            actual: 99
        })
    ));
    assert_eq!(l.message.headers().get("CSeq"), Some("1 INVITE"));
}

#[test]
fn truncated_invite_at_every_length_never_panics() {
    let bytes = SIPP_INVITE.as_bytes();
    let mut ok = 0;
    for n in 0..=bytes.len() {
        if parse_message(&bytes[..n]).is_ok() {
            ok += 1;
        }
        // Garbage variants: a byte flipped at every position.
        let mut flipped = bytes.to_vec();
        flipped[n.min(bytes.len() - 1)] ^= 0xA5;
        let _ = parse_message(&flipped);
        let _ = parse_lenient(&flipped);
    }
    // Only the complete message parses (the body is exactly Content-Length).
    assert_eq!(ok, 1);
}

#[test]
fn name_addr_forms() {
    let q =
        NameAddr::parse("\"Alice \\\"A\\\" Smith\" <sip:+15551234@example.com;user=phone>;tag=abc")
            .unwrap();
    assert_eq!(q.display_name.as_deref(), Some("Alice \"A\" Smith"));
    assert_eq!(q.uri, "sip:+15551234@example.com;user=phone");
    assert_eq!(q.tag.as_deref(), Some("abc"));
    assert_eq!(q.user(), Some("+15551234"));

    let t = NameAddr::parse("Bob <sip:bob@h>").unwrap();
    assert_eq!((t.display_name.as_deref(), t.tag), (Some("Bob"), None));

    let bare = NameAddr::parse("sip:carol@h:5070;tag=99").unwrap();
    assert_eq!(
        (bare.uri.as_str(), bare.tag.as_deref()),
        ("sip:carol@h:5070", Some("99"))
    );

    for bad in ["", "\"unterminated <sip:a@b>", "<sip:a@b", "Bob", "<>"] {
        assert!(NameAddr::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        q.to_string(),
        "\"Alice \\\"A\\\" Smith\" <sip:+15551234@example.com;user=phone>;tag=abc"
    );
}

#[test]
fn uri_parts() {
    assert_eq!(uri_user("sip:+15551234@example.com"), Some("+15551234"));
    assert_eq!(uri_user("sips:alice:secret@h"), Some("alice"));
    assert_eq!(uri_user("sip:example.com"), None);
    assert_eq!(uri_user("tel:+15551234;phone-context=x"), Some("+15551234"));
    assert_eq!(
        uri_host_port("sip:u@h:5070;transport=tcp"),
        Some(("h", Some(5070)))
    );
    assert_eq!(uri_host_port("sip:h"), Some(("h", None)));
    assert_eq!(
        uri_host_port("sip:u@[2001:db8::1]:5061"),
        Some(("2001:db8::1", Some(5061)))
    );
    assert_eq!(uri_host_port("sip:u@h:99999"), None);
    assert_eq!(uri_host_port("nonsense"), None);
}

#[test]
fn via_parse_and_print() {
    let mut v = Via::parse("SIP/2.0/udp 10.0.0.1:5060;rport;branch=z9hG4bK776").unwrap();
    assert_eq!(v.transport, "UDP");
    assert_eq!(v.branch(), Some("z9hG4bK776"));
    assert!(v.has_rport());
    assert_eq!(v.host(), "10.0.0.1");
    v.set_param("rport", Some("40000".into()));
    v.set_param("received", Some("192.0.2.1".into()));
    assert_eq!(
        v.to_string(),
        "SIP/2.0/UDP 10.0.0.1:5060;rport=40000;branch=z9hG4bK776;received=192.0.2.1"
    );
    assert!(Via::parse("SIP/2.0 10.0.0.1").is_err());
    assert!(Via::parse("garbage").is_err());
}

#[test]
fn cseq_parse() {
    assert_eq!(
        CSeq::parse("1 INVITE").unwrap(),
        CSeq {
            seq: 1,
            method: Method::Invite
        }
    );
    assert_eq!(CSeq::parse(" 314159  BYE ").unwrap().seq, 314159);
    for bad in [
        "",
        "INVITE",
        "1",
        "-1 INVITE",
        "x INVITE",
        "1 INVITE extra",
        "2147483648 BYE",
    ] {
        assert!(CSeq::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn methods_are_case_sensitive() {
    assert_eq!(Method::parse("INVITE"), Method::Invite);
    assert_eq!(Method::parse("invite"), Method::Other("invite".into()));
    assert_eq!(Method::parse("REGISTER").as_str(), "REGISTER");
}

#[test]
fn rfc3261_request_uri_needs_a_scheme_and_a_rest() {
    let msg = |uri: &str| {
        format!("OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    };
    for bad in [":::", ":x", "sip:", "1sip:x", "si p:x"] {
        assert!(
            parse_message(msg(bad).as_bytes()).is_err(),
            "{bad:?} accepted"
        );
    }
    for good in [
        "sip:rec@127.0.0.1:5060",
        "sips:a@h",
        "tel:+15551234",
        "x-custom.v1+a:b",
    ] {
        assert!(
            parse_message(msg(good).as_bytes()).is_ok(),
            "{good:?} refused"
        );
    }
}

fn options_with(extra: &str) -> String {
    format!("OPTIONS sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n{extra}\r\n")
}

#[test]
fn numbers_are_digits_only_without_a_sign() {
    assert!(matches!(
        parse_message(options_with("Content-Length: +0\r\n").as_bytes()),
        Err(ParseError::InvalidHeader {
            name: "Content-Length",
            ..
        })
    ));
    assert!(parse_message(options_with("Content-Length: 0\r\n").as_bytes()).is_ok());
    assert!(CSeq::parse("+1 INVITE").is_err());
    assert!(CSeq::parse("1 INVITE").is_ok());
    assert_eq!(host_port("h:+5060"), None);
    assert_eq!(host_port("h:5060"), Some(("h", Some(5060))));
    assert_eq!(parse_digits::<u32>("0042"), Some(42));
    assert_eq!(parse_digits::<u32>("-1"), None);
    assert_eq!(parse_digits::<u32>(""), None);
}

#[test]
fn via_takes_whitespace_around_slashes_but_not_empty_parameters() {
    let v = Via::parse("SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw").expect("RFC 4475 wsinv");
    assert_eq!(
        (v.transport.as_str(), v.sent_by.as_str()),
        ("UDP", "192.0.2.2")
    );
    assert_eq!(v.branch(), Some("390skdjuw"));
    assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
    assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;branch=z9hG4bK1;").is_err());
    assert!(Via::parse("SIP/2.0/UDP").is_err());
    assert!(NameAddr::parse("\"Joe\" <sip:joe@example.org>;;;;").is_err());
    assert!(NameAddr::parse("sip:joe@example.org;;tag=1").is_err());
    assert_eq!(
        NameAddr::parse("sip:caller@example.net;tag=2")
            .expect("addr-spec with a tag")
            .tag
            .as_deref(),
        Some("2")
    );
}

#[test]
fn control_characters_only_as_quoted_pairs() {
    let quoted = options_with("X-Name: \"BEL:\\\u{7} NUL:\\\u{0} DEL:\\\u{7f}\"\r\n");
    assert!(parse_message(quoted.as_bytes()).is_ok(), "RFC 4475 intmeth");
    for bare in [
        "X-Name: a\u{7}b\r\n",
        "X-Name: \"a\u{0}b\"\r\n",
        "X-Name: \\\u{7}\r\n",
    ] {
        assert!(
            parse_message(options_with(bare).as_bytes()).is_err(),
            "{bare:?} accepted"
        );
    }
}

#[test]
fn single_instance_headers_may_not_repeat() {
    for (extra, name) in [
        ("Call-ID: other\r\n", "Call-ID"),
        ("CSeq: 2 OPTIONS\r\n", "CSeq"),
        ("t: <sip:c@h>\r\n", "To"),
        ("Content-Length: 0\r\nl: 0\r\n", "Content-Length"),
        ("Max-Forwards: 70\r\nMax-Forwards: 5\r\n", "Max-Forwards"),
    ] {
        assert_eq!(
            parse_message(options_with(extra).as_bytes()),
            Err(ParseError::Repeated(name)),
            "{extra:?}"
        );
    }
    // List headers may repeat.
    assert!(parse_message(
        options_with("Via: SIP/2.0/UDP h2;branch=z9hG4bK2\r\nSupported: a\r\nSupported: b\r\n")
            .as_bytes()
    )
    .is_ok());
}

/// cargo-fuzz `sip_parse`: an addr-spec with `>` parsed, printed as `<…>` and no longer parsed.
#[test]
fn an_addr_spec_with_angle_brackets_or_quotes_is_refused() {
    for bad in ["sip:x>y@h;tag=1", "sip:x<y@h", "sip:\"x\"@h"] {
        assert!(NameAddr::parse(bad).is_err(), "{bad}");
    }
    let ok = NameAddr::parse("sip:x@h;tag=1").expect("plain addr-spec");
    assert_eq!(NameAddr::parse(&ok.to_string()), Ok(ok));
}

/// cargo-fuzz: a second Content-Length header printed its name without value or line end.
#[test]
fn printing_keeps_one_content_length_from_the_body() {
    let mut r = Request::new(Method::Options, "sip:a@h");
    r.headers.push("Content-Length", "99");
    r.headers.push("l", "7");
    r.headers.push("X-After", "kept");
    r.body = b"abc".to_vec();
    let text = String::from_utf8(r.to_bytes()).expect("utf-8");
    assert_eq!(text.matches("Content-Length").count(), 1, "{text}");
    assert!(
        text.contains("Content-Length: 3\r\nX-After: kept\r\n\r\nabc"),
        "{text}"
    );
    assert!(parse_message(text.as_bytes()).is_ok());
}

/// cargo-fuzz `sip_parse`: a quote opened on one line of a folded header is still open on the
/// next, so a NUL "quoted" on the continuation line alone is bare in the unfolded value.
#[test]
fn control_characters_are_judged_on_the_unfolded_value() {
    let folded = options_with("X-Name: \"a\r\n \"\\\u{0}b\"\r\n");
    assert!(parse_message(folded.as_bytes()).is_err());
    let fine = options_with("X-Name: \"a\\\u{0}\r\n b\"\r\n");
    let m = parse_message(fine.as_bytes()).expect("a quoted-pair NUL, folded after");
    let again = parse_message(&m.to_bytes()).expect("printed form parses");
    assert_eq!(again.headers().get("X-Name"), m.headers().get("X-Name"));
    assert_eq!(m.headers().get("X-Name"), Some("\"a\\\u{0} b\""));
}
