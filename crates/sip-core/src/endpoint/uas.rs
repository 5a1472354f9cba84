//! Requests from the network: validation and the UAS side of each method.

use std::time::Instant;

use crate::message::{reason_phrase, Method, NameAddr, ParseError, Request, Response};
use crate::sdp::{negotiate_with, parse_offer, Negotiated, SdpError};

use super::build::{raw_bad_request, response_to, warning, ACCEPT, ALLOW, KNOWN_UNSUPPORTED};
use super::dtmf::{parse_dtmf, parse_dtmf_relay};
use super::state::{Call, Ctx, InviteTx, StoredResponse};
use super::{CallEvent, CallKey, EndReason, Endpoint, IncomingCall, Peer, SecurityEvent};
use crate::access::Untrusted;
use crate::registrar::Authn;

/// A final response explaining why an offer (or INVITE) is refused.
struct Refusal {
    status: u16,
    reason: String,
    headers: Vec<(&'static str, String)>,
}

fn family_name(ip: std::net::IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IP4"
    } else {
        "IP6"
    }
}

/// The Request-URI: a scheme we serve (`sip`, `sips`, `tel`; else 416, RFC 3261 §8.2.2.1) and,
/// for SIP URIs, a host we can read (`sip:2001:db8::10` without brackets is 400, RFC 5118 §4.2).
fn check_request_uri(uri: &str) -> Option<(u16, &'static str)> {
    let scheme = uri
        .split_once(':')
        .map_or("", |(s, _)| s)
        .to_ascii_lowercase();
    match scheme.as_str() {
        "tel" => None,
        "sip" | "sips" => match crate::message::uri_host_port(uri) {
            Some(_) => None,
            None => Some((400, "Bad Request (Invalid Request-URI)")),
        },
        _ => Some((416, "Unsupported URI Scheme")),
    }
}

