//! The SIP edge: UDP and TCP sockets around the sans-IO [`sip_core::Endpoint`], and the routing
//! of call events to call tasks.
//!
//! Every channel here is bounded. The SIP task serves every call, so it never waits on one: what
//! it sends to a call or a TCP connection goes by `try_send`, and a full channel is logged and
//! counted in `hark_channel_overflow_total{channel=…}`. TCP readers may wait for the SIP task
//! (backpressure reaches the peer through TCP flow control).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_api::Metrics;
use sip_core::endpoint::SecurityEvent;
use sip_core::framing::StreamFramer;
use sip_core::{
    CallEvent, CallKey, Endpoint, EndpointConfig, IncomingCall, Output, Peer, Transport,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

/// Call tasks → SIP task. A call sends at most four commands in its life; at shutdown every call
/// sends its hangup at once, so this holds the commands of 16 384 calls (five times the 3000 of
/// `sipp-scenarios/load`). Capacity costs nothing until used: tokio allocates slots in blocks.
const COMMANDS_CAPACITY: usize = 16_384;
/// SIP task → one call: ACK, re-INVITEs, INFO keys and the end. A call task reads them within
/// milliseconds; 64 unread means it is stuck.
const CALL_EVENTS_CAPACITY: usize = 64;
/// TCP connections → SIP task (messages, open, close); readers wait when it is full.
const TCP_EVENTS_CAPACITY: usize = 1024;
/// SIP task → one TCP connection's writer, in messages. A trunk that carries every call on one
/// connection gets a BYE per call at shutdown; 4096 covers the load test's 3000 with no write
/// progress at all. A connection that falls further behind is closed (a slow reader must not
/// grow memory): at most ~4 MiB of ~1 KiB messages.
const TCP_WRITE_CAPACITY: usize = 4096;

/// `hark_channel_overflow_total` labels of this module's channels.
pub const CHANNEL_COMMANDS: &str = "sip_commands";
pub const CHANNEL_CALL_EVENTS: &str = "call_events";
pub const CHANNEL_TCP_EVENTS: &str = "sip_tcp_events";
pub const CHANNEL_TCP_WRITE: &str = "sip_tcp_write";

/// Caps and idle timeout of SIP over TCP (`sip.tcp_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Open connections at most, from all sources.
    pub max_connections: usize,
    /// Open connections at most from one source IP.
    pub max_per_source: usize,
    /// A connection with no traffic either way for this long is closed, unless it carries a call.
    pub idle_timeout: Duration,
}

/// What a call task asks of the SIP layer.
#[derive(Debug)]
pub enum SipCommand {
    Ring(CallKey),
    Answer(CallKey, SocketAddr),
    Reject(CallKey, u16),
    Hangup(CallKey),
    /// The contacts `user` registered (for `<Dial><Client>`/`<Sip>` to a registered phone).
    Lookup {
        user: String,
        reply: tokio::sync::oneshot::Sender<Vec<sip_core::registrar::Binding>>,
    },
    /// Draining: new INVITEs and OPTIONS get 503 (a load balancer moves on); `false` ends it.
    Drain(bool),
}

impl SipCommand {
    /// The call core's request for the dialog `key` (an incoming dialog: it is never
    /// invited or canceled by us).
    pub fn from_core(key: CallKey, command: call_core::SipCommand) -> Option<Self> {
        match command {
            call_core::SipCommand::Ring => Some(SipCommand::Ring(key)),
            call_core::SipCommand::Answer { local_rtp } => Some(SipCommand::Answer(key, local_rtp)),
            call_core::SipCommand::Reject { status } => Some(SipCommand::Reject(key, status)),
            call_core::SipCommand::Hangup => Some(SipCommand::Hangup(key)),
            call_core::SipCommand::Invite
            | call_core::SipCommand::Cancel
            | call_core::SipCommand::Dial(_) => None,
        }
    }
}

