//! The UAS endpoint (sip_core::Endpoint) under simulated time: datagrams (fuzzed bytes and
//! valid templates: INVITE with SDP, ACK, BYE, CANCEL, OPTIONS, INFO, re-INVITE, REGISTER,
//! responses to our BYE), time passing, and the application's calls (ring, answer, reject,
//! hangup) on the calls it reports. At the end every call is hung up and time runs 10 minutes.
//!
//! Input: if the first byte is printable (or CR/LF), the whole input is one datagram (raw
//! SIP seeds and the RFC 4475/5118 torture messages), sent over UDP and over TCP, with every
//! call it starts answered. Otherwise byte 0 is the config (bit 0 Opus, bit 1 registrar, bit 2
//! no IPv6 media, bit 3 no IPv4 media), byte 1 the access config (see `access`), and records
//! `op [fields]` follow; the peer is `(op >> 3) % 5` (UDP 127.0.0.1, UDP [::1], TCP 127.0.0.1
//! conn 7, UDP 192.0.2.9, TCP 127.0.0.1 conn 8); `op & 7` is:
//!   0 raw datagram: `len: u16le`, bytes
//!   1 template: `kind, dialog, variant`
//!   2 time passes: `ms: u16le` (times `op >> 3` + 1); timers run at their deadlines
//!   3 application call: `action, call, status`
//!   4 a response to one of our BYEs: `which, status`
//!   5 the previous datagram again (a retransmission), possibly from another peer
//!   6 REGISTER or a new INVITE answering the last digest challenge: `variant`
//!   7 template with a splice: `kind, dialog, variant, at: u16le, cut, len`, bytes
//!
//! Invariants:
//! - everything the endpoint transmits parses; the requests it sends are BYEs;
//! - events are consistent: Incoming once per new key; Confirmed, MediaChanged, Dtmf and
//!   Ended only for a reported, not yet ended call; Ended once; `call_count()` is the number
//!   of reported calls not ended, and so is `admitted_calls()` (what the call caps count);
//!   a ban lasts into the future; `dropped()` never decreases;
//! - API calls on an ended or unknown call fail with UnknownCall, on a live call never;
//!   hangup of a live call succeeds (or says the BYE is already out);
//! - after hanging up every call and 10 minutes of timers: every reported call ended,
//!   `call_count() == 0`, `state_size() == (0, 0)`, `access_state_size() == [0; 4]` and no
//!   timer is pending;
//! - timers make progress (no deadline in the past that stays due).
#![no_main]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sip_core::access::{AccessConfig, CallLimits, Cidr, RateLimit, Untrusted};
use sip_core::endpoint::SecurityEvent;
use sip_core::message::header_tag;
use sip_core::registrar::{digest_authorization, Registrar, RegistrarConfig, SipUser};
use sip_core::{
    parse_message, CallError, CallEvent, CallKey, Endpoint, EndpointConfig, Message, Method,
    Output, Peer, Transport, Via,
};

const LOCAL: &str = "127.0.0.1:5070";

const PEERS: usize = 5;

fn peers() -> [Peer; PEERS] {
    let v4: SocketAddr = "127.0.0.1:5061".parse().unwrap();
    let v6: SocketAddr = "[::1]:5062".parse().unwrap();
    let tcp: SocketAddr = "127.0.0.1:5063".parse().unwrap();
    let far: SocketAddr = "192.0.2.9:5064".parse().unwrap();
    [
        Peer {
            transport: Transport::Udp,
            addr: v4,
            conn: 0,
        },
        Peer {
            transport: Transport::Udp,
            addr: v6,
            conn: 0,
        },
        Peer {
            transport: Transport::Tcp,
            addr: tcp,
            conn: 7,
        },
        Peer {
            transport: Transport::Udp,
            addr: far,
            conn: 0,
        },
        Peer {
            transport: Transport::Tcp,
            addr: tcp,
            conn: 8,
        },
    ]
}

