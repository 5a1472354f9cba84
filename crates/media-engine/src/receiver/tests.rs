use std::net::{IpAddr, Ipv4Addr};

use super::*;

const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 4000);
const OTHER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 4000);
const SSRC: u32 = 0x1111;
const TE: u8 = 101;

fn pkt(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, (u8::from(marker) << 7) | pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A µ-law byte that names the packet it came from (all of 0x10..0x70 survive decode+encode).
fn tag(seq: u16) -> u8 {
    0x10 + (seq % 0x60) as u8
}

fn event(code: u8, end: bool, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    [code, if end { 0x8A } else { 0x0A }, d[0], d[1]]
}

struct Harness {
    rx: MediaReceiver,
    t0: Instant,
    items: Vec<MediaItem>,
}

impl Harness {
    fn new() -> Self {
        Self::with(ReceiverConfig::new(Codec::Pcmu, 0, Some(TE)))
    }
    fn with(config: ReceiverConfig) -> Self {
        let t0 = Instant::now();
        Self {
            rx: MediaReceiver::new(config, t0),
            t0,
            items: Vec::new(),
        }
    }
    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }
    fn send_from(
        &mut self,
        ms: u64,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<PacketVerdict, RtpError> {
        let now = self.at(ms);
        let items = &mut self.items;
        self.rx
            .handle_packet(now, from, datagram, |i| items.push(i))
    }
    fn send(&mut self, ms: u64, datagram: &[u8]) -> PacketVerdict {
        self.send_from(ms, PEER, datagram).unwrap()
    }
    /// 20 ms PCMU packet of `SSRC` tagged with its seq.
    fn audio(&mut self, ms: u64, seq: u16, ts: u32) -> PacketVerdict {
        self.send(ms, &pkt(0, false, seq, ts, SSRC, &[tag(seq); 160]))
    }
    fn timeout(&mut self, ms: u64) {
        let now = self.at(ms);
        let items = &mut self.items;
        self.rx.handle_timeout(now, |i| items.push(i));
    }
    fn frames(&self) -> Vec<AudioFrame> {
        self.items
            .iter()
            .filter_map(|i| match i {
                MediaItem::Audio(f) => Some(*f),
                MediaItem::Dtmf(_) => None,
            })
            .collect()
    }
    fn dtmf(&self) -> Vec<DtmfEvent> {
        self.items
            .iter()
            .filter_map(|i| match i {
                MediaItem::Dtmf(d) => Some(*d),
                MediaItem::Audio(_) => None,
            })
            .collect()
    }
    /// Per emitted frame: (position, len, Some(seq tag) for audio / None for fill).
    fn layout(&self) -> Vec<(u64, u16, Option<u8>)> {
        self.frames()
            .iter()
            .map(|f| {
                let mut b = [0u8];
                g711::encode(Codec::Pcmu, &f.samples[..1], &mut b);
                (f.position, f.len, (!f.filled).then_some(b[0]))
            })
            .collect()
    }
    /// Frames tile [0, position()) with no overlap and no hole.
    fn assert_tiles(&self) {
        let mut end = 0;
        for f in self.frames() {
            assert_eq!(
                f.position, end,
                "frame {f:?} does not start at the timeline end"
            );
            assert!(f.len >= 1 && (f.filled || f.len <= 160));
            end += u64::from(f.len);
        }
        assert_eq!(end, self.rx.position());
    }
}

#[test]
fn first_packet_latches_source_and_others_are_foreign() {
    let mut h = Harness::new();
    assert_eq!(h.rx.latched(), None);
    assert_eq!(h.audio(0, 10, 1000), PacketVerdict::Accepted);
    assert_eq!(h.rx.latched(), Some(PEER));
    let p = pkt(0, false, 11, 1160, SSRC, &[0x20; 160]);
    assert_eq!(h.send_from(20, OTHER, &p), Ok(PacketVerdict::ForeignSource));
    assert_eq!(h.rx.position(), 160);
    assert_eq!(h.rx.stats().foreign, 1);
    assert_eq!(h.rx.last_packet_at(), Some(h.at(0)));
}

#[test]
fn renegotiate_clears_latch_and_keeps_position() {
    let mut h = Harness::new();
    h.audio(0, 10, 1000);
    h.rx.renegotiate(ReceiverConfig::new(Codec::Pcma, 8, None));
    assert_eq!(h.rx.latched(), None);
    // New address, codec and SSRC 40 ms later: placed by arrival time.
    let p = pkt(8, true, 500, 77, 0x2222, &[0xD5; 160]);
    assert_eq!(h.send_from(40, OTHER, &p), Ok(PacketVerdict::Accepted));
    assert_eq!(h.rx.latched(), Some(OTHER));
    let f = h.frames();
    let layout: Vec<_> = f.iter().map(|f| (f.position, f.len, f.filled)).collect();
    assert_eq!(
        layout,
        vec![(0, 160, false), (160, 160, true), (320, 160, false)]
    );
    // Decoded as A-law now: 0xD5 is +8.
    assert!(f[2].pcm().iter().all(|&s| s == 8));
}

#[test]
fn renegotiate_to_a_new_address_with_the_same_ssrc_keeps_the_timestamp_mapping() {
    let mut h = Harness::new();
    for i in 0..5u16 {
        h.audio(u64::from(i) * 20, 10 + i, 1000 + u32::from(i) * 160);
    }
    h.rx.renegotiate(ReceiverConfig::new(Codec::Pcmu, 0, Some(TE)));
    // The same stream continues from a new address, 35 ms late (jitter at the switch).
    let p = pkt(0, false, 15, 1000 + 5 * 160, SSRC, &[tag(15); 160]);
    assert_eq!(h.send_from(115, OTHER, &p), Ok(PacketVerdict::Accepted));
    let layout: Vec<_> = h.frames().iter().map(|f| (f.position, f.filled)).collect();
    let expected: Vec<_> = (0..6u64).map(|i| (i * 160, false)).collect();
    assert_eq!(layout, expected, "no silence inserted, no overlap");
}

#[test]
fn in_order_packets_tile_from_zero_with_decoded_audio() {
    let mut h = Harness::new();
    for i in 0..5u16 {
        h.audio(u64::from(i) * 20, 100 + i, 5000 + u32::from(i) * 160);
    }
    let expect: Vec<_> = (0..5u16)
        .map(|i| (u64::from(i) * 160, 160, Some(tag(100 + i))))
        .collect();
    assert_eq!(h.layout(), expect);
    let mut pcm = [0i16; 1];
    g711::decode(Codec::Pcmu, &[tag(100)], &mut pcm);
    assert!(h.frames()[0].pcm().iter().all(|&s| s == pcm[0]));
    h.assert_tiles();
}

#[test]
fn reordered_packets_are_released_in_sequence_order() {
    let mut h = Harness::new();
    for (ms, i) in [(0, 0u16), (20, 2), (40, 1), (60, 4), (80, 3), (100, 5)] {
        assert_eq!(h.audio(ms, i, u32::from(i) * 160), PacketVerdict::Accepted);
    }
    let expect: Vec<_> = (0..6u16)
        .map(|i| (u64::from(i) * 160, 160, Some(tag(i))))
        .collect();
    assert_eq!(h.layout(), expect);
    assert_eq!(h.rx.stats().filled_samples, 0);
}

#[test]
fn duplicates_and_packets_behind_the_released_point_are_late() {
    let mut h = Harness::new();
    h.audio(0, 0, 0);
    h.audio(20, 1, 160);
    h.audio(40, 3, 480);
    assert_eq!(
        h.audio(41, 3, 480),
        PacketVerdict::Late,
        "duplicate of a held packet"
    );
    assert_eq!(
        h.audio(42, 1, 160),
        PacketVerdict::Late,
        "duplicate of a released packet"
    );
    assert_eq!(h.rx.stats().late, 2);
    assert_eq!(h.rx.position(), 320);
}

#[test]
fn full_window_gives_up_on_the_gap_and_fills_it() {
    let mut h = Harness::new(); // window 5
    h.audio(0, 0, 0);
    // A burst, well within max_hold.
    for i in 2..=6u16 {
        h.audio(20 + u64::from(i), i, u32::from(i) * 160);
    }
    assert_eq!(h.rx.position(), 160, "five packets held waiting for seq 1");
    h.audio(30, 7, 7 * 160);
    let mut expect = vec![(0, 160, Some(tag(0))), (160, 160, None)];
    expect.extend((2..=7u16).map(|i| (u64::from(i) * 160, 160, Some(tag(i)))));
    assert_eq!(h.layout(), expect);
    assert_eq!(h.rx.stats().filled_samples, 160);
    assert_eq!(h.audio(31, 1, 160), PacketVerdict::Late);
    h.assert_tiles();
}

#[test]
fn earlier_packet_than_all_held_is_released_first_when_window_is_full() {
    let mut h = Harness::new();
    h.audio(0, 0, 0);
    for i in 3..=7u16 {
        h.audio(20 + u64::from(i), i, u32::from(i) * 160);
    }
    // Window full; seq 2 arrives: give up on 1, release 2 then 3..7.
    h.audio(30, 2, 320);
    let tags: Vec<_> = h.layout().iter().map(|f| f.2).collect();
    let mut expect = vec![Some(tag(0)), None];
    expect.extend((2..=7u16).map(|i| Some(tag(i))));
    assert_eq!(tags, expect);
    h.assert_tiles();
}

#[test]
fn max_hold_timeout_releases_held_packets_with_fill() {
    let mut h = Harness::new();
    h.audio(0, 0, 0);
    h.audio(40, 2, 320);
    assert_eq!(h.rx.poll_timeout(), Some(h.at(100)));
    h.timeout(99);
    assert_eq!(h.rx.position(), 160);
    h.timeout(100);
    assert_eq!(
        h.layout(),
        vec![
            (0, 160, Some(tag(0))),
            (160, 160, None),
            (320, 160, Some(tag(2)))
        ]
    );
    assert_eq!(h.rx.poll_timeout(), None);
}

#[test]
fn expired_packets_are_also_released_by_the_next_packet() {
    let mut h = Harness::new();
    h.audio(0, 0, 0);
    h.audio(40, 2, 320);
    h.audio(200, 3, 480);
    assert_eq!(h.rx.position(), 640);
    assert_eq!(h.audio(201, 1, 160), PacketVerdict::Late);
}

#[test]
fn packet_of_30_ms_is_emitted_as_160_plus_80() {
    let mut h = Harness::new();
    for i in 0..3u16 {
        h.send(
            u64::from(i) * 30,
            &pkt(0, false, i, u32::from(i) * 240, SSRC, &[tag(i); 240]),
        );
    }
    assert_eq!(
        h.layout(),
        vec![
            (0, 160, Some(tag(0))),
            (160, 80, Some(tag(0))),
            (240, 160, Some(tag(1))),
            (400, 80, Some(tag(1))),
            (480, 160, Some(tag(2))),
            (640, 80, Some(tag(2))),
        ]
    );
}

#[test]
fn silence_suppression_gap_is_filled_from_timestamps() {
    let mut h = Harness::new();
    h.audio(0, 0, 0);
    // Next talkspurt 500 ms later, sequence continuous.
    h.audio(520, 1, 160 + 4000);
    h.assert_tiles();
    assert_eq!(h.rx.position(), 160 + 4000 + 160);
    assert_eq!(h.rx.stats().filled_samples, 4000);
    let fills: Vec<_> = h
        .frames()
        .iter()
        .filter(|f| f.filled)
        .map(|f| f.len)
        .collect();
    assert_eq!(fills, [vec![160u16; 25]].concat());
}

#[test]
fn implausible_timestamp_jump_is_placed_by_arrival_time() {
    let mut h = Harness::new();
    h.audio(0, 0, 0);
    // Timestamp says one hour later; it arrived 1 s later.
    h.audio(1000, 1, 8000 * 3600);
    assert_eq!(h.rx.position(), 8000 + 160);
    h.audio(1020, 2, 8000 * 3600 + 160);
    assert_eq!(h.rx.position(), 8000 + 320);
    h.assert_tiles();
}

#[test]
fn backwards_timestamp_is_placed_by_arrival_time_rounded_to_20_ms() {
    let mut h = Harness::new();
    h.audio(0, 0, 1_000_000);
    h.audio(2009, 1, 5);
    // 2009 ms rounds to 2000 ms = 16000 samples.
    assert_eq!(h.layout().last(), Some(&(16000, 160, Some(tag(1)))));
    h.assert_tiles();
}

#[test]
fn new_ssrc_is_placed_by_arrival_time_not_timestamps() {
    let mut h = Harness::new();
    h.audio(0, 0, 0);
    h.audio(20, 1, 160);
    let p = pkt(0, true, 9000, 123_456_789, 0x9999, &[0x30; 160]);
    h.send(320, &p);
    assert_eq!(h.layout().last(), Some(&(160 + 2400, 160, Some(0x30))));
    h.assert_tiles();
}

#[test]
fn ssrc_change_flushes_held_packets_of_the_old_stream_first() {
    let mut h = Harness::new();
    h.audio(0, 0, 0);
    h.audio(40, 2, 320);
    h.send(60, &pkt(0, false, 7, 99, 0x9999, &[0x30; 160]));
    let tags: Vec<_> = h.layout().iter().map(|f| f.2).collect();
    assert_eq!(tags, vec![Some(tag(0)), None, Some(tag(2)), Some(0x30)]);
    h.assert_tiles();
}

#[test]
fn comfort_noise_is_unknown_payload_type_and_takes_its_sequence_number() {
    let mut h = Harness::new();
    h.audio(0, 0, 0);
    assert_eq!(
        h.send(20, &pkt(13, false, 1, 160, SSRC, &[40])),
        PacketVerdict::UnknownPayloadType(13)
    );
    // Audio resumes right after the CN packet: no waiting for seq 1.
    h.audio(400, 2, 3200);
    assert_eq!(h.rx.position(), 3360);
    assert_eq!(h.rx.stats().filled_samples, 3040);
    h.assert_tiles();
}

#[test]
fn sequence_restart_is_accepted_after_two_packets_agree() {
    let mut h = Harness::new();
    h.audio(0, 100, 0);
    assert_eq!(h.audio(20, 30000, 160), PacketVerdict::Late);
    assert_eq!(h.audio(40, 30001, 320), PacketVerdict::Accepted);
    assert_eq!(h.audio(60, 30002, 480), PacketVerdict::Accepted);
    assert_eq!(h.rx.position(), 640);
    h.assert_tiles();
}

#[test]
fn sequence_wraps_around_65535() {
    let mut h = Harness::new();
    h.audio(0, 65534, 0);
    h.audio(20, 0, 320);
    h.audio(40, 65535, 160);
    assert_eq!(
        h.layout().iter().map(|f| f.2).collect::<Vec<_>>(),
        vec![Some(tag(65534)), Some(tag(65535)), Some(tag(0))]
    );
}

#[test]
fn zero_reorder_window_releases_immediately() {
    let mut cfg = ReceiverConfig::new(Codec::Pcmu, 0, None);
    cfg.reorder_window = 0;
    let mut h = Harness::with(cfg);
    h.audio(0, 0, 0);
    h.audio(20, 2, 320);
    assert_eq!(h.rx.position(), 480);
    assert_eq!(h.audio(21, 1, 160), PacketVerdict::Late);
}

#[test]
fn event_on_audio_ssrc_is_positioned_by_its_timestamp() {
    let mut h = Harness::new();
    for i in 0..3u16 {
        h.audio(u64::from(i) * 20, i, 1000 + u32::from(i) * 160);
    }
    h.send(60, &pkt(TE, true, 3, 1480, SSRC, &event(5, false, 160)));
    h.send(80, &pkt(TE, false, 4, 1480, SSRC, &event(5, false, 320)));
    assert_eq!(
        h.dtmf(),
        vec![DtmfEvent {
            digit: '5',
            position: 480,
            source: DtmfSource::Rfc4733
        }]
    );
    // Audio resumes: the event span is silence, no waiting on seq 3 and 4.
    h.audio(100, 5, 1480 + 320);
    assert_eq!(
        h.layout(),
        vec![
            (0, 160, Some(tag(0))),
            (160, 160, Some(tag(1))),
            (320, 160, Some(tag(2))),
            (480, 160, None),
            (640, 160, None),
            (800, 160, Some(tag(5))),
        ]
    );
    assert!(
        matches!(h.items[3], MediaItem::Dtmf(_)),
        "DTMF follows the audio before it"
    );
}

#[test]
fn event_on_its_own_ssrc_is_positioned_at_timeline_end() {
    let mut h = Harness::new();
    h.audio(0, 0, 0);
    h.audio(20, 1, 160);
    let e = pkt(TE, true, 77, 999_999, 0xE0E0, &event(11, false, 160));
    assert_eq!(h.send(30, &e), PacketVerdict::Accepted);
    assert_eq!(
        h.dtmf(),
        vec![DtmfEvent {
            digit: '#',
            position: 320,
            source: DtmfSource::Rfc4733
        }]
    );
    // Events of another SSRC never move the timeline.
    h.timeout(1000);
    assert_eq!(h.rx.position(), 320);
}

#[test]
fn events_only_span_is_filled_at_timeout() {
    let mut h = Harness::new();
    h.audio(0, 0, 0);
    for i in 1..=4u16 {
        let end = i == 4;
        h.send(
            u64::from(i) * 20,
            &pkt(
                TE,
                i == 1,
                i,
                160,
                SSRC,
                &event(1, end, if end { 480 } else { 160 * i }),
            ),
        );
    }
    assert_eq!(h.rx.position(), 160);
    assert_eq!(h.rx.poll_timeout(), Some(h.at(140)));
    h.timeout(139);
    assert_eq!(h.rx.position(), 160);
    h.timeout(140);
    assert_eq!(h.rx.position(), 640);
    assert_eq!(h.rx.poll_timeout(), None);
    // Audio after that continues from the event's end.
    h.audio(400, 5, 640);
    assert_eq!(h.rx.position(), 800);
    h.assert_tiles();
    assert_eq!(h.dtmf()[0].position, 160);
}

#[test]
fn events_before_any_audio_start_the_timeline() {
    let mut h = Harness::new();
    h.send(0, &pkt(TE, true, 50, 8000, SSRC, &event(1, false, 160)));
    h.send(20, &pkt(TE, false, 51, 8000, SSRC, &event(1, true, 320)));
    h.audio(100, 52, 8000 + 800);
    assert_eq!(h.dtmf()[0].position, 0);
    assert_eq!(h.layout().last(), Some(&(800, 160, Some(tag(52)))));
    h.assert_tiles();
}

#[test]
fn inject_dtmf_is_placed_at_timeline_end() {
    let mut h = Harness::new();
    h.audio(0, 0, 0);
    let now = h.at(500);
    let items = &mut h.items;
    h.rx.inject_dtmf('#', now, |i| items.push(i));
    assert_eq!(
        h.dtmf(),
        vec![DtmfEvent {
            digit: '#',
            position: 160,
            source: DtmfSource::SipInfo
        }]
    );
    assert_eq!(h.rx.stats().dtmf_events, 1);
}

#[test]
fn malformed_and_rtcp_are_errors_and_counted_apart() {
    let mut h = Harness::new();
    assert_eq!(
        h.send_from(0, PEER, &[0x80, 0, 1]),
        Err(RtpError::TooShort(3))
    );
    assert_eq!(
        h.send_from(0, PEER, &[0x81, 201, 0, 7, 0, 0, 0, 1]),
        Err(RtpError::Rtcp(201))
    );
    // Short telephone-event payload: valid RTP, no key.
    h.send(0, &pkt(TE, true, 1, 0, SSRC, &[11, 0x80]));
    let s = h.rx.stats();
    assert_eq!((s.packets, s.malformed, s.dtmf_events), (3, 2, 0));
    assert_eq!(h.rx.latched(), Some(PEER), "only valid RTP latches");
}

#[test]
fn oversized_held_packet_keeps_the_timeline_intact() {
    let mut h = Harness::new();
    h.audio(0, 0, 0);
    // 200 ms packet held out of order: only 160 ms (1280 bytes) are kept, the rest becomes
    // silence.
    h.send(40, &pkt(0, false, 2, 320, SSRC, &[0x40; 1600]));
    h.audio(41, 1, 160);
    h.audio(240, 3, 1920);
    let audio: u64 = h
        .frames()
        .iter()
        .filter(|f| !f.filled)
        .map(|f| u64::from(f.len))
        .sum();
    assert_eq!(audio, 160 + 160 + 1280 + 160);
    assert_eq!(h.rx.position(), 2080);
    h.assert_tiles();
}

#[test]
fn first_packet_is_placed_at_its_arrival_after_the_origin() {
    let mut h = Harness::new();
    // The phone starts sending 4.5 s after the session opened (muted at answer).
    h.audio(4510, 10, 777_000);
    h.audio(4530, 11, 777_160);
    // 4510 ms = 36080 samples, not rounded; the time before is one silent frame.
    assert_eq!(
        h.layout(),
        vec![
            (0, 36080, None),
            (36080, 160, Some(tag(10))),
            (36240, 160, Some(tag(11)))
        ]
    );
    h.assert_tiles();
    assert_eq!(
        h.rx.stats().filled_samples,
        0,
        "waiting for the first packet is not loss"
    );
}

#[test]
fn first_packet_is_at_its_exact_arrival_and_at_zero_when_it_opens_the_session() {
    let mut h = Harness::new();
    h.audio(9, 10, 5);
    assert_eq!(h.layout(), vec![(0, 72, None), (72, 160, Some(tag(10)))]);
    let mut h = Harness::new();
    h.audio(0, 10, 5);
    assert_eq!(h.layout(), vec![(0, 160, Some(tag(10)))]);
}

#[test]
fn long_silence_suppression_gap_is_one_filled_frame_not_hundreds() {
    let mut h = Harness::new();
    h.audio(0, 0, 0);
    // Next talkspurt 5 s later (DTX): a ring of 48 frames must not overflow before the audio.
    h.audio(5020, 1, 160 + 40_000);
    assert_eq!(
        h.layout(),
        vec![
            (0, 160, Some(tag(0))),
            (160, 40_000, None),
            (40_160, 160, Some(tag(1)))
        ]
    );
    h.assert_tiles();
    assert_eq!(h.rx.stats().filled_samples, 40_000);
    // The long frame's samples are silence and its pcm() stays within the array.
    let f = h.frames()[1];
    assert!(f.filled && f.pcm().len() == 160 && f.pcm().iter().all(|&s| s == 0));
    assert_eq!(f.end(), 40_160);
}

#[test]
fn gap_longer_than_a_u16_is_several_filled_frames() {
    let mut h = Harness::new();
    h.audio(0, 0, 0);
    // 20 s later, timestamps agreeing.
    h.audio(20_020, 1, 160 + 160_000);
    let fills: Vec<_> = h
        .frames()
        .iter()
        .filter(|f| f.filled)
        .map(|f| f.len)
        .collect();
    assert_eq!(fills, vec![65535, 65535, 28930]);
    h.assert_tiles();
}

#[test]
fn inject_dtmf_without_flowing_rtp_is_placed_by_the_clock() {
    // No RTP at all: 2.5 s after the origin.
    let mut h = Harness::new();
    let now = h.at(2500);
    let items = &mut h.items;
    h.rx.inject_dtmf('#', now, |i| items.push(i));
    assert_eq!(h.dtmf()[0].position, 20_000);
    // RTP that stopped 3 s ago: the clock, not the stale end.
    let mut h = Harness::new();
    h.audio(0, 0, 0);
    let now = h.at(3000);
    let items = &mut h.items;
    h.rx.inject_dtmf('#', now, |i| items.push(i));
    assert_eq!(h.dtmf()[0].position, 24_000);
}

/// 20 ms Opus packets of a 440 Hz tone at 8 kHz input, as a phone or browser would send them.
fn opus_packets(n: u32) -> Vec<Vec<u8>> {
    let mut enc = crate::opus::OpusEncoder::new().unwrap();
    (0..n)
        .map(|f| {
            let mut pcm = [0i16; FRAME_SAMPLES];
            for (i, s) in pcm.iter_mut().enumerate() {
                let t = f64::from(f * 160 + i as u32) / 8000.0;
                *s = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
            }
            let mut out = [0u8; crate::opus::MAX_PACKET];
            let len = enc.encode(&pcm, &mut out).unwrap();
            out[..len].to_vec()
        })
        .collect()
}

#[test]
fn opus_is_decoded_to_wideband_frames_on_the_8k_timeline() {
    const OPUS: u8 = 111;
    let mut h = Harness::with(ReceiverConfig::opus(OPUS, Some(110)));
    let packets = opus_packets(50);
    for (i, p) in packets.iter().enumerate() {
        // Packet 20 is lost; 48 kHz clock: 960 per 20 ms.
        if i == 20 {
            continue;
        }
        let i = i as u32;
        h.send(
            u64::from(i) * 20,
            &pkt(OPUS, i == 0, i as u16, 5000 + i * 960, SSRC, p),
        );
    }
    let frames = h.frames();
    let audio: Vec<&AudioFrame> = frames.iter().filter(|f| !f.filled).collect();
    assert_eq!(audio.len(), 49);
    assert!(audio
        .iter()
        .all(|f| f.wide && f.len == 160 && f.pcm().len() == 320));
    // The lost packet's 20 ms are silence at its place on the timeline.
    let lost = frames.iter().find(|f| f.filled).expect("a filled frame");
    assert_eq!(
        (lost.position, lost.len, lost.wide),
        (audio[19].end(), 160, false)
    );
    assert_eq!(h.rx.position(), audio[0].position + 50 * 160);
    h.assert_tiles();
    // 440 Hz: 880 zero crossings a second, 176 in 200 ms.
    let pcm: Vec<i16> = audio[30..40]
        .iter()
        .flat_map(|f| f.pcm().to_vec())
        .collect();
    let crossings = pcm.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    assert!(
        (170..=182).contains(&crossings),
        "{crossings} crossings in 200 ms"
    );
}

#[test]
fn opus_telephone_event_at_48k_is_placed_by_its_timestamp() {
    const OPUS: u8 = 111;
    const TE48: u8 = 110;
    let mut h = Harness::with(ReceiverConfig::opus(OPUS, Some(TE48)));
    let packets = opus_packets(10);
    for (i, p) in packets.iter().enumerate().take(5) {
        let i = i as u32;
        h.send(
            u64::from(i) * 20,
            &pkt(OPUS, false, i as u16, i * 960, SSRC, p),
        );
    }
    // A key at the 48 kHz timestamp of 100 ms: timeline position 800.
    h.send(100, &pkt(TE48, true, 5, 4800, SSRC, &event(1, false, 960)));
    let keys: Vec<DtmfEvent> = h
        .items
        .iter()
        .filter_map(|i| match i {
            MediaItem::Dtmf(d) => Some(*d),
            MediaItem::Audio(_) => None,
        })
        .collect();
    let first = h.frames()[0].position;
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0].digit, keys[0].position), ('1', first + 800));
}

#[test]
fn malformed_opus_counts_as_malformed_and_its_span_is_filled() {
    const OPUS: u8 = 111;
    let mut h = Harness::with(ReceiverConfig::opus(OPUS, None));
    let packets = opus_packets(3);
    h.send(0, &pkt(OPUS, false, 0, 0, SSRC, &packets[0]));
    h.send(20, &pkt(OPUS, false, 1, 960, SSRC, &[0x03, 0x00]));
    h.send(40, &pkt(OPUS, false, 2, 1920, SSRC, &packets[2]));
    assert_eq!(h.rx.stats().malformed, 1);
    let frames = h.frames();
    let audio = frames.iter().filter(|f| !f.filled).count();
    assert_eq!(audio, 2);
    h.assert_tiles();
}
