//! Endpoint behaviour under simulated time: no sockets, no sleeping.

mod access;
mod flows;
mod robustness;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::message::{parse_message, Message, NameAddr, Request, Response};

pub(super) const CALLER: &str = "127.0.0.1:5061";
pub(super) const LOCAL: &str = "127.0.0.1:5070";

pub(super) const SIPP_SDP: &str =
    "v=0\r\no=sipp 53655765 2353687637 IN IP4 127.0.0.1\r\ns=SIPp\r\n\
c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 26000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n\
a=sendrecv\r\n";

/// Drives one endpoint with a clock the test advances.
pub(super) struct Sim {
    pub ep: Endpoint,
    pub start: Instant,
    pub now: Instant,
    pub peer: Peer,
    /// Our To-tag, learned from the first tagged response.
    pub to_tag: Option<String>,
}

/// Everything one step produced, with the time it was produced at.
#[derive(Debug, Default)]
pub(super) struct Out {
    pub sent: Vec<(Duration, Peer, Message)>,
    pub events: Vec<CallEvent>,
    pub rejected: Vec<String>,
    pub security: Vec<SecurityEvent>,
}

impl Out {
    pub fn responses(&self) -> Vec<&Response> {
        self.sent
            .iter()
            .filter_map(|(_, _, m)| match m {
                Message::Response(r) => Some(r),
                _ => None,
            })
            .collect()
    }
    pub fn statuses(&self) -> Vec<u16> {
        self.responses().iter().map(|r| r.status).collect()
    }
    pub fn requests(&self) -> Vec<&Request> {
        self.sent
            .iter()
            .filter_map(|(_, _, m)| match m {
                Message::Request(r) => Some(r),
                _ => None,
            })
            .collect()
    }
    pub fn last_response(&self) -> &Response {
        self.responses().last().copied().expect("a response")
    }
    pub fn incoming(&self) -> Vec<&IncomingCall> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CallEvent::Incoming(i) => Some(&**i),
                _ => None,
            })
            .collect()
    }
    pub fn ended(&self) -> Vec<EndReason> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CallEvent::Ended { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }
}

impl Sim {
    pub fn new() -> Sim {
        Sim::with_transport(Transport::Udp)
    }
    pub fn with_transport(transport: Transport) -> Sim {
        Sim::with_config(transport, |_| {})
    }
    pub fn with_config(transport: Transport, change: impl FnOnce(&mut EndpointConfig)) -> Sim {
        let mut cfg = EndpointConfig::new(LOCAL.parse().unwrap());
        change(&mut cfg);
        cfg.seed = 7;
        cfg.user_agent = "Hark/test".into();
        let start = Instant::now();
        Sim {
            ep: Endpoint::new(cfg),
            start,
            now: start,
            peer: Peer {
                transport,
                addr: CALLER.parse().unwrap(),
                conn: if transport == Transport::Udp { 0 } else { 9 },
            },
            to_tag: None,
        }
    }

    fn drain(&mut self, out: &mut Out) {
        while let Some(o) = self.ep.poll_output() {
            match o {
                Output::Transmit { to, bytes } => {
                    let m = parse_message(&bytes).expect("we send parseable messages");
                    if let Message::Response(r) = &m {
                        if self.to_tag.is_none() && r.status > 100 {
                            self.to_tag = r
                                .headers
                                .get("To")
                                .and_then(|t| NameAddr::parse(t).ok()?.tag);
                        }
                    }
                    out.sent.push((self.now - self.start, to, m));
                }
                Output::Event(e) => out.events.push(e),
                Output::Rejected { reason, .. } => out.rejected.push(reason),
                Output::Security(e) => out.security.push(e),
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) -> Out {
        self.ep.handle_input(self.now, self.peer, bytes);
        let mut out = Out::default();
        self.drain(&mut out);
        out
    }

    pub fn send_str(&mut self, text: &str) -> Out {
        self.send(text.as_bytes())
    }

    /// Runs every timer up to `secs` after start, at its exact deadline.
    pub fn advance_to(&mut self, secs: f64) -> Out {
        let target = self.start + Duration::from_secs_f64(secs);
        let mut out = Out::default();
        while let Some(at) = self.ep.poll_timeout() {
            if at > target {
                break;
            }
            self.now = self.now.max(at);
            self.ep.handle_timeout(self.now);
            self.drain(&mut out);
        }
        self.now = self.now.max(target);
        out
    }

    pub fn call_op(&mut self, f: impl FnOnce(&mut Endpoint, Instant)) -> Out {
        f(&mut self.ep, self.now);
        let mut out = Out::default();
        self.drain(&mut out);
        out
    }

    pub fn tag(&self) -> &str {
        self.to_tag.as_deref().expect("our To-tag is known")
    }

    /// INVITE, 100 + Incoming, 180, 200, ACK: returns the call in the confirmed state.
    pub fn confirmed_call(&mut self) -> CallKey {
        let out = self.send_str(&invite("z9hG4bK-inv", SIPP_SDP));
        let call = out.incoming()[0].call;
        self.call_op(|ep, now| ep.ring(now, call).unwrap());
        self.call_op(|ep, now| {
            ep.answer(now, call, "127.0.0.1:30000".parse().unwrap())
                .unwrap()
        });
        let ack = self.send_str(&ack("z9hG4bK-ack", self.tag(), 1));
        assert!(matches!(ack.events[..], [CallEvent::Confirmed { call: c }] if c == call));
        call
    }
}

pub(super) fn with_length(head: &str, body: &str) -> String {
    format!("{head}Content-Length: {}\r\n\r\n{body}", body.len())
}

pub(super) fn invite_with(
    branch: &str,
    call_id: &str,
    cseq: u32,
    to_tag: Option<&str>,
    sdp: &str,
) -> String {
    let to = match to_tag {
        Some(t) => format!("<sip:rec@127.0.0.1:5070>;tag={t}"),
        None => "<sip:rec@127.0.0.1:5070>".into(),
    };
    let ct = if sdp.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    with_length(
        &format!(
            "INVITE sip:rec@127.0.0.1:5070 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5061;branch={branch}\r\n\
             From: \"SIPp\" <sip:sipp@127.0.0.1:5061>;tag=1SIPpTag001\r\n\
             To: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\n\
             Contact: <sip:sipp@127.0.0.1:5061;transport=UDP>\r\nMax-Forwards: 70\r\n\
             User-Agent: SIPp record-test\r\n{ct}"
        ),
        sdp,
    )
}

pub(super) fn invite(branch: &str, sdp: &str) -> String {
    invite_with(branch, "1-42@127.0.0.1", 1, None, sdp)
}

/// An in-dialog request from the caller (ACK, BYE, INFO, OPTIONS...).
pub(super) fn in_dialog(
    method: &str,
    branch: &str,
    to_tag: &str,
    cseq: u32,
    extra: &str,
    body: &str,
) -> String {
    with_length(
        &format!(
            "{method} sip:sipp@127.0.0.1:5061 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5061;branch={branch}\r\n\
             From: \"SIPp\" <sip:sipp@127.0.0.1:5061>;tag=1SIPpTag001\r\n\
             To: <sip:rec@127.0.0.1:5070>;tag={to_tag}\r\nCall-ID: 1-42@127.0.0.1\r\n\
             CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{extra}"
        ),
        body,
    )
}

pub(super) fn ack(branch: &str, to_tag: &str, cseq: u32) -> String {
    in_dialog("ACK", branch, to_tag, cseq, "", "")
}

pub(super) fn bye(branch: &str, to_tag: &str, cseq: u32) -> String {
    in_dialog("BYE", branch, to_tag, cseq, "", "")
}

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}
