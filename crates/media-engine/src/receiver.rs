//! One call's inbound RTP: latch, reorder, fill gaps, decode, DTMF.
//!
//! The timeline is in samples since the media session's origin (when its socket opened): the first
//! stream starts where its first packet's arrival puts it, so a caller whose media starts late
//! is placed late, not at 0. Packets of the current SSRC are released in sequence order and
//! placed by RTP timestamp; whatever the released audio does not cover is emitted as silence, so
//! consecutive frames tile the timeline exactly.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::rfc4733::{EventDeduplicator, EventError};
use crate::rtp::{self, RtpError};
use crate::{
    g711, AudioFrame, Codec, DtmfEvent, DtmfSource, MediaItem, FRAME_SAMPLES, SAMPLE_RATE,
    WIDE_FRAME_SAMPLES,
};

/// Upper bound of `reorder_window`: the hold array is fixed.
pub const MAX_REORDER_WINDOW: usize = 16;
/// Payload bytes kept for a held packet (60 ms of G.711, any 20 ms Opus packet a browser or
/// phone sends); the rest of a longer out-of-order packet is lost and its span filled with
/// silence.
const MAX_HELD_PAYLOAD: usize = 1280;
/// RFC 3550 A.1: a sequence jump beyond these is a restart, confirmed by a second packet.
const MAX_MISORDER: i32 = 100;
const MAX_DROPOUT: i32 = 3000;
/// Slack allowed between the RTP timestamp gap and the arrival gap before the timestamps are
/// distrusted.
const TS_SLACK: i64 = SAMPLE_RATE as i64;
/// Gaps up to this many frames are filled with 20 ms frames; a longer one (silence suppression,
/// media that starts late) is one filled frame spanning it, so it never floods the consumer's
/// ring and pushes out the audio that follows it.
const MAX_FILL_FRAMES: u64 = 25;

/// How the audio payload type is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioPayload {
    /// 8 kHz narrowband frames.
    G711(Codec),
    /// 48 kHz RTP clock, decoded to 16 kHz wideband frames.
    Opus,
}

impl AudioPayload {
    /// RTP timestamp units per timeline (8 kHz) sample.
    fn ts_per_sample(self) -> i64 {
        match self {
            AudioPayload::G711(_) => 1,
            AudioPayload::Opus => i64::from(crate::opus::TS_PER_TIMELINE_SAMPLE),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ReceiverConfig {
    pub payload: AudioPayload,
    pub codec_pt: u8,
    pub telephone_event_pt: Option<u8>,
    /// Packets held back to put late arrivals in order (at most [`MAX_REORDER_WINDOW`]).
    pub reorder_window: u16,
    /// Longest a packet is held waiting for a missing predecessor.
    pub max_hold: Duration,
}

impl ReceiverConfig {
    pub fn new(codec: Codec, codec_pt: u8, telephone_event_pt: Option<u8>) -> Self {
        Self::with_payload(AudioPayload::G711(codec), codec_pt, telephone_event_pt)
    }

    /// Opus at `codec_pt` (telephone-event, if any, on the same 48 kHz clock).
    pub fn opus(codec_pt: u8, telephone_event_pt: Option<u8>) -> Self {
        Self::with_payload(AudioPayload::Opus, codec_pt, telephone_event_pt)
    }

    fn with_payload(payload: AudioPayload, codec_pt: u8, telephone_event_pt: Option<u8>) -> Self {
        Self {
            payload,
            codec_pt,
            telephone_event_pt,
            reorder_window: 5,
            max_hold: Duration::from_millis(60),
        }
    }
}

/// What happened to one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketVerdict {
    /// Audio or event accepted (it may be held for reordering).
    Accepted,
    /// A retransmission/duplicate, or older than the reorder window.
    Late,
    /// From an address other than the latched one.
    ForeignSource,
    /// A payload type that was not negotiated (comfort noise counts as silence).
    UnknownPayloadType(u8),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Datagrams handed in, whatever became of them.
    pub packets: u64,
    /// Datagrams that are not RTP (RTCP excluded) or carry a truncated event payload.
    pub malformed: u64,
    pub late: u64,
    pub foreign: u64,
    pub filled_samples: u64,
    /// Key presses reported (RFC 4733 and SIP INFO).
    pub dtmf_events: u64,
}

/// What a sequence slot of the current SSRC carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotKind {
    Audio,
    /// A telephone-event packet: the tone covers the timestamps up to `end_ts`.
    Event {
        end_ts: u32,
    },
    /// Comfort noise or another payload type: takes a sequence number, carries no audio.
    Skip,
}

#[derive(Clone, Copy)]
struct Held {
    seq: u16,
    ts: u32,
    arrival: Instant,
    kind: SlotKind,
    len: u16,
    payload: [u8; MAX_HELD_PAYLOAD],
}

/// The SSRC whose timestamps drive the timeline.
#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    /// Payload of the packets held for this stream (a re-INVITE may change the config's).
    payload: AudioPayload,
    next_seq: u16,
    /// RFC 3550 A.1 `bad_seq`: the sequence number that confirms a restart.
    bad_seq: Option<u16>,
    /// `anchor_ts` sits at timeline index `anchor_pos`; it arrived at `anchor_arrival`.
    anchor_ts: u32,
    anchor_pos: u64,
    anchor_arrival: Instant,
    /// End of the latest released telephone event of this SSRC and when it arrived: the span
    /// is filled at timeout when no audio comes to cover it.
    event_end: Option<(u32, Instant)>,
}

