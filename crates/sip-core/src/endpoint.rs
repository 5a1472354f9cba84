//! The UAS endpoint: transactions (RFC 3261 §17) and dialogs (§12) for calls into Hark.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::message::{Headers, NameAddr};
use crate::sdp::Negotiated;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
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
    pub user_agent: String,
    /// Seeds tags, branches and SDP session ids.
    pub seed: u64,
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl EndpointConfig {
    pub fn new(local_addr: SocketAddr) -> Self {
        Self {
            local_addr,
            user_agent: concat!("Hark/", env!("CARGO_PKG_VERSION")).to_string(),
            seed: 0,
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

#[derive(Debug)]
pub enum Output {
    Transmit { to: Peer, bytes: Vec<u8> },
    Event(CallEvent),
    /// Something was wrong with input and was answered or dropped; for the log.
    Rejected { from: Peer, reason: String },
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
    Dtmf { call: CallKey, digit: char, duration_ms: u32 },
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

pub struct Endpoint {
    config: EndpointConfig,
}

impl Endpoint {
    pub fn new(config: EndpointConfig) -> Self {
        todo!()
    }
    /// One datagram (UDP) or one framed message (TCP).
    pub fn handle_input(&mut self, now: Instant, from: Peer, bytes: &[u8]) {
        todo!()
    }
    pub fn handle_timeout(&mut self, now: Instant) {
        todo!()
    }
    pub fn poll_output(&mut self) -> Option<Output> {
        todo!()
    }
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }
    /// 180 Ringing.
    pub fn ring(&mut self, now: Instant, call: CallKey) -> Result<(), CallError> {
        todo!()
    }
    /// 200 OK with the SDP answer naming `local_rtp`; retransmitted until ACK (Timers G/H).
    pub fn answer(&mut self, now: Instant, call: CallKey, local_rtp: SocketAddr) -> Result<(), CallError> {
        todo!()
    }
    /// A final non-2xx response before answer (486, 603, 480, 500, 503…).
    pub fn reject(&mut self, now: Instant, call: CallKey, status: u16) -> Result<(), CallError> {
        todo!()
    }
    /// BYE once answered (Timers E/F); before answer, the same as `reject(480)`.
    pub fn hangup(&mut self, now: Instant, call: CallKey) -> Result<(), CallError> {
        todo!()
    }
    /// Calls that have not ended.
    pub fn call_count(&self) -> usize {
        todo!()
    }
}
