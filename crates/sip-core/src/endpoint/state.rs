//! Per-call and per-transaction state kept by the endpoint.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::message::{header_tag, CSeq, Method, NameAddr, ParseError, Request, Via};
use crate::sdp::Negotiated;

use super::Peer;

/// Server transaction identity (RFC 3261 §17.2.3). ACK and CANCEL look up the INVITE's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum TxKey {
    Branch {
        branch: String,
        sent_by: String,
        method: String,
    },
    /// RFC 2543 peers without the magic cookie.
    Legacy {
        call_id: String,
        cseq: u32,
        from_tag: String,
        via: String,
        method: String,
    },
}

impl TxKey {
    pub fn with_method(&self, m: &Method) -> TxKey {
        let mut k = self.clone();
        match &mut k {
            TxKey::Branch { method, .. } | TxKey::Legacy { method, .. } => {
                *method = m.as_str().to_string();
            }
        }
        k
    }
}

/// The fields every request must carry, read and checked once.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub top_via: Via,
    pub call_id: String,
    pub cseq: CSeq,
    pub from: NameAddr,
    pub to: NameAddr,
    pub key: TxKey,
}

impl Ctx {
    pub fn read(req: &Request) -> Result<Ctx, ParseError> {
        let h = &req.headers;
        let via_raw = h
            .get_all("Via")
            .first()
            .copied()
            .ok_or(ParseError::MissingHeader("Via"))?;
        let top_via = Via::parse(via_raw)?;
        let call_id = h
            .get("Call-ID")
            .ok_or(ParseError::MissingHeader("Call-ID"))?;
        if call_id.is_empty() || call_id.contains(char::is_whitespace) {
            return Err(ParseError::InvalidHeader {
                name: "Call-ID",
                value: call_id.chars().take(80).collect(),
            });
        }
        let cseq = CSeq::parse(h.get("CSeq").ok_or(ParseError::MissingHeader("CSeq"))?)?;
        let from = named(
            h.get("From").ok_or(ParseError::MissingHeader("From"))?,
            "From",
        )?;
        let to = named(h.get("To").ok_or(ParseError::MissingHeader("To"))?, "To")?;
        let method = match req.method {
            Method::Ack => "INVITE".to_string(),
            ref m => m.as_str().to_string(),
        };
        let key = match top_via.branch() {
            // A bare magic cookie is no unique branch (RFC 4475 `badbranch`): RFC 2543 matching.
            Some(b) if b.starts_with("z9hG4bK") && b.len() > "z9hG4bK".len() => TxKey::Branch {
                branch: b.to_string(),
                sent_by: top_via.sent_by.to_ascii_lowercase(),
                method,
            },
            _ => TxKey::Legacy {
                call_id: call_id.to_string(),
                cseq: cseq.seq,
                from_tag: from.tag.clone().unwrap_or_default(),
                via: via_raw.to_string(),
                method,
            },
        };
        Ok(Ctx {
            top_via,
            call_id: call_id.to_string(),
            cseq,
            from,
            to,
            key,
        })
    }
}

fn named(value: &str, name: &'static str) -> Result<NameAddr, ParseError> {
    NameAddr::parse(value).map_err(|_| ParseError::InvalidHeader {
        name,
        value: value.chars().take(80).collect(),
    })
}

/// A retransmission timer: next firing and the interval that led to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retrans {
    pub at: Instant,
    pub interval: Duration,
}

/// An INVITE server transaction (initial or re-INVITE), including the TU's 2xx retransmission.
#[derive(Debug)]
pub(crate) struct InviteTx {
    pub key: TxKey,
    pub req: Request,
    pub ctx: Ctx,
    /// Where the request came from; its responses go back there.
    pub peer: Peer,
    pub reinvite: bool,
    pub last: Option<Vec<u8>>,
    pub final_status: Option<u16>,
    pub acked: bool,
    /// Timer G (also drives the 2xx retransmission).
    pub retrans: Option<Retrans>,
    /// Timer H.
    pub give_up: Option<Instant>,
}

