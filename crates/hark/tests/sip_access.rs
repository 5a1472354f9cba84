//! Issue 14 item 3, who may call, over real UDP/TCP on loopback addresses standing for other
//! hosts (127.0.0.2, 127.0.0.3): a source outside `sip.trusted` gets 403 (or nothing, with
//! `sip.untrusted = "drop"`) and leaves no call row or recording; an INVITE flood from one
//! source is banned (a fail2ban-readable line, `/metrics`) while a trusted caller's recording
//! stays sample-exact; a softphone outside `trusted` calls as a `[[user]]` after a digest
//! challenge (SIPp), a wrong password is 403 and logged; over `sip.max_calls` an INVITE gets
//! 503 with Retry-After and no call row.

mod common;
mod twilio_app;
mod twilio_client;

use common::sip::{options_request, pcmu_offer, SipMsg};
use common::*;
use std::io::Read;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};
use twilio_client::{api_url, Auth, Http};

fn metrics(d: &Daemon) -> String {
    let addr: SocketAddr = format!("127.0.0.1:{}", d.http_port).parse().expect("addr");
    let (status, body) = http_get(addr, "/metrics").expect("/metrics answered");
    assert_eq!(status, 200);
    body
}

fn calls_listed(d: &Daemon) -> usize {
    let v = Http::new()
        .get(&api_url(d, ACCOUNT_SID, "Calls.json"), Auth::Account)
        .json();
    v["calls"].as_array().map_or(0, Vec::len)
}

/// An INVITE with a PCMU offer from `local`, its own Call-ID.
fn invite_from(local: SocketAddr, target: SocketAddr, n: usize) -> String {
    let sdp = pcmu_offer(40_000);
    format!(
        "INVITE sip:rec@{target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-flood-{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:scanner@{local}>;tag=f{n}\r\n\
         To: <sip:rec@{target}>\r\n\
         Call-ID: flood-{n}@{local}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:scanner@{local}>\r\n\
         User-Agent: friendly-scanner\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// Every SIP message arriving on `sock` within `wait`.
fn collect(sock: &UdpSocket, wait: Duration) -> Vec<SipMsg> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 70_000];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if left.is_zero() {
            break;
        }
        let _ = sock.set_read_timeout(Some(left));
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => out.extend(SipMsg::parse(&buf[..n], from)),
            Err(_) => break,
        }
    }
    out
}

fn trusted_only_127_0_0_1(extra: &[(&str, &str)]) -> Daemon {
    let mut overrides = vec![("sip.trusted", "[\"127.0.0.1/32\"]")];
    overrides.extend_from_slice(extra);
    Daemon::start(
        &overrides,
        App::Twiml(r##"<Response><Record maxLength="30" finishOnKey="#"/></Response>"##.into()),
    )
}

#[test]
fn a_stranger_gets_403_to_invite_and_options_and_leaves_no_trace() {
    let d = trusted_only_127_0_0_1(&[]);
    let sock = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    let local = sock.local_addr().expect("local");
    sock.send_to(invite_from(local, d.sip_addr(), 1).as_bytes(), d.sip_addr())
        .expect("send");
    let got = collect(&sock, Duration::from_secs(2));
    let statuses: Vec<u16> = got.iter().filter_map(SipMsg::status).collect();
    assert_eq!(statuses, vec![403], "no 100 Trying, no 180: {got:?}");
    sock.send_to(
        options_request(local, d.sip_addr(), "UDP").as_bytes(),
        d.sip_addr(),
    )
    .expect("send");
    let got = collect(&sock, Duration::from_secs(2));
    assert_eq!(
        got.iter().filter_map(SipMsg::status).collect::<Vec<_>>(),
        vec![403],
        "a scanner's OPTIONS learns nothing but 403"
    );
    assert_eq!(calls_listed(&d), 0, "no call row before admission");
    assert!(d.recordings().is_empty());
    let log = d.log();
    assert!(
        log.contains("SIP request refused source=127.0.0.2 method=INVITE"),
        "{log}"
    );
    assert_eq!(
        metric(&metrics(&d), "hark_sip_refused_total{reason=\"untrusted\"}"),
        Some(2.0)
    );
}

#[test]
fn drop_mode_answers_a_stranger_nothing_over_udp_or_tcp() {
    let d = trusted_only_127_0_0_1(&[("sip.untrusted", "drop")]);
    let sock = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    let local = sock.local_addr().expect("local");
    sock.send_to(invite_from(local, d.sip_addr(), 1).as_bytes(), d.sip_addr())
        .expect("send");
    sock.send_to(
        options_request(local, d.sip_addr(), "UDP").as_bytes(),
        d.sip_addr(),
    )
    .expect("send");
    assert!(collect(&sock, Duration::from_secs(2)).is_empty());
    // Over TCP the connection is closed before a byte is read.
    let bind = std::net::TcpListener::bind("127.0.0.2:0").expect("reserve a port");
    let from = bind.local_addr().expect("addr");
    drop(bind);
    let mut stream = connect_from(from, d.sip_addr());
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the connection is closed without an answer");
    assert_eq!(calls_listed(&d), 0);
    // Trusted callers are unaffected.
    let trusted = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let tl = trusted.local_addr().expect("local");
    trusted
        .send_to(
            options_request(tl, d.sip_addr(), "UDP").as_bytes(),
            d.sip_addr(),
        )
        .expect("send");
    let got = collect(&trusted, Duration::from_secs(2));
    assert_eq!(
        got.iter().filter_map(SipMsg::status).collect::<Vec<_>>(),
        vec![200]
    );
}

/// A TCP connection to `to` from the loopback alias `from` (the route would pick 127.0.0.1;
/// std cannot bind before connecting, tokio's `TcpSocket` can).
fn connect_from(from: SocketAddr, to: SocketAddr) -> TcpStream {
    let socket = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    socket.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().expect("socket");
        s.bind(from).expect("bind 127.0.0.2");
        let stream = s.connect(to).await.expect("connect");
        stream.into_std().expect("std stream")
    })
}

