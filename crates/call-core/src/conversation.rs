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
use store::{
    RecordingRecord, RecordingSid, RecordingSource, RecordingStatus, StatusCallbackSpec,
    TranscriptionRecord, TranscriptionStatus,
};

use control::recording_control::{LiveRecordingRequest, RecordingChange};
use control::twiml::RecordingTrack;

use crate::call::Call;
use crate::params::status_params;
use crate::{FetchResult, IoId, Output, Persist, RecordingIo};

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

/// A pause of the recording (REST `Status=paused`) on the file's clock, in samples.
#[derive(Debug, Clone, Copy)]
struct Pause {
    from: i64,
    /// `None` while paused.
    to: Option<i64>,
    /// The paused time is kept as silence; else it is left out of the file.
    silence: bool,
}

pub(crate) struct ConversationAudio<S: WavStorage> {
    layout: Layout,
    pauses: Vec<Pause>,
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
            pauses: Vec::new(),
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

    /// The file's clock (samples since its start) at `at`.
    fn clock(&self, at: Instant) -> i64 {
        samples_between(self.start, at) as i64
    }

    pub fn pause(&mut self, at: Instant, silence: bool) {
        if self.pauses.last().is_some_and(|p| p.to.is_none()) {
            return;
        }
        let from = self.clock(at);
        self.pauses.push(Pause {
            from,
            to: None,
            silence,
        });
    }

    pub fn resume(&mut self, at: Instant) {
        let now = self.clock(at);
        if let Some(p) = self.pauses.last_mut().filter(|p| p.to.is_none()) {
            p.to = Some(now.max(p.from));
        }
    }

    pub fn paused(&self) -> bool {
        self.pauses.last().is_some_and(|p| p.to.is_none())
    }

    /// Where the sample at file-clock `p` goes: its position once skipped pauses are taken
    /// out, and whether it is muted; `None` when a skipped pause drops it.
    fn map(&self, p: i64) -> Option<(i64, bool)> {
        let mut shift = 0;
        for pause in &self.pauses {
            if p < pause.from {
                break;
            }
            let end = pause.to.unwrap_or(i64::MAX);
            if p < end {
                return pause.silence.then_some((p - shift, true));
            }
            if !pause.silence {
                shift += end - pause.from;
            }
        }
        Some((p - shift, false))
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
        if self.pauses.is_empty() {
            self.place(slot, at, len, sample);
        } else {
            // Sample by sample through the pauses (rare: only after a REST pause).
            for i in 0..len {
                if let Some((p, mute)) = self.map(at + i as i64) {
                    let v = if mute { 0 } else { sample(i) };
                    self.place(slot, p, 1, |_| v);
                }
            }
        }
        self.flush(false);
    }

