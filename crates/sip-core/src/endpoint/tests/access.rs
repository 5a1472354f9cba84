//! Who may call: trusted networks, digest authentication of untrusted callers, the rate limit
//! with its ban, and the call caps — all before the application hears of a call.

use super::*;
use crate::access::{AccessConfig, CallLimits, CallRefusal, Cidr, RateLimit, Untrusted};
use crate::registrar::{digest_authorization, Registrar, RegistrarConfig, SipUser};

fn only_trusted(net: &str, untrusted: Untrusted) -> impl FnOnce(&mut EndpointConfig) {
    let net: Cidr = net.parse().unwrap();
    move |c| {
        c.access = AccessConfig {
            trusted: vec![net],
            untrusted,
            rate_limit: None,
            calls: CallLimits::default(),
        }
    }
}

fn with_users(sim: &mut Sim) {
    let users = vec![SipUser {
        username: "alice".into(),
        password: "a long secret".into(),
    }];
    sim.ep.set_registrar(
        sim.now,
        Registrar::new(RegistrarConfig::new("hark", users), [3; 32]),
    );
}

#[test]
fn an_untrusted_source_gets_403_and_the_application_never_hears_of_it() {
    let mut sim = Sim::with_config(
        Transport::Udp,
        only_trusted("10.0.0.0/8", Untrusted::Reject),
    );
    let out = sim.send_str(&invite("z9hG4bK-scan", SIPP_SDP));
    assert_eq!(out.statuses(), vec![403]);
    assert!(out.incoming().is_empty());
    assert_eq!(
        out.security,
        vec![SecurityEvent::Untrusted {
            source: "127.0.0.1".parse().unwrap(),
            method: "INVITE".into()
        }]
    );
    let options = sim.send_str(&with_length(
        "OPTIONS sip:127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-o\r\n\
         From: <sip:100@127.0.0.1>;tag=s1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: scan-1\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n",
        "",
    ));
    assert_eq!(options.statuses(), vec![403]);
    // No call record was made for it, nothing lingers but the stored OPTIONS answer.
    assert_eq!(sim.ep.state_size(), (0, 1));
    assert_eq!(sim.ep.admitted_calls(), 0);
}

#[test]
fn drop_mode_answers_nothing_and_parses_nothing() {
    let mut sim = Sim::with_config(Transport::Udp, only_trusted("10.0.0.0/8", Untrusted::Drop));
    let out = sim.send_str(&invite("z9hG4bK-scan", SIPP_SDP));
    assert!(out.sent.is_empty() && out.events.is_empty() && out.security.is_empty());
    // Garbage is not even parsed: no "bad SIP" line either.
    let junk = sim.send(b"\x00\x01 not sip at all");
    assert!(junk.rejected.is_empty() && junk.sent.is_empty());
    assert_eq!(sim.ep.dropped(), 2);
}

#[test]
fn a_trusted_source_calls_as_before() {
    let mut sim = Sim::with_config(Transport::Udp, only_trusted("127.0.0.0/8", Untrusted::Drop));
    let out = sim.send_str(&invite("z9hG4bK-t", SIPP_SDP));
    assert_eq!(out.statuses(), vec![100]);
    assert_eq!(out.incoming().len(), 1);
}

/// The INVITE of `invite()` with an Authorization answering `challenge`.
fn authorized_invite(branch: &str, cseq: u32, challenge: &str, password: &str) -> String {
    let auth = digest_authorization(
        challenge,
        "INVITE",
        "sip:rec@127.0.0.1:5070",
        "alice",
        password,
        "c0ffee",
    )
    .expect("we can answer our own challenge");
    let plain = invite_with(branch, "1-42@127.0.0.1", cseq, None, SIPP_SDP);
    plain.replacen(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\nAuthorization: {auth}\r\n"),
        1,
    )
}