/// A remote target we can send in-dialog requests to: a sip/sips URI with a host.
fn usable_target(uri: &str) -> bool {
    let scheme = uri.split_once(':').map_or("", |(s, _)| s);
    (scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips"))
        && crate::message::uri_host_port(uri).is_some()
}

fn content_type(req: &Request) -> Option<String> {
    req.headers.get("Content-Type").map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

impl Endpoint {
    pub(super) fn on_request(
        &mut self,
        now: Instant,
        from: Peer,
        req: Request,
        error: Option<ParseError>,
        trusted: bool,
    ) {
        let ctx = match Ctx::read(&req) {
            Ok(c) => c,
            Err(e) => {
                if !trusted {
                    return;
                }
                // Answerable when a Via names where to; never an ACK (RFC 3261 §17.2.3). Another
                // SIP version is 505 even when its Via is unreadable too (RFC 4475 `badvers`).
                let (status, reason) = match &error {
                    Some(ParseError::Version(_)) => (505, reason_phrase(505).to_string()),
                    _ => (400, format!("Bad Request ({})", e.reason_phrase())),
                };
                match raw_bad_request(&self.config, &req, status, &reason) {
                    Some(r) if req.method != Method::Ack => {
                        self.transmit(from, r.to_bytes());
                        self.rejected(from, format!("{status} to {}: {e}", req.method));
                    }
                    _ => self.rejected(from, format!("dropped {} request: {e}", req.method)),
                }
                return;
            }
        };
        if !trusted && !self.untrusted_may_send(&req, &ctx) {
            self.refuse_untrusted(now, from, &req, &ctx);
            return;
        }
        if req.method == Method::Ack {
            // ACK never gets a response; a broken one is only logged.
            match error {
                Some(e) => self.rejected(from, format!("dropped ACK: {e}")),
                None if ctx.cseq.method != Method::Ack => {
                    self.rejected(from, "dropped ACK: CSeq method is not ACK".into())
                }
                None => self.on_ack(now, &ctx),
            }
            return;
        }
        if let Some(e) = error {
            let (status, reason) = match e {
                ParseError::Version(_) => (505, reason_phrase(505).to_string()),
                _ => (400, format!("Bad Request ({})", e.reason_phrase())),
            };
            self.reply_stateless(now, from, &req, &ctx, status, &reason, vec![]);
            self.rejected(from, format!("{status} to {}: {e}", req.method));
            return;
        }
        if let Method::Other(m) = &req.method {
            if !(m == "REGISTER" && self.registrar.is_some()) {
                // RFC 3261 §8.2.1: a method we know and do not serve is 405, one we do not
                // know 501; both list what we do.
                let status = if KNOWN_UNSUPPORTED.contains(&m.as_str()) {
                    405
                } else {
                    501
                };
                let headers = vec![("Allow", ALLOW.to_string())];
                self.reply_stateless(
                    now,
                    from,
                    &req,
                    &ctx,
                    status,
                    reason_phrase(status),
                    headers,
                );
                return;
            }
        }
        if let Some((status, reason)) = check_request_uri(&req.uri) {
            self.reply_stateless(now, from, &req, &ctx, status, reason, vec![]);
            self.rejected(from, format!("{status} to {}: {reason}", req.method));
            return;
        }
        if ctx.cseq.method != req.method {
            self.reply_stateless(
                now,
                from,
                &req,
                &ctx,
                400,
                "Bad Request (CSeq Method Mismatch)",
                vec![],
            );
            self.rejected(
                from,
                format!("400 to {}: CSeq method {}", req.method, ctx.cseq.method),
            );
            return;
        }
        if req.method != Method::Invite {
            if let Some(stored) = self.nist.get(&ctx.key) {
                let bytes = stored.bytes.clone();
                self.transmit(from, bytes);
                return;
            }
        }
        if req.method != Method::Cancel {
            let required = req.headers.get_all("Require");
            if !required.is_empty() {
                // We implement no extensions (RFC 3261 §8.2.2.3).
                let list = required.join(", ");
                self.reply_stateless(
                    now,
                    from,
                    &req,
                    &ctx,
                    420,
                    reason_phrase(420),
                    vec![("Unsupported", list)],
                );
                return;
            }
        }
        match req.method {
            Method::Invite => self.on_invite(now, from, req, ctx, trusted),
            Method::Cancel => self.on_cancel(now, from, &req, &ctx),
            Method::Bye => self.on_bye(now, from, &req, &ctx),
            Method::Info => self.on_info(now, from, &req, &ctx),
            Method::Options if self.draining => {
                let headers = vec![
                    ("Allow", ALLOW.to_string()),
                    ("Retry-After", self.drain_retry_after().to_string()),
                ];
                self.reply_stateless(
                    now,
                    from,
                    &req,
                    &ctx,
                    503,
                    "Service Unavailable (draining)",
                    headers,
                );
            }
            Method::Options => {
                let headers = vec![("Allow", ALLOW.to_string()), ("Accept", ACCEPT.to_string())];
                self.reply_stateless(now, from, &req, &ctx, 200, "OK", headers);
            }
            Method::Other(ref m) if m == "REGISTER" && self.registrar.is_some() => {
                let Some((registrar, epoch)) = self.registrar.as_mut() else {
                    return;
                };
                let clock = now.saturating_duration_since(*epoch).as_secs();
                let reply = registrar.handle(now, clock, &req);
                // 401 is the normal first answer; refusals are worth a log line.
                if reply.status >= 403 {
                    self.rejected(from, format!("{} to REGISTER", reply.status));
                }
                self.reply_stateless(
                    now,
                    from,
                    &req,
                    &ctx,
                    reply.status,
                    reply.reason,
                    reply.headers,
                );
            }
            _ => {
                let headers = vec![("Allow", ALLOW.to_string())];
                self.reply_stateless(now, from, &req, &ctx, 405, reason_phrase(405), headers);
            }
        }
    }

    /// Retry-After of a draining node's 503s.
    fn drain_retry_after(&self) -> u32 {
        self.config.access.calls.retry_after_secs.max(1)
    }

    /// What a source outside `sip.trusted` may send: requests within a dialog or transaction it
    /// was admitted to (ACK, CANCEL, BYE, INFO, re-INVITE), and, when `[[user]]`s exist,
    /// REGISTER and a new INVITE, which must then authenticate.
    fn untrusted_may_send(&self, req: &Request, ctx: &Ctx) -> bool {
        let users = self.registrar.as_ref().is_some_and(|(r, _)| r.enabled());
        match req.method {
            Method::Ack => true,
            Method::Cancel => self
                .by_invite
                .contains_key(&ctx.key.with_method(&Method::Invite)),
            Method::Invite if ctx.to.tag.is_none() => users,
            Method::Other(ref m) if m == "REGISTER" => users,
            _ => ctx.to.tag.is_some() && self.dialog_of(ctx).is_some(),
        }
    }

    fn refuse_untrusted(&mut self, now: Instant, from: Peer, req: &Request, ctx: &Ctx) {
        let source = crate::access::canonical(from.addr.ip());
        self.out
            .push_back(super::Output::Security(SecurityEvent::Untrusted {
                source,
                method: req.method.as_str().chars().take(32).collect(),
            }));
        if self.config.access.untrusted == Untrusted::Reject {
            self.reply_stateless(now, from, req, ctx, 403, reason_phrase(403), vec![]);
        }
    }

    /// A response outside any INVITE transaction; stored for retransmissions of non-INVITE
    /// requests on UDP (Timer J).
    #[allow(clippy::too_many_arguments)]
    fn reply_stateless(
        &mut self,
        now: Instant,
        from: Peer,
        req: &Request,
        ctx: &Ctx,
        status: u16,
        reason: &str,
        headers: Vec<(&'static str, String)>,
    ) {
        let tag = self.stateless_tag(ctx);
        let mut r = response_to(&self.config, req, ctx, from, status, reason, Some(&tag));
        for (n, v) in headers {
            r.headers.push(n, v);
        }
        self.send_nist(now, from, req, ctx, r);
    }

    fn send_nist(&mut self, now: Instant, from: Peer, req: &Request, ctx: &Ctx, r: Response) {
        let bytes = r.to_bytes();
        if req.method != Method::Invite && !Self::reliable(from) {
            let forget_at = now + self.timer_64t1();
            self.nist.insert(
                ctx.key.clone(),
                StoredResponse {
                    bytes: bytes.clone(),
                    forget_at,
                },
            );
        }
        self.transmit(from, bytes);
    }

    /// The live call a request with our To-tag belongs to.
    fn dialog_of(&self, ctx: &Ctx) -> Option<CallKey> {
        let tag = ctx.to.tag.as_ref()?;
        let key = *self.by_dialog.get(&(ctx.call_id.clone(), tag.clone()))?;
        let c = self.calls.get(&key)?;
        let remote_ok = match (c.remote_tag(), &ctx.from.tag) {
            (Some(ours), Some(theirs)) => ours == *theirs,
            _ => true,
        };
        remote_ok.then_some(key)
    }

    /// An in-dialog response with our tag (the request's To already carries it).
    fn reply_in_dialog(
        &mut self,
        now: Instant,
        from: Peer,
        req: &Request,
        ctx: &Ctx,
        status: u16,
        reason: &str,
    ) {
        let r = response_to(&self.config, req, ctx, from, status, reason, None);
        self.send_nist(now, from, req, ctx, r);
    }

    /// A TCP caller that reconnected: later requests and our BYE use the new connection.
    fn follow_connection(&mut self, call: CallKey, from: Peer) {
        if let Some(c) = self.calls.get_mut(&call) {
            if Self::reliable(from) && c.peer.transport == from.transport {
                c.peer = from;
            }
        }
    }

    /// RFC 3261 §12.2.2: a lower CSeq than the last one is out of order.
    fn cseq_in_order(&mut self, call: CallKey, ctx: &Ctx) -> bool {
        match self.calls.get_mut(&call) {
            Some(c) if ctx.cseq.seq >= c.remote_cseq => {
                c.remote_cseq = ctx.cseq.seq;
                true
            }
            _ => false,
        }
    }

    /// [`cseq_in_order`](Self::cseq_in_order), answering an out-of-order request with 500
    /// (RFC 3261 §12.2.2); true when the request may go on.
    fn accept_cseq(
        &mut self,
        now: Instant,
        from: Peer,
        req: &Request,
        ctx: &Ctx,
        call: CallKey,
    ) -> bool {
        if self.cseq_in_order(call, ctx) {
            return true;
        }
        self.reply_in_dialog(
            now,
            from,
            req,
            ctx,
            500,
            "Server Internal Error (CSeq Out of Order)",
        );
        false
    }

    fn on_invite(&mut self, now: Instant, from: Peer, req: Request, ctx: Ctx, trusted: bool) {
        if let Some(&call) = self.by_invite.get(&ctx.key) {
            self.resend_invite_response(call, |t| t.key == ctx.key);
            return;
        }
        if ctx.to.tag.is_some() {
            match self.dialog_of(&ctx) {
                Some(call) => self.on_reinvite(now, from, req, ctx, call),
                None => {
                    self.reply_stateless(now, from, &req, &ctx, 481, reason_phrase(481), vec![])
                }
            }
            return;
        }
        let origin = (
            ctx.call_id.clone(),
            ctx.from.tag.clone().unwrap_or_default(),
            ctx.cseq.seq,
        );
        if let Some(&call) = self.by_origin.get(&origin) {
            // Same INVITE re-sent with another branch (RFC 2543 peers, some broken UAs).
            self.resend_invite_response(call, |t| !t.reinvite);
            return;
        }
        if !trusted && !self.authenticated(now, from, &req, &ctx) {
            return;
        }
        if self.draining {
            // Stateless: a load balancer fails over to another node on this 503.
            let retry = self.drain_retry_after().to_string();
            self.reply_stateless(
                now,
                from,
                &req,
                &ctx,
                503,
                "Service Unavailable (draining)",
                vec![("Retry-After", retry)],
            );
            return;
        }
        let source = crate::access::canonical(from.addr.ip());
        if let Err(reason) = self.admission.admit(&self.config.access.calls, now, source) {
            // Stateless, like the 401/403: an overload must not cost a transaction per INVITE.
            let retry = match reason {
                crate::access::CallRefusal::TooFast
                | crate::access::CallRefusal::TooFastFromSource => 1,
                _ => self.config.access.calls.retry_after_secs.max(1),
            };
            self.out
                .push_back(super::Output::Security(SecurityEvent::CallRefused {
                    source,
                    reason,
                }));
            let phrase = format!("Service Unavailable ({})", reason.label());
            self.reply_stateless(
                now,
                from,
                &req,
                &ctx,
                503,
                &phrase,
                vec![("Retry-After", retry.to_string())],
            );
            return;
        }
        self.new_call(now, from, req, ctx, origin, source);
    }

    /// Digest authentication of an INVITE from an untrusted source against the `[[user]]`s;
    /// false when it was answered 401 (challenge) or 403 (wrong credentials).
    fn authenticated(&mut self, now: Instant, from: Peer, req: &Request, ctx: &Ctx) -> bool {
        let Some((registrar, epoch)) = self.registrar.as_ref() else {
            self.refuse_untrusted(now, from, req, ctx);
            return false;
        };
        let clock = now.saturating_duration_since(*epoch).as_secs();
        match registrar.authenticate(clock, req) {
            Authn::User(_) => true,
            Authn::Challenge(reply) => {
                self.reply_stateless(
                    now,
                    from,
                    req,
                    ctx,
                    reply.status,
                    reply.reason,
                    reply.headers,
                );
                false
            }
            Authn::Forbidden(user) => {
                let source = crate::access::canonical(from.addr.ip());
                self.out
                    .push_back(super::Output::Security(SecurityEvent::AuthFailed {
                        source,
                        user: user.chars().take(64).collect(),
                        method: req.method.as_str().to_string(),
                    }));
                self.reply_stateless(now, from, req, ctx, 403, reason_phrase(403), vec![]);
                false
            }
        }
    }

    fn resend_invite_response(&mut self, call: CallKey, which: impl Fn(&InviteTx) -> bool) {
        let Some(ist) = self.calls.get(&call).and_then(|c| c.ist.as_ref()) else {
            return;
        };
        if !which(ist) || ist.acked {
            return;
        }
        if let Some(bytes) = ist.last.clone() {
            let peer = ist.peer;
            self.transmit(peer, bytes);
        }
    }

    fn new_call(
        &mut self,
        now: Instant,
        from: Peer,
        req: Request,
        ctx: Ctx,
        origin: (String, String, u32),
        source: std::net::IpAddr,
    ) {
        let key = CallKey(self.next_call);
        self.next_call += 1;
        let local_tag = self.new_tag();
        let session_id = self.next_id() >> 2;
        let h = &req.headers;
        // An RFC 2543 INVITE may have no Contact: the From URI is the target then (RFC 4475
        // `inv2543`).
        let remote_target = match h.get_all("Contact").first() {
            Some(v) => NameAddr::parse(v).ok().map(|n| n.uri),
            None => Some(ctx.from.uri.clone()),
        }
        // Where our BYE and re-INVITE go: it must be a SIP URI we can send to.
        .filter(|uri| usable_target(uri));
        // So must every hop of the route set (a strict router's URI becomes our BYE's
        // Request-URI).
        let route_set: Option<Vec<String>> = h
            .get_all("Record-Route")
            .into_iter()
            .map(|v| {
                NameAddr::parse(v)
                    .ok()
                    .filter(|n| usable_target(&n.uri))
                    .map(|_| v.to_string())
            })
            .collect();
        let call = Call {
            peer: from,
            call_id: ctx.call_id.clone(),
            local_tag: local_tag.clone(),
            remote_from: h.get("From").unwrap_or_default().to_string(),
            remote_to: h.get("To").unwrap_or_default().to_string(),
            remote_target: remote_target.clone().unwrap_or_default(),
            route_set: route_set.clone().unwrap_or_default(),
            remote_cseq: ctx.cseq.seq,
            local_cseq: 0,
            origin: origin.clone(),
            initial_key: ctx.key.clone(),
            media: None,
            local_rtp: None,
            session_id,
            sdp_version: 1,
            ist: None,
            bye: None,
            answered: false,
            confirmed: false,
            ended: false,
            linger_until: None,
            admitted_from: Some(source),
        };
        self.calls.insert(key, call);
        self.by_dialog.insert((ctx.call_id.clone(), local_tag), key);
        self.by_invite.insert(ctx.key.clone(), key);
        self.by_origin.insert(origin, key);
        let offer = match (remote_target, route_set) {
            (None, _) => Err(Refusal {
                status: 400,
                reason: "Bad Request (Missing or Invalid Contact)".into(),
                headers: vec![],
            }),
            (_, None) => Err(Refusal {
                status: 400,
                reason: "Bad Request (Invalid Record-Route)".into(),
                headers: vec![],
            }),
            (Some(_), Some(_)) => self.read_offer(&req),
        };
        let incoming = offer.as_ref().ok().map(|media| IncomingCall {
            call: key,
            call_id: ctx.call_id.clone(),
            from: ctx.from.clone(),
            to: ctx.to.clone(),
            request_uri: req.uri.clone(),
            media: *media,
            headers: req.headers.clone(),
            peer: from,
        });
        if let Some(c) = self.calls.get_mut(&key) {
            c.ist = Some(InviteTx {
                key: ctx.key.clone(),
                req,
                ctx,
                peer: from,
                reinvite: false,
                last: None,
                final_status: None,
                acked: false,
                retrans: None,
                give_up: None,
            });
        }
        let trying = self.dialog_response(key, 100, None);
        self.ist_send(now, key, trying);
        match offer {
            Ok(media) => {
                if let Some(c) = self.calls.get_mut(&key) {
                    c.media = Some(media);
                }
                if let Some(incoming) = incoming {
                    self.emit(CallEvent::Incoming(Box::new(incoming)));
                }
            }
            Err(refusal) => {
                // Refused by us: the application never sees this call.
                if let Some(c) = self.calls.get_mut(&key) {
                    c.ended = true;
                    if let Some(source) = c.admitted_from.take() {
                        self.admission.release(source);
                    }
                }
                self.refuse(now, key, refusal);
            }
        }
    }

    fn refuse(&mut self, now: Instant, call: CallKey, refusal: Refusal) {
        let mut r = self.dialog_response(call, refusal.status, Some(&refusal.reason));
        for (n, v) in refusal.headers {
            r.headers.push(n, v);
        }
        self.ist_send(now, call, r);
        self.maybe_finish(now, call);
    }

    /// The SDP offer of an INVITE, negotiated; or the response that refuses it.
    fn read_offer(&self, req: &Request) -> Result<Negotiated, Refusal> {
        if let Some(accept) = req.headers.get("Accept") {
            // Our answer is SDP: a caller that accepts none cannot read it (RFC 4475 `sdp01`).
            let takes_sdp = accept.split(',').any(|t| {
                let t = t
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                matches!(t.as_str(), "application/sdp" | "application/*" | "*/*")
            });
            if !takes_sdp && !accept.trim().is_empty() {
                return Err(Refusal {
                    status: 406,
                    reason: reason_phrase(406).into(),
                    headers: vec![(
                        "Warning",
                        warning(
                            &self.config,
                            399,
                            "the answer is application/sdp, not in Accept",
                        ),
                    )],
                });
            }
        }
        if req.body.is_empty() {
            return Err(Refusal {
                status: 400,
                reason: "Bad Request (Missing SDP Offer)".into(),
                headers: vec![],
            });
        }
        if let Some(ct) = content_type(req) {
            if ct != "application/sdp" {
                return Err(Refusal {
                    status: 415,
                    reason: reason_phrase(415).into(),
                    headers: vec![("Accept", "application/sdp".into())],
                });
            }
        }
        match parse_offer(&req.body)
            .and_then(|o| negotiate_with(&o, self.config.opus))
            .map(|n| self.with_local_key(n))
        {
            Ok(n) if !self.media_family_available(n.remote_rtp.ip()) => Err(self.not_acceptable(
                301,
                &format!(
                    "Incompatible network address formats: no {} media here",
                    family_name(n.remote_rtp.ip())
                ),
            )),
            Ok(n) => Ok(n),
            Err(e @ (SdpError::NoCommonCodec(_) | SdpError::NoAudio)) => {
                Err(self.not_acceptable(305, &format!("Incompatible media format: {e}")))
            }
            Err(e @ SdpError::NoCrypto) => {
                Err(self.not_acceptable(306, &format!("Attribute not understood: {e}")))
            }
            Err(e) => Err(Refusal {
                status: 400,
                reason: "Bad Request (Invalid SDP)".into(),
                headers: vec![("Warning", warning(&self.config, 399, &e.to_string()))],
            }),
        }
    }

    /// SRTP answers carry a key of our own, fresh and random for each call.
    fn with_local_key(&self, mut n: Negotiated) -> Negotiated {
        if let Some(sdes) = n.srtp.as_mut() {
            sdes.local_key = if self.config.deterministic_keys {
                let mut key = [0u8; 30];
                let mut x = super::build::mix(self.config.seed ^ n.remote_rtp.port() as u64);
                for chunk in key.chunks_mut(8) {
                    x = super::build::mix(x);
                    let bytes = x.to_le_bytes();
                    chunk.copy_from_slice(&bytes[..chunk.len()]);
                }
                key
            } else {
                rand::random()
            };
        }
        n
    }

    /// A re-offer keeps the call's address family: its media socket is of one family, and an
    /// answer naming it could not reach the other (an old-style hold to `0.0.0.0` is fine).
    fn same_family(&self, call: CallKey, media: Negotiated) -> Result<Negotiated, Refusal> {
        let remote = media.remote_rtp.ip();
        let local = self.calls.get(&call).and_then(|c| c.local_rtp);
        match local {
            Some(local) if local.is_ipv4() != remote.is_ipv4() && !remote.is_unspecified() => {
                Err(self.not_acceptable(
                    301,
                    &format!(
                        "Incompatible network address formats: this call's media is {}",
                        family_name(local.ip())
                    ),
                ))
            }
            _ => Ok(media),
        }
    }

    /// 488 with a Warning (RFC 3261 §20.43) that says why.
    fn not_acceptable(&self, warn_code: u16, text: &str) -> Refusal {
        Refusal {
            status: 488,
            reason: reason_phrase(488).into(),
            headers: vec![("Warning", warning(&self.config, warn_code, text))],
        }
    }

    fn media_family_available(&self, ip: std::net::IpAddr) -> bool {
        match ip {
            std::net::IpAddr::V4(_) => self.config.media_ipv4,
            std::net::IpAddr::V6(_) => self.config.media_ipv6,
        }
    }

    fn on_reinvite(&mut self, now: Instant, from: Peer, req: Request, ctx: Ctx, call: CallKey) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let busy = !c.confirmed
            || c.ist
                .as_ref()
                .is_some_and(|t| !t.acked && t.final_status.is_some_and(|s| s < 300));
        if c.ended || c.bye.is_some() {
            self.reply_in_dialog(now, from, &req, &ctx, 481, reason_phrase(481));
            return;
        }
        if busy {
            // An offer/answer exchange is still open (RFC 3261 §14.2).
            self.reply_in_dialog(now, from, &req, &ctx, 491, reason_phrase(491));
            return;
        }
        if !self.accept_cseq(now, from, &req, &ctx, call) {
            return;
        }
        self.follow_connection(call, from);
        let offer = (!req.body.is_empty()).then(|| {
            self.read_offer(&req)
                .and_then(|media| self.same_family(call, media))
        });
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if let Some(target) = req
            .headers
            .get_all("Contact")
            .first()
            .and_then(|v| NameAddr::parse(v).ok())
            .filter(|t| usable_target(&t.uri))
        {
            c.remote_target = target.uri;
        }
        if let Some(old) = c.ist.take() {
            if old.key != c.initial_key {
                self.by_invite.remove(&old.key);
            }
        }
        self.by_invite.insert(ctx.key.clone(), call);
        c.ist = Some(InviteTx {
            key: ctx.key.clone(),
            req,
            ctx,
            peer: from,
            reinvite: true,
            last: None,
            final_status: None,
            acked: false,
            retrans: None,
            give_up: None,
        });
        let trying = self.dialog_response(call, 100, None);
        self.ist_send(now, call, trying);
        match offer {
            // No offer: ours goes in the 200 unchanged (the answer in the ACK is not needed).
            None => {
                let ok = self.dialog_response(call, 200, None);
                self.ist_send(now, call, ok);
            }
            Some(Ok(mut media)) => {
                if let Some(c) = self.calls.get_mut(&call) {
                    // The same crypto suite and tag keep our key (RFC 4568 §7.1.4): the
                    // stream goes on without a rekey.
                    if let (Some(new), Some(old)) =
                        (media.srtp.as_mut(), c.media.and_then(|m| m.srtp))
                    {
                        if new.tag == old.tag && new.suite == old.suite {
                            new.local_key = old.local_key;
                        }
                    }
                    c.media = Some(media);
                    c.sdp_version += 1;
                }
                let ok = self.dialog_response(call, 200, None);
                self.ist_send(now, call, ok);
                self.emit(CallEvent::MediaChanged { call, media });
            }
            // A refused re-offer leaves the session as it was (RFC 3261 §14.2).
            Some(Err(refusal)) => self.refuse(now, call, refusal),
        }
    }

    fn on_ack(&mut self, now: Instant, ctx: &Ctx) {
        let call = self
            .by_invite
            .get(&ctx.key)
            .copied()
            .or_else(|| self.dialog_of(ctx));
        let Some(call) = call else {
            return;
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(ist) = c.ist.as_mut() else {
            return;
        };
        if ist.acked || ist.ctx.cseq.seq != ctx.cseq.seq {
            return;
        }
        let Some(status) = ist.final_status else {
            return;
        };
        ist.acked = true;
        ist.retrans = None;
        ist.give_up = None;
        let confirms = !ist.reinvite && (200..300).contains(&status) && !c.confirmed && !c.ended;
        if confirms {
            c.confirmed = true;
            self.emit(CallEvent::Confirmed { call });
        }
        self.maybe_finish(now, call);
    }

    fn on_cancel(&mut self, now: Instant, from: Peer, req: &Request, ctx: &Ctx) {
        let invite_key = ctx.key.with_method(&Method::Invite);
        let Some(&call) = self.by_invite.get(&invite_key) else {
            self.reply_stateless(now, from, req, ctx, 481, reason_phrase(481), vec![]);
            return;
        };
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let tag = c.local_tag.clone();
        let pending = c.awaiting_final() && c.ist.as_ref().is_some_and(|t| t.key == invite_key);
        let r = response_to(&self.config, req, ctx, from, 200, "OK", Some(&tag));
        self.send_nist(now, from, req, ctx, r);
        if pending {
            let terminated = self.dialog_response(call, 487, None);
            self.ist_send(now, call, terminated);
            self.end(call, EndReason::Cancelled);
            self.maybe_finish(now, call);
        }
    }

    fn on_bye(&mut self, now: Instant, from: Peer, req: &Request, ctx: &Ctx) {
        let live = self.dialog_of(ctx).filter(|k| {
            self.calls
                .get(k)
                .is_some_and(|c| !c.ended || c.bye.is_some())
        });
        let Some(call) = live else {
            self.reply_in_dialog_or_stateless(now, from, req, ctx, 481);
            return;
        };
        if !self.accept_cseq(now, from, req, ctx, call) {
            return;
        }
        self.reply_in_dialog(now, from, req, ctx, 200, "OK");
        if self.calls.get(&call).is_some_and(Call::awaiting_final) {
            // BYE on an early dialog: the INVITE still needs its final response (§15.1.2).
            let terminated = self.dialog_response(call, 487, None);
            self.ist_send(now, call, terminated);
        }
        if let Some(c) = self.calls.get_mut(&call) {
            if let Some(ist) = c
                .ist
                .as_mut()
                .filter(|t| t.final_status.is_some_and(|s| s < 300))
            {
                // The caller is gone: stop retransmitting our 2xx.
                ist.acked = true;
                ist.retrans = None;
                ist.give_up = None;
            }
            if let Some(b) = c.bye.take() {
                self.by_bye.remove(&b.branch);
            }
        }
        self.end(call, EndReason::RemoteBye);
        self.maybe_finish(now, call);
    }

    fn reply_in_dialog_or_stateless(
        &mut self,
        now: Instant,
        from: Peer,
        req: &Request,
        ctx: &Ctx,
        status: u16,
    ) {
        if ctx.to.tag.is_some() {
            self.reply_in_dialog(now, from, req, ctx, status, reason_phrase(status));
        } else {
            self.reply_stateless(now, from, req, ctx, status, reason_phrase(status), vec![]);
        }
    }

    fn on_info(&mut self, now: Instant, from: Peer, req: &Request, ctx: &Ctx) {
        let live = self
            .dialog_of(ctx)
            .filter(|k| self.calls.get(k).is_some_and(|c| !c.ended));
        let Some(call) = live else {
            self.reply_in_dialog_or_stateless(now, from, req, ctx, 481);
            return;
        };
        if !self.accept_cseq(now, from, req, ctx, call) {
            return;
        }
        self.follow_connection(call, from);
        self.reply_in_dialog(now, from, req, ctx, 200, "OK");
        let dtmf = match content_type(req).as_deref() {
            Some("application/dtmf-relay") => parse_dtmf_relay(&req.body),
            Some("application/dtmf") => parse_dtmf(&req.body),
            _ => None,
        };
        if let Some((digit, duration_ms)) = dtmf {
            self.emit(CallEvent::Dtmf {
                call,
                digit,
                duration_ms,
            });
        }
    }
}