/// A dialog event as the call core's input; `None` (the SIP task dropped the dialog) ends it.
pub fn core_input(event: Option<CallEvent>) -> call_core::SipInput {
    use call_core::SipInput;
    match event {
        Some(CallEvent::Ended { reason, .. }) => SipInput::Ended(format!("{reason:?}")),
        Some(CallEvent::Dtmf {
            digit, duration_ms, ..
        }) => SipInput::Dtmf { digit, duration_ms },
        Some(CallEvent::MediaChanged { media, .. }) => SipInput::MediaChanged(media),
        Some(CallEvent::Confirmed { .. }) | Some(CallEvent::Incoming(_)) => SipInput::Confirmed,
        None => SipInput::Ended("dialog gone".into()),
    }
}

#[derive(Clone)]
pub struct SipHandle {
    tx: mpsc::Sender<SipCommand>,
    metrics: Arc<Metrics>,
}

impl SipHandle {
    /// Never waits. A full channel means the SIP task is wedged; the command is then dropped,
    /// logged with its call and counted.
    pub fn send(&self, command: SipCommand) {
        match self.tx.try_send(command) {
            Ok(()) => {}
            Err(TrySendError::Full(command)) => {
                let n = self.metrics.channel_overflows.count(CHANNEL_COMMANDS);
                tracing::error!(
                    ?command,
                    overflows = n,
                    capacity = COMMANDS_CAPACITY,
                    "SIP command queue full; command dropped"
                );
            }
            // The SIP task outlives every call task; it is gone only at shutdown.
            Err(TrySendError::Closed(_)) => {}
        }
    }
}

/// Called for each new call with the receiver of its later events.
pub type CallSpawner = Arc<dyn Fn(IncomingCall, mpsc::Receiver<CallEvent>) + Send + Sync>;

enum TcpEvent {
    Opened {
        conn: u64,
        handle: TcpConnHandle,
    },
    Message {
        conn: u64,
        from: SocketAddr,
        transport: Transport,
        bytes: Vec<u8>,
    },
    Closed {
        conn: u64,
    },
}

/// The SIP task's side of one TCP connection.
struct TcpConnHandle {
    writer: mpsc::Sender<Vec<u8>>,
    /// Tells the connection's task to close it.
    close: Arc<Notify>,
    /// Calls whose INVITE came over this connection and have not ended; while any does, the
    /// idle timeout does not close it.
    calls: Arc<AtomicUsize>,
    /// The peer's address (a banned source's connections are closed).
    source: IpAddr,
}

pub fn channel(metrics: Arc<Metrics>) -> (SipHandle, mpsc::Receiver<SipCommand>) {
    for channel in [
        CHANNEL_COMMANDS,
        CHANNEL_CALL_EVENTS,
        CHANNEL_TCP_EVENTS,
        CHANNEL_TCP_WRITE,
    ] {
        metrics.channel_overflows.declare(channel);
    }
    let (tx, rx) = mpsc::channel(COMMANDS_CAPACITY);
    (SipHandle { tx, metrics }, rx)
}

/// The sockets and settings of [`run`].
pub struct SipSockets {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
    pub tcp_limits: TcpLimits,
    /// SIP over TLS: its listener and rustls config (connections count against the TCP caps).
    pub tls: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
}

