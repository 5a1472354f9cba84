//! A bridged conversation's recording (`<Dial record>`): the caller in slot 0, the dialled
//! party in slot 1, each placed on one clock by its media origin, written as two channels
//! (`*-dual`) or mixed into one. Unlike `<Record>` nothing stops it but the bridge's end.
//!
//! Each slot's audio waits in a queue until the other slot has caught up to it, so the channels
//! stay aligned whatever order the legs' frames are drained in; a slot that falls more than
//! [`MAX_SKEW`] behind (a leg on hold, a callee not answered yet) is filled with silence.

use std::collections::VecDeque;
use std::time::Instant;

use media_engine::{AudioFrame, SAMPLE_RATE};
use record_engine::wav::WavStorage;
use record_engine::WavWriter;

/// How far one slot may run ahead of the other before the other is filled with silence.
pub(crate) const MAX_SKEW: usize = SAMPLE_RATE as usize;

/// A frame placed further than this past a slot's end is cut to it (a leg's broken clock must
/// not allocate without bound).
const MAX_GAP: u64 = 60 * SAMPLE_RATE as u64;

/// |sample| above which audio counts as sound for `trim-silence` (about -54 dBFS).
const SOUND_LEVEL: i16 = 64;

/// Which slots are recorded and how they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Slot 0 (the caller) and slot 1 (the dialled party) are recorded.
    pub slots: [bool; 2],
    /// One channel per recorded slot; else they are mixed into one.
    pub dual: bool,
}

impl Layout {
    pub fn channels(&self) -> u16 {
        if self.dual && self.slots[0] && self.slots[1] {
            2
        } else {
            1
        }
    }
}

pub(crate) struct ConversationAudio<S: WavStorage> {
    layout: Layout,
    /// Frame 0 of the file is this instant.
    start: Instant,
    pending: [VecDeque<i16>; 2],
    /// Frames handed to the writer (or dropped while it was not open).
    written: u64,
    writer: Option<WavWriter<S>>,
    /// First and last frame holding sound, for `trim-silence`.
    first_sound: Option<u64>,
    last_sound: u64,
    pub(crate) io_error: Option<String>,
    /// Frames to write at once: reused, so writing allocates nothing after the first batch.
    scratch: Vec<i16>,
}

impl<S: WavStorage> ConversationAudio<S> {
    pub fn new(layout: Layout, start: Instant) -> Self {
        Self {
            layout,
            start,
            pending: [VecDeque::new(), VecDeque::new()],
            written: 0,
            writer: None,
            first_sound: None,
            last_sound: 0,
            io_error: None,
            scratch: Vec::new(),
        }
    }

    pub fn opened(&mut self, writer: WavWriter<S>) {
        self.writer = Some(writer);
        self.flush(false);
    }

    /// One frame of a leg whose timeline index 0 is `origin`.
    pub fn push(&mut self, slot: usize, origin: Instant, frame: &AudioFrame) {
        if !self.layout.slots.get(slot).copied().unwrap_or(false) {
            return;
        }
        // The leg's timeline position on the file's clock (8 kHz).
        let offset = if origin >= self.start {
            samples_between(self.start, origin) as i64
        } else {
            -(samples_between(origin, self.start) as i64)
        };
        let at = frame.position as i64 + offset;
        let pcm = frame.pcm();
        let sample = |i: usize| -> i16 {
            if frame.filled {
                0
            } else if frame.wide {
                pcm.get(2 * i).copied().unwrap_or(0)
            } else {
                pcm.get(i).copied().unwrap_or(0)
            }
        };
        // `len` counts timeline (8 kHz) samples; a wideband frame carries two per sample.
        let len = frame.len as usize;
        let queue_start = self.written as i64;
        let end = queue_start + self.pending[slot].len() as i64;
        let mut i = 0usize;
        // Audio before the file's start or already written is dropped; audio over what is
        // still queued replaces it (a late frame filling a gap).
        if at < queue_start {
            i = (queue_start - at) as usize;
        }
        while i < len && at + (i as i64) < end {
            let idx = (at + i as i64 - queue_start) as usize;
            if let Some(s) = self.pending[slot].get_mut(idx) {
                *s = sample(i);
            }
            i += 1;
        }
        if i >= len {
            return;
        }
        let gap = ((at + i as i64) - end).max(0) as u64;
        for _ in 0..gap.min(MAX_GAP) {
            self.pending[slot].push_back(0);
        }
        for j in i..len {
            self.pending[slot].push_back(sample(j));
        }
        self.flush(false);
    }

