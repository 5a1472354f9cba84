use super::*;
use crate::message::{parse_message, Message};

const SECRET: [u8; 32] = [7; 32];
const NOW_UNIX: u64 = 1_765_000_000;

fn registrar() -> Registrar {
    let users = vec![SipUser {
        username: "bob".into(),
        password: "s3cret".into(),
    }];
    Registrar::new(RegistrarConfig::new("hark", users), SECRET)
}

fn register(
    user: &str,
    contact: &str,
    expires: Option<u32>,
    auth: Option<&str>,
    cseq: u32,
) -> Request {
    let mut text = format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{cseq}\r\n\
         Max-Forwards: 70\r\nTo: <sip:{user}@127.0.0.1>\r\nFrom: <sip:{user}@127.0.0.1>;tag=ft\r\n\
         Call-ID: reg-1\r\nCSeq: {cseq} REGISTER\r\nContact: {contact}\r\n"
    );
    if let Some(e) = expires {
        text.push_str(&format!("Expires: {e}\r\n"));
    }
    if let Some(a) = auth {
        text.push_str(&format!("Authorization: {a}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    match parse_message(text.as_bytes()).expect("parses") {
        Message::Request(r) => r,
        Message::Response(_) => panic!("a request"),
    }
}

/// The nonce of the challenge with `algorithm`.
fn nonce(reply: &RegisterReply, algorithm: &str) -> String {
    let h = reply
        .headers
        .iter()
        .find(|(n, v)| *n == "WWW-Authenticate" && v.contains(&format!("algorithm={algorithm}")))
        .map(|(_, v)| v.clone())
        .expect("challenge");
    let at = h.find("nonce=\"").unwrap() + 7;
    h[at..at + h[at..].find('"').unwrap()].to_string()
}

/// The first, unauthenticated REGISTER of `bob` from `contact`, and the `algorithm` nonce of
/// its challenge.
fn challenged(r: &mut Registrar, t0: Instant, contact: &str, algorithm: &str) -> String {
    let first = r.handle(t0, NOW_UNIX, &register("bob", contact, None, None, 1));
    assert_eq!(first.status, 401);
    nonce(&first, algorithm)
}

/// What a phone sends: RFC 2617 with qop=auth.
fn authorization(algorithm: &str, user: &str, password: &str, nonce: &str) -> String {
    let alg = if algorithm == "MD5" {
        Algorithm::Md5
    } else {
        Algorithm::Sha256
    };
    let ha1 = alg.hash(&format!("{user}:hark:{password}"));
    let ha2 = alg.hash("REGISTER:sip:127.0.0.1");
    let response = alg.hash(&format!("{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"hark\", nonce=\"{nonce}\", uri=\"sip:127.0.0.1\", \
         response=\"{response}\", algorithm={algorithm}, qop=auth, nc=00000001, cnonce=\"0a4f113b\""
    )
}

#[test]
fn md5_and_sha256_digests_register_and_lookup_finds_the_contact() {
    for algorithm in ["MD5", "SHA-256"] {
        let mut r = registrar();
        let t0 = Instant::now();
        let contact = "<sip:bob@127.0.0.1:5070;transport=udp>";
        let first = r.handle(t0, NOW_UNIX, &register("bob", contact, Some(600), None, 1));
        assert_eq!(first.status, 401);
        let offered: Vec<bool> = first
            .headers
            .iter()
            .map(|(_, v)| v.contains("SHA-256"))
            .collect();
        assert_eq!(
            offered,
            [false, true],
            "MD5 then SHA-256: {:?}",
            first.headers
        );
        let n = nonce(&first, algorithm);
        let auth = authorization(algorithm, "bob", "s3cret", &n);
        let ok = r.handle(
            t0,
            NOW_UNIX + 1,
            &register("bob", contact, Some(600), Some(&auth), 2),
        );
        assert_eq!(ok.status, 200, "{algorithm}: {ok:?}");
        assert_eq!(
            ok.headers,
            [(
                "Contact",
                "<sip:bob@127.0.0.1:5070;transport=udp>;expires=600".to_string()
            )]
        );
        let found = r.lookup(t0 + Duration::from_secs(599), "bob");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].contact, "sip:bob@127.0.0.1:5070;transport=udp");
        assert!(
            r.lookup(t0 + Duration::from_secs(600), "bob").is_empty(),
            "expired"
        );
    }
}

