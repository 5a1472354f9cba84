//! Issue 12 item 6: a SIP phone that offers Opus first (linphone's offer: `opus/48000/2` at a
//! dynamic payload type with `useinbandfec=1`, telephone-event at 48 kHz and 8 kHz, G.711 after)
//! gets Opus at its payload type, is recorded wideband (16 kHz, a 6 kHz tone no G.711 call
//! could carry is in the file), its '#' on the 48 kHz event clock ends the `<Record>`, and the
//! 16 kHz recording is what the transcriber gets (Whisper hears the sentence). With
//! `rtp.opus = false` the same offer is answered with PCMU.

mod common;
mod twilio_app;
mod twilio_client;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::rtp::{dtmf_event, rtp_packet};
use common::sip::RawUac;
use common::*;
use media_engine::opus::{OpusEncoder, MAX_PACKET};
use media_engine::WIDE_FRAME_SAMPLES;

const SENTENCE: &str = "my account number has changed since last year";
const OPUS_PT: u8 = 96;
const EVENT_48K_PT: u8 = 101;
const TONE_HZ: f64 = 6000.0;

fn linphone_opus_offer(rtp_port: u16) -> String {
    format!(
        "v=0\r\no=linphone 3311 1 IN IP4 127.0.0.1\r\ns=Talk\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/AVP {OPUS_PT} 0 8 {EVENT_48K_PT} 97\r\n\
         a=rtpmap:{OPUS_PT} opus/48000/2\r\na=fmtp:{OPUS_PT} useinbandfec=1\r\n\
         a=rtpmap:{EVENT_48K_PT} telephone-event/48000\r\na=rtpmap:97 telephone-event/8000\r\n\
         a=rtcp-fb:* trr-int 1000\r\na=sendrecv\r\n"
    )
}

/// The sentence (espeak-ng, 8 kHz) raised to 16 kHz by linear interpolation, with a 6 kHz tone
/// at −30 dBFS mixed in, as 20 ms wideband frames.
fn wideband_speech(dir: &TempDir) -> Vec<[i16; WIDE_FRAME_SAMPLES]> {
    let ulaw = read_ulaw_wav(&espeak_ulaw_wav(&dir.path, "opus", SENTENCE, 0.5, 0.5));
    let narrow = decode_all(&ulaw);
    let amplitude = 32768.0 * 10f64.powf(-30.0 / 20.0) * std::f64::consts::SQRT_2;
    let mut wide = Vec::with_capacity(narrow.len() * 2);
    for (i, s) in narrow.iter().enumerate() {
        let next = narrow.get(i + 1).copied().unwrap_or(*s);
        for (k, v) in [*s as f64, (f64::from(*s) + f64::from(next)) / 2.0]
            .into_iter()
            .enumerate()
        {
            let t = (2 * i + k) as f64 / 16000.0;
            let tone = amplitude * (2.0 * std::f64::consts::PI * TONE_HZ * t).sin();
            wide.push((v * 0.8 + tone).clamp(-32768.0, 32767.0) as i16);
        }
    }
    wide.chunks(WIDE_FRAME_SAMPLES)
        .map(|c| {
            let mut f = [0i16; WIDE_FRAME_SAMPLES];
            f[..c.len()].copy_from_slice(c);
            f
        })
        .collect()
}