/// Runs until the command channel closes.
pub async fn run(
    sockets: SipSockets,
    config: EndpointConfig,
    mut commands: mpsc::Receiver<SipCommand>,
    spawn_call: CallSpawner,
    metrics: Arc<Metrics>,
    registrar: Option<sip_core::registrar::Registrar>,
) {
    let SipSockets {
        udp,
        tcp,
        tcp_limits,
        tls,
    } = sockets;
    let screen = AcceptScreen {
        access: config.access.clone(),
        can_authenticate: registrar.as_ref().is_some_and(|r| r.enabled()),
        bans: Arc::new(Mutex::new(HashMap::new())),
    };
    for reason in REFUSAL_LABELS {
        metrics.sip_refused.declare(reason);
    }
    let mut endpoint = Endpoint::new(config);
    if let Some(registrar) = registrar {
        endpoint.set_registrar(Instant::now().into_std(), registrar);
    }
    let (tcp_tx, mut tcp_rx) = mpsc::channel::<TcpEvent>(TCP_EVENTS_CAPACITY);
    // Stopped with this task, also when it is aborted, so the listener closes.
    let accepting = Accepting {
        events: tcp_tx,
        limits: tcp_limits,
        metrics: metrics.clone(),
        screen: screen.clone(),
        counts: Arc::new(Mutex::new(ConnCounts::default())),
        next_conn: Arc::new(AtomicU64::new(1)),
    };
    let _accept_tls = tls.map(|(listener, config)| {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        AbortOnDrop(tokio::spawn(accept_sip(
            listener,
            Some(acceptor),
            accepting.clone(),
        )))
    });
    let _accept = AbortOnDrop(tokio::spawn(accept_sip(tcp, None, accepting)));
    let mut log = SecurityLog::default();
    let mut router = Router {
        calls: HashMap::new(),
        tcp: HashMap::new(),
        call_conns: HashMap::new(),
        metrics,
    };
    let mut buf = vec![0u8; 65_536];
    let far_future = || Instant::now() + Duration::from_secs(3600);

    loop {
        let deadline = endpoint
            .poll_timeout()
            .map(Instant::from_std)
            .unwrap_or_else(far_future);
        tokio::select! {
            received = udp.recv_from(&mut buf) => match received {
                Ok((n, from)) => {
                    let peer = Peer { transport: Transport::Udp, addr: from, conn: 0 };
                    endpoint.handle_input(std::time::Instant::now(), peer, &buf[..n]);
                }
                // ICMP port unreachable from an earlier send surfaces here on Linux; harmless.
                Err(e) => tracing::debug!(error = %e, "SIP UDP receive error"),
            },
            Some(event) = tcp_rx.recv() => match event {
                TcpEvent::Opened { conn, handle } => { router.tcp.insert(conn, handle); }
                TcpEvent::Closed { conn } => { router.tcp.remove(&conn); }
                TcpEvent::Message { conn, from, transport, bytes } => {
                    let peer = Peer { transport, addr: from, conn };
                    endpoint.handle_input(std::time::Instant::now(), peer, &bytes);
                }
            },
            command = commands.recv() => {
                let Some(command) = command else { break };
                let now = std::time::Instant::now();
                let (key, result) = match command {
                    SipCommand::Lookup { user, reply } => {
                        let _ = reply.send(endpoint.registered(now, &user));
                        continue;
                    }
                    SipCommand::Drain(on) => {
                        if endpoint.draining() != on {
                            tracing::warn!(draining = on, calls = endpoint.call_count(), "SIP: {}", if on { "draining: new calls and OPTIONS answered 503" } else { "taking new calls again" });
                        }
                        endpoint.set_draining(on);
                        continue;
                    }
                    SipCommand::Ring(k) => (k, endpoint.ring(now, k)),
                    SipCommand::Answer(k, rtp) => (k, endpoint.answer(now, k, rtp)),
                    SipCommand::Reject(k, status) => (k, endpoint.reject(now, k, status)),
                    SipCommand::Hangup(k) => (k, endpoint.hangup(now, k)),
                };
                if let Err(e) = result {
                    tracing::debug!(call = key.0, error = %e, "SIP command not applied");
                }
            },
            _ = tokio::time::sleep_until(deadline) => {
                endpoint.handle_timeout(std::time::Instant::now());
            }
        }

        while let Some(output) = endpoint.poll_output() {
            match output {
                Output::Transmit { to, bytes } => match to.transport {
                    Transport::Udp => {
                        if let Err(e) = udp.send_to(&bytes, to.addr).await {
                            tracing::warn!(to = %to.addr, error = %e, "SIP UDP send failed");
                        }
                    }
                    Transport::Tcp | Transport::Tls => router.send_tcp(to, bytes),
                },
                Output::Rejected { from, reason } => {
                    router.metrics.sip_refused.count("malformed");
                    if log.allow(LogKind::BadInput) {
                        // Bounded: the reason may quote attacker-sized input.
                        let reason: String = reason.chars().take(200).collect();
                        tracing::warn!(from = %from.addr, transport = ?from.transport, reason, "bad SIP input");
                    }
                }
                Output::Security(event) => {
                    if let SecurityEvent::Banned { source, until, .. } = &event {
                        screen.ban(*source, *until);
                        router.close_source(*source);
                    }
                    log_security(&event, &mut log, &router.metrics);
                }
                Output::Event(event) => router.dispatch(event, &spawn_call),
            }
        }
        router
            .metrics
            .sip_refused
            .set("dropped", endpoint.dropped());
        log.summarize();
    }
}

