//! The per-packet path allocates nothing: a counting allocator watches 1,000 handle_packet
//! calls (in-order audio, reordering, loss, events, comfort noise) after warm-up.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use media_engine::receiver::{MediaReceiver, ReceiverConfig};
use media_engine::{Codec, MediaItem};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHING.with(|w| w.get()) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds GlobalAlloc::alloc's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as alloc: the pointer came from System through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if WATCHING.with(|w| w.get()) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as alloc.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn handle_packet_does_not_allocate() {
    // Prepare 1,100 datagrams up front: audio with swaps and losses, an event every so often,
    // comfort noise.
    let mut packets = Vec::new();
    let mut seq = 0u16;
    for i in 0..1100u32 {
        let ts = i * 160;
        let p = match i % 50 {
            10 => rtp(TE, true, seq, ts, 1, &event((i % 10) as u8, false, 160)),
            11 => rtp(
                TE,
                false,
                seq,
                ts - 160,
                1,
                &event((i % 10) as u8, true, 320),
            ),
            30 => rtp(13, false, seq, ts, 1, &[40]),
            _ => rtp(0, false, seq, ts, 1, &[0x42; 160]),
        };
        packets.push(p);
        seq = seq.wrapping_add(1);
    }
    for block in packets.chunks_exact_mut(7) {
        block.swap(1, 3);
    }
    let dropped: Vec<usize> = (0..1100).filter(|i| i % 97 == 5).collect();

    let t0 = Instant::now();
    let mut rx = MediaReceiver::new(ReceiverConfig::new(Codec::Pcmu, 0, Some(TE)), t0);
    let mut frames = 0u64;
    let mut dtmf = 0u64;
    let mut sink = |item: MediaItem| match item {
        MediaItem::Audio(_) => frames += 1,
        MediaItem::Dtmf(_) => dtmf += 1,
    };
    for (i, p) in packets.iter().enumerate().take(100) {
        let _ = rx.handle_packet(
            t0 + Duration::from_millis(i as u64 * 20),
            PEER,
            p,
            &mut sink,
        );
    }
    WATCHING.with(|w| w.set(true));
    for (i, p) in packets.iter().enumerate().skip(100) {
        if dropped.contains(&i) {
            continue;
        }
        let now = t0 + Duration::from_millis(i as u64 * 20);
        let _ = rx.handle_packet(now, PEER, p, &mut sink);
        rx.handle_timeout(now, &mut sink);
    }
    WATCHING.with(|w| w.set(false));
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 0);
    assert!(frames > 900, "{frames}");
    assert!(dtmf >= 20, "{dtmf}");
    assert!(rx.stats().filled_samples > 0);
}