    /// Writes what both slots have; `all` fills the shorter slot with silence first (the end).
    pub fn flush(&mut self, all: bool) {
        if self.writer.is_none() && self.io_error.is_none() {
            // The file is being created: audio waits for it.
            return;
        }
        let [a, b] = self.layout.slots;
        let (la, lb) = (self.pending[0].len(), self.pending[1].len());
        let target = match (a, b) {
            (true, true) => {
                let longer = la.max(lb);
                let fill_to = if all {
                    longer
                } else {
                    longer.saturating_sub(MAX_SKEW)
                };
                for slot in 0..2 {
                    while self.pending[slot].len() < fill_to {
                        self.pending[slot].push_back(0);
                    }
                }
                self.pending[0].len().min(self.pending[1].len())
            }
            (true, false) => la,
            (false, true) => lb,
            (false, false) => 0,
        };
        if target == 0 {
            return;
        }
        let channels = usize::from(self.layout.channels());
        self.scratch.clear();
        for i in 0..target {
            let s0 = if a {
                self.pending[0].pop_front().unwrap_or(0)
            } else {
                0
            };
            let s1 = if b {
                self.pending[1].pop_front().unwrap_or(0)
            } else {
                0
            };
            if s0.unsigned_abs() > SOUND_LEVEL as u16 || s1.unsigned_abs() > SOUND_LEVEL as u16 {
                let frame = self.written + i as u64;
                self.first_sound.get_or_insert(frame);
                self.last_sound = frame + 1;
            }
            if channels == 2 {
                self.scratch.push(s0);
                self.scratch.push(s1);
            } else {
                self.scratch.push(s0.saturating_add(s1));
            }
        }
        self.written += target as u64;
        if self.io_error.is_some() {
            return;
        }
        if let Some(writer) = self.writer.as_mut() {
            if let Err(e) = writer.write(&self.scratch) {
                self.io_error = Some(e.to_string());
            }
        }
    }

    /// The end: everything queued is written; the writer and the frames to keep come out
    /// (`trim` keeps from the first to the last sound, `padding` frames either side).
    pub fn close(
        &mut self,
        trim: bool,
        padding: u64,
    ) -> Option<(WavWriter<S>, std::ops::Range<u64>)> {
        self.flush(true);
        let writer = self.writer.take()?;
        let total = writer.samples_written();
        let keep = if trim {
            match self.first_sound {
                Some(first) => {
                    first.saturating_sub(padding)..(self.last_sound + padding).min(total)
                }
                None => 0..0,
            }
        } else {
            0..total
        };
        Some((writer, keep))
    }
}

