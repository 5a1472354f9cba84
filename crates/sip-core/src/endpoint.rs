//! The UAS endpoint: transactions (RFC 3261 §17) and dialogs (§12) for calls into Hark.

mod build;
pub(crate) mod dtmf;
mod state;
mod uas;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::access::{self, AccessConfig, CallAdmission, CallRefusal, RateGuard, Screen};
use crate::message::{parse_lenient, Headers, Message, NameAddr, Response, Via};
use crate::sdp::Negotiated;

pub use state::TimerReason;
use state::{ByeTx, Call, Retrans, Soonest, StoredResponse, TxKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    /// SIP over TLS (RFC 3261 §26.2, `sips:`): a TCP connection under TLS.
    Tls,
}

/// Where a message came from / goes to. `conn` names the TCP connection (0 for UDP) so a
/// response leaves on the connection its request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
    pub conn: u64,
}

/// Hark's handle for one call (one INVITE dialog).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Address advertised in Via and Contact (the SIP listen address).
    pub local_addr: SocketAddr,
    /// The SIP-over-TLS listen address as advertised, when there is one (Contact of TLS calls).
    pub tls_addr: Option<SocketAddr>,
    pub user_agent: String,
    /// Seeds tags, branches and SDP session ids.
    pub seed: u64,
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
    /// Address families the daemon can carry media in. An offer in another family is refused
    /// with 488 and Warning 301 (RFC 3261 §20.43) instead of being answered with media that
    /// can never flow.
    pub media_ipv4: bool,
    pub media_ipv6: bool,
    /// Opus is accepted in offers (answered at the caller's payload type, recorded wideband).
    pub opus: bool,
    /// Who may call, the rate limit and the call caps ([`AccessConfig::open`] by default).
    pub access: AccessConfig,
    /// SRTP answer keys from `seed` instead of the OS's randomness: reproducible runs for
    /// tests and fuzzing only (such keys are predictable).
    pub deterministic_keys: bool,
}

impl EndpointConfig {
    pub fn new(local_addr: SocketAddr) -> Self {
        Self {
            local_addr,
            tls_addr: None,
            user_agent: concat!("Hark/", env!("CARGO_PKG_VERSION")).to_string(),
            seed: 0,
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            media_ipv4: true,
            media_ipv6: true,
            opus: false,
            access: AccessConfig::open(),
            deterministic_keys: false,
        }
    }
}

#[derive(Debug)]
pub enum Output {
    Transmit {
        to: Peer,
        bytes: Vec<u8>,
    },
    Event(CallEvent),
    /// Something was wrong with input and was answered or dropped; for the log.
    Rejected {
        from: Peer,
        reason: String,
    },
    /// A source was refused or banned (for the log lines fail2ban reads, and metrics).
    Security(SecurityEvent),
}

/// Who was kept out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityEvent {
    /// The source went over the rate limit: everything from it is dropped until `until`.
    Banned {
        source: IpAddr,
        until: Instant,
        requests: u32,
    },
    /// A request from a source outside `trusted` that no `[[user]]` authenticated: 403 (or
    /// nothing, in drop mode).
    Untrusted { source: IpAddr, method: String },
    /// A digest that names an unknown user or is wrong (403).
    AuthFailed {
        source: IpAddr,
        user: String,
        method: String,
    },
    /// An INVITE over a call cap: 503 with Retry-After.
    CallRefused { source: IpAddr, reason: CallRefusal },
}

#[derive(Debug, Clone)]
pub struct IncomingCall {
    pub call: CallKey,
    pub call_id: String,
    pub from: NameAddr,
    pub to: NameAddr,
    pub request_uri: String,
    pub media: Negotiated,
    /// All headers of the INVITE (Diversion, P-Asserted-Identity, X-… for the application).
    pub headers: Headers,
    pub peer: Peer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// BYE from the caller (answered 200 already).
    RemoteBye,
    /// CANCEL before answer (answered 200 and 487 already).
    Cancelled,
    /// Our 2xx was never ACKed (Timer H); the endpoint has sent BYE.
    AckTimeout,
    /// Our BYE got a final response or timed out (Timer F).
    LocalBye,
    /// We sent a final non-2xx response.
    Rejected,
}

