//! Replays the toolkit's captures (copied to tests/data) through the receiver.

mod common;

use std::time::Duration;

use common::*;
use media_engine::pcap::PcapRtp;
use media_engine::receiver::PacketVerdict;
use media_engine::{Codec, DtmfSource};

fn replay(codec: Codec, pt: u8, pkts: &[PcapRtp]) -> Run {
    let mut run = Run::new(codec, pt);
    for p in pkts {
        run.feed(p.time_offset, &p.rtp);
    }
    run.finish();
    run
}

fn payload_pcm(codec: Codec, pkts: &[PcapRtp]) -> Vec<i16> {
    pkts.iter()
        .flat_map(|p| decode(codec, media_engine::rtp::parse(&p.rtp).unwrap().payload))
        .collect()
}

#[test]
fn speech_pcmu_decodes_every_payload_onto_a_gapless_timeline() {
    let pkts = pcap("speech_pcmu.pcap");
    assert_eq!(pkts.len(), 409);
    assert_eq!((pkts[0].src_port, pkts[0].dst_port), (6000, 6002));
    assert_eq!(pkts[408].time_offset, Duration::from_millis(408 * 20));
    let run = replay(Codec::Pcmu, 0, &pkts);
    let pcm = run.timeline();
    assert_eq!(pcm.len(), 409 * 160);
    assert_eq!(pcm, payload_pcm(Codec::Pcmu, &pkts));
    assert!(run.frames().iter().all(|f| !f.filled && f.len == 160));
    assert!(run.verdicts.iter().all(|v| *v == PacketVerdict::Accepted));
    assert_eq!(run.rx.stats().filled_samples, 0);
}

#[test]
fn speech_pcma_decodes_as_alaw() {
    let pkts = pcap("speech_pcma.pcap");
    assert_eq!(header(&pkts[0].rtp).0, 8);
    let run = replay(Codec::Pcma, 8, &pkts);
    assert_eq!(run.timeline(), payload_pcm(Codec::Pcma, &pkts));
}

#[test]
fn shuffled_within_3_with_2_dropped_keeps_length_and_fills_exactly_the_drops() {
    let pkts = pcap("speech_pcmu.pcap");
    let dropped = [57usize, 200];
    // Reverse every block of 3 after the first packet (each packet moves at most 2 places),
    // arriving on the original 20 ms clock. The first packet to arrive starts the timeline.
    let mut order: Vec<usize> = vec![0];
    for block in (1..pkts.len()).collect::<Vec<_>>().chunks(3) {
        order.extend(block.iter().rev());
    }
    let mut run = Run::new(Codec::Pcmu, 0);
    for (slot, &i) in order.iter().enumerate() {
        if !dropped.contains(&i) {
            run.feed(pkts[slot].time_offset, &pkts[i].rtp);
        }
    }
    run.finish();
    let pcm = run.timeline();
    assert_eq!(pcm.len(), 409 * 160);
    let filled: Vec<u64> = run
        .frames()
        .iter()
        .filter(|f| f.filled)
        .map(|f| f.position)
        .collect();
    assert_eq!(filled, vec![57 * 160, 200 * 160]);
    assert!(run.frames().iter().all(|f| f.len == 160));
    let expect = payload_pcm(Codec::Pcmu, &pkts);
    for i in 0..409 {
        let span = i * 160..(i + 1) * 160;
        if dropped.contains(&i) {
            assert!(pcm[span].iter().all(|&s| s == 0));
        } else {
            assert_eq!(pcm[span.clone()], expect[span], "packet {i}");
        }
    }
    assert_eq!(run.rx.stats().late, 0);
}

#[test]
fn dtmf_1_pound_reports_1_then_pound_once_each() {
    let pkts = pcap("dtmf_1_pound.pcap");
    assert_eq!(pkts.len(), 20);
    let run = replay(Codec::Pcmu, 0, &pkts);
    assert_eq!(run.digits(), "1#");
    // The event stream is the timeline: '#' began 2080 timestamp units after '1'.
    let pos: Vec<u64> = run.dtmf().iter().map(|d| d.position).collect();
    assert_eq!(pos, vec![0, 2080]);
    assert!(run.dtmf().iter().all(|d| d.source == DtmfSource::Rfc4733));
    // After the timeouts the tones' span is silence up to the end of '#'.
    assert_eq!(run.timeline().len(), 2080 + 1280);
}

#[test]
fn speech_then_pound_places_pound_at_its_rtp_timestamp() {
    let pkts = pcap("speech_then_pound.pcap");
    let first_ts = header(&pkts[0].rtp).2;
    let (pt, _, event_ts, _) = header(&pkts[409].rtp);
    assert_eq!(pt, TE);
    let run = replay(Codec::Pcmu, 0, &pkts);
    let dtmf = run.dtmf();
    assert_eq!(dtmf.len(), 1);
    assert_eq!(dtmf[0].digit, '#');
    assert_eq!(dtmf[0].position, u64::from(event_ts - first_ts));
    assert_eq!(dtmf[0].position, 409 * 160);
    // Audio then the tone's 160 ms as silence (no audio packets during the tone).
    let pcm = run.timeline();
    assert_eq!(pcm.len(), 409 * 160 + 1280);
    assert_eq!(pcm[..409 * 160], payload_pcm(Codec::Pcmu, &pkts[..409])[..]);
    // The DTMF item comes after all the audio before it.
    let dtmf_index = run
        .items
        .iter()
        .position(|i| matches!(i, media_engine::MediaItem::Dtmf(_)))
        .unwrap();
    assert_eq!(dtmf_index, 409);
}
