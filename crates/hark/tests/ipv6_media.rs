//! IPv6 media while signalling over IPv4 (linphone offering `c=IN IP6`): with `rtp.ip6` Hark
//! answers `c=IN IP6`, the caller hears the whole greeting and beep on its IPv6 socket, and the
//! recording is exactly what it sent. Without an IPv6 media address the offer is refused the way
//! RFC 3261 says (488, Warning 301), never answered with media that cannot flow.

mod common;
mod twilio_app;
mod twilio_client;

use common::sip::RawUac;
use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use twilio_client::*;

fn ip6_offer(rtp_port: u16) -> String {
    format!(
        "v=0\r\no=linphone 4242 1 IN IP6 ::1\r\ns=Talk\r\nc=IN IP6 ::1\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// PCMU audio Hark sends to `sock`, decoded, in arrival order, until `stop`.
fn listen(sock: &UdpSocket, stop: Arc<AtomicBool>) -> Arc<Mutex<Vec<i16>>> {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sock = sock.try_clone().expect("clone rtp socket");
    let out = heard.clone();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        // Bounded: the test sets `stop` within a minute; the loop also ends after 60 s.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                if n > 12 && buf[1] & 0x7f == 0 {
                    out.lock().expect("heard").extend(decode_all(&buf[12..n]));
                }
            }
        }
    });
    heard
}

fn metric(d: &Daemon, name: &str) -> u64 {
    let text = Http::new()
        .get(&format!("{}/metrics", d.public_url()), Auth::None)
        .text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing in:\n{text}"))
}

#[test]
fn ip6_media_over_ip4_signalling_is_heard_and_recorded_exactly() {
    let wh = WebhookServer::start();
    wh.route("/action", Reply::twiml("<Response><Hangup/></Response>"));
    let tmp = TempDir::new("ip6");
    let greeting = tmp.join("greeting.wav");
    write_pcm_wav(&greeting, &tone(440.0, 1.0, 8000.0));
    let d = Daemon::start(
        &[("rtp.ip6", "::1")],
        App::Twiml(format!(
            r##"<Response><Play>{}</Play><Record action="{}" finishOnKey="#" maxLength="30" timeout="10"/></Response>"##,
            greeting.display(),
            wh.url("/action")
        )),
    );
    let mut uac = RawUac::new(d.sip_addr());
    let rtp6 = UdpSocket::bind("[::1]:0").expect("bind [::1]");
    let port6 = rtp6.local_addr().expect("addr").port();
    let stop = Arc::new(AtomicBool::new(false));
    let heard = listen(&rtp6, stop.clone());
    let ok = uac.invite("rec", &ip6_offer(port6), Duration::from_secs(5));
    assert_eq!(ok.status(), Some(200), "{}", ok.first_line);
    assert!(
        ok.body.contains("c=IN IP6 ::1\r\n"),
        "answer in IP6: {}",
        ok.body
    );
    uac.ack();
    let hark_rtp: SocketAddr = uac.remote_rtp(&ok);
    assert!(hark_rtp.is_ipv6(), "{hark_rtp}");
    // Talk after the 1 s greeting and the 0.5 s beep.
    std::thread::sleep(Duration::from_millis(1800));
    let sent = composite(0.5, 3.4, 0.5);
    talk_then_pound(&d, &uac, &rtp6, hark_rtp, &sent.ulaw);
    stop.store(true, Ordering::SeqCst);

    // The caller heard all of the greeting and the beep.
    let heard = heard.lock().expect("heard").clone();
    let frames_of = |freq: f64| {
        heard
            .chunks(160)
            .filter(|f| dbfs(rms(f)) > -40.0 && tone_share(f, freq) > 0.3)
            .count()
    };
    let greeting_frames = frames_of(440.0);
    let beep_frames = frames_of(1000.0);
    assert!(
        greeting_frames >= 48,
        "{} ms of the 1 s greeting reached the caller",
        greeting_frames * 20
    );
    assert!(
        beep_frames >= 23,
        "{} ms of the 0.5 s beep reached the caller",
        beep_frames * 20
    );

    let action = wh.wait_for("/action", 1, Duration::from_secs(5)).remove(0);
    assert_eq!(action.param("Digits"), "#");
    let rec = check_recording(&d, &action, &decode_all(&sent.ulaw), false);
    assert!(rec.offset <= sent.speech_start && rec.end() >= sent.speech_end);
    assert_eq!(metric(&d, "hark_rtp_send_errors_total"), 0);
    wh.assert_signatures_ok();
}

#[test]
fn ip6_offer_without_an_ipv6_media_address_is_488_with_warning_301() {
    // sip.listen is 127.0.0.1 and rtp.ip6 is unset: no IPv6 address to receive media on.
    let d = Daemon::start(&[], App::Twiml("<Response><Record/></Response>".into()));
    let mut uac = RawUac::new(d.sip_addr());
    let r = uac.invite("rec", &ip6_offer(uac.rtp_port), Duration::from_secs(5));
    assert_eq!(r.status(), Some(488), "{}", r.first_line);
    let warning = r.header("Warning").unwrap_or_default();
    assert!(
        warning.starts_with("301 ") && warning.contains("IP6"),
        "Warning: {warning:?}"
    );
    uac.ack_failure(&r);
    // The daemon still takes an IPv4 call.
    assert!(options_ok(d.sip_addr()));
}

#[test]
fn bad_rtp_ip6_stops_start_up_naming_the_key() {
    let d = Daemon::prepare(
        &[("rtp.ip6", "127.0.0.1")],
        App::Twiml("<Response><Hangup/></Response>".into()),
    );
    let (code, out) =
        common::daemon::serve_expect_exit(Some(&d.config_path), &[], Duration::from_secs(10));
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
    assert!(out.contains("rtp.ip6"), "{out}");
}
