//! Simulated-time tests of the call core (str0m style): a scripted caller, web server and media
//! task answer the core's outputs; time jumps to the next thing that happens. No sockets, no
//! sleeps: every assertion is on exact instants.

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use control::graph::{OperationRequest, PlayPrompt, RecordResponse};
use control::{CallInfo, HttpMethod, ParseLimits};
use media_engine::{AudioFrame, DtmfEvent, DtmfSource, MediaItem, FRAME_SAMPLES};
use record_engine::{WavEncoding, WavWriter};
use sip_core::sdp::{AudioCodec, Direction, Negotiated};

use crate::*;

type Mem = Cursor<Vec<u8>>;

const FETCH_LATENCY: Duration = Duration::from_millis(50);
const LOAD_LATENCY: Duration = Duration::from_millis(10);

fn ms(t: u64) -> Duration {
    Duration::from_millis(t)
}

fn speech_sample(i: u64) -> i16 {
    speech_at(i, 8000.0)
}

fn speech_sample_16k(i: u64) -> i16 {
    speech_at(i, 16000.0)
}

fn speech_at(i: u64, rate: f64) -> i16 {
    let t = i as f64 / rate;
    let v: f64 = [300.0, 600.0, 900.0, 1200.0]
        .iter()
        .map(|f| (2.0 * std::f64::consts::PI * f * t).sin())
        .sum();
    (v * 2000.0) as i16
}

#[allow(clippy::large_enum_variant)]
enum Scripted {
    Media(MediaInput),
    Sip(SipInput),
    Control(ControlInput),
    /// Inputs of a dialled leg.
    LegMedia(LegId, MediaInput),
    LegSip(LegId, SipInput),
}

struct Sim {
    call: Call<Mem>,
    start: Instant,
    now: Instant,
    /// What the core did, with the millisecond it did it at.
    log: Vec<(u64, String)>,
    /// TwiML by URL (`application/xml`).
    web: HashMap<String, String>,
    /// Scripted inputs by time (a sequence number keeps insertion order at one instant).
    script: BTreeMap<(Instant, u64), Scripted>,
    seq: u64,
    fetches: BTreeMap<(Instant, u64), (IoId, FetchResult<Mem>)>,
    playing: Option<(PlaybackId, Option<Instant>)>,
    /// The caller answers our BYE after this long (`None`: never).
    bye_answer: Option<Duration>,
    /// Finalized recordings: sid → WAV bytes.
    wavs: HashMap<String, Vec<u8>>,
    /// What media allocation reports: 16000 for an Opus caller.
    sample_rate: u32,
    /// The caller's audio is Opus: wideband frames.
    wide: bool,
}

fn app(twiml: &str) -> AppSpec {
    AppSpec {
        voice_url: None,
        voice_method: HttpMethod::Post,
        twiml: twiml.into(),
        fallback_url: None,
        fallback_method: HttpMethod::Post,
        status_callback: Some("http://app/status".into()),
        status_callback_method: HttpMethod::Post,
        status_callback_events: None,
        bot: false,
    }
}

fn bot_app() -> AppSpec {
    AppSpec {
        bot: true,
        ..app("")
    }
}

fn sim_config(app: AppSpec, start: Instant) -> CallConfig {
    CallConfig {
        account_sid: store::AccountSid::from_bits(0),
        http_public_url: "http://hark".into(),
        app,
        parse_limits: ParseLimits::default(),
        record: RecordDefaults {
            pre_roll_ms: 300,
            trim_padding_ms: 500,
            finish_key_guard_ms: 60,
            silence_threshold_dbfs: -45.0,
            vad_mode: 2,
        },
        transcription_language: "en-US".into(),
        rtp_timeout: Duration::from_secs(30),
        beep: vec![1000i16; 4000].into(),
        silence_second: vec![0i16; 8000].into(),
        wall_clock: (start, 1_700_000_000_000),
    }
}

fn sim_info() -> CallInfo {
    CallInfo {
        call_sid: store::CallSid::from_bits(1),
        account_sid: store::AccountSid::from_bits(0),
        from: "+15550001111".into(),
        to: "+15550002222".into(),
        forwarded_from: None,
        caller_name: None,
        client: None,
        direction: store::Direction::Inbound,
    }
}

fn sim_sids() -> SidSource {
    let mut n = 0;
    Box::new(move || {
        n += 1;
        n
    })
}

impl Sim {
    fn new(app: AppSpec) -> Sim {
        let start = Instant::now();
        let (config, info) = (sim_config(app, start), sim_info());
        let offer = Negotiated {
            codec: AudioCodec::Pcmu,
            codec_pt: 0,
            telephone_event_pt: Some(101),
            telephone_event_clock: 8000,
            remote_rtp: "127.0.0.1:40000".parse().unwrap(),
            remote_direction: Direction::SendRecv,
            srtp: None,
        };
        let call = Call::new(start, config, info, LegOffer::Rtp(offer), None, sim_sids());
        Sim::with_call(call, start)
    }

    /// A call placed over the REST API to a browser that rings up to `timeout`.
    fn outbound(app: AppSpec, timeout: Duration) -> Sim {
        let start = Instant::now();
        let (config, info) = (sim_config(app, start), sim_info());
        let offer = LegOffer::WebRtcOffer;
        let call = Call::new_outbound(start, config, info, offer, timeout, sim_sids());
        Sim::with_call(call, start)
    }

    fn with_call(call: Call<Mem>, start: Instant) -> Sim {
        Sim {
            call,
            start,
            now: start,
            log: Vec::new(),
            web: HashMap::new(),
            script: BTreeMap::new(),
            seq: 0,
            fetches: BTreeMap::new(),
            playing: None,
            bye_answer: Some(ms(20)),
            wavs: HashMap::new(),
            sample_rate: 8000,
            wide: false,
        }
    }

    fn at(&self, t: Duration) -> Instant {
        self.start + t
    }

    fn t(&self) -> u64 {
        self.now.duration_since(self.start).as_millis() as u64
    }

    fn schedule(&mut self, t: Duration, what: Scripted) {
        self.seq += 1;
        self.script.insert((self.at(t), self.seq), what);
    }

    /// The caller speaks (`speech`) or sends near-silence for `[from, from+len)`, 20 ms frames
    /// arriving as they end.
    fn caller_audio(&mut self, from: Duration, len: Duration, speech: bool) {
        let frames = len.as_millis() as u64 / 20;
        let first = from.as_millis() as u64 / 20;
        for f in first..first + frames {
            let position = f * FRAME_SAMPLES as u64;
            let mut frame = AudioFrame::narrow(position, FRAME_SAMPLES as u16, false);
            // Wideband frames carry two samples per timeline sample (the signal at 16 kHz).
            let per = if self.wide { 2 } else { 1 };
            frame.wide = self.wide;
            for (i, s) in frame.samples[..FRAME_SAMPLES * per].iter_mut().enumerate() {
                let at = position * per as u64 + i as u64;
                *s = match (speech, self.wide) {
                    (true, false) => speech_sample(at),
                    (true, true) => speech_sample_16k(at),
                    (false, _) => ((at * 7919 % 61) as i16) - 30,
                };
            }
            self.schedule(
                ms((f + 1) * 20),
                Scripted::Media(MediaInput::Item(MediaItem::Audio(frame))),
            );
        }
    }

    fn key(&mut self, at: Duration, digit: char) {
        let event = DtmfEvent {
            digit,
            position: at.as_millis() as u64 * 8,
            source: DtmfSource::Rfc4733,
        };
        self.schedule(
            at + ms(20),
            Scripted::Media(MediaInput::Item(MediaItem::Dtmf(event))),
        );
    }

    fn bye(&mut self, at: Duration) {
        self.schedule(at, Scripted::Sip(SipInput::Ended("BYE".into())));
    }

