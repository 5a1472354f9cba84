//! SRTP (media_engine::srtp) on the capture's 172-byte PCMU datagrams, both SDES suites.
//!
//! `cargo bench -p hark-benches --bench srtp`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hark_benches::speech;
use media_engine::srtp::{SrtpContext, SrtpKey, SrtpSuite, PROTECT_HEADROOM};

const SUITES: [SrtpSuite; 2] = [
    SrtpSuite::AesCm128HmacSha1_80,
    SrtpSuite::AesCm128HmacSha1_32,
];

/// Copies `datagram` into `buf` (keeping its capacity) with sequence number `seq`.
fn load(buf: &mut Vec<u8>, datagram: &[u8], seq: u16) {
    buf.clear();
    buf.extend_from_slice(datagram);
    if let Some(s) = buf.get_mut(2..4) {
        s.copy_from_slice(&seq.to_be_bytes());
    }
}

fn srtp_172b(c: &mut Criterion) {
    let s = speech();
    let key = SrtpKey::random();
    let mut g = c.benchmark_group("srtp_172B");
    g.throughput(Throughput::Elements(1));
    for suite in SUITES {
        let name = suite.sdes_name();
        g.bench_function(format!("protect/{name}"), |b| {
            let mut tx = SrtpContext::new(suite, &key);
            let mut buf = Vec::with_capacity(172 + PROTECT_HEADROOM);
            let mut seq = 0u16;
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % s.datagrams.len();
                seq = seq.wrapping_add(1);
                load(&mut buf, &s.datagrams[i], seq);
                tx.protect_rtp(black_box(&mut buf)).expect("protects");
                black_box(&buf);
            })
        });
        g.bench_function(format!("protect_unprotect/{name}"), |b| {
            let mut tx = SrtpContext::new(suite, &key);
            let mut rx = SrtpContext::new(suite, &key);
            let mut buf = Vec::with_capacity(172 + PROTECT_HEADROOM);
            let mut seq = 0u16;
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % s.datagrams.len();
                seq = seq.wrapping_add(1);
                load(&mut buf, &s.datagrams[i], seq);
                tx.protect_rtp(black_box(&mut buf)).expect("protects");
                rx.unprotect_rtp(black_box(&mut buf)).expect("unprotects")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, srtp_172b);
criterion_main!(benches);