/// `hark_sip_refused_total` reasons, declared at start so they show at 0.
const REFUSAL_LABELS: [&str; 9] = [
    "malformed",
    "untrusted",
    "auth_failed",
    "dropped",
    "banned",
    "max_calls",
    "max_calls_per_source",
    "max_new_calls_per_sec",
    "max_new_calls_per_sec_per_source",
];

/// Logs one access refusal (fail2ban matches `source=<ip>` in these lines) within the log
/// budget, and counts it.
fn log_security(event: &SecurityEvent, log: &mut SecurityLog, metrics: &Metrics) {
    match event {
        SecurityEvent::Banned {
            source,
            until,
            requests,
        } => {
            Metrics::add(&metrics.sip_bans, 1);
            metrics.sip_refused.count("banned");
            if log.allow(LogKind::Ban) {
                let ban_secs = until
                    .saturating_duration_since(std::time::Instant::now())
                    .as_secs();
                tracing::warn!(
                    "SIP source banned source={source} requests={requests} ban_secs={ban_secs}: over sip.rate_limit_requests; everything from it is dropped"
                );
            }
        }
        SecurityEvent::Untrusted { source, method } => {
            metrics.sip_refused.count("untrusted");
            if log.allow(LogKind::Untrusted) {
                tracing::warn!(
                    "SIP request refused source={source} method={method}: not in sip.trusted and not an authenticated [[user]]"
                );
            }
        }
        SecurityEvent::AuthFailed {
            source,
            user,
            method,
        } => {
            metrics.sip_refused.count("auth_failed");
            if log.allow(LogKind::AuthFailed) {
                tracing::warn!(
                    "SIP authentication failed source={source} user={user:?} method={method}"
                );
            }
        }
        SecurityEvent::CallRefused { source, reason } => {
            metrics.sip_refused.count(reason.label());
            if log.allow(LogKind::CallRefused) {
                tracing::warn!(
                    "SIP call refused with 503 source={source} cap=sip.{}",
                    reason.label()
                );
            }
        }
    }
}

/// Kinds of warning whose lines are budgeted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum LogKind {
    BadInput,
    Ban,
    Untrusted,
    AuthFailed,
    CallRefused,
}

/// Lines of one kind allowed per [`LOG_WINDOW`]; the rest are counted and summarized, so a
/// flood of bad input cannot fill the disk with log.
const LOG_LINES_PER_WINDOW: u32 = 20;
const LOG_WINDOW: Duration = Duration::from_secs(10);

#[derive(Default)]
struct SecurityLog {
    window_start: Option<Instant>,
    lines: HashMap<LogKind, u32>,
    suppressed: HashMap<LogKind, u64>,
}

impl SecurityLog {
    fn roll(&mut self) {
        let now = Instant::now();
        if self
            .window_start
            .is_none_or(|t| now.duration_since(t) >= LOG_WINDOW)
        {
            if self.window_start.is_some() {
                self.flush();
            }
            self.window_start = Some(now);
            self.lines.clear();
        }
    }