/// Access config from one byte: bit 0 only 127.0.0.0/8 trusted, bit 7 nobody trusted (else
/// everyone); bit 1 untrusted dropped (else 403); bit 2 a rate limit of 3 + (b >> 5) messages
/// a second, 5 s ban; bits 3–6 the caps: 2 calls, 1 per source, 2 new a second, 1 new a
/// second per source.
fn access(b: u8) -> AccessConfig {
    let mut a = AccessConfig::open();
    if b & 0x80 != 0 {
        a.trusted = vec![];
    } else if b & 1 != 0 {
        a.trusted = vec!["127.0.0.0/8".parse::<Cidr>().unwrap()];
    }
    a.untrusted = if b & 2 != 0 {
        Untrusted::Drop
    } else {
        Untrusted::Reject
    };
    if b & 4 != 0 {
        a.rate_limit = Some(RateLimit {
            requests: 3 + u32::from(b >> 5),
            window: Duration::from_secs(1),
            ban: Duration::from_secs(5),
        });
    }
    a.calls = CallLimits {
        max_calls: if b & 8 != 0 { 2 } else { 0 },
        max_calls_per_source: if b & 16 != 0 { 1 } else { 0 },
        max_new_per_sec: if b & 32 != 0 { 2 } else { 0 },
        max_new_per_sec_per_source: if b & 64 != 0 { 1 } else { 0 },
        retry_after_secs: 5,
    };
    a
}

fn sdp(variant: u8) -> String {
    let (fam, ip) = if variant & 0x10 != 0 {
        ("IP6", "::1")
    } else {
        ("IP4", "127.0.0.1")
    };
    let formats = match variant & 3 {
        0 => "0 8 101",
        1 => "8 101",
        2 => "96 0 101",
        _ => "18",
    };
    let dir = ["sendrecv", "sendonly", "recvonly", "inactive"][usize::from((variant >> 2) & 3)];
    format!(
        "v=0\r\no=fuzz 1 1 IN {fam} {ip}\r\ns=-\r\nc=IN {fam} {ip}\r\nt=0 0\r\n\
         m=audio 26000 RTP/AVP {formats}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
         a=ptime:20\r\na={dir}\r\n"
    )
}

/// A dialog the fuzzer's caller started.
#[derive(Debug, Clone)]
struct Dialog {
    call_id: String,
    from_tag: String,
    invite_branch: String,
    invite_cseq: u32,
    cseq: u32,
    /// Our (the endpoint's) tag, learned from its responses.
    to_tag: Option<String>,
}

struct Harness {
    ep: Endpoint,
    now: Instant,
    peers: [Peer; PEERS],
    dropped: u64,
    dialogs: Vec<Dialog>,
    /// Reported calls: key → ended.
    calls: BTreeMap<CallKey, bool>,
    order: Vec<CallKey>,
    /// Branches (with CSeq and peer) of the BYEs the endpoint sent.
    byes: Vec<(String, String, Peer)>,
    challenge: Option<String>,
    last: Option<(Peer, Vec<u8>)>,
    counter: u32,
}

impl Harness {
    fn new(cfg_byte: u8, access_byte: u8) -> Self {
        let mut cfg = EndpointConfig::new(LOCAL.parse().unwrap());
        cfg.access = access(access_byte);
        cfg.seed = 7;
        // SRTP answer keys from the seed: a crash reproduces byte for byte.
        cfg.deterministic_keys = true;
        cfg.user_agent = "Hark/fuzz".into();
        cfg.opus = cfg_byte & 1 != 0;
        cfg.media_ipv6 = cfg_byte & 4 == 0;
        cfg.media_ipv4 = cfg_byte & 8 == 0;
        let now = Instant::now();
        let mut ep = Endpoint::new(cfg);
        if cfg_byte & 2 != 0 {
            let users = vec![SipUser {
                username: "bob".into(),
                password: "pw".into(),
            }];
            ep.set_registrar(
                now,
                Registrar::new(RegistrarConfig::new("hark", users), [7; 32]),
            );
        }
        Harness {
            ep,
            now,
            peers: peers(),
            dropped: 0,
            dialogs: Vec::new(),
            calls: BTreeMap::new(),
            order: Vec::new(),
            byes: Vec::new(),
            challenge: None,
            last: None,
            counter: 0,
        }
    }