#[test]
fn an_untrusted_softphone_calls_after_a_digest_challenge_sha256_or_md5() {
    for algorithm in ["SHA-256", "MD5"] {
        let mut sim = Sim::with_config(Transport::Udp, only_trusted("10.0.0.0/8", Untrusted::Drop));
        with_users(&mut sim);
        let first = sim.send_str(&invite("z9hG4bK-a1", SIPP_SDP));
        assert_eq!(first.statuses(), vec![401]);
        assert!(first.incoming().is_empty());
        let challenge = first
            .last_response()
            .headers
            .get_all("WWW-Authenticate")
            .into_iter()
            .find(|c| c.contains(&format!("algorithm={algorithm}")))
            .expect("both algorithms offered")
            .to_string();
        // The ACK of the 401 is absorbed.
        let ack401 = sim.send_str(&in_dialog("ACK", "z9hG4bK-a1", "x", 1, "", ""));
        assert!(ack401.sent.is_empty());
        let second = sim.send_str(&authorized_invite(
            "z9hG4bK-a2",
            2,
            &challenge,
            "a long secret",
        ));
        assert_eq!(second.statuses(), vec![100], "{algorithm}");
        assert_eq!(second.incoming().len(), 1);
        assert_eq!(sim.ep.admitted_calls(), 1);
    }
}

#[test]
fn a_wrong_password_is_403_and_reported_for_fail2ban() {
    let mut sim = Sim::with_config(
        Transport::Udp,
        only_trusted("10.0.0.0/8", Untrusted::Reject),
    );
    with_users(&mut sim);
    let first = sim.send_str(&invite("z9hG4bK-w1", SIPP_SDP));
    let challenge = first
        .last_response()
        .headers
        .get("WWW-Authenticate")
        .unwrap()
        .to_string();
    let out = sim.send_str(&authorized_invite("z9hG4bK-w2", 2, &challenge, "guess"));
    assert_eq!(out.statuses(), vec![403]);
    assert!(out.incoming().is_empty());
    assert_eq!(
        out.security,
        vec![SecurityEvent::AuthFailed {
            source: "127.0.0.1".parse().unwrap(),
            user: "alice".into(),
            method: "INVITE".into()
        }]
    );
}

#[test]
fn a_flooding_source_is_banned_and_then_ignored_until_the_ban_ends() {
    let mut sim = Sim::with_config(Transport::Udp, |c| {
        c.access = AccessConfig {
            trusted: vec![],
            untrusted: Untrusted::Reject,
            rate_limit: Some(RateLimit {
                requests: 10,
                window: Duration::from_secs(2),
                ban: Duration::from_secs(30),
            }),
            calls: CallLimits::default(),
        }
    });
    let mut answered = 0;
    let mut banned = Vec::new();
    for i in 0..40 {
        let out = sim.send_str(&invite(&format!("z9hG4bK-f{i}"), SIPP_SDP));
        answered += out.statuses().len();
        banned.extend(
            out.security
                .into_iter()
                .filter(|e| matches!(e, SecurityEvent::Banned { .. })),
        );
    }
    // Ten answered (403: untrusted), the eleventh bans, the rest are not even parsed.
    assert_eq!(answered, 10);
    assert_eq!(banned.len(), 1);
    assert_eq!(sim.ep.dropped(), 30);
    sim.advance_to(31.0);
    let after = sim.send_str(&invite("z9hG4bK-after", SIPP_SDP));
    assert_eq!(after.statuses(), vec![403]);
    // Everything is forgotten once quiet.
    sim.advance_to(200.0);
    assert_eq!(sim.ep.access_state_size(), [0, 0, 0, 0]);
    assert_eq!(sim.ep.state_size(), (0, 0));
}

