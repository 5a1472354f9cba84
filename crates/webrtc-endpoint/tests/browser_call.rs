//! A str0m client plays the browser: it offers PCMU + Opus + telephone-event (the SDK's
//! default order), our leg answers as ICE-lite, and media flows both ways in simulated time.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{tone_8k, Pair};
use media_engine::receiver::MediaReceiver;
use media_engine::{g711, Codec as G711, MediaItem};
use str0m::format::{Codec, CodecExtra};
use str0m::media::{Frequency, MediaTime, TelephoneEvent};
use webrtc_endpoint::{AudioCodec, LegConfig};

const FRAME: usize = 160;
/// First RTP timestamp the client writes; arbitrary, not 0.
const CLIENT_TS: u64 = 16_000;

fn config() -> LegConfig {
    LegConfig::new(false).expect("certificate")
}

/// The address handed to the receiver as the datagrams' source: the leg already checked the
/// real one, so any fixed value latches.
fn peer() -> SocketAddr {
    "127.0.0.1:50000".parse().expect("addr")
}

#[test]
fn browser_audio_and_digit_reach_the_media_receiver_sample_for_sample() {
    let mut pair = Pair::browser_calls(&config(), &[Codec::PCMU, Codec::Opus]);
    let chosen = pair.leg.chosen().expect("answerer knows its codec");
    assert_eq!(chosen.codec, AudioCodec::Pcmu);
    assert_eq!((chosen.pt, chosen.telephone_event_pt), (0, Some(126)));
    let origin = pair.now;
    pair.connect();

    // 1 s of PCMU, a frame every 20 ms, then a '5' after it.
    let pcm = tone_8k();
    let sent = client_sends(&mut pair, &pcm);
    pair.run_for(Duration::from_millis(20));
    let event_ts = MediaTime::new(CLIENT_TS + pcm.len() as u64, Frequency::EIGHT_KHZ);
    let now = pair.now;
    let mid = pair.client_mid;
    pair.client
        .writer(mid)
        .expect("writer")
        .telephone_event(TelephoneEvent {
            event: 5,
            end: true,
            volume: 10,
            duration: Duration::from_millis(160),
        })
        .write(0.into(), now, event_ts, &[][..])
        .expect("client sends a key");
    pair.run_for(Duration::from_secs(1));

    // Every frame and every event packet came out of the leg, events as RFC 4733 blocks.
    let audio = pair
        .received
        .iter()
        .filter(|m| !m.is_telephone_event())
        .count();
    assert_eq!(audio, sent.len() / FRAME);
    let events: Vec<_> = pair
        .received
        .iter()
        .filter(|m| m.is_telephone_event())
        .collect();
    assert!(
        events.len() >= 4,
        "start, updates and end reports: {}",
        events.len()
    );
    assert!(events.iter().all(|e| e.pt == 126 && e.payload()[0] == 5));
    assert_eq!(events.last().map(|e| e.payload()[1] & 0x80), Some(0x80));

    // Through the unchanged SIP receiver.
    let (timeline, items) = through_receiver(&pair, origin);
    let mut expected = vec![0i16; sent.len()];
    g711::decode(G711::Pcmu, &sent, &mut expected);
    // The tone, then the key's 160 ms span (filled: no audio covers it).
    assert_eq!(timeline.len(), expected.len() + 1280);
    assert!(
        timeline[..expected.len()] == expected[..],
        "decoded samples differ from those sent"
    );
    let first_audio = items
        .iter()
        .find_map(|item| match item {
            MediaItem::Audio(frame) if !frame.filled => Some(frame.position),
            _ => None,
        })
        .expect("audio");

    let digits: Vec<_> = items
        .iter()
        .filter_map(|item| match item {
            MediaItem::Dtmf(d) => Some(*d),
            _ => None,
        })
        .collect();
    assert_eq!(digits.len(), 1, "{digits:?}");
    assert_eq!(digits[0].digit, '5');
    // The key starts where the audio ended: 8000 samples after the first one.
    assert_eq!(digits[0].position, first_audio + pcm.len() as u64);
}

#[test]
fn leg_audio_and_digit_reach_the_browser() {
    let mut pair = Pair::browser_calls(&config(), &[Codec::PCMU, Codec::Opus]);
    pair.connect();
    let pcm = tone_8k();
    let mut sent = vec![0u8; pcm.len() / 2];
    g711::encode(G711::Pcmu, &pcm[..sent.len()], &mut sent);
    let start = pair.now;
    for (i, frame) in sent.chunks(FRAME).enumerate() {
        pair.run_until(start + Duration::from_millis(20 * i as u64));
        let now = pair.now;
        pair.leg
            .write_audio(
                now,
                4_000_000_000u32.wrapping_add((i * FRAME) as u32),
                frame,
            )
            .expect("leg writes");
        pair.drain();
    }
    pair.run_for(Duration::from_millis(20));
    let now = pair.now;
    pair.leg.send_digit(now, '7').expect("digit");
    pair.run_for(Duration::from_secs(1));

    let got: Vec<u8> = pair
        .client_media
        .iter()
        .filter(|d| d.params.spec().codec == Codec::PCMU)
        .flat_map(|d| d.data.iter().copied())
        .collect();
    assert!(
        got == sent,
        "the browser got {} of {} bytes",
        got.len(),
        sent.len()
    );

    let keys: Vec<_> = pair
        .client_media
        .iter()
        .filter_map(|d| match d.codec_extra {
            CodecExtra::Tele(e) => Some(e),
            _ => None,
        })
        .collect();
    assert!(!keys.is_empty());
    assert!(keys.iter().all(|e| e.event == 7));
    let last = keys.last().expect("end report");
    assert!(last.end);
    assert_eq!(last.duration, Duration::from_millis(160));
}

