//! A small sans-IO user-agent client: one outgoing call (INVITE, ACK, INFO, BYE) with UDP
//! retransmissions. Used by `hark call` and by tests that need a caller without SIPp.
//!
//! Like [`crate::Endpoint`] it never reads a clock or a socket: feed [`Uac::handle_input`] and
//! [`Uac::handle_timeout`], drain [`Uac::poll_output`], sleep until [`Uac::poll_timeout`].
//! Only UDP is supported (retransmissions always run).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::message::{
    parse_message, reason_phrase, uri_host_port, Message, Method, NameAddr, Request, Response, Via,
};
use crate::sdp::{self, Negotiated};

#[derive(Debug, Clone)]
pub struct UacConfig {
    /// Our SIP address: Via sent-by, Contact and From host.
    pub local_sip: SocketAddr,
    /// Where the INVITE is sent (the target URI's host resolved by the driver, or a proxy).
    pub remote_sip: SocketAddr,
    /// Request-URI and To of the INVITE, e.g. `sip:record@127.0.0.1:5060`.
    pub target_uri: String,
    pub from_user: String,
    pub user_agent: String,
    /// Seeds the Call-ID, tag and branches.
    pub seed: u64,
    pub t1: Duration,
    pub t2: Duration,
    /// Our media address: with it a re-INVITE (hold, a new address) is answered 200 with our
    /// SDP and reported as [`UacEvent::MediaChanged`]; without it, 488.
    pub local_rtp: Option<SocketAddr>,
}

