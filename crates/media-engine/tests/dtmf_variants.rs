//! RFC 4733 senders as seen in the wild (toolkit README): each press reported exactly once.

mod common;

use std::time::Duration;

use common::*;
use media_engine::{Codec, DtmfEvent, DtmfSource};

const AUDIO_SSRC: u32 = 0x6AA7_9987;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` 20 ms PCMU packets starting at seq/ts/time; returns (next seq, next ts, next ms).
fn speech(run: &mut Run, n: u16, seq: u16, ts: u32, at: u64) -> (u16, u32, u64) {
    for i in 0..n {
        let p = rtp(
            0,
            i == 0,
            seq + i,
            ts + u32::from(i) * 160,
            AUDIO_SSRC,
            &[0x42; 160],
        );
        run.feed(ms(at + u64::from(i) * 20), &p);
    }
    (seq + n, ts + u32::from(n) * 160, at + u64::from(n) * 20)
}

#[test]
fn sipp_shipped_pound_on_own_ssrc_with_repeated_end_seq_is_one_press_at_timeline_end() {
    // /usr/share/sip-tester/dtmf_2833_pound.pcap layout: 10 packets, event 11, own SSRC and
    // unrelated timestamps, the 3 end packets share one sequence number.
    let mut run = Run::new(Codec::Pcmu, 0);
    let (_, _, at) = speech(&mut run, 50, 1000, 160_000, 0);
    let (ssrc, ts, seq) = (0x0E05_384E, 3_000_000_000u32, 40_000u16);
    for i in 0..7u16 {
        run.feed(
            ms(at + u64::from(i) * 20),
            &rtp(
                TE,
                i == 0,
                seq + i,
                ts,
                ssrc,
                &event(11, false, 160 * (i + 1)),
            ),
        );
    }
    for i in 0..3u64 {
        run.feed(
            ms(at + 140 + i * 20),
            &rtp(TE, false, seq + 7, ts, ssrc, &event(11, true, 1280)),
        );
    }
    run.finish();
    assert_eq!(
        run.dtmf(),
        vec![DtmfEvent {
            digit: '#',
            position: 50 * 160,
            source: DtmfSource::Rfc4733
        }]
    );
    // Another SSRC's events never extend the audio timeline.
    assert_eq!(run.timeline().len(), 50 * 160);
}

#[test]
fn linphone_end_packets_back_to_back_with_same_seq_are_one_press() {
    let mut run = Run::new(Codec::Pcmu, 0);
    let (seq, ts, at) = speech(&mut run, 20, 7, 0, 0);
    for i in 0..5u16 {
        run.feed(
            ms(at + u64::from(i) * 20),
            &rtp(
                TE,
                i == 0,
                seq + i,
                ts,
                AUDIO_SSRC,
                &event(1, false, 160 * (i + 1)),
            ),
        );
    }
    let end = rtp(TE, false, seq + 5, ts, AUDIO_SSRC, &event(1, true, 800));
    for _ in 0..3 {
        run.feed(ms(at + 100), &end);
    }
    // Audio resumes where the tone ended.
    speech(&mut run, 5, seq + 6, ts + 800, at + 120);
    run.finish();
    assert_eq!(run.digits(), "1");
    assert_eq!(run.dtmf()[0].position, 20 * 160);
    let pcm = run.timeline();
    assert_eq!(pcm.len(), (20 + 5 + 5) * 160);
    assert_eq!(run.rx.stats().filled_samples, 800);
}

#[test]
fn baresip_audio_interleaved_during_event_is_one_press_and_no_fill() {
    let mut run = Run::new(Codec::Pcmu, 0);
    let (mut seq, mut ts, mut at) = speech(&mut run, 10, 100, 8000, 0);
    let start = ts;
    // Event lasts 1440 units (9 packets of updates), audio keeps flowing beside it.
    for i in 0..12u16 {
        let end = i >= 9;
        let dur = if end { 1440 } else { 160 * (i + 1) };
        run.feed(
            ms(at),
            &rtp(TE, i == 0, seq, start, AUDIO_SSRC, &event(11, end, dur)),
        );
        run.feed(
            ms(at + 1),
            &rtp(0, false, seq + 1, ts, AUDIO_SSRC, &[0x42; 160]),
        );
        seq += 2;
        ts += 160;
        at += 20;
    }
    speech(&mut run, 5, seq, ts, at);
    run.finish();
    assert_eq!(
        run.dtmf(),
        vec![DtmfEvent {
            digit: '#',
            position: 10 * 160,
            source: DtmfSource::Rfc4733
        }]
    );
    assert_eq!(run.timeline().len(), (10 + 12 + 5) * 160);
    assert_eq!(run.rx.stats().filled_samples, 0);
    assert_eq!(run.rx.stats().late, 0);
}

#[test]
fn same_digit_twice_is_two_presses_and_stale_end_is_ignored() {
    let mut run = Run::new(Codec::Pcmu, 0);
    let (mut seq, ts, at) = speech(&mut run, 5, 0, 0, 0);
    for (k, press_ts) in [ts, ts + 2080].into_iter().enumerate() {
        let t0 = at + k as u64 * 260;
        for i in 0..4u16 {
            let end = i == 3;
            let p = rtp(
                TE,
                i == 0,
                seq,
                press_ts,
                AUDIO_SSRC,
                &event(5, end, if end { 640 } else { 160 * (i + 1) }),
            );
            run.feed(ms(t0 + u64::from(i) * 20), &p);
            seq += 1;
        }
    }
    // A retransmitted end packet of the first press, long after.
    run.feed(
        ms(at + 900),
        &rtp(TE, false, seq, ts, AUDIO_SSRC, &event(5, true, 640)),
    );
    run.finish();
    let pos: Vec<u64> = run.dtmf().iter().map(|d| d.position).collect();
    assert_eq!(run.digits(), "55");
    assert_eq!(pos, vec![800, 800 + 2080]);
    run.timeline();
}

#[test]
fn press_whose_start_packets_were_lost_is_reported_on_its_end_packet() {
    let mut run = Run::new(Codec::Pcmu, 0);
    let (seq, ts, at) = speech(&mut run, 5, 0, 0, 0);
    for i in 0..3u16 {
        run.feed(
            ms(at + 140 + u64::from(i) * 20),
            &rtp(
                TE,
                false,
                seq + 7 + i,
                ts,
                AUDIO_SSRC,
                &event(9, true, 1280),
            ),
        );
    }
    run.finish();
    assert_eq!(
        run.dtmf(),
        vec![DtmfEvent {
            digit: '9',
            position: 800,
            source: DtmfSource::Rfc4733
        }]
    );
    // The tone's span is filled once no audio comes.
    assert_eq!(run.timeline().len(), 800 + 1280);
}

#[test]
fn sip_info_digit_lands_at_timeline_end() {
    let mut run = Run::new(Codec::Pcmu, 0);
    speech(&mut run, 3, 0, 0, 0);
    let now = run.t0 + Duration::from_millis(100);
    let items = &mut run.items;
    run.rx.inject_dtmf('*', now, |i| items.push(i));
    assert_eq!(
        run.dtmf(),
        vec![DtmfEvent {
            digit: '*',
            position: 480,
            source: DtmfSource::SipInfo
        }]
    );
}
