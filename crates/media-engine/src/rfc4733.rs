//! RFC 4733 (formerly 2833) telephone-events: payload parse and event de-duplication.
//!
//! Variants seen in the wild and handled: end packets repeated with distinct or identical
//! sequence numbers, events on their own SSRC, audio packets interleaved during the event,
//! events with no end packet.

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EventError {
    #[error("telephone-event payload shorter than 4 bytes ({0})")]
    TooShort(usize),
    #[error("telephone-event code {0} is not a DTMF key")]
    NotDtmf(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    pub digit: char,
    pub end: bool,
    pub volume: u8,
    /// In timestamp units.
    pub duration: u16,
}

/// RFC 4733 §3.2 event codes 0..=15.
const DIGITS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// The RFC 4733 event code for a key (`0-9`, `*`, `#`, `A-D`, lower case accepted).
pub fn event_code(digit: char) -> Option<u8> {
    let upper = digit.to_ascii_uppercase();
    DIGITS.iter().position(|&d| d == upper).map(|i| i as u8)
}

/// Reads the first 4-byte event block (event, E|R|volume, duration).
pub fn parse_event(payload: &[u8]) -> Result<EventPayload, EventError> {
    let [event, flags, d0, d1, ..] = *payload else {
        return Err(EventError::TooShort(payload.len()));
    };
    let digit = *DIGITS
        .get(usize::from(event))
        .ok_or(EventError::NotDtmf(event))?;
    Ok(EventPayload {
        digit,
        end: flags & 0x80 != 0,
        volume: flags & 0x3F,
        duration: u16::from_be_bytes([d0, d1]),
    })
}

/// Presses remembered for de-duplication; end packets come within ~60 ms of their press, so a
/// handful suffices.
const REMEMBERED: usize = 8;
/// A packet whose timestamp is up to 10 s older than the newest press of its SSRC is a stale
/// retransmission even when its own press was forgotten; further back is a timestamp reset.
const STALE_WINDOW: u32 = 10 * 8000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Press {
    ssrc: u32,
    timestamp: u32,
    code: u8,
}

/// Reports each key press once. A press is identified by (SSRC, RTP timestamp, event code):
/// every packet of one press (start, updates, the repeated end packets, whatever their
/// sequence numbers) carries its start timestamp, and a new press gets a new timestamp. The
/// first packet seen of a press reports it, even an end packet when the start was lost.
#[derive(Debug, Default)]
pub struct EventDeduplicator {
    recent: [Option<Press>; REMEMBERED],
    next: usize,
}

impl EventDeduplicator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the payload when this packet begins a press not reported before.
    pub fn accept(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<Option<EventPayload>, EventError> {
        let event = parse_event(payload)?;
        let code = payload.first().copied().unwrap_or_default();
        let press = Press {
            ssrc,
            timestamp,
            code,
        };
        let mut stale = false;
        for seen in self.recent.iter().flatten() {
            if *seen == press {
                return Ok(None);
            }
            let newer_by = seen.timestamp.wrapping_sub(timestamp);
            stale |= seen.ssrc == ssrc && newer_by != 0 && newer_by <= STALE_WINDOW;
        }
        if stale {
            return Ok(None);
        }
        if let Some(slot) = self.recent.get_mut(self.next) {
            *slot = Some(press);
        }
        self.next = (self.next + 1) % REMEMBERED;
        Ok(Some(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: u8, end: bool, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [code, if end { 0x80 | 10 } else { 10 }, d[0], d[1]]
    }

    /// Feeds (ts, payload) packets and returns the digits reported.
    fn run(dedup: &mut EventDeduplicator, ssrc: u32, packets: &[(u32, [u8; 4])]) -> String {
        packets
            .iter()
            .filter_map(|(ts, p)| dedup.accept(ssrc, *ts, p).unwrap())
            .map(|e| e.digit)
            .collect()
    }

    /// Our pcaps: marker first, durations 160..=1120, then 3 end packets (E=1, 1280).
    fn our_press(code: u8, ts: u32) -> Vec<(u32, [u8; 4])> {
        let mut v: Vec<_> = (1..=7).map(|i| (ts, ev(code, false, 160 * i))).collect();
        v.extend((0..3).map(|_| (ts, ev(code, true, 1280))));
        v
    }

    #[test]
    fn event_codes_map_to_keys_per_rfc4733_section_3_2() {
        let keys: String = (0..16u8)
            .map(|c| parse_event(&ev(c, false, 0)).unwrap().digit)
            .collect();
        assert_eq!(keys, "0123456789*#ABCD");
        assert_eq!(parse_event(&ev(16, false, 0)), Err(EventError::NotDtmf(16)));
        assert_eq!(
            parse_event(&ev(255, false, 0)),
            Err(EventError::NotDtmf(255))
        );
    }

    #[test]
    fn flags_volume_and_duration_are_decoded() {
        let e = parse_event(&[11, 0x80 | 0x40 | 10, 0x05, 0x00]).unwrap();
        assert_eq!(
            e,
            EventPayload {
                digit: '#',
                end: true,
                volume: 10,
                duration: 1280
            }
        );
    }

    #[test]
    fn payload_shorter_than_4_bytes_is_too_short() {
        for n in 0..4 {
            assert_eq!(
                parse_event(&[11, 0x80, 5, 0][..n]),
                Err(EventError::TooShort(n))
            );
        }
    }

    #[test]
    fn event_code_round_trips_keys() {
        for (i, d) in DIGITS.iter().enumerate() {
            assert_eq!(event_code(*d), Some(i as u8));
        }
        assert_eq!(event_code('a'), Some(12));
        assert_eq!(event_code('x'), None);
    }

    #[test]
    fn our_pcap_layout_reports_once_per_press() {
        let mut d = EventDeduplicator::new();
        let mut pkts = our_press(1, 1000);
        pkts.extend(our_press(11, 1000 + 2080));
        assert_eq!(run(&mut d, 7, &pkts), "1#");
    }

    #[test]
    fn same_digit_twice_with_new_timestamp_is_two_presses() {
        let mut d = EventDeduplicator::new();
        let mut pkts = our_press(5, 0);
        pkts.extend(our_press(5, 2080));
        assert_eq!(run(&mut d, 7, &pkts), "55");
    }

    #[test]
    fn lost_start_packets_report_on_first_end_packet() {
        let mut d = EventDeduplicator::new();
        let pkts = [
            (500, ev(11, true, 1280)),
            (500, ev(11, true, 1280)),
            (500, ev(11, true, 1280)),
        ];
        assert_eq!(run(&mut d, 7, &pkts), "#");
    }

    #[test]
    fn stale_end_packet_of_reported_press_is_not_reported_again() {
        let mut d = EventDeduplicator::new();
        let mut pkts = our_press(1, 0);
        pkts.extend(our_press(2, 2080));
        pkts.push((0, ev(1, true, 1280)));
        assert_eq!(run(&mut d, 7, &pkts), "12");
    }

    #[test]
    fn stale_end_packet_is_rejected_even_after_its_press_is_forgotten() {
        let mut d = EventDeduplicator::new();
        let mut pkts = Vec::new();
        for i in 0..12u32 {
            pkts.extend(our_press((i % 10) as u8, i * 2080));
        }
        pkts.push((0, ev(0, true, 1280)));
        assert_eq!(run(&mut d, 7, &pkts), "012345678901");
    }

    #[test]
    fn timestamp_reset_far_backwards_is_a_new_press() {
        let mut d = EventDeduplicator::new();
        let mut pkts = our_press(1, 1_000_000);
        pkts.extend(our_press(1, 0));
        assert_eq!(run(&mut d, 7, &pkts), "11");
    }

    #[test]
    fn presses_are_keyed_by_ssrc() {
        let mut d = EventDeduplicator::new();
        assert_eq!(run(&mut d, 1, &our_press(11, 0)), "#");
        assert_eq!(run(&mut d, 2, &our_press(11, 0)), "#");
        assert_eq!(run(&mut d, 1, &our_press(11, 0)), "");
    }

    #[test]
    fn timestamp_wraparound_is_a_new_press() {
        let mut d = EventDeduplicator::new();
        let mut pkts = our_press(3, u32::MAX - 100);
        pkts.extend(our_press(3, 2000));
        assert_eq!(run(&mut d, 7, &pkts), "33");
    }

    #[test]
    fn non_dtmf_events_are_errors_and_not_remembered() {
        let mut d = EventDeduplicator::new();
        assert_eq!(
            d.accept(1, 0, &ev(16, false, 160)),
            Err(EventError::NotDtmf(16))
        );
        assert_eq!(d.accept(1, 0, &[1, 2]), Err(EventError::TooShort(2)));
        assert_eq!(
            d.accept(1, 0, &ev(1, false, 160)).unwrap().map(|e| e.digit),
            Some('1')
        );
    }
}