impl Stream {
    /// Timeline index of an RTP timestamp of this stream (clamped at 0).
    fn position_of(&self, ts: u32) -> u64 {
        let d = self.ts_delta(ts);
        (self.anchor_pos as i64 + d).max(0) as u64
    }

    /// `ts - anchor_ts` in timeline samples.
    fn ts_delta(&self, ts: u32) -> i64 {
        i64::from(ts.wrapping_sub(self.anchor_ts) as i32) / self.payload.ts_per_sample()
    }

    /// Timeline index of `ts`, or `None` when the timestamp gap does not fit the arrival gap
    /// (negative beyond a second, or more than the arrival gap plus a second).
    fn plausible_position(&self, ts: u32, arrival: Instant) -> Option<u64> {
        let d = self.ts_delta(ts);
        let limit =
            samples_in(arrival.saturating_duration_since(self.anchor_arrival)) as i64 + TS_SLACK;
        (-TS_SLACK..=limit)
            .contains(&d)
            .then(|| (self.anchor_pos as i64 + d).max(0) as u64)
    }

    /// Timeline index by arrival time alone, rounded to whole 20 ms frames.
    fn arrival_position(&self, arrival: Instant) -> u64 {
        let gap = samples_in(arrival.saturating_duration_since(self.anchor_arrival));
        let frame = FRAME_SAMPLES as u64;
        self.anchor_pos + (gap + frame / 2) / frame * frame
    }
}

fn samples_in(d: Duration) -> u64 {
    (d.as_nanos() * u128::from(SAMPLE_RATE) / 1_000_000_000).min(u128::from(u64::MAX)) as u64
}

/// Whether something that arrived at `arrival` has waited `hold` by `now`.
fn expired(arrival: Instant, hold: Duration, now: Instant) -> bool {
    arrival.checked_add(hold).is_some_and(|t| t <= now)
}

/// Sequence distance `a - b` on the 16-bit circle.
fn seq_delta(a: u16, b: u16) -> i32 {
    i32::from(a.wrapping_sub(b) as i16)
}

pub struct MediaReceiver {
    config: ReceiverConfig,
    latched: Option<SocketAddr>,
    last_packet_at: Option<Instant>,
    stats: ReceiverStats,
    /// Timeline index one past the last emitted sample.
    end: u64,
    stream: Option<Stream>,
    /// After `renegotiate`: the next packet starts a new stream (the old one is kept for its
    /// held packets and its anchor).
    stream_forgotten: bool,
    held: Box<[Option<Held>; MAX_REORDER_WINDOW]>,
    held_count: usize,
    dedup: EventDeduplicator,
    /// Timeline index 0.
    origin: Instant,
    /// Opus keeps state from packet to packet: one decoder per receiver, made when Opus is
    /// negotiated (`None` for G.711, or if libopus could not make one: its audio is then
    /// silence).
    opus: Option<Box<crate::opus::OpusDecoder>>,
}