    fn live(&self) -> usize {
        self.calls.values().filter(|ended| !**ended).count()
    }

    fn drain(&mut self) {
        while let Some(o) = self.ep.poll_output() {
            match o {
                Output::Transmit { to: _, bytes } => self.on_transmit(&bytes),
                Output::Event(e) => self.on_event(e),
                Output::Rejected { reason, .. } => assert!(!reason.is_empty()),
                Output::Security(s) => {
                    if let SecurityEvent::Banned { until, .. } = s {
                        assert!(until > self.now, "a ban that is already over");
                    }
                }
                #[allow(unreachable_patterns)]
                _ => {}
            }
        }
        assert_eq!(
            self.ep.call_count(),
            self.live(),
            "call_count() differs from the events"
        );
        assert_eq!(
            self.ep.admitted_calls(),
            self.live(),
            "admitted_calls() differs from the live calls"
        );
        assert!(self.ep.dropped() >= self.dropped);
        self.dropped = self.ep.dropped();
    }

    fn on_transmit(&mut self, bytes: &[u8]) {
        let m = parse_message(bytes).unwrap_or_else(|e| {
            panic!(
                "endpoint sent an unparseable message ({e}): {:?}",
                String::from_utf8_lossy(bytes)
            )
        });
        match m {
            Message::Request(r) => {
                assert_eq!(r.method, Method::Bye, "the UAS only sends BYE");
                let branch = r
                    .headers
                    .get("Via")
                    .and_then(|v| Via::parse(v).ok())
                    .and_then(|v| v.branch().map(str::to_string))
                    .expect("our BYE has a Via branch");
                let cseq = r.headers.get("CSeq").unwrap_or("1 BYE").to_string();
                self.byes.push((branch, cseq, self.peers[0]));
                if self.byes.len() > 16 {
                    self.byes.remove(0);
                }
            }
            Message::Response(r) => {
                assert!((100..=699).contains(&r.status));
                if let Some(c) = r.headers.get("WWW-Authenticate") {
                    self.challenge = Some(c.to_string());
                }
                let call_id = r.headers.get("Call-ID").unwrap_or_default();
                let tag = r.headers.get("To").and_then(header_tag);
                if let (Some(tag), true) = (tag, r.status > 100) {
                    for d in self.dialogs.iter_mut().filter(|d| d.call_id == call_id) {
                        if d.to_tag.is_none() {
                            d.to_tag = Some(tag.clone());
                        }
                    }
                }
            }
        }
    }

    fn on_event(&mut self, e: CallEvent) {
        let key = match &e {
            CallEvent::Incoming(i) => {
                assert!(
                    !self.calls.contains_key(&i.call),
                    "Incoming twice for {:?}",
                    i.call
                );
                self.calls.insert(i.call, false);
                self.order.push(i.call);
                return;
            }
            CallEvent::Confirmed { call }
            | CallEvent::MediaChanged { call, .. }
            | CallEvent::Dtmf { call, .. }
            | CallEvent::Ended { call, .. } => *call,
        };
        match self.calls.get_mut(&key) {
            Some(ended) => {
                assert!(!*ended, "{e:?} after the call ended");
                if matches!(e, CallEvent::Ended { .. }) {
                    *ended = true;
                }
            }
            None => panic!("{e:?} for a call never reported"),
        }
        if let CallEvent::Dtmf { digit, .. } = e {
            assert!("0123456789*#ABCD".contains(digit), "digit {digit:?}");
        }
    }

    fn input(&mut self, peer: Peer, bytes: &[u8]) {
        self.ep.handle_input(self.now, peer, bytes);
        self.last = Some((peer, bytes.to_vec()));
        self.drain();
    }

