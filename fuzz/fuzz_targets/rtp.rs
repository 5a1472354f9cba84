//! RTP header parse, RFC 4733 event parse and de-duplication, and one call's receiver
//! (latch, reorder window, gap fill, G.711/Opus decode, DTMF) fed a packet sequence with
//! simulated arrival times.
//!
//! Input (seed-friendly, see fuzz/seeds/rtp/): byte 0 is the receiver config, then records
//! `tag [fields]` until the input ends; `tag & 7` is the kind:
//!   0 raw datagram (`len: u16le`, bytes) from the caller, arriving `tag >> 3` * 5 ms later
//!   1 audio packet built from fields (seq/ts steps, SSRC, payload type, payload length)
//!   2 telephone-event packet built from fields (code, flags, duration)
//!   3 time passes (`ms: u16le`) and the receiver's timeout runs
//!   4 a SIP INFO key is injected
//!   5 re-INVITE: the receiver is renegotiated to the config in the next byte
//!   6 raw datagram from another address
//!   7 a restarted sequence (a jump of `u16le`)
//!
//! Invariants:
//! - `receiver.handle_packet` fails exactly when `rtp::parse` does, with the same error;
//! - emitted audio frames tile the timeline from 0 with no gap or overlap, and their end is
//!   `position()`; a decoded frame covers 1..=160 samples, a filled one ≥ 1;
//!   wide frames only while Opus is negotiated; DTMF digits are keys;
//! - stats count every packet and every DTMF item emitted;
//! - the held packets drain: after a timeout far in the future nothing is pending
//!   (`poll_timeout() == None`);
//! - a telephone-event packet seen twice in a row is reported at most once.
#![no_main]

mod common;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use media_engine::receiver::{MediaReceiver, PacketVerdict, ReceiverConfig, MAX_REORDER_WINDOW};
use media_engine::rfc4733::{parse_event, EventDeduplicator};
use media_engine::{rtp, Codec, MediaItem, FRAME_SAMPLES};

const KEYS: &str = "0123456789*#ABCD";
const TE_PT: u8 = 101;

fn config(b: u8) -> ReceiverConfig {
    let te = (b & 4 != 0).then_some(TE_PT);
    let mut c = match b & 3 {
        0 => ReceiverConfig::new(Codec::Pcmu, 0, te),
        1 => ReceiverConfig::new(Codec::Pcma, 8, te),
        2 => ReceiverConfig::new(Codec::Pcmu, 96, te),
        _ => ReceiverConfig::opus(111, te),
    };
    c.reorder_window = u16::from((b >> 3) & 0x0F) + if b & 0x80 != 0 { 5 } else { 0 };
    c.max_hold = Duration::from_millis(if b & 0x80 != 0 { 60 } else { 20 });
    c
}

fn opus(b: u8) -> bool {
    b & 3 == 3
}

fn packet(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, (u8::from(marker) << 7) | (pt & 0x7F)];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// What the emitted items must satisfy, checked as they arrive.
struct Checker {
    end: u64,
    dtmf: u64,
    wide_allowed: bool,
}

impl Checker {
    fn item(&mut self, item: MediaItem) {
        match item {
            MediaItem::Audio(f) => {
                assert_eq!(
                    f.position, self.end,
                    "frame does not start where the last ended"
                );
                assert!(f.len >= 1, "empty frame");
                if !f.filled {
                    assert!(
                        usize::from(f.len) <= FRAME_SAMPLES,
                        "decoded frame of {}",
                        f.len
                    );
                }
                assert!(
                    !f.wide || (self.wide_allowed && !f.filled),
                    "unexpected wide frame"
                );
                let _ = f.pcm();
                self.end = f.end();
            }
            MediaItem::Dtmf(d) => {
                assert!(KEYS.contains(d.digit), "digit {:?}", d.digit);
                self.dtmf += 1;
            }
        }
    }
}

