//! The SIP edge: UDP and TCP sockets around the sans-IO [`sip_core::Endpoint`], and the routing
//! of call events to call tasks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use sip_core::framing::StreamFramer;
use sip_core::{
    CallEvent, CallKey, Endpoint, EndpointConfig, IncomingCall, Output, Peer, Transport,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What a call task asks of the SIP layer.
#[derive(Debug)]
pub enum SipCommand {
    Ring(CallKey),
    Answer(CallKey, SocketAddr),
    Reject(CallKey, u16),
    Hangup(CallKey),
}

#[derive(Clone)]
pub struct SipHandle {
    tx: mpsc::UnboundedSender<SipCommand>,
}

impl SipHandle {
    pub fn send(&self, command: SipCommand) {
        // The SIP task outlives every call task; a send error only happens at shutdown.
        let _ = self.tx.send(command);
    }
}

/// Called for each new call with the receiver of its later events.
pub type CallSpawner = Arc<dyn Fn(IncomingCall, mpsc::UnboundedReceiver<CallEvent>) + Send + Sync>;

enum TcpEvent {
    Opened {
        conn: u64,
        writer: mpsc::UnboundedSender<Vec<u8>>,
    },
    Message {
        conn: u64,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    Closed {
        conn: u64,
    },
}

pub fn channel() -> (SipHandle, mpsc::UnboundedReceiver<SipCommand>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (SipHandle { tx }, rx)
}

/// Runs until the command channel closes.
pub async fn run(
    udp: UdpSocket,
    tcp: TcpListener,
    config: EndpointConfig,
    mut commands: mpsc::UnboundedReceiver<SipCommand>,
    spawn_call: CallSpawner,
) {
    let mut endpoint = Endpoint::new(config);
    let (tcp_tx, mut tcp_rx) = mpsc::unbounded_channel::<TcpEvent>();
    tokio::spawn(accept_tcp(tcp, tcp_tx));
    let mut tcp_writers: HashMap<u64, mpsc::UnboundedSender<Vec<u8>>> = HashMap::new();
    let mut calls: HashMap<CallKey, mpsc::UnboundedSender<CallEvent>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    let far_future = || Instant::now() + std::time::Duration::from_secs(3600);

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
                TcpEvent::Opened { conn, writer } => { tcp_writers.insert(conn, writer); }
                TcpEvent::Closed { conn } => { tcp_writers.remove(&conn); }
                TcpEvent::Message { conn, from, bytes } => {
                    let peer = Peer { transport: Transport::Tcp, addr: from, conn };
                    endpoint.handle_input(std::time::Instant::now(), peer, &bytes);
                }
            },
            command = commands.recv() => {
                let Some(command) = command else { break };
                let now = std::time::Instant::now();
                let (key, result) = match command {
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
                    Transport::Tcp => match tcp_writers.get(&to.conn) {
                        Some(writer) => {
                            let _ = writer.send(bytes);
                        }
                        None => {
                            tracing::warn!(to = %to.addr, "SIP TCP connection gone; message dropped")
                        }
                    },
                },
                Output::Rejected { from, reason } => {
                    // Bounded: the reason may quote attacker-sized input.
                    let reason: String = reason.chars().take(200).collect();
                    tracing::warn!(from = %from.addr, transport = ?from.transport, reason, "bad SIP input");
                }
                Output::Event(event) => dispatch(event, &mut calls, &spawn_call),
            }
        }
    }
}

fn dispatch(
    event: CallEvent,
    calls: &mut HashMap<CallKey, mpsc::UnboundedSender<CallEvent>>,
    spawn_call: &CallSpawner,
) {
    match event {
        CallEvent::Incoming(incoming) => {
            let (tx, rx) = mpsc::unbounded_channel();
            calls.insert(incoming.call, tx);
            spawn_call(*incoming, rx);
        }
        other => {
            let key = match &other {
                CallEvent::Confirmed { call }
                | CallEvent::MediaChanged { call, .. }
                | CallEvent::Dtmf { call, .. }
                | CallEvent::Ended { call, .. } => *call,
                CallEvent::Incoming(_) => return,
            };
            let ended = matches!(other, CallEvent::Ended { .. });
            if let Some(tx) = calls.get(&key) {
                let _ = tx.send(other);
            }
            if ended {
                calls.remove(&key);
            }
        }
    }
}

async fn accept_tcp(listener: TcpListener, events: mpsc::UnboundedSender<TcpEvent>) {
    let mut next_conn: u64 = 1;
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                let conn = next_conn;
                next_conn += 1;
                tokio::spawn(serve_tcp(stream, from, conn, events.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "SIP TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_tcp(
    stream: TcpStream,
    from: SocketAddr,
    conn: u64,
    events: mpsc::UnboundedSender<TcpEvent>,
) {
    let (mut reader, mut writer) = stream.into_split();
    let (write_tx, mut write_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    if events
        .send(TcpEvent::Opened {
            conn,
            writer: write_tx,
        })
        .is_err()
    {
        return;
    }
    let write_task = tokio::spawn(async move {
        while let Some(bytes) = write_rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16_384];
    'read: loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_message() {
                Ok(Some(bytes)) => {
                    if events
                        .send(TcpEvent::Message { conn, from, bytes })
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
    let _ = events.send(TcpEvent::Closed { conn });
    write_task.abort();
}
