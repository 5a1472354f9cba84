//! Building the messages the endpoint sends, and its deterministic ids.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use crate::message::{reason_phrase, Method, Request, Response, Via};
use crate::sdp::build_answer;

use super::state::{Call, Ctx};
use super::{CallKey, Endpoint, EndpointConfig, Peer, Transport};

pub(super) const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO";

/// Methods of the IANA SIP registry Hark knows and does not serve: 405 with Allow (RFC 3261
/// §8.2.1). Any other method is unknown: 501 (§21.5.2, RFC 4475 `intmeth`).
pub(super) const KNOWN_UNSUPPORTED: [&str; 9] = [
    "REGISTER",
    "PRACK",
    "UPDATE",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "MESSAGE",
    "PUBLISH",
    "PING",
];
pub(super) const ACCEPT: &str = "application/sdp, application/dtmf-relay, application/dtmf";

/// SplitMix64: a good spread from a counter without global state.
pub(super) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Endpoint {
    pub(super) fn next_id(&mut self) -> u64 {
        self.counter += 1;
        mix(self.config.seed ^ mix(self.counter))
    }
    pub(super) fn new_tag(&mut self) -> String {
        format!("{:016x}", self.next_id())
    }
    pub(super) fn new_branch(&mut self) -> String {
        format!("z9hG4bK{:016x}", self.next_id())
    }

    /// A To-tag for responses sent without a call: the same for a retransmitted request.
    pub(super) fn stateless_tag(&self, ctx: &Ctx) -> String {
        let mut h = DefaultHasher::new();
        (self.config.seed, &ctx.call_id, &ctx.from.tag, ctx.cseq.seq).hash(&mut h);
        format!("{:016x}", mix(h.finish()))
    }

    /// A response on the call's current INVITE transaction, with our tag, and for 18x/2xx the
    /// dialog headers (Contact, Record-Route) and for 2xx the SDP answer.
    pub(super) fn dialog_response(
        &self,
        call: CallKey,
        status: u16,
        reason: Option<&str>,
    ) -> Response {
        let Some(c) = self.calls.get(&call) else {
            return Response::new(500, reason_phrase(500));
        };
        let Some(ist) = &c.ist else {
            return Response::new(500, reason_phrase(500));
        };
        let reason = reason.unwrap_or_else(|| reason_phrase(status));
        let mut r = response_to(
            &self.config,
            &ist.req,
            &ist.ctx,
            ist.peer,
            status,
            reason,
            Some(&c.local_tag),
        );
        if (101..300).contains(&status) {
            if !ist.reinvite {
                for rr in ist.req.headers.get_all("Record-Route") {
                    r.headers.push("Record-Route", rr);
                }
            }
            r.headers.push(
                "Contact",
                contact(&self.config, ist.peer.transport, &ist.req.uri),
            );
        }
        if (200..300).contains(&status) {
            r.headers.push("Allow", ALLOW);
            if let (Some(media), Some(local)) = (c.media, c.local_rtp) {
                r.headers.push("Content-Type", "application/sdp");
                r.body = build_answer(&media, local, c.session_id, c.sdp_version).into_bytes();
            }
        }
        r
    }
}

/// Our Contact for a dialog whose request came over `transport` to `request_uri`: over TLS a
/// `sips:` URI when the request was `sips:` (RFC 3261 §8.1.1.8), else `transport=tls`.
pub(super) fn contact(cfg: &EndpointConfig, transport: Transport, request_uri: &str) -> String {
    match transport {
        Transport::Udp => format!("<sip:hark@{}>", cfg.local_addr),
        Transport::Tcp => format!("<sip:hark@{};transport=tcp>", cfg.local_addr),
        Transport::Tls => {
            let addr = cfg.tls_addr.unwrap_or(cfg.local_addr);
            if request_uri
                .get(..5)
                .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
            {
                format!("<sips:hark@{addr}>")
            } else {
                format!("<sip:hark@{addr};transport=tls>")
            }
        }
    }
}

/// RFC 3261 §18.2.1 `received` and RFC 3581 `rport` on the top Via.
fn stamp(via: &mut Via, src: SocketAddr) {
    if via.has_rport() {
        via.set_param("rport", Some(src.port().to_string()));
        via.set_param("received", Some(src.ip().to_string()));
    } else if via.host() != src.ip().to_string() {
        via.set_param("received", Some(src.ip().to_string()));
    }
}

