//! Guard rails of SIP over TCP, with real sockets on 127.0.0.1: the per-source connection cap
//! (`sip.tcp_max_connections_per_source`), the idle timeout (`sip.tcp_idle_timeout_secs`, not
//! while traffic flows, not while a call uses the connection), and the `/metrics` series that
//! count them and bounded channels' overflows.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::sip::{options_request, pcmu_offer, token, SipMsg};
use common::*;

fn metrics(d: &Daemon) -> String {
    let addr: SocketAddr = format!("127.0.0.1:{}", d.http_port).parse().expect("addr");
    let (status, body) = http_get(addr, "/metrics").expect("/metrics answered");
    assert_eq!(status, 200);
    body
}

/// Waits (≤ 5 s) until `/metrics` shows `series` at `value`; returns the last exposition.
fn wait_metric(d: &Daemon, series: &str, value: f64) -> String {
    let mut last = String::new();
    let found = wait_until(Duration::from_secs(5), || {
        last = metrics(d);
        (metric(&last, series) == Some(value)).then_some(())
    });
    assert!(found.is_some(), "{series} = {value} in /metrics:\n{last}");
    last
}

/// A SIP connection that reads whole messages (by Content-Length).
struct SipTcp {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// What a read within a time limit found.
#[derive(Debug)]
enum Read1 {
    Message(Box<SipMsg>),
    /// The peer closed (EOF or reset).
    Closed,
    Nothing,
}

impl SipTcp {
    fn connect(d: &Daemon) -> SipTcp {
        let stream =
            TcpStream::connect_timeout(&d.sip_addr(), Duration::from_secs(3)).expect("connect");
        stream
            .set_write_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        SipTcp {
            stream,
            buf: Vec::new(),
        }
    }

    fn local(&self) -> SocketAddr {
        self.stream.local_addr().expect("local addr")
    }

    fn send(&mut self, msg: &str) -> std::io::Result<()> {
        self.stream.write_all(msg.as_bytes())
    }

    /// One message, or the close, within `wait`.
    fn read(&mut self, wait: Duration) -> Read1 {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(msg) = self.take_message() {
                return Read1::Message(Box::new(msg));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Read1::Nothing;
            }
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Read1::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Read1::Nothing
                }
                Err(_) => return Read1::Closed,
            }
        }
    }

    fn take_message(&mut self) -> Option<SipMsg> {
        let end = self.buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                let name = name.trim();
                (name.eq_ignore_ascii_case("content-length") || name == "l")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        if self.buf.len() < end + length {
            return None;
        }
        let bytes: Vec<u8> = self.buf.drain(..end + length).collect();
        SipMsg::parse(&bytes, self.local())
    }

    /// OPTIONS answered 200 within 3 s.
    fn options_ok(&mut self, target: SocketAddr) -> bool {
        let req = options_request(self.local(), target, "TCP");
        if self.send(&req).is_err() {
            return false;
        }
        matches!(self.read(Duration::from_secs(3)), Read1::Message(m) if m.status() == Some(200))
    }
}