    fn control(&mut self, at: Duration, input: ControlInput) {
        self.schedule(at, Scripted::Control(input));
    }

    fn next_instant(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        if let Some(((t, _), _)) = self.script.first_key_value() {
            consider(*t);
        }
        if let Some(((t, _), _)) = self.fetches.first_key_value() {
            consider(*t);
        }
        if let Some((_, Some(end))) = self.playing {
            consider(end);
        }
        if let Some((t, _)) = self.call.poll_timeout() {
            consider(t);
        }
        next
    }

    /// Runs until `t` (from the start) or until the call is done.
    fn run_until(&mut self, t: Duration) {
        let end = self.at(t);
        // Setup's outputs are answered once the test has scripted the web and the caller.
        self.pump();
        for _ in 0..1_000_000 {
            if self.call.is_done() {
                return;
            }
            let Some(next) = self.next_instant().filter(|n| *n <= end) else {
                self.now = end;
                return;
            };
            self.now = next.max(self.now);
            self.deliver_one();
            self.pump();
        }
        panic!("simulation did not settle");
    }

    fn run(&mut self) {
        self.run_until(Duration::from_secs(600));
        assert!(self.call.is_done(), "call not done: {:#?}", self.log);
    }

    /// One input due now; the caller's media first, as the daemon drains the ring before
    /// delivering what woke it.
    fn deliver_one(&mut self) {
        let now = self.now;
        if let Some(entry) = self.script.first_entry() {
            if entry.key().0 <= now {
                match entry.remove() {
                    Scripted::Media(m) => self.call.handle_media(now, LegId::CALLER, m),
                    Scripted::Sip(s) => self.call.handle_sip(now, LegId::CALLER, s),
                    Scripted::Control(c) => self.call.handle_control(now, c),
                    Scripted::LegMedia(leg, m) => self.call.handle_media(now, leg, m),
                    Scripted::LegSip(leg, s) => self.call.handle_sip(now, leg, s),
                }
                return;
            }
        }
        if let Some((_, Some(end))) = self.playing {
            if end <= now {
                let (id, _) = self.playing.take().unwrap();
                return self
                    .call
                    .handle_media(now, LegId::CALLER, MediaInput::PlayDone(id));
            }
        }
        if let Some(entry) = self.fetches.first_entry() {
            if entry.key().0 <= now {
                let (id, result) = entry.remove();
                return self.call.handle_fetch_result(now, id, result);
            }
        }
        self.call.handle_timeout(now);
    }

    fn respond(&mut self, after: Duration, id: IoId, result: FetchResult<Mem>) {
        self.seq += 1;
        self.fetches
            .insert((self.now + after, self.seq), (id, result));
    }

    /// Answers what the core asked, as the daemon's edges would.
    fn pump(&mut self) {
        while let Some(out) = self.call.poll_output() {
            let t = self.t();
            let line = format!("{out:?}");
            match out {
                Output::Media { command, .. } => match command {
                    MediaCommand::Allocate { .. } => {
                        let ready = MediaInput::Ready {
                            origin: self.now,
                            advertised: "127.0.0.1:20000".parse::<SocketAddr>().unwrap(),
                            sample_rate: self.sample_rate,
                        };
                        self.call.handle_media(self.now, LegId::CALLER, ready);
                    }
                    MediaCommand::Play { id, audio, loops } => {
                        let end = (loops > 0)
                            .then(|| self.now + ms(audio.len() as u64 / 8 * u64::from(loops)));
                        self.playing = Some((id, end));
                    }
                    MediaCommand::PlayDigits { id, digits } => {
                        self.playing = Some((id, Some(self.now + ms(100 * digits.len() as u64))));
                    }
                    MediaCommand::Stop => {
                        if let Some((id, _)) = self.playing.take() {
                            // The media task drops the playback: its `done` fires.
                            self.playing = Some((id, Some(self.now)));
                        }
                    }
                    _ => {}
                },
                Output::Fetch { id, request } => match request {
                    FetchRequest::Twiml { url, .. } => {
                        let answer = match self.web.get(&url) {
                            Some(body) => Ok(HttpAnswer {
                                url: url.clone(),
                                content_type: "application/xml".into(),
                                body: body.clone(),
                                oversized: false,
                            }),
                            None => Err(format!("{url}: 404")),
                        };
                        self.respond(FETCH_LATENCY, id, FetchResult::Twiml(answer));
                    }
                    FetchRequest::Audio { url } => {
                        let audio = if url.contains("missing") {
                            Err("404".to_string())
                        } else {
                            Ok(Arc::from(vec![500i16; 8000]))
                        };
                        self.respond(LOAD_LATENCY, id, FetchResult::Audio(audio));
                    }
                    FetchRequest::Speech { text, .. } => {
                        // 100 ms of speech per character.
                        let audio = Arc::from(vec![700i16; 800 * text.len()]);
                        self.respond(LOAD_LATENCY, id, FetchResult::Audio(Ok(audio)));
                    }
                },
                Output::CancelFetch(id) => self.fetches.retain(|_, (f, _)| *f != id),
                Output::Recording { id, io } => match io {
                    RecordingIo::Open {
                        sample_rate,
                        channels,
                        ..
                    } => {
                        let writer = WavWriter::create_channels(
                            Cursor::new(Vec::new()),
                            sample_rate,
                            WavEncoding::Pcm16,
                            channels,
                        )
                        .map_err(|e| e.to_string());
                        self.call.handle_fetch_result(
                            self.now,
                            id,
                            FetchResult::RecordingOpened(writer),
                        );
                    }
                    RecordingIo::Finalize { sid, recorder } => {
                        let (summary, file) = recorder.finish().expect("finish");
                        self.wavs.insert(sid.into_string(), file.into_inner());
                        let done = FetchResult::RecordingFinalized {
                            summary: Some(summary),
                            repaired_samples: 0,
                        };
                        self.call.handle_fetch_result(self.now, id, done);
                    }
                    RecordingIo::Close { sid, writer, keep } => {
                        let kept = keep.end.min(writer.samples_written()) - keep.start;
                        let file = writer.finalize(keep).expect("finalize");
                        self.wavs.insert(sid.into_string(), file.into_inner());
                        let done = FetchResult::RecordingClosed(Ok(kept));
                        self.call.handle_fetch_result(self.now, id, done);
                    }
                },
                Output::Sip {
                    command: SipCommand::Hangup,
                    ..
                } => {
                    if let Some(after) = self.bye_answer {
                        let at = self.now.duration_since(self.start) + after;
                        self.schedule(at, Scripted::Sip(SipInput::Ended("200 to BYE".into())));
                    }
                }
                _ => {}
            }
            self.log.push((t, line));
        }
    }

    /// The log lines containing `needle`, with their times.
    fn find(&self, needle: &str) -> Vec<(u64, &str)> {
        self.log
            .iter()
            .filter(|(_, l)| l.contains(needle))
            .map(|(t, l)| (*t, l.as_str()))
            .collect()
    }

    fn first(&self, needle: &str) -> (u64, &str) {
        match self.find(needle).first() {
            Some(found) => *found,
            None => panic!("no {needle:?} in {:#?}", self.log),
        }
    }

    fn none(&self, needle: &str) {
        let found = self.find(needle);
        assert!(found.is_empty(), "unexpected {needle:?}: {found:#?}");
    }

    /// Samples in a finalized 16-bit WAV.
    fn wav_samples(&self, sid: &str) -> usize {
        let bytes = &self.wavs[sid];
        (bytes.len() - 44) / 2
    }
}

fn param<'a>(line: &'a str, name: &str) -> &'a str {
    let key = format!("(\"{name}\", \"");
    let at = line
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        + key.len();
    let rest = &line[at..];
    &rest[..rest.find('"').unwrap()]
}

// ---- TwiML verbs ----