fn opus_decoder(config: &ReceiverConfig) -> Option<Box<crate::opus::OpusDecoder>> {
    if config.payload != AudioPayload::Opus {
        return None;
    }
    crate::opus::OpusDecoder::new().ok().map(Box::new)
}

impl MediaReceiver {
    /// `origin` is timeline index 0: when the media session began (the daemon opens it before
    /// answering), so the first packet is placed at its arrival time after it.
    pub fn new(config: ReceiverConfig, origin: Instant) -> Self {
        Self {
            origin,
            opus: opus_decoder(&config),
            config,
            latched: None,
            last_packet_at: None,
            stats: ReceiverStats::default(),
            end: 0,
            stream: None,
            stream_forgotten: false,
            held: Box::new([None; MAX_REORDER_WINDOW]),
            held_count: 0,
            dedup: EventDeduplicator::new(),
        }
    }

    /// Feeds one datagram. `emit` receives audio frames and DTMF events in timeline order.
    pub fn handle_packet<F: FnMut(MediaItem)>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        mut emit: F,
    ) -> Result<PacketVerdict, RtpError> {
        self.stats.packets += 1;
        let view = match rtp::parse(datagram) {
            Ok(v) => v,
            Err(e) => {
                if !matches!(e, RtpError::Rtcp(_)) {
                    self.stats.malformed += 1;
                }
                return Err(e);
            }
        };
        match self.latched {
            None => self.latched = Some(from),
            Some(addr) if addr != from => {
                self.stats.foreign += 1;
                return Ok(PacketVerdict::ForeignSource);
            }
            Some(_) => {}
        }
        self.last_packet_at = Some(now);
        self.expire(now, &mut emit);

        let pt = view.payload_type;
        if pt == self.config.codec_pt {
            if self.current_ssrc() != Some(view.ssrc) {
                self.begin_stream(now, view.ssrc, view.sequence, view.timestamp, &mut emit);
            }
            let verdict = self.offer(
                now,
                view.sequence,
                view.timestamp,
                SlotKind::Audio,
                view.payload,
                &mut emit,
            );
            return Ok(verdict);
        }
        if Some(pt) == self.config.telephone_event_pt {
            return Ok(self.handle_event(now, view, &mut emit));
        }
        if self.current_ssrc() == Some(view.ssrc) {
            // Comfort noise and friends take a sequence number of the stream.
            self.offer(
                now,
                view.sequence,
                view.timestamp,
                SlotKind::Skip,
                &[],
                &mut emit,
            );
        }
        Ok(PacketVerdict::UnknownPayloadType(pt))
    }

    /// Releases packets held longer than `max_hold`, filling what never came with silence;
    /// fills the span of a telephone event that no audio came to cover.
    pub fn handle_timeout<F: FnMut(MediaItem)>(&mut self, now: Instant, mut emit: F) {
        self.expire(now, &mut emit);
        if self.held_count > 0 || self.stream_forgotten {
            return;
        }
        let Some(stream) = self.stream else { return };
        let Some((end_ts, arrival)) = stream.event_end else {
            return;
        };
        if !expired(arrival, self.config.max_hold, now) {
            return;
        }
        if let Some(s) = self.stream.as_mut() {
            s.event_end = None;
        }
        let Some(pos) = stream.plausible_position(end_ts, arrival) else {
            return;
        };
        if pos > self.end {
            self.fill_to(pos, &mut emit);
            if let Some(s) = self.stream.as_mut() {
                s.anchor_ts = end_ts;
                s.anchor_pos = pos;
                s.anchor_arrival = arrival;
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let hold = self.config.max_hold;
        let held = self
            .held
            .iter()
            .flatten()
            .filter_map(|h| h.arrival.checked_add(hold))
            .min();
        let event = match self.stream {
            Some(s) if self.held_count == 0 && !self.stream_forgotten => s
                .event_end
                .filter(|&(ts, _)| s.position_of(ts) > self.end)
                .and_then(|(_, arrival)| arrival.checked_add(hold)),
            _ => None,
        };
        held.into_iter().chain(event).min()
    }

    /// A key from SIP INFO received at `now`: at the end of the timeline while RTP flows; by the
    /// clock when it has stalled for a second or never started (a key pressed on a muted phone
    /// is not in the past).
    pub fn inject_dtmf<F: FnMut(MediaItem)>(&mut self, digit: char, now: Instant, mut emit: F) {
        self.stats.dtmf_events += 1;
        let flowing = self
            .last_packet_at
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1));
        let position = if flowing {
            self.end
        } else {
            self.origin_position(now).max(self.end)
        };
        emit(MediaItem::Dtmf(DtmfEvent {
            digit,
            position,
            source: DtmfSource::SipInfo,
        }));
    }

    /// A re-INVITE changed the codec or the remote address: forget the latch and the SSRC,
    /// keep the timeline position. Packets still held are released with the next packet or
    /// timeout; the next stream is placed by arrival time.
    pub fn renegotiate(&mut self, config: ReceiverConfig) {
        if config.payload != self.config.payload {
            self.opus = opus_decoder(&config);
        }
        self.config = config;
        self.latched = None;
        self.stream_forgotten = self.stream.is_some();
    }

    /// The source we latched onto (symmetric RTP: send our RTP there).
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }

    /// Arrival of the last RTP packet from the latched source.
    pub fn last_packet_at(&self) -> Option<Instant> {
        self.last_packet_at
    }

    /// Samples on the timeline so far.
    pub fn position(&self) -> u64 {
        self.end
    }

    pub fn stats(&self) -> ReceiverStats {
        self.stats
    }

    fn current_ssrc(&self) -> Option<u32> {
        self.stream
            .filter(|_| !self.stream_forgotten)
            .map(|s| s.ssrc)
    }

    fn handle_event(
        &mut self,
        now: Instant,
        view: rtp::RtpView<'_>,
        emit: &mut impl FnMut(MediaItem),
    ) -> PacketVerdict {
        let press = self.dedup.accept(view.ssrc, view.timestamp, view.payload);
        if self.current_ssrc().is_none() {
            // Events before any audio: their SSRC starts the timeline.
            self.begin_stream(now, view.ssrc, view.sequence, view.timestamp, emit);
        }
        let same_ssrc = self.current_ssrc() == Some(view.ssrc);
        let mut verdict = PacketVerdict::Accepted;
        if same_ssrc {
            let duration = match press {
                Ok(_) => view
                    .payload
                    .get(2..4)
                    .map_or(0, |d| u16::from_be_bytes([d[0], d[1]])),
                Err(_) => 0,
            };
            let end_ts = view.timestamp.wrapping_add(u32::from(duration));
            verdict = self.offer(
                now,
                view.sequence,
                view.timestamp,
                SlotKind::Event { end_ts },
                &[],
                emit,
            );
        }
        match press {
            Ok(Some(event)) => {
                let position = match self.stream {
                    Some(s) if same_ssrc => s.position_of(view.timestamp),
                    _ => self.end,
                };
                self.stats.dtmf_events += 1;
                emit(MediaItem::Dtmf(DtmfEvent {
                    digit: event.digit,
                    position,
                    source: DtmfSource::Rfc4733,
                }));
                PacketVerdict::Accepted
            }
            Ok(None) | Err(EventError::NotDtmf(_)) => verdict,
            Err(EventError::TooShort(_)) => {
                self.stats.malformed += 1;
                verdict
            }
        }
    }

    /// Starts the timeline of a new SSRC (or after `renegotiate`): what the old stream still
    /// holds is released, then the new stream begins where arrival time puts it.
    fn begin_stream(
        &mut self,
        now: Instant,
        ssrc: u32,
        seq: u16,
        ts: u32,
        emit: &mut impl FnMut(MediaItem),
    ) {
        self.flush(emit);
        let pos = match self.stream {
            // A re-INVITE that only moved the media keeps SSRC and timestamps: keep the
            // mapping, so network jitter at the switch inserts no silence.
            Some(old) if old.ssrc == ssrc => old
                .plausible_position(ts, now)
                .unwrap_or_else(|| old.arrival_position(now))
                .max(self.end),
            Some(old) => old.arrival_position(now).max(self.end),
            // The first stream: where its arrival puts it. The time before it is not loss.
            None => {
                let pos = self.origin_position(now).max(self.end);
                self.fill(pos, emit);
                pos
            }
        };
        self.fill_to(pos, emit);
        self.stream = Some(Stream {
            ssrc,
            payload: self.config.payload,
            next_seq: seq,
            bad_seq: None,
            anchor_ts: ts,
            anchor_pos: pos,
            anchor_arrival: now,
            event_end: None,
        });
        self.stream_forgotten = false;
    }

    /// Puts one packet of the current stream into sequence order.
    fn offer(
        &mut self,
        now: Instant,
        seq: u16,
        ts: u32,
        kind: SlotKind,
        payload: &[u8],
        emit: &mut impl FnMut(MediaItem),
    ) -> PacketVerdict {
        let Some(stream) = self.stream.as_mut() else {
            return PacketVerdict::Late;
        };
        let mut delta = seq_delta(seq, stream.next_seq);
        if !(-MAX_MISORDER..=MAX_DROPOUT).contains(&delta) {
            if stream.bad_seq != Some(seq) {
                stream.bad_seq = Some(seq.wrapping_add(1));
                return self.late();
            }
            // Two packets in a row agree: the sender restarted its sequence numbers.
            self.flush(emit);
            if let Some(s) = self.stream.as_mut() {
                s.next_seq = seq;
                s.bad_seq = None;
            }
            delta = 0;
        }
        if delta < 0 || self.held.iter().flatten().any(|h| h.seq == seq) {
            return self.late();
        }
        let window = usize::from(self.config.reorder_window).min(MAX_REORDER_WINDOW);
        while delta > 0 && self.held_count >= window {
            // No room to wait: give up on the gap before the earliest packet we have.
            let this_is_earliest = match self.earliest_held() {
                Some((_, held_delta)) => delta < held_delta,
                None => true,
            };
            if this_is_earliest || !self.release_earliest(emit) {
                if let Some(s) = self.stream.as_mut() {
                    s.next_seq = seq;
                }
            }
            delta = self.stream.map_or(0, |s| seq_delta(seq, s.next_seq));
        }
        if delta == 0 {
            self.release(seq, ts, now, kind, payload, emit);
            self.release_ready(emit);
        } else if let Some(slot) = self.held.iter_mut().find(|h| h.is_none()) {
            let mut held = Held {
                seq,
                ts,
                arrival: now,
                kind,
                len: 0,
                payload: [0; MAX_HELD_PAYLOAD],
            };
            let n = payload.len().min(MAX_HELD_PAYLOAD);
            held.payload[..n].copy_from_slice(&payload[..n]);
            held.len = n as u16;
            *slot = Some(held);
            self.held_count += 1;
        }
        PacketVerdict::Accepted
    }

    fn late(&mut self) -> PacketVerdict {
        self.stats.late += 1;
        PacketVerdict::Late
    }

    /// Index and sequence distance of the held packet next in sequence order.
    fn earliest_held(&self) -> Option<(usize, i32)> {
        let s = self.stream?;
        self.held
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.map(|h| (i, seq_delta(h.seq, s.next_seq))))
            .min_by_key(|&(_, d)| d)
    }

    /// Gives up on the gap before the earliest held packet and releases from there; false
    /// when nothing was released.
    fn release_earliest(&mut self, emit: &mut impl FnMut(MediaItem)) -> bool {
        let Some((i, _)) = self.earliest_held() else {
            return false;
        };
        let Some(h) = self.held.get(i).copied().flatten() else {
            return false;
        };
        let Some(s) = self.stream.as_mut() else {
            return false;
        };
        s.next_seq = h.seq;
        let before = self.held_count;
        self.release_ready(emit);
        self.held_count < before
    }

    /// Releases held packets while the next one in sequence is present.
    fn release_ready(&mut self, emit: &mut impl FnMut(MediaItem)) {
        while let Some(next) = self.stream.map(|s| s.next_seq) {
            let Some(slot) = self
                .held
                .iter_mut()
                .find(|h| h.is_some_and(|h| h.seq == next))
            else {
                break;
            };
            let Some(h) = slot.take() else { break };
            self.held_count -= 1;
            let payload = h.payload.get(..usize::from(h.len)).unwrap_or_default();
            self.release(h.seq, h.ts, h.arrival, h.kind, payload, emit);
        }
    }

    /// Releases everything held, in sequence order, giving up on the gaps.
    fn flush(&mut self, emit: &mut impl FnMut(MediaItem)) {
        while self.release_earliest(emit) {}
    }

    /// Releases held packets when one of them has waited `max_hold`.
    fn expire(&mut self, now: Instant, emit: &mut impl FnMut(MediaItem)) {
        let hold = self.config.max_hold;
        while self
            .held
            .iter()
            .flatten()
            .any(|h| expired(h.arrival, hold, now))
        {
            if !self.release_earliest(emit) {
                break;
            }
        }
    }

    /// Places the next packet in sequence on the timeline.
    fn release(
        &mut self,
        seq: u16,
        ts: u32,
        arrival: Instant,
        kind: SlotKind,
        payload: &[u8],
        emit: &mut impl FnMut(MediaItem),
    ) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        stream.next_seq = seq.wrapping_add(1);
        match kind {
            SlotKind::Skip => {}
            SlotKind::Event { end_ts } => {
                let later = match stream.event_end {
                    Some((prev, _)) => (end_ts.wrapping_sub(prev) as i32) >= 0,
                    None => true,
                };
                if later {
                    stream.event_end = Some((end_ts, arrival));
                }
            }
            SlotKind::Audio => {
                let s = *stream;
                let pos = s
                    .plausible_position(ts, arrival)
                    .unwrap_or_else(|| s.arrival_position(arrival))
                    .max(self.end);
                stream.anchor_ts = ts;
                stream.anchor_pos = pos;
                stream.anchor_arrival = arrival;
                self.fill_to(pos, emit);
                match s.payload {
                    AudioPayload::G711(codec) => {
                        for chunk in payload.chunks(FRAME_SAMPLES) {
                            let mut frame = AudioFrame::narrow(self.end, chunk.len() as u16, false);
                            g711::decode(codec, chunk, &mut frame.samples);
                            self.end += chunk.len() as u64;
                            emit(MediaItem::Audio(frame));
                        }
                    }
                    AudioPayload::Opus => self.release_opus(payload, emit),
                }
            }
        }
    }

    /// Decodes an Opus packet into 20 ms wideband frames. A packet that does not decode adds
    /// nothing: the next packet's position fills its span with silence.
    fn release_opus(&mut self, payload: &[u8], emit: &mut impl FnMut(MediaItem)) {
        let mut pcm = [0i16; crate::opus::MAX_DECODED];
        let decoded = match self.opus.as_mut() {
            Some(d) => d.decode(payload, &mut pcm),
            None => return,
        };
        let Ok(n) = decoded else {
            self.stats.malformed += 1;
            return;
        };
        for chunk in pcm[..n].chunks(WIDE_FRAME_SAMPLES) {
            let len = (chunk.len() / 2) as u16;
            let mut frame = AudioFrame::narrow(self.end, len, false);
            frame.wide = true;
            frame.samples[..chunk.len()].copy_from_slice(chunk);
            self.end += u64::from(len);
            emit(MediaItem::Audio(frame));
        }
    }

    /// Timeline index of an arrival by the clock alone. Not rounded: a consumer that starts
    /// capturing at the clock's present must find the next packet at or after that point.
    fn origin_position(&self, arrival: Instant) -> u64 {
        samples_in(arrival.saturating_duration_since(self.origin))
    }

    /// Emits silence from the timeline end up to `pos`, counted as lost audio.
    fn fill_to(&mut self, pos: u64, emit: &mut impl FnMut(MediaItem)) {
        self.stats.filled_samples += pos.saturating_sub(self.end);
        self.fill(pos, emit);
    }

    /// Emits silence from the timeline end up to `pos`: frames of at most 160 samples, or one
    /// frame per 65535 samples when the gap is longer than [`MAX_FILL_FRAMES`].
    fn fill(&mut self, pos: u64, emit: &mut impl FnMut(MediaItem)) {
        let frame = FRAME_SAMPLES as u64;
        let step = if pos.saturating_sub(self.end) > MAX_FILL_FRAMES * frame {
            u64::from(u16::MAX)
        } else {
            frame
        };
        while self.end < pos {
            let len = (pos - self.end).min(step);
            emit(MediaItem::Audio(AudioFrame::narrow(
                self.end, len as u16, true,
            )));
            self.end += len;
        }
    }
}

#[cfg(test)]
mod tests;