#[test]
fn an_invite_flood_is_banned_while_a_trusted_caller_records_exactly() {
    let wh = WebhookServer::start();
    wh.route(
        "/action",
        Reply::twiml("<Response><Hangup/></Response>").fetch_recording(),
    );
    let d = Daemon::start(
        &[
            ("sip.trusted", "[\"127.0.0.1/32\"]"),
            ("sip.rate_limit_requests", "50"),
            ("sip.rate_limit_window_secs", "2"),
            ("sip.ban_secs", "60"),
        ],
        App::Twiml(format!(
            r##"<Response><Record action="{}" finishOnKey="#" maxLength="60" timeout="10"/></Response>"##,
            wh.url("/action")
        )),
    );
    let mut uac = common::sip::RawUac::new(d.sip_addr());
    let ok = uac.invite("rec", &pcmu_offer(uac.rtp_port), Duration::from_secs(5));
    assert_eq!(ok.status(), Some(200));
    uac.ack();
    let hark_rtp = uac.remote_rtp(&ok);
    let c = composite(1.0, 3.4, 1.6);
    let audio = c.ulaw[..8000 * 5].to_vec();
    let sip = d.sip_addr();
    // 3000 INVITEs from one stranger at about 3000/s, one second into the speech (faster, and
    // the kernel's receive buffer drops them before Hark sees them; sipp-scenarios/load with
    // FLOOD measures that regime).
    let flood = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1000));
        let flood = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        let local = flood.local_addr().expect("local");
        for n in 0..3000 {
            let _ = flood.send_to(invite_from(local, sip, n).as_bytes(), sip);
            if n % 10 == 9 {
                std::thread::sleep(Duration::from_millis(3));
            }
        }
        let answers = collect(&flood, Duration::from_secs(2));
        // Banned: even a single OPTIONS goes unanswered now.
        flood
            .send_to(options_request(local, sip, "UDP").as_bytes(), sip)
            .expect("send");
        (answers, collect(&flood, Duration::from_secs(1)))
    });
    talk_then_pound(&d, &uac, &uac.rtp, hark_rtp, &audio);
    let (answers, after_ban) = flood.join().expect("flood thread");
    assert!(
        answers.len() <= 50 && answers.iter().all(|m| m.status() == Some(403)),
        "at most the rate limit's 50 answered, all 403: {} answers",
        answers.len()
    );
    assert!(after_ban.is_empty(), "{after_ban:?}");
    let actions = wh.wait_for("/action", 1, Duration::from_secs(5));
    assert_eq!(actions[0].param("Digits"), "#");
    let rec = check_recording(&d, &actions[0], &decode_all(&audio), true);
    assert_near("recording end", rec.end(), c.speech_end + 1600, 480);

    let log = d.log();
    let bans: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("SIP source banned source=127.0.0.2 "))
        .collect();
    assert_eq!(bans.len(), 1, "one ban line for fail2ban:\n{log}");
    let refused = log.matches("SIP request refused source=127.0.0.2").count();
    assert!(refused <= 20, "refusal lines are budgeted: {refused}");
    let m = metrics(&d);
    assert_eq!(metric(&m, "hark_sip_bans_total"), Some(1.0));
    let dropped = metric(&m, "hark_sip_refused_total{reason=\"dropped\"}").unwrap_or(0.0);
    assert!(
        dropped >= 2900.0,
        "the flood was dropped unparsed: {dropped}"
    );
    assert_eq!(calls_listed(&d), 1, "only the trusted call has a row");
}