    /// Runs every timer due up to `target`, at its deadline.
    fn advance_to(&mut self, target: Instant) {
        let mut guard = 0u32;
        while let Some(at) = self.ep.poll_timeout() {
            if at > target {
                break;
            }
            guard += 1;
            assert!(
                guard < 100_000,
                "timers do not make progress (next at {at:?})"
            );
            self.now = self.now.max(at);
            self.ep.handle_timeout(self.now);
            self.drain();
        }
        self.now = self.now.max(target);
    }

    fn dialog(&self, sel: u8) -> Option<Dialog> {
        (!self.dialogs.is_empty())
            .then(|| self.dialogs[usize::from(sel) % self.dialogs.len()].clone())
    }

    fn next(&mut self) -> u32 {
        self.counter += 1;
        self.counter
    }

    fn request(
        &self,
        method: &str,
        d: &Dialog,
        branch: &str,
        cseq: u32,
        to_tag: Option<&str>,
        extra: &str,
        body: &str,
    ) -> String {
        let to = match to_tag {
            Some(t) => format!("<sip:rec@{LOCAL}>;tag={t}"),
            None => format!("<sip:rec@{LOCAL}>"),
        };
        format!(
            "{method} sip:rec@{LOCAL} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch={branch};rport\r\n\
             From: \"Fuzz\" <sip:fuzz@127.0.0.1:5061>;tag={}\r\nTo: {to}\r\nCall-ID: {}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:fuzz@127.0.0.1:5061>\r\nMax-Forwards: 70\r\n\
             {extra}Content-Length: {}\r\n\r\n{body}",
            d.from_tag,
            d.call_id,
            body.len()
        )
    }