fn samples_between(from: Instant, to: Instant) -> u64 {
    let d = to.saturating_duration_since(from);
    (d.as_micros() * u128::from(SAMPLE_RATE) / 1_000_000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::time::Duration;

    fn frame(position: u64, value: i16) -> AudioFrame {
        let mut f = AudioFrame::narrow(position, media_engine::FRAME_SAMPLES as u16, false);
        f.samples[..media_engine::FRAME_SAMPLES].fill(value);
        f
    }

    fn opened(layout: Layout, start: Instant) -> ConversationAudio<Cursor<Vec<u8>>> {
        let mut c = ConversationAudio::new(layout, start);
        let channels = layout.channels();
        let w = WavWriter::create_channels(
            Cursor::new(Vec::new()),
            8000,
            record_engine::WavEncoding::Pcm16,
            channels,
        )
        .expect("writer");
        c.opened(w);
        c
    }

    fn samples(c: &mut ConversationAudio<Cursor<Vec<u8>>>, trim: bool) -> (u16, Vec<i16>) {
        let (w, keep) = c.close(trim, 0).expect("open");
        let bytes = w.finalize(keep).expect("finalize").into_inner();
        let r = hound::WavReader::new(Cursor::new(bytes)).expect("wav");
        let channels = r.spec().channels;
        (
            channels,
            r.into_samples::<i16>()
                .map(|s| s.expect("sample"))
                .collect(),
        )
    }

    /// Two legs whose media began at different instants land on one clock: the callee's
    /// origin is 1 s after the file's start, so its first frame is frame 8000 of channel 2.
    #[test]
    fn dual_channels_are_aligned_by_each_legs_origin() {
        let start = Instant::now();
        let layout = Layout {
            slots: [true, true],
            dual: true,
        };
        let mut c = opened(layout, start);
        let callee_origin = start + Duration::from_secs(1);
        // The caller's media began 0.5 s before the recording.
        let caller_origin = start - Duration::from_millis(500);
        // Drained as the daemon does: both legs' frames of each 20 ms, in turn.
        for i in 0..150u64 {
            c.push(0, caller_origin, &frame(4000 + i * 160, 1000));
            if i >= 50 {
                c.push(1, callee_origin, &frame((i - 50) * 160, -2000));
            }
        }
        let (channels, s) = samples(&mut c, false);
        assert_eq!(channels, 2);
        let frames = s.len() / 2;
        assert_eq!(frames, 24_000, "3 s: the caller's 150 frames");
        let left: Vec<i16> = s.iter().step_by(2).copied().collect();
        let right: Vec<i16> = s.iter().skip(1).step_by(2).copied().collect();
        assert!(left.iter().all(|&v| v == 1000));
        assert!(right[..8000].iter().all(|&v| v == 0));
        assert!(right[8000..24_000].iter().all(|&v| v == -2000));
    }

    #[test]
    fn mixed_and_one_sided_layouts() {
        let start = Instant::now();
        let mut mixed = opened(
            Layout {
                slots: [true, true],
                dual: false,
            },
            start,
        );
        mixed.push(0, start, &frame(0, 100));
        mixed.push(1, start, &frame(0, 200));
        let (channels, s) = samples(&mut mixed, false);
        assert_eq!(channels, 1);
        assert_eq!(s, vec![300; 160]);

        let mut inbound = opened(
            Layout {
                slots: [true, false],
                dual: true,
            },
            start,
        );
        inbound.push(0, start, &frame(0, 100));
        inbound.push(1, start, &frame(0, 200));
        let (channels, s) = samples(&mut inbound, false);
        assert_eq!(channels, 1);
        assert_eq!(s, vec![100; 160]);
    }

    /// A slot nobody feeds (a leg on hold) is filled with silence once the other is a second
    /// ahead: the file grows in step with the live side.
    #[test]
    fn a_silent_slot_is_filled_after_the_skew() {
        let start = Instant::now();
        let mut c = opened(
            Layout {
                slots: [true, true],
                dual: true,
            },
            start,
        );
        for i in 0..100u64 {
            c.push(0, start, &frame(i * 160, 500));
        }
        let written = c.writer.as_ref().expect("open").samples_written();
        assert_eq!(written, 16_000 - MAX_SKEW as u64);
    }

    #[test]
    fn trim_keeps_the_sound() {
        let start = Instant::now();
        let mut c = opened(
            Layout {
                slots: [true, true],
                dual: true,
            },
            start,
        );
        for i in 0..50u64 {
            let v = if (10..20).contains(&i) { 3000 } else { 0 };
            c.push(0, start, &frame(i * 160, v));
            c.push(1, start, &frame(i * 160, 0));
        }
        let (_, s) = samples(&mut c, true);
        assert_eq!(s.len() / 2, 10 * 160);
    }

    /// Audio that arrives before the file is open waits in the queue and is written on open.
    #[test]
    fn audio_before_the_file_opens_is_kept() {
        let start = Instant::now();
        let layout = Layout {
            slots: [true, false],
            dual: false,
        };
        let mut c: ConversationAudio<Cursor<Vec<u8>>> = ConversationAudio::new(layout, start);
        c.push(0, start, &frame(0, 700));
        let w = WavWriter::create_channels(
            Cursor::new(Vec::new()),
            8000,
            record_engine::WavEncoding::Pcm16,
            1,
        )
        .expect("writer");
        c.opened(w);
        let (_, s) = samples(&mut c, false);
        assert_eq!(s, vec![700; 160]);
    }
}