    /// `len` samples (`sample(i)`) of `slot` from file position `at`.
    fn place(&mut self, slot: usize, at: i64, len: usize, sample: impl Fn(usize) -> i16) {
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

/// What a conversation's recording is to be.
pub(crate) struct RecordingPlan {
    pub layout: Layout,
    pub source: RecordingSource,
    pub callback: Option<StatusCallbackSpec>,
    pub trim: bool,
    /// Transcribe it once closed: its `transcribeCallback` and language.
    pub transcription: Option<(Option<String>, String)>,
}

/// A recording of the conversation (a `<Dial record>`, or one started over the REST API): its
/// row, its audio and the file's life (being created, open, being closed, closed).
pub(crate) struct LiveRecording<S: WavStorage> {
    pub sid: RecordingSid,
    pub url: String,
    pub row: RecordingRecord,
    callback: Option<StatusCallbackSpec>,
    pub audio: ConversationAudio<S>,
    trim: bool,
    opening: Option<IoId>,
    closing: Option<IoId>,
    /// Frames in the closed file, once closed.
    pub closed: Option<u64>,
    /// Stopped while its file was still being created: closed as soon as it is.
    pub closing_wanted: bool,
    /// Transcribe it once closed: its `transcribeCallback` and language.
    pub transcription: Option<(Option<String>, String)>,
}

impl<S: WavStorage> LiveRecording<S> {
    /// Whether `id` is this recording's file being created or closed.
    pub fn owns(&self, id: IoId) -> bool {
        self.opening == Some(id) || self.closing == Some(id)
    }

    pub fn is_closing_or_closed(&self) -> bool {
        self.closing.is_some() || self.closed.is_some()
    }
}

impl<S: WavStorage> Call<S> {
    /// Starts a recording now: its row first (crash recovery needs it), then its file.
    pub(crate) fn open_live_recording(
        &mut self,
        sid: RecordingSid,
        plan: RecordingPlan,
        now: Instant,
    ) -> LiveRecording<S> {
        let RecordingPlan {
            layout,
            source,
            callback,
            trim,
            transcription,
        } = plan;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Recordings/{}",
            self.config.http_public_url, self.info.account_sid, sid
        );
        let ms = self.unix_ms(now);
        let row = RecordingRecord {
            sid: sid.clone(),
            account_sid: self.info.account_sid.clone(),
            call_sid: self.info.call_sid.clone(),
            status: RecordingStatus::InProgress,
            source,
            channels: u32::from(layout.channels()),
            sample_rate: SAMPLE_RATE,
            date_created_ms: ms,
            date_updated_ms: ms,
            start_time_ms: ms,
            duration_secs: None,
            error_code: None,
            media_file: format!("{sid}.wav"),
            transcribe: transcription.is_some(),
            transcribe_callback: transcription.as_ref().and_then(|(cb, _)| cb.clone()),
            status_callback: callback.clone(),
            deleted_at_ms: None,
        };
        self.push(Output::Persist(Persist::InsertRecording(row.clone())));
        let io = self.next_io();
        self.push(Output::Recording {
            id: io,
            io: RecordingIo::Open {
                sid: sid.clone(),
                sample_rate: SAMPLE_RATE,
                channels: layout.channels(),
            },
        });
        tracing::info!(recording = %sid, channels = layout.channels(), ?source, "recording the conversation");
        LiveRecording {
            sid,
            url,
            row,
            callback,
            audio: ConversationAudio::new(layout, now),
            trim,
            opening: Some(io),
            closing: None,
            closed: None,
            closing_wanted: false,
            transcription,
        }
    }

    /// The file was created or closed (`rec.owns(id)`).
    pub(crate) fn live_recording_io(
        &mut self,
        rec: &mut LiveRecording<S>,
        id: IoId,
        result: FetchResult<S>,
        now: Instant,
        close_when_open: bool,
    ) {
        match result {
            FetchResult::RecordingOpened(opened) if rec.opening == Some(id) => {
                rec.opening = None;
                match opened {
                    Ok(writer) => {
                        rec.audio.opened(writer);
                        self.recording_callback(rec, RecordingStatus::InProgress);
                    }
                    Err(e) => {
                        tracing::error!(recording = %rec.sid, error = %e, "cannot create the recording");
                        rec.audio.io_error = Some(e);
                    }
                }
                if close_when_open || rec.closing_wanted {
                    self.close_live_recording(rec, now);
                }
            }
            FetchResult::RecordingClosed(closed) if rec.closing == Some(id) => {
                rec.closing = None;
                let frames = match closed {
                    Ok(frames) => frames,
                    Err((e, repaired)) => {
                        tracing::error!(recording = %rec.sid, error = %e, repaired, "closing the recording failed; kept what reached the disk");
                        repaired
                    }
                };
                self.live_recording_closed(rec, frames, now);
            }
            _ => {}
        }
    }

    /// Ends the recording: what is queued is written and the file closed (once it is open).
    pub(crate) fn close_live_recording(&mut self, rec: &mut LiveRecording<S>, now: Instant) {
        if rec.opening.is_some() {
            rec.closing_wanted = true;
            return;
        }
        if rec.is_closing_or_closed() {
            return;
        }
        let padding = u64::from(self.config.record.trim_padding_ms) * 8;
        match rec.audio.close(rec.trim, padding) {
            Some((writer, keep)) => {
                let io = self.next_io();
                rec.closing = Some(io);
                let sid = rec.sid.clone();
                self.push(Output::Recording {
                    id: io,
                    io: RecordingIo::Close { sid, writer, keep },
                });
            }
            None => self.live_recording_closed(rec, 0, now),
        }
    }

    /// REST `Status=paused|in-progress`: the row says so.
    pub(crate) fn set_live_recording_paused(
        &mut self,
        rec: &mut LiveRecording<S>,
        paused: Option<bool>,
        now: Instant,
    ) {
        match paused {
            Some(silence) => rec.audio.pause(now, silence),
            None => rec.audio.resume(now),
        }
        rec.row.status = if rec.audio.paused() {
            RecordingStatus::Paused
        } else {
            RecordingStatus::InProgress
        };
        rec.row.date_updated_ms = self.unix_ms(now);
        self.push(Output::Persist(Persist::UpdateRecording(rec.row.clone())));
    }

    fn live_recording_closed(&mut self, rec: &mut LiveRecording<S>, frames: u64, now: Instant) {
        rec.closed = Some(frames);
        let rate = u64::from(SAMPLE_RATE);
        let secs = ((frames + rate / 2) / rate) as u32;
        let absent = frames == 0;
        rec.row.status = if absent {
            RecordingStatus::Absent
        } else {
            RecordingStatus::Completed
        };
        rec.row.duration_secs = Some(secs);
        rec.row.error_code = absent.then_some(16102);
        rec.row.date_updated_ms = self.unix_ms(now);
        tracing::info!(recording = %rec.sid, secs, frames, "conversation recording finished");
        self.push(Output::Persist(Persist::UpdateRecording(rec.row.clone())));
        let status = rec.row.status;
        self.recording_callback(rec, status);
        if let (Some((callback, language)), false) = (rec.transcription.clone(), absent) {
            let ms = self.unix_ms(now);
            let job = TranscriptionRecord {
                sid: self.new_transcription_sid(),
                account_sid: rec.row.account_sid.clone(),
                recording_sid: rec.sid.clone(),
                call_sid: rec.row.call_sid.clone(),
                status: TranscriptionStatus::Queued,
                text: None,
                language: Some(language),
                engine: None,
                error: None,
                audio_secs: None,
                processing_secs: None,
                duration_secs: Some(secs),
                kind: TranscriptionRecord::FAST.into(),
                transcribe_callback: callback,
                date_created_ms: ms,
                date_updated_ms: ms,
            };
            self.push(Output::Persist(Persist::QueueTranscription(job)));
        }
    }

    // ---- recordings started over the REST API ----

    pub(crate) fn start_api_recording(&mut self, request: LiveRecordingRequest, now: Instant) {
        if self.state() != crate::CallState::Running || !self.caller().answered() {
            tracing::warn!(recording = %request.sid, "REST recording refused: the call is not in progress");
            return;
        }
        let layout = Layout {
            slots: [
                request.track != RecordingTrack::Outbound,
                request.track != RecordingTrack::Inbound,
            ],
            dual: request.dual,
        };
        let plan = RecordingPlan {
            layout,
            source: RecordingSource::StartCallRecordingApi,
            callback: request.status_callback,
            trim: request.trim,
            transcription: None,
        };
        let rec = self.open_live_recording(request.sid, plan, now);
        self.api_recordings.push(rec);
    }

    /// Pause, resume or stop `sid` (`None`: the newest still running, a `<Dial>`'s included).
    pub(crate) fn change_api_recording(
        &mut self,
        sid: Option<RecordingSid>,
        change: RecordingChange,
        now: Instant,
    ) {
        let running = |r: &LiveRecording<S>| !r.is_closing_or_closed() && !r.closing_wanted;
        let found = self
            .api_recordings
            .iter()
            .rposition(|r| sid.as_ref().map_or(running(r), |s| *s == r.sid));
        let mut taken = match found {
            Some(i) => Some((Some(i), self.api_recordings.remove(i))),
            None => match &mut self.activity {
                crate::call::Activity::Dial(d) => d
                    .take_recording()
                    .filter(|r| sid.as_ref().map_or(running(r), |s| *s == r.sid))
                    .map(|r| (None, r)),
                _ => None,
            },
        };
        let Some((_, rec)) = taken.as_mut() else {
            tracing::info!(?sid, "REST recording change for no running recording");
            return;
        };
        tracing::info!(recording = %rec.sid, ?change, "recording changed over the API");
        match change {
            RecordingChange::Pause { silence } => {
                self.set_live_recording_paused(rec, Some(silence), now)
            }
            RecordingChange::Resume => self.set_live_recording_paused(rec, None, now),
            RecordingChange::Stop => self.close_live_recording(rec, now),
        }
        let Some((slot, rec)) = taken else { return };
        match slot {
            Some(i) => self.api_recordings.insert(i, rec),
            None => {
                if let crate::call::Activity::Dial(d) = &mut self.activity {
                    d.put_recording(rec);
                }
            }
        }
    }

    /// A frame of any leg: the caller goes to slot 0, the bridged party to slot 1.
    pub(crate) fn api_recording_audio(&mut self, leg: usize, frame: &AudioFrame) {
        let id = self.legs[leg].id;
        let slot = if leg == 0 {
            0
        } else if self.bridged == Some(id) {
            1
        } else {
            return;
        };
        let Some(origin) = self.legs[leg].origin else {
            return;
        };
        for rec in &mut self.api_recordings {
            if !rec.is_closing_or_closed() {
                rec.audio.push(slot, origin, frame);
            }
        }
    }

    pub(crate) fn api_recordings_open(&self) -> bool {
        self.api_recordings.iter().any(|r| r.closed.is_none())
    }

    pub(crate) fn close_api_recordings(&mut self, now: Instant) {
        let mut recs = std::mem::take(&mut self.api_recordings);
        for rec in &mut recs {
            self.close_live_recording(rec, now);
        }
        self.api_recordings = recs;
    }

    fn recording_callback(&mut self, rec: &LiveRecording<S>, status: RecordingStatus) {
        let Some(cb) = rec.callback.as_ref().filter(|cb| match status {
            RecordingStatus::InProgress => cb.in_progress,
            RecordingStatus::Absent => cb.absent,
            _ => cb.completed,
        }) else {
            return;
        };
        let params = status_params(&rec.row, status, &rec.url);
        let (url, method) = (cb.url.clone(), cb.method);
        self.push(Output::Callback {
            group: rec.sid.to_string(),
            url,
            method,
            params,
        });
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
        // One frame of 100 from the caller, one of 200 from the other party.
        let file = |slots, dual| {
            let start = Instant::now();
            let mut c = opened(Layout { slots, dual }, start);
            c.push(0, start, &frame(0, 100));
            c.push(1, start, &frame(0, 200));
            samples(&mut c, false)
        };
        assert_eq!(file([true, true], false), (1, vec![300; 160]), "mixed");
        assert_eq!(
            file([true, false], true),
            (1, vec![100; 160]),
            "inbound only"
        );
        assert_eq!(
            file([false, true], true),
            (1, vec![200; 160]),
            "outbound only"
        );
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