    /// A valid message of kind `kind` for dialog `sel` (a new dialog for an INVITE).
    fn template(&mut self, kind: u8, sel: u8, variant: u8) -> Option<String> {
        let n = self.next();
        let branch = format!("z9hG4bK-f{n}");
        match kind % 10 {
            0 => {
                let d = Dialog {
                    call_id: format!("c{n}@fuzz"),
                    from_tag: format!("ft{n}"),
                    invite_branch: branch.clone(),
                    invite_cseq: 1 + u32::from(variant >> 5),
                    cseq: 1 + u32::from(variant >> 5),
                    to_tag: None,
                };
                let extra = match variant >> 6 {
                    0 => "Content-Type: application/sdp\r\n",
                    1 => "Content-Type: application/sdp\r\nRecord-Route: <sip:p1.example.com;lr>, <sip:p2.example.com>\r\n",
                    2 => "Content-Type: application/sdp\r\nRequire: 100rel\r\n",
                    _ => "",
                };
                let body = if variant >> 6 == 3 && variant & 1 != 0 {
                    String::new()
                } else {
                    sdp(variant)
                };
                let m = self.request("INVITE", &d, &branch, d.invite_cseq, None, extra, &body);
                self.dialogs.push(d);
                if self.dialogs.len() > 8 {
                    self.dialogs.remove(0);
                }
                Some(m)
            }
            1 => {
                let d = self.dialog(sel)?;
                Some(self.request(
                    "INVITE",
                    &d,
                    &d.invite_branch,
                    d.invite_cseq,
                    None,
                    "Content-Type: application/sdp\r\n",
                    &sdp(variant),
                ))
            }
            2 => {
                let d = self.dialog(sel)?;
                // ACK of a 2xx is a new transaction; of a non-2xx it reuses the INVITE's branch.
                let b = if variant & 1 != 0 {
                    d.invite_branch.clone()
                } else {
                    branch
                };
                let cseq = if variant & 2 != 0 {
                    d.cseq
                } else {
                    d.invite_cseq
                };
                let tag = if variant & 4 != 0 {
                    Some("wrong")
                } else {
                    d.to_tag.as_deref()
                };
                Some(self.request("ACK", &d, &b, cseq, tag, "", ""))
            }
            3 | 5 | 6 | 7 => {
                let mut d = self.dialog(sel)?;
                let bump = if variant & 8 != 0 { 0 } else { 1 };
                d.cseq = if variant & 16 != 0 {
                    d.cseq.saturating_sub(1)
                } else {
                    d.cseq + bump
                };
                let tag = if variant & 4 != 0 {
                    None
                } else {
                    d.to_tag.clone()
                };
                let m = match kind % 10 {
                    3 => self.request("BYE", &d, &branch, d.cseq, tag.as_deref(), "", ""),
                    5 => self.request("OPTIONS", &d, &branch, d.cseq, tag.as_deref(), "", ""),
                    6 => {
                        let key = "0123456789*#ABCD".as_bytes()[usize::from(variant >> 4)] as char;
                        let (ct, body) = if variant & 1 != 0 {
                            (
                                "application/dtmf-relay",
                                format!("Signal={key}\r\nDuration=160\r\n"),
                            )
                        } else {
                            ("application/dtmf", format!("{key}"))
                        };
                        self.request(
                            "INFO",
                            &d,
                            &branch,
                            d.cseq,
                            tag.as_deref(),
                            &format!("Content-Type: {ct}\r\n"),
                            &body,
                        )
                    }
                    _ => {
                        let body = if variant & 1 != 0 {
                            String::new()
                        } else {
                            sdp(variant >> 1)
                        };
                        self.request(
                            "INVITE",
                            &d,
                            &branch,
                            d.cseq,
                            tag.as_deref(),
                            "Content-Type: application/sdp\r\n",
                            &body,
                        )
                    }
                };
                let i = usize::from(sel) % self.dialogs.len();
                self.dialogs[i].cseq = d.cseq.max(self.dialogs[i].cseq);
                Some(m)
            }
            4 => {
                let d = self.dialog(sel)?;
                let b = if variant & 1 != 0 {
                    branch
                } else {
                    d.invite_branch.clone()
                };
                Some(self.request("CANCEL", &d, &b, d.invite_cseq, None, "", ""))
            }
            8 => {
                let d = Dialog {
                    call_id: format!("reg{n}@fuzz"),
                    from_tag: format!("rt{n}"),
                    invite_branch: branch.clone(),
                    invite_cseq: 1,
                    cseq: 1,
                    to_tag: None,
                };
                let expires = ["", "Expires: 0\r\n", "Expires: 30\r\n", "Expires: 7200\r\n"]
                    [usize::from(variant & 3)];
                Some(
                    self.request("REGISTER", &d, &branch, 1, None, expires, "")
                        .replace("sip:rec@", "sip:bob@"),
                )
            }
            _ => {
                // A response to something we never sent, or a stray one.
                Some(format!(
                    "SIP/2.0 {} X\r\nVia: SIP/2.0/UDP {LOCAL};branch={branch}\r\nCSeq: 1 BYE\r\n\
                     Call-ID: x\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nContent-Length: 0\r\n\r\n",
                    100 + u16::from(variant) * 2
                ))
            }
        }
    }

    fn with_auth(&mut self, peer: Peer, variant: u8) {
        let Some(challenge) = self.challenge.clone() else {
            return;
        };
        if variant & 1 != 0 {
            // A new INVITE with credentials (an untrusted source must authenticate).
            let uri = format!("sip:rec@{LOCAL}");
            let user = if variant & 2 != 0 { "eve" } else { "bob" };
            let Some(auth) = digest_authorization(&challenge, "INVITE", &uri, user, "pw", "cn")
            else {
                return;
            };
            let Some(m) = self.template(0, 0, variant & 0x1C) else {
                return;
            };
            let m = m.replace(
                "Max-Forwards: 70\r\n",
                &format!("Max-Forwards: 70\r\nAuthorization: {auth}\r\n"),
            );
            self.input(peer, m.as_bytes());
            return;
        }
        let uri = "sip:127.0.0.1";
        let Some(auth) = digest_authorization(&challenge, "REGISTER", uri, "bob", "pw", "cn")
        else {
            return;
        };
        let n = self.next();
        let m = format!(
            "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-r{n}\r\n\
             From: <sip:bob@127.0.0.1>;tag=r{n}\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: reg@fuzz\r\n\
             CSeq: {n} REGISTER\r\nContact: <sip:bob@127.0.0.1:5061>\r\nAuthorization: {auth}\r\n\
             Content-Length: 0\r\n\r\n"
        );
        self.input(peer, m.as_bytes());
    }