/// Our BYE (non-INVITE client transaction, RFC 3261 §17.1.2).
#[derive(Debug)]
pub(crate) struct ByeTx {
    pub branch: String,
    pub bytes: Vec<u8>,
    /// Timer E.
    pub retrans: Option<Retrans>,
    /// Timer F.
    pub give_up: Instant,
}

/// A stored response to a non-INVITE request, re-sent on retransmission until Timer J.
#[derive(Debug)]
pub(crate) struct StoredResponse {
    pub bytes: Vec<u8>,
    pub forget_at: Instant,
}

#[derive(Debug)]
pub(crate) struct Call {
    pub peer: Peer,
    pub call_id: String,
    pub local_tag: String,
    /// Their From (with tag), as received: our To on requests we send.
    pub remote_from: String,
    /// Their To, as received (without our tag): our From on requests we send.
    pub remote_to: String,
    pub remote_target: String,
    pub route_set: Vec<String>,
    pub remote_cseq: u32,
    pub local_cseq: u32,
    /// (Call-ID, From tag, CSeq) of the initial INVITE, to catch re-sent INVITEs with new branches.
    pub origin: (String, String, u32),
    pub initial_key: TxKey,
    pub media: Option<Negotiated>,
    pub local_rtp: Option<SocketAddr>,
    pub session_id: u64,
    pub sdp_version: u64,
    pub ist: Option<InviteTx>,
    pub bye: Option<ByeTx>,
    pub answered: bool,
    pub confirmed: bool,
    /// `Ended` was emitted (or the call was never reported).
    pub ended: bool,
    /// Set once nothing is pending; the record is kept this long to absorb stray retransmissions.
    pub linger_until: Option<Instant>,
    /// The source this call counts against in the call caps, until it ends.
    pub admitted_from: Option<std::net::IpAddr>,
}

impl Call {
    pub fn remote_tag(&self) -> Option<String> {
        header_tag(&self.remote_from)
    }
    /// The initial INVITE transaction is still waiting for our final response.
    pub fn awaiting_final(&self) -> bool {
        matches!(&self.ist, Some(t) if !t.reinvite && t.final_status.is_none())
    }
    /// Nothing is left to send or wait for.
    pub fn next_deadline(&self) -> Option<(Instant, TimerReason)> {
        let mut s = Soonest::default();
        if let Some(t) = &self.ist {
            s.consider(t.retrans.map(|r| r.at), TimerReason::ResponseRetransmit);
            s.consider(t.give_up, TimerReason::AckTimeout);
        }
        if let Some(b) = &self.bye {
            s.consider(b.retrans.map(|r| r.at), TimerReason::ByeRetransmit);
            s.consider(Some(b.give_up), TimerReason::ByeTimeout);
        }
        s.consider(self.linger_until, TimerReason::ForgetCall);
        s.0
    }
    pub fn finished(&self) -> bool {
        self.ended && self.bye.is_none() && !matches!(&self.ist, Some(t) if !t.acked)
    }
}

/// Why the endpoint wants to be woken (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerReason {
    /// Timer G / 2xx retransmission.
    ResponseRetransmit,
    /// Timer H: no ACK for our final response.
    AckTimeout,
    /// Timer E: retransmit our BYE.
    ByeRetransmit,
    /// Timer F: our BYE got no final response.
    ByeTimeout,
    /// Timer J: forget a non-INVITE server transaction.
    ForgetTransaction,
    /// Drop the record of a finished call.
    ForgetCall,
    /// Forget stale rate-limit counts and ended bans.
    ForgetSources,
}

/// The earliest deadline and why.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Soonest(pub Option<(Instant, TimerReason)>);

impl Soonest {
    pub fn consider(&mut self, at: Option<Instant>, reason: TimerReason) {
        if let Some(at) = at {
            if !matches!(self.0, Some((cur, _)) if cur <= at) {
                self.0 = Some((at, reason));
            }
        }
    }
}