/// Sends `frames` as Opus every 20 ms, then '#' on the 48 kHz event clock, then Opus silence
/// until `stop` (at most 60 s).
fn send_opus(
    sock: &UdpSocket,
    dest: SocketAddr,
    frames: Vec<[i16; WIDE_FRAME_SAMPLES]>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let sock = sock.try_clone().expect("clone rtp socket");
    std::thread::spawn(move || {
        let mut encoder = OpusEncoder::wideband().expect("opus encoder");
        let (mut seq, mut ts, ssrc) = (7000u16, 480_000u32, 0x0905_0905u32);
        let mut due = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(60);
        let pace = |due: &mut Instant| {
            let now = Instant::now();
            if *due > now {
                std::thread::sleep(*due - now);
            }
            *due += Duration::from_millis(20);
        };
        let mut packet = [0u8; MAX_PACKET];
        let mut send_frame = |frame: &[i16; WIDE_FRAME_SAMPLES], seq: &mut u16, ts: &mut u32| {
            let n = encoder.encode_wide(frame, &mut packet).expect("encode");
            let _ = sock.send_to(
                &rtp_packet(OPUS_PT, false, *seq, *ts, ssrc, &packet[..n]),
                dest,
            );
            *seq = seq.wrapping_add(1);
            *ts = ts.wrapping_add(960);
        };
        for frame in &frames {
            pace(&mut due);
            send_frame(frame, &mut seq, &mut ts);
        }
        // '#': 8 packets 20 ms apart on the 48 kHz clock, 3 end packets.
        let event_ts = ts;
        for i in 0..10u32 {
            pace(&mut due);
            let end = i >= 7;
            let duration = if end { 7680 } else { 960 * (i + 1) } as u16;
            let d = duration.to_be_bytes();
            let payload = [dtmf_event('#'), if end { 0x8A } else { 0x0A }, d[0], d[1]];
            let _ = sock.send_to(
                &rtp_packet(EVENT_48K_PT, i == 0, seq, event_ts, ssrc, &payload),
                dest,
            );
            seq = seq.wrapping_add(1);
        }
        ts = ts.wrapping_add(8 * 960);
        let silence = [0i16; WIDE_FRAME_SAMPLES];
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            pace(&mut due);
            send_frame(&silence, &mut seq, &mut ts);
        }
    })
}

/// Calls `d` with linphone's Opus-first offer; the dialog and its 200 OK.
fn call_with_opus_offer(d: &Daemon) -> (RawUac, SipMsg) {
    let mut uac = RawUac::new(d.sip_addr());
    let offer = linphone_opus_offer(uac.rtp_port);
    let ok = uac.invite("rec", &offer, Duration::from_secs(5));
    assert_eq!(ok.status(), Some(200), "{}", ok.first_line);
    (uac, ok)
}

fn record_daemon(wh: &WebhookServer, overrides: &[(&str, &str)]) -> Daemon {
    wh.route("/done", Reply::twiml("<Response><Hangup/></Response>"));
    wh.route("/tcb", Reply::empty());
    let twiml = format!(
        r##"<Response><Record playBeep="false" finishOnKey="#" maxLength="30" timeout="10" transcribe="true" transcribeCallback="{}" action="{}"/></Response>"##,
        wh.url("/tcb"),
        wh.url("/done")
    );
    Daemon::start(overrides, App::Twiml(twiml))
}