#[test]
fn say_answers_speaks_then_hangs_up_and_reports_the_duration() {
    let mut sim = Sim::new(app("<Response><Say>Hello</Say></Response>"));
    sim.run();
    let order: Vec<&str> = sim.log.iter().map(|(_, l)| l.as_str()).collect();
    assert!(order[0].starts_with("Persist(InsertCall"));
    assert!(order[1].contains("initiated") && order[2] == "Sip(LegId(0), Ring)");
    assert_eq!(sim.first("Answer").0, 0);
    assert_eq!(sim.first("Speech").0, 0);
    // Rendered 10 ms later, spoken for 500 ms: the BYE leaves at 510 ms.
    assert_eq!(sim.first("InsertCallEvent").0, 10);
    assert_eq!(sim.first("Hangup").0, 510);
    let (t, completed) = sim.first("\"completed\")");
    assert_eq!(t, 530, "reported when the BYE is answered");
    assert_eq!(param(completed, "CallDuration"), "0");
    assert_eq!(param(completed, "SequenceNumber"), "3");
}

#[test]
fn gather_key_barges_in_and_num_digits_submits() {
    let mut sim = Sim::new(app(
        r#"<Response><Gather numDigits="2" action="http://app/g"><Say>A long prompt here</Say></Gather></Response>"#,
    ));
    sim.web.insert(
        "http://app/g".into(),
        "<Response><Hangup/></Response>".into(),
    );
    sim.key(ms(300), '1');
    sim.key(ms(700), '2');
    sim.run();
    assert_eq!(sim.first("Stop").0, 320, "the first key stops the prompt");
    let (t, fetch) = sim.first("http://app/g");
    assert_eq!(t, 720);
    assert_eq!(param(fetch, "Digits"), "12");
    assert_eq!(sim.first("Hangup").0, 770);
}

#[test]
fn gather_without_keys_times_out_and_falls_through() {
    let mut sim = Sim::new(app(
        r#"<Response><Gather timeout="2" action="http://app/g"><Say>Hi</Say></Gather><Say>Bye</Say></Response>"#,
    ));
    sim.run();
    sim.none("http://app/g");
    // "Hi" ends at 10 + 200 ms; two seconds later the next verb starts.
    let speech = sim.find("Speech");
    assert_eq!(speech.len(), 2);
    assert_eq!(speech[1].0, 2210);
}

#[test]
fn gather_finish_key_alone_is_ignored_then_submits_digits() {
    let mut sim = Sim::new(app(
        r#"<Response><Gather timeout="3" action="http://app/g"><Say>Hi</Say></Gather></Response>"#,
    ));
    sim.web.insert("http://app/g".into(), "<Response/>".into());
    sim.key(ms(1000), '#');
    sim.key(ms(1500), '5');
    sim.key(ms(2000), '#');
    sim.run();
    let (t, fetch) = sim.first("http://app/g");
    assert_eq!(t, 2020);
    assert_eq!(param(fetch, "Digits"), "5");
}

#[test]
fn gather_timeout_restarts_with_each_digit() {
    let mut sim = Sim::new(app(
        r#"<Response><Gather timeout="1" action="http://app/g"><Say>Hi</Say></Gather></Response>"#,
    ));
    sim.web.insert("http://app/g".into(), "<Response/>".into());
    sim.key(ms(800), '4');
    sim.key(ms(1700), '2');
    sim.run();
    let (t, fetch) = sim.first("http://app/g");
    assert_eq!(param(fetch, "Digits"), "42");
    assert_eq!(t, 2720, "one second after the last key");
}

#[test]
fn play_loop_zero_runs_until_the_caller_hangs_up() {
    let mut sim = Sim::new(app(
        r#"<Response><Play loop="0">http://media/music.wav</Play></Response>"#,
    ));
    sim.bye(ms(5000));
    sim.run();
    assert_eq!(sim.first("Play(").0, 10);
    assert_eq!(sim.first("Stop").0, 5000);
    sim.none("Hangup");
    let (_, completed) = sim.first("\"completed\")");
    assert_eq!(param(completed, "CallDuration"), "5");
}

#[test]
fn missing_play_audio_is_skipped() {
    let mut sim = Sim::new(app(
        r#"<Response><Play>http://media/missing.wav</Play><Say>After</Say></Response>"#,
    ));
    sim.run();
    assert_eq!(
        sim.first("Speech").0,
        10,
        "the next verb starts once the load failed"
    );
}