#[test]
fn leg_offers_and_the_browser_answers() {
    let mut pair = Pair::leg_calls(&config(), &[Codec::PCMU, Codec::Opus]);
    let chosen = pair.leg.chosen().expect("answer applied");
    assert_eq!(chosen.codec, AudioCodec::Pcmu);
    assert_eq!(chosen.telephone_event_pt, Some(126));
    pair.connect();
    let now = pair.now;
    let mid = pair.client_mid;
    pair.client
        .writer(mid)
        .expect("writer")
        .write(
            0.into(),
            now,
            MediaTime::new(0, Frequency::EIGHT_KHZ),
            &[0xFFu8; 160][..],
        )
        .expect("client writes");
    pair.run_for(Duration::from_millis(100));
    assert_eq!(pair.received.len(), 1);
    assert_eq!(pair.received[0].payload(), [0xFF; 160]);
}

/// The client sends `pcm` as 20 ms PCMU frames starting now.
fn client_sends(pair: &mut Pair, pcm: &[i16]) -> Vec<u8> {
    let mut sent = vec![0u8; pcm.len()];
    g711::encode(G711::Pcmu, pcm, &mut sent);
    let first_frame_at = pair.now;
    for (i, frame) in sent.chunks(FRAME).enumerate() {
        pair.run_until(first_frame_at + Duration::from_millis(20 * i as u64));
        let ts = MediaTime::new(CLIENT_TS + (i * FRAME) as u64, Frequency::EIGHT_KHZ);
        let now = pair.now;
        let mid = pair.client_mid;
        pair.client
            .writer(mid)
            .expect("writer")
            .write(0.into(), now, ts, frame)
            .expect("client writes PCMU");
    }
    sent
}

/// What the receiver makes of everything the leg handed out: the timeline from the first
/// received sample on (filled spans as zeros), and the items.
fn through_receiver(pair: &Pair, origin: std::time::Instant) -> (Vec<i16>, Vec<MediaItem>) {
    let chosen = pair.leg.chosen().expect("negotiated");
    let mut receiver = MediaReceiver::new(chosen.receiver_config(), origin);
    let mut items = Vec::new();
    let mut datagram = Vec::new();
    for media in &pair.received {
        media.write_rtp(&mut datagram);
        receiver
            .handle_packet(media.arrival, peer(), &datagram, |item| items.push(item))
            .expect("synthesized RTP parses");
    }
    receiver.handle_timeout(pair.now + Duration::from_secs(1), |item| items.push(item));
    let mut timeline = Vec::new();
    let mut start = None;
    for item in &items {
        let MediaItem::Audio(frame) = item else {
            continue;
        };
        if start.is_none() && frame.filled {
            continue; // Before the first packet: not part of the stream.
        }
        let start = *start.get_or_insert(frame.position);
        assert_eq!(
            frame.position - start,
            timeline.len() as u64,
            "frames tile the timeline"
        );
        if frame.filled {
            timeline.resize(timeline.len() + usize::from(frame.len), 0);
        } else {
            timeline.extend_from_slice(frame.pcm());
        }
    }
    (timeline, items)
}

#[test]
fn lost_packets_become_silence_at_their_place_on_the_timeline() {
    let mut pair = Pair::browser_calls(&config(), &[Codec::PCMU, Codec::Opus]);
    let origin = pair.now;
    pair.connect();
    pair.lose_pcmu_to_leg = vec![10, 11];
    let pcm = tone_8k();
    let sent = client_sends(&mut pair, &pcm);
    pair.run_for(Duration::from_secs(1));

    let audio = pair
        .received
        .iter()
        .filter(|m| !m.is_telephone_event())
        .count();
    assert_eq!(audio, sent.len() / FRAME - 2);
    let (timeline, _) = through_receiver(&pair, origin);
    let mut expected = vec![0i16; sent.len()];
    g711::decode(G711::Pcmu, &sent, &mut expected);
    expected[10 * FRAME..12 * FRAME].fill(0);
    assert_eq!(timeline.len(), expected.len());
    assert!(
        timeline == expected,
        "the audio after the loss is misplaced"
    );
}

#[test]
fn vanished_browser_is_reported_as_disconnected() {
    let mut pair = Pair::browser_calls(&config(), &[Codec::PCMU]);
    pair.connect();
    pair.run_for(Duration::from_secs(2));
    assert!(!pair.leg_disconnected);
    pair.client_gone = true;
    let gone_at = pair.now;
    while !pair.leg_disconnected && pair.now - gone_at < Duration::from_secs(60) {
        pair.run_for(Duration::from_millis(500));
    }
    // str0m 0.25 as ICE-lite gives up ~14.5 s after the last check (measured here).
    assert!(pair.leg_disconnected, "no Disconnected within 60 s");
}