    fn call_api(&mut self, action: u8, sel: u8, status: u8) {
        let Some(&key) =
            (!self.order.is_empty()).then(|| &self.order[usize::from(sel) % self.order.len()])
        else {
            return;
        };
        let key = if sel == 0xFF { CallKey(9999) } else { key };
        let ended = self.calls.get(&key).copied().unwrap_or(true);
        let now = self.now;
        let local: SocketAddr = if action & 0x10 != 0 {
            "[::1]:30000".parse().unwrap()
        } else {
            "127.0.0.1:30000".parse().unwrap()
        };
        let r = match action % 5 {
            0 => self.ep.ring(now, key),
            1 | 2 => self.ep.answer(now, key, local),
            3 => {
                let s = [300u16, 404, 480, 486, 500, 503, 603, 699, 200, 700, 180]
                    [usize::from(status) % 11];
                let r = self.ep.reject(now, key, s);
                if !(300..=699).contains(&s) && !ended {
                    assert!(r.is_err(), "reject with {s} accepted");
                }
                r
            }
            _ => {
                let r = self.ep.hangup(now, key);
                if !ended {
                    assert!(
                        r.is_ok() || r == Err(CallError::WrongState(key, "BYE already sent")),
                        "hangup of a live call: {r:?}"
                    );
                }
                r
            }
        };
        if ended {
            assert_eq!(r, Err(CallError::UnknownCall(key)), "API on an ended call");
        } else {
            assert_ne!(
                r,
                Err(CallError::UnknownCall(key)),
                "API on a live call says unknown"
            );
        }
        self.drain();
    }

    fn bye_response(&mut self, which: u8, status: u8) {
        if self.byes.is_empty() {
            return;
        }
        let (branch, cseq, peer) = self.byes[usize::from(which) % self.byes.len()].clone();
        let st = [100u16, 180, 200, 481, 408, 500][usize::from(status) % 6];
        let m = format!(
            "SIP/2.0 {st} X\r\nVia: SIP/2.0/UDP {LOCAL};branch={branch};rport\r\nFrom: <sip:rec@{LOCAL}>;tag=a\r\n\
             To: <sip:fuzz@127.0.0.1>;tag=b\r\nCall-ID: any\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
        );
        let peer = if which & 0x80 != 0 {
            self.peers[2]
        } else {
            peer
        };
        self.input(peer, m.as_bytes());
    }

