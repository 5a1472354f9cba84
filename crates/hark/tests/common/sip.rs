//! A hand-written SIP user agent over UDP (and one-shot TCP), independent of Hark's own SIP code.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(1);

/// A unique token for branches, tags and Call-IDs.
pub fn token(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}x{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    )
}

/// A parsed SIP message (just enough for the tests).
#[derive(Debug, Clone)]
pub struct SipMsg {
    pub raw: String,
    pub first_line: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub from_addr: SocketAddr,
    pub at: Instant,
}

const COMPACT: [(&str, &str); 8] = [
    ("i", "call-id"),
    ("f", "from"),
    ("t", "to"),
    ("v", "via"),
    ("m", "contact"),
    ("l", "content-length"),
    ("c", "content-type"),
    ("k", "supported"),
];

impl SipMsg {
    pub fn parse(bytes: &[u8], from_addr: SocketAddr) -> Option<SipMsg> {
        let raw = String::from_utf8_lossy(bytes).into_owned();
        let (head, body) = match raw.find("\r\n\r\n") {
            Some(i) => (&raw[..i], raw[i + 4..].to_string()),
            None => (raw.as_str(), String::new()),
        };
        let mut lines = head.split("\r\n");
        let first_line = lines.next()?.to_string();
        let mut headers = Vec::new();
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                let k = COMPACT
                    .iter()
                    .find(|(c, _)| *c == k)
                    .map(|(_, full)| full.to_string())
                    .unwrap_or(k);
                headers.push((k, v.trim().to_string()));
            }
        }
        Some(SipMsg {
            first_line,
            headers,
            body,
            from_addr,
            at: Instant::now(),
            raw,
        })
    }

    pub fn is_response(&self) -> bool {
        self.first_line.starts_with("SIP/2.0 ")
    }

    pub fn status(&self) -> Option<u16> {
        if !self.is_response() {
            return None;
        }
        self.first_line.get(8..11)?.parse().ok()
    }

    /// Request method (None for responses).
    pub fn method(&self) -> Option<&str> {
        if self.is_response() {
            return None;
        }
        self.first_line.split(' ').next()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn cseq_method(&self) -> Option<&str> {
        self.header("cseq")?.split_whitespace().nth(1)
    }

    pub fn cseq_num(&self) -> Option<u32> {
        self.header("cseq")?.split_whitespace().next()?.parse().ok()
    }

    /// `tag=` parameter of the To header.
    pub fn to_tag(&self) -> Option<String> {
        tag_of(self.header("to")?)
    }

    /// The URI inside the Contact header's <>.
    pub fn contact_uri(&self) -> Option<String> {
        let c = self.header("contact")?;
        let start = c.find('<')? + 1;
        let end = c[start..].find('>')? + start;
        Some(c[start..end].to_string())
    }

    /// Audio address from the SDP body: (c= address, m=audio port).
    pub fn sdp_audio(&self) -> Option<(String, u16)> {
        let mut addr = None;
        let mut port = None;
        for l in self.body.lines() {
            if let Some(c) = l
                .strip_prefix("c=IN IP4 ")
                .or_else(|| l.strip_prefix("c=IN IP6 "))
            {
                addr = Some(c.trim().to_string());
            }
            if let Some(m) = l.strip_prefix("m=audio ") {
                port = m.split_whitespace().next().and_then(|p| p.parse().ok());
            }
        }
        Some((addr?, port?))
    }
}

pub fn tag_of(header: &str) -> Option<String> {
    header.split(';').find_map(|p| {
        p.trim()
            .strip_prefix("tag=")
            .map(|t| t.trim_end_matches('>').to_string())
    })
}

/// An OPTIONS request from `local` to `target`.
pub fn options_request(local: SocketAddr, target: SocketAddr, transport: &str) -> String {
    format!(
        "OPTIONS sip:{target} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK{}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag={}\r\n\
         To: <sip:{target}>\r\n\
         Call-ID: {}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\r\n",
        token("o"),
        token("t"),
        token("c")
    )
}

/// From a fresh socket, sends the datagram `build(local address)` and collects every SIP
/// message that arrives within `wait`.
pub fn udp_exchange(
    target: SocketAddr,
    build: impl FnOnce(SocketAddr) -> Vec<u8>,
    wait: Duration,
) -> Vec<SipMsg> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let local = sock.local_addr().expect("local");
    let _ = sock.send_to(&build(local), target);
    collect(&sock, wait)
}

