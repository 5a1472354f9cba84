//! A call's parties. Each leg has its own signalling and media; the caller is leg 0. Only the
//! caller exists today (`<Dial>` adds legs), but no API here assumes one.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use media_engine::AudioFrame;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u32);

impl LegId {
    /// The party whose INVITE created the call.
    pub const CALLER: LegId = LegId(0);
}

/// How a leg carries audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// G.711 (PCMU/PCMA) over plain RTP, RFC 4733 events.
    G711Rtp,
    /// A browser: ICE-lite, DTLS-SRTP, rtcp-mux.
    WebRtc,
}

/// The leg's signalling, as far as the call is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegState {
    /// Offered and ringing (180 sent), not answered.
    Ringing,
    Answered {
        at: Instant,
    },
    /// We sent this final non-2xx instead of answering (or, for a party we called, its final
    /// answer or why it never answered).
    Rejected {
        status: u16,
    },
    /// The far end ended the dialog (BYE, CANCEL, lost ACK), or answered our BYE.
    Gone {
        answered_at: Option<Instant>,
    },
}

#[derive(Debug)]
pub struct Leg {
    pub id: LegId,
    pub kind: MediaKind,
    pub state: LegState,
    /// No RTP for `rtp.timeout`: a hang-up for the program, though the dialog is still up.
    pub media_timed_out: bool,
    /// Timeline index 0 of the inbound audio, once media is set up.
    pub origin: Option<Instant>,
    /// The address our SDP answer gives.
    pub advertised: Option<SocketAddr>,
    /// The rate the leg's audio is recorded at: 16000 when it arrives as Opus, else 8000.
    pub sample_rate: u32,
    /// End of the last inbound audio frame seen.
    pub timeline_end: u64,
    /// Real audio (not only filled silence) has arrived.
    pub heard_audio: bool,
    /// The last few hundred ms heard while not recording (SPEC §3.2 step 2).
    pub preroll: VecDeque<AudioFrame>,
    preroll_frames: usize,
}

impl Leg {
    pub fn new(id: LegId, kind: MediaKind, pre_roll_ms: u32) -> Leg {
        let preroll_frames = (pre_roll_ms / 20) as usize;
        Leg {
            id,
            kind,
            state: LegState::Ringing,
            media_timed_out: false,
            origin: None,
            sample_rate: media_engine::SAMPLE_RATE,
            advertised: None,
            timeline_end: 0,
            heard_audio: false,
            preroll: VecDeque::with_capacity(preroll_frames.max(1)),
            preroll_frames,
        }
    }

    /// Media is set up: where its timeline starts, the address our SDP gives, its rate.
    pub(crate) fn media_ready(
        &mut self,
        origin: Instant,
        advertised: SocketAddr,
        sample_rate: u32,
    ) {
        self.origin = Some(origin);
        self.advertised = Some(advertised);
        self.sample_rate = sample_rate;
    }

    pub fn answered(&self) -> bool {
        matches!(
            self.state,
            LegState::Answered { .. }
                | LegState::Gone {
                    answered_at: Some(_)
                }
        )
    }

    pub fn answered_at(&self) -> Option<Instant> {
        match self.state {
            LegState::Answered { at } => Some(at),
            LegState::Gone { answered_at } => answered_at,
            _ => None,
        }
    }

    /// The far end ended the dialog: nothing more to send on it.
    pub fn remote_ended(&self) -> bool {
        matches!(self.state, LegState::Gone { .. })
    }

    /// Gone for the program: the far end hung up or its media stopped.
    pub fn hung_up(&self) -> bool {
        self.remote_ended() || self.media_timed_out
    }

    /// The inbound timeline's present: samples since the media origin.
    pub fn media_clock(&self, now: Instant) -> u64 {
        let Some(origin) = self.origin else { return 0 };
        let elapsed = now.saturating_duration_since(origin);
        (elapsed.as_micros() * u128::from(media_engine::SAMPLE_RATE) / 1_000_000) as u64
    }

    /// Audio outside a capture: keep the timeline and the pre-roll.
    pub(crate) fn idle_audio(&mut self, frame: AudioFrame) {
        self.timeline_end = frame.position + u64::from(frame.len);
        self.heard_audio |= !frame.filled;
        if self.preroll_frames == 0 {
            return;
        }
        if self.preroll.len() == self.preroll_frames {
            self.preroll.pop_front();
        }
        self.preroll.push_back(frame);
    }
}