#[test]
fn connections_over_the_per_source_cap_are_closed_at_once_and_counted() {
    let d = Daemon::start(
        &[("sip.tcp_max_connections_per_source", "3")],
        App::Twiml("<Response><Hangup/></Response>".into()),
    );
    let mut open: Vec<SipTcp> = (0..3).map(|_| SipTcp::connect(&d)).collect();
    for (i, c) in open.iter_mut().enumerate() {
        assert!(c.options_ok(d.sip_addr()), "connection {} served", i + 1);
    }
    wait_metric(&d, "hark_sip_tcp_connections", 3.0);

    // The kernel completes the handshake; Hark accepts and closes at once.
    let mut fourth = SipTcp::connect(&d);
    let _ = fourth.send(&options_request(fourth.local(), d.sip_addr(), "TCP"));
    let started = Instant::now();
    let answer = fourth.read(Duration::from_secs(3));
    assert!(
        matches!(answer, Read1::Closed),
        "4th connection from 127.0.0.1 closed, got {answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "closed at once");
    let text = wait_metric(
        &d,
        "hark_sip_tcp_rejected_total{reason=\"per_source\"}",
        1.0,
    );
    assert_eq!(
        metric(&text, "hark_sip_tcp_rejected_total{reason=\"total\"}"),
        Some(0.0)
    );
    assert_eq!(metric(&text, "hark_sip_tcp_connections"), Some(3.0));
    let log = d.log();
    assert!(
        log.contains("cap reached") && log.contains("sip.tcp_max_connections_per_source"),
        "the refusal is logged with its cap:\n{log}"
    );
    // The three still work; closing one makes room for a new one.
    for c in &mut open {
        assert!(c.options_ok(d.sip_addr()), "open connections unaffected");
    }
    drop(open.pop());
    wait_metric(&d, "hark_sip_tcp_connections", 2.0);
    let mut again = SipTcp::connect(&d);
    assert!(again.options_ok(d.sip_addr()), "a freed slot is usable");
}

#[test]
fn idle_connections_close_after_the_timeout_unless_traffic_or_a_call_keeps_them() {
    let d = Daemon::start(
        &[("sip.tcp_idle_timeout_secs", "1")],
        App::Twiml(r#"<Response><Pause length="3"/><Hangup/></Response>"#.into()),
    );

    // Silent: closed after about 1 s.
    let mut silent = SipTcp::connect(&d);
    let started = Instant::now();
    let got = silent.read(Duration::from_secs(4));
    let after = started.elapsed();
    assert!(matches!(got, Read1::Closed), "silent connection: {got:?}");
    assert!(
        (Duration::from_millis(900)..Duration::from_millis(3000)).contains(&after),
        "closed after {after:?}, timeout 1 s"
    );
    wait_metric(&d, "hark_sip_tcp_idle_closed_total", 1.0);

    // Traffic every 400 ms for 2.4 s (> twice the timeout) keeps it; then it idles out.
    let mut busy = SipTcp::connect(&d);
    for i in 0..6 {
        assert!(
            busy.options_ok(d.sip_addr()),
            "OPTIONS {} at {:?}: connection kept while traffic flows",
            i + 1,
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(400));
    }
    let got = busy.read(Duration::from_secs(3));
    assert!(
        matches!(got, Read1::Closed),
        "busy connection, then idle: {got:?}"
    );
    wait_metric(&d, "hark_sip_tcp_idle_closed_total", 2.0);

    // A call over the connection: 3 s of <Pause> with no SIP traffic, and the BYE still comes
    // over it.
    let mut call = SipTcp::connect(&d);
    let local = call.local();
    let target = d.sip_addr();
    let (call_id, from_tag) = (token("c"), token("f"));
    // Hark's RTP goes here and is ignored (its RTP timeout is 30 s; the call lasts 3).
    let rtp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind rtp");
    let sdp = pcmu_offer(rtp.local_addr().expect("rtp addr").port());
    let invite = format!(
        "INVITE sip:rec@{target} SIP/2.0\r\n\
         Via: SIP/2.0/TCP {local};branch=z9hG4bK{}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:caller@{local}>;tag={from_tag}\r\n\
         To: <sip:rec@{target}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:caller@{local};transport=tcp>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        token("b"),
        sdp.len()
    );
    call.send(&invite).expect("send INVITE");
    let ok = (0..10)
        .find_map(|_| match call.read(Duration::from_secs(5)) {
            Read1::Message(m) if m.status() == Some(200) => Some(Ok(m)),
            Read1::Message(_) => None,
            other => Some(Err(other)),
        })
        .expect("a final answer within 10 messages")
        .unwrap_or_else(|e| panic!("200 to INVITE over TCP, got {e:?}:\n{}", d.log()));
    let to = ok.header("To").expect("To").to_string();
    let ack = format!(
        "ACK sip:rec@{target};transport=tcp SIP/2.0\r\n\
         Via: SIP/2.0/TCP {local};branch=z9hG4bK{}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:caller@{local}>;tag={from_tag}\r\n\
         To: {to}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n",
        token("b")
    );
    call.send(&ack).expect("send ACK");
    let acked = Instant::now();
    let bye = match call.read(Duration::from_secs(8)) {
        Read1::Message(m) if m.method() == Some("BYE") => m,
        other => panic!(
            "Hark's BYE over the idle connection, got {other:?}:\n{}",
            d.log()
        ),
    };
    assert!(
        acked.elapsed() >= Duration::from_secs(2),
        "the call was idle on SIP for more than the timeout ({:?})",
        acked.elapsed()
    );
    let mut answer = String::from("SIP/2.0 200 OK\r\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for value in bye.headers_named(name) {
            answer.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    answer.push_str("Content-Length: 0\r\n\r\n");
    call.send(&answer).expect("send 200 to BYE");
    // The call is over: now the connection idles out like any other.
    let got = call.read(Duration::from_secs(4));
    assert!(matches!(got, Read1::Closed), "after the call: {got:?}");
    wait_metric(&d, "hark_sip_tcp_idle_closed_total", 3.0);
}

#[test]
fn channel_overflow_series_exist_at_zero() {
    let d = Daemon::start(&[], App::Twiml("<Response><Hangup/></Response>".into()));
    let text = metrics(&d);
    assert!(
        text.contains("# TYPE hark_channel_overflow_total counter\n"),
        "{text}"
    );
    for channel in [
        "sip_commands",
        "call_events",
        "sip_tcp_events",
        "sip_tcp_write",
        "live_control",
        "outbox_done",
        "media_commands",
        "bot_notifications",
    ] {
        let series = format!("hark_channel_overflow_total{{channel=\"{channel}\"}}");
        assert_eq!(metric(&text, &series), Some(0.0), "{series} in:\n{text}");
    }
    assert_eq!(metric(&text, "hark_sip_tcp_connections"), Some(0.0));
    assert_eq!(metric(&text, "hark_sip_tcp_idle_closed_total"), Some(0.0));
}