/// The response skeleton of RFC 3261 §8.2.6.2: Vias, From, To (plus our tag), Call-ID, CSeq.
pub(super) fn response_to(
    cfg: &EndpointConfig,
    req: &Request,
    ctx: &Ctx,
    from: Peer,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
) -> Response {
    let mut r = Response::new(status, reason);
    for (i, v) in req.headers.get_all("Via").into_iter().enumerate() {
        if i == 0 {
            let mut top = ctx.top_via.clone();
            stamp(&mut top, from.addr);
            r.headers.push("Via", top.to_string());
        } else {
            r.headers.push("Via", v);
        }
    }
    r.headers
        .push("From", req.headers.get("From").unwrap_or_default());
    let to = req.headers.get("To").unwrap_or_default();
    match to_tag {
        Some(tag) if ctx.to.tag.is_none() && status > 100 => {
            r.headers.push("To", format!("{to};tag={tag}"));
        }
        _ => r.headers.push("To", to),
    }
    r.headers.push("Call-ID", ctx.call_id.as_str());
    r.headers.push("CSeq", ctx.cseq.to_string());
    r.headers.push("Server", cfg.user_agent.as_str());
    r
}

/// A 400 (or 505) for a request whose own Via/From/To/Call-ID/CSeq could not be read (RFC 4475
/// `insuf`, `quotbal`, `scalar02`): those headers are copied as they came, the To gets a tag
/// when it has none. `None` without any Via (there is no transaction to answer).
pub(super) fn raw_bad_request(
    cfg: &EndpointConfig,
    req: &Request,
    status: u16,
    reason: &str,
) -> Option<Response> {
    let vias = req.headers.get_all("Via");
    vias.first()?;
    let mut r = Response::new(status, reason);
    for v in vias {
        r.headers.push("Via", v);
    }
    for name in ["From", "Call-ID", "CSeq"] {
        if let Some(v) = req.headers.get(name) {
            r.headers.push(name, v);
        }
    }
    if let Some(to) = req.headers.get("To") {
        let tagged = to.to_ascii_lowercase().contains(";tag=");
        let mut h = DefaultHasher::new();
        (
            cfg.seed,
            req.headers.get("Call-ID"),
            req.headers.get("From"),
        )
            .hash(&mut h);
        let to = if tagged {
            to.to_string()
        } else {
            format!("{to};tag={:016x}", mix(h.finish()))
        };
        r.headers.push("To", to);
    }
    r.headers.push("Server", cfg.user_agent.as_str());
    Some(r)
}

/// `"text"` for a Warning header: quotes and control characters would break the header.
pub(super) fn warning(cfg: &EndpointConfig, code: u16, text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '\''
            } else {
                c
            }
        })
        .take(200)
        .collect();
    format!("{code} {} \"{clean}\"", cfg.local_addr)
}

/// Our BYE (RFC 3261 §15.1.1, §12.2.1.1): remote target, route set, swapped From/To.
pub(super) fn bye(cfg: &EndpointConfig, c: &Call, branch: &str) -> Request {
    let strict = c
        .route_set
        .first()
        .is_some_and(|r| !r.to_ascii_lowercase().contains(";lr"));
    let mut routes: Vec<String> = c.route_set.clone();
    let uri = if strict {
        // Strict router: it goes in the Request-URI, the remote target at the end of Route.
        let first = routes.remove(0);
        routes.push(format!("<{}>", c.remote_target));
        strip_angle(&first).to_string()
    } else {
        c.remote_target.clone()
    };
    let mut r = Request::new(Method::Bye, uri);
    let (transport, sent_by) = match c.peer.transport {
        Transport::Udp => ("UDP", cfg.local_addr),
        Transport::Tcp => ("TCP", cfg.local_addr),
        Transport::Tls => ("TLS", cfg.tls_addr.unwrap_or(cfg.local_addr)),
    };
    r.headers.push(
        "Via",
        format!("SIP/2.0/{transport} {sent_by};branch={branch};rport"),
    );
    r.headers.push("Max-Forwards", "70");
    for route in routes {
        r.headers.push("Route", route);
    }
    r.headers
        .push("From", format!("{};tag={}", c.remote_to, c.local_tag));
    r.headers.push("To", c.remote_from.as_str());
    r.headers.push("Call-ID", c.call_id.as_str());
    r.headers.push("CSeq", format!("{} BYE", c.local_cseq));
    r.headers.push("User-Agent", cfg.user_agent.as_str());
    r
}

fn strip_angle(route: &str) -> &str {
    let r = route.trim();
    match (r.find('<'), r.find('>')) {
        (Some(a), Some(b)) if a < b => r.get(a + 1..b).unwrap_or(r),
        _ => r,
    }
}