#[test]
fn over_a_call_cap_an_invite_is_503_with_retry_after_and_room_returns_when_a_call_ends() {
    let mut sim = Sim::with_config(Transport::Udp, |c| {
        c.access.calls = CallLimits {
            max_calls: 1,
            retry_after_secs: 7,
            ..CallLimits::default()
        }
    });
    let call = sim.confirmed_call();
    let second = sim.send_str(&invite_with(
        "z9hG4bK-2nd",
        "2-42@127.0.0.1",
        1,
        None,
        SIPP_SDP,
    ));
    assert_eq!(second.statuses(), vec![503]);
    let r = second.last_response();
    assert_eq!(r.headers.get("Retry-After"), Some("7"));
    assert!(r.reason.contains("max_calls"), "{}", r.reason);
    assert_eq!(
        second.security,
        vec![SecurityEvent::CallRefused {
            source: "127.0.0.1".parse().unwrap(),
            reason: CallRefusal::TooManyCalls
        }]
    );
    // The caller hangs up: the next call is admitted.
    sim.send_str(&bye("z9hG4bK-bye", sim.tag(), 2));
    assert_eq!(sim.ep.admitted_calls(), 0);
    let third = sim.send_str(&invite_with(
        "z9hG4bK-3rd",
        "3-42@127.0.0.1",
        1,
        None,
        SIPP_SDP,
    ));
    assert_eq!(third.incoming().len(), 1);
    let _ = call;
}

#[test]
fn new_calls_per_second_are_capped_with_retry_after_one() {
    let mut sim = Sim::with_config(Transport::Udp, |c| {
        c.access.calls = CallLimits {
            max_new_per_sec: 3,
            ..CallLimits::default()
        }
    });
    let mut statuses = Vec::new();
    for i in 0..5 {
        let out = sim.send_str(&invite_with(
            &format!("z9hG4bK-r{i}"),
            &format!("r{i}@127.0.0.1"),
            1,
            None,
            SIPP_SDP,
        ));
        statuses.push(*out.statuses().last().unwrap());
        if i == 4 {
            assert_eq!(out.last_response().headers.get("Retry-After"), Some("1"));
        }
    }
    assert_eq!(statuses, vec![100, 100, 100, 503, 503]);
    sim.advance_to(1.0);
    let later = sim.send_str(&invite_with(
        "z9hG4bK-r9",
        "r9@127.0.0.1",
        1,
        None,
        SIPP_SDP,
    ));
    assert_eq!(later.statuses(), vec![100]);
}

#[test]
fn a_refused_offer_gives_its_call_slot_back() {
    let mut sim = Sim::with_config(Transport::Udp, |c| {
        c.access.calls = CallLimits {
            max_calls: 1,
            ..CallLimits::default()
        }
    });
    let bad = sim.send_str(&invite("z9hG4bK-bad", ""));
    assert_eq!(bad.statuses(), vec![100, 400]);
    assert_eq!(sim.ep.admitted_calls(), 0);
    let good = sim.send_str(&invite_with("z9hG4bK-g", "g@127.0.0.1", 1, None, SIPP_SDP));
    assert_eq!(good.incoming().len(), 1);
}

/// cargo-fuzz `sip_endpoint`: state added by a ban, a drop or a trusted source's call-rate
/// bucket never got its sweep, so it stayed forever (bounded, but a leak).
#[test]
fn ban_drop_and_call_rate_state_is_forgotten_once_quiet() {
    let mut dropped = Sim::with_config(Transport::Udp, |c| {
        c.access = AccessConfig {
            trusted: vec![],
            untrusted: Untrusted::Drop,
            rate_limit: Some(RateLimit {
                requests: 3,
                window: Duration::from_secs(2),
                ban: Duration::from_secs(30),
            }),
            calls: CallLimits::default(),
        }
    });
    for i in 0..10 {
        dropped.send_str(&invite(&format!("z9hG4bK-d{i}"), SIPP_SDP));
    }
    assert_ne!(dropped.ep.access_state_size(), [0, 0, 0, 0]);
    dropped.advance_to(600.0);
    assert_eq!(dropped.ep.access_state_size(), [0, 0, 0, 0]);

    let mut rated = Sim::with_config(Transport::Udp, |c| {
        c.access.calls = CallLimits {
            max_new_per_sec_per_source: 1,
            ..CallLimits::default()
        }
    });
    let call = rated.send_str(&invite("z9hG4bK-r", SIPP_SDP)).incoming()[0].call;
    rated.call_op(|ep, now| ep.reject(now, call, 486).unwrap());
    rated.advance_to(600.0);
    assert_eq!(rated.ep.access_state_size(), [0, 0, 0, 0]);
    assert_eq!(rated.ep.state_size(), (0, 0));
}
