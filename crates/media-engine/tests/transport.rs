//! Packetisation variants, symmetric RTP, and hostile input.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use media_engine::receiver::{MediaReceiver, PacketVerdict, ReceiverConfig};
use media_engine::rtp::RtpError;
use media_engine::sender::{RtpSender, PACKET_BYTES};
use media_engine::{Codec, MediaItem};

#[test]
fn ptime_30_ms_alaw_tiles_as_160_plus_80() {
    // Like sip-tester's g711a.pcap: PCMA, 236 packets of 240 samples.
    let mut run = Run::new(Codec::Pcma, 8);
    let mut expect = Vec::new();
    for i in 0..236u16 {
        let payload: Vec<u8> = (0..240).map(|k| (i as usize * 7 + k) as u8).collect();
        expect.extend(decode(Codec::Pcma, &payload));
        run.feed(
            Duration::from_millis(u64::from(i) * 30),
            &rtp(8, i == 0, 500 + i, 9000 + u32::from(i) * 240, 77, &payload),
        );
    }
    run.finish();
    let lens: Vec<u16> = run.frames().iter().map(|f| f.len).collect();
    assert_eq!(lens, [160u16, 80].repeat(236));
    assert_eq!(run.timeline(), expect);
}

#[test]
fn sender_output_round_trips_through_receiver() {
    let mut tx = RtpSender::new(Codec::Pcmu, 0, 0xABCD, 65530, 4_294_967_000);
    let mut run = Run::new(Codec::Pcmu, 0);
    let tone = media_engine::tone::sine(440.0, 200, 6000);
    let mut expect = Vec::new();
    for (i, chunk) in tone.chunks(160).enumerate() {
        let mut out = [0u8; PACKET_BYTES];
        let n = tx.packetize(chunk, &mut out);
        expect.extend(decode(
            Codec::Pcmu,
            media_engine::rtp::parse(&out[..n]).unwrap().payload,
        ));
        run.feed(Duration::from_millis(i as u64 * 20), &out[..n]);
    }
    assert_eq!(run.timeline(), expect);
    assert_eq!(expect.len(), 1600);
}

#[test]
fn packet_from_a_foreign_source_is_dropped() {
    let now = Instant::now();
    let mut rx = MediaReceiver::new(ReceiverConfig::new(Codec::Pcmu, 0, Some(TE)), now);
    let attacker = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), 40000);
    let mut items = Vec::new();
    rx.handle_packet(now, PEER, &rtp(0, true, 1, 0, 5, &[0x42; 160]), |i| {
        items.push(i)
    })
    .unwrap();
    let v = rx.handle_packet(
        now,
        attacker,
        &rtp(0, false, 2, 160, 5, &[0x10; 160]),
        |i| items.push(i),
    );
    assert_eq!(v, Ok(PacketVerdict::ForeignSource));
    let v = rx.handle_packet(
        now,
        attacker,
        &rtp(TE, true, 3, 320, 5, &event(1, false, 160)),
        |i| items.push(i),
    );
    assert_eq!(v, Ok(PacketVerdict::ForeignSource));
    assert_eq!(items.len(), 1);
    assert_eq!(rx.position(), 160);
    assert_eq!(rx.stats().foreign, 2);
}

#[test]
fn rtcp_is_an_error_not_audio() {
    let mut rx = MediaReceiver::new(
        ReceiverConfig::new(Codec::Pcmu, 0, Some(TE)),
        Instant::now(),
    );
    // Sender report header + sender info.
    let mut sr = vec![0x80, 200, 0, 6, 0, 0, 0, 5];
    sr.extend_from_slice(&[0; 20]);
    let v = rx.handle_packet(Instant::now(), PEER, &sr, |_| panic!("no output for RTCP"));
    assert_eq!(v, Err(RtpError::Rtcp(200)));
    assert_eq!(rx.latched(), None);
}

#[test]
fn every_prefix_of_valid_packets_is_handled_without_panic() {
    let audio = rtp(0, true, 1, 0, 5, &[0x42; 160]);
    let mut ext = vec![0xB3, 0x80 | TE];
    ext.extend_from_slice(&[0, 9, 0, 0, 1, 0, 0, 0, 0, 5]);
    ext.extend_from_slice(&[0; 12]); // 3 CSRCs
    ext.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]);
    ext.extend_from_slice(&event(11, true, 1280));
    ext.extend_from_slice(&[0, 0, 3]);
    for packet in [audio, ext] {
        for n in 0..=packet.len() {
            let mut rx = MediaReceiver::new(
                ReceiverConfig::new(Codec::Pcmu, 0, Some(TE)),
                Instant::now(),
            );
            let mut count = 0;
            let r = rx.handle_packet(Instant::now(), PEER, &packet[..n], |_| count += 1);
            if n < 12 {
                assert_eq!(r, Err(RtpError::TooShort(n)), "prefix {n}");
            }
            if let Err(e) = r {
                assert_eq!(count, 0);
                assert!(!e.to_string().is_empty());
            }
            rx.handle_timeout(Instant::now() + Duration::from_secs(1), |_| {});
        }
    }
}

#[test]
fn random_datagrams_never_panic_and_output_still_tiles() {
    let t0 = Instant::now();
    let mut rx = MediaReceiver::new(ReceiverConfig::new(Codec::Pcmu, 0, Some(TE)), t0);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut end = 0u64;
    let mut check = |item: MediaItem| {
        if let MediaItem::Audio(f) = item {
            assert_eq!(f.position, end);
            assert!(f.len >= 1 && (f.filled || f.len <= 160));
            end += u64::from(f.len);
        }
    };
    for i in 0..20_000u64 {
        let len = (next() % 300) as usize;
        let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Most of them look like RTP of a few SSRCs and payload types, to reach deep paths.
        if i % 4 != 0 && d.len() >= 12 {
            d[0] = 0x80 | (d[0] & 0x3F);
            d[1] = [0, 101, 13, 0x80][(next() % 4) as usize];
            d[8..12].copy_from_slice(&[0, 0, 0, (next() % 3) as u8]);
        }
        let now = t0 + Duration::from_millis(i * 7);
        let _ = rx.handle_packet(now, PEER, &d, &mut check);
        if i % 10 == 0 {
            rx.handle_timeout(now, &mut check);
        }
    }
    rx.handle_timeout(t0 + Duration::from_secs(100_000), &mut check);
    assert_eq!(end, rx.position());
    assert!(rx.stats().malformed > 0);
}