fn collect(sock: &UdpSocket, wait: Duration) -> Vec<SipMsg> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 70_000];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return out;
        }
        let _ = sock.set_read_timeout(Some(left));
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                if let Some(m) = SipMsg::parse(&buf[..n], from) {
                    out.push(m);
                }
            }
            Err(_) => return out,
        }
    }
}

/// OPTIONS over UDP answered by 200 within 1 s.
pub fn options_ok(target: SocketAddr) -> bool {
    options_ok_from("127.0.0.1", target)
}

/// [`options_ok`] from the loopback address `ip`.
pub fn options_ok_from(ip: &str, target: SocketAddr) -> bool {
    let sock = match UdpSocket::bind((ip, 0)) {
        Ok(s) => s,
        Err(_) => return false,
    };
    let local = sock.local_addr().expect("local addr");
    let req = options_request(local, target, "UDP");
    let _ = sock.send_to(req.as_bytes(), target);
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut buf = vec![0u8; 70_000];
    while Instant::now() < deadline {
        let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            if let Some(m) = SipMsg::parse(&buf[..n], from) {
                if m.status() == Some(200) && m.cseq_method() == Some("OPTIONS") {
                    return true;
                }
            }
        }
    }
    false
}

/// Sends `payload` over a new TCP connection and reads what comes back within `wait`.
pub fn tcp_exchange(target: SocketAddr, payload: &[u8], wait: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(3))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    // The peer may close early on a bad message: a failed write is an answer too.
    let _ = s.write_all(payload);
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(100)))?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// SDP offer from a UAC at `rtp_port` with the given payload types.
pub fn sdp_offer(rtp_port: u16, pts: &[(u8, &str)], direction: &str, version: u32) -> String {
    let mut s = format!(
        "v=0\r\no=e2e 4242 {version} IN IP4 127.0.0.1\r\ns=e2e\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/AVP {}\r\n",
        pts.iter()
            .map(|(pt, _)| pt.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    for (pt, name) in pts {
        s.push_str(&format!("a=rtpmap:{pt} {name}\r\n"));
        if name.starts_with("telephone-event") {
            s.push_str(&format!("a=fmtp:{pt} 0-16\r\n"));
        }
    }
    s.push_str(&format!("a=ptime:20\r\na={direction}\r\n"));
    s
}

/// PCMU + telephone-event, the usual offer.
pub fn pcmu_offer(rtp_port: u16) -> String {
    sdp_offer(
        rtp_port,
        &[(0, "PCMU/8000"), (101, "telephone-event/8000")],
        "sendrecv",
        1,
    )
}

/// A raw UDP SIP UAC with its own RTP socket. A reader thread stores every message and answers
/// BYE/INFO/OPTIONS requests from Hark with 200 (unless `auto_answer` is turned off).
pub struct RawUac {
    pub sock: UdpSocket,
    pub local: SocketAddr,
    pub target: SocketAddr,
    pub rtp: UdpSocket,
    pub rtp_port: u16,
    pub call_id: String,
    pub from_tag: String,
    pub to_tag: Option<String>,
    pub remote_target: Option<String>,
    pub cseq: u32,
    pub invite_branch: String,
    inbox: Arc<Mutex<Vec<SipMsg>>>,
    stop: Arc<AtomicBool>,
    pub auto_answer: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl RawUac {
    pub fn new(target: SocketAddr) -> RawUac {
        RawUac::new_on("127.0.0.1", target)
    }

    /// A caller whose SIP and RTP sockets are bound on `ip` (another loopback address, to be
    /// another source).
    pub fn new_on(ip: &str, target: SocketAddr) -> RawUac {
        let sock = UdpSocket::bind((ip, 0)).expect("bind sip");
        let local = sock.local_addr().expect("local");
        let rtp = UdpSocket::bind((ip, 0)).expect("bind rtp");
        let rtp_port = rtp.local_addr().expect("rtp local").port();
        let inbox = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let auto_answer = Arc::new(AtomicBool::new(true));
        let reader = {
            let sock = sock.try_clone().expect("clone");
            let inbox = inbox.clone();
            let stop = stop.clone();
            let auto = auto_answer.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 70_000];
                let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
                while !stop.load(Ordering::SeqCst) {
                    if let Ok((n, from)) = sock.recv_from(&mut buf) {
                        if let Some(m) = SipMsg::parse(&buf[..n], from) {
                            if auto.load(Ordering::SeqCst)
                                && matches!(m.method(), Some("BYE" | "INFO" | "OPTIONS"))
                            {
                                let _ = sock.send_to(response_to(&m, 200, "OK").as_bytes(), from);
                            }
                            inbox.lock().expect("inbox").push(m);
                        }
                    }
                }
            })
        };
        RawUac {
            sock,
            local,
            target,
            rtp,
            rtp_port,
            call_id: token("call"),
            from_tag: token("ft"),
            to_tag: None,
            remote_target: None,
            cseq: 0,
            invite_branch: String::new(),
            inbox,
            stop,
            auto_answer,
            reader: Some(reader),
        }
    }

    pub fn send(&self, msg: &str) {
        self.sock
            .send_to(msg.as_bytes(), self.target)
            .expect("send sip");
    }

    pub fn send_bytes(&self, msg: &[u8]) {
        let _ = self.sock.send_to(msg, self.target);
    }

    pub fn messages(&self) -> Vec<SipMsg> {
        self.inbox.lock().expect("inbox").clone()
    }

    fn our_from(&self) -> String {
        format!("<sip:e2e@{}>;tag={}", self.local, self.from_tag)
    }

    fn to_hdr(&self, user: &str) -> String {
        match &self.to_tag {
            Some(t) => format!("<sip:{user}@{}>;tag={t}", self.target),
            None => format!("<sip:{user}@{}>", self.target),
        }
    }

    /// Builds an INVITE (CSeq is incremented) and returns it without sending.
    pub fn build_invite(&mut self, user: &str, sdp: &str) -> String {
        self.cseq += 1;
        self.invite_branch = format!("z9hG4bK{}", token("inv"));
        let ruri = self
            .remote_target
            .clone()
            .unwrap_or_else(|| format!("sip:{user}@{}", self.target));
        format!(
            "INVITE {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {};branch={};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {}\r\n\
             To: {}\r\n\
             Call-ID: {}\r\n\
             CSeq: {} INVITE\r\n\
             Contact: <sip:e2e@{}>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            self.local,
            self.invite_branch,
            self.our_from(),
            self.to_hdr(user),
            self.call_id,
            self.cseq,
            self.local,
            sdp.len()
        )
    }

    /// Sends an INVITE and waits for its final response (retransmitting every 500 ms until a
    /// provisional one arrives). Learns the To tag and remote target from a 2xx.
    pub fn invite(&mut self, user: &str, sdp: &str, timeout: Duration) -> SipMsg {
        let msg = self.build_invite(user, sdp);
        let cseq = self.cseq;
        let deadline = Instant::now() + timeout;
        let mut next_retrans = Instant::now();
        loop {
            if Instant::now() >= next_retrans && !self.has_response("INVITE", cseq, 100) {
                self.send(&msg);
                next_retrans = Instant::now() + Duration::from_millis(500);
            }
            if let Some(r) = self.find_response("INVITE", cseq, 200) {
                if r.status().is_some_and(|s| (200..300).contains(&s)) {
                    self.to_tag = r.to_tag();
                    self.remote_target = r.contact_uri();
                }
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no final response to INVITE within {timeout:?}; got {:?}",
                self.messages()
                    .iter()
                    .map(|m| m.first_line.clone())
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn has_response(&self, method: &str, cseq: u32, min: u16) -> bool {
        self.messages().iter().any(|m| {
            m.cseq_method() == Some(method)
                && m.cseq_num() == Some(cseq)
                && m.status().is_some_and(|s| s >= min)
        })
    }

    /// First response to (method, cseq) with status ≥ `min`.
    pub fn find_response(&self, method: &str, cseq: u32, min: u16) -> Option<SipMsg> {
        self.messages().into_iter().find(|m| {
            m.cseq_method() == Some(method)
                && m.cseq_num() == Some(cseq)
                && m.status().is_some_and(|s| s >= min)
        })
    }

    pub fn responses(&self, method: &str, cseq: u32) -> Vec<SipMsg> {
        self.messages()
            .into_iter()
            .filter(|m| m.cseq_method() == Some(method) && m.cseq_num() == Some(cseq))
            .collect()
    }

    /// ACK for a 2xx (new branch, sent to the remote target).
    pub fn ack(&self) {
        let ruri = self
            .remote_target
            .clone()
            .unwrap_or_else(|| format!("sip:rec@{}", self.target));
        let msg = format!(
            "ACK {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {};branch=z9hG4bK{}\r\n\
             Max-Forwards: 70\r\n\
             From: {}\r\n\
             To: {}\r\n\
             Call-ID: {}\r\n\
             CSeq: {} ACK\r\n\
             Content-Length: 0\r\n\r\n",
            self.local,
            token("ack"),
            self.our_from(),
            self.to_hdr("rec"),
            self.call_id,
            self.cseq
        );
        self.send(&msg);
    }

    /// ACK for a non-2xx final response: same branch as the INVITE, To from the response.
    pub fn ack_failure(&self, resp: &SipMsg) {
        let ruri = self
            .remote_target
            .clone()
            .unwrap_or_else(|| format!("sip:rec@{}", self.target));
        let msg = format!(
            "ACK {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {};branch={};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {}\r\n\
             To: {}\r\n\
             Call-ID: {}\r\n\
             CSeq: {} ACK\r\n\
             Content-Length: 0\r\n\r\n",
            self.local,
            self.invite_branch,
            self.our_from(),
            resp.header("to").unwrap_or(""),
            self.call_id,
            self.cseq
        );
        self.send(&msg);
    }

    /// Sends an in-dialog request (BYE, INFO…); returns its CSeq.
    pub fn request(&mut self, method: &str, content_type: Option<&str>, body: &str) -> u32 {
        let msg = self.build_request(method, content_type, body);
        self.send(&msg);
        self.cseq
    }

    /// Builds the next in-dialog request without sending it (CSeq is incremented).
    pub fn build_request(
        &mut self,
        method: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> String {
        self.cseq += 1;
        let ruri = self
            .remote_target
            .clone()
            .unwrap_or_else(|| format!("sip:rec@{}", self.target));
        let ct = content_type
            .map(|c| format!("Content-Type: {c}\r\n"))
            .unwrap_or_default();
        format!(
            "{method} {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {};branch=z9hG4bK{};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {}\r\n\
             To: {}\r\n\
             Call-ID: {}\r\n\
             CSeq: {} {method}\r\n\
             Contact: <sip:e2e@{}>\r\n\
             {ct}Content-Length: {}\r\n\r\n{body}",
            self.local,
            token("rq"),
            self.our_from(),
            self.to_hdr("rec"),
            self.call_id,
            self.cseq,
            self.local,
            body.len()
        )
    }

    /// Waits for a final response to (method, cseq).
    pub fn wait_final(&self, method: &str, cseq: u32, timeout: Duration) -> Option<SipMsg> {
        crate::common::wait_until(timeout, || self.find_response(method, cseq, 200))
    }

    /// Waits for a request from Hark (e.g. BYE).
    pub fn wait_request(&self, method: &str, timeout: Duration) -> Option<SipMsg> {
        crate::common::wait_until(timeout, || {
            self.messages()
                .into_iter()
                .find(|m| m.method() == Some(method))
        })
    }

    /// Hark's RTP address from the 2xx SDP.
    pub fn remote_rtp(&self, ok: &SipMsg) -> SocketAddr {
        let (addr, port) = ok
            .sdp_audio()
            .unwrap_or_else(|| panic!("no c=/m=audio in the 200 OK SDP: {}", ok.body));
        let ip: std::net::IpAddr = addr.parse().expect("rtp address");
        SocketAddr::new(ip, port)
    }
}

impl Drop for RawUac {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

/// A response to `req` with the same Via/From/To/Call-ID/CSeq.
pub fn response_to(req: &SipMsg, code: u16, reason: &str) -> String {
    let mut s = format!("SIP/2.0 {code} {reason}\r\n");
    for v in req.headers_named("via") {
        s.push_str(&format!("Via: {v}\r\n"));
    }
    let mut copy = HashMap::new();
    for h in ["from", "to", "call-id", "cseq"] {
        copy.insert(h, req.header(h).unwrap_or("").to_string());
    }
    s.push_str(&format!(
        "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        copy["from"], copy["to"], copy["call-id"], copy["cseq"]
    ));
    s
}