#[test]
fn a_softphone_outside_trusted_calls_as_a_user_with_digest_and_a_wrong_password_is_403() {
    require_sipp();
    let wh = WebhookServer::start();
    wh.route(
        "/action",
        Reply::twiml("<Response><Hangup/></Response>").fetch_recording(),
    );
    let mut d = Daemon::prepare(
        &[("sip.trusted", "[\"127.0.0.1/32\"]")],
        App::Twiml(format!(
            r##"<Response><Record action="{}" finishOnKey="#" maxLength="30"/></Response>"##,
            wh.url("/action")
        )),
    );
    d.append_config("\n[[user]]\nusername = \"alice\"\npassword = \"correct horse battery\"\n");
    d.launch();
    let out = Sipp::new("uac_auth_rfc2833.xml", d.sip_addr())
        .arg("-i")
        .arg("127.0.0.3")
        .arg("-au")
        .arg("alice")
        .arg("-ap")
        .arg("correct horse battery")
        .run(&d.tmp, Duration::from_secs(40));
    out.assert_success();
    let actions = wh.wait_for("/action", 1, Duration::from_secs(5));
    assert_eq!(actions[0].param("Digits"), "#");
    let speech = decode_all(&speech_ulaw());
    let rec = check_recording(&d, &actions[0], &speech, true);
    let (_, speech_end) = speech_span(&speech, -45.0).expect("speech");
    assert_near("recording end", rec.end(), speech_end + 1600, 480);

    let dir = TempDir::new("sipp-auth-wrong");
    let wrong = Sipp::new("uac_auth_rfc2833.xml", d.sip_addr())
        .arg("-i")
        .arg("127.0.0.3")
        .arg("-au")
        .arg("alice")
        .arg("-ap")
        .arg("guess")
        .run(&dir, Duration::from_secs(20));
    assert!(!wrong.success(), "a wrong password must not get a call");
    let msgs = common::procs::sipp_messages(&dir, "uac_auth_rfc2833.xml");
    assert!(msgs.contains("SIP/2.0 403 Forbidden"), "{msgs}");
    assert_eq!(calls_listed(&d), 1);
    assert_eq!(d.recordings().len(), 1);
    let log = d.log();
    assert!(
        log.contains("SIP authentication failed source=127.0.0.3 user=\"alice\" method=INVITE"),
        "{log}"
    );
}

#[test]
fn over_max_calls_an_invite_gets_503_with_retry_after_and_no_row() {
    let d = Daemon::start(
        &[("sip.max_calls", "1"), ("sip.retry_after_secs", "9")],
        App::Twiml(r##"<Response><Record maxLength="30" finishOnKey="#"/></Response>"##.into()),
    );
    let mut first = common::sip::RawUac::new(d.sip_addr());
    let ok = first.invite("rec", &pcmu_offer(first.rtp_port), Duration::from_secs(5));
    assert_eq!(ok.status(), Some(200));
    first.ack();
    let mut second = common::sip::RawUac::new(d.sip_addr());
    let busy = second.invite("rec", &pcmu_offer(second.rtp_port), Duration::from_secs(5));
    assert_eq!(busy.status(), Some(503), "{}", busy.first_line);
    assert_eq!(busy.header("Retry-After"), Some("9"));
    second.ack_failure(&busy);
    assert_eq!(calls_listed(&d), 1);
    assert!(d
        .log()
        .contains("SIP call refused with 503 source=127.0.0.1 cap=sip.max_calls"));
    assert_eq!(
        metric(&metrics(&d), "hark_sip_refused_total{reason=\"max_calls\"}"),
        Some(1.0)
    );
}