#[derive(Debug, Clone)]
pub enum CallEvent {
    /// A new INVITE with an acceptable offer; 100 Trying has been sent.
    Incoming(Box<IncomingCall>),
    /// ACK for our 2xx arrived.
    Confirmed { call: CallKey },
    /// A re-INVITE was answered (hold/unhold, new media address).
    MediaChanged { call: CallKey, media: Negotiated },
    /// DTMF by SIP INFO (`application/dtmf-relay` or `application/dtmf`), answered 200.
    Dtmf {
        call: CallKey,
        digit: char,
        duration_ms: u32,
    },
    /// The call is over; nothing more will be reported for it.
    Ended { call: CallKey, reason: EndReason },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallError {
    #[error("call {0:?} is unknown or already ended")]
    UnknownCall(CallKey),
    #[error("call {0:?} is in the wrong state for this: {1}")]
    WrongState(CallKey, &'static str),
}

/// The UAS endpoint. Feed it input and time; drain [`Endpoint::poll_output`].
///
/// Timers are found by scanning calls in [`Endpoint::poll_timeout`]: SIP events are rare next to
/// RTP, and a scan keeps the state in one place per call.
pub struct Endpoint {
    config: EndpointConfig,
    calls: BTreeMap<CallKey, Call>,
    /// (Call-ID, our tag) → call.
    by_dialog: HashMap<(String, String), CallKey>,
    /// INVITE server transactions (initial and the current re-INVITE).
    by_invite: HashMap<TxKey, CallKey>,
    /// (Call-ID, From tag, CSeq) of initial INVITEs, for re-sends with a new branch.
    by_origin: HashMap<(String, String, u32), CallKey>,
    /// Branch of our BYE → call.
    by_bye: HashMap<String, CallKey>,
    /// Non-INVITE server transactions (UDP only; Timer J is 0 on TCP).
    nist: HashMap<TxKey, StoredResponse>,
    out: VecDeque<Output>,
    counter: u64,
    next_call: u64,
    /// REGISTER is answered when set ([`Endpoint::set_registrar`]); its clock starts here.
    registrar: Option<(crate::registrar::Registrar, Instant)>,
    /// Per-source request counts and bans.
    guard: RateGuard,
    /// Calls up and new-call rates, for the caps.
    admission: CallAdmission,
    /// Messages dropped unparsed (banned or untrusted sources).
    dropped: u64,
    /// Draining ([`Endpoint::set_draining`]): new calls and OPTIONS get 503, so a load
    /// balancer's probe takes this node out while its calls finish.
    draining: bool,
    /// When stale rate-limit state is next swept (only while there is some).
    next_sweep: Option<Instant>,
}

/// How often stale rate-limit and call-rate entries are forgotten.
const ACCESS_SWEEP: Duration = Duration::from_secs(10);

impl Endpoint {
    pub fn new(config: EndpointConfig) -> Self {
        Endpoint {
            config,
            calls: BTreeMap::new(),
            by_dialog: HashMap::new(),
            by_invite: HashMap::new(),
            by_origin: HashMap::new(),
            by_bye: HashMap::new(),
            nist: HashMap::new(),
            out: VecDeque::new(),
            counter: 0,
            next_call: 1,
            registrar: None,
            guard: RateGuard::default(),
            admission: CallAdmission::default(),
            dropped: 0,
            next_sweep: None,
            draining: false,
        }
    }

    /// Stops taking new calls (503 with Retry-After to INVITEs outside a dialog, 503 to
    /// OPTIONS) or, with `false`, takes them again. Calls up carry on either way.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    pub fn draining(&self) -> bool {
        self.draining
    }

    /// Answers REGISTER (digest-authenticated) from now on; `now` starts its nonce clock.
    pub fn set_registrar(&mut self, now: Instant, registrar: crate::registrar::Registrar) {
        self.registrar = Some((registrar, now));
    }

    /// The contacts `user` registered, for calls to it.
    pub fn registered(&self, now: Instant, user: &str) -> Vec<crate::registrar::Binding> {
        self.registrar
            .as_ref()
            .map(|(r, _)| r.lookup(now, user))
            .unwrap_or_default()
    }

    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// One datagram (UDP) or one framed message (TCP). Its source is screened before it is
    /// parsed ([`access::screen`]).
    pub fn handle_input(&mut self, now: Instant, from: Peer, bytes: &[u8]) {
        let can_authenticate = self.registrar.as_ref().is_some_and(|(r, _)| r.enabled());
        let source = access::canonical(from.addr.ip());
        let trusted = match access::screen(
            &self.config.access,
            &mut self.guard,
            now,
            source,
            can_authenticate,
        ) {
            Screen::Pass { trusted } => trusted,
            Screen::Banned { until, requests } => {
                self.dropped += 1;
                self.schedule_sweep(now);
                self.out.push_back(Output::Security(SecurityEvent::Banned {
                    source,
                    until,
                    requests,
                }));
                return;
            }
            Screen::Drop => {
                self.dropped += 1;
                self.schedule_sweep(now);
                return;
            }
        };
        // Before parsing: a message that fails to parse has been counted all the same.
        self.schedule_sweep(now);
        let parsed = match parse_lenient(bytes) {
            Ok(p) => p,
            Err(e) => {
                self.rejected(from, format!("dropped: {e}"));
                return;
            }
        };
        match parsed.message {
            // A broken or unmatched response is dropped silently (RFC 3261 §18.1.2).
            Message::Response(resp) => {
                if parsed.error.is_none() {
                    self.on_response(now, resp);
                }
            }
            Message::Request(req) => self.on_request(now, from, req, parsed.error, trusted),
        }
        // Admission may have started a call-rate bucket.
        self.schedule_sweep(now);
    }

    /// Arms the sweep of rate-limit and call-rate state when there is some to forget.
    fn schedule_sweep(&mut self, now: Instant) {
        if self.next_sweep.is_none()
            && (self.guard.size() != (0, 0) || self.admission.size().1 != 0)
        {
            self.next_sweep = Some(now + ACCESS_SWEEP);
        }
    }

    /// Messages dropped unparsed so far (banned sources; untrusted ones in drop mode).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Calls admitted and not ended (the figure `max_calls` caps).
    pub fn admitted_calls(&self) -> usize {
        self.admission.active()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.nist.retain(|_, s| s.forget_at > now);
        if self.next_sweep.is_some_and(|at| at <= now) {
            let window = self
                .config
                .access
                .rate_limit
                .map_or(Duration::ZERO, |l| l.window);
            self.guard.expire(now, window);
            self.admission.expire(now, &self.config.access.calls);
            let idle = self.guard.size() == (0, 0) && self.admission.size().1 == 0;
            self.next_sweep = (!idle).then_some(now + ACCESS_SWEEP);
        }
        let due: Vec<CallKey> = self
            .calls
            .iter()
            .filter(|(_, c)| c.next_deadline().is_some_and(|(at, _)| at <= now))
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            self.call_timers(now, key);
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.poll_timeout_reason().map(|(at, _)| at)
    }

    /// The earliest deadline and which timer it is.
    pub fn poll_timeout_reason(&self) -> Option<(Instant, TimerReason)> {
        let mut s = Soonest::default();
        for c in self.calls.values() {
            if let Some((at, why)) = c.next_deadline() {
                s.consider(Some(at), why);
            }
        }
        for n in self.nist.values() {
            s.consider(Some(n.forget_at), TimerReason::ForgetTransaction);
        }
        s.consider(self.next_sweep, TimerReason::ForgetSources);
        s.0
    }

    /// 180 Ringing.
    pub fn ring(&mut self, now: Instant, call: CallKey) -> Result<(), CallError> {
        self.pending_call(call)?;
        let resp = self.dialog_response(call, 180, None);
        self.ist_send(now, call, resp);
        Ok(())
    }

    /// 200 OK with the SDP answer naming `local_rtp`; retransmitted until ACK (Timers G/H).
    pub fn answer(
        &mut self,
        now: Instant,
        call: CallKey,
        local_rtp: SocketAddr,
    ) -> Result<(), CallError> {
        self.pending_call(call)?;
        if let Some(c) = self.calls.get_mut(&call) {
            c.local_rtp = Some(local_rtp);
            c.answered = true;
        }
        let resp = self.dialog_response(call, 200, None);
        self.ist_send(now, call, resp);
        Ok(())
    }

    /// A final non-2xx response before answer (486, 603, 480, 500, 503…).
    pub fn reject(&mut self, now: Instant, call: CallKey, status: u16) -> Result<(), CallError> {
        self.pending_call(call)?;
        if !(300..=699).contains(&status) {
            return Err(CallError::WrongState(
                call,
                "reject needs a status from 300 to 699",
            ));
        }
        let resp = self.dialog_response(call, status, None);
        self.ist_send(now, call, resp);
        self.end(call, EndReason::Rejected);
        self.maybe_finish(now, call);
        Ok(())
    }

    /// BYE once answered (Timers E/F); before answer, the same as `reject(480)`.
    pub fn hangup(&mut self, now: Instant, call: CallKey) -> Result<(), CallError> {
        let c = self
            .calls
            .get(&call)
            .filter(|c| !c.ended)
            .ok_or(CallError::UnknownCall(call))?;
        if c.awaiting_final() {
            return self.reject(now, call, 480);
        }
        if c.bye.is_some() {
            return Err(CallError::WrongState(call, "BYE already sent"));
        }
        if !c.answered {
            return Err(CallError::WrongState(call, "not answered"));
        }
        self.start_bye(now, call);
        Ok(())
    }

    /// Calls that have not ended.
    pub fn call_count(&self) -> usize {
        self.calls.values().filter(|c| !c.ended).count()
    }

    /// Records kept (ended calls linger 64*T1 on UDP to absorb retransmissions) and stored
    /// non-INVITE responses; for leak checks.
    pub fn state_size(&self) -> (usize, usize) {
        (self.calls.len(), self.nist.len())
    }

    /// Sources tracked by the rate limit, sources banned, sources with calls up, sources with
    /// a call-rate bucket; for leak checks.
    pub fn access_state_size(&self) -> [usize; 4] {
        let (windows, bans) = self.guard.size();
        let (up, rates) = self.admission.size();
        [windows, bans, up, rates]
    }

    // ---- internals shared by the submodules ----

    /// The call exists, has not ended, and its initial INVITE has no final response yet.
    fn pending_call(&self, call: CallKey) -> Result<(), CallError> {
        let c = self
            .calls
            .get(&call)
            .filter(|c| !c.ended)
            .ok_or(CallError::UnknownCall(call))?;
        if !c.awaiting_final() {
            return Err(CallError::WrongState(
                call,
                "a final response was already sent",
            ));
        }
        Ok(())
    }

    fn transmit(&mut self, to: Peer, bytes: Vec<u8>) {
        self.out.push_back(Output::Transmit { to, bytes });
    }

    fn rejected(&mut self, from: Peer, reason: String) {
        self.out.push_back(Output::Rejected { from, reason });
    }

    fn emit(&mut self, event: CallEvent) {
        self.out.push_back(Output::Event(event));
    }

    /// Marks the call ended and reports it once.
    fn end(&mut self, call: CallKey, reason: EndReason) {
        if let Some(c) = self.calls.get_mut(&call) {
            if let Some(source) = c.admitted_from.take() {
                self.admission.release(source);
            }
            if !c.ended {
                c.ended = true;
                self.out
                    .push_back(Output::Event(CallEvent::Ended { call, reason }));
            }
        }
    }

    fn reliable(peer: Peer) -> bool {
        matches!(peer.transport, Transport::Tcp | Transport::Tls)
    }

    fn timer_64t1(&self) -> Duration {
        self.config.t1.saturating_mul(64)
    }

    /// Sends a response on the call's current INVITE server transaction; a final one starts
    /// Timer G (UDP only) and Timer H.
    fn ist_send(&mut self, now: Instant, call: CallKey, resp: Response) {
        let (t1, h) = (self.config.t1, self.timer_64t1());
        let Some(ist) = self.calls.get_mut(&call).and_then(|c| c.ist.as_mut()) else {
            return;
        };
        let bytes = resp.to_bytes();
        if resp.status >= 200 {
            ist.final_status = Some(resp.status);
            ist.give_up = Some(now + h);
            ist.retrans = (!Self::reliable(ist.peer)).then(|| Retrans {
                at: now + t1,
                interval: t1,
            });
        }
        ist.last = Some(bytes.clone());
        let peer = ist.peer;
        self.transmit(peer, bytes);
    }

    fn start_bye(&mut self, now: Instant, call: CallKey) {
        let branch = self.new_branch();
        let (t1, f) = (self.config.t1, self.timer_64t1());
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        // Our BYE ends the 2xx retransmission; a late ACK is absorbed.
        if let Some(ist) = c.ist.as_mut() {
            if ist.final_status.is_some() {
                ist.acked = true;
                ist.retrans = None;
                ist.give_up = None;
            }
        }
        c.local_cseq += 1;
        let req = build::bye(&self.config, c, &branch);
        let bytes = req.to_bytes();
        c.bye = Some(ByeTx {
            branch: branch.clone(),
            bytes: bytes.clone(),
            retrans: (!Self::reliable(c.peer)).then(|| Retrans {
                at: now + t1,
                interval: t1,
            }),
            give_up: now + f,
        });
        let peer = c.peer;
        self.by_bye.insert(branch, call);
        self.transmit(peer, bytes);
    }

    fn on_response(&mut self, now: Instant, resp: Response) {
        let Some(branch) = resp
            .headers
            .get_all("Via")
            .first()
            .and_then(|v| Via::parse(v).ok())
            .and_then(|v| v.branch().map(str::to_string))
        else {
            return;
        };
        let Some(&call) = self.by_bye.get(&branch) else {
            return;
        };
        let is_bye = resp
            .headers
            .get("CSeq")
            .and_then(|v| crate::message::CSeq::parse(v).ok())
            .is_some_and(|c| c.method == crate::message::Method::Bye);
        if !is_bye {
            return;
        }
        let t2 = self.config.t2;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if resp.status < 200 {
            // Proceeding: keep retransmitting, but only every T2.
            if let Some(r) = c.bye.as_mut().and_then(|b| b.retrans.as_mut()) {
                r.interval = t2;
                r.at = now + t2;
            }
            return;
        }
        c.bye = None;
        self.by_bye.remove(&branch);
        self.end(call, EndReason::LocalBye);
        self.maybe_finish(now, call);
    }

    fn call_timers(&mut self, now: Instant, call: CallKey) {
        let t2 = self.config.t2;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.linger_until.is_some_and(|t| t <= now) {
            self.remove_call(call);
            return;
        }
        let mut resend = Vec::new();
        let mut ack_timeout = None;
        if let Some(ist) = c.ist.as_mut() {
            if ist.give_up.is_some_and(|t| t <= now) {
                ist.give_up = None;
                ist.retrans = None;
                ist.acked = true;
                ack_timeout = ist.final_status;
            } else if let Some(r) = ist.retrans.as_mut().filter(|r| r.at <= now) {
                r.interval = r.interval.saturating_mul(2).min(t2);
                r.at = now + r.interval;
                if let Some(b) = &ist.last {
                    resend.push((ist.peer, b.clone()));
                }
            }
        }
        let mut bye_timed_out = None;
        if let Some(bye) = c.bye.as_mut() {
            if bye.give_up <= now {
                bye_timed_out = Some(bye.branch.clone());
            } else if let Some(r) = bye.retrans.as_mut().filter(|r| r.at <= now) {
                r.interval = r.interval.saturating_mul(2).min(t2);
                r.at = now + r.interval;
                resend.push((c.peer, bye.bytes.clone()));
            }
        }
        if bye_timed_out.is_some() {
            c.bye = None;
        }
        let lost_ack_on_2xx = ack_timeout.is_some_and(|s| (200..300).contains(&s)) && !c.ended;
        for (peer, bytes) in resend {
            self.transmit(peer, bytes);
        }
        if let Some(branch) = bye_timed_out {
            self.by_bye.remove(&branch);
            self.end(call, EndReason::LocalBye);
        }
        if lost_ack_on_2xx {
            // RFC 3261 §13.3.1.4: no ACK for our 2xx, so end the dialog with BYE.
            self.start_bye(now, call);
            self.end(call, EndReason::AckTimeout);
        }
        self.maybe_finish(now, call);
    }

    /// Starts the linger period once nothing is pending (removes at once on TCP).
    fn maybe_finish(&mut self, now: Instant, call: CallKey) {
        let linger = self.timer_64t1();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.linger_until.is_some() || !c.finished() {
            return;
        }
        if Self::reliable(c.peer) {
            self.remove_call(call);
        } else {
            c.linger_until = Some(now + linger);
        }
    }

    fn remove_call(&mut self, call: CallKey) {
        let Some(c) = self.calls.remove(&call) else {
            return;
        };
        if let Some(source) = c.admitted_from {
            self.admission.release(source);
        }
        self.by_dialog
            .remove(&(c.call_id.clone(), c.local_tag.clone()));
        self.by_invite.remove(&c.initial_key);
        if let Some(ist) = &c.ist {
            self.by_invite.remove(&ist.key);
        }
        self.by_origin.remove(&c.origin);
        if let Some(b) = &c.bye {
            self.by_bye.remove(&b.branch);
        }
    }
}

#[cfg(test)]
mod tests;
