//! What to send each 20 ms: a prompt's audio ([`AudioPlayout`]) or keys ([`DigitSender`]
//! as RFC 4733 events, [`dtmf_audio`] as in-band tones when telephone-event was not
//! negotiated).
//!
//! The key schedule, shared by `<Play digits>` and the `hark call` test caller: per key, 8
//! event packets 20 ms apart (durations 160..1280, the marker on the first), 3 end packets
//! (E=1, duration 1280, each with its own sequence number; RFC 4733 §2.5.1.4), then a 100 ms
//! gap before the next key; a `w` is a 0.5 s pause. Every packet of a key carries the key's
//! start timestamp; after the last end packet the RTP clock jumps by the 220 ms the event
//! spanned, so audio after it stays on the real-time clock (and carries the marker bit).
//!
//! Sans-IO: the caller owns the clock and the socket and asks once per 20 ms tick. No
//! allocation per packet.

use std::sync::Arc;

use crate::sender::RtpSender;
use crate::{rfc4733, tone, FRAME_SAMPLES};

/// An RFC 4733 packet: 12-byte header + one 4-byte event block.
pub const EVENT_PACKET_BYTES: usize = 16;

/// Ticks of one key: tone, end packets, then the gap before the next key.
const TONE_TICKS: u32 = 8;
const END_TICKS: u32 = 3;
const GAP_TICKS: u32 = 5;
const KEY_TICKS: u32 = TONE_TICKS + END_TICKS + GAP_TICKS;
/// Ticks of a `w`: 0.5 s.
const PAUSE_TICKS: u32 = 25;
const TICK_SAMPLES: u32 = FRAME_SAMPLES as u32;

/// What one tick of a [`DigitSender`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitTick<'a> {
    /// Send `packet`; `key_started` on the first packet of a key.
    Event { packet: &'a [u8], key_started: bool },
    /// No event this tick (the gap after a key, a `w`, a character that is no key): send audio,
    /// or [`RtpSender::skip`] one frame so the RTP clock keeps pace.
    Gap,
    /// Every key has been sent; nothing was written.
    Finished,
}

/// Sends a string of keys as RFC 4733 events, one tick at a time.
#[derive(Debug, Clone)]
pub struct DigitSender {
    digits: Box<[char]>,
    event_pt: u8,
    /// The key being sent and its tick.
    index: usize,
    tick: u32,
}

/// One tick of the schedule, before it becomes bytes.
enum Step {
    Event {
        digit: char,
        start: bool,
        end: bool,
        duration: u16,
        last: bool,
    },
    Gap,
    Finished,
}

impl DigitSender {
    /// `digits` are keys (`0-9 * # A-D`, any case) and `w`/`W` pauses; any other character
    /// is a key's worth of silence. `event_pt` is the negotiated telephone-event payload type.
    pub fn new(digits: impl IntoIterator<Item = char>, event_pt: u8) -> Self {
        Self {
            digits: digits.into_iter().collect(),
            event_pt,
            index: 0,
            tick: 0,
        }
    }

    /// A re-INVITE renumbered telephone-event: the rest of the keys use `event_pt`.
    pub fn set_event_pt(&mut self, event_pt: u8) {
        self.event_pt = event_pt;
    }

    /// This tick's packet, written through `sender` into `out`. Call once per 20 ms. After the
    /// last end packet of a key the sender's clock has moved past the event.
    pub fn next<'a>(
        &mut self,
        sender: &mut RtpSender,
        out: &'a mut [u8; EVENT_PACKET_BYTES],
    ) -> DigitTick<'a> {
        match self.step() {
            Step::Event {
                digit,
                start,
                end,
                duration,
                last,
            } => {
                let len = sender.event_packet(self.event_pt, digit, start, end, duration, out);
                if last {
                    // The event's packets all carried its start timestamp: account for them.
                    sender.skip((TONE_TICKS + END_TICKS) * TICK_SAMPLES);
                }
                DigitTick::Event {
                    packet: out.get(..len).unwrap_or_default(),
                    key_started: start,
                }
            }
            Step::Gap => DigitTick::Gap,
            Step::Finished => DigitTick::Finished,
        }
    }

    fn step(&mut self) -> Step {
        loop {
            let Some(&digit) = self.digits.get(self.index) else {
                return Step::Finished;
            };
            let key = rfc4733::event_code(digit).is_some();
            let span = if digit == 'w' || digit == 'W' {
                PAUSE_TICKS
            } else {
                KEY_TICKS
            };
            if self.tick >= span {
                self.index += 1;
                self.tick = 0;
                continue;
            }
            let t = self.tick;
            self.tick += 1;
            return match t {
                _ if !key => Step::Gap,
                t if t < TONE_TICKS => Step::Event {
                    digit,
                    start: t == 0,
                    end: false,
                    duration: duration(t + 1),
                    last: false,
                },
                t if t < TONE_TICKS + END_TICKS => Step::Event {
                    digit,
                    start: false,
                    end: true,
                    duration: duration(TONE_TICKS),
                    last: t == TONE_TICKS + END_TICKS - 1,
                },
                _ => Step::Gap,
            };
        }
    }
}