#[test]
fn reject_busy_is_486_never_answered() {
    let mut sim = Sim::new(app(r#"<Response><Reject reason="busy"/></Response>"#));
    sim.run();
    sim.none("Answer");
    assert_eq!(
        sim.first("Reject").1,
        "Sip(LegId(0), Reject { status: 486 })"
    );
    let (_, completed) = sim.first("CallDuration");
    assert_eq!(param(completed, "CallStatus"), "busy");
}

#[test]
fn voice_url_failure_before_answer_is_500_and_failed() {
    let mut a = app("");
    a.voice_url = Some("http://app/missing".into());
    let mut sim = Sim::new(a);
    sim.run();
    assert_eq!(
        sim.first("Reject").1,
        "Sip(LegId(0), Reject { status: 500 })"
    );
    assert_eq!(sim.first("Reject").0, 50);
    let (_, completed) = sim.first("CallDuration");
    assert_eq!(param(completed, "CallStatus"), "failed");
}

#[test]
fn redirect_verb_fetches_the_next_document() {
    let mut sim = Sim::new(app(
        r#"<Response><Redirect>http://app/next</Redirect></Response>"#,
    ));
    sim.web.insert(
        "http://app/next".into(),
        "<Response><Say>Next</Say></Response>".into(),
    );
    sim.run();
    assert_eq!(sim.first("http://app/next").0, 0);
    assert_eq!(sim.first("Speech").0, 50);
}

#[test]
fn caller_cancel_before_answer_is_canceled() {
    let mut a = app("");
    a.voice_url = Some("http://app/slow".into());
    let mut sim = Sim::new(a);
    sim.web.insert(
        "http://app/slow".into(),
        "<Response><Say>Hi</Say></Response>".into(),
    );
    sim.bye(ms(20));
    sim.run();
    sim.none("Answer");
    sim.none("Reject");
    let (t, completed) = sim.first("CallDuration");
    assert_eq!(
        t, 50,
        "the document arrives, but nothing runs after a hangup"
    );
    assert_eq!(param(completed, "CallStatus"), "canceled");
}

// ---- calls we place (REST Calls.json) ----

/// The party answers `after` the invite: the row is `queued` then ringing, and nothing is
/// answered or refused by us (the party does the answering).
fn answered_outbound(app: AppSpec, after: Duration) -> Sim {
    let mut sim = Sim::outbound(app, Duration::from_secs(30));
    sim.schedule(after, Scripted::Sip(SipInput::Answered));
    sim
}

#[test]
fn outbound_call_rings_the_party_then_runs_the_program_once_it_answers() {
    let mut sim = answered_outbound(app("<Response><Say>Hi</Say></Response>"), ms(2000));
    sim.run();
    let (t, insert) = sim.first("InsertCall");
    assert_eq!(t, 0);
    assert!(
        insert.contains("status: Queued") && insert.contains("direction: OutboundApi"),
        "{insert}"
    );
    assert_eq!(sim.first("Sip(LegId(0), Invite)").0, 0);
    sim.none("Sip(LegId(0), Ring)");
    sim.none("Sip(LegId(0), Answer");
    sim.none("Cancel");
    let (t, answered) = sim.first("\"CallStatus\", \"in-progress\"");
    assert_eq!(t, 2000);
    assert_eq!(param(answered, "Direction"), "outbound-api");
    assert_eq!(param(answered, "CallStatus"), "in-progress");
    assert_eq!(sim.first("Speech").0, 2000, "the program starts at answer");
    let (_, completed) = sim.first("CallDuration");
    assert_eq!(param(completed, "CallStatus"), "completed");
    let events: Vec<&str> = sim
        .find("CallbackSource")
        .iter()
        .map(|(_, l)| param(l, "CallStatus"))
        .collect();
    assert_eq!(events, ["initiated", "ringing", "in-progress", "completed"]);
}

#[test]
fn outbound_call_unanswered_is_canceled_at_the_timeout_and_no_answer() {
    let mut sim = Sim::outbound(app("<Response><Say>Hi</Say></Response>"), ms(5000));
    sim.run();
    assert_eq!(sim.first("Sip(LegId(0), Cancel)").0, 5000);
    let (t, completed) = sim.first("CallDuration");
    assert_eq!(t, 5000);
    assert_eq!(param(completed, "CallStatus"), "no-answer");
    assert_eq!(param(completed, "CallDuration"), "0");
    sim.none("Speech");
}

#[test]
fn outbound_call_declined_is_busy_and_never_canceled() {
    let mut sim = Sim::outbound(app("<Response><Say>Hi</Say></Response>"), ms(30_000));
    sim.schedule(ms(800), Scripted::Sip(SipInput::Refused { status: 486 }));
    sim.run();
    let (t, completed) = sim.first("CallDuration");
    assert_eq!(t, 800);
    assert_eq!(param(completed, "CallStatus"), "busy");
    sim.none("Cancel");
    sim.none("Speech");
}

#[test]
fn outbound_call_hung_up_over_the_api_while_ringing_is_canceled() {
    let mut sim = Sim::outbound(app("<Response><Say>Hi</Say></Response>"), ms(30_000));
    sim.control(ms(1500), ControlInput::HangUp);
    // A late answer after the cancel changes nothing.
    sim.schedule(ms(1600), Scripted::Sip(SipInput::Answered));
    sim.run();
    assert_eq!(sim.first("Sip(LegId(0), Cancel)").0, 1500);
    let (_, completed) = sim.first("CallDuration");
    assert_eq!(param(completed, "CallStatus"), "canceled");
    sim.none("\"CallStatus\", \"in-progress\"");
}

#[test]
fn outbound_call_answered_then_hung_up_by_the_party_is_completed_with_its_duration() {
    let mut sim = answered_outbound(app("<Response><Pause length=\"60\"/></Response>"), ms(1000));
    sim.bye(ms(4200));
    sim.run();
    let (t, completed) = sim.first("CallDuration");
    assert_eq!(t, 4200);
    assert_eq!(param(completed, "CallStatus"), "completed");
    assert_eq!(param(completed, "CallDuration"), "3");
}

#[test]
fn status_callback_events_filter_the_progress_callbacks() {
    let mut a = app("<Response><Say>Hi</Say></Response>");
    a.status_callback_events = Some(vec!["answered".into(), "completed".into()]);
    let mut sim = answered_outbound(a, ms(500));
    sim.run();
    let events: Vec<&str> = sim
        .find("CallbackSource")
        .iter()
        .map(|(_, l)| param(l, "CallStatus"))
        .collect();
    assert_eq!(events, ["in-progress", "completed"]);
    let (_, completed) = sim.first("CallDuration");
    assert_eq!(
        param(completed, "SequenceNumber"),
        "1",
        "counts the events sent"
    );
}

// ---- Record ----

fn record_app(attrs: &str) -> AppSpec {
    app(&format!(
        r#"<Response><Record playBeep="false" action="http://app/r" {attrs}/></Response>"#
    ))
}

#[test]
fn record_stops_on_silence_and_requests_the_action() {
    let mut sim = Sim::new(record_app(r#"timeout="2" trim="do-not-trim""#));
    sim.web.insert("http://app/r".into(), "<Response/>".into());
    sim.caller_audio(ms(0), ms(1000), false);
    sim.caller_audio(ms(1000), ms(1000), true);
    sim.caller_audio(ms(2000), ms(4000), false);
    sim.run();
    sim.first("InsertRecording");
    let (t, action) = sim.first("http://app/r");
    // Two seconds of silence after the speech that ended at 2.0 s.
    assert_eq!(t, 4000);
    assert_eq!(param(action, "Digits"), "");
    assert_eq!(param(action, "RecordingDuration"), "4");
    let sid = param(action, "RecordingSid").to_string();
    assert_eq!(sim.wav_samples(&sid), 4 * 8000);
}

/// An Opus caller: the leg is wideband, the file is 16 kHz with twice the samples, and the
/// stop by silence and the trimmed span land at the same times as for a G.711 caller.
/// The speech, pause, speech, '#' of the wideband test, at either bandwidth.
fn speech_then_pound(wide: bool) -> Sim {
    let mut sim = Sim::new(record_app(r##"timeout="2" finishOnKey="#""##));
    if wide {
        sim.sample_rate = 16_000;
        sim.wide = true;
    }
    sim.web.insert("http://app/r".into(), "<Response/>".into());
    sim.caller_audio(ms(0), ms(1000), false);
    sim.caller_audio(ms(1000), ms(1000), true);
    sim.caller_audio(ms(2000), ms(1500), false);
    sim.caller_audio(ms(3500), ms(1000), true);
    sim.key(ms(4600), '#');
    sim.caller_audio(ms(4500), ms(2000), false);
    sim.run();
    sim
}

/// The recording row's final `start_time_ms` (moved by the trim).
fn recording_start_ms(sim: &Sim) -> u64 {
    let (_, line) = *sim
        .find("Persist(UpdateRecording")
        .last()
        .expect("recording row");
    let at = line.find("start_time_ms: ").expect("start_time_ms") + "start_time_ms: ".len();
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn wideband_caller_is_recorded_at_16k_with_the_same_timing() {
    let sim = speech_then_pound(true);
    let narrow = speech_then_pound(false);
    assert_eq!(
        recording_start_ms(&sim),
        recording_start_ms(&narrow),
        "the trimmed file starts at the same wall time at either rate"
    );
    assert!(sim.first("Open RE").1.contains("at 16000 Hz x1)"));
    let (_, action) = sim.first("http://app/r");
    assert_eq!(param(action, "Digits"), "#");
    let sid = param(action, "RecordingSid").to_string();
    let wav = &sim.wavs[&sid];
    let header = record_engine::wav::read_header(&mut &wav[..]).expect("WAV header");
    assert_eq!(header.sample_rate, 16_000);
    // Trimmed to the speech (1.0 s to 4.5 s) with 500 ms padding on each side: 4.5 s, cut at
    // the key (4.6 s) less its guard; at 16 kHz.
    let samples = sim.wav_samples(&sid);
    assert!(
        (4.0 * 16000.0..=4.6 * 16000.0).contains(&(samples as f64)),
        "{samples} samples"
    );
    // The speech is there at 16 kHz: 300 Hz and up, not a 8 kHz signal doubled.
    let pcm: Vec<i16> = wav[44..]
        .chunks(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let start = 16000;
    let expect: Vec<i16> = (0..1600).map(|i| speech_sample_16k(16000 + i)).collect();
    let got = &pcm[start - 8000..start - 8000 + 1600];
    assert_eq!(got, &expect[..], "the file starts 500 ms before the speech");
}

#[test]
fn record_finish_key_cuts_at_the_key() {
    let mut sim = Sim::new(record_app(r##"finishOnKey="#" trim="do-not-trim""##));
    sim.web.insert("http://app/r".into(), "<Response/>".into());
    sim.caller_audio(ms(0), ms(3000), true);
    sim.key(ms(1500), '#');
    sim.run();
    let (t, action) = sim.first("http://app/r");
    assert_eq!(t, 1520);
    assert_eq!(param(action, "Digits"), "#");
    let sid = param(action, "RecordingSid").to_string();
    let samples = sim.wav_samples(&sid);
    assert!(
        ((1500 - 60) * 8..=1500 * 8).contains(&samples),
        "cut at the key (less the guard): {samples}"
    );
}

#[test]
fn record_max_length_stops_at_the_limit() {
    let mut sim = Sim::new(record_app(r#"maxLength="2" trim="do-not-trim""#));
    sim.web.insert("http://app/r".into(), "<Response/>".into());
    sim.caller_audio(ms(0), ms(5000), true);
    sim.run();
    let (t, action) = sim.first("http://app/r");
    assert_eq!(t, 2000);
    let sid = param(action, "RecordingSid").to_string();
    assert_eq!(sim.wav_samples(&sid), 2 * 8000);
}

#[test]
fn hangup_during_record_requests_the_action_with_digits_hangup_and_ignores_it() {
    let mut sim = Sim::new(record_app(""));
    sim.web.insert(
        "http://app/r".into(),
        "<Response><Say>Never spoken</Say></Response>".into(),
    );
    sim.caller_audio(ms(0), ms(1500), true);
    sim.bye(ms(1500));
    sim.run();
    let (t, action) = sim.first("http://app/r");
    assert_eq!(t, 1500);
    assert_eq!(param(action, "Digits"), "hangup");
    sim.none("Speech");
    sim.none("Hangup");
    let (_, completed) = sim.first("\"completed\")");
    assert_eq!(param(completed, "CallStatus"), "completed");
}

#[test]
fn api_hangup_during_record_keeps_the_audio_and_skips_the_action() {
    let mut sim = Sim::new(record_app(r#"trim="do-not-trim""#));
    sim.caller_audio(ms(0), ms(3000), true);
    sim.control(ms(1500), ControlInput::HangUp);
    sim.run();
    sim.none("http://app/r");
    let (t, finalize) = sim.first("Finalize");
    assert_eq!(t, 1500);
    let sid = finalize
        .split_whitespace()
        .last()
        .unwrap()
        .trim_end_matches(')');
    assert!(sim.wav_samples(sid) >= 1400 * 8);
    assert!(sim.first("UpdateRecording").1.contains("status: Completed"));
    assert_eq!(sim.first("Hangup").0, 1500);
}

#[test]
fn stalled_media_is_padded_so_silence_still_ends_the_recording() {
    let mut sim = Sim::new(record_app(r#"timeout="3" trim="do-not-trim""#));
    sim.web.insert("http://app/r".into(), "<Response/>".into());
    // Speech for a second, then the phone stops sending.
    sim.caller_audio(ms(0), ms(1000), true);
    sim.run();
    let (t, action) = sim.first("http://app/r");
    // Padding runs one second behind real time: audio time 4 s is reached at about 5 s.
    assert!((5000..=5200).contains(&t), "stopped at {t} ms");
    assert_eq!(param(action, "RecordingDuration"), "4");
}

#[test]
fn beep_plays_before_the_capture() {
    let mut sim = Sim::new(app(
        r#"<Response><Record maxLength="2" action="http://app/r" trim="do-not-trim"/></Response>"#,
    ));
    sim.web.insert("http://app/r".into(), "<Response/>".into());
    sim.caller_audio(ms(0), ms(3000), true);
    sim.run();
    // The beep is 500 ms; capture starts where the caller's audio is then.
    assert_eq!(sim.first("Play(").0, 0);
    assert_eq!(sim.first("InsertRecording").0, 500);
    assert_eq!(sim.first("http://app/r").0, 2500);
}

// ---- live control ----

#[test]
fn live_update_during_pause_runs_the_new_twiml() {
    let mut sim = Sim::new(app(r#"<Response><Pause length="10"/></Response>"#));
    sim.control(
        ms(1000),
        ControlInput::Redirect(Redirect::Twiml(
            "<Response><Say>New</Say></Response>".into(),
        )),
    );
    sim.run();
    assert_eq!(sim.first("Stop").0, 1000);
    assert_eq!(sim.first("Speech").0, 1000);
    assert_eq!(sim.first("Hangup").0, 1010 + 300);
}

#[test]
fn live_update_to_a_url_fetches_it_with_the_call_in_progress() {
    let mut sim = Sim::new(app(r#"<Response><Pause length="10"/></Response>"#));
    sim.web.insert(
        "http://app/live".into(),
        "<Response><Hangup/></Response>".into(),
    );
    sim.control(
        ms(1000),
        ControlInput::Redirect(Redirect::Url("http://app/live".into(), HttpMethod::Get)),
    );
    sim.run();
    let (t, fetch) = sim.first("http://app/live");
    assert_eq!(t, 1000);
    assert_eq!(param(fetch, "CallStatus"), "in-progress");
    assert_eq!(sim.first("Hangup").0, 1050);
}

#[test]
fn shutdown_before_answer_is_503() {
    let mut a = app("");
    a.voice_url = Some("http://app/voice".into());
    let mut sim = Sim::new(a);
    sim.web.insert(
        "http://app/voice".into(),
        "<Response><Say>Hi</Say></Response>".into(),
    );
    sim.control(ms(10), ControlInput::Shutdown);
    sim.run();
    assert_eq!(sim.first("CancelFetch").0, 10);
    assert_eq!(
        sim.first("Reject").1,
        "Sip(LegId(0), Reject { status: 503 })"
    );
}

#[test]
fn unanswered_bye_ends_the_call_after_the_grace() {
    let mut sim = Sim::new(app("<Response><Hangup/></Response>"));
    sim.bye_answer = None;
    sim.run();
    assert_eq!(sim.first("Hangup").0, 0);
    assert_eq!(
        sim.first("Live(Terminated)").0,
        0,
        "no update is accepted while the BYE waits"
    );
    let (t, completed) = sim.first("CallDuration");
    assert_eq!(t, 5000);
    assert_eq!(param(completed, "CallStatus"), "completed");
}

// ---- bots ----

fn op_play(uris: &[&str], barge_in: bool) -> OperationRequest {
    OperationRequest::PlayPrompt(PlayPrompt {
        prompt_uris: uris.iter().map(|u| u.to_string()).collect(),
        barge_in_allowed: barge_in,
        client_context: None,
    })
}

fn op_record(initial: u32, silence: u32, max: u32) -> OperationRequest {
    OperationRequest::RecordResponse(RecordResponse {
        prompt_uri: None,
        barge_in_allowed: false,
        initial_silence_timeout_secs: initial,
        max_silence_timeout_secs: silence,
        max_record_duration_secs: max,
        play_beep: false,
        stop_tones: vec!['#'],
        client_context: None,
    })
}

fn operation(id: &str, request: OperationRequest) -> ControlInput {
    ControlInput::Operation {
        id: id.into(),
        request,
    }
}

#[test]
fn bot_call_is_answered_established_and_runs_a_prompt() {
    let mut sim = Sim::new(bot_app());
    sim.control(
        ms(100),
        operation("op1", op_play(&["http://media/a.wav"], false)),
    );
    sim.control(ms(2000), ControlInput::HangUp);
    sim.run();
    let states: Vec<&str> = sim.find("CallState").iter().map(|(_, l)| *l).collect();
    assert_eq!(
        states,
        [
            "Bot(CallState(Establishing))",
            "Bot(CallState(Established))",
            "Bot(CallState(Terminated))"
        ]
    );
    assert_eq!(sim.first("Answer").0, 0);
    let done = sim.find("op1");
    assert_eq!(done.len(), 2, "{done:?}");
    assert!(done[0].1.contains("Running"));
    assert_eq!(done[1].0, 1110, "loaded in 10 ms, played for 1 s");
    assert!(done[1].1.contains("code: 200, subcode: 0"));
}

#[test]
fn bot_record_response_stops_on_silence_after_speech() {
    let mut sim = Sim::new(bot_app());
    sim.caller_audio(ms(0), ms(1000), false);
    sim.caller_audio(ms(1000), ms(1000), true);
    sim.caller_audio(ms(2000), ms(5000), false);
    sim.control(ms(500), operation("rec", op_record(5, 2, 60)));
    sim.control(ms(6000), ControlInput::HangUp);
    sim.run();
    let (t, done) = sim.first("subcode: 8509");
    assert_eq!(t, 4000);
    assert!(done.contains("Completed") && done.contains("recording_sid: Some"));
}

#[test]
fn bot_record_response_without_speech_is_8510() {
    let mut sim = Sim::new(bot_app());
    sim.caller_audio(ms(0), ms(6000), false);
    sim.control(ms(0), operation("rec", op_record(2, 2, 60)));
    sim.control(ms(5000), ControlInput::HangUp);
    sim.run();
    assert_eq!(sim.first("subcode: 8510").0, 2000);
}

#[test]
fn bot_record_response_with_no_media_and_rtp_timeout_is_8513() {
    let mut sim = Sim::new(bot_app());
    sim.control(ms(0), operation("rec", op_record(60, 10, 60)));
    sim.schedule(ms(3000), Scripted::Media(MediaInput::RtpTimeout));
    sim.run();
    let (t, done) = sim.first("subcode: 8513");
    assert_eq!(t, 3000);
    assert!(done.contains("recording_sid: None"));
    assert_eq!(
        sim.first("Hangup").0,
        3000,
        "we end the dialog the caller left"
    );
}

#[test]
fn bot_barge_in_cancels_the_running_and_queued_operations() {
    let mut sim = Sim::new(bot_app());
    sim.control(
        ms(0),
        operation("a", op_play(&["http://media/a.wav"; 5], false)),
    );
    sim.control(
        ms(100),
        operation("b", op_play(&["http://media/b.wav"], false)),
    );
    sim.control(
        ms(200),
        operation("c", op_play(&["http://media/c.wav"], true)),
    );
    sim.control(ms(3000), ControlInput::HangUp);
    sim.run();
    let b = sim.find("id: \"b\"");
    assert_eq!(b.len(), 1);
    assert!(b[0].1.contains("8508") && b[0].1.contains("barge-in"));
    let a = sim.find("id: \"a\"");
    assert_eq!(a.last().unwrap().0, 200);
    assert!(a.last().unwrap().1.contains("Failed") && a.last().unwrap().1.contains("8508"));
    let c = sim.find("id: \"c\"");
    assert_eq!(c[0].0, 200, "c starts at once");
    assert!(c.last().unwrap().1.contains("Completed"));
}

#[test]
fn bot_prompt_that_cannot_load_is_8511() {
    let mut sim = Sim::new(bot_app());
    sim.control(
        ms(0),
        operation("p", op_play(&["http://media/missing.wav"], false)),
    );
    sim.control(ms(1000), ControlInput::HangUp);
    sim.run();
    assert_eq!(sim.first("subcode: 8511").0, 10);
}

#[test]
fn bot_tones_are_numbered_from_one_after_subscribing() {
    let mut sim = Sim::new(bot_app());
    sim.key(ms(100), '1');
    sim.control(
        ms(200),
        operation(
            "t",
            OperationRequest::SubscribeToTone {
                client_context: None,
            },
        ),
    );
    sim.key(ms(300), '*');
    sim.key(ms(400), '9');
    sim.control(ms(1000), ControlInput::HangUp);
    sim.run();
    let tones: Vec<&str> = sim.find("Tone").iter().map(|(_, l)| *l).collect();
    assert_eq!(
        tones,
        [
            "Bot(Tone { key: '*', sequence: 1 })",
            "Bot(Tone { key: '9', sequence: 2 })"
        ]
    );
}

#[test]
fn caller_hangup_fails_queued_bot_operations_with_8528() {
    let mut sim = Sim::new(bot_app());
    sim.control(
        ms(0),
        operation("a", op_play(&["http://media/a.wav"; 5], false)),
    );
    sim.control(
        ms(10),
        operation("b", op_play(&["http://media/b.wav"], false)),
    );
    sim.bye(ms(1500));
    sim.run();
    assert!(sim.find("id: \"a\"").last().unwrap().1.contains("8528"));
    assert!(sim.find("id: \"b\"").last().unwrap().1.contains("8528"));
    sim.none("Hangup");
}

#[test]
fn bot_call_redirected_to_twiml_runs_it_without_terminated() {
    let mut sim = Sim::new(bot_app());
    sim.control(
        ms(0),
        operation("a", op_play(&["http://media/a.wav"; 5], false)),
    );
    sim.control(
        ms(500),
        ControlInput::Redirect(Redirect::Twiml("<Response><Say>Hi</Say></Response>".into())),
    );
    sim.run();
    assert!(sim.find("id: \"a\"").last().unwrap().1.contains("8508"));
    assert_eq!(sim.first("Speech").0, 500);
    // The bot learns that the call ended when it does.
    let terminated = sim.first("CallState(Terminated)").0;
    assert!(terminated >= 700, "{terminated}");
}

#[test]
fn recording_tracks_count_channels_and_legs() {
    let mixed = RecordingTracks::Mixed(vec![LegId::CALLER, LegId(1)]);
    assert_eq!(mixed.channels(), 1);
    assert!(mixed.takes(LegId(1)));
    let dual = RecordingTracks::Separate(vec![LegId::CALLER, LegId(1)]);
    assert_eq!(dual.channels(), 2);
    assert!(!dual.takes(LegId(2)));
}

#[test]
fn input_for_an_unknown_leg_is_ignored() {
    let mut sim = Sim::new(app("<Response><Hangup/></Response>"));
    sim.run_until(ms(0));
    let before = sim.log.len();
    sim.call
        .handle_sip(sim.now, LegId(7), SipInput::Ended("BYE".into()));
    assert!(sim.call.poll_output().is_none());
    assert_eq!(sim.log.len(), before);
}

#[test]
fn play_digits_sends_the_keys_then_runs_the_next_verb() {
    let mut sim = Sim::new(app(
        r#"<Response><Play digits="1w2"/><Say>Hi</Say></Response>"#,
    ));
    sim.run();
    let (sent, line) = sim.first("PlayDigits");
    assert!(line.contains("digits: \"1w2\""), "{line}");
    let answered = sim.first("Answer").0;
    assert!(answered <= sent, "keys go out on an answered call");
    // The scripted media task takes 100 ms per character.
    assert_eq!(sim.first("Speech").0, sent + 300);
}

#[test]
fn pause_waits_its_length_then_runs_the_next_verb() {
    let mut sim = Sim::new(app(r#"<Response><Pause length="2"/><Hangup/></Response>"#));
    sim.run();
    let answered = sim.first("Answer").0;
    assert_eq!(sim.first("Hangup").0, answered + 2000);
}

// ---- Dial ----

impl Sim {
    /// The dialled leg answers at `answer` and speaks a constant `level` until `bye` (its
    /// hang-up), 20 ms frames on its own timeline.
    fn callee(&mut self, leg: LegId, answer: Duration, bye: Option<Duration>, level: i16) {
        let ready = MediaInput::Ready {
            origin: self.at(answer),
            advertised: "127.0.0.1:20002".parse::<SocketAddr>().unwrap(),
            sample_rate: 8000,
        };
        self.schedule(answer, Scripted::LegMedia(leg, ready));
        self.schedule(answer, Scripted::LegSip(leg, SipInput::Answered));
        let end = bye.unwrap_or(Duration::from_secs(20));
        let frames = (end - answer).as_millis() as u64 / 20;
        for f in 0..frames {
            let mut frame = AudioFrame::narrow(f * 160, 160, false);
            frame.samples[..160].fill(level);
            let at = answer + ms((f + 1) * 20);
            self.schedule(
                at,
                Scripted::LegMedia(leg, MediaInput::Item(MediaItem::Audio(frame))),
            );
        }
        if let Some(bye) = bye {
            self.schedule(bye, Scripted::LegSip(leg, SipInput::Ended("BYE".into())));
        }
    }

    fn wav(&self, sid: &str) -> (u16, Vec<i16>) {
        let r = hound::WavReader::new(Cursor::new(self.wavs[sid].clone())).unwrap();
        let channels = r.spec().channels;
        (
            channels,
            r.into_samples::<i16>().map(|s| s.unwrap()).collect(),
        )
    }
}

/// `<Dial record="record-from-answer-dual">`: the caller hears ringback until the callee
/// answers at 1 s; the bridge is relayed both ways; the callee hangs up at 4 s; the action gets
/// Twilio's Dial parameters and the recording holds the caller on channel 1 and the callee on
/// channel 2 from the answer on.
#[test]
fn dial_bridges_records_dual_and_reports_the_outcome() {
    let mut sim = Sim::new(app(
        r#"<Response><Dial action="http://app/dialed" record="record-from-answer-dual" timeout="10"><Sip>sip:agent@127.0.0.1:5070</Sip></Dial></Response>"#,
    ));
    sim.web.insert(
        "http://app/dialed".into(),
        "<Response><Hangup/></Response>".into(),
    );
    sim.caller_audio(ms(0), Duration::from_secs(6), true);
    sim.callee(
        LegId(1),
        Duration::from_secs(1),
        Some(Duration::from_secs(4)),
        -3000,
    );
    sim.run();
    let (t, dial) = sim.first("Dial(DialRequest");
    assert_eq!(t, 0);
    assert!(dial.contains("sip:agent@127.0.0.1:5070") && dial.contains("from: \"+15550001111\""));
    // Ringback from the start (answered first: answerOnBridge is off), stopped at the answer.
    assert_eq!(sim.first("Answer").0, 0);
    assert!(sim.first("Play(").1.contains("x0"));
    assert_eq!(sim.first("Bridge { peer: LegId(1) }").0, 1000);
    assert_eq!(sim.first("Bridge { peer: LegId(0) }").0, 1000);
    let (t, open) = sim.first("Open RE");
    assert_eq!(t, 1000);
    assert!(open.contains("x2"));
    assert_eq!(sim.first("Unbridge").0, 4000);
    let (t, action) = sim.first("http://app/dialed");
    assert_eq!(t, 4000);
    assert_eq!(param(action, "DialCallStatus"), "completed");
    assert_eq!(param(action, "DialCallDuration"), "3");
    assert_eq!(param(action, "DialBridged"), "true");
    assert_eq!(param(action, "RecordingDuration"), "3");
    assert!(param(action, "DialCallSid").starts_with("CA"));
    let sid = param(action, "RecordingSid").to_string();
    let (channels, samples) = sim.wav(&sid);
    assert_eq!(channels, 2);
    assert_eq!(samples.len() / 2, 24_000, "3 s from answer to hang-up");
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    assert!(right.iter().all(|&v| v == -3000), "channel 2 is the callee");
    // Channel 1 is the caller's speech, sample for sample from its 1 s mark.
    assert_eq!(
        left[..100],
        (8000..8100).map(speech_sample).collect::<Vec<_>>()[..]
    );
    let row = sim.find("UpdateRecording");
    assert!(row.last().unwrap().1.contains("DialVerb"));
    // The dialled leg is a child call: its own row, with the parent's sid, ended completed.
    // (The simulation's SID source starts at 1, as the caller's own sid: rows are told apart
    // by their direction.)
    let rows = sim.find("OutboundDial");
    assert!(rows[0].1.starts_with("Persist(InsertCall"), "{rows:?}");
    assert!(
        rows[0].1.contains("OutboundDial")
            && rows[0]
                .1
                .contains("parent_call_sid: Some(CallSid(\"CA00000000000000000000000000000001\"))"),
        "{rows:?}"
    );
    let last = rows
        .iter()
        .rev()
        .find(|(_, l)| l.contains("UpdateCall"))
        .unwrap();
    assert_eq!(last.0, 4000);
    assert!(
        last.1.contains("status: Completed") && last.1.contains("duration_secs: Some(3)"),
        "{last:?}"
    );
}

/// Nobody answers within `timeout`: the leg is canceled and the action says no-answer; a busy
/// callee says busy; without an action the next verb runs.
#[test]
fn dial_no_answer_busy_and_fall_through() {
    let mut sim = Sim::new(app(
        r#"<Response><Dial action="http://app/dialed" timeout="5"><Client>bob</Client></Dial></Response>"#,
    ));
    sim.web.insert(
        "http://app/dialed".into(),
        "<Response><Hangup/></Response>".into(),
    );
    sim.run();
    assert_eq!(sim.first("Cancel").0, 5000);
    let (t, action) = sim.first("http://app/dialed");
    assert_eq!(t, 5000);
    assert_eq!(param(action, "DialCallStatus"), "no-answer");
    assert_eq!(param(action, "DialBridged"), "false");

    let mut sim = Sim::new(app(
        r#"<Response><Dial><Sip>sip:a@127.0.0.1</Sip><Sip>sip:b@127.0.0.1</Sip></Dial><Say>Next</Say></Response>"#,
    ));
    sim.schedule(
        ms(500),
        Scripted::LegSip(LegId(1), SipInput::Refused { status: 486 }),
    );
    sim.schedule(
        ms(700),
        Scripted::LegSip(LegId(2), SipInput::Refused { status: 480 }),
    );
    sim.run();
    assert_eq!(sim.find("Dial(DialRequest").len(), 2, "both ring at once");
    let (t, _) = sim.first("Speech");
    assert_eq!(t, 700, "the next verb runs when the last noun gave up");
}

/// Simultaneous ring: the first to answer wins, the other is canceled; the caller's hang-up
/// ends the bridge with a BYE to the callee and the action's answer is discarded.
#[test]
fn dial_first_answer_wins_and_caller_hangup_ends_the_bridge() {
    let mut sim = Sim::new(app(
        r#"<Response><Dial action="http://app/dialed" answerOnBridge="true"><Sip>sip:a@127.0.0.1</Sip><Sip>sip:b@127.0.0.1</Sip></Dial></Response>"#,
    ));
    sim.web.insert(
        "http://app/dialed".into(),
        "<Response><Say>ignored</Say></Response>".into(),
    );
    sim.callee(LegId(2), ms(800), None, 100);
    sim.bye(Duration::from_secs(3));
    sim.run();
    assert_eq!(
        sim.first("Answer").0,
        800,
        "answerOnBridge: answered with the callee"
    );
    assert_eq!(sim.first("Sip(LegId(1), Cancel)").0, 800);
    assert_eq!(sim.first("Sip(LegId(2), Hangup)").0, 3000);
    let (_, action) = sim.first("http://app/dialed");
    assert_eq!(param(action, "DialCallStatus"), "completed");
    assert!(
        param(action, "DialCallSid").ends_with(&format!("{:032x}", 2)),
        "{action}"
    );
    sim.none("Speech");
}

// ---- Recording a live call over the REST API ----

fn live_recording(sid: u128, dual: bool) -> ControlInput {
    ControlInput::StartRecording(control::recording_control::LiveRecordingRequest {
        sid: store::RecordingSid::from_bits(sid),
        dual,
        track: control::twiml::RecordingTrack::Both,
        status_callback: Some(store::StatusCallbackSpec {
            url: "http://app/rec".into(),
            method: HttpMethod::Post,
            in_progress: true,
            completed: true,
            absent: true,
        }),
        trim: false,
    })
}

fn change(change: control::recording_control::RecordingChange) -> ControlInput {
    ControlInput::ChangeRecording { sid: None, change }
}

/// Started at 1 s, paused at 2 s, resumed at 3 s, stopped at 4 s: `skip` leaves the paused
/// second out (2 s of audio, continuous), `silence` keeps it as silence (3 s).
#[test]
fn rest_recording_pause_skip_and_silence() {
    use control::recording_control::RecordingChange;
    for silence in [false, true] {
        let mut sim = Sim::new(app(r#"<Response><Pause length="10"/></Response>"#));
        sim.caller_audio(ms(0), Duration::from_secs(6), true);
        sim.control(ms(1000), live_recording(77, false));
        sim.control(ms(2000), change(RecordingChange::Pause { silence }));
        sim.control(ms(3000), change(RecordingChange::Resume));
        sim.control(ms(4000), change(RecordingChange::Stop));
        sim.run_until(Duration::from_secs(5));
        let sid = format!("RE{:032x}", 77);
        let (channels, samples) = sim.wav(&sid);
        assert_eq!(channels, 1);
        let want = if silence { 24_000 } else { 16_000 };
        assert_eq!(samples.len(), want, "silence={silence}");
        // The caller's speech from 1 s, sample for sample, up to the pause.
        assert_eq!(
            samples[..8000],
            (8000..16_000).map(speech_sample).collect::<Vec<_>>()[..]
        );
        if silence {
            assert!(samples[8000..16_000].iter().all(|&v| v == 0));
            assert_eq!(
                samples[16_000..],
                (24_000..32_000).map(speech_sample).collect::<Vec<_>>()[..]
            );
        } else {
            // After the skipped second the speech goes on from 3 s.
            assert_eq!(
                samples[8000..],
                (24_000..32_000).map(speech_sample).collect::<Vec<_>>()[..]
            );
        }
        let rows: Vec<&str> = sim
            .find("UpdateRecording")
            .iter()
            .map(|(_, l)| *l)
            .collect();
        assert!(rows[0].contains("status: Paused") && rows[1].contains("status: InProgress"));
        assert!(rows[2].contains("status: Completed") && rows[2].contains("StartCallRecordingApi"));
        let cbs: Vec<(u64, &str)> = sim
            .find("http://app/rec")
            .into_iter()
            .filter(|(_, l)| l.starts_with("Callback("))
            .collect();
        assert_eq!(cbs.len(), 2, "in-progress and completed");
        assert_eq!(
            param(cbs[1].1, "RecordingDuration"),
            if silence { "3" } else { "2" }
        );
    }
}

/// A REST recording still running when the caller hangs up is closed before the call ends.
#[test]
fn rest_recording_is_closed_when_the_caller_hangs_up() {
    let mut sim = Sim::new(app(r#"<Response><Pause length="10"/></Response>"#));
    sim.caller_audio(ms(0), Duration::from_secs(3), true);
    sim.control(ms(500), live_recording(78, true));
    sim.bye(ms(2500));
    sim.run();
    let sid = format!("RE{:032x}", 78);
    let (channels, samples) = sim.wav(&sid);
    assert_eq!(channels, 2);
    // Two channels (nobody is bridged: channel 2 is silent), 0.5 s to 2.5 s.
    assert_eq!(samples.len(), 2 * 16_000);
    assert!(samples.iter().skip(1).step_by(2).all(|&v| v == 0));
    let completed = sim.first("\"completed\")");
    let closed = sim.first("UpdateRecording");
    assert!(closed.0 <= completed.0);
}

/// `<Number sendDigits>`: the keys go to the dialled party when it answers; its INFO key and
/// the caller's RFC 4733 key are relayed to the other side.
#[test]
fn dial_sends_digits_and_relays_keys_both_ways() {
    let mut sim = Sim::new(app(
        r#"<Response><Dial><Number sendDigits="w12">+15550123</Number></Dial></Response>"#,
    ));
    sim.callee(LegId(1), ms(500), Some(Duration::from_secs(3)), 100);
    sim.key(ms(1000), '7');
    sim.schedule(
        ms(1500),
        Scripted::LegSip(
            LegId(1),
            SipInput::Dtmf {
                digit: '9',
                duration_ms: 100,
            },
        ),
    );
    sim.run();
    let (t, digits) = sim.first("Media(LegId(1), PlayDigits");
    assert_eq!(t, 500);
    assert!(digits.contains("\"w12\""), "{digits}");
    let relayed = sim.find("PlayDigits");
    assert!(
        relayed
            .iter()
            .any(|(t, l)| *t == 1020 && l.contains("LegId(1)") && l.contains("\"7\"")),
        "{relayed:?}"
    );
    assert!(
        relayed
            .iter()
            .any(|(t, l)| *t == 1500 && l.contains("LegId(0)") && l.contains("\"9\"")),
        "{relayed:?}"
    );
}

impl Sim {
    fn callee_key(&mut self, leg: LegId, at: Duration, digit: char) {
        let event = DtmfEvent {
            digit,
            position: at.as_millis() as u64 * 8,
            source: DtmfSource::Rfc4733,
        };
        self.schedule(
            at,
            Scripted::LegMedia(leg, MediaInput::Item(MediaItem::Dtmf(event))),
        );
    }
}

/// A noun's `url` runs on the answered party before the bridge: it hears the prompt, presses 1
/// (its `<Gather>` action answers more TwiML), then it is bridged. Another run: the party
/// presses nothing, the whisper hangs up, and the caller is never bridged.
#[test]
fn whisper_runs_on_the_party_before_the_bridge() {
    for accept in [true, false] {
        let mut sim = Sim::new(app(
            r#"<Response><Dial action="http://app/dialed"><Sip url="http://app/whisper">sip:agent@127.0.0.1</Sip></Dial></Response>"#,
        ));
        sim.web.insert(
            "http://app/whisper".into(),
            r#"<Response><Gather numDigits="1" timeout="3" action="http://app/accept"><Say>Press one</Say></Gather><Hangup/></Response>"#.into(),
        );
        sim.web.insert(
            "http://app/accept".into(),
            "<Response><Say>Connecting</Say></Response>".into(),
        );
        sim.web.insert(
            "http://app/dialed".into(),
            "<Response><Hangup/></Response>".into(),
        );
        sim.callee(LegId(1), ms(500), Some(Duration::from_secs(10)), 100);
        if accept {
            sim.callee_key(LegId(1), ms(2000), '1');
        }
        sim.run();
        let (t, whisper) = sim.first("http://app/whisper");
        assert_eq!(t, 500, "fetched when the party answers");
        assert_eq!(
            param(whisper, "ParentCallSid"),
            "CA00000000000000000000000000000001"
        );
        assert_eq!(param(whisper, "Direction"), "outbound-dial");
        let says = sim.find("Speech");
        assert!(says[0].1.contains("Press one"));
        let prompt = sim.find("Media(LegId(1), Play(");
        assert_eq!(
            prompt[0].0, 560,
            "the prompt plays to the party, not the caller"
        );
        let (_, action) = sim.first("http://app/dialed");
        if accept {
            let (t, accepted) = sim.first("http://app/accept");
            assert_eq!(t, 2000);
            assert_eq!(param(accepted, "Digits"), "1");
            // "Connecting" renders in 10 ms and plays 1 s: the bridge follows.
            let (t, _) = sim.first("Bridge { peer: LegId(1) }");
            assert!((3000..=3200).contains(&t), "bridged at {t}");
            assert_eq!(param(action, "DialBridged"), "true");
        } else {
            sim.none("Bridge {");
            sim.none("http://app/accept");
            assert_eq!(param(action, "DialBridged"), "false");
            assert_eq!(
                sim.first("Sip(LegId(1), Hangup)").0,
                sim.first("http://app/dialed").0
            );
        }
    }
}
