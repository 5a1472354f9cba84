//! A paced RTP sender (20 ms PCMU packets, RFC 4733 events) running on its own thread. It can be
//! paused (the RTP clock stops too, so the stream stays continuous) and moved to another socket
//! (a new media address after a re-INVITE).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the sender does, in order.
#[derive(Debug, Clone)]
pub enum RtpPlan {
    /// PCMU audio, 160 bytes per packet (the last packet is padded with silence).
    Audio(Vec<u8>),
    /// One RFC 4733 event (PT 101): 7 packets with growing duration, then 3 end packets.
    Dtmf(u8),
}

/// RFC 4733 event code of a DTMF key.
pub fn dtmf_event(key: char) -> u8 {
    match key {
        '0'..='9' => key as u8 - b'0',
        '*' => 10,
        '#' => 11,
        'A'..='D' => key as u8 - b'A' + 12,
        _ => panic!("not a DTMF key: {key}"),
    }
}

/// What was sent.
#[derive(Debug, Clone, Default)]
pub struct SentLog {
    /// Audio samples sent (RTP clock) before each DTMF event began.
    pub dtmf_at_sample: Vec<usize>,
    pub audio_samples: usize,
    pub packets: u64,
}

struct Ctl {
    stop: AtomicBool,
    paused: AtomicBool,
    sent: AtomicU64,
    /// Audio samples sent so far (RTP clock), for the test to know where the stream is.
    clock: AtomicU64,
    sock: Mutex<UdpSocket>,
    dest: Mutex<SocketAddr>,
    /// Applied to each packet before it is sent (SRTP protection).
    transform: Mutex<Option<PacketTransform>>,
}

/// Rewrites a packet before it leaves (e.g. SRTP's protect).
pub type PacketTransform = Box<dyn FnMut(&mut Vec<u8>) + Send>;

pub struct RtpSender {
    ctl: Arc<Ctl>,
    handle: Option<std::thread::JoinHandle<SentLog>>,
    pub ssrc: u32,
}

impl RtpSender {
    /// Starts sending `plan` from `sock` to `dest`; with `then_silence` it keeps sending µ-law
    /// silence after the plan until stopped, otherwise it falls quiet.
    pub fn spawn(
        sock: &UdpSocket,
        dest: SocketAddr,
        plan: Vec<RtpPlan>,
        then_silence: bool,
    ) -> Self {
        Self::spawn_with(sock, dest, plan, then_silence, None)
    }

    /// [`RtpSender::spawn`] with every packet passed through `transform` before it is sent.
    pub fn spawn_with(
        sock: &UdpSocket,
        dest: SocketAddr,
        plan: Vec<RtpPlan>,
        then_silence: bool,
        transform: Option<PacketTransform>,
    ) -> Self {
        let ssrc = 0x5EED_0000 | (std::process::id() & 0xFFFF);
        let ctl = Arc::new(Ctl {
            stop: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            clock: AtomicU64::new(0),
            sock: Mutex::new(sock.try_clone().expect("clone rtp socket")),
            dest: Mutex::new(dest),
            transform: Mutex::new(transform),
        });
        let handle = {
            let ctl = ctl.clone();
            std::thread::spawn(move || run(ctl, plan, then_silence, ssrc))
        };
        RtpSender {
            ctl,
            handle: Some(handle),
            ssrc,
        }
    }

    pub fn packets_sent(&self) -> u64 {
        self.ctl.sent.load(Ordering::SeqCst)
    }

    /// Audio samples (RTP clock) sent so far.
    pub fn clock(&self) -> usize {
        self.ctl.clock.load(Ordering::SeqCst) as usize
    }