    fn allow(&mut self, kind: LogKind) -> bool {
        self.roll();
        let n = self.lines.entry(kind).or_insert(0);
        if *n < LOG_LINES_PER_WINDOW {
            *n += 1;
            true
        } else {
            *self.suppressed.entry(kind).or_insert(0) += 1;
            false
        }
    }

    /// Logs what was suppressed once its window is over.
    fn summarize(&mut self) {
        if self.suppressed.is_empty() {
            return;
        }
        self.roll();
    }

    fn flush(&mut self) {
        for (kind, n) in self.suppressed.drain() {
            tracing::warn!(
                kind = ?kind,
                suppressed = n,
                window_secs = LOG_WINDOW.as_secs(),
                "more SIP warnings of this kind than the log budget; not logged one by one"
            );
        }
    }
}

/// What the TCP acceptor checks before a connection may send anything: banned sources, and
/// untrusted ones when they would be dropped unparsed anyway.
#[derive(Clone)]
struct AcceptScreen {
    access: sip_core::access::AccessConfig,
    can_authenticate: bool,
    bans: Arc<Mutex<HashMap<IpAddr, Instant>>>,
}

impl AcceptScreen {
    fn ban(&self, source: IpAddr, until: std::time::Instant) {
        let mut bans = self.bans.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        bans.retain(|_, u| *u > now);
        bans.insert(source, Instant::from_std(until));
    }

    /// Why a connection from `source` is closed on accept, if it is.
    fn refuses(&self, source: IpAddr) -> Option<&'static str> {
        let source = sip_core::access::canonical(source);
        if self.access.is_trusted(source) {
            return None;
        }
        let banned = self
            .bans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&source)
            .is_some_and(|u| *u > Instant::now());
        if banned {
            return Some("banned");
        }
        (self.access.untrusted == sip_core::access::Untrusted::Drop && !self.can_authenticate)
            .then_some("untrusted")
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where the SIP task's output goes: call tasks and TCP connections.
struct Router {
    calls: HashMap<CallKey, mpsc::Sender<CallEvent>>,
    tcp: HashMap<u64, TcpConnHandle>,
    /// The TCP connection each call's INVITE came over.
    call_conns: HashMap<CallKey, u64>,
    metrics: Arc<Metrics>,
}

impl Router {
    /// Closes every connection from a banned source.
    fn close_source(&mut self, source: IpAddr) {
        self.tcp.retain(|_, conn| {
            let keep = conn.source != source;
            if !keep {
                conn.close.notify_one();
            }
            keep
        });
    }

    fn send_tcp(&mut self, to: Peer, bytes: Vec<u8>) {
        let Some(conn) = self.tcp.get(&to.conn) else {
            tracing::warn!(to = %to.addr, "SIP TCP connection gone; message dropped");
            return;
        };
        match conn.writer.try_send(bytes) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let n = self.metrics.channel_overflows.count(CHANNEL_TCP_WRITE);
                tracing::warn!(
                    to = %to.addr,
                    queued = TCP_WRITE_CAPACITY,
                    overflows = n,
                    "SIP TCP peer is not reading; connection closed, message dropped"
                );
                conn.close.notify_one();
                self.tcp.remove(&to.conn);
            }
            Err(TrySendError::Closed(_)) => {
                tracing::warn!(to = %to.addr, "SIP TCP connection gone; message dropped");
            }
        }
    }

    fn dispatch(&mut self, event: CallEvent, spawn_call: &CallSpawner) {
        if let CallEvent::Incoming(incoming) = event {
            let (tx, rx) = mpsc::channel(CALL_EVENTS_CAPACITY);
            let key = incoming.call;
            self.calls.insert(key, tx);
            if incoming.peer.transport != Transport::Udp {
                if let Some(conn) = self.tcp.get(&incoming.peer.conn) {
                    conn.calls.fetch_add(1, Ordering::Relaxed);
                    self.call_conns.insert(key, incoming.peer.conn);
                }
            }
            spawn_call(*incoming, rx);
            return;
        }
        let (key, ended) = match &event {
            CallEvent::Confirmed { call }
            | CallEvent::MediaChanged { call, .. }
            | CallEvent::Dtmf { call, .. } => (*call, false),
            CallEvent::Ended { call, .. } => (*call, true),
            CallEvent::Incoming(_) => return,
        };
        if ended {
            if let Some(conn) = self.call_conns.remove(&key) {
                if let Some(conn) = self.tcp.get(&conn) {
                    conn.calls.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        let Some(tx) = (if ended {
            self.calls.remove(&key)
        } else {
            self.calls.get(&key).cloned()
        }) else {
            return;
        };
        match tx.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) => {
                let n = self.metrics.channel_overflows.count(CHANNEL_CALL_EVENTS);
                if ended {
                    // The end must arrive: the call would otherwise run until its RTP timeout.
                    // One waiting task per call at most, so this stays bounded.
                    tracing::warn!(
                        call = key.0,
                        overflows = n,
                        "call's event queue full; its end is delivered when it has room"
                    );
                    tokio::spawn(async move {
                        let _ = tx.send(event).await;
                    });
                } else {
                    tracing::warn!(
                        call = key.0,
                        ?event,
                        overflows = n,
                        capacity = CALL_EVENTS_CAPACITY,
                        "call's event queue full; event dropped"
                    );
                }
            }
            // The call task has finished.
            Err(TrySendError::Closed(_)) => {}
        }
    }
}