#[test]
fn linphone_opus_offer_is_answered_with_opus_and_recorded_wideband_and_transcribed() {
    assert_engine_installed();
    let wh = WebhookServer::start();
    let d = record_daemon(&wh, &[]);
    let dir = TempDir::new("sip-opus");
    let frames = wideband_speech(&dir);
    let sent_secs = frames.len() as f64 * 0.02;

    let (uac, ok) = call_with_opus_offer(&d);
    let sdp = ok.body.clone();
    let m = sdp
        .lines()
        .find(|l| l.starts_with("m=audio"))
        .expect("m=audio");
    assert!(
        m.ends_with(&format!("RTP/AVP {OPUS_PT} {EVENT_48K_PT}")),
        "Opus at the caller's payload type, the 48 kHz event beside it: {m}"
    );
    assert!(
        sdp.contains(&format!("a=rtpmap:{OPUS_PT} opus/48000/2")),
        "{sdp}"
    );
    assert!(
        sdp.contains(&format!("a=fmtp:{OPUS_PT} useinbandfec=1")),
        "{sdp}"
    );
    assert!(
        sdp.contains(&format!("a=rtpmap:{EVENT_48K_PT} telephone-event/48000")),
        "{sdp}"
    );
    uac.ack();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = send_opus(&uac.rtp, uac.remote_rtp(&ok), frames, stop.clone());
    let bye = uac.wait_request("BYE", Duration::from_secs(40));
    stop.store(true, Ordering::SeqCst);
    sender.join().expect("sender thread");
    assert!(
        bye.is_some(),
        "the '#' ended the recording and /done hung up"
    );

    let done = wh.wait_for("/done", 1, Duration::from_secs(5));
    assert_eq!(
        done[0].param("Digits"),
        "#",
        "the 48 kHz telephone-event was heard"
    );
    let path = d.recording_path(done[0].param("RecordingSid"));
    let (rate, samples) = read_recording_at(&path);
    assert_eq!(rate, 16_000, "an Opus caller is recorded wideband");
    let got = samples.len() as f64 / 16000.0;
    assert!(
        (sent_secs - 1.2..=sent_secs + 0.5).contains(&got),
        "recorded {got:.2} s of {sent_secs:.2} s sent"
    );
    let tone = tone_dbfs(&samples, rate, TONE_HZ);
    assert!(
        tone > -36.0,
        "the 6 kHz tone is in the recording: {tone:.1} dBFS"
    );
    let duration: f64 = done[0]
        .param("RecordingDuration")
        .parse()
        .expect("duration");
    assert!(
        (got - duration).abs() <= 1.0,
        "RecordingDuration {duration} for {got:.2} s"
    );

    let rec_sid = done[0].param("RecordingSid");
    let json = twilio_client::Http::new()
        .get(
            &twilio_client::api_url(&d, ACCOUNT_SID, &format!("Recordings/{rec_sid}.json")),
            twilio_client::Auth::Account,
        )
        .json();
    assert_eq!(json["sample_rate"], 16000, "{json}");

    let cb = wh.wait_for("/tcb", 1, Duration::from_secs(120));
    let text = cb[0].param("TranscriptionText").to_string();
    let share = words_heard(SENTENCE, &text);
    assert!(
        share >= 0.7,
        "{share:.2} of the words in {text:?} (said: {SENTENCE:?})"
    );
    wh.assert_signatures_ok();
}

#[test]
fn with_opus_off_the_same_offer_gets_pcmu() {
    let wh = WebhookServer::start();
    let d = record_daemon(&wh, &[("rtp.opus", "false")]);
    let (uac, ok) = call_with_opus_offer(&d);
    let m = ok
        .body
        .lines()
        .find(|l| l.starts_with("m=audio"))
        .expect("m=audio");
    assert!(m.ends_with("RTP/AVP 0 97"), "PCMU and the 8 kHz event: {m}");
    assert!(!ok.body.contains("opus"), "{}", ok.body);
    uac.ack();
}

/// What Hark says to an Opus caller goes out as Opus: packets at the caller's payload type on
/// the 48 kHz clock that decode to the spoken prompt.
#[test]
fn prompts_to_an_opus_caller_are_opus() {
    let d = Daemon::start(
        &[],
        App::Twiml("<Response><Say>Hello, this is Hark speaking.</Say><Hangup/></Response>".into()),
    );
    let (uac, _) = call_with_opus_offer(&d);
    uac.ack();
    let rtp = uac.rtp.try_clone().expect("clone");
    rtp.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut decoder = media_engine::opus::OpusDecoder::new().expect("decoder");
    let (mut decoded, mut timestamps) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        if uac.wait_request("BYE", Duration::ZERO).is_some() {
            break;
        }
        let Ok((n, _)) = rtp.recv_from(&mut buf) else {
            continue;
        };
        assert!(n > 12, "an RTP packet");
        assert_eq!(buf[1] & 0x7f, OPUS_PT, "every packet is Opus");
        timestamps.push(u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]));
        let mut pcm = [0i16; media_engine::opus::MAX_DECODED];
        let got = decoder
            .decode(&buf[12..n], &mut pcm)
            .expect("Hark's Opus decodes");
        decoded.extend_from_slice(&pcm[..got]);
    }
    assert!(
        decoded.len() > 16_000,
        "at least a second of prompt: {}",
        decoded.len()
    );
    assert!(
        timestamps
            .windows(2)
            .all(|w| w[1].wrapping_sub(w[0]) == 960),
        "20 ms apart on the 48 kHz clock"
    );
    let level = dbfs(rms(&decoded));
    assert!(level > -35.0, "the prompt is speech-loud: {level:.1} dBFS");
}
