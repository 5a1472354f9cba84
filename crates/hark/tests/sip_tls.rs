//! Issue 14 item 4: SIP over TLS (`sip.tls_listen`, port 5061 by convention) with a test CA.
//! A client that trusts only the CA calls `sips:` over TLS, streams speech over RTP and
//! presses '#'; the recording is sample-exact, Hark's 200 carries a `sips:` Contact on the TLS
//! port and its BYE comes back over the same TLS connection. A client that does not trust the
//! CA gets no SIP at all.

mod common;

use common::rtp::dtmf_event;
use common::sip::{pcmu_offer, token, SipMsg};
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn tls_port(d: &Daemon) -> u16 {
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("SIP over TLS listening"))
        .unwrap_or_else(|| panic!("no TLS listening line:\n{log}"));
    let addr = line
        .split("sip_tls=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("sip_tls=ADDR");
    addr.parse::<SocketAddr>().expect("address").port()
}

fn client_config(ca: Option<&std::path::Path>) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("CA file") {
            roots.add(cert.expect("CA cert")).expect("add CA");
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect(port: u16, config: Arc<rustls::ClientConfig>) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_millis(200)))?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(config, name).expect("client");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // Drive the handshake to completion (or failure) now.
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// Reads SIP messages off the stream (framed by Content-Length) until `want` matches one,
/// within `timeout`; returns everything read.
fn read_until(
    tls: &mut Tls,
    framer: &mut sip_core::framing::StreamFramer,
    timeout: Duration,
    want: impl Fn(&SipMsg) -> bool,
) -> Vec<SipMsg> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let from: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    loop {
        while let Ok(Some(bytes)) = framer.next_message() {
            if let Some(m) = SipMsg::parse(&bytes, from) {
                let done = want(&m);
                seen.push(m);
                if done {
                    return seen;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "nothing wanted within {timeout:?}: {:?}",
            seen.iter()
                .map(|m| m.first_line.clone())
                .collect::<Vec<_>>()
        );
        let mut chunk = [0u8; 8192];
        match tls.read(&mut chunk) {
            Ok(0) => panic!("Hark closed the TLS connection"),
            Ok(n) => framer.push(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("TLS read: {e}"),
        }
    }
}

#[test]
fn a_sips_call_over_tls_with_a_test_ca_records_exactly() {
    let tmp = TempDir::new("sip-tls");
    let (ca, cert, key) = common::tls::ca_signed_cert(&tmp, "sip");
    let wh = WebhookServer::start();
    wh.route(
        "/action",
        Reply::twiml("<Response><Hangup/></Response>").fetch_recording(),
    );
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    let d = Daemon::start(
        &[
            ("sip.tls_listen", "127.0.0.1:0"),
            ("sip.tls_cert", cert_s.as_str()),
            ("sip.tls_key", key_s.as_str()),
        ],
        App::Twiml(format!(
            r##"<Response><Record action="{}" finishOnKey="#" maxLength="30" timeout="10"/></Response>"##,
            wh.url("/action")
        )),
    );
    let port = tls_port(&d);

    // A client that does not trust the test CA never gets to speak SIP.
    assert!(
        connect(port, client_config(None)).is_err(),
        "an unknown CA must fail the handshake"
    );

    let mut tls = connect(port, client_config(Some(&ca))).expect("TLS with the test CA");
    let local = tls.sock.local_addr().expect("local");
    let rtp = UdpSocket::bind("127.0.0.1:0").expect("rtp");
    let sdp = pcmu_offer(rtp.local_addr().expect("rtp addr").port());
    let (call_id, from_tag) = (token("tls"), token("t"));
    let ruri = format!("sips:rec@127.0.0.1:{port}");
    let invite = format!(
        "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bK{}\r\n\
         Max-Forwards: 70\r\nFrom: <sips:caller@127.0.0.1>;tag={from_tag}\r\nTo: <{ruri}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sips:caller@{local}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        token("b"),
        sdp.len()
    );
    tls.write_all(invite.as_bytes()).expect("send INVITE");
    let mut framer = sip_core::framing::StreamFramer::new();
    let got = read_until(&mut tls, &mut framer, Duration::from_secs(10), |m| {
        m.status().is_some_and(|s| s >= 200)
    });
    let ok = got.last().expect("a final response");
    assert_eq!(ok.status(), Some(200), "{}", ok.raw);
    assert_eq!(
        ok.header("Contact"),
        Some(format!("<sips:hark@127.0.0.1:{port}>").as_str())
    );
    let to = ok.header("To").expect("To").to_string();
    let ack = format!(
        "ACK sips:hark@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bK{}\r\n\
         Max-Forwards: 70\r\nFrom: <sips:caller@127.0.0.1>;tag={from_tag}\r\nTo: {to}\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        token("a")
    );
    tls.write_all(ack.as_bytes()).expect("send ACK");

    let (addr, rtp_port) = ok.sdp_audio().expect("SDP answer");
    let hark_rtp = SocketAddr::new(addr.parse().expect("ip"), rtp_port);
    let c = composite(1.0, 3.4, 1.6);
    let audio = c.ulaw[..8000 * 5].to_vec();
    let mut sender = RtpSender::spawn(
        &rtp,
        hark_rtp,
        vec![
            RtpPlan::Audio(audio.clone()),
            RtpPlan::Dtmf(dtmf_event('#')),
        ],
        true,
    );
    let got = read_until(&mut tls, &mut framer, Duration::from_secs(20), |m| {
        m.first_line.starts_with("BYE ")
    });
    sender.stop();
    let bye = got.last().expect("BYE");
    assert!(
        bye.header("Via")
            .is_some_and(|v| v.starts_with(&format!("SIP/2.0/TLS 127.0.0.1:{port};"))),
        "{}",
        bye.raw
    );
    let reply = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        bye.header("Via").unwrap_or_default(),
        bye.header("From").unwrap_or_default(),
        bye.header("To").unwrap_or_default(),
        bye.header("Call-ID").unwrap_or_default(),
        bye.header("CSeq").unwrap_or_default(),
    );
    tls.write_all(reply.as_bytes()).expect("200 to BYE");

    let actions = wh.wait_for("/action", 1, Duration::from_secs(5));
    assert_eq!(actions[0].param("Digits"), "#");
    let rec = check_recording(&d, &actions[0], &decode_all(&audio), true);
    assert_near("recording end", rec.end(), c.speech_end + 1600, 480);
}