/// Open connections, in all and by source IP.
#[derive(Default)]
struct ConnCounts {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// One accepted connection's place in [`ConnCounts`]; given back on drop.
struct ConnSlot {
    counts: Arc<Mutex<ConnCounts>>,
    source: IpAddr,
    metrics: Arc<Metrics>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.total -= 1;
        if let Some(n) = counts.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                counts.by_source.remove(&self.source);
            }
        }
        self.metrics
            .sip_tcp_connections
            .store(counts.total as u64, Ordering::Relaxed);
    }
}

/// Why a connection was closed on accept.
#[derive(Debug, Clone, Copy)]
enum CapReached {
    Total,
    PerSource,
}

/// Takes a slot for a connection from `source`, or says which cap is reached.
fn take_slot(
    counts: &Arc<Mutex<ConnCounts>>,
    limits: &TcpLimits,
    source: IpAddr,
    metrics: &Arc<Metrics>,
) -> Result<ConnSlot, CapReached> {
    let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
    if c.total >= limits.max_connections {
        return Err(CapReached::Total);
    }
    let from_source = c.by_source.entry(source).or_insert(0);
    if *from_source >= limits.max_per_source {
        return Err(CapReached::PerSource);
    }
    *from_source += 1;
    c.total += 1;
    metrics
        .sip_tcp_connections
        .store(c.total as u64, Ordering::Relaxed);
    Ok(ConnSlot {
        counts: counts.clone(),
        source,
        metrics: metrics.clone(),
    })
}

/// A flood of refused connections logs one line per this interval, with the count since.
const REJECT_LOG_EVERY: Duration = Duration::from_secs(10);

/// What both acceptors (TCP and TLS) share: the SIP task's queue, the connection caps and
/// counts, the access screen and the connection numbering.
#[derive(Clone)]
struct Accepting {
    events: mpsc::Sender<TcpEvent>,
    limits: TcpLimits,
    metrics: Arc<Metrics>,
    screen: AcceptScreen,
    counts: Arc<Mutex<ConnCounts>>,
    next_conn: Arc<AtomicU64>,
}