    /// Hangs up every call, then lets 10 minutes of timers run; everything must be gone.
    fn finish(&mut self) {
        let live: Vec<CallKey> = self
            .calls
            .iter()
            .filter(|(_, e)| !**e)
            .map(|(k, _)| *k)
            .collect();
        for key in live {
            let r = self.ep.hangup(self.now, key);
            assert!(
                r.is_ok() || r == Err(CallError::WrongState(key, "BYE already sent")),
                "final hangup of {key:?}: {r:?}"
            );
            self.drain();
        }
        let end = self.now + Duration::from_secs(600);
        let step = Duration::from_secs(5);
        while self.now < end {
            let t = (self.now + step).min(end);
            self.advance_to(t);
        }
        assert!(
            self.calls.values().all(|e| *e),
            "a reported call never ended: {:?}",
            self.calls
        );
        assert_eq!(self.ep.call_count(), 0);
        assert_eq!(self.ep.state_size(), (0, 0), "state left after 10 minutes");
        assert_eq!(self.ep.admitted_calls(), 0);
        let access = self.ep.access_state_size();
        // Known: the sweep that forgets stale rate-limit windows, bans and call-rate buckets
        // only starts when a message from an untrusted source passes the screen. State made
        // otherwise stays for good (bounded by the 65536-source cap): a window or ban of an
        // untrusted source dropped before parsing (untrusted = drop without [[user]]s, or the
        // message that bans it), and the call-rate bucket of a trusted source
        // (max_new_per_sec_per_source > 0). Bug access-sweep in fuzz/README.md. Sources with
        // calls up (access[2]) are not part of it: that would be an accounting bug.
        let only_sweepable = access[2] == 0 && access != [0; 4];
        if common::check_known(!only_sweepable, "access-sweep", || {
            format!("rate-limit state left after 10 minutes: access_state_size() = {access:?}")
        }) {
            assert_eq!(access, [0; 4], "access state left after 10 minutes");
        }
        assert_eq!(self.ep.poll_timeout(), None, "a timer is still pending");
        let _ = self.ep.registered(self.now, "bob");
    }
}

fn splice(msg: &str, at: u16, cut: u8, bytes: &[u8]) -> Vec<u8> {
    let mut m = msg.as_bytes().to_vec();
    let at = usize::from(at) % (m.len() + 1);
    let end = (at + usize::from(cut)).min(m.len());
    m.splice(at..end, bytes.iter().copied());
    m
}

fuzz_target!(|data: &[u8]| {
    let Some(&first) = data.first() else { return };
    if first >= 0x20 || first == b'\r' || first == b'\n' {
        // One datagram, over UDP and over TCP; every call it starts is answered.
        let mut h = Harness::new(0b10, 0);
        let peers = h.peers;
        h.input(peers[0], data);
        h.now += Duration::from_millis(1);
        h.input(peers[2], data);
        for key in h.order.clone() {
            let _ = h.ep.answer(h.now, key, "127.0.0.1:30000".parse().unwrap());
            h.drain();
        }
        h.finish();
        return;
    }
    let mut cur = common::Cursor::new(&data[1..]);
    let access_byte = cur.u8();
    let mut h = Harness::new(first, access_byte);
    for _ in 0..128 {
        if cur.done() {
            break;
        }
        let op = cur.u8();
        let peer = h.peers[usize::from(op >> 3) % PEERS];
        match op & 7 {
            0 => {
                let len = usize::from(cur.u16()).min(8192);
                let bytes = cur.bytes(len).to_vec();
                h.input(peer, &bytes);
            }
            1 | 7 => {
                let (kind, sel, variant) = (cur.u8(), cur.u8(), cur.u8());
                let Some(m) = h.template(kind, sel, variant) else {
                    continue;
                };
                let bytes = if op & 7 == 7 {
                    let (at, cut, len) = (cur.u16(), cur.u8(), cur.u8());
                    let ins = cur.bytes(usize::from(len)).to_vec();
                    splice(&m, at, cut, &ins)
                } else {
                    m.into_bytes()
                };
                h.input(peer, &bytes);
            }
            2 => {
                let ms = u64::from(cur.u16()) * (u64::from(op >> 3) + 1);
                let target = h.now + Duration::from_millis(ms);
                h.advance_to(target);
            }
            3 => {
                let (action, sel, status) = (cur.u8(), cur.u8(), cur.u8());
                h.call_api(action, sel, status);
            }
            4 => {
                let (which, status) = (cur.u8(), cur.u8());
                h.bye_response(which, status);
            }
            5 => {
                if let Some((p, bytes)) = h.last.clone() {
                    let p = if op & 0x80 != 0 { peer } else { p };
                    h.input(p, &bytes);
                }
            }
            _ => {
                let variant = cur.u8();
                h.with_auth(peer, variant);
            }
        }
    }
    h.finish();
});