/// An event's duration after `ticks` ticks, in timestamp units (at most 8 × 160).
fn duration(ticks: u32) -> u16 {
    u16::try_from(ticks * TICK_SAMPLES).unwrap_or(u16::MAX)
}

/// The keys as in-band audio, for a call without telephone-event: per key a 160 ms tone and
/// 100 ms of silence, per `w` 0.5 s of silence.
pub fn dtmf_audio(digits: &str) -> Vec<i16> {
    let mut audio = Vec::new();
    for d in digits.chars() {
        if d == 'w' || d == 'W' {
            audio.extend(std::iter::repeat_n(
                0,
                (PAUSE_TICKS * TICK_SAMPLES) as usize,
            ));
        } else {
            audio.extend(tone::dtmf_tone(d, TONE_TICKS * 20));
            audio.extend(std::iter::repeat_n(0, (GAP_TICKS * TICK_SAMPLES) as usize));
        }
    }
    audio
}

/// A prompt played `loops` times, one frame per tick.
#[derive(Debug, Clone)]
pub struct AudioPlayout {
    audio: Arc<[i16]>,
    offset: usize,
    /// `None`: until stopped.
    loops_left: Option<u32>,
}

impl AudioPlayout {
    /// `loops` 0 plays until stopped.
    pub fn new(audio: Arc<[i16]>, loops: u32) -> Self {
        let loops_left = if loops == 0 { None } else { Some(loops) };
        Self {
            audio,
            offset: 0,
            loops_left,
        }
    }

