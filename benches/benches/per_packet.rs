//! The per-RTP-packet path, one packet (20 ms of audio) per iteration, plus the per-call
//! parses (SIP INVITE, TwiML) for scale.

use std::hint::black_box;

use control::{parse_document, ParseLimits};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hark_benches::{
    arrivals, audio_stream, dtmf_stream, rtp_header, sipp_invite, speech, timed_chunks, PEER,
    RING_CAPACITY, SSRC, TELEPHONE_EVENT_PT, TWIML_RECORD,
};
use media_engine::receiver::{MediaReceiver, ReceiverConfig};
use media_engine::rfc4733::EventDeduplicator;
use media_engine::ring::media_ring;
use media_engine::{g711, rtp, AudioFrame, Codec, MediaItem, FRAME_SAMPLES};

/// Packets walked before the receiver is rebuilt (untimed): 33 minutes of one call.
const STREAM_PACKETS: usize = 100_000;

fn rtp_parse(c: &mut Criterion) {
    let s = speech();
    let mut g = c.benchmark_group("rtp_parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("pcmu_172B", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % s.datagrams.len();
            rtp::parse(black_box(&s.datagrams[i])).map(|v| (v.sequence, v.payload.len()))
        })
    });
    g.finish();
}

fn g711_decode_160(c: &mut Criterion) {
    let s = speech();
    let mut g = c.benchmark_group("g711_decode_160");
    g.throughput(Throughput::Elements(1));
    for (name, codec, payloads) in [
        ("pcmu", Codec::Pcmu, &s.pcmu),
        ("pcma", Codec::Pcma, &s.pcma),
    ] {
        g.bench_function(name, |b| {
            let mut out = [0i16; FRAME_SAMPLES];
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % payloads.len();
                g711::decode(codec, black_box(&payloads[i]), &mut out);
                black_box(&out);
            })
        });
    }
    g.finish();
}

fn rfc4733_dedup(c: &mut Criterion) {
    // Presses only go forward in time; the deduplicator is rebuilt when the stream restarts.
    let stream = dtmf_stream(10_000);
    let mut g = c.benchmark_group("rfc4733_dedup");
    g.throughput(Throughput::Elements(1));
    g.bench_function("accept", |b| {
        b.iter_custom(|iters| {
            timed_chunks(
                iters,
                stream.len(),
                |_| EventDeduplicator::new(),
                |d, i| {
                    let (ts, payload) = &stream[i];
                    let _ = black_box(d.accept(SSRC, *ts, black_box(payload)));
                },
            )
        })
    });
    g.finish();
}

fn ring_push_pop(c: &mut Criterion) {
    let s = speech();
    let (mut tx, mut rx) = media_ring(RING_CAPACITY);
    let mut frame = AudioFrame::narrow(0, FRAME_SAMPLES as u16, false);
    frame.samples[..FRAME_SAMPLES].copy_from_slice(&s.pcm[100]);
    let mut g = c.benchmark_group("ring_push_pop");
    g.throughput(Throughput::Elements(1));
    g.bench_function("audio_frame", |b| {
        b.iter(|| {
            frame.position += FRAME_SAMPLES as u64;
            let pushed = tx.push(black_box(MediaItem::Audio(frame)));
            (pushed, rx.pop())
        })
    });
    g.finish();
}

/// One `handle_packet` per iteration over `packets` (in order, arriving at `times`), emitting
/// into the ring, which is drained in the same iteration.
fn bench_receiver<P: AsRef<[u8]>>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    config: ReceiverConfig,
    packets: &[P],
    times: &[std::time::Instant],
) {
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            timed_chunks(
                iters,
                packets.len(),
                |_| {
                    let (tx, rx) = media_ring(RING_CAPACITY);
                    (MediaReceiver::new(config, times[0]), tx, rx)
                },
                |(receiver, tx, rx), i| {
                    let packet = packets[i].as_ref();
                    let verdict = receiver.handle_packet(times[i], PEER, packet, |item| {
                        tx.push(item);
                    });
                    black_box(verdict).ok();
                    while let Some(item) = rx.pop() {
                        black_box(&item);
                    }
                },
            )
        })
    });
}

fn receiver_handle_packet(c: &mut Criterion) {
    let s = speech();
    let packets = audio_stream(&s.pcmu, 0, STREAM_PACKETS);
    let times = arrivals(STREAM_PACKETS);
    let config = ReceiverConfig::new(Codec::Pcmu, 0, Some(TELEPHONE_EVENT_PT));
    let mut g = c.benchmark_group("receiver_handle_packet");
    g.throughput(Throughput::Elements(1));
    bench_receiver(&mut g, "pcmu_in_order", config, &packets, &times);
    g.finish();
}

/// An Opus caller's packet: parse, place on the timeline, decode to 16 kHz (libopus) and
/// emit two-per-sample wideband frames. The stream is the speech fixture encoded once.
fn receiver_handle_packet_opus(c: &mut Criterion) {
    const OPUS_PT: u8 = 111;
    let s = speech();
    let mut encoder = media_engine::opus::OpusEncoder::new().expect("opus encoder");
    let mut packets = Vec::with_capacity(s.pcm.len());
    for (i, frame) in s.pcm.iter().enumerate() {
        let mut payload = [0u8; media_engine::opus::MAX_PACKET];
        let n = encoder.encode(frame, &mut payload).expect("encode");
        let mut p = rtp_header(OPUS_PT, false, i as u16, (i as u32) * 960, SSRC).to_vec();
        p.extend_from_slice(&payload[..n]);
        packets.push(p);
    }
    let times = arrivals(packets.len());
    let config = ReceiverConfig::opus(OPUS_PT, Some(110));
    let mut g = c.benchmark_group("receiver_handle_packet");
    g.throughput(Throughput::Elements(1));
    bench_receiver(&mut g, "opus_in_order_16k", config, &packets, &times);
    g.finish();
}

fn sip_parse_invite(c: &mut Criterion) {
    let invite = sipp_invite();
    let mut g = c.benchmark_group("sip_parse_invite");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sipp_with_sdp", |b| {
        b.iter(|| sip_core::parse_message(black_box(&invite)))
    });
    g.finish();
}

fn twiml_parse(c: &mut Criterion) {
    let limits = ParseLimits::default();
    let mut g = c.benchmark_group("twiml_parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("record_document", |b| {
        b.iter(|| parse_document(black_box(TWIML_RECORD), &limits))
    });
    g.finish();
}

criterion_group!(
    benches,
    rtp_parse,
    g711_decode_160,
    rfc4733_dedup,
    ring_push_pop,
    receiver_handle_packet,
    receiver_handle_packet_opus,
    sip_parse_invite,
    twiml_parse
);
criterion_main!(benches);