#[test]
fn wrong_password_other_user_and_forged_nonce_are_refused() {
    let mut r = registrar();
    let t0 = Instant::now();
    let c = "<sip:bob@127.0.0.1:5070>";
    let n = challenged(&mut r, t0, c, "MD5");
    let bad = authorization("MD5", "bob", "guess", &n);
    assert_eq!(
        r.handle(t0, NOW_UNIX, &register("bob", c, None, Some(&bad), 2))
            .status,
        403
    );
    let other = authorization("MD5", "bob", "s3cret", &n);
    assert_eq!(
        r.handle(t0, NOW_UNIX, &register("alice", c, None, Some(&other), 3))
            .status,
        403
    );
    let forged = authorization("MD5", "bob", "s3cret", "5f5e1000.000000000000000000000000");
    let again = r.handle(t0, NOW_UNIX, &register("bob", c, None, Some(&forged), 4));
    assert_eq!(
        again.status, 401,
        "a nonce we did not make is challenged again"
    );
    assert!(r.lookup(t0, "bob").is_empty());
}

#[test]
fn an_old_nonce_is_stale_and_the_retry_succeeds() {
    let mut r = registrar();
    let t0 = Instant::now();
    let c = "<sip:bob@127.0.0.1:5070>";
    let n = challenged(&mut r, t0, c, "MD5");
    let late = NOW_UNIX + NONCE_TTL_SECS + 1;
    let auth = authorization("MD5", "bob", "s3cret", &n);
    let stale = r.handle(t0, late, &register("bob", c, None, Some(&auth), 2));
    assert_eq!(stale.status, 401);
    assert!(stale.headers.iter().all(|(_, v)| v.contains("stale=true")));
    let n2 = nonce(&stale, "MD5");
    let auth = authorization("MD5", "bob", "s3cret", &n2);
    assert_eq!(
        r.handle(t0, late, &register("bob", c, None, Some(&auth), 3))
            .status,
        200
    );
}

#[test]
fn expiry_rules_refresh_remove_and_star() {
    let mut r = registrar();
    let t0 = Instant::now();
    let c = "<sip:bob@127.0.0.1:5070>";
    let n = challenged(&mut r, t0, c, "SHA-256");
    let auth = authorization("SHA-256", "bob", "s3cret", &n);
    let reg = |r: &mut Registrar, contact: &str, expires: Option<u32>, cseq: u32| {
        r.handle(
            t0,
            NOW_UNIX,
            &register("bob", contact, expires, Some(&auth), cseq),
        )
    };
    let brief = reg(&mut r, c, Some(10), 2);
    assert_eq!(
        (brief.status, brief.headers.clone()),
        (423, vec![("Min-Expires", "60".to_string())])
    );
    // No Expires: the default, capped at the maximum.
    let ok = reg(&mut r, c, None, 3);
    assert_eq!(
        ok.headers,
        [(
            "Contact",
            "<sip:bob@127.0.0.1:5070>;expires=3600".to_string()
        )]
    );
    let ok = reg(
        &mut r,
        "<sip:bob@127.0.0.1:5072>;expires=120",
        Some(7200),
        4,
    );
    assert_eq!(ok.headers.len(), 2, "two contacts: {ok:?}");
    assert!(ok.headers[1].1.ends_with(";expires=120"));
    // A reordered older CSeq of the same Call-ID is not applied.
    reg(&mut r, "<sip:bob@127.0.0.1:5072>", Some(0), 4);
    assert_eq!(r.lookup(t0, "bob").len(), 2);
    reg(&mut r, "<sip:bob@127.0.0.1:5072>", Some(0), 5);
    assert_eq!(r.lookup(t0, "bob").len(), 1);
    assert_eq!(
        reg(&mut r, "*", Some(60), 6).status,
        400,
        "* needs Expires: 0"
    );
    assert_eq!(reg(&mut r, "*", Some(0), 7).status, 200);
    assert!(r.lookup(t0, "bob").is_empty());
}

#[test]
fn malformed_authorization_headers_are_challenged_not_panics() {
    let mut r = registrar();
    let t0 = Instant::now();
    for bad in [
        "Digest",
        "Digest username=",
        "Digest username=\"bob, nonce=\"x\"",
        "Basic Ym9iOnMzY3JldA==",
        "Digest username=\"bob\", nonce=\"zz.zz\", response=\"\"",
        "Digest ,,,, =, username=\"bob\", nonce=\"1.2\", response=\"3\", algorithm=SHA-512-256",
    ] {
        let reply = r.handle(
            t0,
            NOW_UNIX,
            &register("bob", "<sip:bob@h>", None, Some(bad), 1),
        );
        assert!(matches!(reply.status, 401 | 403), "{bad}: {reply:?}");
    }
}