    /// The next ≤160 samples, or `None` when finished.
    pub fn next_frame(&mut self) -> Option<&[i16]> {
        if self.offset >= self.audio.len() {
            match &mut self.loops_left {
                Some(0) | Some(1) => return None,
                Some(n) => *n -= 1,
                None => {}
            }
            if self.audio.is_empty() {
                return None;
            }
            self.offset = 0;
        }
        let end = (self.offset + FRAME_SAMPLES).min(self.audio.len());
        let frame = self.audio.get(self.offset..end)?;
        self.offset = end;
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{rtp, Codec};

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Sent {
        /// (marker, sequence, timestamp, event code, end, duration)
        Event(bool, u16, u32, u8, bool, u16),
        Gap,
        Finished,
    }

    /// Runs `digits` until finished, skipping one frame per gap as the daemon does.
    fn run(digits: &str, sender: &mut RtpSender) -> Vec<Sent> {
        let mut keys = DigitSender::new(digits.chars(), 101);
        let mut out = [0u8; EVENT_PACKET_BYTES];
        let mut sent = Vec::new();
        for _ in 0..1000 {
            match keys.next(sender, &mut out) {
                DigitTick::Event {
                    packet,
                    key_started,
                } => {
                    let p = rtp::parse(packet).expect("an RTP packet");
                    let e = rfc4733::parse_event(p.payload).expect("an event");
                    assert_eq!((p.payload_type, e.volume), (101, 10));
                    assert_eq!(key_started, p.marker);
                    let code = p.payload[0];
                    sent.push(Sent::Event(
                        p.marker,
                        p.sequence,
                        p.timestamp,
                        code,
                        e.end,
                        e.duration,
                    ));
                }
                DigitTick::Gap => {
                    sender.skip(TICK_SAMPLES);
                    sent.push(Sent::Gap);
                }
                DigitTick::Finished => {
                    sent.push(Sent::Finished);
                    return sent;
                }
            }
        }
        panic!("{digits:?} never finished");
    }

    /// One key from (sequence, timestamp): 8 updates with the marker on the first, 3 end
    /// packets, 5 gap ticks.
    fn key(code: u8, seq: u16, ts: u32) -> Vec<Sent> {
        let mut v: Vec<Sent> = (0..8u16)
            .map(|i| Sent::Event(i == 0, seq + i, ts, code, false, 160 * (i + 1)))
            .collect();
        v.extend((8..11u16).map(|i| Sent::Event(false, seq + i, ts, code, true, 1280)));
        v.extend([Sent::Gap; 5]);
        v
    }

    #[test]
    fn rfc4733_key_is_8_updates_3_end_packets_and_a_5_tick_gap() {
        let mut sender = RtpSender::new(Codec::Pcmu, 0, 7, 100, 4000);
        let sent = run("1#", &mut sender);
        let mut expect = key(1, 100, 4000);
        // '#' starts 16 ticks (2560 samples) later: 11 event ticks skipped at once, 5 gaps.
        expect.extend(key(11, 111, 4000 + 2560));
        expect.push(Sent::Finished);
        assert_eq!(sent, expect);
        assert_eq!(
            (sender.sequence(), sender.timestamp()),
            (122, 4000 + 2 * 2560)
        );
    }

    #[test]
    fn rfc4733_w_is_a_half_second_pause_between_keys() {
        let mut sender = RtpSender::new(Codec::Pcmu, 0, 7, 0, 0);
        let sent = run("4w5", &mut sender);
        let mut expect = key(4, 0, 0);
        expect.extend([Sent::Gap; 25]);
        expect.extend(key(5, 11, 2560 + 25 * 160));
        expect.push(Sent::Finished);
        assert_eq!(sent, expect);
    }

    #[test]
    fn rfc4733_audio_after_an_event_resumes_on_the_real_time_clock_with_the_marker() {
        let mut sender = RtpSender::new(Codec::Pcmu, 0, 7, 0, 1000);
        let mut keys = DigitSender::new("9".chars(), 101);
        let mut out = [0u8; EVENT_PACKET_BYTES];
        let mut audio = [0u8; crate::sender::PACKET_BYTES];
        sender.packetize(&[0; 160], &mut audio);
        // The test caller's way: audio in the gap.
        let mut ticks = 0;
        while let DigitTick::Event { .. } = keys.next(&mut sender, &mut out) {
            ticks += 1;
        }
        assert_eq!(ticks, 11);
        sender.packetize(&[0; 160], &mut audio);
        let p = rtp::parse(&audio).expect("audio");
        assert!(p.marker);
        assert_eq!(p.timestamp, 1000 + 12 * 160);
    }

    #[test]
    fn characters_that_are_no_key_are_silent_ticks_and_lower_case_keys_are_sent() {
        let mut sender = RtpSender::new(Codec::Pcmu, 0, 7, 0, 0);
        let sent = run("xa", &mut sender);
        let mut expect = vec![Sent::Gap; 16];
        expect.extend(key(12, 0, 2560));
        expect.push(Sent::Finished);
        assert_eq!(sent, expect);
        assert_eq!(run("", &mut sender), vec![Sent::Finished]);
    }

    #[test]
    fn in_band_keys_are_160_ms_tones_100_ms_apart_and_w_is_half_a_second() {
        let audio = dtmf_audio("1w");
        assert_eq!(audio.len(), 1280 + 800 + 4000);
        assert_eq!(audio[..1280], tone::dtmf_tone('1', 160)[..]);
        assert!(audio[1280..].iter().all(|&s| s == 0));
    }

    #[test]
    fn audio_playout_loops_and_ends() {
        let audio: Arc<[i16]> = (0..200).collect::<Vec<i16>>().into();
        let mut once = AudioPlayout::new(audio.clone(), 1);
        assert_eq!(once.next_frame().map(<[i16]>::len), Some(160));
        assert_eq!(once.next_frame(), Some(&audio[160..]));
        assert_eq!(once.next_frame(), None);
        let mut twice = AudioPlayout::new(audio.clone(), 2);
        let frames = std::iter::from_fn(|| twice.next_frame().map(<[i16]>::len)).count();
        assert_eq!(frames, 4);
        let mut forever = AudioPlayout::new(audio, 0);
        assert!((0..100).all(|_| forever.next_frame().is_some()));
        let mut empty = AudioPlayout::new(Vec::new().into(), 0);
        assert_eq!(empty.next_frame(), None);
    }
}