    /// Stops sending until `resume`, without advancing the RTP clock.
    pub fn pause(&self) {
        self.ctl.paused.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(30));
    }

    pub fn resume(&self) {
        self.ctl.paused.store(false, Ordering::SeqCst);
    }

    /// Sends from another socket (and/or to another address) from the next packet on.
    pub fn switch(&self, sock: &UdpSocket, dest: SocketAddr) {
        *self.ctl.sock.lock().expect("sock") = sock.try_clone().expect("clone");
        *self.ctl.dest.lock().expect("dest") = dest;
    }

    pub fn stop(&mut self) -> SentLog {
        self.ctl.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .map(|h| h.join().expect("rtp sender thread"))
            .unwrap_or_default()
    }

    /// Waits until the plan is done (only meaningful without `then_silence`).
    pub fn join(&mut self, timeout: Duration) -> SentLog {
        let deadline = Instant::now() + timeout;
        while self.handle.as_ref().is_some_and(|h| !h.is_finished()) {
            assert!(
                Instant::now() < deadline,
                "RTP plan did not finish in {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop()
    }
}

impl Drop for RtpSender {
    fn drop(&mut self) {
        self.ctl.stop.store(true, Ordering::SeqCst);
    }
}

fn run(ctl: Arc<Ctl>, plan: Vec<RtpPlan>, then_silence: bool, ssrc: u32) -> SentLog {
    let mut seq: u16 = 1000;
    let mut ts: u32 = 160_000;
    let mut next_due = Instant::now();
    let mut log = SentLog::default();
    let mut first = true;
    let mut items = plan.into_iter();
    // Sleeps until the next 20 ms slot; false when told to stop.
    let pace = |next_due: &mut Instant| -> bool {
        while ctl.paused.load(Ordering::SeqCst) && !ctl.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
            *next_due = Instant::now();
        }
        let now = Instant::now();
        if *next_due > now {
            std::thread::sleep(*next_due - now);
        }
        *next_due += Duration::from_millis(20);
        !ctl.stop.load(Ordering::SeqCst)
    };
    let send = |buf: &[u8]| {
        let dest = *ctl.dest.lock().expect("dest");
        let mut packet = buf.to_vec();
        if let Some(t) = ctl.transform.lock().expect("transform").as_mut() {
            t(&mut packet);
        }
        let _ = ctl.sock.lock().expect("sock").send_to(&packet, dest);
        ctl.sent.fetch_add(1, Ordering::SeqCst);
    };
    'outer: loop {
        let item = match items.next() {
            Some(i) => i,
            None if then_silence => RtpPlan::Audio(vec![0xFF; 160]),
            None => break,
        };
        match item {
            RtpPlan::Audio(data) => {
                for chunk in data.chunks(160) {
                    let mut payload = chunk.to_vec();
                    payload.resize(160, 0xFF);
                    if !pace(&mut next_due) {
                        break 'outer;
                    }
                    send(&rtp_packet(0, first, seq, ts, ssrc, &payload));
                    first = false;
                    seq = seq.wrapping_add(1);
                    ts = ts.wrapping_add(160);
                    log.audio_samples += 160;
                    ctl.clock.fetch_add(160, Ordering::SeqCst);
                }
            }
            RtpPlan::Dtmf(event) => {
                log.dtmf_at_sample.push(log.audio_samples);
                let event_ts = ts;
                for i in 0..10u16 {
                    let end = i >= 7;
                    let duration = if end { 1280 } else { 160 * (i + 1) };
                    let payload = [
                        event,
                        if end { 0x80 | 10 } else { 10 },
                        (duration >> 8) as u8,
                        duration as u8,
                    ];
                    if !pace(&mut next_due) {
                        break 'outer;
                    }
                    send(&rtp_packet(101, i == 0, seq, event_ts, ssrc, &payload));
                    seq = seq.wrapping_add(1);
                }
                ts = ts.wrapping_add(1600);
                log.audio_samples += 1600;
                ctl.clock.fetch_add(1600, Ordering::SeqCst);
            }
        }
    }
    log.packets = ctl.sent.load(Ordering::SeqCst);
    log
}

/// An RTP v2 packet.
pub fn rtp_packet(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push(pt | if marker { 0x80 } else { 0 });
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}