/// Throttles the "cap reached" warning: one line per [`REJECT_LOG_EVERY`] with the count.
#[derive(Default)]
struct RejectLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl Accepting {
    /// The screen and the caps for a new connection: its slot and number, or `None` (closed).
    fn admit(&self, from: SocketAddr, log: &mut RejectLog) -> Option<(ConnSlot, u64)> {
        if let Some(reason) = self.screen.refuses(from.ip()) {
            // Closed before a byte is read; counted, not logged (the ban was).
            self.metrics.sip_refused.count(if reason == "banned" {
                "banned"
            } else {
                "untrusted"
            });
            return None;
        }
        match take_slot(&self.counts, &self.limits, from.ip(), &self.metrics) {
            Ok(slot) => Some((slot, self.next_conn.fetch_add(1, Ordering::Relaxed))),
            Err(cap) => {
                // Accept and close at once: the peer learns now instead of waiting in the
                // backlog (as Kamailio does at tcp_max_connections).
                let (counter, key, value) = match cap {
                    CapReached::Total => (
                        &self.metrics.sip_tcp_rejected_total,
                        "sip.tcp_max_connections",
                        self.limits.max_connections,
                    ),
                    CapReached::PerSource => (
                        &self.metrics.sip_tcp_rejected_per_source,
                        "sip.tcp_max_connections_per_source",
                        self.limits.max_per_source,
                    ),
                };
                Metrics::add(counter, 1);
                log.unlogged += 1;
                let now = Instant::now();
                if log.last.is_none_or(|t| now >= t + REJECT_LOG_EVERY) {
                    tracing::warn!(
                        from = %from,
                        cap = key,
                        limit = value,
                        refused_since_last_line = log.unlogged,
                        "SIP TCP connection refused: cap reached"
                    );
                    log.last = Some(now);
                    log.unlogged = 0;
                }
                None
            }
        }
    }

    fn settings(&self) -> ConnSettings {
        ConnSettings {
            idle_timeout: self.limits.idle_timeout,
            metrics: self.metrics.clone(),
        }
    }
}

/// A TLS client that has not finished its handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts SIP over TCP, or over TLS with `tls`: each connection is screened and capped before
/// a byte is read; a TLS handshake runs in the connection's own task (a slow client holds up
/// no one).
async fn accept_sip(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    accepting: Accepting,
) {
    let (transport, name) = match tls {
        Some(_) => (Transport::Tls, "SIP TLS"),
        None => (Transport::Tcp, "SIP TCP"),
    };
    let mut log = RejectLog::default();
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                let Some((slot, conn)) = accepting.admit(from, &mut log) else {
                    continue;
                };
                let (events, settings) = (accepting.events.clone(), accepting.settings());
                let Some(acceptor) = tls.clone() else {
                    tokio::spawn(serve_conn(
                        stream, from, conn, transport, events, settings, slot,
                    ));
                    continue;
                };
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => {
                            serve_conn(tls, from, conn, transport, events, settings, slot).await
                        }
                        Ok(Err(e)) => tracing::info!(%from, error = %e, "SIP TLS handshake failed"),
                        Err(_) => tracing::info!(%from, "SIP TLS handshake timed out"),
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "{name} accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

struct ConnSettings {
    idle_timeout: Duration,
    metrics: Arc<Metrics>,
}

/// Reads and frames one connection (TCP, or TLS over it), hands its messages to the SIP task,
/// and writes what the SIP task queues for it. Ends on EOF, a read error, an unframeable stream,
/// the idle timeout or the SIP task's word (its write queue overflowed).
async fn serve_conn<S>(
    stream: S,
    from: SocketAddr,
    conn: u64,
    transport: Transport,
    events: mpsc::Sender<TcpEvent>,
    settings: ConnSettings,
    _slot: ConnSlot,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (write_tx, mut write_rx) = mpsc::channel::<Vec<u8>>(TCP_WRITE_CAPACITY);
    let close = Arc::new(Notify::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let opened = TcpEvent::Opened {
        conn,
        handle: TcpConnHandle {
            writer: write_tx,
            close: close.clone(),
            calls: calls.clone(),
            source: sip_core::access::canonical(from.ip()),
        },
    };
    if send_event(&events, opened, &settings.metrics)
        .await
        .is_err()
    {
        return;
    }
    // Milliseconds from `start` to the last traffic either way.
    let start = Instant::now();
    let since_start = move || start.elapsed().as_millis() as u64;
    let last_traffic = Arc::new(AtomicU64::new(0));
    let write_traffic = last_traffic.clone();
    let write_task = tokio::spawn(async move {
        while let Some(bytes) = write_rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
            write_traffic.store(since_start(), Ordering::Relaxed);
        }
    });
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16_384];
    'read: loop {
        let idle_at = start
            + Duration::from_millis(last_traffic.load(Ordering::Relaxed))
            + settings.idle_timeout;
        let n = tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = close.notified() => break,
            _ = tokio::time::sleep_until(idle_at) => {
                let last = Duration::from_millis(last_traffic.load(Ordering::Relaxed));
                if start + last + settings.idle_timeout > Instant::now() {
                    continue; // written to meanwhile
                }
                if calls.load(Ordering::Relaxed) > 0 {
                    // Its calls' BYEs go this way; count the check as traffic and look again.
                    last_traffic.store(since_start(), Ordering::Relaxed);
                    continue;
                }
                Metrics::add(&settings.metrics.sip_tcp_idle_closed, 1);
                tracing::info!(
                    from = %from,
                    idle_secs = settings.idle_timeout.as_secs(),
                    "SIP TCP connection idle; closed"
                );
                break;
            }
        };
        last_traffic.store(since_start(), Ordering::Relaxed);
        framer.push(&buf[..n]);
        loop {
            match framer.next_message() {
                Ok(Some(bytes)) => {
                    let message = TcpEvent::Message {
                        conn,
                        from,
                        transport,
                        bytes,
                    };
                    if send_event(&events, message, &settings.metrics)
                        .await
                        .is_err()
                    {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(from = %from, error = %e, "SIP TCP stream unusable; closing");
                    break 'read;
                }
            }
        }
    }
    let _ = send_event(&events, TcpEvent::Closed { conn }, &settings.metrics).await;
    write_task.abort();
}