impl UacConfig {
    pub fn new(
        local_sip: SocketAddr,
        remote_sip: SocketAddr,
        target_uri: impl Into<String>,
    ) -> Self {
        Self {
            local_sip,
            remote_sip,
            target_uri: target_uri.into(),
            from_user: "hark".to_string(),
            user_agent: concat!("Hark/", env!("CARGO_PKG_VERSION"), " (hark call)").to_string(),
            seed: 0,
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            local_rtp: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UacOutput {
    Transmit { to: SocketAddr, bytes: Vec<u8> },
    Event(UacEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UacEndReason {
    /// Our BYE got a final response or timed out (Timer F).
    LocalBye,
    /// The server sent BYE (answered 200 already).
    RemoteBye,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UacEvent {
    /// A 1xx to the INVITE.
    Provisional { status: u16, reason: String },
    /// A 2xx with a usable SDP answer; the ACK has been sent.
    Answered { status: u16, media: Negotiated },
    /// A 2xx whose SDP answer is missing or unusable; ACK and BYE have been sent, `Ended`
    /// follows.
    UnusableAnswer { status: u16, error: String },
    /// A final non-2xx (ACKed), or 408 when Timer B fired. Nothing more follows.
    Failed { status: u16, reason: String },
    /// The final response to one of our INFOs (408 when Timer F fired).
    InfoAnswered { digit: char, status: u16 },
    /// The dialog is over; nothing more follows.
    Ended { reason: UacEndReason },
    /// Input that was malformed or matched nothing (for the log).
    Ignored { reason: String },
    /// A key by SIP INFO in the dialog (answered 200).
    Dtmf { digit: char, duration_ms: u32 },
    /// A re-INVITE was answered 200 with our SDP: the far end's media is now this.
    MediaChanged(Negotiated),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UacState {
    /// INVITE sent, no response yet (Timer A/B running).
    Calling,
    /// A 1xx arrived.
    Proceeding,
    /// 2xx arrived and was ACKed.
    Confirmed,
    /// Failed or ended.
    Terminated,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UacError {
    #[error("call is in the wrong state for {0}")]
    WrongState(&'static str),
    #[error("DTMF digit {0:?} is not one of 0-9 * # A-D")]
    BadDigit(char),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxKind {
    Info(char),
    Bye,
    Cancel,
}

/// A non-INVITE client transaction (RFC 3261 §17.1.2).
#[derive(Debug)]
struct NonInviteTx {
    kind: TxKind,
    branch: String,
    to: SocketAddr,
    bytes: Vec<u8>,
    /// Timer E.
    next: Instant,
    interval: Duration,
    /// Timer F.
    deadline: Instant,
}

#[derive(Debug)]
struct Dialog {
    /// The To header of the 2xx (remote URI and tag), used verbatim in-dialog.
    to_header: String,
    remote_tag: Option<String>,
    /// Remote Contact URI: the Request-URI of in-dialog requests.
    remote_target: String,
    /// Record-Route reversed (loose routing only).
    route_set: Vec<String>,
    next_hop: SocketAddr,
    ack: Vec<u8>,
}

pub struct Uac {
    config: UacConfig,
    rng: u64,
    call_id: String,
    local_tag: String,
    invite_branch: String,
    invite_bytes: Vec<u8>,
    /// Timer A; `None` once a response arrived.
    invite_next: Option<Instant>,
    invite_interval: Duration,
    /// Timer B, or 64*T1 after CANCEL.
    invite_deadline: Option<Instant>,
    /// ACK for a non-2xx final, re-sent when that final is retransmitted.
    failure_ack: Option<Vec<u8>>,
    state: UacState,
    dialog: Option<Dialog>,
    cseq: u32,
    txs: Vec<NonInviteTx>,
    cancel_wanted: bool,
    bye_sent: bool,
    ended: bool,
    out: VecDeque<UacOutput>,
    /// The offer, kept for an INVITE re-sent with credentials.
    offer: String,
    /// CSeq of the current INVITE (2 after a digest challenge).
    invite_cseq: u32,
    /// Digest credentials for a 401/407; used once per call.
    credentials: Option<(String, String)>,
    authenticated: bool,
    /// `o=` version of the SDP we answer re-INVITEs with.
    sdp_version: u64,
}

impl Uac {
    /// Sends the INVITE carrying `sdp_offer` at once (see [`Uac::poll_output`]).
    pub fn invite(now: Instant, config: UacConfig, sdp_offer: String) -> Uac {
        let mut rng = config.seed ^ 0x4841_524b_5541_4301;
        let call_id = format!("{:016x}@{}", splitmix(&mut rng), config.local_sip.ip());
        let local_tag = format!("{:08x}", splitmix(&mut rng) as u32);
        let invite_branch = new_branch(&mut rng);
        let mut uac = Uac {
            rng,
            call_id,
            local_tag,
            invite_branch,
            invite_bytes: Vec::new(),
            invite_next: Some(now + config.t1),
            invite_interval: config.t1,
            invite_deadline: Some(now + config.t1 * 64),
            failure_ack: None,
            state: UacState::Calling,
            dialog: None,
            cseq: 1,
            txs: Vec::new(),
            cancel_wanted: false,
            bye_sent: false,
            ended: false,
            out: VecDeque::new(),
            config,
            offer: sdp_offer,
            invite_cseq: 1,
            credentials: None,
            authenticated: false,
            sdp_version: 1,
        };
        uac.send_invite(None);
        uac
    }

    /// Digest credentials: a 401 or 407 to the INVITE is answered once with them (RFC 3261
    /// §22.2, RFC 8760 SHA-256 or MD5).
    pub fn set_credentials(&mut self, username: &str, password: &str) {
        self.credentials = Some((username.to_string(), password.to_string()));
    }

    fn send_invite(&mut self, authorization: Option<(&'static str, String)>) {
        let to = format!("<{}>", self.config.target_uri);
        let mut req = self.request(
            Method::Invite,
            self.config.target_uri.clone(),
            &self.invite_branch,
            self.invite_cseq,
            &to,
        );
        req.headers.push("Contact", self.contact());
        req.headers
            .push("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO");
        if let Some((name, value)) = authorization {
            req.headers.push(name, value);
        }
        req.headers.push("Content-Type", "application/sdp");
        req.body = self.offer.clone().into_bytes();
        self.invite_bytes = req.to_bytes();
        self.transmit(self.config.remote_sip, self.invite_bytes.clone());
    }

    /// A 401/407 to the INVITE (already ACKed): the INVITE again with credentials, new branch
    /// and CSeq. `false` when there are none or they were refused already.
    fn retry_with_credentials(&mut self, now: Instant, resp: &Response) -> bool {
        if self.authenticated || self.cancel_wanted {
            return false;
        }
        let Some((user, password)) = self.credentials.clone() else {
            return false;
        };
        let (challenge_header, answer_header) = if resp.status == 407 {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let cnonce = format!("{:016x}", splitmix(&mut self.rng));
        let Some(value) = resp
            .headers
            .get_all(challenge_header)
            .into_iter()
            .find_map(|c| {
                crate::registrar::digest_authorization(
                    c,
                    "INVITE",
                    &self.config.target_uri,
                    &user,
                    &password,
                    &cnonce,
                )
            })
        else {
            return false;
        };
        self.authenticated = true;
        self.invite_cseq += 1;
        self.cseq = self.invite_cseq;
        self.invite_branch = new_branch(&mut self.rng);
        self.failure_ack = None;
        self.state = UacState::Calling;
        self.invite_next = Some(now + self.config.t1);
        self.invite_interval = self.config.t1;
        self.invite_deadline = Some(now + self.config.t1 * 64);
        self.send_invite(Some((answer_header, value)));
        true
    }

    pub fn state(&self) -> UacState {
        self.state
    }
    pub fn call_id(&self) -> &str {
        &self.call_id
    }
    /// True once `Failed` or `Ended` has been emitted.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn poll_output(&mut self) -> Option<UacOutput> {
        self.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let tx_times = self.txs.iter().flat_map(|t| [t.next, t.deadline]);
        [self.invite_next, self.invite_deadline]
            .into_iter()
            .flatten()
            .chain(tx_times)
            .min()
    }

    /// DTMF by SIP INFO (`application/dtmf-relay`, as SIPp and linphone send it).
    pub fn info_dtmf(
        &mut self,
        now: Instant,
        digit: char,
        duration_ms: u32,
    ) -> Result<(), UacError> {
        if !matches!(digit, '0'..='9' | '*' | '#' | 'A'..='D') {
            return Err(UacError::BadDigit(digit));
        }
        if self.state != UacState::Confirmed || self.bye_sent {
            return Err(UacError::WrongState("INFO"));
        }
        let body = format!("Signal={digit}\r\nDuration={duration_ms}\r\n");
        self.in_dialog(
            now,
            Method::Info,
            TxKind::Info(digit),
            Some(("application/dtmf-relay", body)),
        );
        Ok(())
    }

    /// BYE for an answered call; `Ended { LocalBye }` follows its final response.
    pub fn bye(&mut self, now: Instant) -> Result<(), UacError> {
        if self.state != UacState::Confirmed || self.bye_sent {
            return Err(UacError::WrongState("BYE"));
        }
        self.bye_sent = true;
        self.in_dialog(now, Method::Bye, TxKind::Bye, None);
        Ok(())
    }

    /// CANCEL before answer; it is held until a 1xx arrives (RFC 3261 §9.1).
    pub fn cancel(&mut self, now: Instant) -> Result<(), UacError> {
        if !matches!(self.state, UacState::Calling | UacState::Proceeding) || self.cancel_wanted {
            return Err(UacError::WrongState("CANCEL"));
        }
        self.cancel_wanted = true;
        if self.state == UacState::Proceeding {
            self.send_cancel(now);
        }
        Ok(())
    }

    /// BYE when answered, CANCEL before, nothing after the end.
    pub fn hangup(&mut self, now: Instant) {
        match self.state {
            UacState::Calling | UacState::Proceeding => {
                let _ = self.cancel(now);
            }
            UacState::Confirmed => {
                let _ = self.bye(now);
            }
            UacState::Terminated => {}
        }
    }

    /// One UDP datagram from `from`.
    pub fn handle_input(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        match parse_message(bytes) {
            Ok(Message::Response(resp)) => self.on_response(now, resp),
            Ok(Message::Request(req)) => self.on_request(from, req),
            Err(e) => self.ignored(format!("unparsable message from {from}: {e}")),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.invite_deadline.is_some_and(|d| d <= now) {
            self.invite_next = None;
            self.invite_deadline = None;
            if matches!(self.state, UacState::Calling | UacState::Proceeding) {
                self.terminate();
                self.event(UacEvent::Failed {
                    status: 408,
                    reason: "Request Timeout (no final response)".into(),
                });
            }
        }
        if let Some(next) = self.invite_next.filter(|n| *n <= now) {
            // Timer A doubles without the T2 cap (RFC 3261 §17.1.1.2); scheduled from the
            // previous deadline so late wake-ups do not stretch the series.
            self.invite_interval *= 2;
            self.invite_next = Some(next + self.invite_interval);
            self.transmit(self.config.remote_sip, self.invite_bytes.clone());
        }
        let mut i = 0;
        while let Some(tx) = self.txs.get_mut(i) {
            if tx.deadline <= now {
                let tx = self.txs.remove(i);
                self.tx_done(tx.kind, 408);
                continue;
            }
            if tx.next <= now {
                tx.interval = (tx.interval * 2).min(self.config.t2);
                tx.next += tx.interval;
                let (to, bytes) = (tx.to, tx.bytes.clone());
                self.transmit(to, bytes);
            }
            i += 1;
        }
    }

    fn on_response(&mut self, now: Instant, resp: Response) {
        let h = &resp.headers;
        if h.get("Call-ID").map(str::trim) != Some(self.call_id.as_str()) {
            return self.ignored(format!("response {} for another Call-ID", resp.status));
        }
        let branch = h
            .get_all("Via")
            .first()
            .and_then(|v| Via::parse(v).ok())
            .and_then(|v| v.branch().map(str::to_string));
        let method = h
            .get("CSeq")
            .and_then(|c| c.split_whitespace().nth(1))
            .map(Method::parse);
        let Some(branch) = branch else {
            return self.ignored(format!("response {} without a Via branch", resp.status));
        };
        if method == Some(Method::Invite) && branch == self.invite_branch {
            return self.on_invite_response(now, resp);
        }
        let Some(pos) = self.txs.iter().position(|t| t.branch == branch) else {
            return self.ignored(format!("response {} matches no transaction", resp.status));
        };
        if resp.status < 200 {
            if let Some(tx) = self.txs.get_mut(pos) {
                // Proceeding: retransmit at T2 (RFC 3261 §17.1.2.2).
                tx.interval = self.config.t2;
                tx.next = now + self.config.t2;
            }
            return;
        }
        let tx = self.txs.remove(pos);
        self.tx_done(tx.kind, resp.status);
    }

    fn on_invite_response(&mut self, now: Instant, resp: Response) {
        let status = resp.status;
        let early = matches!(self.state, UacState::Calling | UacState::Proceeding);
        if status < 200 {
            if early {
                self.state = UacState::Proceeding;
                self.invite_next = None;
                if !self.cancel_wanted {
                    self.invite_deadline = None;
                }
                self.event(UacEvent::Provisional {
                    status,
                    reason: resp.reason.clone(),
                });
                if self.cancel_wanted && !self.txs.iter().any(|t| t.kind == TxKind::Cancel) {
                    self.send_cancel(now);
                }
            }
            return;
        }
        let to_header = resp
            .headers
            .get("To")
            .unwrap_or_default()
            .trim()
            .to_string();
        if status >= 300 {
            // Each retransmission of the final response gets the ACK again (§17.1.1.2).
            if early {
                self.failure_ack = Some(self.failure_ack_bytes(&to_header));
            }
            if let Some(ack) = self.failure_ack.clone() {
                self.transmit(self.config.remote_sip, ack);
            }
            if early && matches!(status, 401 | 407) && self.retry_with_credentials(now, &resp) {
                return;
            }
            if early {
                self.terminate();
                self.event(UacEvent::Failed {
                    status,
                    reason: resp.reason.clone(),
                });
            }
            return;
        }
        if !early {
            let remote_tag = NameAddr::parse(&to_header).ok().and_then(|n| n.tag);
            match &self.dialog {
                Some(d) if d.remote_tag == remote_tag => {
                    let (to, ack) = (d.next_hop, d.ack.clone());
                    self.transmit(to, ack);
                }
                _ => self.ignored(format!("2xx with To {to_header:?} for no dialog of ours")),
            }
            return;
        }
        self.establish(&resp, to_header);
        self.invite_next = None;
        self.invite_deadline = None;
        self.state = UacState::Confirmed;
        let media = if resp.body.is_empty() {
            Err("2xx has no SDP answer".to_string())
        } else {
            sdp::parse_offer(&resp.body)
                .and_then(|a| sdp::negotiate(&a))
                .map_err(|e| format!("SDP answer: {e}"))
        };
        match media {
            Ok(media) => self.event(UacEvent::Answered { status, media }),
            Err(error) => {
                self.event(UacEvent::UnusableAnswer { status, error });
                let _ = self.bye(now);
            }
        }
        if self.cancel_wanted {
            // The 2xx crossed our CANCEL: the call exists now, end it properly.
            let _ = self.bye(now);
        }
    }

    /// Builds the dialog from a 2xx and sends the ACK (new branch, RFC 3261 §13.2.2.4).
    fn establish(&mut self, resp: &Response, to_header: String) {
        let h = &resp.headers;
        let remote_tag = NameAddr::parse(&to_header).ok().and_then(|n| n.tag);
        let remote_target = h
            .get_all("Contact")
            .first()
            .and_then(|c| NameAddr::parse(c).ok())
            .map(|n| n.uri)
            .unwrap_or_else(|| self.config.target_uri.clone());
        let route_set: Vec<String> = h
            .get_all("Record-Route")
            .into_iter()
            .rev()
            .map(str::to_string)
            .collect();
        let next_hop = route_set
            .first()
            .and_then(|r| NameAddr::parse(r).ok())
            .and_then(|n| socket_addr_of(&n.uri))
            .or_else(|| socket_addr_of(&remote_target))
            .unwrap_or(self.config.remote_sip);
        let mut dialog = Dialog {
            to_header,
            remote_tag,
            remote_target,
            route_set,
            next_hop,
            ack: Vec::new(),
        };
        let branch = new_branch(&mut self.rng);
        let ack = self
            .dialog_request(&dialog, Method::Ack, &branch, self.invite_cseq)
            .to_bytes();
        dialog.ack = ack.clone();
        self.dialog = Some(dialog);
        self.transmit(next_hop, ack);
    }

    fn on_request(&mut self, from: SocketAddr, req: Request) {
        if req.method == Method::Ack {
            return;
        }
        let ours = req.headers.get("Call-ID").map(str::trim) == Some(self.call_id.as_str());
        let in_dialog = ours && self.dialog.is_some();
        // A re-INVITE we can answer: its offer negotiated against what we support.
        let reoffer = match (&req.method, self.config.local_rtp, in_dialog && !self.ended) {
            (Method::Invite, Some(local), true) => sdp::parse_offer(&req.body)
                .and_then(|o| sdp::negotiate(&o))
                .ok()
                .map(|neg| (neg, local)),
            _ => None,
        };
        let status = match &req.method {
            _ if !in_dialog => 481,
            Method::Bye | Method::Info | Method::Options => 200,
            Method::Invite if reoffer.is_some() => 200,
            Method::Invite => 488,
            Method::Cancel => 481,
            _ => 405,
        };
        let mut resp = Response::new(status, reason_phrase(status));
        for via in req.headers.get_all("Via") {
            resp.headers.push("Via", via);
        }
        for name in ["From", "To", "Call-ID", "CSeq"] {
            if let Some(v) = req.headers.get(name) {
                let v = v.trim();
                if name == "To" && !v.to_ascii_lowercase().contains("tag=") {
                    resp.headers
                        .push(name, format!("{v};tag={}", self.local_tag));
                } else {
                    resp.headers.push(name, v);
                }
            }
        }
        if status == 405 {
            resp.headers
                .push("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO");
        }
        resp.headers
            .push("User-Agent", self.config.user_agent.as_str());
        if let (200, Some((neg, local))) = (status, reoffer) {
            self.sdp_version += 1;
            resp.headers.push("Contact", self.contact());
            resp.headers.push("Content-Type", "application/sdp");
            resp.body = sdp::build_answer(&neg, local, self.config.seed >> 16, self.sdp_version)
                .into_bytes();
            self.transmit(from, resp.to_bytes());
            self.event(UacEvent::MediaChanged(neg));
            return;
        }
        self.transmit(from, resp.to_bytes());
        if req.method == Method::Info && in_dialog {
            let kind = req
                .headers
                .get("Content-Type")
                .and_then(|c| c.split(';').next())
                .map(|c| c.trim().to_ascii_lowercase());
            let dtmf = match kind.as_deref() {
                Some("application/dtmf-relay") => {
                    crate::endpoint::dtmf::parse_dtmf_relay(&req.body)
                }
                Some("application/dtmf") => crate::endpoint::dtmf::parse_dtmf(&req.body),
                _ => None,
            };
            if let Some((digit, duration_ms)) = dtmf {
                self.event(UacEvent::Dtmf { digit, duration_ms });
            }
        }
        if req.method == Method::Bye && in_dialog && !self.ended {
            self.terminate();
            self.event(UacEvent::Ended {
                reason: UacEndReason::RemoteBye,
            });
        }
    }

    fn tx_done(&mut self, kind: TxKind, status: u16) {
        match kind {
            TxKind::Info(digit) => self.event(UacEvent::InfoAnswered { digit, status }),
            TxKind::Bye if !self.ended => {
                self.terminate();
                self.event(UacEvent::Ended {
                    reason: UacEndReason::LocalBye,
                });
            }
            TxKind::Bye | TxKind::Cancel => {}
        }
    }

    fn send_cancel(&mut self, now: Instant) {
        // Same branch, Request-URI, Call-ID, From and To as the INVITE (§9.1).
        let to = format!("<{}>", self.config.target_uri);
        let req = self.request(
            Method::Cancel,
            self.config.target_uri.clone(),
            &self.invite_branch,
            self.invite_cseq,
            &to,
        );
        let branch = self.invite_branch.clone();
        self.start_tx(
            now,
            TxKind::Cancel,
            branch,
            self.config.remote_sip,
            req.to_bytes(),
        );
        // Give up on the INVITE if no final response comes (§9.1: 64*T1 after CANCEL).
        self.invite_deadline = Some(now + self.config.t1 * 64);
    }

    fn in_dialog(
        &mut self,
        now: Instant,
        method: Method,
        kind: TxKind,
        body: Option<(&str, String)>,
    ) {
        if self.dialog.is_none() {
            return;
        }
        self.cseq += 1;
        let branch = new_branch(&mut self.rng);
        let Some(dialog) = &self.dialog else { return };
        let mut req = self.dialog_request(dialog, method, &branch, self.cseq);
        if let Some((content_type, body)) = body {
            req.headers.push("Content-Type", content_type);
            req.body = body.into_bytes();
        }
        let to = dialog.next_hop;
        self.start_tx(now, kind, branch, to, req.to_bytes());
    }

    fn start_tx(
        &mut self,
        now: Instant,
        kind: TxKind,
        branch: String,
        to: SocketAddr,
        bytes: Vec<u8>,
    ) {
        let t1 = self.config.t1;
        self.transmit(to, bytes.clone());
        self.txs.push(NonInviteTx {
            kind,
            branch,
            to,
            bytes,
            next: now + t1,
            interval: t1,
            deadline: now + t1 * 64,
        });
    }

    fn dialog_request(&self, dialog: &Dialog, method: Method, branch: &str, cseq: u32) -> Request {
        let mut req = self.request(
            method,
            dialog.remote_target.clone(),
            branch,
            cseq,
            &dialog.to_header,
        );
        for route in &dialog.route_set {
            req.headers.push("Route", route.as_str());
        }
        req
    }

    fn request(&self, method: Method, uri: String, branch: &str, cseq: u32, to: &str) -> Request {
        let c = &self.config;
        let mut req = Request::new(method.clone(), uri);
        let h = &mut req.headers;
        h.push(
            "Via",
            format!("SIP/2.0/UDP {};branch={branch};rport", c.local_sip),
        );
        h.push("Max-Forwards", "70");
        h.push(
            "From",
            format!(
                "<sip:{}@{}>;tag={}",
                c.from_user, c.local_sip, self.local_tag
            ),
        );
        h.push("To", to);
        h.push("Call-ID", self.call_id.as_str());
        h.push("CSeq", format!("{cseq} {method}"));
        if !matches!(method, Method::Ack | Method::Cancel) {
            h.push("User-Agent", c.user_agent.as_str());
        }
        req
    }

    fn contact(&self) -> String {
        format!("<sip:{}@{}>", self.config.from_user, self.config.local_sip)
    }

    /// ACK for a non-2xx: part of the INVITE transaction, so the INVITE's branch (§17.1.1.3).
    fn failure_ack_bytes(&self, to_header: &str) -> Vec<u8> {
        let uri = self.config.target_uri.clone();
        self.request(
            Method::Ack,
            uri,
            &self.invite_branch,
            self.invite_cseq,
            to_header,
        )
        .to_bytes()
    }

    fn terminate(&mut self) {
        self.state = UacState::Terminated;
        self.ended = true;
        self.invite_next = None;
        self.invite_deadline = None;
        // Outstanding INFOs are moot; a BYE still in flight may finish on its own.
        self.txs.retain(|t| t.kind == TxKind::Bye);
    }

    fn transmit(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        self.out.push_back(UacOutput::Transmit { to, bytes });
    }
    fn event(&mut self, event: UacEvent) {
        self.out.push_back(UacOutput::Event(event));
    }
    fn ignored(&mut self, reason: String) {
        self.event(UacEvent::Ignored { reason });
    }
}

/// `host:port` of a SIP URI when the host is an IP literal (default port 5060).
fn socket_addr_of(uri: &str) -> Option<SocketAddr> {
    let (host, port) = uri_host_port(uri)?;
    let ip: IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, port.unwrap_or(5060)))
}

fn new_branch(rng: &mut u64) -> String {
    format!("z9hG4bK{:016x}", splitmix(rng))
}

/// SplitMix64: deterministic ids from the seed, no clock and no OS randomness.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::{AudioCodec, Direction};

    const SERVER: &str = "127.0.0.1:5060";
    const ANSWER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-16\r\n";

    fn server() -> SocketAddr {
        SERVER.parse().unwrap()
    }

    fn start(t0: Instant) -> (Uac, Request) {
        let mut config = UacConfig::new(
            "127.0.0.1:5062".parse().unwrap(),
            server(),
            "sip:record@127.0.0.1:5060",
        );
        config.seed = 7;
        let mut uac = Uac::invite(t0, config, "v=0\r\n".to_string());
        let (tx, ev) = drain(&mut uac);
        assert!(ev.is_empty());
        assert_eq!(tx.len(), 1);
        assert_eq!(tx[0].0, server());
        (uac, req_of(&tx[0].1))
    }

    fn drain(uac: &mut Uac) -> (Vec<(SocketAddr, Vec<u8>)>, Vec<UacEvent>) {
        let (mut tx, mut ev) = (Vec::new(), Vec::new());
        while let Some(o) = uac.poll_output() {
            match o {
                UacOutput::Transmit { to, bytes } => tx.push((to, bytes)),
                UacOutput::Event(e) => ev.push(e),
            }
        }
        (tx, ev)
    }

    fn req_of(bytes: &[u8]) -> Request {
        match parse_message(bytes) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    fn resp_of(bytes: &[u8]) -> Response {
        match parse_message(bytes) {
            Ok(Message::Response(r)) => r,
            other => panic!("not a response: {other:?}"),
        }
    }

    fn branch(req: &Request) -> String {
        Via::parse(req.headers.get("Via").unwrap())
            .unwrap()
            .branch()
            .unwrap()
            .to_string()
    }

    /// A server response to `req`: its Via/From/Call-ID/CSeq, To with tag `srv1` (not on 100).
    fn reply(req: &Request, status: u16, extra: &str, body: &str) -> Vec<u8> {
        let h = &req.headers;
        let mut to = h.get("To").unwrap().to_string();
        if status != 100 && !to.contains("tag=") {
            to.push_str(";tag=srv1");
        }
        format!(
            "SIP/2.0 {status} {}\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            reason_phrase(status),
            h.get("Via").unwrap(),
            h.get("From").unwrap(),
            h.get("Call-ID").unwrap(),
            h.get("CSeq").unwrap(),
            body.len()
        )
        .into_bytes()
    }

    const CONTACT: &str = "Contact: <sip:hark@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\n";

    /// INVITE answered with 200 + SDP; returns the uac, the INVITE and the ACK.
    fn answered(t0: Instant) -> (Uac, Request, Request) {
        let (mut uac, invite) = start(t0);
        uac.handle_input(t0, server(), &reply(&invite, 200, CONTACT, ANSWER));
        let (tx, ev) = drain(&mut uac);
        assert_eq!(tx.len(), 1);
        assert_eq!(ev.len(), 1);
        (uac, invite, req_of(&tx[0].1))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn invite_carries_rfc3261_mandatory_headers_and_the_offer() {
        let (uac, invite) = start(Instant::now());
        let h = &invite.headers;
        assert_eq!(invite.method, Method::Invite);
        assert_eq!(invite.uri, "sip:record@127.0.0.1:5060");
        let via = Via::parse(h.get("Via").unwrap()).unwrap();
        assert_eq!(via.transport, "UDP");
        assert_eq!(via.sent_by, "127.0.0.1:5062");
        assert!(via.branch().unwrap().starts_with("z9hG4bK"));
        assert!(via.has_rport());
        assert_eq!(h.get("Max-Forwards"), Some("70"));
        assert_eq!(h.get("CSeq"), Some("1 INVITE"));
        assert_eq!(h.get("Call-ID"), Some(uac.call_id()));
        assert_eq!(h.get("To"), Some("<sip:record@127.0.0.1:5060>"));
        assert!(NameAddr::parse(h.get("From").unwrap())
            .unwrap()
            .tag
            .is_some());
        assert_eq!(h.get("Contact"), Some("<sip:hark@127.0.0.1:5062>"));
        assert_eq!(h.get("Content-Type"), Some("application/sdp"));
        assert!(h.get("User-Agent").unwrap().starts_with("Hark/"));
        assert_eq!(invite.body, b"v=0\r\n");
        assert_eq!(uac.state(), UacState::Calling);
    }

    #[test]
    fn timer_a_doubles_until_a_provisional_stops_it() {
        let t0 = Instant::now();
        let (mut uac, invite) = start(t0);
        assert_eq!(uac.poll_timeout(), Some(t0 + ms(500)));
        uac.handle_timeout(t0 + ms(500));
        let (tx, _) = drain(&mut uac);
        assert_eq!(tx.len(), 1);
        assert_eq!(req_of(&tx[0].1), invite);
        assert_eq!(uac.poll_timeout(), Some(t0 + ms(1500)));
        uac.handle_timeout(t0 + ms(1500));
        assert_eq!(drain(&mut uac).0.len(), 1);
        assert_eq!(uac.poll_timeout(), Some(t0 + ms(3500)));

        uac.handle_input(t0 + ms(2000), server(), &reply(&invite, 100, "", ""));
        let (tx, ev) = drain(&mut uac);
        assert!(tx.is_empty());
        assert_eq!(
            ev,
            vec![UacEvent::Provisional {
                status: 100,
                reason: "Trying".into()
            }]
        );
        assert_eq!(uac.state(), UacState::Proceeding);
        // Proceeding: no Timer A and no Timer B (RFC 3261 §17.1.1.2).
        assert_eq!(uac.poll_timeout(), None);
        uac.handle_timeout(t0 + Duration::from_secs(60));
        assert_eq!(drain(&mut uac), (vec![], vec![]));
    }

    #[test]
    fn timer_b_fails_with_408_after_64_t1_and_six_retransmissions() {
        let t0 = Instant::now();
        let (mut uac, _) = start(t0);
        let mut sent = Vec::new();
        let mut events = Vec::new();
        while let Some(t) = uac.poll_timeout() {
            uac.handle_timeout(t);
            let (tx, ev) = drain(&mut uac);
            sent.extend(tx.iter().map(|_| t - t0));
            events.extend(ev);
        }
        let expect: Vec<Duration> = [500, 1500, 3500, 7500, 15500, 31500]
            .into_iter()
            .map(ms)
            .collect();
        assert_eq!(sent, expect);
        assert_eq!(
            events,
            vec![UacEvent::Failed {
                status: 408,
                reason: "Request Timeout (no final response)".into()
            }]
        );
        assert!(uac.is_ended());
    }

    #[test]
    fn answer_2xx_is_acked_to_contact_with_new_branch_and_reports_media() {
        let t0 = Instant::now();
        let (mut uac, invite) = start(t0);
        uac.handle_input(t0, server(), &reply(&invite, 180, "", ""));
        drain(&mut uac);
        uac.handle_input(t0, server(), &reply(&invite, 200, CONTACT, ANSWER));
        let (tx, ev) = drain(&mut uac);
        assert_eq!(tx.len(), 1);
        assert_eq!(tx[0].0, "127.0.0.1:5070".parse::<SocketAddr>().unwrap());
        let ack = req_of(&tx[0].1);
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri, "sip:hark@127.0.0.1:5070");
        assert_eq!(ack.headers.get("CSeq"), Some("1 ACK"));
        assert_ne!(branch(&ack), branch(&invite));
        assert!(branch(&ack).starts_with("z9hG4bK"));
        assert_eq!(
            ack.headers.get("To"),
            Some("<sip:record@127.0.0.1:5060>;tag=srv1")
        );
        assert_eq!(ack.headers.get("From"), invite.headers.get("From"));
        let media = Negotiated {
            codec: AudioCodec::Pcma,
            codec_pt: 8,
            telephone_event_pt: Some(101),
            telephone_event_clock: 8000,
            remote_rtp: "127.0.0.1:40000".parse().unwrap(),
            remote_direction: Direction::SendRecv,
            srtp: None,
        };
        assert_eq!(ev, vec![UacEvent::Answered { status: 200, media }]);
        assert_eq!(uac.state(), UacState::Confirmed);
        assert_eq!(uac.poll_timeout(), None);
    }

    #[test]
    fn retransmitted_2xx_is_acked_again_without_a_second_event() {
        let t0 = Instant::now();
        let (mut uac, invite, ack) = answered(t0);
        uac.handle_input(
            t0 + ms(500),
            server(),
            &reply(&invite, 200, CONTACT, ANSWER),
        );
        let (tx, ev) = drain(&mut uac);
        assert!(ev.is_empty());
        assert_eq!(tx.len(), 1);
        assert_eq!(req_of(&tx[0].1), ack);
    }

    #[test]
    fn non_2xx_final_is_acked_on_the_invite_branch_and_again_on_retransmission() {
        let t0 = Instant::now();
        let (mut uac, invite) = start(t0);
        uac.handle_input(t0, server(), &reply(&invite, 486, "", ""));
        let (tx, ev) = drain(&mut uac);
        assert_eq!(
            ev,
            vec![UacEvent::Failed {
                status: 486,
                reason: "Busy Here".into()
            }]
        );
        assert_eq!(tx.len(), 1);
        assert_eq!(tx[0].0, server());
        let ack = req_of(&tx[0].1);
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri, invite.uri);
        assert_eq!(branch(&ack), branch(&invite));
        assert_eq!(ack.headers.get("CSeq"), Some("1 ACK"));
        assert_eq!(
            ack.headers.get("To"),
            Some("<sip:record@127.0.0.1:5060>;tag=srv1")
        );
        assert_eq!(uac.state(), UacState::Terminated);
        assert_eq!(uac.poll_timeout(), None);

        uac.handle_input(t0 + ms(500), server(), &reply(&invite, 486, "", ""));
        let (tx2, ev2) = drain(&mut uac);
        assert!(ev2.is_empty());
        assert_eq!(tx2, tx);
    }

    #[test]
    fn info_dtmf_sends_dtmf_relay_with_timer_e_capped_at_t2() {
        let t0 = Instant::now();
        let (mut uac, _, _) = answered(t0);
        uac.info_dtmf(t0, '#', 160).unwrap();
        let (tx, _) = drain(&mut uac);
        assert_eq!(tx[0].0, "127.0.0.1:5070".parse::<SocketAddr>().unwrap());
        let info = req_of(&tx[0].1);
        assert_eq!(info.method, Method::Info);
        assert_eq!(info.uri, "sip:hark@127.0.0.1:5070");
        assert_eq!(info.headers.get("CSeq"), Some("2 INFO"));
        assert_eq!(
            info.headers.get("Content-Type"),
            Some("application/dtmf-relay")
        );
        assert_eq!(info.body, b"Signal=#\r\nDuration=160\r\n");
        assert_eq!(
            info.headers.get("To"),
            Some("<sip:record@127.0.0.1:5060>;tag=srv1")
        );

        let mut at = Vec::new();
        while let Some(t) = uac.poll_timeout().filter(|t| *t < t0 + ms(12_000)) {
            uac.handle_timeout(t);
            if !drain(&mut uac).0.is_empty() {
                at.push(t - t0);
            }
        }
        let expect: Vec<Duration> = [500, 1500, 3500, 7500, 11_500]
            .into_iter()
            .map(ms)
            .collect();
        assert_eq!(at, expect);
        uac.handle_input(t0 + ms(12_000), server(), &reply(&info, 200, "", ""));
        let (tx, ev) = drain(&mut uac);
        assert!(tx.is_empty());
        assert_eq!(
            ev,
            vec![UacEvent::InfoAnswered {
                digit: '#',
                status: 200
            }]
        );
        assert_eq!(uac.poll_timeout(), None);
    }

    #[test]
    fn info_without_answer_reports_408_at_timer_f() {
        let t0 = Instant::now();
        let (mut uac, _, _) = answered(t0);
        uac.info_dtmf(t0, '5', 250).unwrap();
        drain(&mut uac);
        let mut events = Vec::new();
        while let Some(t) = uac.poll_timeout() {
            uac.handle_timeout(t);
            events.extend(drain(&mut uac).1.into_iter().map(|e| (t - t0, e)));
        }
        assert_eq!(
            events,
            vec![(
                ms(32_000),
                UacEvent::InfoAnswered {
                    digit: '5',
                    status: 408
                }
            )]
        );
        assert_eq!(uac.state(), UacState::Confirmed);
    }

    #[test]
    fn info_rejects_non_dtmf_digits_and_calls_not_answered() {
        let t0 = Instant::now();
        let (mut uac, _) = start(t0);
        assert_eq!(
            uac.info_dtmf(t0, '1', 160),
            Err(UacError::WrongState("INFO"))
        );
        let (mut uac, _, _) = answered(t0);
        assert_eq!(uac.info_dtmf(t0, 'x', 160), Err(UacError::BadDigit('x')));
        assert!(drain(&mut uac).0.is_empty());
    }

    #[test]
    fn bye_gets_next_cseq_and_its_final_response_ends_the_call_locally() {
        let t0 = Instant::now();
        let (mut uac, _, _) = answered(t0);
        uac.info_dtmf(t0, '1', 160).unwrap();
        uac.bye(t0).unwrap();
        let (tx, _) = drain(&mut uac);
        let bye = req_of(&tx[1].1);
        assert_eq!(bye.method, Method::Bye);
        assert_eq!(bye.headers.get("CSeq"), Some("3 BYE"));
        assert_eq!(uac.bye(t0), Err(UacError::WrongState("BYE")));
        uac.handle_input(t0 + ms(10), server(), &reply(&bye, 200, "", ""));
        let (_, ev) = drain(&mut uac);
        assert_eq!(
            ev,
            vec![UacEvent::Ended {
                reason: UacEndReason::LocalBye
            }]
        );
        assert!(uac.is_ended());
        // The INFO still pending is dropped with the dialog.
        assert_eq!(uac.poll_timeout(), None);
    }

    #[test]
    fn bye_without_answer_ends_locally_at_timer_f() {
        let t0 = Instant::now();
        let (mut uac, _, _) = answered(t0);
        uac.bye(t0).unwrap();
        drain(&mut uac);
        let mut events = Vec::new();
        while let Some(t) = uac.poll_timeout() {
            uac.handle_timeout(t);
            events.extend(drain(&mut uac).1.into_iter().map(|e| (t - t0, e)));
        }
        assert_eq!(
            events,
            vec![(
                ms(32_000),
                UacEvent::Ended {
                    reason: UacEndReason::LocalBye
                }
            )]
        );
    }

    fn server_request(uac: &Uac, method: &str, cseq: u32, call_id: &str) -> Vec<u8> {
        format!(
            "{method} sip:hark@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsrv{cseq}\r\n\
             From: <sip:record@127.0.0.1:5060>;tag=srv1\r\nTo: <sip:hark@127.0.0.1:5062>;tag={}\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            uac.local_tag
        )
        .into_bytes()
    }

    /// A server request of the dialog with a body.
    fn with_body(req: Vec<u8>, content_type: &str, body: &str) -> Vec<u8> {
        let text = String::from_utf8(req).unwrap();
        let text = text.replace(
            "Content-Length: 0\r\n\r\n",
            &format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        );
        text.into_bytes()
    }

    /// A 401 is answered once: ACK, then the INVITE again (CSeq 2, a new branch) with a digest
    /// response the server can check; a second 401 fails the call.
    #[test]
    fn a_digest_challenge_is_answered_once() {
        use md5::{Digest, Md5};
        let t0 = Instant::now();
        let (mut uac, invite) = start(t0);
        uac.set_credentials("trunkuser", "trunkpass");
        let challenge = "WWW-Authenticate: Digest realm=\"pstn\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5\r\n";
        uac.handle_input(t0, server(), &reply(&invite, 401, challenge, ""));
        let (tx, ev) = drain(&mut uac);
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(tx.len(), 2, "ACK and the new INVITE");
        let ack = req_of(&tx[0].1);
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.headers.get("CSeq"), Some("1 ACK"));
        let again = req_of(&tx[1].1);
        assert_eq!(again.method, Method::Invite);
        assert_eq!(again.headers.get("CSeq"), Some("2 INVITE"));
        assert_ne!(branch(&again), branch(&invite));
        assert_eq!(again.headers.get("Call-ID"), invite.headers.get("Call-ID"));
        let auth = again.headers.get("Authorization").expect("Authorization");
        let field = |name: &str| {
            let at = auth.find(&format!("{name}=")).unwrap() + name.len() + 1;
            auth[at..]
                .trim_start_matches('"')
                .split(['"', ','])
                .next()
                .unwrap()
                .to_string()
        };
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let ha1 = hex(&Md5::digest(b"trunkuser:pstn:trunkpass"));
        let ha2 = hex(&Md5::digest(b"INVITE:sip:record@127.0.0.1:5060"));
        let want = hex(&Md5::digest(
            format!("{ha1}:n0nce:00000001:{}:auth:{ha2}", field("cnonce")).as_bytes(),
        ));
        assert_eq!(field("response"), want, "{auth}");
        assert_eq!(field("username"), "trunkuser");
        // Refused again: no third try.
        uac.handle_input(t0, server(), &reply(&again, 401, challenge, ""));
        let (_, ev) = drain(&mut uac);
        assert_eq!(
            ev,
            vec![UacEvent::Failed {
                status: 401,
                reason: "Unauthorized".into()
            }]
        );
    }

    #[test]
    fn info_keys_are_reported_and_a_reinvite_is_answered_with_our_media() {
        let t0 = Instant::now();
        let (mut uac, _, _) = answered(t0);
        let call_id = uac.call_id().to_string();
        let from: SocketAddr = "127.0.0.1:5999".parse().unwrap();
        let info = with_body(
            server_request(&uac, "INFO", 3, &call_id),
            "application/dtmf-relay",
            "Signal=5\r\nDuration=160\r\n",
        );
        uac.handle_input(t0, from, &info);
        let (tx, ev) = drain(&mut uac);
        assert_eq!(resp_of(&tx[0].1).status, 200);
        assert_eq!(
            ev,
            vec![UacEvent::Dtmf {
                digit: '5',
                duration_ms: 160
            }]
        );
        // Without our media address a re-INVITE is still 488.
        let hold = ANSWER.replace("a=fmtp:101 0-16\r\n", "a=fmtp:101 0-16\r\na=sendonly\r\n");
        let reinvite = with_body(
            server_request(&uac, "INVITE", 4, &call_id),
            "application/sdp",
            &hold,
        );
        uac.handle_input(t0, from, &reinvite);
        let (tx, ev) = drain(&mut uac);
        assert_eq!(resp_of(&tx[0].1).status, 488);
        assert!(ev.is_empty());
        uac.config.local_rtp = Some("127.0.0.1:30000".parse().unwrap());
        let reinvite = with_body(
            server_request(&uac, "INVITE", 5, &call_id),
            "application/sdp",
            &hold,
        );
        uac.handle_input(t0, from, &reinvite);
        let (tx, ev) = drain(&mut uac);
        let ok = resp_of(&tx[0].1);
        assert_eq!(ok.status, 200);
        let body = String::from_utf8(ok.body.clone()).unwrap();
        assert!(body.contains("m=audio 30000 RTP/AVP 8 101"), "{body}");
        assert!(body.contains("a=recvonly"), "hold is mirrored: {body}");
        match &ev[..] {
            [UacEvent::MediaChanged(neg)] => {
                assert_eq!(neg.codec, AudioCodec::Pcma);
                assert_eq!(neg.remote_direction, Direction::SendOnly);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn remote_bye_is_answered_200_each_time_and_ends_once() {
        let t0 = Instant::now();
        let (mut uac, _, _) = answered(t0);
        let call_id = uac.call_id().to_string();
        let bye = server_request(&uac, "BYE", 7, &call_id);
        let from: SocketAddr = "127.0.0.1:5999".parse().unwrap();
        uac.handle_input(t0, from, &bye);
        let (tx, ev) = drain(&mut uac);
        assert_eq!(
            ev,
            vec![UacEvent::Ended {
                reason: UacEndReason::RemoteBye
            }]
        );
        assert_eq!(tx.len(), 1);
        assert_eq!(tx[0].0, from);
        let ok = resp_of(&tx[0].1);
        assert_eq!(ok.status, 200);
        assert_eq!(ok.headers.get("CSeq"), Some("7 BYE"));
        assert_eq!(
            ok.headers.get("Via"),
            Some("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsrv7")
        );
        assert_eq!(ok.headers.get("Call-ID"), Some(call_id.as_str()));
        assert_eq!(ok.headers.get("To"), req_of(&bye).headers.get("To"));
        assert_eq!(uac.state(), UacState::Terminated);

        uac.handle_input(t0 + ms(500), from, &bye);
        let (tx, ev) = drain(&mut uac);
        assert!(ev.is_empty());
        assert_eq!(resp_of(&tx[0].1).status, 200);
    }

    #[test]
    fn in_dialog_options_and_info_get_200_reinvite_488_and_foreign_call_id_481() {
        let t0 = Instant::now();
        let (mut uac, _, _) = answered(t0);
        let call_id = uac.call_id().to_string();
        let mut statuses = Vec::new();
        for (method, cid) in [
            ("OPTIONS", call_id.as_str()),
            ("INFO", &call_id),
            ("INVITE", &call_id),
            ("BYE", "other@x"),
        ] {
            uac.handle_input(t0, server(), &server_request(&uac, method, 2, cid));
            let (tx, ev) = drain(&mut uac);
            assert!(ev.is_empty(), "{method}: {ev:?}");
            statuses.push(resp_of(&tx[0].1).status);
        }
        assert_eq!(statuses, vec![200, 200, 488, 481]);
        assert_eq!(uac.state(), UacState::Confirmed);
        // An ACK (for our 488) needs no answer.
        uac.handle_input(t0, server(), &server_request(&uac, "ACK", 2, &call_id));
        assert_eq!(drain(&mut uac), (vec![], vec![]));
    }

    #[test]
    fn record_route_reversed_is_the_route_set_and_its_first_hop_gets_requests() {
        let t0 = Instant::now();
        let (mut uac, invite) = start(t0);
        let rr = "Record-Route: <sip:10.0.0.2;lr>, <sip:127.0.0.1:5080;lr>\r\n";
        uac.handle_input(
            t0,
            server(),
            &reply(&invite, 200, &format!("{rr}{CONTACT}"), ANSWER),
        );
        let (tx, _) = drain(&mut uac);
        assert_eq!(tx[0].0, "127.0.0.1:5080".parse::<SocketAddr>().unwrap());
        let ack = req_of(&tx[0].1);
        assert_eq!(ack.uri, "sip:hark@127.0.0.1:5070");
        assert_eq!(
            ack.headers.get_all("Route"),
            vec!["<sip:127.0.0.1:5080;lr>", "<sip:10.0.0.2;lr>"]
        );
    }

    #[test]
    fn cancel_waits_for_a_provisional_then_487_is_acked_and_fails() {
        let t0 = Instant::now();
        let (mut uac, invite) = start(t0);
        uac.cancel(t0).unwrap();
        assert!(
            drain(&mut uac).0.is_empty(),
            "no CANCEL before a 1xx (RFC 3261 §9.1)"
        );
        uac.handle_input(t0 + ms(100), server(), &reply(&invite, 180, "", ""));
        let (tx, _) = drain(&mut uac);
        assert_eq!(tx.len(), 1);
        let cancel = req_of(&tx[0].1);
        assert_eq!(cancel.method, Method::Cancel);
        assert_eq!(cancel.uri, invite.uri);
        assert_eq!(branch(&cancel), branch(&invite));
        assert_eq!(cancel.headers.get("CSeq"), Some("1 CANCEL"));
        assert_eq!(cancel.headers.get("To"), invite.headers.get("To"));
        uac.handle_input(t0 + ms(110), server(), &reply(&cancel, 200, "", ""));
        assert_eq!(drain(&mut uac), (vec![], vec![]));
        uac.handle_input(t0 + ms(120), server(), &reply(&invite, 487, "", ""));
        let (tx, ev) = drain(&mut uac);
        assert_eq!(
            ev,
            vec![UacEvent::Failed {
                status: 487,
                reason: "Request Terminated".into()
            }]
        );
        assert_eq!(branch(&req_of(&tx[0].1)), branch(&invite));
    }

    #[test]
    fn answer_without_sdp_is_acked_then_hung_up() {
        let t0 = Instant::now();
        let (mut uac, invite) = start(t0);
        uac.handle_input(
            t0,
            server(),
            &reply(&invite, 200, "Contact: <sip:hark@127.0.0.1:5070>\r\n", ""),
        );
        let (tx, ev) = drain(&mut uac);
        let methods: Vec<Method> = tx.iter().map(|(_, b)| req_of(b).method).collect();
        assert_eq!(methods, vec![Method::Ack, Method::Bye]);
        assert_eq!(
            ev,
            vec![UacEvent::UnusableAnswer {
                status: 200,
                error: "2xx has no SDP answer".into()
            }]
        );
    }

    #[test]
    fn garbage_and_foreign_responses_are_ignored_without_state_change() {
        let t0 = Instant::now();
        let (mut uac, invite) = start(t0);
        uac.handle_input(t0, server(), b"\x00\xffnot sip");
        let mut other = invite.clone();
        other.headers.set("Call-ID", "someone-else");
        uac.handle_input(t0, server(), &reply(&other, 200, CONTACT, ANSWER));
        let (tx, ev) = drain(&mut uac);
        assert!(tx.is_empty());
        assert_eq!(ev.len(), 2);
        assert!(ev.iter().all(|e| matches!(e, UacEvent::Ignored { .. })));
        assert_eq!(uac.state(), UacState::Calling);
    }
}
