//! A paced RTP sender (20 ms PCMU packets, RFC 4733 events) running on its own thread.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the sender does, in order.
#[derive(Debug, Clone)]
pub enum RtpPlan {
    /// PCMU audio, 160 bytes per packet (the last packet is padded with silence).
    Audio(Vec<u8>),
    /// One RFC 4733 event (PT 101): 7 packets with growing duration, then 3 end packets.
    Dtmf(u8),
    /// Send nothing for this long (the RTP clock keeps running).
    Gap(Duration),
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

pub struct RtpSender {
    stop: Arc<AtomicBool>,
    /// Packets sent so far.
    pub sent: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<SentLog>>,
    pub ssrc: u32,
}

/// What was sent: audio sample count before each DTMF event, and the final state.
#[derive(Debug, Clone, Default)]
pub struct SentLog {
    pub audio_samples: usize,
    pub dtmf_at_sample: Vec<usize>,
    pub last_seq: u16,
}

impl RtpSender {
    /// Starts sending `plan` from `sock` to `dest`; with `then_silence` it keeps sending µ-law
    /// silence after the plan until stopped, otherwise it falls quiet.
    pub fn spawn(sock: &UdpSocket, dest: SocketAddr, plan: Vec<RtpPlan>, then_silence: bool) -> Self {
        let sock = sock.try_clone().expect("clone rtp socket");
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let ssrc = 0x5EED_0000 | (std::process::id() & 0xFFFF);
        let handle = {
            let stop = stop.clone();
            let sent = sent.clone();
            std::thread::spawn(move || {
                let mut seq: u16 = 1000;
                let mut ts: u32 = 160_000;
                let mut slot: u32 = 0;
                let start = Instant::now();
                let mut log = SentLog::default();
                let pace = |slot: &mut u32| {
                    let due = start + Duration::from_millis(20 * *slot as u64);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    *slot += 1;
                };
                let send = |buf: &[u8]| {
                    let _ = sock.send_to(buf, dest);
                    sent.fetch_add(1, Ordering::SeqCst);
                };
                let mut first = true;
                let mut items = plan.into_iter();
                loop {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let item = match items.next() {
                        Some(i) => i,
                        None if then_silence => RtpPlan::Audio(vec![0xFF; 160]),
                        None => break,
                    };
                    match item {
                        RtpPlan::Audio(data) => {
                            for chunk in data.chunks(160) {
                                if stop.load(Ordering::SeqCst) {
                                    break;
                                }
                                let mut payload = chunk.to_vec();
                                payload.resize(160, 0xFF);
                                pace(&mut slot);
                                send(&rtp_packet(0, first, seq, ts, ssrc, &payload));
                                first = false;
                                seq = seq.wrapping_add(1);
                                ts = ts.wrapping_add(160);
                                log.audio_samples += 160;
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
                                pace(&mut slot);
                                send(&rtp_packet(101, i == 0, seq, event_ts, ssrc, &payload));
                                seq = seq.wrapping_add(1);
                            }
                            ts = ts.wrapping_add(1600);
                            log.audio_samples += 1600;
                        }
                        RtpPlan::Gap(d) => {
                            let n = (d.as_millis() / 20) as u32;
                            for _ in 0..n {
                                pace(&mut slot);
                                ts = ts.wrapping_add(160);
                                log.audio_samples += 160;
                            }
                        }
                    }
                }
                log.last_seq = seq;
                log
            })
        };
        RtpSender {
            stop,
            sent,
            handle: Some(handle),
            ssrc,
        }
    }

    pub fn stop(&mut self) -> SentLog {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .map(|h| h.join().expect("rtp sender thread"))
            .unwrap_or_default()
    }

    /// Waits until the plan is done (only when not sending silence forever).
    pub fn join(&mut self, timeout: Duration) -> SentLog {
        let deadline = Instant::now() + timeout;
        while self.handle.as_ref().is_some_and(|h| !h.is_finished()) {
            assert!(Instant::now() < deadline, "RTP plan did not finish in {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop()
    }
}

impl Drop for RtpSender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
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