fn check_parsers(datagram: &[u8], dedup: &mut EventDeduplicator) {
    match rtp::parse(datagram) {
        Ok(v) => {
            assert!(datagram.len() >= 12);
            assert!(v.payload_type < 128);
            assert!(v.payload.len() <= datagram.len() - 12);
            if let Ok(e) = parse_event(v.payload) {
                assert!(KEYS.contains(e.digit));
                assert!(e.volume < 64);
                let first = dedup.accept(v.ssrc, v.timestamp, v.payload);
                let second = dedup.accept(v.ssrc, v.timestamp, v.payload);
                assert!(first.is_ok());
                assert_eq!(second, Ok(None), "the same event packet was reported twice");
            }
        }
        Err(rtp::RtpError::Rtcp(pt)) => assert!((192..=223).contains(&pt)),
        Err(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let mut cur = common::Cursor::new(data);
    let cfg_byte = cur.u8();
    let t0 = Instant::now();
    let caller: SocketAddr = "10.0.0.1:4000".parse().unwrap();
    let other: SocketAddr = "10.0.0.2:4000".parse().unwrap();
    let mut rx = MediaReceiver::new(config(cfg_byte), t0);
    let checker = RefCell::new(Checker {
        end: 0,
        dtmf: 0,
        wide_allowed: opus(cfg_byte),
    });
    let mut dedup = EventDeduplicator::new();
    let mut now = t0;
    let mut packets = 0u64;
    let (mut seq, mut ts, mut ssrc_sel, mut cfg) = (1000u16, 8000u32, 0u32, cfg_byte);
    let ssrcs = [0x1111_1111u32, 0x2222_2222, 0, u32::MAX];
    let emit = |i: MediaItem| checker.borrow_mut().item(i);

    for _ in 0..512 {
        if cur.done() {
            break;
        }
        let tag = cur.u8();
        let (datagram, from) = match tag & 7 {
            0 | 6 => {
                now += Duration::from_millis(u64::from(tag >> 3) * 5);
                let len = usize::from(cur.u16()).min(1500);
                let from = if tag & 7 == 6 { other } else { caller };
                (cur.bytes(len).to_vec(), from)
            }
            1 => {
                let (steps, sel, len) = (cur.u8(), cur.u8(), cur.u8());
                // Mostly forward by one, sometimes back (reordering) or far.
                seq = seq.wrapping_add((steps as i8 as i16 >> 3) as u16);
                let ts_step = match sel >> 6 {
                    0 => 160,
                    1 => 960,
                    2 => (steps as i8 as i32 * 160) as u32,
                    _ => u32::from(cur.u16()) << (steps & 15),
                };
                ts = ts.wrapping_add(ts_step);
                ssrc_sel = u32::from(sel & 3);
                let pt = match (sel >> 2) & 7 {
                    0..=3 => config(cfg).codec_pt,
                    4 => 13,
                    5 => 8,
                    6 => 0,
                    _ => sel & 0x7F,
                };
                now += Duration::from_millis(u64::from(tag >> 3) * 5);
                let payload = cur.bytes(usize::from(len) * 2).to_vec();
                let p = packet(
                    pt,
                    steps & 1 != 0,
                    seq,
                    ts,
                    ssrcs[ssrc_sel as usize],
                    &payload,
                );
                (p, caller)
            }
            2 => {
                let (code, flags, dur, step) = (cur.u8(), cur.u8(), cur.u16(), cur.u8());
                seq = seq.wrapping_add(u16::from(step & 3));
                if step & 4 != 0 {
                    ts = ts.wrapping_add(160 * u32::from(step >> 3));
                }
                now += Duration::from_millis(u64::from(tag >> 3) * 5);
                let p = packet(
                    TE_PT,
                    step & 0x80 != 0,
                    seq,
                    ts,
                    ssrcs[ssrc_sel as usize],
                    &[code & 0x1F, flags, (dur >> 8) as u8, dur as u8],
                );
                (p, caller)
            }
            3 => {
                now += Duration::from_millis(u64::from(cur.u16()));
                rx.handle_timeout(now, emit);
                continue;
            }
            4 => {
                let k = KEYS.as_bytes()[usize::from(cur.u8()) % KEYS.len()] as char;
                now += Duration::from_millis(u64::from(tag >> 3) * 20);
                rx.inject_dtmf(k, now, emit);
                continue;
            }
            5 => {
                cfg = cur.u8();
                checker.borrow_mut().wide_allowed |= opus(cfg);
                rx.renegotiate(config(cfg));
                continue;
            }
            _ => {
                seq = seq.wrapping_add(cur.u16());
                continue;
            }
        };
        check_parsers(&datagram, &mut dedup);
        let latched_before = rx.latched();
        let parsed = rtp::parse(&datagram).map(|_| ());
        let verdict = rx.handle_packet(now, from, &datagram, emit);
        packets += 1;
        assert_eq!(verdict.map(|_| ()), parsed, "receiver and parser disagree");
        if let Ok(v) = verdict {
            match latched_before {
                Some(l) if l != from => assert_eq!(v, PacketVerdict::ForeignSource),
                _ => {
                    assert_ne!(v, PacketVerdict::ForeignSource);
                    assert_eq!(rx.latched(), Some(latched_before.unwrap_or(from)));
                }
            }
        }
        assert_eq!(
            rx.position(),
            checker.borrow().end,
            "position() is not the end of the frames"
        );
    }

    // Everything held is released once its hold time has passed.
    let later = now + Duration::from_secs(10);
    rx.handle_timeout(later, emit);
    assert_eq!(
        rx.poll_timeout(),
        None,
        "receiver still has work after every hold expired"
    );
    let c = checker.borrow();
    assert_eq!(rx.position(), c.end);
    let stats = rx.stats();
    assert_eq!(stats.packets, packets);
    assert_eq!(
        stats.dtmf_events, c.dtmf,
        "DTMF count differs from the DTMF items emitted"
    );
    let _ = MAX_REORDER_WINDOW;
});