/// Hands an event to the SIP task, waiting when its queue is full (counted: the SIP task is
/// behind). Err: the SIP task has stopped.
async fn send_event(
    events: &mpsc::Sender<TcpEvent>,
    event: TcpEvent,
    metrics: &Metrics,
) -> Result<(), ()> {
    match events.try_send(event) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(event)) => {
            metrics.channel_overflows.count(CHANNEL_TCP_EVENTS);
            events.send(event).await.map_err(|_| ())
        }
        Err(TrySendError::Closed(_)) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize, max_per_source: usize) -> TcpLimits {
        TcpLimits {
            max_connections,
            max_per_source,
            idle_timeout: Duration::from_secs(300),
        }
    }

    #[test]
    fn slots_are_capped_per_source_and_in_all_and_given_back_on_drop() {
        let counts = Arc::new(Mutex::new(ConnCounts::default()));
        let metrics = Arc::new(Metrics::default());
        let limits = limits(3, 2);
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        let take = |ip| take_slot(&counts, &limits, ip, &metrics);

        let a1 = take(a).expect("first from a");
        let _a2 = take(a).expect("second from a");
        assert!(matches!(take(a), Err(CapReached::PerSource)));
        let _b1 = take(b).expect("b has its own allowance");
        assert!(matches!(take(b), Err(CapReached::Total)));
        assert_eq!(metrics.sip_tcp_connections.load(Ordering::Relaxed), 3);

        drop(a1);
        assert_eq!(metrics.sip_tcp_connections.load(Ordering::Relaxed), 2);
        let _a3 = take(a).expect("a slot given back is free again");
        assert!(matches!(take(b), Err(CapReached::Total)));
    }

    #[test]
    fn a_source_without_connections_is_forgotten() {
        let counts = Arc::new(Mutex::new(ConnCounts::default()));
        let metrics = Arc::new(Metrics::default());
        let ip: IpAddr = [192, 0, 2, 9].into();
        drop(take_slot(&counts, &limits(8, 8), ip, &metrics).expect("slot"));
        let c = counts.lock().expect("lock");
        assert_eq!(c.total, 0);
        assert!(c.by_source.is_empty(), "no entry per past source");
    }
}
